#include "web/protocol.h"

#include <nlohmann/json.hpp>

namespace clusweb::web::protocol {

using nlohmann::json;

namespace {

json pools_to_json(const std::vector<PoolView>& pools) {
  json out = json::array();
  for (const auto& p : pools) {
    out.push_back({{"name", p.name},
                   {"state", p.state},
                   {"reason", p.reason},
                   {"endpoints", p.endpoints},
                   {"queueLength", p.queue_length}});
  }
  return out;
}

std::vector<PoolView> pools_from_json(const json& in) {
  std::vector<PoolView> out;
  for (const auto& p : in) {
    PoolView view;
    view.name = p.at("name").get<std::string>();
    view.state = p.at("state").get<int>();
    view.reason = p.at("reason").get<std::string>();
    view.endpoints = p.at("endpoints").get<std::vector<std::string>>();
    view.queue_length = p.at("queueLength").get<int>();
    out.push_back(std::move(view));
  }
  return out;
}

// Runs `body` on the parsed JSON; malformed input becomes an Error.
template <class T, class F>
Result<T> parse(const std::string& text, F body) {
  try {
    return body(json::parse(text));
  } catch (const std::exception& e) {
    return make_error("malformed control message: {}", e.what());
  }
}

}  // namespace

std::string encode(const ConfigMessage& m) {
  json j{{"type", "config"},
         {"generation", m.generation},
         {"seq", m.seq},
         {"config", m.config_json},
         {"listeners", m.listener_keys},
         {"accessLogs", m.access_logs},
         {"pem", m.pem},
         {"sites", m.sites_started},
         {"pools", pools_to_json(m.pools)},
         {"permits", m.permits}};
  return j.dump();
}

std::string encode(const StateMessage& m) {
  json j{{"type", "state"},
         {"generation", m.generation},
         {"seq", m.seq},
         {"sites", m.sites_started},
         {"pools", pools_to_json(m.pools)}};
  return j.dump();
}

std::string encode(const StatsMessage& m) {
  json sites = json::object();
  for (const auto& [name, s] : m.sites) {
    sites[name] = {{"requests", s.requests},
                   {"responses", std::vector<std::uint64_t>(s.responses, s.responses + 5)},
                   {"bytesSent", s.bytes_sent},
                   {"activeConnections", s.active_connections}};
  }
  json pools = json::object();
  for (const auto& [name, p] : m.pools) {
    pools[name] = {{"requests", p.requests}, {"queueFull", p.queue_full}};
  }
  json j{{"type", "stats"},
         {"id", m.id},
         {"sites", sites},
         {"pools", pools},
         {"connections", m.connections}};
  return j.dump();
}

std::string encode(const AppliedMessage& m) {
  return json{
      {"type", "applied"}, {"generation", m.generation}, {"seq", m.seq}, {"problems", m.problems}}
      .dump();
}

std::string encode(const PermitsMessage& m) {
  return json{{"type", "permits"}, {"deadlines", m.deadlines}}.dump();
}

std::string encode_stats_request(std::uint64_t id) {
  return json{{"type", "stats-request"}, {"id", id}}.dump();
}

std::string encode_reopen_logs(const std::vector<std::string>& sites) {
  return json{{"type", "reopen-logs"}, {"accessLogs", sites}}.dump();
}

std::string encode_shutdown(std::int64_t grace_ms) {
  return json{{"type", "shutdown"}, {"graceMs", grace_ms}}.dump();
}

Result<std::string> message_type(const std::string& text) {
  return parse<std::string>(text, [](const json& j) { return j.at("type").get<std::string>(); });
}

Result<ConfigMessage> decode_config(const std::string& text) {
  return parse<ConfigMessage>(text, [](const json& j) {
    ConfigMessage m;
    m.generation = j.at("generation").get<std::uint64_t>();
    m.seq = j.at("seq").get<std::uint64_t>();
    m.config_json = j.at("config").get<std::string>();
    m.listener_keys = j.at("listeners").get<std::vector<std::string>>();
    m.access_logs = j.at("accessLogs").get<std::vector<std::string>>();
    m.pem = j.at("pem").get<std::map<std::string, std::string>>();
    m.sites_started = j.at("sites").get<std::map<std::string, bool>>();
    m.pools = pools_from_json(j.at("pools"));
    m.permits = j.at("permits").get<std::map<std::string, std::int64_t>>();
    return m;
  });
}

Result<StateMessage> decode_state(const std::string& text) {
  return parse<StateMessage>(text, [](const json& j) {
    StateMessage m;
    m.generation = j.at("generation").get<std::uint64_t>();
    m.seq = j.at("seq").get<std::uint64_t>();
    m.sites_started = j.at("sites").get<std::map<std::string, bool>>();
    m.pools = pools_from_json(j.at("pools"));
    return m;
  });
}

Result<StatsMessage> decode_stats(const std::string& text) {
  return parse<StatsMessage>(text, [](const json& j) {
    StatsMessage m;
    m.id = j.at("id").get<std::uint64_t>();
    m.connections = j.at("connections").get<std::int64_t>();
    for (const auto& [name, s] : j.at("sites").items()) {
      SiteStats stats;
      stats.requests = s.at("requests").get<std::uint64_t>();
      auto responses = s.at("responses").get<std::vector<std::uint64_t>>();
      for (std::size_t i = 0; i < 5 && i < responses.size(); ++i) stats.responses[i] = responses[i];
      stats.bytes_sent = s.at("bytesSent").get<std::uint64_t>();
      stats.active_connections = s.at("activeConnections").get<std::int64_t>();
      m.sites.emplace(name, stats);
    }
    for (const auto& [name, p] : j.at("pools").items()) {
      m.pools.emplace(name, PoolStats{p.at("requests").get<std::uint64_t>(),
                                      p.at("queueFull").get<std::uint64_t>()});
    }
    return m;
  });
}

Result<AppliedMessage> decode_applied(const std::string& text) {
  return parse<AppliedMessage>(text, [](const json& j) {
    AppliedMessage m;
    m.generation = j.at("generation").get<std::uint64_t>();
    m.seq = j.at("seq").get<std::uint64_t>();
    m.problems = j.at("problems").get<std::vector<std::string>>();
    return m;
  });
}

Result<PermitsMessage> decode_permits(const std::string& text) {
  return parse<PermitsMessage>(text, [](const json& j) {
    PermitsMessage m;
    m.deadlines = j.at("deadlines").get<std::map<std::string, std::int64_t>>();
    return m;
  });
}

Result<std::uint64_t> decode_stats_request(const std::string& text) {
  return parse<std::uint64_t>(text, [](const json& j) { return j.at("id").get<std::uint64_t>(); });
}

Result<std::vector<std::string>> decode_reopen_logs(const std::string& text) {
  return parse<std::vector<std::string>>(
      text, [](const json& j) { return j.at("accessLogs").get<std::vector<std::string>>(); });
}

Result<std::int64_t> decode_shutdown(const std::string& text) {
  return parse<std::int64_t>(text,
                             [](const json& j) { return j.at("graceMs").get<std::int64_t>(); });
}

}  // namespace clusweb::web::protocol
