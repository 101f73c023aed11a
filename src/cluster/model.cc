#include "cluster/model.h"

#include <algorithm>
#include <functional>
#include <set>

namespace clusweb::cluster {
namespace {

constexpr int kMaxDependencyDepth = 100;

int index_of(const GroupSpec& group, const std::string& name) {
  for (size_t i = 0; i < group.resources.size(); ++i) {
    if (group.resources[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

Status validate_policy(const GroupSpec& group, const ResourceSpec& resource) {
  const ResourcePolicy& policy = resource.policy;
  auto where = fmt::format("group {} resource {}", group.name, resource.name);
  auto fail = [&](std::string_view field) {
    Error error = make_error("{} must be positive", field);
    error.where = where;
    return Status(error);
  };
  if (policy.looks_alive_interval.count() <= 0) return fail("looksAliveInterval");
  if (policy.is_alive_interval.count() <= 0) return fail("isAliveInterval");
  if (policy.pending_timeout.count() <= 0) return fail("pendingTimeout");
  if (policy.probe_timeout.count() <= 0) return fail("probeTimeout");
  if (policy.terminate_timeout.count() <= 0) return fail("terminateTimeout");
  if (policy.restart_period.count() <= 0) return fail("restartPeriod");
  if (policy.retry_period_on_failure.count() <= 0) return fail("retryPeriodOnFailure");
  if (policy.restart_threshold < 0) {
    Error error = make_error("restartThreshold must not be negative");
    error.where = where;
    return error;
  }
  if (policy.restart_delay.count() < 0) {
    Error error = make_error("restartDelay must not be negative");
    error.where = where;
    return error;
  }
  return ok_status();
}

}  // namespace

Status validate(const GroupSpec& group) {
  if (group.name.empty()) return make_error("a group needs a name");
  auto group_error = [&](Error error) {
    error.where = fmt::format("group {}", group.name);
    return Status(std::move(error));
  };
  if (group.failover_threshold && *group.failover_threshold < 0) {
    return group_error(make_error("failoverThreshold must not be negative"));
  }
  if (group.failover_period.count() <= 0) {
    return group_error(make_error("failoverPeriod must be positive"));
  }
  if (group.retry_period_on_failure.count() <= 0) {
    return group_error(make_error("retryPeriodOnFailure must be positive"));
  }
  if (group.failback_window) {
    const FailbackWindow& window = *group.failback_window;
    if (window.start_hour < 0 || window.start_hour > 23 || window.end_hour < 0 ||
        window.end_hour > 23) {
      return group_error(make_error("failbackWindow hours must be 0 to 23"));
    }
  }
  for (const std::string& name : group.anti_affinity_classes) {
    if (name.empty()) return group_error(make_error("an anti-affinity class needs a name"));
  }
  std::set<std::string> names;
  for (const ResourceSpec& resource : group.resources) {
    if (resource.name.empty()) return group_error(make_error("a resource needs a name"));
    if (!names.insert(resource.name).second) {
      return group_error(make_error("resource {} is defined twice", resource.name));
    }
    if (resource.type.empty()) {
      return group_error(make_error("resource {} needs a type", resource.name));
    }
  }
  for (const ResourceSpec& resource : group.resources) {
    if (Status status = validate_policy(group, resource); !status) return status;
    for (const auto& any_of : resource.depends_on) {
      if (any_of.empty()) {
        return group_error(make_error("resource {} has an empty dependency", resource.name));
      }
      for (const std::string& name : any_of) {
        if (name == resource.name) {
          return group_error(make_error("resource {} depends on itself", resource.name));
        }
        if (index_of(group, name) < 0) {
          return group_error(make_error("resource {} depends on {}, which is not in the group",
                                        resource.name, name));
        }
      }
    }
  }

  // Depth-first search over "depends on" edges: a grey node seen again is a
  // cycle; the longest path bounds the depth.
  enum class Mark { kWhite, kGrey, kBlack };
  std::vector<Mark> marks(group.resources.size(), Mark::kWhite);
  std::vector<int> depth(group.resources.size(), 0);
  std::string cycle_at;
  std::function<bool(int)> visit = [&](int i) {
    marks[i] = Mark::kGrey;
    int deepest = 0;
    for (const auto& any_of : group.resources[i].depends_on) {
      for (const std::string& name : any_of) {
        int j = index_of(group, name);
        if (marks[j] == Mark::kGrey) {
          cycle_at = group.resources[i].name;
          return false;
        }
        if (marks[j] == Mark::kWhite && !visit(j)) return false;
        deepest = std::max(deepest, depth[j] + 1);
      }
    }
    depth[i] = deepest;
    marks[i] = Mark::kBlack;
    return true;
  };
  for (size_t i = 0; i < group.resources.size(); ++i) {
    if (marks[i] == Mark::kWhite && !visit(static_cast<int>(i))) {
      return group_error(make_error("dependency cycle through resource {}", cycle_at));
    }
    if (depth[i] > kMaxDependencyDepth) {
      return group_error(make_error("resource {} has dependencies {} deep (at most {})",
                                    group.resources[i].name, depth[i], kMaxDependencyDepth));
    }
  }
  return ok_status();
}

std::vector<int> dependency_order(const GroupSpec& group) {
  // Kahn's algorithm, taking the lowest ready index first so the order is
  // the manifest's order wherever dependencies allow.
  const size_t n = group.resources.size();
  std::vector<std::set<int>> needs(n);
  for (size_t i = 0; i < n; ++i) {
    for (const auto& any_of : group.resources[i].depends_on) {
      for (const std::string& name : any_of) needs[i].insert(index_of(group, name));
    }
  }
  std::vector<int> order;
  std::vector<bool> done(n, false);
  while (order.size() < n) {
    bool progressed = false;
    for (size_t i = 0; i < n; ++i) {
      if (done[i]) continue;
      bool ready = std::all_of(needs[i].begin(), needs[i].end(), [&](int j) { return done[j]; });
      if (!ready) continue;
      done[i] = true;
      order.push_back(static_cast<int>(i));
      progressed = true;
      break;
    }
    if (!progressed) break;  // a cycle: validate() rejects these groups
  }
  return order;
}

bool allows(const GroupSpec& group, const std::string& node) {
  return std::all_of(group.resources.begin(), group.resources.end(), [&](const ResourceSpec& r) {
    return r.possible_owners.empty() ||
           std::find(r.possible_owners.begin(), r.possible_owners.end(), node) !=
               r.possible_owners.end();
  });
}

}  // namespace clusweb::cluster
