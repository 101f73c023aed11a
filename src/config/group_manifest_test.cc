#include "config/group_manifest.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/store_keys.h"
#include "config/testing/manifest_lines.h"

namespace clusweb::config {
namespace {

using cluster::FailbackPolicy;
using cluster::GroupSpec;
using cluster::Milliseconds;
using cluster::RestartAction;
using clusweb::config::testing::line_of;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

Result<GroupManifests> load(std::string_view yaml, std::string path = "groups.yaml") {
  return load_group_manifests({ManifestText{std::move(path), std::string(yaml)}});
}

// Expects a failed load whose message has a line that starts with "groups.yaml:<line of
// needle>: " and contains `problem`.
void expect_problem(const Result<GroupManifests>& result, std::string_view yaml,
                    std::string_view needle, std::string_view problem) {
  ASSERT_FALSE(result.ok()) << "loaded without problems";
  const std::string location = fmt::format("groups.yaml:{}: ", line_of(yaml, needle));
  std::string_view message = result.error().message;
  while (!message.empty()) {
    const std::size_t end = std::min(message.find('\n'), message.size());
    const std::string_view line = message.substr(0, end);
    if (line.starts_with(location) && line.find(problem) != std::string_view::npos) return;
    message.remove_prefix(std::min(end + 1, message.size()));
  }
  ADD_FAILURE() << "no line \"" << location << "...: " << problem << "\" in:\n"
                << result.error().message;
}

constexpr std::string_view kWebGroup = R"(kind: Group
name: web
preferredOwners: [n1, n2]
failoverThreshold: 2
failoverPeriod: 3h
retryPeriodOnFailure: 30m
failback: allow
failbackWindow: {start: 22, end: 6}
antiAffinityClasses: [db, reports]
resources:
  - name: vip
    type: ip
    parameters:
      address: 10.0.0.10/24
      interface: eth0
    possibleOwners: [n1, n2, n3]
  - name: site
    type: website
    parameters: {site: shop, pool: shop-pool, expectStatus: 200, probePath: /health}
    dependsOn: [vip]
    policy:
      looksAliveInterval: 2s
      isAliveInterval: 20s
      pendingTimeout: 1m
      probeTimeout: 3s
      terminateTimeout: 10s
      restartAction: restart-no-failover
      restartThreshold: 5
      restartPeriod: 10m
      restartDelay: 0s
      retryPeriodOnFailure: 2h
)";

TEST(GroupManifestTest, ReadsEveryField) {
  auto loaded = load(kWebGroup);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  ASSERT_EQ(loaded->groups.size(), 1u);
  const GroupSpec& group = loaded->groups[0];
  EXPECT_EQ(group.name, "web");
  EXPECT_THAT(group.preferred_owners, ElementsAre("n1", "n2"));
  EXPECT_EQ(group.failover_threshold, 2);
  EXPECT_EQ(group.failover_period, Milliseconds(3 * 3600 * 1000));
  EXPECT_EQ(group.retry_period_on_failure, Milliseconds(30 * 60 * 1000));
  EXPECT_EQ(group.failback, FailbackPolicy::kAllow);
  EXPECT_EQ(group.failback_window, (cluster::FailbackWindow{22, 6}));
  EXPECT_THAT(group.anti_affinity_classes, ElementsAre("db", "reports"));
  ASSERT_EQ(group.resources.size(), 2u);

  const cluster::ResourceSpec& vip = group.resources[0];
  EXPECT_EQ(vip.name, "vip");
  EXPECT_EQ(vip.type, "ip");
  EXPECT_EQ(vip.parameters.at("address"), "10.0.0.10/24");
  EXPECT_EQ(vip.parameters.at("interface"), "eth0");
  EXPECT_THAT(vip.possible_owners, ElementsAre("n1", "n2", "n3"));
  EXPECT_TRUE(vip.depends_on.empty());

  const cluster::ResourceSpec& site = group.resources[1];
  EXPECT_EQ(site.parameters.at("expectStatus"), "200");  // taken as written
  EXPECT_EQ(site.parameters.at("probePath"), "/health");
  EXPECT_THAT(site.depends_on, ElementsAre(ElementsAre("vip")));
  const cluster::ResourcePolicy& policy = site.policy;
  EXPECT_EQ(policy.looks_alive_interval, Milliseconds(2000));
  EXPECT_EQ(policy.is_alive_interval, Milliseconds(20000));
  EXPECT_EQ(policy.pending_timeout, Milliseconds(60000));
  EXPECT_EQ(policy.probe_timeout, Milliseconds(3000));
  EXPECT_EQ(policy.terminate_timeout, Milliseconds(10000));
  EXPECT_EQ(policy.restart_action, RestartAction::kRestartNoFailover);
  EXPECT_EQ(policy.restart_threshold, 5);
  EXPECT_EQ(policy.restart_period, Milliseconds(600000));
  EXPECT_EQ(policy.restart_delay, Milliseconds(0));
  EXPECT_EQ(policy.retry_period_on_failure, Milliseconds(7200000));
}

TEST(GroupManifestTest, AppliesTheModelsDefaults) {
  auto loaded = load(
      "kind: Group\nname: empty\n---\nkind: Group\nname: one\nresources:\n"
      "  - {name: s, type: script, parameters: {path: /bin/true}}\n");
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  ASSERT_EQ(loaded->groups.size(), 2u);
  GroupSpec expected_empty;
  expected_empty.name = "empty";
  EXPECT_EQ(cluster::encode(loaded->groups[0]), cluster::encode(expected_empty));
  GroupSpec expected_one;
  expected_one.name = "one";
  expected_one.resources.push_back({"s", "script", {{"path", "/bin/true"}}, {}, {}, {}});
  EXPECT_EQ(cluster::encode(loaded->groups[1]), cluster::encode(expected_one));
}

TEST(GroupManifestTest, PolicyStartsFromTheTypesDefaultsAndTheManifestWins) {
  // The policy comes after the type here: the defaults are asked for once the whole resource
  // is read, and only for a resource whose type and parameters passed.
  const std::string yaml = R"(kind: Group
name: db
resources:
  - name: disk
    policy: {probeTimeout: 9s}
    type: ocf
    parameters: {agent: heartbeat:Filesystem}
  - name: notes
    type: script
    parameters: {path: /usr/local/bin/notes}
)";
  std::vector<std::string> asked;
  GroupLoadOptions options;
  options.policy_defaults = [&](const cluster::ResourceSpec& resource) {
    asked.push_back(resource.name + " " + resource.type + " " +
                    resource.parameters.begin()->second);
    cluster::ResourcePolicy policy;
    if (resource.type == "ocf") {
      policy.pending_timeout = std::chrono::seconds(60);
      policy.probe_timeout = std::chrono::seconds(40);
    }
    return policy;
  };
  auto loaded = load_group_manifests({ManifestText{"groups.yaml", yaml}}, options);
  ASSERT_TRUE(loaded.ok()) << loaded.error().describe();
  EXPECT_THAT(asked,
              ElementsAre("disk ocf heartbeat:Filesystem", "notes script /usr/local/bin/notes"));
  const cluster::ResourcePolicy& disk = loaded->groups[0].resources[0].policy;
  EXPECT_EQ(disk.pending_timeout, std::chrono::seconds(60));  // the type's
  EXPECT_EQ(disk.probe_timeout, std::chrono::seconds(9));     // the manifest's
  EXPECT_EQ(loaded->groups[0].resources[1].policy.pending_timeout,
            cluster::ResourcePolicy().pending_timeout);

  // A resource with a problem is not asked about.
  asked.clear();
  auto bad = load_group_manifests({ManifestText{"groups.yaml", R"(kind: Group
name: db
resources:
  - name: disk
    type: ocf
    parameters: {}
)"}},
                                  options);
  EXPECT_FALSE(bad.ok());
  EXPECT_THAT(asked, IsEmpty());
}

TEST(GroupManifestTest, MatchesTheStoresJsonForm) {
  auto loaded = load(kWebGroup);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  const std::string json = cluster::encode(loaded->groups[0]);
  auto decoded = cluster::decode_group(json, "groups/web");
  ASSERT_TRUE(decoded.ok()) << decoded.error().describe();
  EXPECT_EQ(cluster::encode(*decoded), json);
}

// The example of docs/configuration.md.
constexpr std::string_view kDocumentedExample = R"(kind: Group
name: shop
preferredOwners: [node1, node2]
failback: prevent
resources:
  - name: shop-ip
    type: ip
    parameters:
      address: 192.0.2.10/24
      interface: eth0
  - name: shop-site
    type: website
    parameters:
      site: shop
      pool: shop-pool
      probePath: /health
      expectStatus: 200
      probeTimeout: 2s
    dependsOn: [shop-ip]
    policy:
      isAliveInterval: 5s
      restartThreshold: 2
)";

TEST(GroupManifestTest, TheDocumentedExampleLoads) {
  auto loaded = load(kDocumentedExample);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->groups[0].resources[1].policy.restart_threshold, 2);
}

TEST(GroupManifestTest, TheDocumentedProblemsAreWhatIsReported) {
  std::string yaml(kDocumentedExample);
  yaml.replace(yaml.find("type: website"), 13, "type: websit");
  yaml.replace(yaml.find("[shop-ip]"), 9, "[shop-iq]");
  auto loaded = load_group_manifests({ManifestText{"/etc/clusweb/shop.yaml", yaml}});
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.error().message,
            "/etc/clusweb/shop.yaml:12: Group \"shop\": field \"resources[1].type\": unknown "
            "resource type \"websit\" (did you mean \"website\"?)\n"
            "/etc/clusweb/shop.yaml:19: Group \"shop\": field \"resources[1].dependsOn[0]\": no "
            "resource named \"shop-iq\" in this group (did you mean \"shop-ip\"?)");
}

TEST(GroupManifestTest, DependenciesAreAndsOfOrs) {
  auto loaded = load(R"(kind: Group
name: g
resources:
  - {name: a, type: script, parameters: {path: /bin/a}}
  - {name: b, type: script, parameters: {path: /bin/b}}
  - {name: c, type: script, parameters: {path: /bin/c}}
  - name: d
    type: script
    parameters: {path: /bin/d}
    dependsOn: [a, [b, c]]
)");
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_THAT(loaded->groups[0].resources[3].depends_on,
              ElementsAre(ElementsAre("a"), ElementsAre("b", "c")));
}

TEST(GroupManifestTest, ListsWebDocumentsWithoutCheckingThem) {
  const std::string_view yaml = R"(kind: Site
name: shop
physicalPath: /does/not/matter
colour: red
---
kind: Group
name: shop
---
kind: ApplicationPool
name: shop-pool
---
kind: WebServer
threads: 2
)";
  auto loaded = load(yaml);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  ASSERT_EQ(loaded->groups.size(), 1u);
  EXPECT_EQ(loaded->groups[0].name, "shop");
  ASSERT_EQ(loaded->web_documents.size(), 3u);
  EXPECT_EQ(loaded->web_documents[0].kind, "Site");
  EXPECT_EQ(loaded->web_documents[0].name, "shop");
  EXPECT_EQ(loaded->web_documents[0].where.describe(), "groups.yaml:1");
  EXPECT_EQ(loaded->web_documents[1].kind, "ApplicationPool");
  EXPECT_EQ(loaded->web_documents[1].name, "shop-pool");
  EXPECT_EQ(loaded->web_documents[1].where.line, line_of(yaml, "kind: ApplicationPool"));
  EXPECT_EQ(loaded->web_documents[2].kind, "WebServer");
  EXPECT_EQ(loaded->web_documents[2].name, "");
}

TEST(GroupManifestTest, NoDocumentsIsNoGroups) {
  auto loaded = load("# nothing yet\n---\n");
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_TRUE(loaded->groups.empty());
  EXPECT_TRUE(loaded->web_documents.empty());
}

// ---------------------------------------------------------------------------------------------
// Problems, each at its line, all of them at once.

TEST(GroupManifestProblemsTest, ReportsEveryProblemInLineOrder) {
  const std::string_view yaml = R"(kind: Group
name: web
prefferedOwners: [n1]
failoverPeriod: soon
failback: sometimes
resources:
  - name: vip
    type: ip
    parameters: {adress: 10.0.0.10/24, interface: eth0}
  - name: site
    type: websit
    dependsOn: [vpi]
  - name: job
    type: script
    parameters: {path: ./job.sh}
    policy: {restartAction: retry, restartThreshold: "3", isAliveInterval: 0s}
)";
  auto loaded = load(yaml);
  ASSERT_FALSE(loaded.ok());
  const std::vector<std::string> expected = {
      fmt::format("groups.yaml:3: Group \"web\": field \"prefferedOwners\": unknown field (did "
                  "you mean \"preferredOwners\"?)"),
      "groups.yaml:4: Group \"web\": field \"failoverPeriod\": invalid duration \"soon\"",
      "groups.yaml:5: Group \"web\": field \"failback\": must be \"prevent\" or \"allow\"",
      "groups.yaml:9: Group \"web\": field \"resources[0].parameters.address\": missing required "
      "parameter of an ip resource",
      "groups.yaml:9: Group \"web\": field \"resources[0].parameters.adress\": unknown parameter "
      "of an ip resource (did you mean \"address\"?)",
      "groups.yaml:11: Group \"web\": field \"resources[1].type\": unknown resource type "
      "\"websit\" (did you mean \"website\"?)",
      "groups.yaml:12: Group \"web\": field \"resources[1].dependsOn[0]\": no resource named "
      "\"vpi\" in this group (did you mean \"vip\"?)",
      "groups.yaml:15: Group \"web\": field \"resources[2].parameters.path\": must be an absolute "
      "path",
      "groups.yaml:16: Group \"web\": field \"resources[2].policy.restartAction\": must be "
      "no-restart, restart-no-failover or restart-and-failover",
      "groups.yaml:16: Group \"web\": field \"resources[2].policy.restartThreshold\": must be a "
      "whole number",
      "groups.yaml:16: Group \"web\": field \"resources[2].policy.isAliveInterval\": must be "
      "greater than 0",
  };
  const std::string& message = loaded.error().message;
  std::size_t position = 0;
  for (const std::string& line : expected) {
    const std::size_t found = message.find(line, position);
    ASSERT_NE(found, std::string::npos) << "missing, or out of order: " << line << "\nin:\n"
                                        << message;
    position = found + line.size();
  }
  EXPECT_EQ(std::count(message.begin(), message.end(), '\n') + 1,
            static_cast<long>(expected.size()))
      << message;
  EXPECT_EQ(loaded.error().where, "groups.yaml:3");
}

TEST(GroupManifestProblemsTest, RequiredFields) {
  const std::string_view yaml = "kind: Group\nresources:\n  - name: a\n  - type: ip\n";
  auto loaded = load(yaml);
  expect_problem(loaded, yaml, "kind: Group", "Group: field \"name\": missing required field");
  expect_problem(loaded, yaml, "- name: a",
                 "Group: field \"resources[0].type\": missing required field");
  expect_problem(loaded, yaml, "- type: ip",
                 "Group: field \"resources[1].name\": missing required field");
}

TEST(GroupManifestProblemsTest, Names) {
  const std::string_view yaml = R"(kind: Group
name: my web
preferredOwners: [n1, n/2, n1]
resources:
  - {name: "a b", type: script, parameters: {path: /bin/true}}
)";
  auto loaded = load(yaml);
  expect_problem(loaded, yaml, "name: my web",
                 "Group \"my web\": field \"name\": group name \"my web\" contains ' ' "
                 "(allowed: letters, digits, '.', '_', '-')");
  expect_problem(loaded, yaml, "preferredOwners",
                 "field \"preferredOwners[1]\": node name \"n/2\" contains '/'");
  expect_problem(loaded, yaml, "preferredOwners",
                 "field \"preferredOwners[2]\": node \"n1\" is listed twice (also at index 0)");
  expect_problem(loaded, yaml, "a b", "field \"resources[0].name\": resource name \"a b\"");
}

TEST(GroupManifestProblemsTest, ResourceNamesAndDependencies) {
  const std::string_view yaml = R"(kind: Group
name: g
resources:
  - name: a
    type: script
    parameters: {path: /bin/a}
    dependsOn: [a, []]
  - name: a
    type: script
    parameters: {path: /bin/b}
    dependsOn: [{x: y}]
)";
  auto loaded = load(yaml);
  expect_problem(loaded, yaml, "dependsOn: [a, []]",
                 "Group \"g\": field \"resources[0].dependsOn[0]\": a resource cannot depend on "
                 "itself");
  expect_problem(loaded, yaml, "dependsOn: [a, []]",
                 "field \"resources[0].dependsOn[1]\": a list of alternatives needs at least one "
                 "resource");
  expect_problem(loaded, yaml, "  - name: a\n    type: script\n    parameters: {path: /bin/b}",
                 "field \"resources[1].name\": duplicate resource name, first defined at line 4");
  expect_problem(loaded, yaml, "[{x: y}]",
                 "field \"resources[1].dependsOn[0]\": must be a list whose items are resource "
                 "names or lists of names");
}

TEST(GroupManifestProblemsTest, CyclesAreFoundByTheModel) {
  const std::string_view yaml = R"(kind: Group
name: loop
resources:
  - {name: a, type: script, parameters: {path: /bin/a}, dependsOn: [b]}
  - {name: b, type: script, parameters: {path: /bin/b}, dependsOn: [a]}
)";
  auto loaded = load(yaml);
  expect_problem(loaded, yaml, "kind: Group", "Group \"loop\": dependency cycle through resource");
}

TEST(GroupManifestProblemsTest, TypesOfValues) {
  const std::string_view yaml = R"(kind: Group
name: g
failoverThreshold: "2"
retryPeriodOnFailure: [1h]
preferredOwners: n1
resources:
  - name: s
    type: script
    parameters: {path: /bin/s, list: [1, 2]}
    possibleOwners: [[n1]]
    policy: {restartPeriod: 0s, colour: red}
)";
  auto loaded = load(yaml);
  expect_problem(loaded, yaml, "failoverThreshold",
                 "field \"failoverThreshold\": must be a whole number from 0 to 2147483647");
  expect_problem(loaded, yaml, "retryPeriodOnFailure",
                 "field \"retryPeriodOnFailure\": must be a duration such as \"90s\"");
  expect_problem(loaded, yaml, "preferredOwners",
                 "field \"preferredOwners\": must be a list of node names");
  expect_problem(loaded, yaml, "list: [1, 2]",
                 "field \"resources[0].parameters.list\": must be a string");
  expect_problem(loaded, yaml, "possibleOwners",
                 "field \"resources[0].possibleOwners[0]\": must be a string");
  expect_problem(loaded, yaml, "restartPeriod",
                 "field \"resources[0].policy.restartPeriod\": must be greater than 0");
  expect_problem(loaded, yaml, "restartPeriod",
                 "field \"resources[0].policy.colour\": unknown field (expected one of: "
                 "looksAliveInterval, isAliveInterval");
}

TEST(GroupManifestProblemsTest, FailbackWindowAndAntiAffinityClasses) {
  const std::string_view yaml = R"(kind: Group
name: g
failbackWindow: {start: 24}
antiAffinityClasses: [db, db]
---
kind: Group
name: h
antiAffinityClasses: ["a b"]
)";
  auto loaded = load(yaml);
  expect_problem(loaded, yaml, "start: 24",
                 "field \"failbackWindow.start\": must be an hour from 0 to 23");
  expect_problem(loaded, yaml, "failbackWindow",
                 "field \"failbackWindow.end\": missing required field");
  expect_problem(loaded, yaml, "[db, db]",
                 "field \"antiAffinityClasses[1]\": class \"db\" is listed twice");
  expect_problem(loaded, yaml, "[\"a b\"]",
                 "field \"antiAffinityClasses[0]\": anti-affinity class name \"a b\"");
}

TEST(GroupManifestProblemsTest, DuplicateGroupNamesAcrossFiles) {
  auto loaded = load_group_manifests(
      {ManifestText{"a.yaml", "kind: Group\nname: web\n"},
       ManifestText{"b.yaml", "kind: Site\nname: web\n---\nkind: Group\nname: web\n"}});
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.error().message,
            "b.yaml:4: Group \"web\": field \"name\": duplicate group name, first defined at "
            "a.yaml:1");
}

TEST(GroupManifestProblemsTest, UnknownAndMissingKinds) {
  const std::string_view yaml = "kind: group\nname: a\n---\nkind: Cluster\n---\nname: b\n";
  auto loaded = load(yaml);
  expect_problem(loaded, yaml, "kind: group",
                 "document: field \"kind\": unknown kind \"group\" (did you mean \"Group\"?)");
  expect_problem(loaded, yaml, "kind: Cluster",
                 "document: field \"kind\": unknown kind \"Cluster\" (expected one of: Group, "
                 "Site, ApplicationPool, WebServer)");
  expect_problem(loaded, yaml, "name: b",
                 "document: field \"kind\": missing required field (Group, Site, "
                 "ApplicationPool or WebServer)");
}

TEST(GroupManifestProblemsTest, InvalidYamlInOneFileDoesNotHideTheOthers) {
  auto loaded =
      load_group_manifests({ManifestText{"bad.yaml", "kind: Group\nname: [unclosed\n"},
                            ManifestText{"good.yaml", "kind: Group\nname: g\nfailback: never\n"}});
  ASSERT_FALSE(loaded.ok());
  EXPECT_THAT(loaded.error().message, HasSubstr("bad.yaml:"));
  EXPECT_THAT(loaded.error().message, HasSubstr("invalid YAML"));
  EXPECT_THAT(loaded.error().message,
              HasSubstr("\ngood.yaml:3: Group \"g\": field \"failback\": must be"));
}

TEST(GroupManifestProblemsTest, ReadsFilesAndNamesUnreadableOnes) {
  auto loaded = load_group_manifest_files({"/nonexistent/groups.yaml"});
  ASSERT_FALSE(loaded.ok());
  EXPECT_THAT(loaded.error().describe(), HasSubstr("/nonexistent/groups.yaml"));
}

// ---------------------------------------------------------------------------------------------
// set_policy_field, shared with `clusweb resource set --policy`.

TEST(SetPolicyFieldTest, SetsEachField) {
  cluster::ResourcePolicy policy;
  for (std::string_view field : policy_field_names()) {
    std::string_view value = "7s";
    if (field == "restartAction") value = "no-restart";
    if (field == "restartThreshold") value = "7";
    ASSERT_TRUE(set_policy_field(policy, field, value).ok()) << field;
  }
  EXPECT_EQ(policy.looks_alive_interval, Milliseconds(7000));
  EXPECT_EQ(policy.is_alive_interval, Milliseconds(7000));
  EXPECT_EQ(policy.pending_timeout, Milliseconds(7000));
  EXPECT_EQ(policy.probe_timeout, Milliseconds(7000));
  EXPECT_EQ(policy.terminate_timeout, Milliseconds(7000));
  EXPECT_EQ(policy.restart_action, RestartAction::kNoRestart);
  EXPECT_EQ(policy.restart_threshold, 7);
  EXPECT_EQ(policy.restart_period, Milliseconds(7000));
  EXPECT_EQ(policy.restart_delay, Milliseconds(7000));
  EXPECT_EQ(policy.retry_period_on_failure, Milliseconds(7000));
  EXPECT_EQ(policy_field_names().size(), 10u);
}

TEST(SetPolicyFieldTest, RejectsBadValuesAndLeavesThePolicyAlone) {
  cluster::ResourcePolicy policy;
  EXPECT_THAT(set_policy_field(policy, "restartTreshold", "3").error().message,
              HasSubstr("unknown policy field (did you mean \"restartThreshold\"?)"));
  EXPECT_THAT(set_policy_field(policy, "restartThreshold", "-1").error().message,
              HasSubstr("must be a whole number"));
  EXPECT_THAT(set_policy_field(policy, "restartThreshold", "3x").error().message,
              HasSubstr("must be a whole number"));
  EXPECT_THAT(set_policy_field(policy, "pendingTimeout", "0").error().message,
              HasSubstr("must be greater than 0"));
  EXPECT_THAT(set_policy_field(policy, "pendingTimeout", "1 minute").error().message,
              HasSubstr("invalid duration"));
  EXPECT_TRUE(set_policy_field(policy, "restartDelay", "0s").ok());
  EXPECT_EQ(policy.restart_delay, Milliseconds(0));
  EXPECT_EQ(policy.restart_threshold, cluster::ResourcePolicy().restart_threshold);
  EXPECT_EQ(policy.pending_timeout, cluster::ResourcePolicy().pending_timeout);
  EXPECT_THAT(set_policy_field(policy, "restartAction", "restart").error().message,
              Not(HasSubstr("restartAction")));
}

}  // namespace
}  // namespace clusweb::config
