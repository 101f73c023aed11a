#pragma once

// YAML manifests of kind Group -> validated cluster::GroupSpec values, for `clusweb apply`.
// docs/configuration.md ("kind: Group") is the reference of the format; the field names are
// those of the group's JSON in the store (cluster::encode(GroupSpec)). All functions are pure
// apart from the file reads of load_group_manifest_files, and safe to call from any thread.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "cluster/model.h"
#include "config/manifest_loader.h"
#include "config/web_config.h"

namespace clusweb::config {

// A document of a web kind (Site, ApplicationPool, WebServer) that the group loader passed
// over: those belong to the web service's manifests (`clusweb web -f`).
struct WebDocument {
  std::string kind;
  std::string name;  // empty for WebServer, or when the document has no readable name
  SourceLocation where;
};

struct GroupManifests {
  std::vector<cluster::GroupSpec> groups;  // in file and document order
  std::vector<WebDocument> web_documents;  // in file and document order
};

// Where each resource's policy starts before its `policy` field is applied: a caller that
// knows better than the built-in defaults (the ocf type's agent meta-data,
// resources::starting_policy) says so here. Called once per resource whose type and
// parameters passed their checks.
using PolicyDefaults = std::function<cluster::ResourcePolicy(const cluster::ResourceSpec&)>;

struct GroupLoadOptions {
  PolicyDefaults policy_defaults;  // empty: the built-in defaults
};

// Parses the Group documents of a set of manifests; documents of the web kinds are listed in
// `web_documents` and not checked. Each group is checked field by field and then with
// cluster::validate(); group names must be unique across all manifests. On failure the
// Error's message holds every problem found, one per line, in file and line order, each line
// starting with its location, like load_web_config's:
//   groups.yaml:14: Group "web": field "resources[1].dependsOn[0]": no resource named "vpi" ...
// and its `where` is the location of the first problem.
Result<GroupManifests> load_group_manifests(const std::vector<ManifestText>& manifests,
                                            const GroupLoadOptions& options = {});

// read_manifests + load_group_manifests.
Result<GroupManifests> load_group_manifest_files(const std::vector<std::string>& paths,
                                                 const GroupLoadOptions& options = {});

// What the loader checks of a resource's type and parameters: the type is one it knows (ip,
// script, website); required parameters are present (ip: address and interface; script:
// path, absolute; website: site); for ip and website, every parameter is one of the type's.
// The resource types read their parameters again when they run; this catches typos and
// omissions before a group is written.
struct ResourceTypeProblem {
  std::string parameter;  // empty: the type itself
  std::string what;       // "missing required parameter of an ip resource"
};
std::vector<ResourceTypeProblem> resource_type_problems(const cluster::ResourceSpec& resource);

// The fields of a resource's `policy`, in the order docs/configuration.md lists them.
const std::vector<std::string_view>& policy_field_names();

// Sets the policy field `field` (a name of policy_field_names()) from its text as a manifest
// or `clusweb resource set --policy` writes it: a duration ("30s") for the intervals,
// timeouts, periods and the delay, an integer for restartThreshold, and no-restart,
// restart-no-failover or restart-and-failover for restartAction. The value is range-checked
// as cluster::validate() would. On failure `policy` is unchanged and the Error's message says
// what is expected (without naming the field).
Status set_policy_field(cluster::ResourcePolicy& policy, std::string_view field,
                        std::string_view value);

}  // namespace clusweb::config
