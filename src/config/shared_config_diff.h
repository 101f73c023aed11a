#pragma once

// What changes between two revisions of the shared web configuration, object by object and
// field by field, for `clusweb config diff`, `clusweb apply --dry-run` and
// `clusweb config history`. Objects compare as the web service compares them (Site and
// ApplicationPool equality): where a manifest came from is not part of it.

#include <string>
#include <vector>

#include "config/web_config.h"

namespace clusweb::config {

struct FieldChange {
  std::string path;  // "physicalPath", "bindings[0].url", "environment.MODE"
  // The values as JSON text; "" where the field is absent on that side.
  std::string before;
  std::string after;
};

struct ObjectChange {
  enum class Type { kCreated, kChanged, kRemoved };
  std::string kind;  // "site" or "pool"
  std::string name;
  Type type = Type::kChanged;
  // Every field of a created or removed object; the differing ones of a changed object.
  std::vector<FieldChange> fields;
};

std::string_view to_string(ObjectChange::Type type);

// The sites and pools of `before` and `after` (the server settings are not compared): sites
// first, then pools, each by name.
std::vector<ObjectChange> diff_web_objects(const WebConfig& before, const WebConfig& after);

// JSON text for the APIs: [{"kind", "name", "change", "fields": [{"path", "before", "after"}]}],
// values as JSON values (null where absent).
std::string diff_to_json(const std::vector<ObjectChange>& changes);

}  // namespace clusweb::config
