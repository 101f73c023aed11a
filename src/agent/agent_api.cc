#include "agent/agent_api.h"

#include <boost/asio/awaitable.hpp>
#include <nlohmann/json.hpp>
#include <set>

#include "agent/config_api.h"
#include "base/api_server.h"
#include "cluster/store_keys.h"

namespace clusweb::agent {

namespace asio = boost::asio;
using cluster::StoreKeys;
using nlohmann::json;

namespace {

uint64_t number_or(const std::map<std::string, std::string>& query, const std::string& name,
                   uint64_t fallback) {
  auto it = query.find(name);
  if (it == query.end() || it->second.empty()) return fallback;
  return std::strtoull(it->second.c_str(), nullptr, 10);
}

// How long an answer to a write waits for the agent's own view to include it.
constexpr std::chrono::milliseconds kCatchUpLimit{2'000};
// How long each store member has to answer a status request (GET /v1/cluster?store=1).
constexpr std::chrono::milliseconds kStoreHealthTimeout{1'000};

}  // namespace

struct AgentApi::Impl {
  Impl(const asio::any_io_executor& executor, Agent& agent_in)
      : agent(agent_in),
        server(
            executor, ApiServer::Options{"agent api", 4 << 20},
            [this](const ApiRequest& request) { return dispatch(request); },
            [](const ApiRequest& request) {
              const auto& parts = request.target.parts;
              return request.get() && parts.size() == 2 && parts[0] == "v1" &&
                     parts[1] == "events" && request.target.query.contains("follow");
            },
            [this](const ApiRequest& request, ApiLineStream& lines) {
              return follow_events(lines, number_or(request.target.query, "after", 0));
            }) {}

  Agent& agent;
  ConfigApi config{agent};
  ApiServer server;

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
    const cluster::Unmanaged unmanaged = unmanaged_of(name);
    status["unmanaged"] = unmanaged.group;
    if (spec) {
      for (const cluster::ResourceSpec& resource : spec->resources) {
        json entry = {{"name", resource.name}, {"type", resource.type},
                      {"state", "Unknown"},    {"restarts", 0},
                      {"lastError", ""},       {"unmanaged", unmanaged.covers(resource.name)}};
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

  static json store_health_json(const store::StoreHealth& health) {
    json members = json::array();
    json leader = nullptr;
    for (const store::StoreMember& member : health.members) {
      if (member.leader) leader = member.name;
      members.push_back({{"id", fmt::format("{:x}", member.id)},
                         {"name", member.name},
                         {"endpoint", member.endpoint},
                         {"clientURLs", member.client_urls},
                         {"learner", member.learner},
                         {"healthy", member.healthy},
                         {"error", member.error},
                         {"leader", member.leader},
                         {"version", member.version},
                         {"dbSize", member.db_size},
                         {"dbSizeInUse", member.db_size_in_use},
                         {"raftTerm", member.raft_term},
                         {"raftIndex", member.raft_index},
                         {"alarms", member.alarms}});
    }
    json unreachable = json::array();
    for (const auto& [endpoint, error] : health.unreachable) {
      unreachable.push_back({{"endpoint", endpoint}, {"error", error}});
    }
    return {{"kind", health.kind},
            {"leader", leader},
            {"members", members},
            {"unreachable", unreachable}};
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
    std::map<std::string, bool> draining;
    for (auto it = snapshot().lower_bound(admin);
         it != snapshot().end() && it->first.starts_with(admin); ++it) {
      json value = json::parse(it->second.value, nullptr, false);
      const std::string name = it->first.substr(admin.size());
      paused[name] = value.is_object() && value.value("paused", false);
      draining[name] = value.is_object() && value.value("drain", false);
    }
    std::map<std::string, int> owned;
    for (auto it = snapshot().lower_bound(keys().owners());
         it != snapshot().end() && it->first.starts_with(keys().owners()); ++it) {
      ++owned[it->second.value];
    }
    std::set<std::string> all = up;
    for (const auto& [name, flag] : paused) all.insert(name);
    for (const std::string& name : all) {
      nodes.push_back({{"name", name},
                       {"up", up.contains(name)},
                       {"paused", paused[name]},
                       {"draining", draining[name]},
                       {"groups", owned[name]}});
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

  // Writes `txn`; `answer` gets the revision when it has a "revision" member.
  // Only a write that happened is recorded in the event log.
  struct Change {
    std::string group;
    std::string what;
    std::string why;
  };
  asio::awaitable<ApiReply> write(store::Txn txn, json answer, std::vector<Change> changes,
                                  std::string conflict) {
    auto result = co_await agent.store().txn(std::move(txn));
    if (!result.ok()) {
      co_return error_reply(503,
                            "the store did not accept the change: " + result.error().describe());
    }
    if (!result->succeeded) co_return error_reply(409, std::move(conflict));
    // The next request (a dry run, a read) must see this write.
    co_await agent.caught_up(result->revision, kCatchUpLimit);
    for (Change& change : changes) {
      agent.record(std::move(change.group), "", std::move(change.what), std::move(change.why));
    }
    if (answer.contains("revision")) answer["revision"] = result->revision;
    co_return ok_reply(answer);
  }

  asio::awaitable<ApiReply> write_group(store::Txn txn, json answer, Change change) {
    std::vector<Change> changes;
    if (!change.what.empty()) changes.push_back(std::move(change));
    co_return co_await write(std::move(txn), std::move(answer), std::move(changes),
                             "the group changed meanwhile; read it again and retry");
  }

  // POST /v1/nodes/NAME/pause|drain|resume: node-admin/NAME, which placement reads. Pause
  // keeps the node's groups and places nothing new there; drain also moves its groups away
  // (gracefully: offline here, released, online there); resume ends both.
  asio::awaitable<ApiReply> node_admin(const std::string& name, const std::string& verb) {
    if (Status valid = cluster::check_name("node", name); !valid.ok()) {
      co_return error_reply(400, valid.error().describe());
    }
    const std::string admin_key = keys().node_admin(name);
    // A typo must not pause a node that does not exist; a node that is down may be paused
    // (before it comes back for maintenance) only while it is known from the store.
    if (find(keys().node(name)) == nullptr && find(admin_key) == nullptr) {
      co_return error_reply(404, fmt::format("node \"{}\" is not up and not paused", name));
    }
    json answer = {{"node", name}};
    store::Txn txn({}, {});
    Change change{"", "", ""};
    if (verb == "pause") {
      txn = store::Txn({}, {store::Put(admin_key, json{{"paused", true}}.dump())});
      change =
          Change{"", "node-paused", name + " paused: it keeps its groups and takes no new ones"};
    } else if (verb == "drain") {
      // What is to move, as of now: the caller follows these until each lands elsewhere.
      json groups = json::array();
      for (auto it = snapshot().lower_bound(keys().owners());
           it != snapshot().end() && it->first.starts_with(keys().owners()); ++it) {
        auto group = StoreKeys::name_under(keys().owners(), it->first);
        if (group && it->second.value == name) groups.push_back(std::string(*group));
      }
      answer["groups"] = groups;
      txn = store::Txn({}, {store::Put(admin_key, json{{"paused", true}, {"drain", true}}.dump())});
      change = Change{"", "node-draining", name + " drained: its groups move to other nodes"};
    } else if (verb == "resume") {
      txn = store::Txn({}, {store::Delete(admin_key)});
      change = Change{"", "node-resumed", name + " resumed: it takes groups again"};
    } else {
      co_return error_reply(404, "no such endpoint");
    }
    std::vector<Change> changes{std::move(change)};
    co_return co_await write(std::move(txn), std::move(answer), std::move(changes),
                             "the node changed meanwhile; retry");
  }

  asio::awaitable<ApiReply> dispatch(const ApiRequest& request) {
    const ApiTarget& target = request.target;
    const auto& parts = target.parts;
    const bool get = request.get();
    const bool post = request.post();
    if (parts.size() < 2 || parts[0] != "v1") co_return error_reply(404, "no such endpoint");
    json body;
    if (post && !request.body.empty()) {
      body = json::parse(request.body, nullptr, false);
      if (body.is_discarded()) co_return error_reply(400, "the request body is not JSON");
    }
    if (parts[1] == "cluster" && parts.size() == 2 && get) {
      json cluster = cluster_json();
      // Asked for (cluster status): a member that does not answer costs up to the timeout.
      if (number_or(target.query, "store", 0) != 0) {
        auto health = co_await agent.store().members(kStoreHealthTimeout);
        cluster["store"] =
            health.ok() ? store_health_json(*health) : json{{"error", health.error().describe()}};
      }
      co_return ok_reply(cluster);
    }
    if (parts[1] == "events" && parts.size() == 2 && get) {
      co_return ok_reply({{"events", events_after(number_or(target.query, "after", 0),
                                                  number_or(target.query, "limit", 100))}});
    }
    if (parts[1] == "apply" && parts.size() == 2 && post) co_return co_await apply(body);
    if (parts[1] == "config") co_return co_await config.handle(request, body);
    if (parts[1] == "nodes" && parts.size() == 4 && post) {
      co_return co_await node_admin(parts[2], parts[3]);
    }
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
      Change change{name, existing == nullptr ? "created" : "changed", "written through the API"};
      co_return co_await write_group(std::move(txn), std::move(answer), std::move(change));
    }
    if (parts.size() != 4 || !post) co_return error_reply(404, "no such endpoint");
    if (existing == nullptr) {
      co_return error_reply(404, fmt::format("group \"{}\" does not exist", name));
    }
    const std::string& verb = parts[3];
    json answer = {{"name", name}};
    if (verb == "unmanage" || verb == "manage") {
      co_return co_await set_unmanaged(name, *existing, verb == "unmanage", body);
    }
    if ((verb == "offline" || verb == "move") && unmanaged_of(name).any()) {
      co_return error_reply(
          409, fmt::format("group \"{}\" is unmanaged: the cluster does not {} it until "
                           "`clusweb group manage {}`",
                           name, verb == "move" ? "move" : "take offline", name));
    }
    if (verb == "delete") {
      store::Txn txn({},
                     {store::Delete(keys().group(name)), store::Delete(keys().move(name)),
                      store::Delete(keys().offline(name)), store::Delete(keys().unmanaged(name))});
      Change change{name, "deleted", "group deleted by an administrator"};
      co_return co_await write_group(std::move(txn), std::move(answer), std::move(change));
    }
    if (verb == "offline") {
      store::Txn txn({}, {store::Put(keys().offline(name), "administrator")});
      Change change{name, "offline-requested", "taken offline by an administrator"};
      co_return co_await write_group(std::move(txn), std::move(answer), std::move(change));
    }
    if (verb == "online") {
      // Like Pacemaker's cleanup: an administrator bringing a group online
      // has dealt with what failed it, so its failover history (with the
      // bans of hard errors and the stop of a fatal one) starts afresh.
      store::Txn txn({},
                     {store::Delete(keys().offline(name)), store::Delete(keys().failures(name))});
      Change change{name, "online-requested", "brought online by an administrator"};
      co_return co_await write_group(std::move(txn), std::move(answer), std::move(change));
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
      answer["from"] = nullptr;
      if (const auto* owner = find(keys().owner(name))) answer["from"] = owner->value;
      answer["to"] = to.empty() ? json(nullptr) : json(to);
      store::Txn txn({}, {store::Put(keys().move(name), to), store::Delete(keys().offline(name))});
      Change change{name, "move-requested",
                    to.empty() ? "moved by an administrator to the best other node"
                               : "moved by an administrator to " + to};
      co_return co_await write_group(std::move(txn), std::move(answer), std::move(change));
    }
    co_return error_reply(404, "no such endpoint");
  }

  cluster::Unmanaged unmanaged_of(const std::string& group) const {
    if (const auto* kv = find(keys().unmanaged(group))) {
      auto value = cluster::decode_unmanaged(kv->value, kv->key);
      return value.ok() ? *value : cluster::Unmanaged{true, {}};  // as the agents read it
    }
    return {};
  }

  // POST /v1/groups/NAME/unmanage|manage {"resources": [...]}: maintenance. No resources =
  // the whole group. Written with a compare on the key, so two operators do not undo each other.
  asio::awaitable<ApiReply> set_unmanaged(const std::string& name, const store::KeyValue& group,
                                          bool unmanage, const json& body) {
    std::vector<std::string> resources;
    if (body.is_object() && body.contains("resources")) {
      if (!body["resources"].is_array()) co_return error_reply(400, "\"resources\" must be a list");
      for (const json& resource : body["resources"]) {
        if (!resource.is_string()) co_return error_reply(400, "\"resources\" holds a non-string");
        resources.push_back(resource.get<std::string>());
      }
    }
    auto spec = cluster::decode_group(group.value, group.key);
    if (!spec.ok()) co_return error_reply(500, spec.error().describe());
    for (const std::string& resource : resources) {
      const bool known = std::any_of(spec->resources.begin(), spec->resources.end(),
                                     [&](const auto& r) { return r.name == resource; });
      if (!known) {
        co_return error_reply(404,
                              fmt::format("group \"{}\" has no resource \"{}\"", name, resource));
      }
    }
    const store::KeyValue* current_kv = find(keys().unmanaged(name));
    cluster::Unmanaged next = unmanaged_of(name);
    std::string why;
    if (unmanage && resources.empty()) {
      next = cluster::Unmanaged{true, {}};
      why = "the whole group";
    } else if (unmanage) {
      for (const std::string& resource : resources) {
        if (!next.covers(resource)) next.resources.push_back(resource);
      }
      why = fmt::format("{}", fmt::join(resources, ", "));
    } else if (resources.empty()) {
      next = {};
      why = "the whole group";
    } else {
      if (next.group) {
        co_return error_reply(
            409, fmt::format("the whole group \"{}\" is unmanaged: `clusweb group manage {}` "
                             "manages all of it again",
                             name, name));
      }
      std::erase_if(next.resources, [&](const std::string& r) {
        return std::find(resources.begin(), resources.end(), r) != resources.end();
      });
      why = fmt::format("{}", fmt::join(resources, ", "));
    }
    std::vector<store::Compare> compare{
        current_kv == nullptr
            ? store::Compare::absent(keys().unmanaged(name))
            : store::Compare::mod_revision_is(keys().unmanaged(name), store::Compare::Op::kEqual,
                                              current_kv->mod_revision)};
    store::Txn txn(std::move(compare),
                   {next.any() ? store::Operation(store::Put(keys().unmanaged(name), encode(next)))
                               : store::Operation(store::Delete(keys().unmanaged(name)))});
    json answer = {{"name", name}, {"unmanaged", unmanaged_json(next)}};
    Change change{name, unmanage ? "unmanaged" : "managed",
                  unmanage ? "maintenance by an administrator: the cluster stops acting on " + why
                           : "managed again by an administrator: " + why};
    co_return co_await write_group(std::move(txn), std::move(answer), std::move(change));
  }

  static json unmanaged_json(const cluster::Unmanaged& value) {
    return {{"group", value.group}, {"resources", value.resources}};
  }

  asio::awaitable<ApiReply> apply(const json& body) {
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
    std::vector<Change> changes;
    json config_diff = json::array();
    if (body.contains("web")) {
      Result<ConfigApi::WebChange> web = config.web_change(body["web"]);
      if (!web.ok()) co_return error_reply(400, web.error().message);
      for (auto& name : web->created) created.push_back(std::move(name));
      for (auto& name : web->changed) changed.push_back(std::move(name));
      for (auto& name : web->unchanged) unchanged.push_back(std::move(name));
      config_diff = std::move(web->diff);
      if (web->write) {
        compare.push_back(std::move(web->compare));
        writes.emplace_back(std::move(*web->write));
        changes.push_back({"", "config-changed", web->summary});
      }
    }
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
    json answer = {{"created", created},
                   {"changed", changed},
                   {"unchanged", unchanged},
                   {"configDiff", std::move(config_diff)}};
    if (body.value("dryRun", false) || writes.empty()) co_return ok_reply(answer);
    for (const cluster::GroupSpec& spec : specs) {
      for (const auto& [list, what] : {std::pair{&created, "created"}, {&changed, "changed"}}) {
        if (std::find(list->begin(), list->end(), spec.name) != list->end()) {
          changes.push_back({spec.name, what, "applied"});
        }
      }
    }
    answer["revision"] = 0;
    // All or nothing, and only if nothing changed since this agent read it.
    store::Txn txn(std::move(compare), std::move(writes));
    co_return co_await write(
        std::move(txn), std::move(answer), std::move(changes),
        "a group or the shared configuration changed meanwhile; nothing was applied; apply again");
  }

  json events_after(uint64_t after, uint64_t limit) const {
    json events = json::array();
    const std::string first = keys().event(after + 1);
    for (auto it = snapshot().lower_bound(first);
         it != snapshot().end() && it->first.starts_with(keys().events()) && events.size() < limit;
         ++it) {
      const uint64_t sequence =
          std::strtoull(it->first.substr(keys().events().size()).c_str(), nullptr, 10);
      json event = json::parse(it->second.value, nullptr, false);
      if (!event.is_object()) continue;
      event["seq"] = sequence;
      events.push_back(std::move(event));
    }
    return events;
  }

  // The event log from `after` on, then every new event, until the client leaves.
  asio::awaitable<void> follow_events(ApiLineStream& lines, uint64_t after) {
    const int listener = agent.add_listener(lines.waker());
    while (lines.open()) {
      for (json& event : events_after(after, 1000)) {
        after = event["seq"].get<uint64_t>();
        if (!co_await lines.send(event.dump())) break;
      }
      co_await lines.wait();
    }
    agent.remove_listener(listener);
  }
};

AgentApi::AgentApi(const asio::any_io_executor& executor, Agent& agent)
    : impl_(std::make_unique<Impl>(executor, agent)) {}

AgentApi::~AgentApi() { close(); }

Status AgentApi::listen(const std::string& path) { return impl_->server.listen(path); }

void AgentApi::close() {
  if (impl_) impl_->server.close();
}

}  // namespace clusweb::agent
