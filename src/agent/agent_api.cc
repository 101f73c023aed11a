#include "agent/agent_api.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <nlohmann/json.hpp>

#include "base/api_socket.h"
#include "base/log.h"
#include "cluster/store_keys.h"

namespace clusweb::agent {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using local = asio::local::stream_protocol;
using cluster::StoreKeys;
using nlohmann::json;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

struct Reply {
  int status = 200;
  std::string body;
};

Reply ok_reply(const json& body) { return Reply{200, body.dump()}; }
Reply error_reply(int status, std::string message) {
  return Reply{status, json{{"error", std::move(message)}}.dump()};
}

uint64_t number_or(const std::map<std::string, std::string>& query, const std::string& name,
                   uint64_t fallback) {
  auto it = query.find(name);
  if (it == query.end() || it->second.empty()) return fallback;
  return std::strtoull(it->second.c_str(), nullptr, 10);
}

}  // namespace

struct AgentApi::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::any_io_executor executor_in, Agent& agent_in)
      : executor(std::move(executor_in)), agent(agent_in), acceptor(executor) {}

  asio::any_io_executor executor;
  Agent& agent;
  local::acceptor acceptor;
  std::string path;
  std::shared_ptr<spdlog::logger> log = logger("agent-api");

  const StoreKeys& keys() const { return agent.keys(); }
  const std::map<std::string, store::KeyValue>& snapshot() const { return agent.snapshot(); }

  const store::KeyValue* find(const std::string& key) const {
    auto it = snapshot().find(key);
    return it == snapshot().end() ? nullptr : &it->second;
  }

  json group_status(const std::string& name) const {
    json status = {
        {"name", name},         {"state", "Unknown"}, {"owner", nullptr},          {"token", 0},
        {"placement", nullptr}, {"reason", ""},       {"resources", json::array()}};
    if (const auto* owner = find(keys().owner(name))) {
      status["owner"] = owner->value;
      status["token"] = owner->create_revision;
    }
    if (const auto* placed = find(keys().placement(name))) {
      if (auto value = cluster::decode_placement(placed->value, placed->key); value.ok()) {
        if (!value->node.empty()) status["placement"] = value->node;
        status["reason"] = value->reason;
      }
    }
    const auto* spec_kv = find(keys().group(name));
    std::optional<cluster::GroupSpec> spec;
    if (spec_kv != nullptr) {
      if (auto decoded = cluster::decode_group(spec_kv->value, spec_kv->key); decoded.ok()) {
        spec = std::move(*decoded);
      }
    }
    json reported;
    if (const auto* written = find(keys().status(name))) {
      reported = json::parse(written->value, nullptr, false);
    }
    const bool current = reported.is_object() && status["token"] != 0 &&
                         reported.value("token", int64_t{0}) == status["token"].get<int64_t>();
    if (current) {
      status["state"] = reported.value("state", "Unknown");
    } else if (status["owner"].is_null()) {
      // Nobody owns it: offline (or failed, as the last owner reported).
      status["state"] =
          reported.is_object() && reported.value("state", "") == "Failed" ? "Failed" : "Offline";
    }
    if (spec) {
      for (const cluster::ResourceSpec& resource : spec->resources) {
        json entry = {{"name", resource.name},
                      {"type", resource.type},
                      {"state", "Unknown"},
                      {"restarts", 0},
                      {"lastError", ""}};
        if (reported.is_object() && reported.contains("resources")) {
          for (const json& r : reported["resources"]) {
            if (r.value("name", "") != resource.name) continue;
            entry["state"] =
                (current || status["owner"].is_null()) ? r.value("state", "Unknown") : "Unknown";
            entry["restarts"] = r.value("restarts", 0);
            entry["lastError"] = r.value("lastError", "");
          }
        }
        if (!current && status["owner"].is_null() && entry["state"] == "Unknown") {
          entry["state"] = "Offline";
        }
        status["resources"].push_back(entry);
      }
    }
    return status;
  }

  std::vector<std::string> group_names() const {
    std::vector<std::string> names;
    for (auto it = snapshot().lower_bound(keys().groups());
         it != snapshot().end() && it->first.starts_with(keys().groups()); ++it) {
      if (auto name = StoreKeys::name_under(keys().groups(), it->first)) {
        names.emplace_back(*name);
      }
    }
    return names;
  }

  json cluster_json() const {
    json nodes = json::array();
    std::set<std::string> up;
    for (auto it = snapshot().lower_bound(keys().nodes());
         it != snapshot().end() && it->first.starts_with(keys().nodes()); ++it) {
      if (auto name = StoreKeys::name_under(keys().nodes(), it->first)) up.emplace(*name);
    }
    const std::string admin = keys().node_admin("");
    std::map<std::string, bool> paused;
    for (auto it = snapshot().lower_bound(admin);
         it != snapshot().end() && it->first.starts_with(admin); ++it) {
      json value = json::parse(it->second.value, nullptr, false);
      paused[it->first.substr(admin.size())] = value.is_object() && value.value("paused", false);
    }
    std::set<std::string> all = up;
    for (const auto& [name, flag] : paused) all.insert(name);
    for (const std::string& name : all) {
      nodes.push_back({{"name", name}, {"up", up.contains(name)}, {"paused", paused[name]}});
    }
    json groups = json::array();
    for (const std::string& name : group_names()) groups.push_back(group_status(name));
    json coordinator = nullptr;
    if (const auto* key = find(keys().coordinator())) coordinator = key->value;
    return {{"cluster", agent.cluster()},
            {"node", agent.node()},
            {"joined", agent.joined()},
            {"coordinator", coordinator},
            {"revision", agent.revision()},
            {"nodes", nodes},
            {"groups", groups}};
  }

  // Parses and checks a group spec given as JSON; the error names the group.
  static Result<cluster::GroupSpec> spec_from(const json& spec, const std::string& name) {
    if (!spec.is_object()) return make_error("group \"{}\": \"spec\" must be an object", name);
    json named = spec;
    if (!named.contains("name")) named["name"] = name;
    if (named["name"] != name) {
      return make_error("group \"{}\": the spec names a different group ({})", name,
                        named["name"].dump());
    }
    return cluster::decode_group(named.dump(), "group \"" + name + "\"");
  }

  asio::awaitable<Reply> write(store::Txn txn, json answer) {
    auto result = co_await agent.store().txn(std::move(txn));
    if (!result.ok()) {
      co_return error_reply(503,
                            "the store did not accept the change: " + result.error().describe());
    }
    if (!result->succeeded) {
      co_return error_reply(409, "the group changed meanwhile; read it again and retry");
    }
    if (answer.contains("revision")) answer["revision"] = result->revision;
    co_return ok_reply(answer);
  }

  asio::awaitable<Reply> dispatch(const bhttp::request<bhttp::string_body>& request) {
    const ApiTarget target = parse_api_target(request.target());
    const auto& parts = target.parts;
    const bool get = request.method() == bhttp::verb::get;
    const bool post = request.method() == bhttp::verb::post;
    if (parts.size() < 2 || parts[0] != "v1") co_return error_reply(404, "no such endpoint");
    json body;
    if (post && !request.body().empty()) {
      body = json::parse(request.body(), nullptr, false);
      if (body.is_discarded()) co_return error_reply(400, "the request body is not JSON");
    }
    if (parts[1] == "cluster" && parts.size() == 2 && get) co_return ok_reply(cluster_json());
    if (parts[1] == "events" && parts.size() == 2 && get) {
      co_return ok_reply({{"events", events_after(number_or(target.query, "after", 0),
                                                  number_or(target.query, "limit", 100))}});
    }
    if (parts[1] == "apply" && parts.size() == 2 && post) co_return co_await apply(body);
    if (parts[1] != "groups" || parts.size() < 3) {
      co_return error_reply(get || post ? 404 : 405, "no such endpoint");
    }
    const std::string& name = parts[2];
    if (Status valid = cluster::check_name("group", name); !valid.ok()) {
      co_return error_reply(400, valid.error().describe());
    }
    const store::KeyValue* existing = find(keys().group(name));
    if (parts.size() == 3 && get) {
      if (existing == nullptr) {
        co_return error_reply(404, fmt::format("group \"{}\" does not exist", name));
      }
      co_return ok_reply({{"name", name},
                          {"revision", existing->mod_revision},
                          {"spec", json::parse(existing->value, nullptr, false)},
                          {"status", group_status(name)}});
    }
    if (parts.size() == 3 && post) {
      auto spec = spec_from(body.value("spec", json()), name);
      if (!spec.ok()) co_return error_reply(400, spec.error().describe());
      std::vector<store::Compare> compare;
      if (body.contains("revision") && body["revision"].is_number_integer()) {
        const int64_t revision = body["revision"].get<int64_t>();
        compare.push_back(revision == 0
                              ? store::Compare::absent(keys().group(name))
                              : store::Compare::mod_revision_is(
                                    keys().group(name), store::Compare::Op::kEqual, revision));
      }
      store::Txn txn(std::move(compare), {store::Put(keys().group(name), encode(*spec))});
      json answer = {{"name", name}, {"revision", 0}};
      co_return co_await write(std::move(txn), std::move(answer));
    }
    if (parts.size() != 4 || !post) co_return error_reply(404, "no such endpoint");
    if (existing == nullptr) {
      co_return error_reply(404, fmt::format("group \"{}\" does not exist", name));
    }
    const std::string& verb = parts[3];
    if (verb == "delete") {
      store::Txn txn({}, {store::Delete(keys().group(name)), store::Delete(keys().move(name)),
                          store::Delete(keys().offline(name))});
      agent.record(name, "", "deleted", "group deleted by an administrator");
      json answer = {{"name", name}};
      co_return co_await write(std::move(txn), std::move(answer));
    }
    if (verb == "offline") {
      agent.record(name, "", "offline-requested", "taken offline by an administrator");
      store::Txn txn({}, {store::Put(keys().offline(name), "administrator")});
      json answer = {{"name", name}};
      co_return co_await write(std::move(txn), std::move(answer));
    }
    if (verb == "online") {
      agent.record(name, "", "online-requested", "brought online by an administrator");
      store::Txn txn({}, {store::Delete(keys().offline(name))});
      json answer = {{"name", name}};
      co_return co_await write(std::move(txn), std::move(answer));
    }
    if (verb == "move") {
      std::string to = body.is_object() ? body.value("node", "") : "";
      if (!to.empty()) {
        if (Status valid = cluster::check_name("node", to); !valid.ok()) {
          co_return error_reply(400, valid.error().describe());
        }
        if (find(keys().node(to)) == nullptr) {
          co_return error_reply(409, fmt::format("node \"{}\" is not up", to));
        }
      }
      json from = nullptr;
      if (const auto* owner = find(keys().owner(name))) from = owner->value;
      agent.record(name, "", "move-requested",
                   to.empty() ? "moved by an administrator to the best other node"
                              : "moved by an administrator to " + to);
      store::Txn txn({}, {store::Put(keys().move(name), to), store::Delete(keys().offline(name))});
      json answer = {{"name", name}, {"from", from}, {"to", to.empty() ? json(nullptr) : json(to)}};
      co_return co_await write(std::move(txn), std::move(answer));
    }
    co_return error_reply(404, "no such endpoint");
  }

  asio::awaitable<Reply> apply(const json& body) {
    if (!body.is_object() || !body.contains("groups") || !body["groups"].is_array()) {
      co_return error_reply(400, "the body must be {\"groups\": [...]}");
    }
    std::vector<cluster::GroupSpec> specs;
    std::vector<std::string> problems;
    std::set<std::string> seen;
    for (const json& entry : body["groups"]) {
      const std::string name = entry.is_object() ? entry.value("name", "") : "";
      auto spec = spec_from(entry, name);
      if (!spec.ok()) {
        problems.push_back(spec.error().describe());
      } else if (!seen.insert(spec->name).second) {
        problems.push_back(fmt::format("group \"{}\" is given twice", spec->name));
      } else {
        specs.push_back(std::move(*spec));
      }
    }
    if (!problems.empty()) co_return error_reply(400, fmt::format("{}", fmt::join(problems, "; ")));
    json created = json::array(), changed = json::array(), unchanged = json::array();
    std::vector<store::Compare> compare;
    std::vector<store::Operation> writes;
    for (const cluster::GroupSpec& spec : specs) {
      const std::string key = keys().group(spec.name);
      const std::string value = encode(spec);
      const store::KeyValue* current = find(key);
      if (current == nullptr) {
        created.push_back(spec.name);
        compare.push_back(store::Compare::absent(key));
      } else if (current->value == value) {
        unchanged.push_back(spec.name);
        continue;
      } else {
        changed.push_back(spec.name);
        compare.push_back(store::Compare::mod_revision_is(key, store::Compare::Op::kEqual,
                                                          current->mod_revision));
      }
      writes.emplace_back(store::Put(key, value));
    }
    json answer = {{"created", created}, {"changed", changed}, {"unchanged", unchanged}};
    if (body.value("dryRun", false) || writes.empty()) co_return ok_reply(answer);
    // All or nothing, and only if nothing changed since this agent read it.
    store::Txn txn(std::move(compare), std::move(writes));
    auto result = co_await agent.store().txn(std::move(txn));
    if (!result.ok()) {
      co_return error_reply(503,
                            "the store did not accept the change: " + result.error().describe());
    }
    if (!result->succeeded) {
      co_return error_reply(409, "a group changed meanwhile; nothing was applied; apply again");
    }
    for (const auto& name : created)
      agent.record(name.get<std::string>(), "", "created", "applied");
    for (const auto& name : changed)
      agent.record(name.get<std::string>(), "", "changed", "applied");
    answer["revision"] = result->revision;
    co_return ok_reply(answer);
  }

  json events_after(uint64_t after, uint64_t limit) const {
    json events = json::array();
    const std::string first = keys().event(after + 1);
    for (auto it = snapshot().lower_bound(first);
         it != snapshot().end() && it->first.starts_with(keys().events()) && events.size() < limit;
         ++it) {
      const uint64_t sequence =
          std::strtoull(it->first.substr(keys().events().size()).c_str(), nullptr, 10);
      auto event = decode_event(it->second.value, sequence);
      if (!event.ok()) continue;
      json line = json::parse(it->second.value, nullptr, false);
      line["seq"] = sequence;
      events.push_back(line);
    }
    return events;
  }

  asio::awaitable<void> follow_events(beast::basic_stream<local>& stream, uint64_t after) {
    bhttp::response<bhttp::empty_body> head{bhttp::status::ok, 11};
    head.set(bhttp::field::content_type, "application/x-ndjson");
    head.set(bhttp::field::cache_control, "no-cache");
    head.chunked(true);
    bhttp::response_serializer<bhttp::empty_body> serializer(head);
    stream.expires_never();
    auto [hec, hn] = co_await bhttp::async_write_header(stream, serializer, kTuple);
    if (hec) co_return;
    struct Shared {
      explicit Shared(const asio::any_io_executor& ex) : wake(ex) {}
      asio::steady_timer wake;
      bool closed = false;
    };
    auto shared = std::make_shared<Shared>(executor);
    agent.on_change([weak = std::weak_ptr<Shared>(shared)] {
      if (auto s = weak.lock()) s->wake.cancel();
    });
    asio::co_spawn(
        executor,
        [shared, &socket = stream.socket()]() -> asio::awaitable<void> {
          char scratch[256];
          while (!shared->closed) {
            auto [ec, n] = co_await socket.async_read_some(asio::buffer(scratch), kTuple);
            if (ec) break;
          }
          shared->closed = true;
          shared->wake.cancel();
        },
        asio::detached);
    while (!shared->closed) {
      for (const json& event : events_after(after, 1000)) {
        after = event["seq"].get<uint64_t>();
        const std::string line = event.dump() + "\n";
        std::string chunk = fmt::format("{:x}\r\n{}\r\n", line.size(), line);
        auto [ec, n] = co_await asio::async_write(stream, asio::buffer(chunk), kTuple);
        if (ec) shared->closed = true;
        if (shared->closed) break;
      }
      if (shared->closed) break;
      shared->wake.expires_after(std::chrono::seconds(5));
      co_await shared->wake.async_wait(kTuple);
    }
    shared->closed = true;
    boost::system::error_code ignored;
    stream.socket().close(ignored);
  }

  asio::awaitable<void> serve(local::socket socket) {
    auto self = shared_from_this();
    beast::basic_stream<local> stream(std::move(socket));
    beast::flat_buffer buffer;
    while (true) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.body_limit(4 << 20);
      stream.expires_after(std::chrono::seconds(30));
      auto [ec, n] = co_await bhttp::async_read(stream, buffer, parser, kTuple);
      if (ec) co_return;
      auto request = parser.release();
      const ApiTarget target = parse_api_target(request.target());
      if (request.method() == bhttp::verb::get && target.parts.size() == 2 &&
          target.parts[0] == "v1" && target.parts[1] == "events" &&
          target.query.contains("follow")) {
        co_await follow_events(stream, number_or(target.query, "after", 0));
        co_return;
      }
      Reply reply = co_await dispatch(request);
      bhttp::response<bhttp::string_body> response{static_cast<bhttp::status>(reply.status),
                                                   request.version()};
      response.set(bhttp::field::content_type, "application/json");
      response.set(bhttp::field::server, "clusweb-agent");
      response.body() = std::move(reply.body);
      response.keep_alive(request.keep_alive());
      response.prepare_payload();
      stream.expires_after(std::chrono::seconds(30));
      auto [wec, wn] = co_await bhttp::async_write(stream, response, kTuple);
      if (wec || !request.keep_alive()) co_return;
    }
  }

  asio::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    while (acceptor.is_open()) {
      auto [ec, socket] = co_await acceptor.async_accept(kTuple);
      if (ec) {
        if (!acceptor.is_open() || ec == asio::error::operation_aborted) co_return;
        continue;
      }
      asio::co_spawn(executor, serve(std::move(socket)), asio::detached);
    }
  }
};

AgentApi::AgentApi(asio::any_io_executor executor, Agent& agent)
    : impl_(std::make_shared<Impl>(std::move(executor), agent)) {}

AgentApi::~AgentApi() { close(); }

Status AgentApi::listen(const std::string& path) {
  if (Status listening = listen_api_socket(impl_->acceptor, path, "agent socket");
      !listening.ok()) {
    return listening;
  }
  impl_->path = path;
  asio::co_spawn(impl_->executor, impl_->accept_loop(), asio::detached);
  impl_->log->info("agent api listening socket={}", path);
  return {};
}

void AgentApi::close() {
  if (impl_) close_api_socket(impl_->acceptor, impl_->path);
}

}  // namespace clusweb::agent
