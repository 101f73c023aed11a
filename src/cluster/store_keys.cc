#include "cluster/store_keys.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "base/duration.h"

namespace clusweb::cluster {
namespace {

using nlohmann::json;

constexpr size_t kMaxName = 64;

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

int64_t to_unix_ms(WallTime time) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
}

WallTime from_unix_ms(int64_t ms) {
  return WallTime(std::chrono::duration_cast<WallTime::duration>(std::chrono::milliseconds(ms)));
}

Error bad_value(std::string_view key, std::string_view what) {
  Error error = make_error("unreadable value: {}", what);
  error.where = std::string(key);
  return error;
}

// Parses without exceptions; a JSON object is required.
std::optional<json> parse_object(std::string_view text) {
  json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded() || !value.is_object()) return std::nullopt;
  return value;
}

}  // namespace

Status check_name(std::string_view kind, std::string_view name) {
  if (name.empty()) return make_error("{} name is empty", kind);
  if (name.size() > kMaxName) {
    return make_error("{} name \"{}\" is longer than {} characters", kind, name, kMaxName);
  }
  if (name == "." || name == "..") return make_error("{} name \"{}\" is not allowed", kind, name);
  auto bad = std::find_if_not(name.begin(), name.end(), name_char);
  if (bad != name.end()) {
    return make_error("{} name \"{}\" contains '{}' (allowed: letters, digits, '.', '_', '-')",
                      kind, name, *bad);
  }
  return ok_status();
}

StoreKeys::StoreKeys(std::string_view cluster) : root_("/clusweb/" + std::string(cluster) + "/") {}

std::string StoreKeys::node_admin(std::string_view name) const {
  return root_ + "node-admin/" + std::string(name);
}

std::string StoreKeys::placement(std::string_view group) const {
  return placements() + std::string(group);
}

std::string StoreKeys::released(std::string_view group) const {
  return root_ + "released/" + std::string(group);
}

std::string StoreKeys::failures(std::string_view group) const {
  return root_ + "failures/" + std::string(group);
}

std::string StoreKeys::event(uint64_t sequence) const {
  return events() + fmt::format("{:020}", sequence);
}

std::optional<std::string_view> StoreKeys::name_under(std::string_view prefix,
                                                      std::string_view key) {
  if (!key.starts_with(prefix) || key.size() == prefix.size()) return std::nullopt;
  std::string_view name = key.substr(prefix.size());
  if (name.find('/') != std::string_view::npos) return std::nullopt;
  return name;
}

std::string encode(const PlacementValue& value) {
  return json{
      {"node", value.node}, {"failoversSeen", value.failovers_seen}, {"reason", value.reason}}
      .dump();
}

Result<PlacementValue> decode_placement(std::string_view text, std::string_view key) {
  auto object = parse_object(text);
  if (!object) return bad_value(key, "not a JSON object");
  const json& value = *object;
  PlacementValue placement;
  auto node = value.find("node");
  if (node == value.end() || !node->is_string()) return bad_value(key, "\"node\" missing");
  placement.node = node->get<std::string>();
  if (!placement.node.empty()) {
    if (Status named = check_name("node", placement.node); !named) {
      return bad_value(key, named.error().message);
    }
  }
  if (auto seen = value.find("failoversSeen"); seen != value.end()) {
    if (!seen->is_number_unsigned()) return bad_value(key, "\"failoversSeen\" is not a count");
    placement.failovers_seen = seen->get<uint64_t>();
  }
  if (auto reason = value.find("reason"); reason != value.end() && reason->is_string()) {
    placement.reason = reason->get<std::string>();
  }
  return placement;
}

std::string encode(const Unmanaged& value) {
  json out = json::object();
  if (value.group) out["group"] = true;
  if (!value.resources.empty()) out["resources"] = value.resources;
  return out.dump();
}

Result<Unmanaged> decode_unmanaged(std::string_view text, std::string_view key) {
  auto object = parse_object(text);
  if (!object) return bad_value(key, "not a JSON object");
  const json& value = *object;
  Unmanaged unmanaged;
  if (auto group = value.find("group"); group != value.end()) {
    if (!group->is_boolean()) return bad_value(key, "\"group\" is not true or false");
    unmanaged.group = group->get<bool>();
  }
  if (auto resources = value.find("resources"); resources != value.end()) {
    if (!resources->is_array()) return bad_value(key, "\"resources\" is not a list");
    for (const json& name : *resources) {
      if (!name.is_string()) return bad_value(key, "\"resources\" holds a non-string");
      unmanaged.resources.push_back(name.get<std::string>());
    }
  }
  return unmanaged;
}

void FailureHistory::trim(WallTime now, Milliseconds keep) {
  // Hard and fatal failovers hold until cleared, whatever their age.
  std::erase_if(entries, [&](const Entry& entry) {
    return entry.record.failure == FailureClass::kSoft && entry.record.at <= now - keep;
  });
}

std::vector<FailoverRecord> FailureHistory::records() const {
  std::vector<FailoverRecord> records;
  records.reserve(entries.size());
  for (const Entry& entry : entries) records.push_back(entry.record);
  return records;
}

std::string encode(const FailureHistory& history) {
  json list = json::array();
  for (const auto& entry : history.entries) {
    json item{{"node", entry.record.from_node},
              {"atUnixMs", to_unix_ms(entry.record.at)},
              {"reason", entry.reason}};
    if (entry.record.failure != FailureClass::kSoft)
      item["class"] = to_string(entry.record.failure);
    list.push_back(std::move(item));
  }
  return json{{"failovers", std::move(list)}}.dump();
}

Result<FailureHistory> decode_failures(std::string_view text, std::string_view key) {
  auto object = parse_object(text);
  if (!object) return bad_value(key, "not a JSON object");
  auto list = object->find("failovers");
  if (list == object->end() || !list->is_array()) return bad_value(key, "\"failovers\" missing");
  FailureHistory history;
  for (const json& item : *list) {
    auto node = item.find("node");
    auto at = item.find("atUnixMs");
    if (!item.is_object() || node == item.end() || !node->is_string() || at == item.end() ||
        !at->is_number_integer()) {
      return bad_value(key, "a failover needs \"node\" and \"atUnixMs\"");
    }
    FailureHistory::Entry entry;
    entry.record.from_node = node->get<std::string>();
    entry.record.at = from_unix_ms(at->get<int64_t>());
    if (auto reason = item.find("reason"); reason != item.end() && reason->is_string()) {
      entry.reason = reason->get<std::string>();
    }
    if (auto failure = item.find("class"); failure != item.end()) {
      if (*failure == "hard") {
        entry.record.failure = FailureClass::kHard;
      } else if (*failure == "fatal") {
        entry.record.failure = FailureClass::kFatal;
      } else if (*failure != "soft") {
        return bad_value(key, "a failover's \"class\" must be soft, hard or fatal");
      }
    }
    history.entries.push_back(std::move(entry));
  }
  return history;
}

namespace {

constexpr std::pair<RestartAction, std::string_view> kRestartActions[] = {
    {RestartAction::kNoRestart, "no-restart"},
    {RestartAction::kRestartNoFailover, "restart-no-failover"},
    {RestartAction::kRestartAndFailover, "restart-and-failover"},
};

std::string_view restart_action_name(RestartAction action) {
  for (const auto& [value, name] : kRestartActions) {
    if (value == action) return name;
  }
  return "restart-and-failover";
}

json encode_policy(const ResourcePolicy& policy) {
  return json{{"looksAliveInterval", format_duration(policy.looks_alive_interval)},
              {"isAliveInterval", format_duration(policy.is_alive_interval)},
              {"pendingTimeout", format_duration(policy.pending_timeout)},
              {"probeTimeout", format_duration(policy.probe_timeout)},
              {"terminateTimeout", format_duration(policy.terminate_timeout)},
              {"restartAction", restart_action_name(policy.restart_action)},
              {"restartThreshold", policy.restart_threshold},
              {"restartPeriod", format_duration(policy.restart_period)},
              {"restartDelay", format_duration(policy.restart_delay)},
              {"retryPeriodOnFailure", format_duration(policy.retry_period_on_failure)}};
}

// Reads one JSON document field by field; the first problem is kept, named
// by the store key and the field's path.
class JsonReader {
 public:
  explicit JsonReader(std::string_view key) : key_(key) {}

  const std::optional<Error>& error() const { return error_; }

  void fail(std::string_view path, std::string_view what) {
    if (!error_) error_ = bad_value(key_, fmt::format("field \"{}\": {}", path, what));
  }

  // An object whose fields are all in `known`.
  bool object(const json& value, std::string_view path,
              std::initializer_list<std::string_view> known) {
    if (!value.is_object()) {
      fail(path, "must be an object");
      return false;
    }
    for (const auto& [name, item] : value.items()) {
      if (std::find(known.begin(), known.end(), name) == known.end()) {
        fail(join(path, name), "unknown field");
        return false;
      }
    }
    return true;
  }

  void string(const json& object, std::string_view name, std::string_view path, std::string& out) {
    if (auto it = object.find(name); it != object.end()) {
      if (!it->is_string()) return fail(join(path, name), "must be a string");
      out = it->get<std::string>();
    }
  }

  void integer(const json& object, std::string_view name, std::string_view path, int& out) {
    if (auto it = object.find(name); it != object.end()) {
      if (!it->is_number_integer()) return fail(join(path, name), "must be an integer");
      out = it->get<int>();
    }
  }

  void duration(const json& object, std::string_view name, std::string_view path,
                Milliseconds& out) {
    if (auto it = object.find(name); it != object.end()) {
      if (!it->is_string()) return fail(join(path, name), "must be a duration like \"15m\"");
      auto parsed = parse_duration(it->get<std::string>());
      if (!parsed) return fail(join(path, name), parsed.error().message);
      out = *parsed;
    }
  }

  void strings(const json& object, std::string_view name, std::string_view path,
               std::vector<std::string>& out) {
    auto it = object.find(name);
    if (it == object.end()) return;
    if (!it->is_array()) return fail(join(path, name), "must be a list of strings");
    for (const json& item : *it) {
      if (!item.is_string()) return fail(join(path, name), "must be a list of strings");
      out.push_back(item.get<std::string>());
    }
  }

  static std::string join(std::string_view path, std::string_view name) {
    return path.empty() ? std::string(name) : fmt::format("{}.{}", path, name);
  }

 private:
  std::string key_;
  std::optional<Error> error_;
};

void decode_policy(JsonReader& reader, const json& value, const std::string& path,
                   ResourcePolicy& policy) {
  if (!reader.object(value, path,
                     {"looksAliveInterval", "isAliveInterval", "pendingTimeout", "probeTimeout",
                      "terminateTimeout", "restartAction", "restartThreshold", "restartPeriod",
                      "restartDelay", "retryPeriodOnFailure"})) {
    return;
  }
  reader.duration(value, "looksAliveInterval", path, policy.looks_alive_interval);
  reader.duration(value, "isAliveInterval", path, policy.is_alive_interval);
  reader.duration(value, "pendingTimeout", path, policy.pending_timeout);
  reader.duration(value, "probeTimeout", path, policy.probe_timeout);
  reader.duration(value, "terminateTimeout", path, policy.terminate_timeout);
  std::string action;
  reader.string(value, "restartAction", path, action);
  if (!action.empty()) {
    auto it = std::find_if(std::begin(kRestartActions), std::end(kRestartActions),
                           [&](const auto& entry) { return entry.second == action; });
    if (it == std::end(kRestartActions)) {
      reader.fail(JsonReader::join(path, "restartAction"),
                  "must be no-restart, restart-no-failover or restart-and-failover");
    } else {
      policy.restart_action = it->first;
    }
  }
  reader.integer(value, "restartThreshold", path, policy.restart_threshold);
  reader.duration(value, "restartPeriod", path, policy.restart_period);
  reader.duration(value, "restartDelay", path, policy.restart_delay);
  reader.duration(value, "retryPeriodOnFailure", path, policy.retry_period_on_failure);
}

void decode_resource(JsonReader& reader, const json& value, const std::string& path,
                     ResourceSpec& resource) {
  if (!reader.object(value, path,
                     {"name", "type", "parameters", "dependsOn", "possibleOwners", "policy"})) {
    return;
  }
  reader.string(value, "name", path, resource.name);
  reader.string(value, "type", path, resource.type);
  if (auto it = value.find("parameters"); it != value.end()) {
    if (!it->is_object())
      return reader.fail(JsonReader::join(path, "parameters"), "must be an object");
    for (const auto& [name, item] : it->items()) {
      if (!item.is_string()) {
        return reader.fail(JsonReader::join(path, "parameters." + name), "must be a string");
      }
      resource.parameters[name] = item.get<std::string>();
    }
  }
  if (auto it = value.find("dependsOn"); it != value.end()) {
    const std::string depends = JsonReader::join(path, "dependsOn");
    if (!it->is_array()) return reader.fail(depends, "must be a list of lists of names");
    for (const json& any_of : *it) {
      if (!any_of.is_array()) return reader.fail(depends, "must be a list of lists of names");
      std::vector<std::string> names;
      for (const json& name : any_of) {
        if (!name.is_string()) return reader.fail(depends, "must be a list of lists of names");
        names.push_back(name.get<std::string>());
      }
      resource.depends_on.push_back(std::move(names));
    }
  }
  reader.strings(value, "possibleOwners", path, resource.possible_owners);
  if (auto it = value.find("policy"); it != value.end()) {
    decode_policy(reader, *it, JsonReader::join(path, "policy"), resource.policy);
  }
}

}  // namespace

std::string encode(const GroupSpec& group) {
  json resources = json::array();
  for (const ResourceSpec& resource : group.resources) {
    resources.push_back({{"name", resource.name},
                         {"type", resource.type},
                         {"parameters", resource.parameters},
                         {"dependsOn", resource.depends_on},
                         {"possibleOwners", resource.possible_owners},
                         {"policy", encode_policy(resource.policy)}});
  }
  json value{{"name", group.name},
             {"preferredOwners", group.preferred_owners},
             {"failoverPeriod", format_duration(group.failover_period)},
             {"retryPeriodOnFailure", format_duration(group.retry_period_on_failure)},
             {"failback", group.failback == FailbackPolicy::kAllow ? "allow" : "prevent"},
             {"resources", std::move(resources)}};
  if (group.failover_threshold) value["failoverThreshold"] = *group.failover_threshold;
  if (group.failback_window) {
    value["failbackWindow"] = {{"start", group.failback_window->start_hour},
                               {"end", group.failback_window->end_hour}};
  }
  if (!group.anti_affinity_classes.empty()) {
    value["antiAffinityClasses"] = group.anti_affinity_classes;
  }
  return value.dump();
}

Result<GroupSpec> decode_group(std::string_view text, std::string_view key) {
  auto object = parse_object(text);
  if (!object) return bad_value(key, "not a JSON object");
  const json& value = *object;
  JsonReader reader(key);
  GroupSpec group;
  if (reader.object(
          value, "",
          {"name", "preferredOwners", "failoverThreshold", "failoverPeriod", "retryPeriodOnFailure",
           "failback", "failbackWindow", "antiAffinityClasses", "resources"})) {
    reader.string(value, "name", "", group.name);
    reader.strings(value, "preferredOwners", "", group.preferred_owners);
    if (value.contains("failoverThreshold")) {
      int threshold = 0;
      reader.integer(value, "failoverThreshold", "", threshold);
      group.failover_threshold = threshold;
    }
    reader.duration(value, "failoverPeriod", "", group.failover_period);
    reader.duration(value, "retryPeriodOnFailure", "", group.retry_period_on_failure);
    std::string failback = "prevent";
    reader.string(value, "failback", "", failback);
    if (failback == "allow") {
      group.failback = FailbackPolicy::kAllow;
    } else if (failback != "prevent") {
      reader.fail("failback", "must be allow or prevent");
    }
    if (auto it = value.find("failbackWindow"); it != value.end()) {
      if (reader.object(*it, "failbackWindow", {"start", "end"})) {
        FailbackWindow window;
        if (!it->contains("start") || !it->contains("end")) {
          reader.fail("failbackWindow", "needs \"start\" and \"end\"");
        }
        reader.integer(*it, "start", "failbackWindow", window.start_hour);
        reader.integer(*it, "end", "failbackWindow", window.end_hour);
        group.failback_window = window;
      }
    }
    reader.strings(value, "antiAffinityClasses", "", group.anti_affinity_classes);
    if (auto it = value.find("resources"); it != value.end()) {
      if (!it->is_array()) {
        reader.fail("resources", "must be a list");
      } else {
        for (size_t i = 0; i < it->size(); ++i) {
          ResourceSpec resource;
          decode_resource(reader, (*it)[i], fmt::format("resources[{}]", i), resource);
          group.resources.push_back(std::move(resource));
        }
      }
    }
  }
  if (reader.error()) return *reader.error();
  if (Status valid = validate(group); !valid) return bad_value(key, valid.error().describe());
  return group;
}

}  // namespace clusweb::cluster
