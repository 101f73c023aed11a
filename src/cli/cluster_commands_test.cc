#include "cli/cluster_commands.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "base/testing/manual_clock.h"
#include "cli/admin_client.h"
#include "cli/testing/fake_admin_server.h"
#include "cli/testing/routes.h"
#include "cluster/store_keys.h"

namespace clusweb::cli {
namespace {

using ::testing::ContainsRegex;
using ::testing::ElementsAre;
using testing::FakeAdminServer;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::json_reply;
using testing::routes;
using Reply = FakeAdminServer::Reply;
using Kind = ClusterCommand::Kind;

constexpr std::string_view kCluster = R"({"cluster":"default","node":"n1","coordinator":"n2",
  "revision":42,
  "nodes":[{"name":"n1","up":true,"paused":false,"draining":false,"groups":1},
           {"name":"n2","up":true,"paused":true,"draining":false,"groups":1},
           {"name":"n3","up":false,"paused":false,"draining":false,"groups":0},
           {"name":"n4","up":true,"paused":true,"draining":true,"groups":1},
           {"name":"n5","up":true,"paused":true,"draining":true,"groups":0}],
  "groups":[
    {"name":"web","state":"Online","owner":"n1","token":17,"placement":"n1","reason":"",
     "resources":[{"name":"vip","type":"ip","state":"Online","restarts":0,"lastError":""},
                  {"name":"site","type":"website","state":"Online","restarts":2,
                   "lastError":"probe answered 503"}]},
    {"name":"db","state":"Pending","owner":"n2","token":9,"placement":"n3","reason":"moving",
     "resources":[{"name":"disk","type":"script","state":"OfflinePending","restarts":0,
                   "lastError":""}]},
    {"name":"idle","state":"Offline","owner":null,"token":0,"placement":null,"reason":"",
     "resources":[]}]})";

// GET /v1/cluster?store=1's "store": a 3-member etcd with one member down, one with an alarm,
// and an endpoint that matches no member.
constexpr std::string_view kStore = R"({"kind":"etcd","leader":"e2",
  "members":[
    {"id":"8e9e05c52164694d","name":"e1","endpoint":"10.77.0.2:2379","healthy":true,"error":"",
     "leader":false,"learner":false,"version":"3.4.23","dbSize":24576,"dbSizeInUse":16384,
     "raftTerm":3,"raftIndex":1021,"alarms":[]},
    {"id":"91bc3c398fb3c146","name":"e2","endpoint":"10.77.0.3:2379","healthy":true,"error":"",
     "leader":true,"learner":false,"version":"3.4.23","dbSize":2254857830,"dbSizeInUse":0,
     "raftTerm":3,"raftIndex":1021,"alarms":["NOSPACE"]},
    {"id":"fd422379fda50e48","name":"e3","endpoint":"10.77.0.4:2379","healthy":false,
     "error":"Deadline Exceeded","leader":false,"learner":false},
    {"id":"aa01","name":"","endpoint":"","healthy":false,
     "error":"not among this node's etcd endpoints","leader":false,"learner":true}],
  "unreachable":[{"endpoint":"10.77.0.9:2379","error":"connection refused"}]})";

// The group "web": an ip address and a website depending on it.
cluster::GroupSpec web_group() {
  cluster::GroupSpec group;
  group.name = "web";
  group.preferred_owners = {"n1", "n2"};
  cluster::ResourceSpec vip;
  vip.name = "vip";
  vip.type = "ip";
  vip.parameters = {{"address", "10.0.0.10/24"}, {"interface", "eth0"}};
  cluster::ResourceSpec site;
  site.name = "site";
  site.type = "website";
  site.parameters = {{"site", "shop"}};
  site.depends_on = {{"vip"}};
  group.resources = {vip, site};
  return group;
}

Json group_status(std::string_view state, const char* owner, int token) {
  return Json{{"name", "web"},
              {"state", std::string(state)},
              {"owner", owner == nullptr ? Json(nullptr) : Json(owner)},
              {"token", token},
              {"placement", owner == nullptr ? Json(nullptr) : Json(owner)},
              {"reason", ""},
              {"resources", Json::array()}};
}

// GET /v1/groups/web's reply.
std::string group_reply(const cluster::GroupSpec& spec, int revision,
                        const Json& status = group_status("Online", "n1", 17)) {
  return Json{{"name", spec.name},
              {"revision", revision},
              {"spec", Json::parse(cluster::encode(spec))},
              {"status", status}}
      .dump();
}

// ---- formatting, no agent ----

TEST(FormatClusterStatusTest, ShowsNodesGroupsAndResources) {
  Result<std::string> text = format_cluster_status(kCluster);

  ASSERT_TRUE(text.ok()) << text.error().describe();
  EXPECT_EQ(*text,
            "cluster:     default\n"
            "node:        n1\n"
            "coordinator: n2\n"
            "revision:    42\n"
            "\n"
            "NODE   STATE          GROUPS\n"
            "n1     up             1\n"
            "n2     up, paused     1\n"
            "n3     down           0\n"
            "n4     up, draining   1\n"
            "n5     up, drained    0\n"
            "\n"
            "GROUP   STATE     OWNER      RESOURCES\n"
            "web     Online    n1         2/2\n"
            "db      Pending   n2 -> n3   0/1\n"
            "idle    Offline   -          0/0\n"
            "\n"
            "GROUP   RESOURCE   TYPE      STATE            RESTARTS   LAST ERROR\n"
            "web     vip        ip        Online           0          -\n"
            "web     site       website   Online           2          probe answered 503\n"
            "db      disk       script    OfflinePending   0          -\n");
}

TEST(FormatClusterStatusTest, MarksWhatIsUnmanaged) {
  Json cluster = Json::parse(kCluster);
  cluster["groups"][0]["resources"][1]["unmanaged"] = true;
  cluster["groups"][1]["unmanaged"] = true;
  cluster["groups"][1]["resources"][0]["unmanaged"] = true;
  Result<std::string> text = format_cluster_status(cluster.dump());
  ASSERT_TRUE(text.ok()) << text.error().describe();
  EXPECT_THAT(*text, ContainsRegex("\nweb +Online \\(partly unmanaged\\) +n1 "));
  EXPECT_THAT(*text, ContainsRegex("\ndb +Pending \\(unmanaged\\) +n2 -> n3 "));
  EXPECT_THAT(*text, ContainsRegex("\nweb +site +website +Online \\(unmanaged\\) +2 "));
  EXPECT_THAT(*text, ContainsRegex("\nweb +vip +ip +Online +0 "));
}

TEST(FormatClusterStatusTest, ShowsTheStoreMembersTheirHealthAndTheLeader) {
  Json cluster = Json::parse(R"({"cluster":"c","nodes":[],"groups":[]})");
  cluster["store"] = Json::parse(kStore);
  Result<std::string> text = format_cluster_status(cluster.dump());

  ASSERT_TRUE(text.ok()) << text.error().describe();
  EXPECT_THAT(*text, HasSubstr("STORE etcd: 2 of 4 members healthy, leader e2\n"));
  EXPECT_THAT(*text,
              ContainsRegex("\ne1 +10\\.77\\.0\\.2:2379 +healthy +24\\.0 KiB \\(16\\.0 KiB in "
                            "use\\) +3 +3\\.4\\.23 *\n"));
  EXPECT_THAT(*text, ContainsRegex("\ne2 +10\\.77\\.0\\.3:2379 +healthy +leader +2\\.1 GiB +3 +"
                                   "3\\.4\\.23 +NOSPACE\n"));
  EXPECT_THAT(*text, ContainsRegex("\ne3 +10\\.77\\.0\\.4:2379 +unhealthy +- +- +- *\n"));
  EXPECT_THAT(*text,
              ContainsRegex("\n\\(unstarted aa01\\) \\(learner\\) +- +unhealthy +- +- +- *\n"));
  // Why, below the table.
  EXPECT_THAT(*text, HasSubstr("\ne3: Deadline Exceeded\n(unstarted aa01) (learner): not among "
                               "this node's etcd endpoints\nendpoint 10.77.0.9:2379 unreachable: "
                               "connection refused\n"));

  // Followers name a lost leader until they elect another.
  Json store = Json::parse(kStore);
  store["members"][1]["healthy"] = false;
  cluster["store"] = store;
  EXPECT_THAT(*format_cluster_status(cluster.dump()),
              HasSubstr("STORE etcd: 1 of 4 members healthy, leader e2 (not answering)\n"));

  cluster["store"] = Json{{"error", "the store did not answer"}};
  EXPECT_THAT(*format_cluster_status(cluster.dump()),
              HasSubstr("\nSTORE: the store did not answer\n"));
}

TEST(FormatConfigStatusTest, ShowsTheRevisionAndWhatEachNodeServes) {
  Result<std::string> text = format_config_status(R"({
      "revision": 42, "sites": ["blog", "shop"], "pools": [],
      "nodes": [{"node": "n1", "up": true, "revision": 42, "latest": 42, "problem": ""},
                {"node": "n2", "up": false, "revision": 41, "latest": 42,
                 "problem": "Site \"blog\": also defined by this node"}]})");
  ASSERT_TRUE(text.ok()) << text.error().describe();
  EXPECT_EQ(*text,
            "revision: 42\n"
            "sites:    blog, shop\n"
            "pools:    none\n"
            "\n"
            "NODE   STATE   SERVES   PROBLEM\n"
            "n1     up      42       -\n"
            "n2     down    41       Site \"blog\": also defined by this node\n");
  EXPECT_FALSE(format_config_status("[]").ok());
}

TEST(FormatClusterStatusTest, EmptyCluster) {
  EXPECT_EQ(*format_cluster_status(R"({"cluster":"c","nodes":[],"groups":[]})"),
            "cluster:     c\n"
            "node:        -\n"
            "coordinator: -\n"
            "revision:    -\n"
            "\n"
            "no nodes\n"
            "\n"
            "no groups\n");
  EXPECT_FALSE(format_cluster_status("[]").ok());
  EXPECT_EQ(format_cluster_status("<html>").error().message,
            "the cluster agent sent a reply that is not JSON");
}

TEST(FormatGroupTableTest, ListsTheGroups) {
  EXPECT_EQ(*format_group_table(kCluster),
            "GROUP   STATE     OWNER      RESOURCES\n"
            "web     Online    n1         2/2\n"
            "db      Pending   n2 -> n3   0/1\n"
            "idle    Offline   -          0/0\n");
  EXPECT_EQ(*format_group_table(R"({"groups":[]})"), "no groups\n");
}

TEST(FormatGroupDetailsTest, MergesSpecAndStatus) {
  cluster::GroupSpec spec = web_group();
  spec.failover_threshold = 1;
  spec.failback = cluster::FailbackPolicy::kAllow;
  spec.failback_window = cluster::FailbackWindow{22, 6};
  spec.anti_affinity_classes = {"shops", "db"};
  spec.resources[0].possible_owners = {"n1", "n2"};
  Json status = group_status("Online", "n1", 17);
  status["reason"] = "preferred owner";
  status["resources"] = Json::parse(
      R"([{"name":"vip","type":"ip","state":"Online","restarts":0,"lastError":""},
          {"name":"site","type":"website","state":"Failed","restarts":3,"lastError":"probe 503"}])");

  Result<std::string> text = format_group_details(group_reply(spec, 42, status));

  ASSERT_TRUE(text.ok()) << text.error().describe();
  EXPECT_EQ(*text,
            "name:                    web\n"
            "state:                   Online\n"
            "owner:                   n1\n"
            "placement:               n1\n"
            "fencing token:           17\n"
            "reason:                  preferred owner\n"
            "revision:                42\n"
            "preferred owners:        n1, n2\n"
            "failback:                allow, between 22:00 and 06:59 UTC\n"
            "anti-affinity classes:   shops, db\n"
            "failover threshold:      1\n"
            "failover period:         6h\n"
            "retry period on failure: 1h\n"
            "resources:\n"
            "  NAME   TYPE      STATE    RESTARTS   DEPENDS ON   POSSIBLE OWNERS   PARAMETERS"
            "                            LAST ERROR\n"
            "  vip    ip        Online   0          -            n1,n2             "
            "address=10.0.0.10/24 interface=eth0   -\n"
            "  site   website   Failed   3          vip          any               site=shop"
            "                             probe 503\n");
}

TEST(FormatGroupDetailsTest, GroupWithoutResources) {
  cluster::GroupSpec spec;
  spec.name = "empty";
  Result<std::string> text = format_group_details(group_reply(spec, 3, Json::object()));

  ASSERT_TRUE(text.ok()) << text.error().describe();
  EXPECT_THAT(*text, HasSubstr("state:                   -\n"));
  EXPECT_THAT(*text, HasSubstr("preferred owners:        any\n"));
  EXPECT_THAT(*text, HasSubstr("failover threshold:      nodes - 1\n"));
  EXPECT_THAT(*text, HasSubstr("resources:               none\n"));
}

TEST(FormatEventTableTest, OneRowPerEvent) {
  Result<std::string> text = format_event_table(R"({"events":[
    {"seq":12,"time":"2026-11-26T01:02:03.456Z","node":"n1","group":"web","resource":"site",
     "what":"online","why":"probe answered 200"},
    {"seq":13,"time":"2026-11-26T01:02:04.000Z","node":"n2","group":"web","resource":"",
     "what":"failover","why":""}]})");

  ASSERT_TRUE(text.ok()) << text.error().describe();
  EXPECT_EQ(*text,
            "SEQ   TIME                      NODE   GROUP   RESOURCE   WHAT       WHY\n"
            "12    2026-11-26 01:02:03.456   n1     web     site       online     probe "
            "answered 200\n"
            "13    2026-11-26 01:02:04.000   n2     web     -          failover\n");
  EXPECT_EQ(*format_event_table(R"({"events":[]})"), "no events\n");
}

TEST(FormatEventLineTest, StreamedEventsKeepTheColumns) {
  EXPECT_EQ(format_event_line(R"({"seq":12,"time":"2026-11-26T01:02:03.456Z","node":"n1",
      "group":"web","resource":"site","what":"online","why":"probe answered 200"})"),
            "12     2026-11-26 01:02:03.456  n1        web           site          online      "
            "probe answered 200\n");
  EXPECT_EQ(format_event_line("not json"), "not json\n");
}

TEST(FormatApplyResultTest, NamesEachList) {
  EXPECT_EQ(
      *format_apply_result(R"({"created":["web","db"],"changed":[],"unchanged":["api"]})", false),
      "created:   web, db\n"
      "changed:   none\n"
      "unchanged: api\n");
  EXPECT_EQ(*format_apply_result(R"({"created":[],"changed":["web"],"unchanged":[]})", true),
            "dry run: nothing was written\n"
            "would create: none\n"
            "would change: web\n"
            "unchanged:    none\n");
}

TEST(DependenciesTest, CommasAreAndsBarsAreOrs) {
  auto parsed = parse_dependencies({"vip,disk-a|disk-b", "net"});
  ASSERT_TRUE(parsed.ok()) << parsed.error().describe();
  EXPECT_THAT(*parsed,
              ElementsAre(ElementsAre("vip"), ElementsAre("disk-a", "disk-b"), ElementsAre("net")));
  EXPECT_EQ(format_dependencies(*parsed), "vip,disk-a|disk-b,net");
  EXPECT_THAT(*parse_dependencies({}), IsEmpty());
  EXPECT_THAT(parse_dependencies({"vip,,net"}).error().message,
              HasSubstr("\"vip,,net\": resource name is empty"));
  EXPECT_THAT(parse_dependencies({"a b"}).error().message, HasSubstr("contains ' '"));
}

TEST(AgentSocketPathTest, SocketFlagWinsThenRunDirThenEnvironment) {
  EXPECT_EQ(agent_socket_path("/tmp/a.sock", "/srv/run", "/env/run"), "/tmp/a.sock");
  EXPECT_EQ(agent_socket_path("", "/srv/run", "/env/run"), "/srv/run/agent.sock");
  EXPECT_EQ(agent_socket_path("", "", "/env/run"), "/env/run/agent.sock");
  EXPECT_EQ(agent_socket_path("", "", ""), "/run/clusweb/agent.sock");
  EXPECT_EQ(agent_socket_path("", "", nullptr), "/run/clusweb/agent.sock");
}

// ---- edit_group, no agent ----

ClusterCommand resource_command(Kind kind, std::string resource) {
  ClusterCommand command;
  command.kind = kind;
  command.group = "web";
  command.resource = std::move(resource);
  return command;
}

TEST(EditGroupTest, AnAddedOcfResourceStartsFromItsAgentsMetaDataAndPolicyWins) {
  const std::filesystem::path root =
      std::filesystem::temp_directory_path() / ("clusweb-cli-ocf-" + std::to_string(::getpid()));
  std::filesystem::create_directories(root / "resource.d" / "t");
  const std::filesystem::path agent = root / "resource.d" / "t" / "quick";
  std::ofstream(agent) << R"(#!/bin/sh
cat <<'END'
<resource-agent name="quick"><actions>
<action name="start" timeout="3s"/><action name="stop" timeout="4s"/>
<action name="monitor" timeout="2s" interval="7s"/>
</actions></resource-agent>
END
)";
  std::filesystem::permissions(agent, std::filesystem::perms::owner_all);
  cluster::GroupSpec group = web_group();
  ClusterCommand command = resource_command(Kind::kResourceAdd, "disk");
  command.type = "ocf";
  command.parameters = {{"agent", "t:quick"}, {"ocfRoot", root.string()}};
  command.policy = {{"probeTimeout", "9s"}};
  std::ostringstream err;

  ASSERT_TRUE(edit_group(command, group, policy_defaults(err)).ok());

  const cluster::ResourceSpec& disk = group.resources.back();
  EXPECT_EQ(disk.policy.pending_timeout, cluster::Milliseconds(4000));  // the agent's stop
  EXPECT_EQ(disk.policy.looks_alive_interval, cluster::Milliseconds(7000));
  EXPECT_EQ(disk.policy.probe_timeout, cluster::Milliseconds(9000));  // --policy
  EXPECT_EQ(err.str(), "");

  // Without the agent here: the built-in defaults, and a warning that says so.
  command.resource = "other";
  command.parameters["agent"] = "t:absent";
  ASSERT_TRUE(edit_group(command, group, policy_defaults(err)).ok());
  EXPECT_EQ(group.resources.back().policy.pending_timeout,
            cluster::ResourcePolicy().pending_timeout);
  EXPECT_THAT(err.str(), HasSubstr("clusweb: warning: resource other: ocf agent "));
  std::filesystem::remove_all(root);
}

TEST(EditGroupTest, AddAppendsAResourceWithItsSettings) {
  cluster::GroupSpec group = web_group();
  ClusterCommand command = resource_command(Kind::kResourceAdd, "hook");
  command.type = "script";
  command.parameters = {{"path", "/usr/local/bin/hook"}, {"mode", "fast"}};
  command.policy = {{"restartThreshold", "5"}, {"pendingTimeout", "30s"}};
  command.possible_owners = std::vector<std::string>{"n1"};
  command.depends_on = std::vector<std::vector<std::string>>{{"site"}};

  ASSERT_TRUE(edit_group(command, group).ok());

  ASSERT_EQ(group.resources.size(), 3u);
  const cluster::ResourceSpec& hook = group.resources[2];
  EXPECT_EQ(hook.name, "hook");
  EXPECT_EQ(hook.type, "script");
  EXPECT_EQ(hook.parameters.at("mode"), "fast");
  EXPECT_EQ(hook.policy.restart_threshold, 5);
  EXPECT_EQ(hook.policy.pending_timeout, cluster::Milliseconds(30000));
  EXPECT_THAT(hook.possible_owners, ElementsAre("n1"));
  EXPECT_THAT(hook.depends_on, ElementsAre(ElementsAre("site")));
}

TEST(EditGroupTest, AddRefusesWhatDoesNotFit) {
  cluster::GroupSpec group = web_group();
  ClusterCommand twice = resource_command(Kind::kResourceAdd, "vip");
  twice.type = "ip";
  EXPECT_EQ(edit_group(twice, group).error().message,
            "group \"web\" already has a resource named \"vip\"");

  group = web_group();
  ClusterCommand typo = resource_command(Kind::kResourceAdd, "vip2");
  typo.type = "ip";
  typo.parameters = {{"adress", "10.0.0.11/24"}, {"interface", "eth0"}};
  EXPECT_EQ(edit_group(typo, group).error().message,
            "resource \"vip2\": parameter \"address\": missing required parameter of an ip "
            "resource\n"
            "resource \"vip2\": parameter \"adress\": unknown parameter of an ip resource (did "
            "you mean \"address\"?)");

  group = web_group();
  ClusterCommand dangling = resource_command(Kind::kResourceAdd, "hook");
  dangling.type = "script";
  dangling.parameters = {{"path", "/bin/true"}};
  dangling.depends_on = std::vector<std::vector<std::string>>{{"vpi"}};
  EXPECT_EQ(edit_group(dangling, group).error().message,
            "resource \"hook\" cannot depend on \"vpi\": group \"web\" has no resource named "
            "\"vpi\" (it has: vip, site, hook)");
}

TEST(EditGroupTest, SetChangesOnlyWhatIsGiven) {
  cluster::GroupSpec group = web_group();
  ClusterCommand command = resource_command(Kind::kResourceSet, "vip");
  command.parameters = {{"lifetime", "30"}};
  command.removed_parameters = {};
  command.policy = {{"restartAction", "no-restart"}};

  ASSERT_TRUE(edit_group(command, group).ok());

  const cluster::ResourceSpec& vip = group.resources[0];
  EXPECT_EQ(vip.parameters.size(), 3u);
  EXPECT_EQ(vip.parameters.at("lifetime"), "30");
  EXPECT_EQ(vip.policy.restart_action, cluster::RestartAction::kNoRestart);
  EXPECT_EQ(vip.policy.restart_threshold, cluster::ResourcePolicy().restart_threshold);

  ClusterCommand missing = resource_command(Kind::kResourceSet, "vip");
  missing.removed_parameters = {"nope"};
  EXPECT_EQ(edit_group(missing, group).error().message,
            "resource \"vip\" has no parameter \"nope\"");
  ClusterCommand unknown = resource_command(Kind::kResourceSet, "disk");
  EXPECT_EQ(edit_group(unknown, group).error().message,
            "group \"web\" has no resource named \"disk\" (it has: vip, site)");
}

TEST(EditGroupTest, RemoveRefusesWhileOthersDependOnIt) {
  cluster::GroupSpec group = web_group();
  EXPECT_EQ(edit_group(resource_command(Kind::kResourceRemove, "vip"), group).error().message,
            "cannot remove resource \"vip\": site depends on it (change that first with "
            "\"clusweb resource depend\")");
  ASSERT_TRUE(edit_group(resource_command(Kind::kResourceRemove, "site"), group).ok());
  ASSERT_EQ(group.resources.size(), 1u);
  EXPECT_EQ(group.resources[0].name, "vip");
}

TEST(EditGroupTest, DependReplacesAndCatchesCycles) {
  cluster::GroupSpec group = web_group();
  ClusterCommand none = resource_command(Kind::kResourceDepend, "site");
  none.depends_on = std::vector<std::vector<std::string>>{};
  ASSERT_TRUE(edit_group(none, group).ok());
  EXPECT_TRUE(group.resources[1].depends_on.empty());

  group = web_group();
  ClusterCommand cycle = resource_command(Kind::kResourceDepend, "vip");
  cycle.depends_on = std::vector<std::vector<std::string>>{{"site"}};
  EXPECT_THAT(edit_group(cycle, group).error().describe(), HasSubstr("dependency cycle"));

  group = web_group();
  ClusterCommand self = resource_command(Kind::kResourceDepend, "vip");
  self.depends_on = std::vector<std::vector<std::string>>{{"vip"}};
  EXPECT_EQ(edit_group(self, group).error().message, "a resource cannot depend on itself");
}

// ---- the command line against a fake agent ----

class ClusterCommandLineTest : public ::testing::Test {
 protected:
  // Parses `arguments` (without the program name) as `clusweb` would and returns the exit code
  // the command set, or -1 when none ran. --wait's polls advance clock_ instead of sleeping.
  int run(const std::string& arguments) {
    CLI::App root("clusweb");
    int exit_code = -1;
    Pacing pacing{[this] { return clock_.now(); },
                  [this](std::chrono::milliseconds duration) {
                    clock_.advance(duration);
                    sleeps_.push_back(duration.count());
                  }};
    add_cluster_commands(root, exit_code, out_, err_, pacing);
    root.parse(arguments, false);
    return exit_code;
  }

  // The JSON body of the `index`th request.
  static Json body_of(const FakeAdminServer& server, std::size_t index) {
    return Json::parse(server.requests().at(index).body);
  }

  clusweb::testing::ManualClock clock_;
  std::vector<long> sleeps_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(ClusterCommandLineTest, StatusUsesAgentSockInTheRunDirectory) {
  FakeAdminServer server(
      routes({{"GET /v1/cluster?store=1", {json_reply(200, std::string(kCluster))}}}),
      "agent.sock");

  EXPECT_EQ(run("cluster status --run-dir " + server.directory()), kExitOk);

  EXPECT_EQ(out_.str(), *format_cluster_status(kCluster));
  EXPECT_EQ(err_.str(), "");
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].method, "GET");
}

TEST_F(ClusterCommandLineTest, StatusAsJsonPrintsTheAgentsJson) {
  FakeAdminServer server(
      routes({{"GET /v1/cluster?store=1", {json_reply(200, R"({"cluster":"c"})")}}}));

  EXPECT_EQ(run("cluster status -o json --socket " + server.socket_path()), kExitOk);

  EXPECT_EQ(out_.str(), "{\n  \"cluster\": \"c\"\n}\n");
}

TEST_F(ClusterCommandLineTest, GroupListAsJsonIsTheGroupsAlone) {
  FakeAdminServer server(routes({{"GET /v1/cluster", {json_reply(200, std::string(kCluster))}}}));

  EXPECT_EQ(run("group list -o json --socket " + server.socket_path()), kExitOk);

  const Json printed = Json::parse(out_.str());
  EXPECT_EQ(printed.size(), 1u);
  EXPECT_EQ(printed["groups"].size(), 3u);
}

TEST_F(ClusterCommandLineTest, UnreachableAgentExitsThree) {
  FakeAdminServer server(routes({}));
  const std::string missing = server.directory() + "/gone.sock";

  EXPECT_EQ(run("cluster status --socket " + missing), kExitUnreachable);

  EXPECT_EQ(err_.str(), "clusweb: cannot reach the cluster agent at " + missing +
                            " (No such file or directory); is \"clusweb agent\" running?\n");
}

TEST_F(ClusterCommandLineTest, ShowOfAnUnknownGroupPrintsTheAgentsReason) {
  FakeAdminServer server(routes(
      {{"GET /v1/groups/nope", {json_reply(404, R"({"error":"no group named \"nope\""})")}}}));

  EXPECT_EQ(run("group show nope --socket " + server.socket_path()), kExitRefused);

  EXPECT_EQ(err_.str(), "clusweb: no group named \"nope\"\n");
  EXPECT_EQ(out_.str(), "");
}

TEST_F(ClusterCommandLineTest, CreatePostsANewGroupWithRevisionZero) {
  FakeAdminServer server(
      routes({{"POST /v1/groups/web", {json_reply(200, R"({"name":"web","revision":43})")}}}));

  EXPECT_EQ(run("group create web --preferred-owners n1,n2 --failback allow "
                "--failover-threshold 2 --failover-period 2h --socket " +
                server.socket_path()),
            kExitOk);

  EXPECT_EQ(out_.str(), "group \"web\" created (revision 43)\n");
  const Json body = body_of(server, 0);
  EXPECT_EQ(body["revision"], 0);
  EXPECT_EQ(body["spec"]["name"], "web");
  EXPECT_EQ(body["spec"]["preferredOwners"], Json::parse(R"(["n1","n2"])"));
  EXPECT_EQ(body["spec"]["failback"], "allow");
  EXPECT_EQ(body["spec"]["failoverThreshold"], 2);
  EXPECT_EQ(body["spec"]["failoverPeriod"], "2h");
  EXPECT_EQ(body["spec"]["resources"], Json::array());
}

TEST_F(ClusterCommandLineTest, CreateChecksItsArgumentsBeforeSending) {
  FakeAdminServer server(routes({}));
  const std::string socket = " --socket " + server.socket_path();

  EXPECT_EQ(run("group create 'my web'" + socket), kExitUsage);
  EXPECT_EQ(run("group create web --preferred-owners n1,n1" + socket), kExitUsage);
  EXPECT_EQ(run("group create web --failover-period soon" + socket), kExitUsage);

  EXPECT_EQ(err_.str(),
            "clusweb: group name \"my web\" contains ' ' (allowed: letters, digits, '.', '_', "
            "'-')\n"
            "clusweb: --preferred-owners: node \"n1\" is listed twice\n"
            "clusweb: --failover-period: invalid duration \"soon\": expected a number (expected "
            "e.g. 250ms, 90s, 20m, 1h30m)\n");
  EXPECT_TRUE(server.requests().empty());
}

TEST_F(ClusterCommandLineTest, DeleteOnlineOffline) {
  FakeAdminServer server(
      routes({{"POST /v1/groups/web/delete", {json_reply(200, R"({"name":"web"})")}},
              {"POST /v1/groups/web/online", {json_reply(200, R"({"name":"web"})")}},
              {"POST /v1/groups/web/offline", {json_reply(200, R"({"name":"web"})")}}}));
  const std::string socket = " --socket " + server.socket_path();

  EXPECT_EQ(run("group online web" + socket), kExitOk);
  EXPECT_EQ(run("group offline web" + socket), kExitOk);
  EXPECT_EQ(run("group delete web" + socket), kExitOk);

  EXPECT_EQ(out_.str(),
            "group \"web\": online requested\n"
            "group \"web\": offline requested\n"
            "group \"web\" deleted\n");
  ASSERT_EQ(server.requests().size(), 3u);
  EXPECT_EQ(server.requests()[0].body, "");
}

TEST_F(ClusterCommandLineTest, UnmanageAndManageSendTheResourcesAndSayWhatHolds) {
  FakeAdminServer server(routes(
      {{"POST /v1/groups/web/unmanage",
        {json_reply(200, R"({"name":"web","unmanaged":{"group":false,"resources":["site"]}})"),
         json_reply(200, R"({"name":"web","unmanaged":{"group":true,"resources":[]}})")}},
       {"POST /v1/groups/web/manage",
        {json_reply(200, R"({"name":"web","unmanaged":{"group":false,"resources":[]}})")}}}));
  const std::string socket = " --socket " + server.socket_path();

  EXPECT_EQ(run("group unmanage web site" + socket), kExitOk);
  EXPECT_EQ(run("group unmanage web" + socket), kExitOk);
  EXPECT_EQ(run("group manage web" + socket), kExitOk);
  EXPECT_EQ(out_.str(),
            "group \"web\": unmanaged resources: site (the group stays on its node)\n"
            "group \"web\" is unmanaged: the cluster watches it but starts, stops, recovers and "
            "moves none of it until `clusweb group manage web`\n"
            "group \"web\" is managed by the cluster again\n");
  ASSERT_EQ(server.requests().size(), 3u);
  EXPECT_EQ(server.requests()[0].body, R"({"resources":["site"]})");
  EXPECT_EQ(server.requests()[1].body, "{}");
}

TEST_F(ClusterCommandLineTest, MoveWaitsUntilTheTargetServesTheGroup) {
  const cluster::GroupSpec spec = web_group();
  FakeAdminServer server(routes(
      {{"POST /v1/groups/web/move", {json_reply(200, R"({"name":"web","from":"n1","to":"n2"})")}},
       {"GET /v1/groups/web",
        {json_reply(200, group_reply(spec, 5, group_status("Online", "n1", 17))),
         json_reply(200, group_reply(spec, 5, group_status("Offline", nullptr, 17))),
         json_reply(200, group_reply(spec, 5, group_status("Offline", nullptr, 17))),
         json_reply(200, group_reply(spec, 5, group_status("Pending", "n2", 18))),
         json_reply(200, group_reply(spec, 5, group_status("Online", "n2", 18)))}}}));

  EXPECT_EQ(run("group move web --to n2 --wait --socket " + server.socket_path()), kExitOk);

  EXPECT_EQ(out_.str(),
            "moving group \"web\" from n1 to n2\n"
            "group \"web\" is Online on n1\n"
            "group \"web\" is Offline\n"
            "group \"web\" is Pending on n2\n"
            "group \"web\" is Online on n2\n");
  EXPECT_EQ(err_.str(), "");
  EXPECT_EQ(body_of(server, 0), Json::parse(R"({"node":"n2"})"));
  EXPECT_THAT(sleeps_, ElementsAre(200, 200, 200, 200));
}

TEST_F(ClusterCommandLineTest, MoveAnywhereWaitsForAnotherOwner) {
  const cluster::GroupSpec spec = web_group();
  FakeAdminServer server(routes(
      {{"POST /v1/groups/web/move", {json_reply(200, R"({"name":"web","from":"n1","to":null})")}},
       {"GET /v1/groups/web",
        {json_reply(200, group_reply(spec, 5, group_status("Online", "n1", 17))),
         json_reply(200, group_reply(spec, 5, group_status("Online", "n3", 18)))}}}));

  EXPECT_EQ(run("group move web --wait --socket " + server.socket_path()), kExitOk);

  EXPECT_EQ(out_.str(),
            "moving group \"web\" from n1 to another node\n"
            "group \"web\" is Online on n1\n"
            "group \"web\" is Online on n3\n");
  EXPECT_EQ(body_of(server, 0), Json::object());
}

TEST_F(ClusterCommandLineTest, WaitGivesUpAtTheTimeout) {
  FakeAdminServer server(routes(
      {{"POST /v1/groups/web/move", {json_reply(200, R"({"name":"web","from":"n1","to":"n2"})")}},
       {"GET /v1/groups/web", {json_reply(200, group_reply(web_group(), 5))}}}));

  EXPECT_EQ(run("group move web --to n2 --wait --timeout 1s --socket " + server.socket_path()),
            kExitRefused);

  EXPECT_EQ(err_.str(),
            "clusweb: gave up after 1s waiting for group \"web\" to be Online on n2; it is Online "
            "on n1\n");
  EXPECT_THAT(sleeps_, ElementsAre(200, 200, 200, 200, 200));
  EXPECT_EQ(server.requests().size(), 7u);  // the move and six polls
}

TEST_F(ClusterCommandLineTest, WaitStopsWhenTheGroupFails) {
  Json failed = group_status("Failed", "n2", 18);
  failed["reason"] = "resource site failed to come online";
  FakeAdminServer server(
      routes({{"POST /v1/groups/web/online", {json_reply(200, R"({"name":"web"})")}},
              {"GET /v1/groups/web",
               {json_reply(200, group_reply(web_group(), 5, group_status("Pending", "n2", 18))),
                json_reply(200, group_reply(web_group(), 5, failed))}}}));

  EXPECT_EQ(run("group online web --wait --socket " + server.socket_path()), kExitRefused);

  EXPECT_EQ(err_.str(),
            "clusweb: group \"web\" is Failed on n2 (resource site failed to come online) instead "
            "of Online\n");
}

TEST_F(ClusterCommandLineTest, WaitLooksPastAFailureFromBeforeTheCommand) {
  FakeAdminServer server(
      routes({{"POST /v1/groups/web/online", {json_reply(200, R"({"name":"web"})")}},
              {"GET /v1/groups/web",
               {json_reply(200, group_reply(web_group(), 5, group_status("Failed", "n2", 18))),
                json_reply(200, group_reply(web_group(), 5, group_status("Pending", "n2", 18))),
                json_reply(200, group_reply(web_group(), 5, group_status("Online", "n2", 18)))}}}));

  EXPECT_EQ(run("group online web --wait -o json --socket " + server.socket_path()), kExitOk);

  EXPECT_EQ(Json::parse(out_.str())["status"]["state"], "Online");  // the last poll, alone
  EXPECT_EQ(err_.str(), "");
}

TEST_F(ClusterCommandLineTest, TimeoutNeedsWait) {
  EXPECT_THROW(run("group online web --timeout 5s"), CLI::RequiresError);
}

TEST_F(ClusterCommandLineTest, ResourceAddReadsChangesAndWritesBackAtTheRevisionRead) {
  cluster::GroupSpec spec = web_group();
  FakeAdminServer server(
      routes({{"GET /v1/groups/web", {json_reply(200, group_reply(spec, 7))}},
              {"POST /v1/groups/web", {json_reply(200, R"({"name":"web","revision":8})")}}}));

  EXPECT_EQ(run("resource add web hook --type script --param path=/usr/local/bin/hook "
                "--param mode=a=b --depends-on site --depends-on 'vip|site' "
                "--policy restartThreshold=5 --possible-owners n1,n2 --socket " +
                server.socket_path()),
            kExitOk);

  EXPECT_EQ(out_.str(), "resource \"hook\" added to group \"web\" (revision 8)\n");
  ASSERT_EQ(server.requests().size(), 2u);
  EXPECT_EQ(server.requests()[0].method, "GET");
  EXPECT_EQ(server.requests()[1].method, "POST");
  const Json body = body_of(server, 1);
  EXPECT_EQ(body["revision"], 7);
  auto written = cluster::decode_group(body["spec"].dump(), "body");
  ASSERT_TRUE(written.ok()) << written.error().describe();
  ASSERT_EQ(written->resources.size(), 3u);
  const cluster::ResourceSpec& hook = written->resources[2];
  EXPECT_EQ(hook.type, "script");
  EXPECT_EQ(hook.parameters.at("path"), "/usr/local/bin/hook");
  EXPECT_EQ(hook.parameters.at("mode"), "a=b");
  EXPECT_THAT(hook.depends_on, ElementsAre(ElementsAre("site"), ElementsAre("vip", "site")));
  EXPECT_EQ(hook.policy.restart_threshold, 5);
  EXPECT_THAT(hook.possible_owners, ElementsAre("n1", "n2"));
  // Everything else is as it was.
  spec.resources.push_back(hook);
  EXPECT_EQ(cluster::encode(*written), cluster::encode(spec));
}

TEST_F(ClusterCommandLineTest, ResourceSetAndRemoveParameters) {
  FakeAdminServer server(
      routes({{"GET /v1/groups/web", {json_reply(200, group_reply(web_group(), 7))}},
              {"POST /v1/groups/web", {json_reply(200, R"({"name":"web","revision":8})")}}}));

  const std::string socket = " --socket " + server.socket_path();

  EXPECT_EQ(run("resource set web site --param site=store --param pool=shop-pool "
                "--policy pendingTimeout=1m" +
                socket),
            kExitOk);
  EXPECT_EQ(run("resource set web site --remove-param site" + socket), kExitRefused);

  EXPECT_EQ(out_.str(), "resource \"site\" of group \"web\" changed (revision 8)\n");
  const Json resource = body_of(server, 1)["spec"]["resources"][1];
  EXPECT_EQ(resource["parameters"], Json::parse(R"({"pool":"shop-pool","site":"store"})"));
  EXPECT_EQ(resource["policy"]["pendingTimeout"], "1m");
  EXPECT_EQ(err_.str(),
            "clusweb: resource \"site\": parameter \"site\": missing required parameter of a "
            "website resource\n");
  EXPECT_EQ(server.requests().size(), 3u);  // read, write, read
}

TEST_F(ClusterCommandLineTest, ResourceDependReplacesTheDependencies) {
  cluster::GroupSpec spec = web_group();
  cluster::ResourceSpec disk{"disk", "script", {{"path", "/bin/disk"}}, {}, {}, {}};
  spec.resources.push_back(disk);
  FakeAdminServer server(
      routes({{"GET /v1/groups/web", {json_reply(200, group_reply(spec, 7))}},
              {"POST /v1/groups/web", {json_reply(200, R"({"name":"web","revision":8})")}}}));

  EXPECT_EQ(run("resource depend web site --on 'vip,disk|vip' --socket " + server.socket_path()),
            kExitOk);

  EXPECT_EQ(out_.str(),
            "resource \"site\" of group \"web\" depends on vip,disk|vip (revision 8)\n");
  EXPECT_EQ(body_of(server, 1)["spec"]["resources"][1]["dependsOn"],
            Json::parse(R"([["vip"],["disk","vip"]])"));
}

TEST_F(ClusterCommandLineTest, AConcurrentChangeIsReportedNotOverwritten) {
  FakeAdminServer server(routes(
      {{"GET /v1/groups/web", {json_reply(200, group_reply(web_group(), 7))}},
       {"POST /v1/groups/web", {json_reply(409, R"({"error":"revision 7 is not current"})")}}}));

  EXPECT_EQ(run("resource remove web site --socket " + server.socket_path()), kExitRefused);

  EXPECT_EQ(err_.str(),
            "clusweb: group \"web\" changed while this command ran (it was at revision 7); "
            "nothing was written, run the command again\n");
  EXPECT_EQ(out_.str(), "");
}

TEST_F(ClusterCommandLineTest, AnEditThatDoesNotFitIsNotSent) {
  FakeAdminServer server(
      routes({{"GET /v1/groups/web", {json_reply(200, group_reply(web_group(), 7))}}}));

  EXPECT_EQ(run("resource remove web vip --socket " + server.socket_path()), kExitRefused);

  EXPECT_THAT(err_.str(), HasSubstr("cannot remove resource \"vip\": site depends on it"));
  EXPECT_EQ(server.requests().size(), 1u);  // the read only
}

TEST_F(ClusterCommandLineTest, MalformedFlagsAreUsageErrors) {
  FakeAdminServer server(routes({}));
  const std::string socket = " --socket " + server.socket_path();

  EXPECT_EQ(run("resource add web x --type script --param path" + socket), kExitUsage);
  EXPECT_EQ(run("resource set web x --policy restartTreshold=3" + socket), kExitUsage);
  EXPECT_EQ(run("resource set web x" + socket), kExitUsage);
  EXPECT_EQ(run("resource depend web x" + socket), kExitUsage);
  EXPECT_EQ(run("resource depend web x --on a --none" + socket), kExitUsage);

  EXPECT_EQ(err_.str(),
            "clusweb: --param \"path\": expected NAME=VALUE\n"
            "clusweb: --policy restartTreshold: unknown policy field (did you mean "
            "\"restartThreshold\"?)\n"
            "clusweb: nothing to change: give --param, --remove-param, --policy or "
            "--possible-owners\n"
            "clusweb: give either --on RESOURCE[,RESOURCE...] or --none\n"
            "clusweb: give either --on RESOURCE[,RESOURCE...] or --none\n");
  EXPECT_TRUE(server.requests().empty());
}

TEST_F(ClusterCommandLineTest, ResourceAddNeedsAType) {
  EXPECT_THROW(run("resource add web x"), CLI::RequiredError);
  EXPECT_THROW(run("resource"), CLI::RequiredError);
}

TEST_F(ClusterCommandLineTest, EventsPrintsATable) {
  FakeAdminServer server(
      routes({{"GET /v1/events?after=10&limit=5",
               {json_reply(200, R"({"events":[{"seq":11,"time":"2026-11-26T01:02:03.456Z",
          "node":"n1","group":"web","resource":"site","what":"online","why":"ok"}]})")}}}));

  EXPECT_EQ(run("events --after 10 -n 5 --socket " + server.socket_path()), kExitOk);

  EXPECT_EQ(out_.str(),
            "SEQ   TIME                      NODE   GROUP   RESOURCE   WHAT     WHY\n"
            "11    2026-11-26 01:02:03.456   n1     web     site       online   ok\n");
}

TEST_F(ClusterCommandLineTest, EventsFollowPrintsEachLineAsItComes) {
  Reply stream;
  stream.chunks = {R"({"seq":1,"time":"2026-11-26T01:02:03.456Z","node":"n1","group":"web",)",
                   R"("resource":"","what":"move","why":"requested"})"
                   "\n"};
  FakeAdminServer server(routes({{"GET /v1/events?follow=1&after=0", {stream}}}));

  EXPECT_EQ(run("events -f --after 0 --socket " + server.socket_path()), kExitOk);

  EXPECT_EQ(out_.str(),
            "1      2026-11-26 01:02:03.456  n1        web           -             move        "
            "requested\n");
}

Json event(int seq) {
  return Json{{"seq", seq},
              {"time", "2026-11-26T01:02:03.456Z"},
              {"node", "n1"},
              {"group", "web"},
              {"resource", ""},
              {"what", "check"},
              {"why", std::to_string(seq)}};
}

// `count` events with sequence numbers from `first` on, as /v1/events sends them.
std::string events_reply(int first, int count) {
  Json events = Json::array();
  for (int seq = first; seq < first + count; ++seq) events.push_back(event(seq));
  return Json{{"events", std::move(events)}}.dump();
}

TEST_F(ClusterCommandLineTest, EventsWithoutAfterShowsTheLastOnes) {
  FakeAdminServer server(
      routes({{"GET /v1/events?after=0&limit=1000", {json_reply(200, events_reply(1, 1000))}},
              {"GET /v1/events?after=1000&limit=1000", {json_reply(200, events_reply(1001, 2))}}}));

  EXPECT_EQ(run("events -n 3 --socket " + server.socket_path()), kExitOk);

  EXPECT_EQ(out_.str(),
            "SEQ    TIME                      NODE   GROUP   RESOURCE   WHAT    WHY\n"
            "1000   2026-11-26 01:02:03.456   n1     web     -          check   1000\n"
            "1001   2026-11-26 01:02:03.456   n1     web     -          check   1001\n"
            "1002   2026-11-26 01:02:03.456   n1     web     -          check   1002\n");
  EXPECT_EQ(server.requests().size(), 2u);
}

// GET /v1/cluster with the given groups (name, state, owner, placement; "" = none).
std::string cluster_with(
    const std::vector<std::tuple<std::string, std::string, std::string, std::string>>& groups) {
  Json list = Json::array();
  for (const auto& [name, state, owner, placement] : groups) {
    list.push_back({{"name", name},
                    {"state", state},
                    {"owner", owner.empty() ? Json(nullptr) : Json(owner)},
                    {"placement", placement.empty() ? Json(nullptr) : Json(placement)},
                    {"reason", placement.empty() ? "no node can run it" : "placed"},
                    {"resources", Json::array()}});
  }
  return Json{{"cluster", "c"}, {"nodes", Json::array()}, {"groups", list}}.dump();
}

TEST_F(ClusterCommandLineTest, DrainWaitsUntilEachGroupHasLandedOrHasNowhereToGo) {
  FakeAdminServer server(
      routes({{"POST /v1/nodes/n1/drain", {json_reply(200, R"({"node":"n1"})")}},
              {"GET /v1/cluster",
               {json_reply(200, cluster_with({{"blog", "Online", "n1", "n1"},
                                              {"shop", "Online", "n1", "n1"},
                                              {"mail", "Online", "n1", "n1"}})),
                // shop is released and placed on n2, not yet acquired there: still moving.
                json_reply(200, cluster_with({{"blog", "Online", "n2", "n2"},
                                              {"shop", "Offline", "", "n2"},
                                              {"mail", "Offline", "", ""}})),
                json_reply(200, cluster_with({{"blog", "Online", "n2", "n2"},
                                              {"shop", "Online", "n2", "n2"},
                                              {"mail", "Offline", "", ""}}))}}}));

  EXPECT_EQ(run("node drain n1 --socket " + server.socket_path()), kExitOk);

  EXPECT_EQ(out_.str(),
            "draining n1: 3 groups to move (blog, mail, shop)\n"
            "group \"blog\": Online on n2\n"
            "group \"mail\": Offline (no node can run it)\n"
            "group \"shop\": Online on n2\n"
            "node n1 is drained: it owns no group and takes none until `clusweb node resume "
            "n1`\n");
  EXPECT_THAT(sleeps_, ElementsAre(200, 200));
  EXPECT_EQ(err_.str(), "");
}

TEST_F(ClusterCommandLineTest, DrainFollowsAGroupThatLeftBeforeTheFirstPoll) {
  FakeAdminServer server(routes(
      {{"POST /v1/nodes/n1/drain", {json_reply(200, R"({"node":"n1","groups":["blog","shop"]})")}},
       {"GET /v1/cluster",
        // blog was already released when the first poll came.
        {json_reply(200,
                    cluster_with({{"blog", "Offline", "", "n2"}, {"shop", "Online", "n1", "n1"}})),
         json_reply(200, cluster_with({{"blog", "Online", "n2", "n2"},
                                       {"shop", "Online", "n3", "n3"}}))}}}));

  EXPECT_EQ(run("node drain n1 --socket " + server.socket_path()), kExitOk);

  EXPECT_EQ(out_.str(),
            "draining n1: 2 groups to move (blog, shop)\n"
            "group \"blog\": Online on n2\n"
            "group \"shop\": Online on n3\n"
            "node n1 is drained: it owns no group and takes none until `clusweb node resume "
            "n1`\n");
}

TEST_F(ClusterCommandLineTest, StatusWatchShowsAFrameWhenSomethingChanged) {
  Json look = Json::parse(kCluster);
  look["store"] = Json::parse(kStore);
  const std::string moved = look.dump();
  // The store's raft index moved (every write moves it): no new frame for that.
  look["store"]["members"][0]["raftIndex"] = 2000;
  const std::string written = look.dump();
  Json other = Json::parse(kCluster);
  other["revision"] = 43;
  FakeAdminServer server(
      routes({{"GET /v1/cluster?store=1",
               {json_reply(200, moved), json_reply(200, written), json_reply(200, other.dump())}},
              {"GET /v1/events?after=0&limit=1000", {json_reply(200, events_reply(1, 2))}},
              {"GET /v1/events?after=2&limit=1000",
               {json_reply(200, events_reply(3, 0)), json_reply(200, events_reply(3, 1))}}}));

  EXPECT_EQ(run("cluster status --watch --frames 3 --interval 2s --socket " + server.socket_path()),
            kExitOk);

  // Three looks, two frames: the second look changed nothing.
  const std::string header = "cluster status every 2s, Ctrl-C stops\n\n";
  const std::string first = header + *format_cluster_status(moved) + "\nLAST EVENTS\n" +
                            *format_event_table(events_reply(1, 2));
  Json three = Json::parse(events_reply(1, 3));
  const std::string second = header + *format_cluster_status(other.dump()) + "\nLAST EVENTS\n" +
                             *format_event_table(three.dump());
  EXPECT_EQ(out_.str(), first + "\n" + second);
  EXPECT_THAT(sleeps_, ElementsAre(2000, 2000));
  EXPECT_EQ(err_.str(), "");
}

TEST_F(ClusterCommandLineTest, StatusWatchKeepsGoingWhileTheAgentIsAway) {
  EXPECT_EQ(run("cluster status --watch --frames 2 -o json --socket /nonexistent/agent.sock"),
            kExitOk);
  // One line: both looks found the agent away, and an unchanged frame is not repeated.
  const std::string text = out_.str();
  ASSERT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
  EXPECT_THAT(Json::parse(text)["error"].get<std::string>(), HasSubstr("/nonexistent/agent.sock"));
}

TEST_F(ClusterCommandLineTest, EventsFollowWithoutAfterStartsWithTheLastOnes) {
  Reply stream;
  stream.chunks = {event(4).dump() + "\n"};
  FakeAdminServer server(
      routes({{"GET /v1/events?after=0&limit=1000", {json_reply(200, events_reply(1, 3))}},
              {"GET /v1/events?follow=1&after=3", {stream}}}));

  EXPECT_EQ(run("events --follow -n 1 -o json --socket " + server.socket_path()), kExitOk);

  std::vector<long> seqs;
  std::istringstream lines(out_.str());
  for (std::string line; std::getline(lines, line);) seqs.push_back(Json::parse(line)["seq"]);
  EXPECT_THAT(seqs, ElementsAre(3, 4));
}

// ---- apply ----

class ApplyTest : public ClusterCommandLineTest {
 protected:
  std::string write(const FakeAdminServer& server, const std::string& name, std::string_view text) {
    const std::string path = server.directory() + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
};

// A site (its content in `folder`) and the group that runs it.
std::string manifest(const std::string& folder) {
  return fmt::format(R"(kind: Site
name: shop
physicalPath: {}
bindings: [http://10.0.0.10:80]
---
kind: Group
name: web
preferredOwners: [n1, n2]
resources:
  - name: vip
    type: ip
    parameters: {{address: 10.0.0.10/24, interface: eth0}}
  - name: site
    type: website
    parameters: {{site: shop}}
    dependsOn: [vip]
)",
                     folder);
}

TEST_F(ApplyTest, SendsEveryGroupAndTheSharedSitesInOneRequest) {
  FakeAdminServer server(routes(
      {{"POST /v1/apply",
        {json_reply(200, R"({"created":["web","site/shop"],"changed":[],"unchanged":[]})")}}}));
  const std::string file = write(server, "web.yaml", manifest(server.directory()));

  EXPECT_EQ(run("apply -f " + file + " --socket " + server.socket_path()), kExitOk);

  EXPECT_EQ(out_.str(),
            "created:   web, site/shop\n"
            "changed:   none\n"
            "unchanged: none\n");
  EXPECT_EQ(err_.str(), "");
  ASSERT_EQ(server.requests().size(), 1u);
  const Json body = body_of(server, 0);
  EXPECT_EQ(body["dryRun"], false);
  ASSERT_EQ(body["groups"].size(), 1u);
  auto sent = cluster::decode_group(body["groups"][0].dump(), "body");
  ASSERT_TRUE(sent.ok()) << sent.error().describe();
  EXPECT_EQ(cluster::encode(*sent), cluster::encode(web_group()));
  // The site in the JSON form, resolved and located, without the node's own settings.
  ASSERT_EQ(body["web"]["sites"].size(), 1u);
  EXPECT_EQ(body["web"]["sites"][0]["name"], "shop");
  EXPECT_EQ(body["web"]["sites"][0]["physicalPath"], server.directory());
  EXPECT_EQ(body["web"]["sites"][0]["where"]["file"], file);
  EXPECT_TRUE(body["web"]["pools"].empty());
  EXPECT_FALSE(body["web"].contains("server"));
}

TEST_F(ApplyTest, DryRun) {
  FakeAdminServer server(
      routes({{"POST /v1/apply",
               {json_reply(200, R"({"created":[],"changed":["web"],"unchanged":[]})")}}}));
  const std::string file = write(server, "web.yaml", manifest(server.directory()));

  EXPECT_EQ(run("apply -f " + file + " --dry-run --socket " + server.socket_path()), kExitOk);

  EXPECT_THAT(out_.str(), HasSubstr("dry run: nothing was written\n"));
  EXPECT_EQ(body_of(server, 0)["dryRun"], true);
}

TEST_F(ApplyTest, ASiteWhoseFolderIsMissingHereIsRefusedWithItsLine) {
  FakeAdminServer server(routes({}));
  const std::string file = write(server, "web.yaml", manifest("/nonexistent/shop"));

  EXPECT_EQ(run("apply -f " + file + " --socket " + server.socket_path()), kExitUsage);

  EXPECT_EQ(err_.str(), file +
                            ":3: Site \"shop\": field \"physicalPath\": directory "
                            "\"/nonexistent/shop\" does not exist\n"
                            "clusweb: nothing was applied\n");
  EXPECT_TRUE(server.requests().empty());
}

TEST_F(ApplyTest, TheNodesOwnSettingsAreNotShared) {
  FakeAdminServer server(routes({}));
  const std::string file = write(server, "web.yaml", "kind: WebServer\nthreads: 2\n");

  EXPECT_EQ(run("apply -f " + file + " --socket " + server.socket_path()), kExitUsage);

  EXPECT_THAT(err_.str(), HasSubstr(file + ":1: kind WebServer holds one node's own settings"));
  EXPECT_THAT(err_.str(), HasSubstr("nothing was applied"));
  EXPECT_TRUE(server.requests().empty());
}

TEST_F(ApplyTest, BadManifestsAreReportedWithTheirLinesAndNothingIsSent) {
  FakeAdminServer server(routes({}));
  const std::string first = write(server, "a.yaml", "kind: Group\nname: web\nfailback: never\n");
  const std::string second = write(server, "b.yaml",
                                   "kind: Group\nname: db\nresources:\n"
                                   "  - {name: disk, type: scrpit}\n");

  EXPECT_EQ(run("apply -f " + first + " -f " + second + " --socket " + server.socket_path()),
            kExitUsage);

  EXPECT_EQ(err_.str(), first +
                            ":3: Group \"web\": field \"failback\": must be \"prevent\" or "
                            "\"allow\"\n" +
                            second +
                            ":4: Group \"db\": field \"resources[0].type\": unknown resource "
                            "type \"scrpit\" (did you mean \"script\"?)\n"
                            "clusweb: nothing was applied\n");
  EXPECT_TRUE(server.requests().empty());
}

TEST_F(ApplyTest, RefusalPrintsTheAgentsReason) {
  FakeAdminServer server(routes(
      {{"POST /v1/apply", {json_reply(400, R"({"error":"group web: node n9 is unknown"})")}}}));
  const std::string file = write(server, "web.yaml", manifest(server.directory()));

  EXPECT_EQ(run("apply -f " + file + " --socket " + server.socket_path()), kExitRefused);

  EXPECT_THAT(err_.str(), HasSubstr("clusweb: group web: node n9 is unknown\n"));
}

TEST_F(ApplyTest, NoGroupsNothingToDo) {
  FakeAdminServer server(routes({}));
  const std::string file = write(server, "empty.yaml", "# nothing yet\n");

  EXPECT_EQ(run("apply -f " + file + " --socket " + server.socket_path()), kExitOk);

  EXPECT_THAT(err_.str(), HasSubstr("clusweb: no Group, Site or ApplicationPool documents in the "
                                    "files given; nothing to apply\n"));
  EXPECT_TRUE(server.requests().empty());
}

}  // namespace
}  // namespace clusweb::cli
