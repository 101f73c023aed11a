#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cluster/group_controller.h"
#include "cluster/model.h"

// Placement: which node each group should run on. A pure function of the
// cluster's state, run by the coordinator; the agent shell reads the inputs
// from the store and writes the decisions to placement/<group>.
namespace clusweb::cluster {

struct NodeState {
  std::string name;
  bool up = false;      // holds a live lease (nodes/<node> exists)
  bool paused = false;  // node-admin/<node>: keeps its groups, takes no new ones
  // node-admin/<node> with drain: paused, and its groups move away gracefully.
  bool draining = false;
};

// A failover caused by resource failures (not node loss, not a planned
// move): the node the group left and when.
struct FailoverRecord {
  std::string from_node;
  WallTime at;
  // Hard: a resource cannot run on from_node, which is banned for the group
  // whatever its age. Fatal: a resource is misconfigured; the group runs
  // nowhere. Both hold until the history is cleared (`group online`).
  FailureClass failure = FailureClass::kSoft;
  bool operator==(const FailoverRecord&) const = default;
};

// An administrator's `group move`: honoured until the group has been
// acquired by any node after the request was made.
struct MoveRequest {
  std::string to_node;   // empty = "the best other node"
  int64_t revision = 0;  // store revision of the request
};

struct GroupState {
  GroupSpec spec;
  bool offline_requested = false;         // `group offline`: place nowhere
  std::optional<std::string> owner;       // holder of owners/<group>
  int64_t owner_token = 0;                // its create_revision (fencing token)
  std::optional<std::string> placement;   // current placement/<group>
  std::vector<FailoverRecord> failovers;  // resource-failure failovers, any age
  std::optional<MoveRequest> move;
  // unmanaged/<group> names the group or one of its resources: the cluster stops acting on it.
  bool unmanaged = false;
};

struct PlacementDecision {
  std::string group;
  std::optional<std::string> node;  // nullopt = run nowhere
  std::string reason;               // one plain sentence for the event log
  bool operator==(const PlacementDecision&) const = default;
};

// Decides every group's node, in the order of `groups`. Rules, first match wins:
//  0. Unmanaged (maintenance): the owner while it is Up (paused, draining or not,
//     whatever the other rules would say); with no owner, the current placement,
//     whatever the state of its node; with neither, nowhere. An owner that is not
//     Up (its agent is being stopped: the membership goes first) lets the rules
//     below decide.
//  1. `offline_requested` -> nowhere; a fatal failover in the history ->
//     nowhere.
//  2. Failed: more resource-failure failovers within failover_period than the
//     threshold (unset = number of nodes - 1, at least 1) -> nowhere, until
//     retry_period_on_failure after the last one; then one more try.
//  3. A pending move request (see MoveRequest) to an Up, unpaused, allowed
//     node -> that node; with no node named, the rules below run without the
//     current node.
//  4. Stickiness: the owner while it is Up and allowed (paused or not); with
//     no owner, the current placement while that node is Up, unpaused,
//     allowed and did not fail the group within failover_period. With
//     failback kAllow, an eligible node earlier in preferred_owners than the
//     sticky node wins instead ("failback"), if the current UTC hour is within
//     the group's failback_window (when it has one).
//  5. The first Up, unpaused, allowed preferred owner that did not fail the
//     group within failover_period.
//  6. The least loaded Up, unpaused, allowed node that did not fail the group
//     within failover_period (load = groups decided for it so far, counting
//     sticky ones first), ties by name.
//     Rules 5 and 6 first pass over nodes that run (as decided so far) a group
//     sharing one of the group's anti_affinity_classes; only when every
//     candidate does, they run again without that restriction.
//  7. Steps 5-6 again accepting nodes that failed the group (the one that
//     failed it longest ago first).
//  8. Otherwise nowhere ("no node can run it").
// "Allowed" = every resource lists the node as a possible owner (or none),
// the group has no hard failover from the node, and the node is not being
// drained.
std::vector<PlacementDecision> place(const std::vector<NodeState>& nodes,
                                     const std::vector<GroupState>& groups, WallTime now);

}  // namespace clusweb::cluster
