#include "cluster/store_keys.h"

#include <algorithm>
#include <nlohmann/json.hpp>

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

void FailureHistory::trim(WallTime now, Milliseconds keep) {
  std::erase_if(entries, [&](const Entry& entry) { return entry.record.at <= now - keep; });
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
    list.push_back({{"node", entry.record.from_node},
                    {"atUnixMs", to_unix_ms(entry.record.at)},
                    {"reason", entry.reason}});
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
    history.entries.push_back(std::move(entry));
  }
  return history;
}

}  // namespace clusweb::cluster
