#pragma once

#include <deque>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "base/clock.h"
#include "cluster/model.h"

// The group controller: the state machine that runs one group's resources on
// the node that owns the group. Pure: the agent shell feeds it events with
// the current time and carries out the actions it returns; it never reads a
// clock and never does I/O, so it can run inside a simulation.
namespace clusweb::cluster {

// WSFC's resource states, with WSFC's numbers.
enum class ResourceState {
  kOnline = 2,
  kOffline = 3,
  kFailed = 4,
  kOnlinePending = 129,
  kOfflinePending = 130,
};
std::string_view to_string(ResourceState state);

// The seven entry points; the controller issues the five that change or check
// a resource. Open and Close belong to the shell (on acquire and release).
enum class Verb { kOpen, kOnline, kLooksAlive, kIsAlive, kOffline, kClose, kTerminate };
// WSFC's names in lower case, one word each: "open", "online", "looksalive",
// "isalive", "offline", "close", "terminate" (also what scripts receive).
std::string_view to_string(Verb verb);

// What the group as a whole is doing, for status and the CLI.
enum class GroupStatus { kOnline, kPartialOnline, kOffline, kFailed, kPending };
std::string_view to_string(GroupStatus state);

// How a failed call is to be treated; OCF's exit codes map onto these as
// Pacemaker maps them. Other resource types fail softly.
enum class FailureClass {
  kSoft,   // restart in place, counted toward the restart threshold
  kHard,   // this node cannot run the resource: fail over and ban the node
  kFatal,  // the resource is misconfigured: stop the group on every node
};
std::string_view to_string(FailureClass failure);

// --- events (shell -> controller) ---

// This node owns the group: bring every resource online, bottom-up.
struct BringOnline {};
// Graceful: take everything offline top-down, then report kOffline.
struct TakeOffline {};
// Immediate (fencing, or a stuck group): terminate every resource at once.
struct TerminateAll {};
// A call issued by a Call action ended. `ok` is the verb's boolean result;
// a call killed at its timeout arrives with ok = false, timed_out = true.
struct CallFinished {
  int call_id = 0;
  bool ok = false;
  bool timed_out = false;
  std::string detail;                          // e.g. the last output line or the exit status
  FailureClass failure = FailureClass::kSoft;  // when !ok
};
// Something outside the polls saw the resource die (a worker exited, the
// link went down): treated as a failed LooksAlive, so IsAlive runs at once.
struct ResourceLooksDead {
  int resource = 0;
  std::string reason;
};
// The time returned by next_wakeup() has come.
struct Timer {};
// Maintenance: the resources (by index, one flag each) the controller stops acting on while the
// group is to be online. It still polls them and reports what it sees, but starts, stops and
// recovers none of them: a failure leaves the resource Failed, an IsAlive that succeeds again
// makes it Online, and a group with one does not fail over. A resource managed again is
// handled from the state it is in (a failure seen meanwhile is recovered then). TakeOffline and
// TerminateAll still act on every resource: the shell sends them only when the node must stop
// everything (shutdown, fencing) or the operator moved the group.
struct SetUnmanaged {
  std::vector<bool> unmanaged;
};

// The node owns the group still, but its agent restarted under the same lease and does not
// know what runs: every resource is probed with IsAlive first, all at once. Those that answer
// are Online again without being started; then the group goes on as after BringOnline (the
// others are brought online bottom-up, an online resource whose dependency is not online is
// taken offline first).
struct Adopt {};

using ControllerEvent = std::variant<BringOnline, TakeOffline, TerminateAll, CallFinished,
                                     ResourceLooksDead, Timer, SetUnmanaged, Adopt>;

// --- actions (controller -> shell) ---

// Run `verb` on a resource. The shell must end every call within `timeout`
// (killing its process group) and report it with CallFinished. A Terminate
// supersedes the resource's call in flight: the shell kills that call and
// never reports it.
struct Call {
  int call_id = 0;
  int resource = 0;
  Verb verb = Verb::kOnline;
  Milliseconds timeout{0};
  bool operator==(const Call&) const = default;
};
// A resource changed state (for status/<group> and the event log).
struct ResourceChanged {
  int resource = 0;
  ResourceState from = ResourceState::kOffline;
  ResourceState to = ResourceState::kOffline;
  std::string reason;
};
// The group reached an end the shell must act on.
enum class Outcome {
  kOnline,      // every resource Online (reported each time it is reached)
  kOffline,     // TakeOffline finished: release ownership (`released`)
  kTerminated,  // TerminateAll finished
  kFailover,    // restart threshold exceeded; everything is offline: release
                // ownership and record a resource-failure failover
};
struct GroupOutcome {
  Outcome outcome = Outcome::kOnline;
  std::string reason;
  // kFailover: what caused it. Soft = the restart threshold was exceeded;
  // hard = a resource cannot run on this node (placement bans the node for
  // the group); fatal = a resource is misconfigured (placement stops the
  // group everywhere).
  FailureClass failure = FailureClass::kSoft;
};

using ControllerAction = std::variant<Call, ResourceChanged, GroupOutcome>;

class GroupController {
 public:
  // `group` must have passed validate().
  explicit GroupController(GroupSpec group);

  std::vector<ControllerAction> step(const ControllerEvent& event, Clock::TimePoint now);

  // When the controller next needs a Timer event; nullopt = only on events.
  std::optional<Clock::TimePoint> next_wakeup() const;

  const GroupSpec& spec() const { return group_; }
  ResourceState state(int resource) const { return resources_[resource].state; }
  GroupStatus group_status() const;
  // Restarts of the resource still inside its restart period.
  int restart_count(int resource) const {
    return static_cast<int>(resources_[resource].restarts.size());
  }
  const std::string& last_error(int resource) const { return resources_[resource].last_error; }
  bool unmanaged(int resource) const { return resources_[resource].unmanaged; }

 private:
  enum class Target { kIdle, kOnline, kOffline, kTerminate, kFailover };

  struct Resource {
    ResourceState state = ResourceState::kOffline;
    std::optional<int> call_id;  // the call in flight
    Verb call_verb = Verb::kOnline;
    bool terminated = false;  // a Terminate ran since the last TerminateAll/failure
    // Failed, its Terminate held back until every resource depending on it is down: a
    // dependent still online may hold what the Terminate would end by force (a website's
    // folder on a mount whose Terminate kills every holder), so it goes offline first.
    bool terminate_pending = false;
    bool is_alive_now = false;       // LooksAlive said false: run IsAlive next
    bool unmanaged = false;          // SetUnmanaged
    bool failure_unhandled = false;  // failed while unmanaged: recovered once managed again
    bool probing = false;            // Adopt: its IsAlive tells what state it is in
    Clock::TimePoint next_looks_alive{};
    Clock::TimePoint next_is_alive{};
    std::optional<Clock::TimePoint> restart_at;  // RestartDelay running
    std::optional<Clock::TimePoint> retry_at;    // left Failed until then
    std::deque<Clock::TimePoint> restarts;       // inside restart_period
    std::string last_error;
    FailureClass last_failure = FailureClass::kSoft;  // of the failure being handled
  };

  using Actions = std::vector<ControllerAction>;

  void on_call_finished(const CallFinished& done, Clock::TimePoint now, Actions& actions);
  void on_failure(int r, const std::string& reason, FailureClass failure, Actions& actions);
  // Unmanaged and the group is to be online: the controller only watches it.
  bool hands_off(int r) const;
  bool any_unmanaged() const;
  void poll_unmanaged(int r, Clock::TimePoint now, Actions& actions);
  void after_terminate(int r, Clock::TimePoint now, Actions& actions);
  void reconcile(Clock::TimePoint now, Actions& actions);
  void reconcile_online(Clock::TimePoint now, Actions& actions);
  // A check just passed (or the resource came online): the next polls count from now.
  void restart_polls(int r, Clock::TimePoint now);
  // Adopt: issues the probes not yet issued; true while one is outstanding.
  bool probe_adopted(Actions& actions);
  void reconcile_offline(Actions& actions);
  void reconcile_terminate(Actions& actions);

  void set_state(int r, ResourceState to, std::string reason, Actions& actions);
  void issue(int r, Verb verb, Actions& actions);
  bool dependencies_online(int r) const;
  bool dependents_down(int r) const;
  bool all_settled() const;

  GroupSpec group_;
  std::vector<int> order_;  // online order
  std::vector<Resource> resources_;
  Target target_ = Target::kIdle;
  std::string failover_reason_;
  FailureClass failover_failure_ = FailureClass::kSoft;
  bool reported_online_ = false;
  int next_call_id_ = 1;
};

}  // namespace clusweb::cluster
