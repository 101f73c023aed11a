#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "base/clock.h"
#include "cluster/group_controller.h"
#include "cluster/model.h"

// The agent's decisions for one node: when to acquire and release the
// ownership of groups, when to fence itself, and which resource calls to run.
// Pure like the group controller: the agent shell turns lease renewals, store
// watches and call results into events, and carries out the actions.
namespace clusweb::cluster {

// owners/<group> as the store shows it.
struct OwnerRecord {
  std::string node;
  int64_t token = 0;  // create_revision: the fencing token
  int64_t lease = 0;  // the lease the key is bound to
};

// placement/<group> as the store shows it.
struct PlacementRecord {
  std::string node;
  int64_t revision = 0;  // mod_revision: a rewrite is a new decision
};

// What the node knows of the store's keys that concern its groups.
struct ClusterView {
  int64_t revision = 0;
  std::map<std::string, GroupSpec> groups;           // groups/<group>
  std::map<std::string, PlacementRecord> placement;  // placement/<group>
  std::map<std::string, OwnerRecord> owners;         // owners/<group>
  std::map<std::string, Unmanaged> unmanaged;        // unmanaged/<group>
};

// --- events ---

// The node holds a new lease; `deadline` is when it must have fenced itself
// unless a renewal moves it (last acknowledged send time + TTL - margin).
struct Joined {
  int64_t lease = 0;
  Clock::TimePoint deadline;
  // The agent restarted and resumed a lease that is still alive: the groups owned under it
  // (group -> fencing token), whose resources were left running. The node owns them again at
  // once and adopts what runs (GroupController's Adopt) instead of starting it anew.
  std::map<std::string, int64_t> adopt = {};
};
// A renewal was acknowledged; the deadline only moves forward.
struct Renewed {
  Clock::TimePoint deadline;
};
struct ViewChanged {
  ClusterView view;
};
// The outcome of an AcquireOwnership, a lost reply already resolved by
// reading the key back. `after_expiry`: the previous owner's lease expired
// (no `released` marker), so resources that cannot fence themselves wait.
struct AcquireDone {
  std::string group;
  bool acquired = false;
  int64_t token = 0;
  bool after_expiry = false;
};
// A ReleaseOwnership ended (written, or refused because the token no longer
// matches: either way the node no longer owns the group).
struct ReleaseDone {
  std::string group;
  int64_t token = 0;  // of the ownership released (a later one may exist)
};
// Call ids are per controller: the token tells a call of an earlier
// ownership of the same group from one of the current ownership.
struct GroupCallFinished {
  std::string group;
  int64_t token = 0;
  CallFinished finished;
};
struct GroupResourceLooksDead {
  std::string group;
  ResourceLooksDead dead;
};
// The time returned by next_wakeup() has come.
struct NodeTimer {};
// Membership ended before the deadline (the store no longer has the lease,
// e.g. revoked early): fence now rather than at the deadline.
struct LeaseLost {
  std::string reason;
};

using NodeEvent = std::variant<Joined, Renewed, ViewChanged, AcquireDone, ReleaseDone,
                               GroupCallFinished, GroupResourceLooksDead, NodeTimer, LeaseLost>;

// --- actions ---

// Transaction: owners/<group> created with the node's lease if absent.
struct AcquireOwnership {
  std::string group;
};
// Transaction guarded by the token: delete owners/<group>, write the
// `released` marker, and for a failover record it in the failure history.
struct ReleaseOwnership {
  std::string group;
  int64_t token = 0;
  std::optional<std::string> failover_reason;
  // With a failover_reason: its class (hard bans this node for the group,
  // fatal stops the group everywhere; both are recorded with the failover).
  FailureClass failure = FailureClass::kSoft;
  // False when the node released without ever starting the group while it
  // waited out an expired predecessor: then no `released` marker, so the
  // next owner waits too.
  bool resources_stopped = true;
};
struct ResourceCall {
  std::string group;
  int64_t token = 0;
  Call call;
};
// For the event log and status/<group>.
struct GroupEvent {
  std::string group;
  int64_t token = 0;  // status and event writes compare it
  std::variant<ResourceChanged, GroupOutcome> what;
};
// The deadline passed: every owned group is being terminated; the shell
// stops renewing the lease.
struct Fence {
  std::string reason;
};
// Fencing finished: revoke the old lease if the store still answers and
// join again with a new one (never resume under the old one).
struct Rejoin {};

using NodeAction =
    std::variant<AcquireOwnership, ReleaseOwnership, ResourceCall, GroupEvent, Fence, Rejoin>;

struct NodeCoreOptions {
  std::string node;
  // The lease TTL: how long a new owner waits after taking over from an
  // expired lease before it brings resources online that cannot fence
  // themselves.
  Clock::Duration ttl{std::chrono::seconds(2)};
  // Resource types that stop serving by themselves at the deadline (serving
  // permits, address lifetimes); any other type makes a group wait.
  std::set<std::string> self_fencing_types{"website", "ip"};
};

class NodeCore {
 public:
  explicit NodeCore(NodeCoreOptions options);

  std::vector<NodeAction> step(const NodeEvent& event, Clock::TimePoint now);
  std::optional<Clock::TimePoint> next_wakeup() const;

  bool joined() const { return joined_; }
  bool fenced() const { return fenced_; }
  // Groups this node owns (acquired and not yet released or terminated).
  std::vector<std::string> owned_groups() const;
  const GroupController* controller(const std::string& group) const;
  // The fencing token of the node's ownership of `group`; 0 when not owned.
  int64_t token(const std::string& group) const;

 private:
  enum class Phase { kWaiting, kRunning, kReleasing, kTerminating };
  struct Owned {
    int64_t token = 0;
    Phase phase = Phase::kRunning;
    std::optional<Clock::TimePoint> online_at;  // kWaiting until then
    std::unique_ptr<GroupController> controller;
    std::vector<bool> unmanaged;  // as last given to the controller
  };
  using Actions = std::vector<NodeAction>;

  void reconcile(Clock::TimePoint now, Actions& actions);
  void adopt(const std::string& group, int64_t token, Clock::TimePoint now, Actions& actions);
  void release(const std::string& group, int64_t token, std::optional<std::string> failover_reason,
               FailureClass failure, bool resources_stopped, Actions& actions);
  void fence(std::string reason, Clock::TimePoint now, Actions& actions);
  void drive(const std::string& group, const ControllerEvent& event, Clock::TimePoint now,
             Actions& actions);
  bool must_wait_after_expiry(const GroupSpec& group) const;
  // Gives the controller the view's unmanaged/<group> when it changed.
  void sync_unmanaged(const std::string& group, Clock::TimePoint now, Actions& actions);

  NodeCoreOptions options_;
  bool joined_ = false;
  bool fenced_ = false;
  Clock::TimePoint deadline_{};
  ClusterView view_;
  std::set<std::string> acquiring_;
  // Groups this node failed over, with the placement revision then in
  // force: not acquired again until the coordinator decides anew.
  std::map<std::string, int64_t> released_;
  std::map<std::string, Owned> owned_;
};

}  // namespace clusweb::cluster
