#include "cluster/group_controller.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

namespace clusweb::cluster {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

ResourceSpec resource(std::string name, std::vector<std::vector<std::string>> depends_on = {}) {
  ResourceSpec spec;
  spec.name = std::move(name);
  spec.type = "script";
  spec.depends_on = std::move(depends_on);
  return spec;
}

// ip <- site (the site depends on the address).
GroupSpec web_group() {
  GroupSpec group;
  group.name = "shop";
  group.resources = {resource("ip"), resource("site", {{"ip"}})};
  return group;
}

// Drives a controller in simulated time and remembers the calls in flight.
class Driver {
 public:
  explicit Driver(GroupSpec group) : controller_(std::move(group)) {}

  void send(const ControllerEvent& event) { record(controller_.step(event, now_)); }
  void advance(Clock::Duration by) { now_ += by; }
  // Advances to the controller's next wakeup and delivers the Timer.
  void wake() {
    auto wakeup = controller_.next_wakeup();
    ASSERT_TRUE(wakeup.has_value());
    now_ = std::max(now_, *wakeup);
    send(Timer{});
  }

  // The one call in flight for `resource`; fails the test when there is none.
  Call pending(int resource) const {
    for (const auto& [id, call] : in_flight_) {
      if (call.resource == resource) return call;
    }
    ADD_FAILURE() << "no call in flight for resource " << resource;
    return {};
  }
  bool has_pending(int resource, Verb verb) const {
    return std::any_of(in_flight_.begin(), in_flight_.end(), [&](const auto& entry) {
      return entry.second.resource == resource && entry.second.verb == verb;
    });
  }
  size_t in_flight() const { return in_flight_.size(); }

  // Answers the call in flight for `resource`, which must be `verb`.
  void finish(int resource, Verb verb, bool ok, bool timed_out = false) {
    Call call = pending(resource);
    ASSERT_EQ(call.verb, verb) << "resource " << resource;
    in_flight_.erase(call.call_id);
    send(CallFinished{call.call_id, ok, timed_out, ok ? "" : "exit status 1"});
  }
  // Fails the call in flight for `resource` with a failure of `failure`'s class.
  void fail(int resource, Verb verb, FailureClass failure, std::string detail) {
    Call call = pending(resource);
    ASSERT_EQ(call.verb, verb) << "resource " << resource;
    in_flight_.erase(call.call_id);
    send(CallFinished{call.call_id, false, false, std::move(detail), failure});
  }

  GroupController& controller() { return controller_; }
  const std::vector<Call>& calls() const { return calls_; }
  const std::vector<GroupOutcome>& outcomes() const { return outcomes_; }
  const std::vector<ResourceChanged>& changes() const { return changes_; }
  Clock::TimePoint now() const { return now_; }

 private:
  void record(const std::vector<ControllerAction>& actions) {
    for (const ControllerAction& action : actions) {
      if (const auto* call = std::get_if<Call>(&action)) {
        if (call->verb == Verb::kTerminate) {
          // A Terminate supersedes the resource's call in flight.
          std::erase_if(in_flight_,
                        [&](const auto& e) { return e.second.resource == call->resource; });
        }
        in_flight_[call->call_id] = *call;
        calls_.push_back(*call);
      } else if (const auto* outcome = std::get_if<GroupOutcome>(&action)) {
        outcomes_.push_back(*outcome);
      } else {
        changes_.push_back(std::get<ResourceChanged>(action));
      }
    }
  }

  GroupController controller_;
  Clock::TimePoint now_{std::chrono::hours(10)};
  std::map<int, Call> in_flight_;
  std::vector<Call> calls_;
  std::vector<GroupOutcome> outcomes_;
  std::vector<ResourceChanged> changes_;
};

// A group whose address is polled so rarely that it stays out of the way
// of tests about the site.
GroupSpec quiet_address_group() {
  GroupSpec group = web_group();
  group.resources[0].policy.looks_alive_interval = std::chrono::hours(24);
  group.resources[0].policy.is_alive_interval = std::chrono::hours(24);
  return group;
}

void bring_online(Driver& driver) {
  driver.send(BringOnline{});
  driver.finish(0, Verb::kOnline, true);
  driver.finish(1, Verb::kOnline, true);
}

TEST(GroupControllerTest, OnlineGoesBottomUpAlongDependencies) {
  Driver driver(web_group());
  driver.send(BringOnline{});
  ASSERT_EQ(driver.calls().size(), 1u);
  EXPECT_EQ(driver.calls()[0].resource, 0);
  EXPECT_EQ(driver.calls()[0].verb, Verb::kOnline);
  EXPECT_EQ(driver.calls()[0].timeout, milliseconds(180000));
  EXPECT_EQ(driver.controller().group_status(), GroupStatus::kPending);

  driver.finish(0, Verb::kOnline, true);
  EXPECT_TRUE(driver.has_pending(1, Verb::kOnline));
  EXPECT_TRUE(driver.outcomes().empty());

  driver.finish(1, Verb::kOnline, true);
  ASSERT_EQ(driver.outcomes().size(), 1u);
  EXPECT_EQ(driver.outcomes()[0].outcome, Outcome::kOnline);
  EXPECT_EQ(driver.controller().group_status(), GroupStatus::kOnline);
}

TEST(GroupControllerTest, OfflineGoesTopDownThenReportsOffline) {
  Driver driver(web_group());
  bring_online(driver);
  driver.send(TakeOffline{});
  EXPECT_TRUE(driver.has_pending(1, Verb::kOffline));
  EXPECT_FALSE(driver.has_pending(0, Verb::kOffline));
  driver.finish(1, Verb::kOffline, true);
  EXPECT_TRUE(driver.has_pending(0, Verb::kOffline));
  driver.finish(0, Verb::kOffline, true);
  ASSERT_EQ(driver.outcomes().back().outcome, Outcome::kOffline);
  EXPECT_EQ(driver.controller().group_status(), GroupStatus::kOffline);
  EXPECT_FALSE(driver.controller().next_wakeup().has_value());
}

TEST(GroupControllerTest, AnyOfDependencyNeedsOnlyOneOnline) {
  GroupSpec group;
  group.name = "dual";
  group.resources = {resource("ip4"), resource("ip6"), resource("site", {{"ip4", "ip6"}})};
  Driver driver(group);
  driver.send(BringOnline{});
  driver.finish(1, Verb::kOnline, true);
  EXPECT_TRUE(driver.has_pending(2, Verb::kOnline));
}

TEST(GroupControllerTest, PollsLooksAliveEverySecondAndIsAliveEveryTenSeconds) {
  Driver driver(web_group());
  bring_online(driver);
  const Clock::TimePoint online_at = driver.now();
  driver.wake();
  EXPECT_EQ(driver.now() - online_at, seconds(1));
  EXPECT_TRUE(driver.has_pending(0, Verb::kLooksAlive));
  EXPECT_EQ(driver.pending(0).timeout, milliseconds(5000));
  driver.finish(0, Verb::kLooksAlive, true);
  driver.finish(1, Verb::kLooksAlive, true);
  for (int i = 0; i < 8; ++i) {
    driver.wake();
    driver.finish(0, Verb::kLooksAlive, true);
    driver.finish(1, Verb::kLooksAlive, true);
  }
  driver.wake();
  EXPECT_EQ(driver.now() - online_at, seconds(10));
  driver.finish(0, Verb::kIsAlive, true);
  driver.finish(1, Verb::kIsAlive, true);
  EXPECT_EQ(*driver.controller().next_wakeup() - driver.now(), seconds(1));
}

TEST(GroupControllerTest, FalseLooksAliveRunsIsAliveAtOnce) {
  Driver driver(web_group());
  bring_online(driver);
  driver.wake();
  driver.finish(0, Verb::kLooksAlive, true);
  driver.finish(1, Verb::kLooksAlive, false);
  EXPECT_TRUE(driver.has_pending(1, Verb::kIsAlive));
  driver.finish(1, Verb::kIsAlive, true);
  EXPECT_EQ(driver.controller().state(1), ResourceState::kOnline);
}

TEST(GroupControllerTest, ResourceLooksDeadRunsIsAliveAtOnce) {
  Driver driver(web_group());
  bring_online(driver);
  driver.send(ResourceLooksDead{1, "worker exited"});
  EXPECT_TRUE(driver.has_pending(1, Verb::kIsAlive));
}

TEST(GroupControllerTest, FailedIsAliveTerminatesAndRestartsAfterRestartDelay) {
  Driver driver(web_group());
  bring_online(driver);
  driver.send(ResourceLooksDead{1, "worker exited"});
  driver.finish(1, Verb::kIsAlive, false);
  EXPECT_EQ(driver.controller().state(1), ResourceState::kFailed);
  EXPECT_TRUE(driver.has_pending(1, Verb::kTerminate));
  EXPECT_EQ(driver.pending(1).timeout, milliseconds(30000));
  EXPECT_EQ(driver.controller().group_status(), GroupStatus::kPartialOnline);

  driver.finish(1, Verb::kTerminate, true);
  const Clock::TimePoint terminated_at = driver.now();
  EXPECT_EQ(driver.controller().restart_count(1), 1);
  EXPECT_EQ(*driver.controller().next_wakeup() - terminated_at, milliseconds(500));
  driver.wake();
  EXPECT_TRUE(driver.has_pending(1, Verb::kOnline));
  driver.finish(1, Verb::kOnline, true);
  EXPECT_EQ(driver.outcomes().back().outcome, Outcome::kOnline);
  EXPECT_EQ(driver.outcomes().size(), 2u);
}

TEST(GroupControllerTest, OnlinePastPendingTimeoutFailsTheResource) {
  Driver driver(web_group());
  driver.send(BringOnline{});
  driver.finish(0, Verb::kOnline, false, /*timed_out=*/true);
  EXPECT_EQ(driver.controller().state(0), ResourceState::kFailed);
  EXPECT_EQ(driver.controller().last_error(0), "online did not finish within 3m");
  EXPECT_TRUE(driver.has_pending(0, Verb::kTerminate));
}

TEST(GroupControllerTest, DependentsGoOfflineWhileTheirDependencyRestarts) {
  Driver driver(web_group());
  bring_online(driver);
  driver.send(ResourceLooksDead{0, "carrier lost"});
  driver.finish(0, Verb::kIsAlive, false);
  // The address failed: the site must not serve without it. It goes offline first; the
  // address is terminated after (top-down, as an Offline would go).
  EXPECT_TRUE(driver.has_pending(1, Verb::kOffline));
  EXPECT_FALSE(driver.has_pending(0, Verb::kTerminate));
  EXPECT_EQ(driver.controller().state(0), ResourceState::kFailed);
  driver.finish(1, Verb::kOffline, true);
  driver.finish(0, Verb::kTerminate, true);
  driver.wake();
  driver.finish(0, Verb::kOnline, true);
  EXPECT_TRUE(driver.has_pending(1, Verb::kOnline));
  driver.finish(1, Verb::kOnline, true);
  EXPECT_EQ(driver.controller().group_status(), GroupStatus::kOnline);
}

// Fails resource 1 by a failed IsAlive and lets the Terminate finish.
void fail_site(Driver& driver) {
  driver.send(ResourceLooksDead{1, "worker exited"});
  driver.finish(1, Verb::kIsAlive, false);
  driver.finish(1, Verb::kTerminate, true);
}

TEST(GroupControllerTest, PastRestartThresholdTheGroupFailsOver) {
  Driver driver(quiet_address_group());
  bring_online(driver);
  for (int restart = 1; restart <= 3; ++restart) {
    fail_site(driver);
    driver.wake();
    driver.finish(1, Verb::kOnline, true);
    driver.advance(minutes(1));
  }
  fail_site(driver);
  // The fourth failure within 15 minutes: no restart, the group goes offline.
  EXPECT_FALSE(driver.has_pending(1, Verb::kOnline));
  EXPECT_TRUE(driver.has_pending(0, Verb::kOffline));
  driver.finish(0, Verb::kOffline, true);
  ASSERT_EQ(driver.outcomes().back().outcome, Outcome::kFailover);
  EXPECT_EQ(driver.outcomes().back().reason,
            "resource site failed after 3 restarts within 15m: isalive failed: exit status 1");
}

TEST(GroupControllerTest, RestartsOutsideTheRestartPeriodDoNotCount) {
  Driver driver(quiet_address_group());
  bring_online(driver);
  for (int failure = 0; failure < 10; ++failure) {
    fail_site(driver);
    driver.wake();
    ASSERT_TRUE(driver.has_pending(1, Verb::kOnline)) << "failure " << failure;
    driver.finish(1, Verb::kOnline, true);
    driver.advance(minutes(6));  // 3 failures never fit in 15 minutes
  }
  EXPECT_EQ(driver.outcomes().back().outcome, Outcome::kOnline);
}

TEST(GroupControllerTest, RestartNoFailoverStaysFailedUntilTheRetryPeriod) {
  GroupSpec group = web_group();
  group.resources[1].policy.restart_action = RestartAction::kRestartNoFailover;
  group.resources[1].policy.restart_threshold = 1;
  Driver driver(group);
  bring_online(driver);
  fail_site(driver);
  driver.wake();
  driver.finish(1, Verb::kOnline, true);
  fail_site(driver);
  EXPECT_EQ(driver.controller().state(1), ResourceState::kFailed);
  EXPECT_EQ(driver.in_flight(), 0u);
  const Clock::TimePoint failed_at = driver.now();
  // Only the address is polled meanwhile; the next wakeups are its polls.
  while (!driver.has_pending(1, Verb::kOnline)) {
    driver.wake();
    if (driver.has_pending(0, Verb::kLooksAlive)) driver.finish(0, Verb::kLooksAlive, true);
    if (driver.has_pending(0, Verb::kIsAlive)) driver.finish(0, Verb::kIsAlive, true);
  }
  EXPECT_EQ(driver.now() - failed_at, std::chrono::hours(1));
  EXPECT_TRUE(driver.outcomes().back().outcome == Outcome::kOnline);
}

TEST(GroupControllerTest, NoRestartLeavesTheResourceFailed) {
  GroupSpec group = web_group();
  group.resources[1].policy.restart_action = RestartAction::kNoRestart;
  Driver driver(group);
  bring_online(driver);
  fail_site(driver);
  EXPECT_EQ(driver.controller().state(1), ResourceState::kFailed);
  EXPECT_EQ(driver.controller().restart_count(1), 0);
  EXPECT_EQ(driver.controller().group_status(), GroupStatus::kPartialOnline);
}

TEST(GroupControllerTest, TerminateAllSupersedesCallsInFlight) {
  Driver driver(web_group());
  driver.send(BringOnline{});
  driver.finish(0, Verb::kOnline, true);
  const Call online_site = driver.pending(1);
  driver.send(TerminateAll{});
  EXPECT_TRUE(driver.has_pending(0, Verb::kTerminate));
  EXPECT_TRUE(driver.has_pending(1, Verb::kTerminate));
  // The superseded online call's late report is ignored.
  driver.send(CallFinished{online_site.call_id, true, false, ""});
  EXPECT_NE(driver.controller().state(1), ResourceState::kOnline);
  driver.finish(1, Verb::kTerminate, true);
  driver.finish(0, Verb::kTerminate, false, /*timed_out=*/true);
  ASSERT_EQ(driver.outcomes().back().outcome, Outcome::kTerminated);
  EXPECT_EQ(driver.controller().group_status(), GroupStatus::kOffline);
}

// disk <- data <- site: a mount, something on it, a site serving it.
GroupSpec stacked_group() {
  GroupSpec group;
  group.name = "files";
  group.resources = {resource("disk"), resource("data", {{"disk"}}), resource("site", {{"data"}})};
  return group;
}

TEST(GroupControllerTest, AFailedResourceIsTerminatedOnlyOnceEveryDependentIsDown) {
  Driver driver(stacked_group());
  driver.send(BringOnline{});
  driver.finish(0, Verb::kOnline, true);
  driver.finish(1, Verb::kOnline, true);
  driver.finish(2, Verb::kOnline, true);
  driver.send(ResourceLooksDead{0, "status file unreadable"});
  driver.finish(0, Verb::kIsAlive, false);
  EXPECT_EQ(driver.controller().state(0), ResourceState::kFailed);
  // The top goes first; nothing is terminated while anything above the disk still runs.
  EXPECT_TRUE(driver.has_pending(2, Verb::kOffline));
  EXPECT_EQ(driver.in_flight(), 1u);
  // The middle one fails to go offline: it is terminated (nothing depends on it any more),
  // and the disk's turn comes when that ends.
  driver.finish(2, Verb::kOffline, true);
  driver.finish(1, Verb::kOffline, false);
  EXPECT_TRUE(driver.has_pending(1, Verb::kTerminate));
  EXPECT_FALSE(driver.has_pending(0, Verb::kTerminate));
  driver.finish(1, Verb::kTerminate, true);
  EXPECT_TRUE(driver.has_pending(0, Verb::kTerminate));
  driver.finish(0, Verb::kTerminate, true);
  // Then the restart in place, bottom-up.
  driver.wake();
  driver.finish(0, Verb::kOnline, true);
  driver.wake();
  driver.finish(1, Verb::kOnline, true);
  driver.finish(2, Verb::kOnline, true);
  EXPECT_EQ(driver.controller().group_status(), GroupStatus::kOnline);
}

TEST(GroupControllerTest, TerminateAllEndsAFailedResourceAtOnceThoughDependentsAreUp) {
  Driver driver(web_group());
  bring_online(driver);
  driver.send(ResourceLooksDead{0, "carrier lost"});
  driver.finish(0, Verb::kIsAlive, false);
  ASSERT_TRUE(driver.has_pending(1, Verb::kOffline));
  // Fencing: everything ends now, whatever order an Offline would take.
  driver.send(TerminateAll{});
  EXPECT_TRUE(driver.has_pending(0, Verb::kTerminate));
  EXPECT_TRUE(driver.has_pending(1, Verb::kTerminate));
  driver.finish(0, Verb::kTerminate, true);
  driver.finish(1, Verb::kTerminate, true);
  ASSERT_EQ(driver.outcomes().back().outcome, Outcome::kTerminated);
}

TEST(GroupControllerTest, TerminateAllOfAnOfflineGroupEndsAtOnce) {
  Driver driver(web_group());
  driver.send(TerminateAll{});
  EXPECT_TRUE(driver.calls().empty());
  ASSERT_EQ(driver.outcomes().size(), 1u);
  EXPECT_EQ(driver.outcomes()[0].outcome, Outcome::kTerminated);
}

TEST(GroupControllerTest, FailedOfflineIsTerminatedAndTheGroupStillEndsOffline) {
  Driver driver(web_group());
  bring_online(driver);
  driver.send(TakeOffline{});
  driver.finish(1, Verb::kOffline, false);
  EXPECT_TRUE(driver.has_pending(1, Verb::kTerminate));
  driver.finish(1, Verb::kTerminate, true);
  driver.finish(0, Verb::kOffline, true);
  EXPECT_EQ(driver.outcomes().back().outcome, Outcome::kOffline);
}

// Maintenance (SetUnmanaged): watched, never acted on.

TEST(GroupControllerTest, AnUnmanagedResourceThatFailsIsLeftFailedAndItsDependencyUntouched) {
  Driver driver(web_group());
  bring_online(driver);
  driver.send(SetUnmanaged{{false, true}});
  driver.send(ResourceLooksDead{1, "worker exited"});
  driver.finish(1, Verb::kIsAlive, false);
  EXPECT_EQ(driver.controller().state(1), ResourceState::kFailed);
  EXPECT_TRUE(driver.controller().unmanaged(1));
  EXPECT_EQ(driver.changes().back().reason,
            "isalive failed: exit status 1 (unmanaged: left as it is)");
  EXPECT_EQ(driver.in_flight(), 0u);
  // Still watched: the address keeps its polls, the site is asked whether it runs again.
  driver.wake();
  EXPECT_TRUE(driver.has_pending(0, Verb::kLooksAlive));
  driver.finish(0, Verb::kLooksAlive, true);
  for (int i = 0; i < 20 && !driver.has_pending(1, Verb::kIsAlive); ++i) {
    driver.wake();
    if (driver.has_pending(0, Verb::kLooksAlive)) driver.finish(0, Verb::kLooksAlive, true);
    if (driver.has_pending(0, Verb::kIsAlive)) driver.finish(0, Verb::kIsAlive, true);
  }
  ASSERT_TRUE(driver.has_pending(1, Verb::kIsAlive));
  driver.finish(1, Verb::kIsAlive, true);  // repaired by hand
  EXPECT_EQ(driver.controller().state(1), ResourceState::kOnline);
  EXPECT_EQ(driver.changes().back().reason, "isalive succeeded (unmanaged)");
  for (const Call& call : driver.calls()) {
    EXPECT_TRUE(call.verb == Verb::kLooksAlive || call.verb == Verb::kIsAlive ||
                call.verb == Verb::kOnline)
        << to_string(call.verb);
  }
  EXPECT_EQ(driver.outcomes().back().outcome, Outcome::kOnline);
}

TEST(GroupControllerTest, AFailureSeenWhileUnmanagedIsRecoveredOnceManagedAgain) {
  Driver driver(quiet_address_group());
  bring_online(driver);
  driver.send(SetUnmanaged{{false, true}});
  driver.send(ResourceLooksDead{1, "worker exited"});
  driver.finish(1, Verb::kIsAlive, false);
  EXPECT_FALSE(driver.has_pending(1, Verb::kTerminate));
  driver.send(SetUnmanaged{{false, false}});
  EXPECT_TRUE(driver.has_pending(1, Verb::kTerminate));
  driver.finish(1, Verb::kTerminate, true);
  EXPECT_EQ(driver.controller().restart_count(1), 1);
  driver.wake();
  driver.finish(1, Verb::kOnline, true);
  EXPECT_EQ(driver.controller().group_status(), GroupStatus::kOnline);
}

TEST(GroupControllerTest, AGroupWithAnUnmanagedResourceStaysFailedInsteadOfFailingOver) {
  Driver driver(quiet_address_group());
  bring_online(driver);
  driver.send(SetUnmanaged{{true, false}});
  for (int restart = 1; restart <= 3; ++restart) {
    fail_site(driver);
    driver.wake();
    driver.finish(1, Verb::kOnline, true);
    driver.advance(minutes(1));
  }
  fail_site(driver);
  EXPECT_EQ(driver.in_flight(), 0u);  // the address stays: the group does not fail over
  EXPECT_EQ(driver.controller().state(0), ResourceState::kOnline);
  EXPECT_EQ(driver.controller().state(1), ResourceState::kFailed);
  EXPECT_NE(driver.outcomes().back().outcome, Outcome::kFailover);
  // Retried after its retry period (an hour), as RestartNoFailover would.
  EXPECT_EQ(*driver.controller().next_wakeup() - driver.now(), std::chrono::hours(1));
}

TEST(GroupControllerTest, AnUnmanagedGroupBroughtOnlineIsProbedNotStarted) {
  Driver driver(web_group());
  driver.send(SetUnmanaged{{true, true}});
  driver.send(BringOnline{});
  EXPECT_TRUE(driver.has_pending(0, Verb::kIsAlive));
  EXPECT_TRUE(driver.has_pending(1, Verb::kIsAlive));
  driver.finish(0, Verb::kIsAlive, true);
  driver.finish(1, Verb::kIsAlive, false);  // not running: stays Offline, nothing started
  EXPECT_EQ(driver.controller().state(0), ResourceState::kOnline);
  EXPECT_EQ(driver.controller().state(1), ResourceState::kOffline);
  EXPECT_EQ(driver.in_flight(), 0u);
  EXPECT_EQ(driver.controller().group_status(), GroupStatus::kPartialOnline);
}

TEST(GroupControllerTest, TakeOfflineStillTakesUnmanagedResourcesOffline) {
  Driver driver(web_group());
  bring_online(driver);
  driver.send(SetUnmanaged{{true, true}});
  driver.send(TakeOffline{});
  driver.finish(1, Verb::kOffline, true);
  driver.finish(0, Verb::kOffline, true);
  EXPECT_EQ(driver.outcomes().back().outcome, Outcome::kOffline);
}

TEST(GroupControllerTest, AdoptProbesEveryResourceAtOnceAndStartsNothingThatRuns) {
  Driver driver(web_group());
  driver.send(Adopt{});
  EXPECT_TRUE(driver.has_pending(0, Verb::kIsAlive));
  EXPECT_TRUE(driver.has_pending(1, Verb::kIsAlive));
  // Shown as Pending, not Offline, until the probes answer.
  EXPECT_EQ(driver.controller().group_status(), GroupStatus::kPending);
  driver.finish(1, Verb::kIsAlive, true);
  EXPECT_EQ(driver.controller().group_status(), GroupStatus::kPending);
  driver.finish(0, Verb::kIsAlive, true);
  EXPECT_EQ(driver.controller().group_status(), GroupStatus::kOnline);
  EXPECT_EQ(driver.controller().state(0), ResourceState::kOnline);
  EXPECT_EQ(driver.controller().state(1), ResourceState::kOnline);
  for (const Call& call : driver.calls()) EXPECT_EQ(call.verb, Verb::kIsAlive);
  ASSERT_EQ(driver.changes().size(), 2u);
  EXPECT_EQ(driver.changes()[0].reason, "adopted: isalive succeeded");
  ASSERT_EQ(driver.outcomes().size(), 1u);
  EXPECT_EQ(driver.outcomes()[0].outcome, Outcome::kOnline);
  // Polled from then on as if started here.
  driver.wake();
  EXPECT_TRUE(driver.has_pending(0, Verb::kLooksAlive));
}

TEST(GroupControllerTest, AdoptStartsWhatIsNotRunningOnceEveryProbeAnswered) {
  Driver driver(web_group());
  driver.send(Adopt{});
  // The address is not up, the site still serves: nothing moves before the site's answer.
  driver.finish(0, Verb::kIsAlive, false);
  EXPECT_EQ(driver.in_flight(), 1u);
  EXPECT_FALSE(driver.has_pending(0, Verb::kOnline));
  driver.finish(1, Verb::kIsAlive, true);
  // Then as always: the address comes up, and the site, online without it, goes down first.
  EXPECT_TRUE(driver.has_pending(0, Verb::kOnline));
  EXPECT_TRUE(driver.has_pending(1, Verb::kOffline));
  driver.finish(1, Verb::kOffline, true);
  driver.finish(0, Verb::kOnline, true);
  driver.finish(1, Verb::kOnline, true);
  EXPECT_EQ(driver.controller().group_status(), GroupStatus::kOnline);
  ASSERT_EQ(driver.outcomes().size(), 1u);
  EXPECT_EQ(driver.outcomes()[0].outcome, Outcome::kOnline);
  EXPECT_EQ(driver.controller().last_error(0), "isalive failed: exit status 1");
}

TEST(GroupControllerTest, TerminateAllWhileAdoptingEndsEveryResource) {
  Driver driver(web_group());
  driver.send(Adopt{});
  driver.send(TerminateAll{});
  EXPECT_TRUE(driver.has_pending(0, Verb::kTerminate));
  EXPECT_TRUE(driver.has_pending(1, Verb::kTerminate));
  driver.finish(0, Verb::kTerminate, true);
  driver.finish(1, Verb::kTerminate, true);
  ASSERT_EQ(driver.outcomes().size(), 1u);
  EXPECT_EQ(driver.outcomes()[0].outcome, Outcome::kTerminated);
}

TEST(ModelTest, ValidateNamesWhatIsWrong) {
  GroupSpec group = web_group();
  EXPECT_TRUE(validate(group).ok());

  GroupSpec unknown = web_group();
  unknown.resources[1].depends_on = {{"disk"}};
  EXPECT_EQ(validate(unknown).error().describe(),
            "group shop: resource site depends on disk, which is not in the group");

  GroupSpec twice = web_group();
  twice.resources[1].name = "ip";
  EXPECT_EQ(validate(twice).error().describe(), "group shop: resource ip is defined twice");

  GroupSpec cycle = web_group();
  cycle.resources[0].depends_on = {{"site"}};
  EXPECT_EQ(validate(cycle).error().describe(),
            "group shop: dependency cycle through resource site");

  GroupSpec bad_policy = web_group();
  bad_policy.resources[0].policy.looks_alive_interval = milliseconds(0);
  EXPECT_EQ(validate(bad_policy).error().describe(),
            "group shop resource ip: looksAliveInterval must be positive");
}

TEST(ModelTest, DependencyDepthIsLimitedTo100) {
  GroupSpec group;
  group.name = "deep";
  for (int i = 0; i <= 101; ++i) {
    group.resources.push_back(resource(fmt::format("r{}", i)));
    if (i > 0) group.resources.back().depends_on = {{fmt::format("r{}", i - 1)}};
  }
  EXPECT_EQ(validate(group).error().describe(),
            "group deep: resource r101 has dependencies 101 deep (at most 100)");
  group.resources.pop_back();
  EXPECT_TRUE(validate(group).ok());
}

TEST(ModelTest, DependencyOrderPutsDependenciesFirstAndKeepsManifestOrder) {
  GroupSpec group;
  group.name = "g";
  group.resources = {resource("site", {{"ip"}, {"disk"}}), resource("ip"), resource("disk"),
                     resource("log")};
  EXPECT_EQ(dependency_order(group), (std::vector<int>{1, 2, 0, 3}));
}

TEST(ModelTest, AllowsNeedsEveryResourceToListTheNode) {
  GroupSpec group = web_group();
  EXPECT_TRUE(allows(group, "n1"));
  group.resources[0].possible_owners = {"n1", "n2"};
  group.resources[1].possible_owners = {"n2", "n3"};
  EXPECT_FALSE(allows(group, "n1"));
  EXPECT_TRUE(allows(group, "n2"));
  EXPECT_FALSE(allows(group, "n3"));
}

// Random schedules: call results, durations, failures and group commands
// drawn from a seeded generator; invariants checked after every step.
class RandomScheduleTest : public ::testing::TestWithParam<int> {};

TEST_P(RandomScheduleTest, InvariantsHold) {
  std::mt19937 random(static_cast<unsigned>(GetParam()));
  GroupSpec group;
  group.name = "g";
  group.resources = {resource("ip"), resource("disk"), resource("pool", {{"disk"}}),
                     resource("site", {{"ip"}, {"pool", "disk"}})};
  for (ResourceSpec& spec : group.resources) {
    spec.policy.restart_threshold = 2;
    spec.policy.restart_period = minutes(1);
    spec.policy.restart_delay = milliseconds(500);
    spec.policy.looks_alive_interval = seconds(1);
    spec.policy.is_alive_interval = seconds(3);
  }
  ASSERT_TRUE(validate(group).ok());
  const GroupSpec spec = group;
  GroupController controller(group);
  Clock::TimePoint now{std::chrono::hours(1)};
  // Calls in flight: id -> (call, finish time).
  std::map<int, std::pair<Call, Clock::TimePoint>> in_flight;
  std::map<int, std::vector<Clock::TimePoint>> restarts;
  bool terminating = false;
  bool ended = false;

  auto depends_on = [&](int r, int j) {
    for (const auto& any_of : spec.resources[r].depends_on) {
      if (std::find(any_of.begin(), any_of.end(), spec.resources[j].name) != any_of.end()) {
        return true;
      }
    }
    return false;
  };
  auto check = [&](const std::vector<ControllerAction>& actions) {
    for (const ControllerAction& action : actions) {
      if (const auto* call = std::get_if<Call>(&action)) {
        if (call->verb == Verb::kTerminate) {
          std::erase_if(in_flight,
                        [&](const auto& e) { return e.second.first.resource == call->resource; });
        } else {
          for (const auto& [id, other] : in_flight) {
            ASSERT_NE(other.first.resource, call->resource) << "two calls for one resource";
          }
        }
        if (call->verb == Verb::kOnline) {
          ASSERT_FALSE(terminating) << "online while terminating";
          // Every AND term has an Online member.
          for (const auto& any_of : spec.resources[call->resource].depends_on) {
            bool one = false;
            for (size_t j = 0; j < spec.resources.size(); ++j) {
              one = one || (std::find(any_of.begin(), any_of.end(), spec.resources[j].name) !=
                                any_of.end() &&
                            controller.state(static_cast<int>(j)) == ResourceState::kOnline);
            }
            ASSERT_TRUE(one) << "online before its dependencies";
          }
        }
        if (call->verb == Verb::kOffline) {
          for (size_t j = 0; j < spec.resources.size(); ++j) {
            if (!depends_on(static_cast<int>(j), call->resource)) continue;
            ResourceState state = controller.state(static_cast<int>(j));
            ASSERT_TRUE(state == ResourceState::kOffline || state == ResourceState::kFailed)
                << "offline before a dependent";
          }
        }
        // Slow, hung (finishing at their timeout) or quick calls.
        int kind = std::uniform_int_distribution<int>(0, 19)(random);
        Clock::Duration took =
            kind == 0  ? Clock::Duration(call->timeout)
            : kind < 4 ? milliseconds(std::uniform_int_distribution<int>(100, 3000)(random))
                       : milliseconds(std::uniform_int_distribution<int>(1, 50)(random));
        in_flight[call->call_id] = {*call, now + took};
      } else if (const auto* change = std::get_if<ResourceChanged>(&action)) {
        if (change->reason.starts_with("restarting in place"))
          restarts[change->resource].push_back(now);
      } else if (const auto* outcome = std::get_if<GroupOutcome>(&action)) {
        if (outcome->outcome == Outcome::kTerminated) {
          ASSERT_TRUE(terminating);
          ASSERT_TRUE(in_flight.empty());
          ended = true;
        }
        if (outcome->outcome == Outcome::kFailover || outcome->outcome == Outcome::kOffline) {
          ASSERT_TRUE(in_flight.empty());
          for (size_t j = 0; j < spec.resources.size(); ++j) {
            ResourceState state = controller.state(static_cast<int>(j));
            ASSERT_TRUE(state == ResourceState::kOffline || state == ResourceState::kFailed);
          }
          ended = true;
        }
      }
    }
  };

  // Odd seeds: the group is adopted after an agent restart instead of brought online.
  if (GetParam() % 2 == 1) {
    check(controller.step(Adopt{}, now));
  } else {
    check(controller.step(BringOnline{}, now));
  }
  const Clock::TimePoint end = now + minutes(10);
  while (!ended && now < end) {
    // The next thing to happen: a call finishing, a timer, or an outside event.
    Clock::TimePoint next = now + seconds(2);
    std::optional<int> finishing;
    for (const auto& [id, entry] : in_flight) {
      if (entry.second < next) {
        next = entry.second;
        finishing = id;
      }
    }
    auto wakeup = controller.next_wakeup();
    if (wakeup && *wakeup < next) {
      next = *wakeup;
      finishing.reset();
    }
    now = std::max(now, next);
    if (finishing) {
      auto [call, at] = in_flight[*finishing];
      in_flight.erase(*finishing);
      bool timed_out = at - now >= Clock::Duration(call.timeout);
      bool ok = !timed_out && std::uniform_int_distribution<int>(0, 9)(random) != 0;
      check(controller.step(CallFinished{call.call_id, ok, timed_out, ""}, now));
    } else if (wakeup && *wakeup <= now) {
      check(controller.step(Timer{}, now));
    } else {
      int pick = std::uniform_int_distribution<int>(0, 99)(random);
      if (pick < 5) {
        check(controller.step(ResourceLooksDead{pick % 4, "seen dead"}, now));
      } else if (pick == 5 && !terminating) {
        terminating = true;
        check(controller.step(TerminateAll{}, now));
      }
    }
    ASSERT_FALSE(testing::Test::HasFatalFailure());
  }
  // Restart threshold: no resource restarted more than twice within a minute.
  for (const auto& [r, list] : restarts) {
    for (size_t i = 2; i < list.size(); ++i) {
      EXPECT_GT(list[i] - list[i - 2], minutes(1)) << "resource " << r << " restarted too often";
    }
  }
  EXPECT_TRUE(ended || !terminating) << "TerminateAll never finished";
}

INSTANTIATE_TEST_SUITE_P(Seeds, RandomScheduleTest, ::testing::Range(1, 301));

}  // namespace
}  // namespace clusweb::cluster

namespace clusweb::cluster {
namespace {

TEST(GroupControllerTest, AHardErrorFailsTheGroupOverWithoutRestartingInPlace) {
  Driver driver(quiet_address_group());
  bring_online(driver);
  driver.advance(seconds(1));
  driver.send(Timer{});
  // LooksAlive answering "not installed here": IsAlive cannot change that.
  driver.fail(1, Verb::kLooksAlive, FailureClass::kHard, "monitor: exited 5 (not installed)");
  EXPECT_EQ(driver.controller().state(1), ResourceState::kFailed);
  driver.finish(1, Verb::kTerminate, true);
  EXPECT_EQ(driver.controller().restart_count(1), 0);
  EXPECT_TRUE(driver.has_pending(0, Verb::kOffline));
  driver.finish(0, Verb::kOffline, true);
  ASSERT_EQ(driver.outcomes().back().outcome, Outcome::kFailover);
  EXPECT_EQ(driver.outcomes().back().failure, FailureClass::kHard);
  EXPECT_EQ(driver.outcomes().back().reason,
            "resource site cannot run on this node: looksalive failed: monitor: exited 5 (not "
            "installed)");
}

TEST(GroupControllerTest, AFatalErrorTakesTheGroupOfflineAsMisconfigured) {
  Driver driver(web_group());
  driver.send(BringOnline{});
  driver.finish(0, Verb::kOnline, true);
  driver.fail(1, Verb::kOnline, FailureClass::kFatal, "start: exited 6 (not configured)");
  driver.finish(1, Verb::kTerminate, true);
  EXPECT_FALSE(driver.has_pending(1, Verb::kOnline));
  driver.finish(0, Verb::kOffline, true);
  ASSERT_EQ(driver.outcomes().back().outcome, Outcome::kFailover);
  EXPECT_EQ(driver.outcomes().back().failure, FailureClass::kFatal);
  EXPECT_EQ(driver.outcomes().back().reason,
            "resource site is misconfigured: online failed: start: exited 6 (not configured)");
}

}  // namespace
}  // namespace clusweb::cluster
