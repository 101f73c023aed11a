#pragma once

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

// The cluster's data model: what a group and its resources are, with the
// policies that decide restarts and failovers. Plain values shared by the
// pure decision cores (placement, group controller) and the agent shell.
namespace clusweb::cluster {

using Milliseconds = std::chrono::milliseconds;
// Wall time: failure histories are written to the store and read by other
// nodes, whose monotonic clocks mean nothing here.
using WallTime = std::chrono::system_clock::time_point;

// WSFC's RestartAction: what a resource failure leads to.
enum class RestartAction {
  kNoRestart,          // stay Failed (retried after retry_period_on_failure)
  kRestartNoFailover,  // restart in place; past the threshold stay Failed
  kRestartAndFailover  // restart in place; past the threshold fail the group over
};

// Per-resource timing and failure policy. Defaults follow WSFC except the
// polls, which are tighter because our checks are cheap (ARCHITECTURE.md).
struct ResourcePolicy {
  Milliseconds looks_alive_interval{1000};
  Milliseconds is_alive_interval{10000};
  // Longest an Online or Offline call may take; then the resource is
  // Failed and terminated (WSFC PendingTimeout).
  Milliseconds pending_timeout{180000};
  // Longest a LooksAlive or IsAlive call may take before it counts as false.
  Milliseconds probe_timeout{5000};
  // Longest a Terminate may take; the shell then kills the call's process
  // group, and the resource counts as ended.
  Milliseconds terminate_timeout{30000};
  RestartAction restart_action = RestartAction::kRestartAndFailover;
  int restart_threshold = 3;
  Milliseconds restart_period{15 * 60 * 1000};
  Milliseconds restart_delay{500};
  Milliseconds retry_period_on_failure{60 * 60 * 1000};
};

struct ResourceSpec {
  std::string name;
  std::string type;  // script, ip, website (ocf, mount later)
  std::map<std::string, std::string> parameters;
  // "ANDs of ORs": every inner list needs at least one of its resources
  // Online before this one goes online.
  std::vector<std::vector<std::string>> depends_on;
  // Nodes this resource may run on; empty = every node.
  std::vector<std::string> possible_owners;
  ResourcePolicy policy;
};

enum class FailbackPolicy { kPrevent, kAllow };

// WSFC's FailbackWindowStart/End: the hours of the day (UTC, 0-23) within
// which a group may fail back, both included; start > end wraps past
// midnight (22-6 = 22:00 to 06:59).
struct FailbackWindow {
  int start_hour = 0;
  int end_hour = 23;
  bool contains(int hour) const {
    return start_hour <= end_hour ? hour >= start_hour && hour <= end_hour
                                  : hour >= start_hour || hour <= end_hour;
  }
  bool operator==(const FailbackWindow&) const = default;
};

struct GroupSpec {
  std::string name;
  std::vector<ResourceSpec> resources;
  // Tried in order when the group needs a new node.
  std::vector<std::string> preferred_owners;
  // Resource-failure failovers allowed within failover_period before the
  // group is left Failed; unset = number of nodes - 1 (WSFC).
  std::optional<int> failover_threshold;
  Milliseconds failover_period{6 * 60 * 60 * 1000};
  // How long a Failed group waits before placement tries it once more.
  Milliseconds retry_period_on_failure{60 * 60 * 1000};
  FailbackPolicy failback = FailbackPolicy::kPrevent;
  // With failback allowed: only within these hours; unset = at any time.
  std::optional<FailbackWindow> failback_window;
  // WSFC's AntiAffinityClassNames: when the group needs a new node, nodes
  // running a group that shares a class are avoided while another will do
  // (soft: never moves a running group, never leaves one without a node).
  std::vector<std::string> anti_affinity_classes;
};

// Maintenance (unmanaged/<group>): what of a group the cluster stops acting on. Its owner
// keeps polling and reporting it but starts, stops and recovers nothing unmanaged, and
// placement keeps the group where it is.
struct Unmanaged {
  bool group = false;                  // every resource of the group
  std::vector<std::string> resources;  // these resources, by name
  bool covers(const std::string& resource) const {
    return group || std::find(resources.begin(), resources.end(), resource) != resources.end();
  }
  bool any() const { return group || !resources.empty(); }
  bool operator==(const Unmanaged&) const = default;
};

// Checks what the decision cores rely on: a group name, unique resource
// names, dependencies naming resources of the same group, no dependency
// cycle, dependency depth at most 100, positive intervals and thresholds.
Status validate(const GroupSpec& group);

// The group's resource indices ordered so that every resource comes after
// everything it depends on (online order; offline is the reverse). Requires
// a group that passed validate().
std::vector<int> dependency_order(const GroupSpec& group);

// True when `node` is a possible owner of every resource of the group.
bool allows(const GroupSpec& group, const std::string& node);

}  // namespace clusweb::cluster
