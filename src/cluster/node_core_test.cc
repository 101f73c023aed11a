#include "cluster/node_core.h"

#include <gtest/gtest.h>

namespace clusweb::cluster {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

GroupSpec one_site_group() {
  GroupSpec group;
  group.name = "web";
  ResourceSpec site;
  site.name = "site";
  site.type = "website";
  group.resources.push_back(site);
  return group;
}

template <class T>
std::vector<T> only(const std::vector<NodeAction>& actions) {
  std::vector<T> out;
  for (const NodeAction& action : actions) {
    if (const auto* a = std::get_if<T>(&action)) out.push_back(*a);
  }
  return out;
}

// A node that owns "web" with the site Online, at time `now`.
struct OwningNode {
  OwningNode() : core(NodeCoreOptions{"n1", seconds(2), {"website", "ip"}}) {
    core.step(Joined{7, now + seconds(2)}, now);
    ClusterView view;
    view.revision = 10;
    view.groups["web"] = one_site_group();
    view.placement["web"] = PlacementRecord{"n1", 9};
    auto acquire = only<AcquireOwnership>(core.step(ViewChanged{view}, now));
    EXPECT_EQ(acquire.size(), 1u);
    view.revision = 11;
    view.owners["web"] = OwnerRecord{"n1", 11};
    core.step(ViewChanged{view}, now);
    auto calls = only<ResourceCall>(core.step(AcquireDone{"web", true, 11, false}, now));
    EXPECT_EQ(calls.size(), 1u);
    for (const ResourceCall& call : calls) {
      core.step(GroupCallFinished{"web", 11, CallFinished{call.call.call_id, true, false, ""}},
                now);
    }
    EXPECT_EQ(core.controller("web")->state(0), ResourceState::kOnline);
    EXPECT_EQ(core.token("web"), 11);
  }
  Clock::TimePoint now{seconds(100)};
  NodeCore core;
};

TEST(NodeCoreTest, ALostLeaseFencesAtOnceBeforeTheDeadline) {
  OwningNode node;
  auto actions = node.core.step(LeaseLost{"the store no longer has our lease"}, node.now);
  auto fences = only<Fence>(actions);
  ASSERT_EQ(fences.size(), 1u);
  EXPECT_EQ(fences[0].reason, "the store no longer has our lease");
  auto calls = only<ResourceCall>(actions);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].call.verb, Verb::kTerminate);
  EXPECT_TRUE(node.core.fenced());
  // Once the terminate ends, the node joins again (never under the old lease).
  auto after = node.core.step(
      GroupCallFinished{"web", 11, CallFinished{calls[0].call.call_id, true, false, ""}},
      node.now + milliseconds(10));
  EXPECT_EQ(only<Rejoin>(after).size(), 1u);
  EXPECT_TRUE(node.core.owned_groups().empty());
  EXPECT_EQ(node.core.token("web"), 0);
}

TEST(NodeCoreTest, ALostLeaseAfterFencingChangesNothing) {
  OwningNode node;
  node.core.step(NodeTimer{}, node.now + seconds(3));  // past the deadline: fenced
  ASSERT_TRUE(node.core.fenced());
  auto again = node.core.step(LeaseLost{"late"}, node.now + seconds(3));
  EXPECT_TRUE(only<Fence>(again).empty());
  EXPECT_TRUE(only<ResourceCall>(again).empty());
}

TEST(NodeCoreTest, UnmanagedInTheViewReachesTheControllerAndBackAgain) {
  OwningNode node;
  ClusterView view;
  view.revision = 12;
  view.groups["web"] = one_site_group();
  view.placement["web"] = PlacementRecord{"n1", 9};
  view.owners["web"] = OwnerRecord{"n1", 11};
  view.unmanaged["web"] = Unmanaged{true, {}};
  node.core.step(ViewChanged{view}, node.now);
  EXPECT_TRUE(node.core.controller("web")->unmanaged(0));
  view.unmanaged.clear();
  node.core.step(ViewChanged{view}, node.now);
  EXPECT_FALSE(node.core.controller("web")->unmanaged(0));
}

TEST(NodeCoreTest, AnUnmanagedGroupAcquiredIsProbedNotStarted) {
  NodeCore core(NodeCoreOptions{"n1", seconds(2), {"website", "ip"}});
  const Clock::TimePoint now{seconds(100)};
  core.step(Joined{7, now + seconds(2)}, now);
  ClusterView view;
  view.revision = 10;
  view.groups["web"] = one_site_group();
  view.placement["web"] = PlacementRecord{"n1", 9};
  view.unmanaged["web"] = Unmanaged{false, {"site"}};
  core.step(ViewChanged{view}, now);
  auto calls = only<ResourceCall>(core.step(AcquireDone{"web", true, 11, false}, now));
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].call.verb, Verb::kIsAlive);
}

TEST(NodeCoreTest, AResumedLeaseAdoptsItsGroupsWithoutAcquiringOrStarting) {
  NodeCore core(NodeCoreOptions{"n1", seconds(2), {"website", "ip"}});
  const Clock::TimePoint now{seconds(100)};
  // The restarted agent sees the store first: the group is placed here and owned under the
  // lease it resumes.
  ClusterView view;
  view.revision = 20;
  view.groups["web"] = one_site_group();
  view.placement["web"] = PlacementRecord{"n1", 9};
  view.owners["web"] = OwnerRecord{"n1", 11, 7};
  EXPECT_TRUE(core.step(ViewChanged{view}, now).empty());
  auto actions = core.step(Joined{7, now + seconds(2), {{"web", 11}}}, now);
  EXPECT_TRUE(only<AcquireOwnership>(actions).empty());
  auto calls = only<ResourceCall>(actions);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].call.verb, Verb::kIsAlive);
  EXPECT_EQ(calls[0].token, 11);
  EXPECT_EQ(core.token("web"), 11);
  auto answered = core.step(
      GroupCallFinished{"web", 11, CallFinished{calls[0].call.call_id, true, false, ""}}, now);
  EXPECT_TRUE(only<ResourceCall>(answered).empty());
  EXPECT_EQ(core.controller("web")->state(0), ResourceState::kOnline);
  // Later views change nothing: the store still says the group is ours.
  view.revision = 21;
  EXPECT_TRUE(only<ResourceCall>(core.step(ViewChanged{view}, now)).empty());
  EXPECT_EQ(core.token("web"), 11);
}

TEST(NodeCoreTest, AGroupGoneWhileTheAgentWasDownIsNotAdopted) {
  NodeCore core(NodeCoreOptions{"n1", seconds(2), {"website", "ip"}});
  const Clock::TimePoint now{seconds(100)};
  ClusterView view;
  view.revision = 20;
  core.step(ViewChanged{view}, now);
  auto actions = core.step(Joined{7, now + seconds(2), {{"web", 11}}}, now);
  EXPECT_TRUE(actions.empty());
  EXPECT_TRUE(core.owned_groups().empty());
}

}  // namespace
}  // namespace clusweb::cluster
