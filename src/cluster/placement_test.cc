#include "cluster/placement.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>

namespace clusweb::cluster {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using ::testing::HasSubstr;

const WallTime kNow = std::chrono::sys_days{std::chrono::year{2026} / 1 / 1} + hours(12);

NodeState up(const std::string& name) { return NodeState{name, true, false}; }
NodeState down(const std::string& name) { return NodeState{name, false, false}; }
NodeState paused(const std::string& name) { return NodeState{name, true, true}; }

std::vector<NodeState> three_up() { return {up("n1"), up("n2"), up("n3")}; }

ResourceSpec resource(const std::string& name, std::vector<std::string> possible_owners = {}) {
  ResourceSpec resource;
  resource.name = name;
  resource.type = "script";
  resource.possible_owners = std::move(possible_owners);
  return resource;
}

GroupState group(const std::string& name, std::vector<std::string> preferred = {}) {
  GroupState group;
  group.spec.name = name;
  group.spec.preferred_owners = std::move(preferred);
  group.spec.resources.push_back(resource("r1"));
  return group;
}

GroupState owned_by(GroupState group, const std::string& node, int64_t token = 10) {
  group.owner = node;
  group.owner_token = token;
  group.placement = node;
  return group;
}

GroupState with_failovers(GroupState group,
                          const std::vector<std::pair<std::string, WallTime>>& failovers) {
  for (const auto& [node, at] : failovers) group.failovers.push_back(FailoverRecord{node, at});
  return group;
}

PlacementDecision place_one(const std::vector<NodeState>& nodes, const GroupState& group,
                            WallTime now = kNow) {
  auto decisions = place(nodes, {group}, now);
  EXPECT_EQ(decisions.size(), 1U);
  return decisions.empty() ? PlacementDecision{} : decisions.front();
}

// --- rule 1 and rule 8 ---

TEST(PlacementTest, OfflineRequestPlacesNowhereEvenWithAnUpOwner) {
  GroupState web = owned_by(group("web"), "n1");
  web.offline_requested = true;
  auto decision = place_one(three_up(), web);
  EXPECT_EQ(decision.group, "web");
  EXPECT_EQ(decision.node, std::nullopt);
  EXPECT_EQ(decision.reason, "offline by administrator");
}

TEST(PlacementTest, AnUnmanagedGroupStaysOnItsOwnerWhateverElseIsAsked) {
  GroupState web = owned_by(group("web", {"n2"}), "n1");
  web.offline_requested = true;
  web.unmanaged = true;
  auto decision = place_one(three_up(), web);
  EXPECT_EQ(decision.node, "n1");
  EXPECT_EQ(decision.reason, "unmanaged: stays on its owner n1");
  web.owner.reset();
  web.placement = "n3";
  EXPECT_EQ(place_one({down("n3"), up("n2")}, web).node, "n3");
  // An owner that left the membership (its agent is stopping) lets the usual rules decide.
  GroupState leaving = owned_by(group("web", {"n2"}), "n1");
  leaving.unmanaged = true;
  auto moved = place_one({down("n1"), up("n2")}, leaving);
  EXPECT_EQ(moved.node, "n2");
  EXPECT_EQ(moved.reason.rfind("unmanaged, but its owner n1 is leaving", 0), 0u) << moved.reason;
}

TEST(PlacementTest, NoNodesPlacesNowhere) {
  auto decision = place_one({}, group("web", {"n1"}));
  EXPECT_EQ(decision.node, std::nullopt);
  EXPECT_EQ(decision.reason, "no node can run it: the cluster has no nodes");
}

TEST(PlacementTest, AllNodesDownPlacesNowhereAndSaysWhy) {
  auto decision = place_one({down("n2"), down("n1"), paused("n3")}, owned_by(group("web"), "n1"));
  EXPECT_EQ(decision.node, std::nullopt);
  EXPECT_EQ(decision.reason, "its owner n1 is down; no node can run it: n1, n2 down; n3 paused");
}

TEST(PlacementTest, NoGroupsNoDecisions) { EXPECT_TRUE(place(three_up(), {}, kNow).empty()); }

// --- rule 4: stickiness ---

TEST(PlacementTest, UpOwnerKeepsGroupOverPreferredOwner) {
  auto decision = place_one(three_up(), owned_by(group("web", {"n1", "n2"}), "n3"));
  EXPECT_EQ(decision.node, "n3");
  EXPECT_EQ(decision.reason, "stays on its owner n3");
}

TEST(PlacementTest, PausedOwnerKeepsGroup) {
  auto decision = place_one({paused("n1"), up("n2")}, owned_by(group("web"), "n1"));
  EXPECT_EQ(decision.node, "n1");
  EXPECT_EQ(decision.reason, "stays on its owner n1, which is paused");
}

TEST(PlacementTest, PausedNodeTakesNoNewGroup) {
  // Placed on the paused node but not yet acquired: a new group for it, so it goes elsewhere.
  GroupState web = group("web", {"n1", "n2"});
  web.placement = "n1";
  auto decision = place_one({paused("n1"), up("n2")}, web);
  EXPECT_EQ(decision.node, "n2");
  EXPECT_EQ(decision.reason, "its node n1 is paused; first available preferred owner n2");

  auto only_paused = place_one({paused("n1")}, group("api"));
  EXPECT_EQ(only_paused.node, std::nullopt);
  EXPECT_EQ(only_paused.reason, "no node can run it: n1 paused");
}

TEST(PlacementTest, PlacementWithoutOwnerIsSticky) {
  GroupState web = group("web", {"n1"});
  web.placement = "n2";
  auto decision = place_one(three_up(), web);
  EXPECT_EQ(decision.node, "n2");
  EXPECT_EQ(decision.reason, "stays on n2, where it is placed");
}

TEST(PlacementTest, PlacementOnNodeThatFailedTheGroupIsNotSticky) {
  GroupState web = with_failovers(group("web", {"n2", "n3"}), {{"n2", kNow - minutes(5)}});
  web.placement = "n2";
  auto decision = place_one(three_up(), web);
  EXPECT_EQ(decision.node, "n3");
  EXPECT_THAT(decision.reason, HasSubstr("its node n2 failed it at 2026-01-01T11:55:00Z"));
}

TEST(PlacementTest, OwnerThatIsNoLongerAllowedLosesTheGroup) {
  GroupState web = owned_by(group("web"), "n1");
  web.spec.resources[0].possible_owners = {"n2", "n3"};
  auto decision = place_one(three_up(), web);
  EXPECT_EQ(decision.node, "n2");
  EXPECT_EQ(decision.reason,
            "its owner n1 is not a possible owner; least loaded node n2 (0 groups)");
}

TEST(PlacementTest, UnknownOwnerCountsAsGone) {
  auto decision = place_one(three_up(), owned_by(group("web", {"n2"}), "n9"));
  EXPECT_EQ(decision.node, "n2");
  EXPECT_EQ(decision.reason,
            "its owner n9 is not a known node; first available preferred owner n2");
}

// --- rule 5: preferred owners ---

TEST(PlacementTest, OwnerDownGoesToFirstAvailablePreferredOwner) {
  auto decision = place_one({down("n1"), down("n2"), up("n3"), up("n4")},
                            owned_by(group("web", {"n1", "n2", "n4", "n3"}), "n1"));
  EXPECT_EQ(decision.node, "n4");
  EXPECT_EQ(decision.reason, "its owner n1 is down; first available preferred owner n4");
}

TEST(PlacementTest, PreferredOwnersThatAreUnknownPausedOrNotAllowedAreSkipped) {
  GroupState web = group("web", {"n9", "n1", "n2", "n3"});
  web.spec.resources[0].possible_owners = {"n1", "n3"};
  auto decision = place_one({paused("n1"), up("n2"), up("n3")}, web);
  EXPECT_EQ(decision.node, "n3");
}

// --- possible owners ---

TEST(PlacementTest, PossibleOwnersIntersectAcrossResources) {
  GroupState web = group("web", {"n1", "n3"});
  web.spec.resources[0].possible_owners = {"n1", "n2"};
  web.spec.resources.push_back(resource("r2", {"n2", "n3"}));
  web.spec.resources.push_back(resource("r3"));  // any node
  auto decision = place_one(three_up(), web);
  EXPECT_EQ(decision.node, "n2");
  EXPECT_EQ(decision.reason, "least loaded node n2 (0 groups)");
}

TEST(PlacementTest, EmptyIntersectionPlacesNowhere) {
  GroupState web = group("web");
  web.spec.resources[0].possible_owners = {"n1"};
  web.spec.resources.push_back(resource("r2", {"n2"}));
  auto decision = place_one({up("n1"), up("n2"), down("n3")}, web);
  EXPECT_EQ(decision.node, std::nullopt);
  EXPECT_EQ(decision.reason, "no node can run it: n3 down; n1, n2 not a possible owner");
}

// --- rule 6: load ---

TEST(PlacementTest, LeastLoadedWithTiesByName) {
  auto decisions =
      place({up("n3"), up("n1"), up("n2")}, {group("a"), group("b"), group("c"), group("d")}, kNow);
  ASSERT_EQ(decisions.size(), 4U);
  EXPECT_EQ(decisions[0].node, "n1");
  EXPECT_EQ(decisions[1].node, "n2");
  EXPECT_EQ(decisions[2].node, "n3");
  EXPECT_EQ(decisions[3].node, "n1");
  EXPECT_EQ(decisions[3].reason, "least loaded node n1 (1 group)");
}

TEST(PlacementTest, StickyGroupsCountBeforeNewOnesAndDecisionsKeepInputOrder) {
  // "c" stays on n1 although it comes last, so the new groups avoid n1.
  auto decisions = place(three_up(), {group("a"), group("b"), owned_by(group("c"), "n1")}, kNow);
  ASSERT_EQ(decisions.size(), 3U);
  EXPECT_EQ(decisions[0].group, "a");
  EXPECT_EQ(decisions[0].node, "n2");
  EXPECT_EQ(decisions[1].group, "b");
  EXPECT_EQ(decisions[1].node, "n3");
  EXPECT_EQ(decisions[2].group, "c");
  EXPECT_EQ(decisions[2].node, "n1");
}

TEST(PlacementTest, GroupsPlacedByPreferenceCountAsLoad) {
  auto decisions = place(three_up(), {group("a", {"n1"}), group("b"), group("c")}, kNow);
  EXPECT_EQ(decisions[0].node, "n1");
  EXPECT_EQ(decisions[1].node, "n2");
  EXPECT_EQ(decisions[2].node, "n3");
}

TEST(PlacementTest, OfflineAndFailedGroupsAddNoLoad) {
  GroupState offline = owned_by(group("a"), "n1");
  offline.offline_requested = true;
  auto decisions = place({up("n1"), up("n2")}, {offline, group("b")}, kNow);
  EXPECT_EQ(decisions[1].node, "n1");
}

// --- rule 2: Failed ---

TEST(PlacementTest, FailoverThresholdExactlyReachedIsStillPlaced) {
  GroupState web = group("web", {"n1"});
  web.spec.failover_threshold = 2;
  web = with_failovers(web, {{"n2", kNow - hours(2)}, {"n3", kNow - hours(1)}});
  auto decision = place_one(three_up(), web);
  EXPECT_EQ(decision.node, "n1");
  EXPECT_EQ(decision.reason, "first available preferred owner n1");
}

TEST(PlacementTest, FailoverThresholdExceededIsFailedUntilRetry) {
  GroupState web = owned_by(group("web", {"n1"}), "n1");
  web.spec.failover_threshold = 2;
  web.spec.retry_period_on_failure = hours(1);
  web = with_failovers(
      web, {{"n1", kNow - hours(3)}, {"n2", kNow - minutes(90)}, {"n3", kNow - minutes(30)}});
  auto decision = place_one(three_up(), web);
  EXPECT_EQ(decision.node, std::nullopt);
  EXPECT_EQ(decision.reason,
            "failed over 3 times within 6h, more than its threshold of 2; "
            "retry at 2026-01-01T12:30:00Z");
}

TEST(PlacementTest, DefaultThresholdIsNodesMinusOneAtLeastOne) {
  auto two_failovers =
      with_failovers(group("web"), {{"n1", kNow - hours(2)}, {"n2", kNow - minutes(10)}});
  // Three nodes: threshold 2, reached but not exceeded.
  EXPECT_TRUE(place_one(three_up(), two_failovers).node.has_value());
  // Two nodes (one of them down still counts): threshold 1, exceeded.
  EXPECT_FALSE(place_one({up("n1"), down("n2")}, two_failovers).node.has_value());
  // One node: threshold 1 rather than 0.
  auto one_failover = with_failovers(group("web"), {{"n1", kNow - hours(1)}});
  EXPECT_EQ(place_one({up("n1")}, one_failover).node, "n1");
}

TEST(PlacementTest, ZeroThresholdFailsOnTheFirstFailover) {
  GroupState web = with_failovers(group("web"), {{"n1", kNow - minutes(10)}});
  web.spec.failover_threshold = 0;
  EXPECT_EQ(place_one(three_up(), web).node, std::nullopt);
}

TEST(PlacementTest, RetryAfterRetryPeriodAvoidsNodesThatFailedIt) {
  GroupState web = group("web", {"n1", "n2", "n3"});
  web.spec.failover_threshold = 1;
  web.spec.retry_period_on_failure = hours(1);
  const WallTime last = kNow - hours(1);
  web = with_failovers(web, {{"n1", kNow - hours(2)}, {"n2", last}});

  auto before = place_one(three_up(), web, kNow - milliseconds(1));
  EXPECT_EQ(before.node, std::nullopt);
  EXPECT_THAT(before.reason, HasSubstr("retry at 2026-01-01T12:00:00Z"));

  auto at_retry = place_one(three_up(), web, kNow);
  EXPECT_EQ(at_retry.node, "n3");
  EXPECT_EQ(at_retry.reason,
            "retrying after failing over 2 times within 6h; first available preferred owner n3");
}

TEST(PlacementTest, FailoversOlderThanThePeriodAreIgnored) {
  GroupState web = group("web", {"n1", "n2"});
  web.spec.failover_threshold = 1;
  web.spec.failover_period = hours(6);
  // Exactly one period ago is outside the window (now - period, now].
  web = with_failovers(web, {{"n1", kNow - hours(6)}, {"n1", kNow - hours(7)}});
  auto decision = place_one(three_up(), web);
  EXPECT_EQ(decision.node, "n1");
  EXPECT_EQ(decision.reason, "first available preferred owner n1");
}

TEST(PlacementTest, FailoversAfterNowAreIgnored) {
  GroupState web = with_failovers(group("web", {"n1"}), {{"n1", kNow + minutes(1)}});
  EXPECT_EQ(place_one(three_up(), web).node, "n1");
}

TEST(PlacementTest, FailedGroupIgnoresMoveRequest) {
  GroupState web = group("web");
  web.spec.failover_threshold = 0;
  web = with_failovers(web, {{"n1", kNow - minutes(1)}});
  web.move = MoveRequest{"n2", 50};
  EXPECT_EQ(place_one(three_up(), web).node, std::nullopt);
}

// --- rules 5-7: failure history ---

TEST(PlacementTest, PreferredOwnerThatFailedTheGroupIsAvoided) {
  GroupState web = with_failovers(group("web", {"n1", "n2"}), {{"n1", kNow - hours(1)}});
  EXPECT_EQ(place_one(three_up(), web).node, "n2");
}

TEST(PlacementTest, LeastLoadedSkipsNodesThatFailedTheGroup) {
  GroupState web = with_failovers(group("web"), {{"n1", kNow - hours(1)}});
  auto decision = place_one(three_up(), web);
  EXPECT_EQ(decision.node, "n2");
}

TEST(PlacementTest, WhenEveryNodeFailedItTheOldestFailureGoesFirst) {
  GroupState web = group("web", {"n1", "n2", "n3"});
  web.spec.failover_threshold = 5;
  web = with_failovers(web, {{"n1", kNow - hours(3)},
                             {"n2", kNow - hours(4)},
                             {"n3", kNow - hours(2)},
                             {"n2", kNow - hours(1)}});  // n2's latest failure counts
  auto decision = place_one(three_up(), web);
  EXPECT_EQ(decision.node, "n1");
  EXPECT_EQ(decision.reason,
            "every available node failed it within 6h; n1 failed it longest ago, at "
            "2026-01-01T09:00:00Z");
}

TEST(PlacementTest, NodeThatFailedItRecentlyIsStillBetterThanNowhere) {
  GroupState web = with_failovers(group("web"), {{"n1", kNow - minutes(1)}});
  EXPECT_EQ(place_one({up("n1"), down("n2")}, web).node, "n1");
}

// --- rule 3: move requests ---

TEST(PlacementTest, PendingMoveGoesToTheNamedNode) {
  GroupState web = owned_by(group("web", {"n1"}), "n1", 10);
  web.move = MoveRequest{"n3", 20};
  auto decision = place_one(three_up(), web);
  EXPECT_EQ(decision.node, "n3");
  EXPECT_EQ(decision.reason, "moves to n3 as requested");

  // Still pending while nobody owns the group (between release and acquire).
  web.owner.reset();
  web.placement = "n3";
  EXPECT_EQ(place_one(three_up(), web).node, "n3");
}

TEST(PlacementTest, PendingMoveToTheOwnerKeepsItThere) {
  GroupState web = owned_by(group("web", {"n2"}), "n1", 10);
  web.spec.failback = FailbackPolicy::kAllow;
  web.move = MoveRequest{"n1", 20};
  auto decision = place_one(three_up(), web);
  EXPECT_EQ(decision.node, "n1");
  EXPECT_EQ(decision.reason, "stays on n1 as requested");
}

TEST(PlacementTest, SatisfiedMoveIsIgnored) {
  GroupState web = owned_by(group("web", {"n1"}), "n2", 30);
  web.move = MoveRequest{"n3", 20};  // n2 acquired it after the request
  auto decision = place_one(three_up(), web);
  EXPECT_EQ(decision.node, "n2");
  EXPECT_EQ(decision.reason, "stays on its owner n2");

  web.owner_token = 20;  // the same revision cannot be later than the request either
  EXPECT_EQ(place_one(three_up(), web).node, "n2");
}

TEST(PlacementTest, MoveToAnUnavailableNodeIsIgnoredWithTheReason) {
  GroupState web = owned_by(group("web"), "n1", 10);
  web.move = MoveRequest{"n2", 20};
  auto to_down = place_one({up("n1"), down("n2")}, web);
  EXPECT_EQ(to_down.node, "n1");
  EXPECT_EQ(to_down.reason, "cannot move to n2 as requested: n2 is down; stays on its owner n1");

  auto to_paused = place_one({up("n1"), paused("n2")}, web);
  EXPECT_EQ(to_paused.node, "n1");
  EXPECT_THAT(to_paused.reason, HasSubstr("n2 is paused"));

  web.spec.resources[0].possible_owners = {"n1"};
  auto to_disallowed = place_one({up("n1"), up("n2")}, web);
  EXPECT_EQ(to_disallowed.node, "n1");
  EXPECT_THAT(to_disallowed.reason, HasSubstr("n2 is not a possible owner"));
}

TEST(PlacementTest, MoveWithoutTargetGoesToTheBestOtherNode) {
  GroupState web = owned_by(group("web", {"n1", "n2"}), "n1", 10);
  web.move = MoveRequest{"", 20};
  auto decision = place_one(three_up(), web);
  EXPECT_EQ(decision.node, "n2");
  EXPECT_EQ(decision.reason,
            "moving away from n1 as requested; first available preferred owner n2");

  web.spec.preferred_owners = {"n1"};
  EXPECT_EQ(place_one(three_up(), web).node, "n2");  // least loaded other node, ties by name
}

TEST(PlacementTest, MoveWithoutTargetStaysWhenNoOtherNodeQualifies) {
  GroupState web = owned_by(group("web"), "n1", 10);
  web.move = MoveRequest{"", 20};
  auto decision = place_one({up("n1"), down("n2"), paused("n3")}, web);
  EXPECT_EQ(decision.node, "n1");
  EXPECT_EQ(decision.reason,
            "moving away from n1 as requested; no other node can take it; stays on its owner n1");
}

TEST(PlacementTest, MoveWithoutTargetAndNoOwnerKeepsThePlacement) {
  // Between the old owner's release and the new one's acquire the group has only a placement,
  // which is the node the move chose; it must not be moved again.
  GroupState web = group("web", {"n1"});
  web.placement = "n2";
  web.move = MoveRequest{"", 20};
  EXPECT_EQ(place_one(three_up(), web).node, "n2");
}

// --- rule 4: failback ---

TEST(PlacementTest, FailbackAllowReturnsToAnEarlierPreferredOwner) {
  GroupState web = owned_by(group("web", {"n1", "n2"}), "n2");
  web.spec.failback = FailbackPolicy::kAllow;
  auto decision = place_one(three_up(), web);
  EXPECT_EQ(decision.node, "n1");
  EXPECT_EQ(decision.reason, "fails back to preferred owner n1 from n2");
}

TEST(PlacementTest, FailbackAllowLeavesANonPreferredOwnerForAnyPreferredOne) {
  GroupState web = owned_by(group("web", {"n1", "n2"}), "n3");
  web.spec.failback = FailbackPolicy::kAllow;
  EXPECT_EQ(place_one({down("n1"), up("n2"), up("n3")}, web).node, "n2");
}

TEST(PlacementTest, FailbackAllowStaysOnTheFirstPreferredOwner) {
  GroupState web = owned_by(group("web", {"n1", "n2"}), "n1");
  web.spec.failback = FailbackPolicy::kAllow;
  EXPECT_EQ(place_one(three_up(), web).reason, "stays on its owner n1");
}

TEST(PlacementTest, FailbackPreventStays) {
  GroupState web = owned_by(group("web", {"n1", "n2"}), "n2");
  web.spec.failback = FailbackPolicy::kPrevent;
  EXPECT_EQ(place_one(three_up(), web).node, "n2");
}

TEST(PlacementTest, FailbackSkipsPreferredOwnersThatArePausedOrFailedIt) {
  GroupState web = owned_by(group("web", {"n1", "n2", "n3"}), "n3");
  web.spec.failback = FailbackPolicy::kAllow;
  web = with_failovers(web, {{"n2", kNow - hours(1)}});
  auto decision = place_one({paused("n1"), up("n2"), up("n3")}, web);
  EXPECT_EQ(decision.node, "n3");
  EXPECT_EQ(decision.reason, "stays on its owner n3");
}

// --- determinism ---

TEST(PlacementTest, IdenticalInputGivesIdenticalOutputWhateverTheNodeOrder) {
  std::vector<GroupState> groups;
  for (int i = 0; i < 20; ++i) {
    GroupState g = group("g" + std::to_string(i),
                         i % 3 == 0 ? std::vector<std::string>{"n2"} : std::vector<std::string>{});
    if (i % 4 == 0) g = owned_by(g, "n" + std::to_string(i % 5 + 1));
    if (i % 5 == 0) g = with_failovers(g, {{"n3", kNow - hours(1)}});
    groups.push_back(g);
  }
  std::vector<NodeState> nodes = {up("n1"), up("n2"), paused("n3"), down("n4"), up("n5")};
  auto first = place(nodes, groups, kNow);
  EXPECT_EQ(place(nodes, groups, kNow), first);
  std::reverse(nodes.begin(), nodes.end());
  EXPECT_EQ(place(nodes, groups, kNow), first);
  for (const PlacementDecision& decision : first) EXPECT_FALSE(decision.reason.empty());
}

}  // namespace
}  // namespace clusweb::cluster
