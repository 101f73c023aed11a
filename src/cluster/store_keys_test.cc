#include "cluster/store_keys.h"

#include <gtest/gtest.h>

namespace clusweb::cluster {
namespace {

using std::chrono::hours;
using std::chrono::minutes;

TEST(StoreKeysTest, EveryKeyLivesUnderTheClusterRoot) {
  StoreKeys keys("prod");
  EXPECT_EQ(keys.root(), "/clusweb/prod/");
  EXPECT_EQ(keys.node("n1"), "/clusweb/prod/nodes/n1");
  EXPECT_EQ(keys.node_admin("n1"), "/clusweb/prod/node-admin/n1");
  EXPECT_EQ(keys.coordinator(), "/clusweb/prod/coordinator");
  EXPECT_EQ(keys.group("shop"), "/clusweb/prod/groups/shop");
  EXPECT_EQ(keys.placement("shop"), "/clusweb/prod/placement/shop");
  EXPECT_EQ(keys.owner("shop"), "/clusweb/prod/owners/shop");
  EXPECT_EQ(keys.status("shop"), "/clusweb/prod/status/shop");
  EXPECT_EQ(keys.released("shop"), "/clusweb/prod/released/shop");
  EXPECT_EQ(keys.failures("shop"), "/clusweb/prod/failures/shop");
  EXPECT_EQ(keys.event(42), "/clusweb/prod/events/00000000000000000042");
  EXPECT_LT(keys.event(9), keys.event(10));  // key order is sequence order
}

TEST(StoreKeysTest, NameUnderTakesOnlyDirectChildren) {
  StoreKeys keys("prod");
  EXPECT_EQ(StoreKeys::name_under(keys.owners(), keys.owner("shop")), "shop");
  EXPECT_EQ(StoreKeys::name_under(keys.owners(), keys.owners()), std::nullopt);
  EXPECT_EQ(StoreKeys::name_under(keys.owners(), keys.owners() + "a/b"), std::nullopt);
  EXPECT_EQ(StoreKeys::name_under(keys.owners(), keys.group("shop")), std::nullopt);
}

TEST(StoreKeysTest, NamesAreOneKeySegment) {
  EXPECT_TRUE(check_name("node", "node-1.example_a").ok());
  EXPECT_EQ(check_name("node", "").error().message, "node name is empty");
  EXPECT_EQ(check_name("group", "a/b").error().message,
            "group name \"a/b\" contains '/' (allowed: letters, digits, '.', '_', '-')");
  EXPECT_EQ(check_name("group", "..").error().message, "group name \"..\" is not allowed");
  EXPECT_FALSE(check_name("cluster", std::string(65, 'x')).ok());
}

TEST(StoreRecordsTest, PlacementRoundTrips) {
  PlacementValue value{"n2", 3, "first available preferred owner n2"};
  auto decoded = decode_placement(encode(value), "k");
  ASSERT_TRUE(decoded.ok()) << decoded.error().describe();
  EXPECT_EQ(*decoded, value);
  PlacementValue nowhere{"", 0, "offline by administrator"};
  EXPECT_EQ(*decode_placement(encode(nowhere), "k"), nowhere);
}

TEST(StoreRecordsTest, UnmanagedRoundTripsAndNamesTheKeyWhenBad) {
  Unmanaged group{true, {}};
  EXPECT_EQ(encode(group), R"({"group":true})");
  EXPECT_EQ(*decode_unmanaged(encode(group), "k"), group);
  Unmanaged some{false, {"site", "ip"}};
  EXPECT_EQ(*decode_unmanaged(encode(some), "k"), some);
  EXPECT_TRUE(some.covers("ip"));
  EXPECT_FALSE(some.covers("pool"));
  auto bad = decode_unmanaged(R"({"resources":"site"})", "/clusweb/prod/unmanaged/shop");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().describe(),
            "/clusweb/prod/unmanaged/shop: unreadable value: \"resources\" is not a list");
}

TEST(StoreRecordsTest, BadPlacementValuesNameTheKey) {
  auto garbage = decode_placement("{not json", "/clusweb/prod/placement/shop");
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.error().describe(),
            "/clusweb/prod/placement/shop: unreadable value: not a JSON object");
  auto bad_node = decode_placement(R"({"node":"a b"})", "k");
  ASSERT_FALSE(bad_node.ok());
  EXPECT_EQ(bad_node.error().message,
            "unreadable value: node name \"a b\" contains ' ' (allowed: letters, digits, '.', "
            "'_', '-')");
  EXPECT_FALSE(decode_placement(R"({"node":"n1","failoversSeen":-1})", "k").ok());
  EXPECT_FALSE(decode_placement(R"({"failoversSeen":1})", "k").ok());
}

TEST(StoreRecordsTest, FailureHistoryRoundTripsAndTrims) {
  const WallTime now{std::chrono::seconds(1'800'000'000)};
  FailureHistory history;
  history.entries.push_back({{"n1", now - hours(7)}, "old"});
  history.entries.push_back({{"n2", now - minutes(5)}, "resource site failed"});
  history.entries.push_back({{"n3", now - hours(30), FailureClass::kHard}, "not installed"});
  history.entries.push_back({{"n1", now - hours(40), FailureClass::kFatal}, "not configured"});
  auto decoded = decode_failures(encode(history), "k");
  ASSERT_TRUE(decoded.ok()) << decoded.error().describe();
  EXPECT_EQ(*decoded, history);

  // Hard and fatal failovers stay however old they are.
  history.trim(now, hours(6));
  ASSERT_EQ(history.entries.size(), 3u);
  EXPECT_EQ(history.records()[0].from_node, "n2");
  EXPECT_EQ(history.records()[1].failure, FailureClass::kHard);
  EXPECT_EQ(history.records()[2].failure, FailureClass::kFatal);
  EXPECT_FALSE(
      decode_failures(R"({"failovers":[{"node":"n1","atUnixMs":1,"class":"odd"}]})", "k").ok());
  EXPECT_FALSE(decode_failures(R"({"failovers":[{"node":"n1"}]})", "k").ok());
  EXPECT_FALSE(decode_failures("[]", "k").ok());
}

GroupSpec shop_group() {
  GroupSpec group;
  group.name = "shop";
  group.preferred_owners = {"n1", "n2"};
  group.failover_threshold = 2;
  group.failback = FailbackPolicy::kAllow;
  group.failback_window = FailbackWindow{22, 6};
  group.anti_affinity_classes = {"shops"};
  ResourceSpec ip;
  ip.name = "ip";
  ip.type = "ip";
  ip.parameters = {{"address", "10.0.0.10/24"}, {"interface", "eth0"}};
  ip.possible_owners = {"n1", "n2", "n3"};
  ResourceSpec site;
  site.name = "site";
  site.type = "website";
  site.depends_on = {{"ip"}};
  site.policy.restart_action = RestartAction::kRestartNoFailover;
  site.policy.restart_threshold = 5;
  site.policy.pending_timeout = std::chrono::milliseconds(90500);
  group.resources = {ip, site};
  return group;
}

bool same(const GroupSpec& a, const GroupSpec& b) { return encode(a) == encode(b); }

TEST(StoreRecordsTest, GroupRoundTrips) {
  const GroupSpec group = shop_group();
  const std::string text = encode(group);
  auto decoded = decode_group(text, "k");
  ASSERT_TRUE(decoded.ok()) << decoded.error().describe();
  EXPECT_TRUE(same(*decoded, group)) << encode(*decoded) << "\n" << text;
  EXPECT_EQ(decoded->resources[1].policy.restart_action, RestartAction::kRestartNoFailover);
  EXPECT_EQ(decoded->resources[1].policy.pending_timeout, std::chrono::milliseconds(90500));
  EXPECT_EQ(decoded->resources[0].parameters.at("interface"), "eth0");
  EXPECT_EQ(*decoded->failover_threshold, 2);
  EXPECT_NE(text.find("\"pendingTimeout\":\"1m30s500ms\""), std::string::npos) << text;
  EXPECT_EQ(decoded->failback_window, (FailbackWindow{22, 6}));
  EXPECT_EQ(decoded->anti_affinity_classes, std::vector<std::string>{"shops"});
}

TEST(StoreRecordsTest, MissingFieldsTakeTheDefaults) {
  auto decoded = decode_group(
      R"({"name":"g","resources":[{"name":"s","type":"script","parameters":{"path":"/x"}}]})", "k");
  ASSERT_TRUE(decoded.ok()) << decoded.error().describe();
  EXPECT_FALSE(decoded->failover_threshold.has_value());
  EXPECT_EQ(decoded->resources[0].policy.restart_threshold, 3);
  EXPECT_EQ(decoded->resources[0].policy.looks_alive_interval, std::chrono::milliseconds(1000));
}

TEST(StoreRecordsTest, BadGroupValuesNameTheField) {
  auto unknown = decode_group(R"({"name":"g","resources":[{"name":"s","type":"x","colour":1}]})",
                              "/clusweb/prod/groups/g");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().describe(),
            "/clusweb/prod/groups/g: unreadable value: field \"resources[0].colour\": unknown "
            "field");
  auto duration = decode_group(
      R"({"name":"g","resources":[{"name":"s","type":"x","policy":{"restartDelay":"soon"}}]})",
      "k");
  ASSERT_FALSE(duration.ok());
  EXPECT_NE(duration.error().message.find("field \"resources[0].policy.restartDelay\": invalid "
                                          "duration \"soon\""),
            std::string::npos)
      << duration.error().message;
  auto action = decode_group(
      R"({"name":"g","resources":[{"name":"s","type":"x","policy":{"restartAction":"maybe"}}]})",
      "k");
  ASSERT_FALSE(action.ok());
  EXPECT_NE(action.error().message.find("restartAction"), std::string::npos);
  auto window = decode_group(R"({"name":"g","failbackWindow":{"start":22,"end":24}})", "k");
  ASSERT_FALSE(window.ok());
  EXPECT_EQ(window.error().message,
            "unreadable value: group g: failbackWindow hours must be 0 to 23");
  auto half = decode_group(R"({"name":"g","failbackWindow":{"start":22}})", "k");
  ASSERT_FALSE(half.ok());
  EXPECT_EQ(half.error().message,
            "unreadable value: field \"failbackWindow\": needs \"start\" and \"end\"");
  // Decoding validates: a dependency on a resource that does not exist.
  auto invalid = decode_group(
      R"({"name":"g","resources":[{"name":"s","type":"x","dependsOn":[["ip"]]}]})", "k");
  ASSERT_FALSE(invalid.ok());
  EXPECT_EQ(invalid.error().message,
            "unreadable value: group g: resource s depends on ip, which is not in the group");
}

}  // namespace
}  // namespace clusweb::cluster
