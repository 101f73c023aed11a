#include "web/admin_server.h"

#include <unistd.h>

#include <boost/asio/awaitable.hpp>
#include <ctime>
#include <deque>
#include <nlohmann/json.hpp>

#include "base/api_server.h"
#include "base/boottime.h"
#include "base/log.h"
#include "web/permit_request.h"

namespace clusweb::web {

namespace asio = boost::asio;
using nlohmann::json;

namespace {

std::string iso_time(std::int64_t unix_ms) {
  std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

// Milliseconds left, or null for a site that never had a permit.
json remaining_json(const PermitStatus& permit) {
  return permit.remaining_ms ? json(*permit.remaining_ms) : json(nullptr);
}

json site_json(const WebMaster& master, const config::Site& site,
               const std::optional<protocol::StatsMessage>& stats) {
  auto state = master.site_state(site.name);
  json bindings = json::array();
  for (const auto& binding : site.bindings) bindings.push_back(binding.url());
  json applications = json::array();
  for (const auto& app : site.applications) {
    applications.push_back({{"path", app.path}, {"pool", app.pool}});
  }
  json counters = {{"requests", 0},
                   {"responses", {{"1xx", 0}, {"2xx", 0}, {"3xx", 0}, {"4xx", 0}, {"5xx", 0}}},
                   {"bytesSent", 0},
                   {"activeConnections", 0}};
  if (stats) {
    auto it = stats->sites.find(site.name);
    if (it != stats->sites.end()) {
      const auto& s = it->second;
      counters = {{"requests", s.requests},
                  {"responses",
                   {{"1xx", s.responses[0]},
                    {"2xx", s.responses[1]},
                    {"3xx", s.responses[2]},
                    {"4xx", s.responses[3]},
                    {"5xx", s.responses[4]}}},
                  {"bytesSent", s.bytes_sent},
                  {"activeConnections", s.active_connections}};
    }
  }
  auto permit = master.permit(site.name);
  return {{"name", site.name},
          {"state", to_string(state)},
          {"stateCode", static_cast<int>(state)},
          {"reason", master.site_reason(site.name)},
          {"autoStart", site.auto_start},
          {"clustered", permit.clustered},
          {"permitRemainingMs", remaining_json(permit)},
          {"root", site.root},
          {"bindings", bindings},
          {"applications", applications},
          {"accessLog", site.access_log},
          {"counters", counters}};
}

json pool_json(const pool::PoolStatus& status, const config::WebConfig& config,
               const std::optional<protocol::StatsMessage>& stats) {
  json workers = json::array();
  for (const auto& w : status.workers) {
    workers.push_back({{"slot", w.slot},
                       {"pid", w.pid},
                       {"endpoint", w.endpoint},
                       {"ready", w.ready},
                       {"startedAt", iso_time(w.started_at_unix_ms)},
                       {"generation", w.generation}});
  }
  std::uint64_t requests = 0;
  std::uint64_t queue_full = 0;
  if (stats) {
    auto it = stats->pools.find(status.name);
    if (it != stats->pools.end()) {
      requests = it->second.requests;
      queue_full = it->second.queue_full;
    }
  }
  auto pool = config.pools.find(status.name);
  return {{"name", status.name},
          {"state", pool::to_string(status.state)},
          {"stateCode", static_cast<int>(status.state)},
          {"reason", status.reason},
          {"processes", status.processes},
          {"autoStart", pool != config.pools.end() && pool->second.auto_start},
          {"workers", workers},
          {"counters",
           {{"workerStarts", status.worker_starts},
            {"workerFailures", status.worker_failures},
            {"requests", requests},
            {"queueFull", queue_full}}}};
}

ApiReply error_reply(int status, std::string_view message) {
  return {status, json{{"error", message}}.dump() + "\n"};
}

ApiReply ok_reply(const json& body) { return {200, body.dump(2) + "\n"}; }

}  // namespace

struct AdminServer::Impl {
  Impl(asio::io_context& io_in, WebMaster& master_in)
      : io(io_in),
        master(master_in),
        server(
            io_in.get_executor(), ApiServer::Options{"admin api", 1 << 20},
            [this](const ApiRequest& request) { return dispatch(request); },
            [](const ApiRequest& request) {
              const auto& parts = request.target.parts;
              return request.get() && parts.size() == 2 && parts[0] == "v1" && parts[1] == "events";
            },
            [this](const ApiRequest&, ApiLineStream& lines) { return stream_events(lines); }) {}

  asio::io_context& io;
  WebMaster& master;
  ApiServer server;
  std::shared_ptr<spdlog::logger> log = logger("admin");

  asio::awaitable<ApiReply> dispatch(const ApiRequest& request) {
    const auto& parts = request.target.parts;
    const bool get = request.get();
    const bool post = request.post();
    if (parts.size() < 2 || parts[0] != "v1") co_return error_reply(404, "no such endpoint");
    const std::string& what = parts[1];

    if (what == "status" && parts.size() == 2 && get) {
      const auto& config = master.config();
      co_return ok_reply({{"generation", master.generation()},
                          {"pid", ::getpid()},
                          {"frontendPid", master.frontend_pid()},
                          {"appliedGeneration", master.applied_generation()},
                          {"startedAt", iso_time(master.started_at_unix_ms())},
                          {"sites", config.sites.size()},
                          {"pools", config.pools.size()},
                          {"sharedConfig",
                           {{"revision", master.shared_config_revision()},
                            {"problem", master.shared_config_problem()}}}});
    }
    if (what == "reload" && parts.size() == 2 && post) {
      auto result = master.reload();
      if (!result) co_return error_reply(400, result.error().describe());
      // Answer once the front end serves the new configuration.
      if (!co_await master.wait_applied(std::chrono::seconds(5))) {
        co_return error_reply(504,
                              "configuration accepted, but the front end has not applied it "
                              "within 5 s");
      }
      co_return ok_reply({{"generation", result->generation},
                          {"sites", result->sites},
                          {"pools", result->pools},
                          {"sharedConfig",
                           {{"revision", master.shared_config_revision()},
                            {"problem", master.shared_config_problem()}}}});
    }
    if (what == "sites") {
      if (parts.size() == 2 && get) {
        auto stats = co_await master.fetch_stats();
        json sites = json::array();
        for (const auto& [name, site] : master.config().sites) {
          sites.push_back(site_json(master, site, stats));
        }
        co_return ok_reply({{"sites", sites}});
      }
      if (parts.size() >= 3) {
        const std::string& name = parts[2];
        auto site = master.config().sites.find(name);
        if (site == master.config().sites.end()) {
          co_return error_reply(404, fmt::format("site \"{}\" does not exist", name));
        }
        if (parts.size() == 4 && post && (parts[3] == "start" || parts[3] == "stop")) {
          Status done = parts[3] == "start" ? master.start_site(name) : master.stop_site(name);
          if (!done) co_return error_reply(409, done.error().describe());
        } else if (!(parts.size() == 3 && get)) {
          co_return error_reply(404, "no such endpoint");
        }
        auto stats = co_await master.fetch_stats();
        co_return ok_reply(site_json(master, site->second, stats));
      }
    }
    if (what == "permits" && parts.size() == 3) {
      if (!post) co_return error_reply(405, "use POST to grant, renew or revoke a permit");
      co_return co_await grant_permit(parts[2], request.body);
    }
    if (what == "pools") {
      if (parts.size() == 2 && get) {
        auto stats = co_await master.fetch_stats();
        json pools = json::array();
        for (const auto& status : master.pools().status()) {
          pools.push_back(pool_json(status, master.config(), stats));
        }
        co_return ok_reply({{"pools", pools}});
      }
      if (parts.size() >= 3) {
        const std::string& name = parts[2];
        if (!master.pools().status(name)) {
          co_return error_reply(404, fmt::format("application pool \"{}\" does not exist", name));
        }
        if (parts.size() == 4 && post) {
          Status done;
          if (parts[3] == "start") {
            done = master.pools().start(name);
          } else if (parts[3] == "stop") {
            done = master.pools().stop(name);
          } else if (parts[3] == "recycle") {
            done = master.pools().recycle(name);
          } else {
            co_return error_reply(404, "no such endpoint");
          }
          if (!done) co_return error_reply(409, done.error().describe());
        } else if (!(parts.size() == 3 && get)) {
          co_return error_reply(404, "no such endpoint");
        }
        auto status = master.pools().status(name);
        if (!status)
          co_return error_reply(404, fmt::format("application pool \"{}\" is gone", name));
        auto stats = co_await master.fetch_stats();
        co_return ok_reply(pool_json(*status, master.config(), stats));
      }
    }
    co_return error_reply(get || post ? 404 : 405, "no such endpoint");
  }

  // POST /v1/permits/NAME {"deadlineBoottimeMs": N}.
  asio::awaitable<ApiReply> grant_permit(const std::string& name, const std::string& body) {
    if (master.config().sites.count(name) == 0) {
      co_return error_reply(404, fmt::format("site \"{}\" does not exist", name));
    }
    auto deadline = parse_permit_request(body, boottime_now_ms());
    if (!deadline) co_return error_reply(400, deadline.error().describe());
    const bool was_serving = master.site_state(name) == SiteState::kStarted;
    auto granted = master.grant_permit(name, *deadline);
    if (!granted) co_return error_reply(404, granted.error().describe());
    // A revocation answers once the front end no longer serves the site, so
    // the caller may rely on it at once.
    if (was_serving && master.site_state(name) != SiteState::kStarted) {
      if (!co_await master.wait_applied(std::chrono::seconds(5))) {
        log->warn("front end has not applied a revoked permit within 5 s site={}", name);
      }
    }
    co_return ok_reply({{"site", name},
                        {"clustered", granted->clustered},
                        {"permitRemainingMs", remaining_json(*granted)}});
  }

  // Streams events until the client goes away, one JSON object per line.
  asio::awaitable<void> stream_events(ApiLineStream& lines) {
    // Filled by the subscription (on this thread) between sends.
    auto queue = std::make_shared<std::deque<std::string>>();
    auto id = master.events().subscribe([queue, wake = lines.waker()](const WebEvent& event) {
      queue->push_back(to_json_line(event));
      wake();
    });
    while (lines.open()) {
      while (!queue->empty() && lines.open()) {
        std::string line = std::move(queue->front());
        queue->pop_front();
        co_await lines.send(std::move(line));
      }
      co_await lines.wait();
    }
    master.events().unsubscribe(id);
  }
};

AdminServer::AdminServer(asio::io_context& io, WebMaster& master)
    : impl_(std::make_unique<Impl>(io, master)) {}

AdminServer::~AdminServer() { close(); }

Status AdminServer::listen(const std::string& path) { return impl_->server.listen(path); }

void AdminServer::close() {
  if (impl_) impl_->server.close();
}

}  // namespace clusweb::web
