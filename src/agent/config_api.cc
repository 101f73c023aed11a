#include "agent/config_api.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <utility>

#include "agent/config_follower.h"
#include "cluster/model.h"
#include "cluster/store_keys.h"
#include "config/shared_config_diff.h"
#include "secrets/data_key.h"

namespace clusweb::agent {

namespace asio = boost::asio;
using cluster::StoreKeys;
using nlohmann::json;

ApiReply ok_reply(const json& body) { return ApiReply{200, body.dump()}; }
ApiReply error_reply(int status, std::string message) {
  return ApiReply{status, json{{"error", std::move(message)}}.dump()};
}

namespace {

// How long an answer to a write waits for the agent's own view to include it.
constexpr std::chrono::milliseconds kCatchUpLimit{2'000};

// A revision given in the query ("from", "to", "revision"); 0 when absent.
Result<store::Revision> revision_of(const ApiTarget& target, const std::string& name) {
  auto it = target.query.find(name);
  if (it == target.query.end() || it->second.empty()) return store::Revision{0};
  char* end = nullptr;
  const long long value = std::strtoll(it->second.c_str(), &end, 10);
  if (*end != '\0' || value < 0) {
    return make_error("\"{}\" must be a revision number, not \"{}\"", name, it->second);
  }
  return store::Revision{value};
}

json diff_json(const config::SharedConfig& before, const config::SharedConfig& after) {
  return json::parse(config::diff_to_json(config::diff_web_objects(before.config, after.config)));
}

// "site/shop created, pool/api changed" from a diff.
std::string summary_of(const json& diff) {
  std::vector<std::string> parts;
  for (const json& change : diff) {
    parts.push_back(fmt::format("{}/{} {}", change["kind"].get<std::string>(),
                                change["name"].get<std::string>(),
                                change["change"].get<std::string>()));
  }
  return fmt::format("{}", fmt::join(parts, ", "));
}

}  // namespace

asio::awaitable<ApiReply> ConfigApi::handle(const ApiRequest& request, const json& body) {
  const ApiTarget& target = request.target;
  const auto& parts = target.parts;
  if (parts.size() == 2 && request.get()) co_return status();
  if (parts.size() == 3 && request.post()) {
    if (parts[2] == "delete") co_return co_await remove(body);
    if (parts[2] == "key") co_return co_await create_key(body);
    if (parts[2] == "import") co_return co_await import(body);
    co_return error_reply(404, "no such endpoint");
  }
  if (parts.size() == 3 && parts[2] == "key" && request.get()) co_return key();
  if (parts.size() != 3 || !request.get()) co_return error_reply(404, "no such endpoint");
  if (parts[2] == "history") {
    const auto limit = target.query.contains("limit")
                           ? std::strtoull(target.query.at("limit").c_str(), nullptr, 10)
                           : 20;
    co_return co_await history(std::clamp<std::size_t>(limit, 1, 1000));
  }
  Result<store::Revision> revision = revision_of(target, "revision");
  Result<store::Revision> from = revision_of(target, "from");
  Result<store::Revision> to = revision_of(target, "to");
  for (const auto* read : {&revision, &from, &to}) {
    if (!read->ok()) co_return error_reply(400, read->error().message);
  }
  if (parts[2] == "web") co_return co_await web(*revision);
  if (parts[2] == "diff") {
    if (*from == 0) co_return error_reply(400, "\"from\" (a revision) is required");
    co_return co_await diff(*from, *to);
  }
  co_return error_reply(404, "no such endpoint");
}

Result<config::SharedConfig> ConfigApi::stored() const {
  const auto& snapshot = agent_.snapshot();
  auto it = snapshot.find(agent_.keys().config_web());
  if (it == snapshot.end()) return config::SharedConfig{};
  Result<config::SharedConfig> shared =
      config::decode_shared_config(it->second.value, agent_.keys().config_web());
  if (shared.ok()) shared->revision = it->second.mod_revision;
  return shared;
}

asio::awaitable<Result<config::SharedConfig>> ConfigApi::stored_at(store::Revision revision) {
  if (revision == 0) co_return stored();
  store::Range range(agent_.keys().config_web());
  range.revision = revision;
  Result<store::RangeResult> read = co_await agent_.store().range(range);
  if (!read.ok()) {
    if (store::code_of(read.error()) == store::Code::kCompacted) {
      co_return make_error("revision {} is no longer in the store's history (compacted)", revision);
    }
    if (store::code_of(read.error()) == store::Code::kFutureRevision) {
      co_return make_error("revision {} is newer than the store's", revision);
    }
    co_return read.error();
  }
  if (read->kvs.empty()) co_return config::SharedConfig{};
  const store::KeyValue& kv = read->kvs.front();
  Result<config::SharedConfig> shared = config::decode_shared_config(
      kv.value, fmt::format("{} at revision {}", kv.key, kv.mod_revision));
  if (shared.ok()) shared->revision = kv.mod_revision;
  co_return shared;
}

ApiReply ConfigApi::status() const {
  Result<config::SharedConfig> current = stored();
  if (!current.ok()) {
    return error_reply(
        500, "the stored shared configuration cannot be read: " + current.error().describe());
  }
  const StoreKeys& keys = agent_.keys();
  const auto& snapshot = agent_.snapshot();
  json sites = json::array(), pools = json::array(), nodes = json::array();
  for (const auto& [name, site] : current->config.sites) sites.push_back(name);
  for (const auto& [name, pool] : current->config.pools) pools.push_back(name);
  std::set<std::string> names;
  for (const auto& [key, kv] : snapshot) {
    for (const std::string& prefix : {keys.nodes(), keys.config_statuses()}) {
      if (auto name = StoreKeys::name_under(prefix, key)) names.emplace(*name);
    }
  }
  for (const std::string& name : names) {
    json node = {{"node", name},
                 {"up", snapshot.contains(keys.node(name))},
                 {"revision", 0},
                 {"latest", 0},
                 {"problem", "nothing reported yet"}};
    if (auto reported = snapshot.find(keys.config_status(name)); reported != snapshot.end()) {
      if (auto decoded = decode_node_config_status(reported->second.value)) {
        node["revision"] = decoded->revision;
        node["latest"] = decoded->latest;
        node["problem"] = decoded->problem;
      }
    }
    nodes.push_back(std::move(node));
  }
  return ok_reply(
      {{"revision", current->revision}, {"sites", sites}, {"pools", pools}, {"nodes", nodes}});
}

asio::awaitable<ApiReply> ConfigApi::web(store::Revision revision) {
  Result<config::SharedConfig> shared = co_await stored_at(revision);
  if (!shared.ok()) co_return error_reply(revision == 0 ? 500 : 404, shared.error().describe());
  json answer = json::parse(config::encode_shared_config(*shared));
  answer["revision"] = shared->revision;
  co_return ok_reply(answer);
}

asio::awaitable<ApiReply> ConfigApi::diff(store::Revision from, store::Revision to) {
  Result<config::SharedConfig> before = co_await stored_at(from);
  if (!before.ok()) co_return error_reply(404, before.error().describe());
  Result<config::SharedConfig> after = co_await stored_at(to);
  if (!after.ok()) co_return error_reply(404, after.error().describe());
  co_return ok_reply({{"from", before->revision},
                      {"to", after->revision},
                      {"changes", diff_json(*before, *after)}});
}

asio::awaitable<ApiReply> ConfigApi::history(std::size_t limit) {
  Result<config::SharedConfig> current = stored();
  if (!current.ok()) co_return error_reply(500, current.error().describe());
  json revisions = json::array();
  std::string end;  // why the history stops where it does
  config::SharedConfig after = std::move(*current);
  while (after.revision != 0 && revisions.size() < limit) {
    Result<config::SharedConfig> before = co_await stored_at(after.revision - 1);
    if (!before.ok()) {
      end = before.error().describe();
      revisions.push_back({{"revision", after.revision}, {"changes", nullptr}});
      break;
    }
    json changes = diff_json(*before, after);
    revisions.push_back({{"revision", after.revision},
                         {"summary", summary_of(changes)},
                         {"changes", std::move(changes)}});
    after = std::move(*before);
  }
  if (end.empty()) {
    end = after.revision == 0 ? "the first revision" : fmt::format("limit {}", limit);
  }
  co_return ok_reply({{"revisions", revisions}, {"end", end}});
}

asio::awaitable<ApiReply> ConfigApi::remove(const json& body) {
  Result<config::SharedConfig> current = stored();
  if (!current.ok()) co_return error_reply(500, current.error().describe());
  if (!body.is_object()) {
    co_return error_reply(400, "the body must be {\"sites\": [...], \"pools\": [...]}");
  }
  json whole = json::parse(config::encode_shared_config(*current));
  std::set<std::string> removed_sites;
  std::vector<std::string> problems;
  for (const auto& [field, kind] : {std::pair{"sites", "site"}, {"pools", "pool"}}) {
    if (!body.contains(field)) continue;
    if (!body[field].is_array())
      co_return error_reply(400, fmt::format("\"{}\" must be a list", field));
    for (const json& name : body[field]) {
      json& list = whole[field];
      auto same = std::find_if(list.begin(), list.end(),
                               [&](const json& stored) { return stored["name"] == name; });
      if (same == list.end()) {
        problems.push_back(
            fmt::format("{} {} is not in the shared configuration", kind, name.dump()));
        continue;
      }
      if (std::string(kind) == "site") removed_sites.insert(name.get<std::string>());
      list.erase(same);
    }
  }
  // A clustered group that serves a removed site would fail on every node.
  const StoreKeys& keys = agent_.keys();
  for (const auto& [key, kv] : agent_.snapshot()) {
    auto group = StoreKeys::name_under(keys.groups(), key);
    if (!group) continue;
    auto spec = cluster::decode_group(kv.value, key);
    if (!spec.ok()) continue;
    for (const cluster::ResourceSpec& resource : spec->resources) {
      auto site = resource.parameters.find("site");
      if (resource.type == "website" && site != resource.parameters.end() &&
          removed_sites.contains(site->second)) {
        problems.push_back(fmt::format(
            "group \"{}\" serves site \"{}\" (resource \"{}\"): change or delete the group first",
            *group, site->second, resource.name));
      }
    }
  }
  if (!problems.empty()) {
    co_return error_reply(400, fmt::format("{}; nothing was deleted", fmt::join(problems, "; ")));
  }
  Result<config::SharedConfig> after =
      config::decode_shared_config(whole.dump(), "the shared configuration");
  if (!after.ok()) {
    co_return error_reply(400, fmt::format("{}; nothing was deleted", after.error().message));
  }
  if (body.value("dryRun", false)) {
    co_return ok_reply({{"revision", current->revision}, {"changes", diff_json(*current, *after)}});
  }
  // Named first: GCC 12 mishandles braced temporaries inside co_await expressions.
  std::vector<store::Compare> no_compare;
  std::vector<store::Operation> no_more;
  co_return co_await write_config(*current, *after, std::move(no_compare), std::move(no_more),
                                  "deleted");
}

asio::awaitable<ApiReply> ConfigApi::write_config(const config::SharedConfig& before,
                                                  const config::SharedConfig& after,
                                                  std::vector<store::Compare> compare,
                                                  std::vector<store::Operation> more,
                                                  std::string what) {
  const StoreKeys& keys = agent_.keys();
  json changes = diff_json(before, after);
  json answer = {{"revision", before.revision}, {"changes", changes}};
  if (changes.empty() && more.empty()) co_return ok_reply(answer);
  compare.push_back(before.revision == 0
                        ? store::Compare::absent(keys.config_web())
                        : store::Compare::mod_revision_is(
                              keys.config_web(), store::Compare::Op::kEqual, before.revision));
  if (!changes.empty()) {
    more.emplace_back(store::Put(keys.config_web(), config::encode_shared_config(after)));
  }
  store::Txn txn(std::move(compare), std::move(more));
  Result<store::TxnResult> written = co_await agent_.store().txn(std::move(txn));
  if (!written.ok()) {
    co_return error_reply(503,
                          "the store did not accept the change: " + written.error().describe());
  }
  if (!written->succeeded) {
    co_return error_reply(409, fmt::format("the shared configuration or its key changed "
                                           "meanwhile; nothing was {}; try again",
                                           what));
  }
  // The next request (a diff, a history) must see this write.
  co_await agent_.caught_up(written->revision, kCatchUpLimit);
  if (!changes.empty()) {
    agent_.record("", "", "config-changed",
                  fmt::format("shared configuration {}: {}", what, summary_of(changes)));
  }
  answer["revision"] = written->revision;
  co_return ok_reply(answer);
}

ApiReply ConfigApi::key() const {
  const auto& snapshot = agent_.snapshot();
  auto it = snapshot.find(agent_.keys().data_key());
  if (it == snapshot.end()) {
    return error_reply(404, "the cluster has no data key yet (clusweb config init-key creates it)");
  }
  Result<std::string> id = secrets::record_key_id(it->second.value);
  if (!id.ok()) {
    return error_reply(500, "the stored data key record is unreadable: " + id.error().describe());
  }
  return ok_reply({{"record", it->second.value}, {"keyId", *id}});
}

asio::awaitable<ApiReply> ConfigApi::create_key(const json& body) {
  if (!body.is_object() || !body.contains("record") || !body["record"].is_string()) {
    co_return error_reply(400, "the body must be {\"record\": \"...\"}");
  }
  const std::string record = body["record"].get<std::string>();
  Result<std::string> id = secrets::record_key_id(record);
  if (!id.ok()) co_return error_reply(400, "the data key record: " + id.error().describe());
  const std::string key = agent_.keys().data_key();
  store::Txn txn({store::Compare::absent(key)}, {store::Put(key, record)});
  Result<store::TxnResult> written = co_await agent_.store().txn(std::move(txn));
  if (!written.ok()) {
    co_return error_reply(503, "the store did not accept the key: " + written.error().describe());
  }
  if (!written->succeeded) {
    co_return error_reply(409,
                          "the cluster already has a data key; nodes join it with "
                          "clusweb config join-key");
  }
  co_await agent_.caught_up(written->revision, kCatchUpLimit);
  agent_.record("", "", "data-key-created", fmt::format("the cluster's data key {}", *id));
  co_return ok_reply({{"keyId", *id}, {"revision", written->revision}});
}

asio::awaitable<ApiReply> ConfigApi::import(const json& body) {
  if (!body.is_object() || !body.contains("web") || !body["web"].is_object()) {
    co_return error_reply(400, "the body must be {\"key\": ..., \"web\": {...}}");
  }
  Result<config::SharedConfig> current = stored();
  if (!current.ok()) co_return error_reply(500, current.error().describe());
  json web = body["web"];
  web["revision"] = 0;
  Result<config::SharedConfig> imported =
      config::decode_shared_config(web.dump(), "the imported configuration");
  if (!imported.ok()) {
    co_return error_reply(400, fmt::format("{}; nothing was imported", imported.error().message));
  }
  // The key that sealed the import's secrets must be the cluster's, or become it (checked
  // against the import's record, below).
  const StoreKeys& keys = agent_.keys();
  std::vector<store::Compare> compare;
  std::vector<store::Operation> more;
  const auto& snapshot = agent_.snapshot();
  auto stored_key = snapshot.find(keys.data_key());
  if (body.contains("key") && body["key"].is_string()) {
    const std::string record = body["key"].get<std::string>();
    Result<std::string> id = secrets::record_key_id(record);
    if (!id.ok()) co_return error_reply(400, "the imported data key: " + id.error().describe());
    if (stored_key == snapshot.end()) {
      compare.push_back(store::Compare::absent(keys.data_key()));
      more.emplace_back(store::Put(keys.data_key(), record));
    } else {
      Result<std::string> ours = secrets::record_key_id(stored_key->second.value);
      if (!ours.ok() || *ours != *id) {
        co_return error_reply(
            409, fmt::format("this cluster has its own data key ({}), not the one of the "
                             "export ({}); import into a cluster without a data key; nothing "
                             "was imported",
                             ours.ok() ? *ours : "unreadable", *id));
      }
    }
  }
  const std::string* import_record = body.contains("key") && body["key"].is_string()
                                         ? &body["key"].get_ref<const std::string&>()
                                         : nullptr;
  if (Status sealed = check_sealed_keys(imported->config, import_record); !sealed.ok()) {
    co_return error_reply(400, sealed.error().message + "; nothing was imported");
  }
  if (body.value("dryRun", false)) {
    co_return ok_reply(
        {{"revision", current->revision}, {"changes", diff_json(*current, *imported)}});
  }
  co_return co_await write_config(*current, *imported, std::move(compare), std::move(more),
                                  "imported");
}

Status ConfigApi::check_sealed_keys(const config::WebConfig& config,
                                    const std::string* record) const {
  std::string cluster_key;
  if (record == nullptr) {
    auto stored = agent_.snapshot().find(agent_.keys().data_key());
    if (stored != agent_.snapshot().end()) record = &stored->second.value;
  }
  if (record != nullptr) {
    Result<std::string> id = secrets::record_key_id(*record);
    if (id.ok()) cluster_key = *id;
  }
  // Every sealed value with what it belongs to.
  std::vector<std::pair<std::string, const std::string*>> sealed_values;
  for (const auto& [name, site] : config.sites) {
    for (const config::Binding& binding : site.bindings) {
      if (binding.key_sealed.empty()) continue;
      sealed_values.emplace_back(
          fmt::format("site \"{}\" binding {}: its key", name, binding.url()), &binding.key_sealed);
    }
  }
  for (const auto& [name, pool] : config.pools) {
    for (const auto& [variable, value] : pool.secret_environment_sealed) {
      sealed_values.emplace_back(fmt::format("pool \"{}\" secret {}", name, variable), &value);
    }
  }
  for (const auto& [what, value] : sealed_values) {
    Result<std::string> sealed_id = secrets::sealed_key_id(*value);
    if (!sealed_id.ok()) return make_error("{}: {}", what, sealed_id.error().message);
    const std::string& id = *sealed_id;
    if (cluster_key.empty()) {
      return make_error(
          "{} is sealed with data key {}, and the cluster has no data key "
          "(clusweb config init-key)",
          what, id);
    }
    if (id != cluster_key) {
      return make_error("{} is sealed with data key {}, not the cluster's ({})", what, id,
                        cluster_key);
    }
  }
  return {};
}

Result<ConfigApi::WebChange> ConfigApi::web_change(const json& web) const {
  if (!web.is_object()) {
    return make_error("\"web\" must be {{\"sites\": [...], \"pools\": [...]}}");
  }
  Result<config::SharedConfig> current = stored();
  if (!current.ok()) {
    return make_error("the stored shared configuration cannot be read: {}",
                      current.error().describe());
  }
  // Merged by name in the JSON form, then decoded as a whole: a site may use a pool stored
  // before, and every check (listeners and hosts, pools named by applications) sees all.
  json whole = json::parse(config::encode_shared_config(*current));
  WebChange change;
  std::vector<std::pair<std::string, std::string>> requested;  // (kind, name)
  for (const auto& [field, kind] : {std::pair{"sites", "site"}, {"pools", "pool"}}) {
    if (!web.contains(field)) continue;
    if (!web[field].is_array()) return make_error("\"web.{}\" must be an array", field);
    for (const json& object : web[field]) {
      if (!object.is_object() || !object.contains("name") || !object["name"].is_string()) {
        return make_error("every entry of \"web.{}\" must be an object with a name", field);
      }
      const std::string name = object["name"].get<std::string>();
      requested.emplace_back(kind, name);
      json& list = whole[field];
      auto same = std::find_if(list.begin(), list.end(),
                               [&](const json& stored) { return stored["name"] == name; });
      if (same == list.end()) {
        list.push_back(object);
      } else {
        *same = object;
      }
    }
  }
  Result<config::SharedConfig> merged =
      config::decode_shared_config(whole.dump(), "the shared configuration");
  if (!merged.ok()) return make_error("{}", merged.error().message);
  auto classify = [&](const auto& before, const auto& after, const std::string& name) {
    auto it = before.find(name);
    if (it == before.end()) return &change.created;
    return it->second == after.at(name) ? &change.unchanged : &change.changed;
  };
  for (const auto& [kind, name] : requested) {
    std::vector<std::string>* list =
        kind == "site" ? classify(current->config.sites, merged->config.sites, name)
                       : classify(current->config.pools, merged->config.pools, name);
    list->push_back(fmt::format("{}/{}", kind, name));
  }
  if (Status keys = check_sealed_keys(merged->config); !keys.ok()) return keys.error();
  change.diff = diff_json(*current, *merged);
  if (change.created.empty() && change.changed.empty()) return change;
  const std::string value = config::encode_shared_config({0, merged->config});
  change.write = store::Put(agent_.keys().config_web(), value);
  change.compare = current->revision == 0 ? store::Compare::absent(agent_.keys().config_web())
                                          : store::Compare::mod_revision_is(
                                                agent_.keys().config_web(),
                                                store::Compare::Op::kEqual, current->revision);
  change.summary = "shared configuration: " + summary_of(change.diff);
  return change;
}

}  // namespace clusweb::agent
