#include "config/group_manifest.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <limits>
#include <map>
#include <optional>
#include <utility>

#include "base/duration.h"
#include "cluster/store_keys.h"
#include "config/manifest_reader.h"

namespace clusweb::config {
namespace {

using cluster::GroupSpec;
using cluster::Milliseconds;
using cluster::ResourcePolicy;
using cluster::ResourceSpec;
using manifest::Field;
using manifest::indexed;
using manifest::join_path;
using manifest::peek_name;
using manifest::Problems;
using manifest::subject_of;
using manifest::suggestion;
using manifest::unknown_message;

constexpr std::string_view kGroupKind = "Group";
// The document kinds of a manifest, in the order messages list them; all but Group are web
// kinds, listed in GroupManifests::web_documents.
constexpr std::string_view kKinds[] = {kGroupKind, "Site", "ApplicationPool", "WebServer"};

// ---------------------------------------------------------------------------------------------
// The policy fields: one table for manifests and `clusweb resource set --policy`.

struct PolicyField {
  std::string_view name;
  Milliseconds ResourcePolicy::*duration;  // null: restartAction, restartThreshold
  bool zero_allowed;
};

constexpr PolicyField kPolicyFields[] = {
    {"looksAliveInterval", &ResourcePolicy::looks_alive_interval, false},
    {"isAliveInterval", &ResourcePolicy::is_alive_interval, false},
    {"pendingTimeout", &ResourcePolicy::pending_timeout, false},
    {"probeTimeout", &ResourcePolicy::probe_timeout, false},
    {"terminateTimeout", &ResourcePolicy::terminate_timeout, false},
    {"restartAction", nullptr, false},
    {"restartThreshold", nullptr, false},
    {"restartPeriod", &ResourcePolicy::restart_period, false},
    {"restartDelay", &ResourcePolicy::restart_delay, true},
    {"retryPeriodOnFailure", &ResourcePolicy::retry_period_on_failure, false},
};

constexpr std::pair<cluster::RestartAction, std::string_view> kRestartActions[] = {
    {cluster::RestartAction::kNoRestart, "no-restart"},
    {cluster::RestartAction::kRestartNoFailover, "restart-no-failover"},
    {cluster::RestartAction::kRestartAndFailover, "restart-and-failover"},
};

// ---------------------------------------------------------------------------------------------
// Resource types and the parameters this loader checks. The resource types read their
// parameters again when they run; these rules catch typos and omissions at apply time.

struct TypeRule {
  std::string_view type;
  std::vector<std::string_view> required;
  std::vector<std::string_view> known;  // empty: any parameter is passed on (script)
};

const std::vector<TypeRule>& type_rules() {
  static const std::vector<TypeRule> rules = {
      {"ip", {"address", "interface"}, {"address", "interface", "lifetime"}},
      {"mount",
       {"device", "directory", "fstype"},
       {"device", "directory", "fstype", "options", "statusFile", "writeCheck", "killGrace"}},
      {"ocf", {"agent"}, {}},
      {"script", {"path"}, {}},
      {"website",
       {"site"},
       {"site", "pool", "probePath", "expectStatus", "probeTimeout", "workerGrace", "adminSocket"}},
  };
  return rules;
}

// ---------------------------------------------------------------------------------------------
// Messages.

// "a" or "an" before a type name.
std::string with_article(std::string_view type) {
  const bool vowel =
      !type.empty() && std::string_view("aeiou").find(type.front()) != std::string_view::npos;
  return fmt::format("{} {}", vowel ? "an" : "a", type);
}

// ---------------------------------------------------------------------------------------------
// Reading YAML: the values of Group documents.

class GroupReader : public manifest::Reader {
 public:
  GroupReader(std::string file, Problems& problems, const GroupLoadOptions& options)
      : Reader(std::move(file), problems), problems_(problems), options_(options) {}

  std::size_t problem_count() const { return problems_.count(); }
  const PolicyDefaults& policy_defaults() const { return options_.policy_defaults; }

  // A cluster name (group, resource, node): cluster::check_name's rule.
  std::optional<std::string> name_value(const Field& field, std::string_view kind) {
    auto text = string_value(field);
    if (!text) return std::nullopt;
    if (Status named = cluster::check_name(kind, *text); !named.ok()) {
      fail(field, named.error().message);
      return std::nullopt;
    }
    return text;
  }

  // A plain (unquoted) decimal integer, 0 or more.
  std::optional<int> count_value(const Field& field) {
    int number = 0;
    bool ok = field.value.IsScalar() && field.value.Tag() != "!";
    if (ok) {
      const std::string& text = field.value.Scalar();
      const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
      ok = error == std::errc() && end == text.data() + text.size() && !text.empty();
    }
    if (!ok || number < 0) {
      fail(field,
           fmt::format("must be a whole number from 0 to {}", std::numeric_limits<int>::max()));
      return std::nullopt;
    }
    return number;
  }

  // {start: H, end: H}, hours 0 to 23.
  std::optional<cluster::FailbackWindow> failback_window(const Field& field) {
    cluster::FailbackWindow window;
    bool ok = true;
    read_map(field, {"start", "end"}, {"start", "end"},
             [&](std::string_view name, const Field& hour) {
               auto value = count_value(hour);
               if (value && *value > 23) {
                 fail(hour, "must be an hour from 0 to 23");
                 value.reset();
               }
               if (!value) {
                 ok = false;
               } else if (name == "start") {
                 window.start_hour = *value;
               } else {
                 window.end_hour = *value;
               }
             });
    if (!ok) return std::nullopt;
    return window;
  }

  // A list of anti-affinity class names, each at most once.
  std::optional<std::vector<std::string>> class_list(const Field& field) {
    std::vector<std::string> names;
    bool ok = true;
    const bool listed = read_list(field, "must be a list of class names", [&](const Field& entry) {
      auto name = name_value(entry, "anti-affinity class");
      if (!name) {
        ok = false;
      } else if (std::find(names.begin(), names.end(), *name) != names.end()) {
        fail(entry, fmt::format("class \"{}\" is listed twice", *name));
        ok = false;
      } else {
        names.push_back(std::move(*name));
      }
    });
    if (!listed || !ok) return std::nullopt;
    return names;
  }

  // A list of node names, each at most once.
  std::optional<std::vector<std::string>> node_list(const Field& field) {
    std::vector<std::string> names;
    std::map<std::string, std::size_t> seen;
    bool ok = true;
    std::size_t index = 0;
    const bool listed = read_list(field, "must be a list of node names", [&](const Field& entry) {
      auto name = name_value(entry, "node");
      if (!name) {
        ok = false;
      } else if (const auto [first, inserted] = seen.emplace(*name, index); !inserted) {
        fail(entry,
             fmt::format("node \"{}\" is listed twice (also at index {})", *name, first->second));
        ok = false;
      } else {
        names.push_back(std::move(*name));
      }
      ++index;
    });
    if (!listed || !ok) return std::nullopt;
    return names;
  }

 private:
  Problems& problems_;
  const GroupLoadOptions& options_;
};

// ---------------------------------------------------------------------------------------------
// Group documents.

// A resource as read, with the locations that later checks report at.
struct ReadResource {
  struct Reference {
    std::string name;
    Field field;
  };

  ResourceSpec spec;
  std::optional<Field> name_field;
  std::optional<Field> type_field;
  std::optional<Field> parameters_field;
  std::map<std::string, Field> parameter_fields;
  std::vector<Reference> references;  // every name in dependsOn
  SourceLocation where;
  std::string path;  // "resources[2]"
};

void read_parameters(GroupReader& reader, const Field& field, ReadResource& resource) {
  if (!field.value.IsMap()) {
    reader.fail(field, "must be a map of parameter names to values");
    return;
  }
  for (auto it = field.value.begin(); it != field.value.end(); ++it) {
    const SourceLocation where = reader.at(it->first);
    auto name = reader.string_value(Field{field.path, it->first, where});
    if (!name) continue;
    const Field entry{join_path(field.path, *name), it->second, where};
    if (name->empty()) {
      reader.fail(entry, "parameter names must not be empty");
      continue;
    }
    if (resource.parameter_fields.contains(*name)) {
      reader.fail(entry, "duplicate parameter");
      continue;
    }
    // Values are taken as written: `expectStatus: 200` is the string "200".
    auto value = reader.string_value(entry);
    if (!value) continue;
    resource.parameter_fields.emplace(*name, entry);
    resource.spec.parameters[*name] = std::move(*value);
  }
}

// dependsOn: every item must be Online first; an item is a resource name, or a list of names
// of which any one will do ("ANDs of ORs").
void read_depends_on(GroupReader& reader, const Field& field, ReadResource& resource) {
  constexpr std::string_view kShape =
      "must be a list whose items are resource names or lists of names (any one of them)";
  reader.read_list(field, kShape, [&](const Field& entry) {
    const YAML::Node& item = entry.value;
    std::vector<std::string> any_of;
    auto add = [&](const Field& name_field) {
      auto name = reader.string_value(name_field);
      if (!name) return;
      any_of.push_back(*name);
      resource.references.push_back({std::move(*name), name_field});
    };
    if (item.IsScalar()) {
      add(entry);
    } else if (item.IsSequence()) {
      if (item.size() == 0) {
        reader.fail(entry, "a list of alternatives needs at least one resource");
        return;
      }
      std::size_t alternative = 0;
      for (const YAML::Node& name : item) {
        add(Field{indexed(entry.path, alternative++), name, reader.at(name)});
      }
    } else {
      reader.fail(entry, kShape);
      return;
    }
    if (!any_of.empty()) resource.spec.depends_on.push_back(std::move(any_of));
  });
}

void read_policy(GroupReader& reader, const Field& field, ResourcePolicy& policy) {
  reader.read_map(
      field,
      {"looksAliveInterval", "isAliveInterval", "pendingTimeout", "probeTimeout",
       "terminateTimeout", "restartAction", "restartThreshold", "restartPeriod", "restartDelay",
       "retryPeriodOnFailure"},
      {}, [&](std::string_view name, const Field& setting) {
        if (name == "restartThreshold") {
          if (auto value = reader.count_value(setting)) policy.restart_threshold = *value;
          return;
        }
        if (!setting.value.IsScalar()) {
          reader.fail(setting, name == "restartAction" ? "must be a string"
                                                       : "must be a duration such as \"90s\"");
          return;
        }
        if (Status set = set_policy_field(policy, name, setting.value.Scalar()); !set.ok()) {
          reader.fail(setting, set.error().message);
        }
      });
}

// Reports resource_type_problems() where they are written: at the type, at the parameter, or
// (for a missing one) at `parameters` or the resource.
void check_type(GroupReader& reader, const ReadResource& resource) {
  if (!resource.type_field || resource.spec.type.empty()) return;
  for (const ResourceTypeProblem& problem : resource_type_problems(resource.spec)) {
    if (problem.parameter.empty()) {
      reader.fail(*resource.type_field, problem.what);
    } else if (auto found = resource.parameter_fields.find(problem.parameter);
               found != resource.parameter_fields.end()) {
      reader.fail(found->second, problem.what);
    } else {
      reader.fail_at(resource.parameters_field ? resource.parameters_field->where : resource.where,
                     join_path(resource.path + ".parameters", problem.parameter), problem.what);
    }
  }
}

ReadResource read_resource(GroupReader& reader, const Field& item) {
  const std::size_t problems_before = reader.problem_count();
  std::optional<Field> policy_field;
  ReadResource resource;
  resource.where = item.where;
  resource.path = item.path;
  reader.read_map(item, {"name", "type", "parameters", "dependsOn", "possibleOwners", "policy"},
                  {"name", "type"}, [&](std::string_view name, const Field& field) {
                    if (name == "name") {
                      resource.name_field = field;
                      if (auto value = reader.name_value(field, "resource")) {
                        resource.spec.name = std::move(*value);
                      }
                    } else if (name == "type") {
                      auto value = reader.string_value(field);
                      if (value && value->empty()) {
                        reader.fail(field, "must not be empty");
                      } else if (value) {
                        resource.type_field = field;
                        resource.spec.type = std::move(*value);
                      }
                    } else if (name == "parameters") {
                      resource.parameters_field = field;
                      read_parameters(reader, field, resource);
                    } else if (name == "dependsOn") {
                      read_depends_on(reader, field, resource);
                    } else if (name == "possibleOwners") {
                      if (auto nodes = reader.node_list(field)) {
                        resource.spec.possible_owners = std::move(*nodes);
                      }
                    } else if (name == "policy") {
                      policy_field = field;
                    }
                  });
  check_type(reader, resource);
  // The policy starts from the type's defaults (known once type and parameters are read,
  // wherever the manifest writes them), and the manifest's settings win.
  if (reader.policy_defaults() && reader.problem_count() == problems_before) {
    resource.spec.policy = reader.policy_defaults()(resource.spec);
  }
  if (policy_field) read_policy(reader, *policy_field, resource.spec.policy);
  return resource;
}

// Rules across the resources of one group, each reported where it is written.
void check_resources(GroupReader& reader, const std::vector<ReadResource>& resources) {
  std::map<std::string, const ReadResource*> by_name;
  for (const ReadResource& resource : resources) {
    if (resource.spec.name.empty()) continue;
    const auto [first, inserted] = by_name.emplace(resource.spec.name, &resource);
    if (!inserted) {
      reader.fail(*resource.name_field,
                  fmt::format("duplicate resource name, first defined at line {}",
                              first->second->name_field->where.line));
    }
  }
  for (const ReadResource& resource : resources) {
    for (const ReadResource::Reference& reference : resource.references) {
      if (!resource.spec.name.empty() && reference.name == resource.spec.name) {
        reader.fail(reference.field, "a resource cannot depend on itself");
      } else if (!by_name.contains(reference.name)) {
        std::vector<std::string_view> names;
        names.reserve(by_name.size());
        for (const auto& [name, other] : by_name) names.push_back(name);
        std::string what = fmt::format("no resource named \"{}\" in this group", reference.name);
        if (!names.empty()) what += " " + suggestion(reference.name, names);
        reader.fail(reference.field, what);
      }
    }
  }
}

GroupSpec read_group(GroupReader& reader, const Field& document) {
  GroupSpec group;
  std::vector<ReadResource> resources;
  reader.read_map(
      document,
      {"kind", "name", "preferredOwners", "failoverThreshold", "failoverPeriod",
       "retryPeriodOnFailure", "failback", "failbackWindow", "antiAffinityClasses", "resources"},
      {"name"}, [&](std::string_view name, const Field& field) {
        if (name == "name") {
          if (auto value = reader.name_value(field, "group")) group.name = std::move(*value);
        } else if (name == "preferredOwners") {
          if (auto nodes = reader.node_list(field)) group.preferred_owners = std::move(*nodes);
        } else if (name == "failoverThreshold") {
          if (auto value = reader.count_value(field)) group.failover_threshold = *value;
        } else if (name == "failoverPeriod") {
          if (auto value = reader.duration_value(field)) group.failover_period = *value;
        } else if (name == "retryPeriodOnFailure") {
          if (auto value = reader.duration_value(field)) group.retry_period_on_failure = *value;
        } else if (name == "failback") {
          auto value = reader.string_value(field);
          if (!value) return;
          if (*value == "allow") {
            group.failback = cluster::FailbackPolicy::kAllow;
          } else if (*value == "prevent") {
            group.failback = cluster::FailbackPolicy::kPrevent;
          } else {
            reader.fail(field, "must be \"prevent\" or \"allow\"");
          }
        } else if (name == "failbackWindow") {
          group.failback_window = reader.failback_window(field);
        } else if (name == "antiAffinityClasses") {
          if (auto names = reader.class_list(field)) {
            group.anti_affinity_classes = std::move(*names);
          }
        } else if (name == "resources") {
          reader.read_list(field, "must be a list of resources", [&](const Field& item) {
            resources.push_back(read_resource(reader, item));
          });
        }
      });
  check_resources(reader, resources);
  for (ReadResource& resource : resources) group.resources.push_back(std::move(resource.spec));
  return group;
}

class GroupsBuilder {
 public:
  GroupsBuilder(Problems& problems, const GroupLoadOptions& options)
      : problems_(problems), options_(options) {}

  void add_manifest(const ManifestText& manifest) {
    GroupReader reader(manifest.path, problems_, options_);
    manifest::read_documents(manifest, problems_,
                             [&](const YAML::Node& document) { add_document(reader, document); });
  }

  GroupManifests& result() { return result_; }

 private:
  void add_document(GroupReader& reader, const YAML::Node& document) {
    const Field field{"", document, reader.at(document)};
    const auto kind_name = reader.document_kind(field, kKinds);
    if (!kind_name) return;
    if (*kind_name == kGroupKind) {
      add_group(reader, field);
      return;
    }
    result_.web_documents.push_back(WebDocument{
        *kind_name, *kind_name == "WebServer" ? std::string() : peek_name(document), field.where});
  }

  void add_group(GroupReader& reader, const Field& document) {
    reader.set_subject(subject_of(kGroupKind, peek_name(document.value)));
    const std::size_t problems_before = problems_.count();
    GroupSpec group = read_group(reader, document);
    if (group.name.empty()) return;
    const auto [first, inserted] = where_.emplace(group.name, document.where);
    if (!inserted) {
      reader.fail_at(
          document.where, "name",
          fmt::format("duplicate group name, first defined at {}", first->second.describe()));
      return;
    }
    if (problems_.count() != problems_before) return;
    // What the field checks leave to the model: dependency cycles and depth.
    if (Status valid = cluster::validate(group); !valid.ok()) {
      const Error& error = valid.error();
      reader.fail_at(document.where, "",
                     error.where == "group " + group.name ? error.message : error.describe());
      return;
    }
    result_.groups.push_back(std::move(group));
  }

  Problems& problems_;
  const GroupLoadOptions& options_;
  GroupManifests result_;
  std::map<std::string, SourceLocation> where_;
};

}  // namespace

std::vector<ResourceTypeProblem> resource_type_problems(const ResourceSpec& resource) {
  std::vector<ResourceTypeProblem> problems;
  const auto& rules = type_rules();
  const auto rule = std::find_if(rules.begin(), rules.end(), [&](const TypeRule& candidate) {
    return candidate.type == resource.type;
  });
  if (rule == rules.end()) {
    std::vector<std::string_view> types;
    types.reserve(rules.size());
    for (const TypeRule& candidate : rules) types.push_back(candidate.type);
    problems.push_back({"", unknown_message(fmt::format("resource type \"{}\"", resource.type),
                                            resource.type, types)});
    return problems;
  }
  const std::string article = with_article(rule->type);
  for (std::string_view name : rule->required) {
    if (!resource.parameters.contains(std::string(name))) {
      problems.push_back(
          {std::string(name), fmt::format("missing required parameter of {} resource", article)});
    }
  }
  if (!rule->known.empty()) {
    for (const auto& [name, value] : resource.parameters) {
      if (std::find(rule->known.begin(), rule->known.end(), name) == rule->known.end()) {
        problems.push_back({name, unknown_message(fmt::format("parameter of {} resource", article),
                                                  name, rule->known)});
      }
    }
  }
  if (rule->type == "script") {
    const auto path = resource.parameters.find("path");
    if (path != resource.parameters.end() && !path->second.starts_with('/')) {
      problems.push_back({"path",
                          "must be an absolute path (the script runs on every node that may own "
                          "the group)"});
    }
  }
  return problems;
}

const std::vector<std::string_view>& policy_field_names() {
  static const std::vector<std::string_view> names = [] {
    std::vector<std::string_view> list;
    for (const PolicyField& field : kPolicyFields) list.push_back(field.name);
    return list;
  }();
  return names;
}

Status set_policy_field(ResourcePolicy& policy, std::string_view field, std::string_view value) {
  const auto* found = std::find_if(std::begin(kPolicyFields), std::end(kPolicyFields),
                                   [&](const PolicyField& entry) { return entry.name == field; });
  if (found == std::end(kPolicyFields)) {
    return make_error("{}", unknown_message("policy field", field, policy_field_names()));
  }
  if (found->duration != nullptr) {
    auto duration = parse_duration(value);
    if (!duration.ok()) return duration.error();
    if (*duration < Milliseconds::zero() ||
        (*duration == Milliseconds::zero() && !found->zero_allowed)) {
      return make_error("must be greater than 0");
    }
    policy.*(found->duration) = *duration;
    return ok_status();
  }
  if (field == "restartAction") {
    const auto* action = std::find_if(std::begin(kRestartActions), std::end(kRestartActions),
                                      [&](const auto& entry) { return entry.second == value; });
    if (action == std::end(kRestartActions)) {
      return make_error("must be no-restart, restart-no-failover or restart-and-failover");
    }
    policy.restart_action = action->first;
    return ok_status();
  }
  int threshold = 0;
  const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), threshold);
  if (value.empty() || error != std::errc() || end != value.data() + value.size() ||
      threshold < 0) {
    return make_error("must be a whole number from 0 to {}", std::numeric_limits<int>::max());
  }
  policy.restart_threshold = threshold;
  return ok_status();
}

Result<GroupManifests> load_group_manifests(const std::vector<ManifestText>& manifests,
                                            const GroupLoadOptions& options) {
  Problems problems(manifests);
  GroupsBuilder builder(problems, options);
  for (const ManifestText& manifest : manifests) builder.add_manifest(manifest);
  if (problems.count() > 0) return problems.to_error();
  return std::move(builder.result());
}

Result<GroupManifests> load_group_manifest_files(const std::vector<std::string>& paths,
                                                 const GroupLoadOptions& options) {
  auto manifests = read_manifests(paths);
  if (!manifests.ok()) return manifests.error();
  return load_group_manifests(*manifests, options);
}

}  // namespace clusweb::config
