#include "config/shared_config_diff.h"

#include <fmt/format.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "config/web_config_json.h"

namespace clusweb::config {
namespace {

using Json = nlohmann::ordered_json;  // the fields in the order of the JSON form
using Fields = std::map<std::string, std::string>;

bool is_scalar_list(const Json& value) {
  for (const Json& item : value) {
    if (item.is_object() || item.is_array()) return false;
  }
  return true;
}

// Every field of one object as path -> JSON text, without source locations; a list of plain
// values is one field, a list of objects one field per member of each.
void flatten(const Json& value, const std::string& path, Fields& fields) {
  if (value.is_object()) {
    if (value.empty()) fields[path] = "{}";
    for (const auto& [name, member] : value.items()) {
      if (name == "where") continue;
      flatten(member, path.empty() ? name : fmt::format("{}.{}", path, name), fields);
    }
  } else if (value.is_array() && !is_scalar_list(value)) {
    for (std::size_t i = 0; i < value.size(); ++i) {
      flatten(value[i], fmt::format("{}[{}]", path, i), fields);
    }
  } else {
    fields[path] = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  }
}

// The objects of one kind ("sites" or "pools") of `config`, by name, flattened.
std::map<std::string, Fields> objects(const Json& config, const char* kind) {
  std::map<std::string, Fields> found;
  for (const Json& object : config[kind]) {
    flatten(object, "", found[object["name"].get<std::string>()]);
  }
  return found;
}

bool is_empty_value(const std::string& text) {
  return text == "\"\"" || text == "[]" || text == "{}";
}

// Fields worth showing for a whole object: the empty ones are defaults nobody wrote.
std::vector<FieldChange> whole(const Fields& fields, bool created) {
  std::vector<FieldChange> listed;
  for (const auto& [path, value] : fields) {
    if (path == "name" || is_empty_value(value)) continue;
    listed.push_back(created ? FieldChange{path, "", value} : FieldChange{path, value, ""});
  }
  return listed;
}

}  // namespace

std::string_view to_string(ObjectChange::Type type) {
  switch (type) {
    case ObjectChange::Type::kCreated:
      return "created";
    case ObjectChange::Type::kChanged:
      return "changed";
    case ObjectChange::Type::kRemoved:
      return "removed";
  }
  return "changed";
}

std::vector<ObjectChange> diff_web_objects(const WebConfig& before, const WebConfig& after) {
  const Json old_json = Json::parse(to_json(before));
  const Json new_json = Json::parse(to_json(after));
  std::vector<ObjectChange> changes;
  for (const auto& [plural, kind] : {std::pair{"sites", "site"}, {"pools", "pool"}}) {
    const std::map<std::string, Fields> old_objects = objects(old_json, plural);
    const std::map<std::string, Fields> new_objects = objects(new_json, plural);
    std::set<std::string> names;
    for (const auto& [name, fields] : old_objects) names.insert(name);
    for (const auto& [name, fields] : new_objects) names.insert(name);
    for (const std::string& name : names) {
      auto old_it = old_objects.find(name);
      auto new_it = new_objects.find(name);
      ObjectChange change{kind, name, ObjectChange::Type::kChanged, {}};
      if (old_it == old_objects.end()) {
        change.type = ObjectChange::Type::kCreated;
        change.fields = whole(new_it->second, true);
      } else if (new_it == new_objects.end()) {
        change.type = ObjectChange::Type::kRemoved;
        change.fields = whole(old_it->second, false);
      } else {
        std::set<std::string> paths;
        for (const auto& [path, value] : old_it->second) paths.insert(path);
        for (const auto& [path, value] : new_it->second) paths.insert(path);
        for (const std::string& path : paths) {
          auto was = old_it->second.find(path);
          auto is = new_it->second.find(path);
          std::string old_value = was == old_it->second.end() ? "" : was->second;
          std::string new_value = is == new_it->second.end() ? "" : is->second;
          // A field that appears as an empty default (a binding's "key" without TLS) is none.
          const bool appears_empty = (old_value.empty() && is_empty_value(new_value)) ||
                                     (new_value.empty() && is_empty_value(old_value));
          if (old_value != new_value && !appears_empty) {
            change.fields.push_back({path, std::move(old_value), std::move(new_value)});
          }
        }
        if (change.fields.empty()) continue;
      }
      changes.push_back(std::move(change));
    }
  }
  return changes;
}

std::string diff_to_json(const std::vector<ObjectChange>& changes) {
  auto value = [](const std::string& text) {
    return text.empty() ? Json(nullptr) : Json::parse(text);
  };
  Json list = Json::array();
  for (const ObjectChange& change : changes) {
    Json fields = Json::array();
    for (const FieldChange& field : change.fields) {
      fields.push_back(
          {{"path", field.path}, {"before", value(field.before)}, {"after", value(field.after)}});
    }
    list.push_back({{"kind", change.kind},
                    {"name", change.name},
                    {"change", to_string(change.type)},
                    {"fields", std::move(fields)}});
  }
  return list.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace clusweb::config
