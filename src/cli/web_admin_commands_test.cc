#include "cli/web_admin_commands.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "cli/admin_client.h"
#include "cli/testing/fake_admin_server.h"
#include "cli/testing/routes.h"

namespace clusweb::cli {
namespace {

using testing::FakeAdminServer;
using ::testing::HasSubstr;
using testing::json_reply;
using testing::routes;
using Reply = FakeAdminServer::Reply;

constexpr std::string_view kSite = R"({"name":"example","state":"Started","stateCode":1,
  "autoStart":true,"clustered":false,"root":"/srv/example","bindings":["http://127.0.0.1:8080"],
  "applications":[{"path":"/api","pool":"example-pool"}],
  "counters":{"requests":10,"responses":{"1xx":0,"2xx":9,"3xx":0,"4xx":1,"5xx":0},
  "bytesSent":12345,"activeConnections":2}})";

constexpr std::string_view kPool = R"({"name":"example-pool","state":"Started","stateCode":1,
  "reason":"","processes":2,"workers":[{"slot":0,"pid":200,
  "endpoint":"unix:/run/clusweb/pools/example-pool-0-1.sock","ready":true,
  "startedAt":"2026-11-25T13:00:01Z","generation":1}],
  "counters":{"workerStarts":2,"workerFailures":0,"requests":5,"queueFull":0}})";

// ---- formatting, no server ----

TEST(FormatSiteTableTest, AlignsColumns) {
  const std::string json = R"({"sites":[)" + std::string(kSite) + R"(,
    {"name":"shop","state":"Stopped","bindings":["http://*:80/shop.example.com",
     "https://*:443/shop.example.com"],"counters":{"requests":0,"activeConnections":0}}]})";

  Result<std::string> table = format_site_table(json);

  ASSERT_TRUE(table.ok()) << table.error().describe();
  EXPECT_EQ(*table,
            "NAME      STATE     BINDINGS                                                      "
            "REQUESTS   CONNECTIONS\n"
            "example   Started   http://127.0.0.1:8080                                         "
            "10         2\n"
            "shop      Stopped   http://*:80/shop.example.com,https://*:443/shop.example.com   "
            "0          0\n");
}

TEST(FormatSiteTableTest, SaysWhenThereAreNoSites) {
  EXPECT_EQ(*format_site_table(R"({"sites":[]})"), "no sites\n");
}

TEST(FormatSiteTableTest, ShowsAbsentMembersAsDashes) {
  EXPECT_EQ(*format_site_table(R"({"sites":[{"name":"bare"}]})"),
            "NAME   STATE   BINDINGS   REQUESTS   CONNECTIONS\n"
            "bare   -       -          -          -\n");
}

TEST(FormatSiteTableTest, RejectsWhatIsNotJson) {
  Result<std::string> table = format_site_table("<html>");
  ASSERT_FALSE(table.ok());
  EXPECT_EQ(table.error().message, "the web service sent a reply that is not JSON");
  EXPECT_FALSE(format_site_table("[1,2]").ok());
}

TEST(FormatPoolTableTest, CountsReadyWorkersAgainstProcesses) {
  const std::string json = R"({"pools":[)" + std::string(kPool) + R"(,
    {"name":"legacy","state":"Stopped","reason":"AppOffline","processes":1,"workers":[],
     "counters":{"workerFailures":6}}]})";

  Result<std::string> table = format_pool_table(json);

  ASSERT_TRUE(table.ok()) << table.error().describe();
  EXPECT_EQ(*table,
            "NAME           STATE     REASON       WORKERS   FAILURES\n"
            "example-pool   Started   -            1/2       0\n"
            "legacy         Stopped   AppOffline   0/1       6\n");
}

TEST(FormatPoolTableTest, SaysWhenThereAreNoPools) {
  EXPECT_EQ(*format_pool_table(R"({"pools":[]})"), "no pools\n");
}

TEST(FormatSiteDetailsTest, ListsEveryField) {
  Result<std::string> details = format_site_details(kSite);

  ASSERT_TRUE(details.ok()) << details.error().describe();
  EXPECT_EQ(*details,
            "name:         example\n"
            "state:        Started\n"
            "reason:       -\n"
            "auto start:   yes\n"
            "clustered:    no\n"
            "permit:       -\n"
            "root:         /srv/example\n"
            "bindings:     http://127.0.0.1:8080\n"
            "applications: /api -> pool example-pool\n"
            "requests:     10\n"
            "responses:    1xx 0, 2xx 9, 3xx 0, 4xx 1, 5xx 0\n"
            "bytes sent:   12345\n"
            "connections:  2\n");
}

TEST(FormatSiteDetailsTest, ShowsTheServingPermit) {
  auto details = [](std::string_view permit) {
    return *format_site_details(fmt::format(
        R"({{"name":"shop","state":"Stopped","reason":"serving permit expired",
            "clustered":true,"permitRemainingMs":{}}})",
        permit));
  };

  EXPECT_THAT(details("1500"), HasSubstr("clustered:    yes\npermit:       1500 ms left\n"));
  EXPECT_THAT(details("0"), HasSubstr("permit:       expired or revoked\n"));
  EXPECT_THAT(details("null"), HasSubstr("permit:       none\n"));
  EXPECT_THAT(details("0"),
              HasSubstr("state:        Stopped\nreason:       serving permit expired\n"));
}

TEST(FormatSiteDetailsTest, PutsEachBindingAndApplicationOnItsOwnLine) {
  Result<std::string> details = format_site_details(
      R"({"name":"shop","bindings":["http://*:80","https://*:443"],
          "applications":[{"path":"/api","pool":"api"},{"path":"/","pool":""}]})");

  ASSERT_TRUE(details.ok()) << details.error().describe();
  EXPECT_THAT(*details, HasSubstr("bindings:     http://*:80\n"
                                  "              https://*:443\n"
                                  "applications: /api -> pool api\n"
                                  "              / (static)\n"));
}

TEST(FormatSiteDetailsTest, SaysNoneForEmptyLists) {
  Result<std::string> details = format_site_details(R"({"name":"bare","bindings":[]})");

  ASSERT_TRUE(details.ok()) << details.error().describe();
  EXPECT_THAT(*details, HasSubstr("bindings:     none\napplications: none\n"));
}

TEST(FormatPoolDetailsTest, ListsFieldsThenWorkers) {
  Result<std::string> details = format_pool_details(kPool);

  ASSERT_TRUE(details.ok()) << details.error().describe();
  EXPECT_EQ(*details,
            "name:            example-pool\n"
            "state:           Started\n"
            "reason:          -\n"
            "processes:       2\n"
            "requests:        5\n"
            "queue full:      0\n"
            "worker starts:   2\n"
            "worker failures: 0\n"
            "workers:\n"
            "  SLOT   PID   READY   GENERATION   STARTED                ENDPOINT\n"
            "  0      200   yes     1            2026-11-25T13:00:01Z   "
            "unix:/run/clusweb/pools/example-pool-0-1.sock\n");
}

TEST(FormatPoolDetailsTest, SaysNoneWithoutWorkers) {
  Result<std::string> details =
      format_pool_details(R"({"name":"p","state":"Stopped","reason":"AppOffline","workers":[]})");

  ASSERT_TRUE(details.ok()) << details.error().describe();
  EXPECT_THAT(*details, HasSubstr("reason:          AppOffline\n"));
  EXPECT_THAT(*details, HasSubstr("workers:         none\n"));
}

TEST(FormatStateLineTest, NamesTheObjectAndItsState) {
  EXPECT_EQ(*format_state_line("site", kSite), "site \"example\" is Started\n");
  EXPECT_EQ(*format_state_line("pool", R"({"name":"p","state":"Stopped","reason":"AppOffline"})"),
            "pool \"p\" is Stopped (AppOffline)\n");
}

TEST(FormatReloadTest, CountsSitesAndPools) {
  EXPECT_EQ(*format_reload(R"({"generation":4,"sites":2,"pools":1})"),
            "reloaded: generation 4, 2 sites, 1 pool\n");
  EXPECT_EQ(*format_reload(R"({"generation":5,"sites":1,"pools":0})"),
            "reloaded: generation 5, 1 site, 0 pools\n");
}

TEST(FormatEventTest, ReadsLikeASentence) {
  EXPECT_EQ(format_event(R"({"seq":12,"time":"2026-11-25T13:00:01.123Z","type":"pool",
      "name":"example-pool","state":"Stopped","stateCode":3,"reason":"AppOffline",
      "message":"rapid-fail protection stopped the pool"})"),
            "13:00:01.123 pool example-pool Stopped (AppOffline): rapid-fail protection stopped "
            "the pool\n");
}

TEST(FormatEventTest, LeavesOutAbsentMembers) {
  EXPECT_EQ(format_event(R"({"seq":13,"time":"2026-11-25T13:00:02.000Z","type":"reload",
      "message":"configuration generation 4 applied"})"),
            "13:00:02.000 reload: configuration generation 4 applied\n");
  EXPECT_EQ(format_event(R"({"seq":14,"time":"2026-11-25T13:00:03.5Z","type":"site",
      "name":"shop","state":"Started","message":""})"),
            "13:00:03.5 site shop Started\n");
}

TEST(FormatEventTest, PassesOtherLinesThrough) {
  EXPECT_EQ(format_event("not json at all"), "not json at all\n");
}

TEST(FormatPrettyJsonTest, IndentsByTwoSpaces) {
  EXPECT_EQ(*format_pretty_json(R"({"generation":4,"sites":[1]})"),
            "{\n  \"generation\": 4,\n  \"sites\": [\n    1\n  ]\n}\n");
  EXPECT_FALSE(format_pretty_json("{").ok());
}

TEST(AdminSocketPathTest, SocketFlagWinsThenRunDirThenEnvironment) {
  EXPECT_EQ(admin_socket_path("/tmp/a.sock", "/srv/run", "/env/run"), "/tmp/a.sock");
  EXPECT_EQ(admin_socket_path("", "/srv/run", "/env/run"), "/srv/run/web.sock");
  EXPECT_EQ(admin_socket_path("", "/srv/run/", nullptr), "/srv/run/web.sock");
  EXPECT_EQ(admin_socket_path("", "", "/env/run"), "/env/run/web.sock");
  EXPECT_EQ(admin_socket_path("", "", ""), "/run/clusweb/web.sock");
  EXPECT_EQ(admin_socket_path("", "", nullptr), "/run/clusweb/web.sock");
}

// ---- run_admin_command against a fake service ----

class RunAdminCommandTest : public ::testing::Test {
 protected:
  int run(FakeAdminServer& server, const AdminCommand& command) {
    AdminClient client(server.socket_path());
    return run_admin_command(command, client, out_, err_);
  }

  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(RunAdminCommandTest, SiteListPrintsATable) {
  FakeAdminServer server(
      routes({{"GET /v1/sites", {json_reply(200, R"({"sites":[)" + std::string(kSite) + "]}")}}}));

  EXPECT_EQ(run(server, {AdminCommand::Kind::kSiteList, "", OutputFormat::kTable}), kExitOk);

  EXPECT_EQ(out_.str(),
            "NAME      STATE     BINDINGS                REQUESTS   CONNECTIONS\n"
            "example   Started   http://127.0.0.1:8080   10         2\n");
  EXPECT_EQ(err_.str(), "");
}

TEST_F(RunAdminCommandTest, NamesArePercentEncodedInTheTarget) {
  FakeAdminServer server(routes({}));

  run(server, {AdminCommand::Kind::kSiteShow, "a b/c", OutputFormat::kTable});

  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].target, "/v1/sites/a%20b%2Fc");
}

TEST_F(RunAdminCommandTest, UnreadableReplyIsARefusal) {
  FakeAdminServer server(routes({{"GET /v1/pools", {json_reply(200, "oops")}}}));

  EXPECT_EQ(run(server, {AdminCommand::Kind::kPoolList, "", OutputFormat::kTable}), kExitRefused);

  EXPECT_EQ(err_.str(), "clusweb: the web service sent a reply that is not JSON\n");
  EXPECT_EQ(out_.str(), "");
}

TEST_F(RunAdminCommandTest, EventStreamRefusalExitsOne) {
  FakeAdminServer server(
      routes({{"GET /v1/events", {json_reply(503, R"({"error":"shutting down"})")}}}));

  EXPECT_EQ(run(server, {AdminCommand::Kind::kEvents, "", OutputFormat::kTable}), kExitRefused);

  EXPECT_EQ(err_.str(), "clusweb: shutting down\n");
}

// ---- the command line, end to end ----

class WebAdminCommandLineTest : public ::testing::Test {
 protected:
  // Parses `arguments` (without the program name) as `clusweb` would and returns the exit code
  // the command set, or -1 when none ran.
  int run(const std::string& arguments) {
    CLI::App root("clusweb");
    CLI::App* web = root.add_subcommand("web", "run the web service");
    web->add_option("--run-dir", web_run_dir_, "as the real `web` command has");
    int exit_code = -1;
    add_web_admin_commands(root, *web, exit_code, out_, err_);
    root.parse(arguments, false);
    return exit_code;
  }

  std::string web_run_dir_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(WebAdminCommandLineTest, SiteListUsesTheRunDirectory) {
  FakeAdminServer server(routes({{"GET /v1/sites", {json_reply(200, R"({"sites":[]})")}}}));

  EXPECT_EQ(run("site list --run-dir " + server.directory()), kExitOk);

  EXPECT_EQ(out_.str(), "no sites\n");
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].method, "GET");
  EXPECT_EQ(server.requests()[0].target, "/v1/sites");
}

TEST_F(WebAdminCommandLineTest, SiteShowAsJsonPrintsTheServersJsonPretty) {
  FakeAdminServer server(routes({{"GET /v1/sites/example", {json_reply(200, kSite)}}}));

  EXPECT_EQ(run("site show example -o json --socket " + server.socket_path()), kExitOk);

  EXPECT_THAT(out_.str(), HasSubstr("{\n  \"applications\": [\n    {\n      \"path\": \"/api\""));
  EXPECT_THAT(out_.str(), HasSubstr("\n  \"name\": \"example\",\n"));
}

TEST_F(WebAdminCommandLineTest, SiteShowAsTablePrintsDetails) {
  FakeAdminServer server(routes({{"GET /v1/sites/example", {json_reply(200, kSite)}}}));

  EXPECT_EQ(run("site show example --output table --socket " + server.socket_path()), kExitOk);

  EXPECT_EQ(out_.str(), *format_site_details(kSite));
}

TEST_F(WebAdminCommandLineTest, SiteStartPostsAndPrintsTheNewState) {
  FakeAdminServer server(routes({{"POST /v1/sites/example/start", {json_reply(200, kSite)}}}));

  EXPECT_EQ(run("site start example --socket " + server.socket_path()), kExitOk);

  EXPECT_EQ(out_.str(), "site \"example\" is Started\n");
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].method, "POST");
}

TEST_F(WebAdminCommandLineTest, RefusedStartPrintsTheServersReasonAndExitsOne) {
  FakeAdminServer server(
      routes({{"POST /v1/sites/shop/start",
               {json_reply(
                   409, R"({"error":"site \"shop\" is clustered and has no serving permit"})")}}}));

  EXPECT_EQ(run("site start shop --socket " + server.socket_path()), kExitRefused);

  EXPECT_EQ(out_.str(), "");
  EXPECT_EQ(err_.str(), "clusweb: site \"shop\" is clustered and has no serving permit\n");
}

TEST_F(WebAdminCommandLineTest, SiteStopPostsToStop) {
  FakeAdminServer server(routes({{"POST /v1/sites/example/stop",
                                  {json_reply(200, R"({"name":"example","state":"Stopped"})")}}}));

  EXPECT_EQ(run("site stop example --socket " + server.socket_path()), kExitOk);

  EXPECT_EQ(out_.str(), "site \"example\" is Stopped\n");
}

TEST_F(WebAdminCommandLineTest, UnknownNameGetsTheServersNotFoundMessage) {
  FakeAdminServer server(
      routes({{"GET /v1/pools/nope",
               {json_reply(404, R"({"error":"no application pool named \"nope\""})")}}}));

  EXPECT_EQ(run("pool show nope --socket " + server.socket_path()), kExitRefused);

  EXPECT_EQ(err_.str(), "clusweb: no application pool named \"nope\"\n");
}

TEST_F(WebAdminCommandLineTest, PoolListPrintsATable) {
  FakeAdminServer server(
      routes({{"GET /v1/pools", {json_reply(200, R"({"pools":[)" + std::string(kPool) + "]}")}}}));

  EXPECT_EQ(run("pool list --socket " + server.socket_path()), kExitOk);

  EXPECT_EQ(out_.str(),
            "NAME           STATE     REASON   WORKERS   FAILURES\n"
            "example-pool   Started   -        1/2       0\n");
}

TEST_F(WebAdminCommandLineTest, PoolActionsPostToTheirTargets) {
  FakeAdminServer server(
      routes({{"POST /v1/pools/example-pool/start", {json_reply(200, kPool)}},
              {"POST /v1/pools/example-pool/stop",
               {json_reply(200, R"({"name":"example-pool","state":"Stopping"})")}},
              {"POST /v1/pools/example-pool/recycle", {json_reply(200, kPool)}}}));
  const std::string socket = " --socket " + server.socket_path();

  EXPECT_EQ(run("pool start example-pool" + socket), kExitOk);
  EXPECT_EQ(run("pool stop example-pool" + socket), kExitOk);
  EXPECT_EQ(run("pool recycle example-pool" + socket), kExitOk);

  EXPECT_EQ(out_.str(),
            "pool \"example-pool\" is Started\n"
            "pool \"example-pool\" is Stopping\n"
            "pool \"example-pool\" is Started\n");
  ASSERT_EQ(server.requests().size(), 3u);
  EXPECT_EQ(server.requests()[2].target, "/v1/pools/example-pool/recycle");
}

TEST_F(WebAdminCommandLineTest, ReloadPrintsTheNewGeneration) {
  FakeAdminServer server(
      routes({{"POST /v1/reload", {json_reply(200, R"({"generation":4,"sites":2,"pools":1})")}}}));

  EXPECT_EQ(run("web reload --socket " + server.socket_path()), kExitOk);

  EXPECT_EQ(out_.str(), "reloaded: generation 4, 2 sites, 1 pool\n");
}

TEST_F(WebAdminCommandLineTest, ReloadTakesTheRunDirectoryOfTheWebCommand) {
  FakeAdminServer server(
      routes({{"POST /v1/reload", {json_reply(200, R"({"generation":4,"sites":2,"pools":1})")}}}));

  EXPECT_EQ(run("web --run-dir " + server.directory() + " reload"), kExitOk);

  EXPECT_EQ(server.requests().size(), 1u);
}

TEST_F(WebAdminCommandLineTest, RejectedReloadPrintsEveryLineOfTheError) {
  FakeAdminServer server(routes(
      {{"POST /v1/reload",
        {json_reply(
            400,
            R"({"error":"sites.yaml:12: Site \"x\": field \"bindings[0]\": bad port\nsites.yaml:20: Site \"y\": unknown pool \"z\""})")}}}));

  EXPECT_EQ(run("web reload --socket " + server.socket_path()), kExitRefused);

  EXPECT_EQ(err_.str(),
            "clusweb: sites.yaml:12: Site \"x\": field \"bindings[0]\": bad port\n"
            "sites.yaml:20: Site \"y\": unknown pool \"z\"\n");
}

TEST_F(WebAdminCommandLineTest, EventsPrintsOneReadableLinePerEvent) {
  Reply stream;
  stream.chunks = {
      R"({"seq":12,"time":"2026-11-25T13:00:01.123Z","type":"pool","name":"example-pool",)",
      R"("state":"Stopped","stateCode":3,"reason":"AppOffline","message":"rapid-fail protection stopped the pool"})"
      "\n"
      R"({"seq":13,"time":"2026-11-25T13:00:02.000Z","type":"reload","message":"generation 4"})"
      "\n"};
  FakeAdminServer server(routes({{"GET /v1/events", {stream}}}));

  EXPECT_EQ(run("web events --socket " + server.socket_path()), kExitOk);

  EXPECT_EQ(out_.str(),
            "13:00:01.123 pool example-pool Stopped (AppOffline): rapid-fail protection stopped "
            "the pool\n"
            "13:00:02.000 reload: generation 4\n");
}

TEST_F(WebAdminCommandLineTest, EventsAsJsonPrintsTheRawLines) {
  Reply stream;
  stream.chunks = {"{\"seq\":1,\"type\":\"site\"}\n{\"seq\":2,", "\"type\":\"pool\"}\n"};
  stream.end = Reply::End::kClose;
  FakeAdminServer server(routes({{"GET /v1/events", {stream}}}));

  EXPECT_EQ(run("web events -o json --socket " + server.socket_path()), kExitOk);

  EXPECT_EQ(out_.str(), "{\"seq\":1,\"type\":\"site\"}\n{\"seq\":2,\"type\":\"pool\"}\n");
}

TEST_F(WebAdminCommandLineTest, UnreachableServiceExitsThree) {
  FakeAdminServer server(routes({}));
  const std::string missing = server.directory() + "/gone.sock";

  EXPECT_EQ(run("site list --socket " + missing), kExitUnreachable);
  EXPECT_EQ(run("web events --socket " + missing), kExitUnreachable);

  const std::string line = "clusweb: cannot reach the web service at " + missing +
                           " (No such file or directory); is \"clusweb web\" running?\n";
  EXPECT_EQ(err_.str(), line + line);
  EXPECT_EQ(out_.str(), "");
}

TEST_F(WebAdminCommandLineTest, ShowNeedsAName) {
  EXPECT_THROW(run("site show"), CLI::RequiredError);
}

TEST_F(WebAdminCommandLineTest, OutputMustBeTableOrJson) {
  EXPECT_THROW(run("site list -o yaml"), CLI::ValidationError);
}

TEST_F(WebAdminCommandLineTest, SiteAloneNeedsASubcommand) {
  EXPECT_THROW(run("site"), CLI::RequiredError);
}

}  // namespace
}  // namespace clusweb::cli
