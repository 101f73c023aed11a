#include "resources/ocf_resource.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "resources/registry.h"
#include "resources/testing/program_calls.h"

namespace clusweb::resources {
namespace {

using cluster::FailureClass;
using cluster::Verb;
using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::read_file;
using Clock = std::chrono::steady_clock;

std::string test_root() { return std::string(CLUSWEB_RESOURCES_TESTDATA) + "/ocf"; }

struct Record {
  std::string action;
  std::string argv;
  std::map<std::string, std::string> env;  // only OCF_*, HA_*, CLUSWEB_* and PATH
};

std::vector<Record> read_records(const std::string& path) {
  std::vector<Record> records;
  std::istringstream lines(read_file(path));
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("begin ")) {
      records.push_back(Record{line.substr(6), {}, {}});
    } else if (records.empty() || line == "end") {
      continue;
    } else if (line.starts_with("argv=")) {
      records.back().argv = line.substr(5);
    } else {
      auto equals = line.find('=');
      if (equals == std::string::npos) continue;
      std::string name = line.substr(0, equals);
      if (name.starts_with("OCF_") || name.starts_with("HA_") || name.starts_with("CLUSWEB_") ||
          name == "PATH") {
        records.back().env[name] = line.substr(equals + 1);
      }
    }
  }
  return records;
}

std::vector<std::string> actions(const std::vector<Record>& records) {
  std::vector<std::string> names;
  for (const Record& record : records) names.push_back(record.action);
  return names;
}

class OcfResourceTest : public testing::ProgramResourceTest {
 protected:
  OcfResourceTest() : ProgramResourceTest("ocf_resource_test", milliseconds(8000)) {}

  void SetUp() override {
    ProgramResourceTest::SetUp();
    record_ = dir_ + "/record";
  }

  CallContext context(milliseconds timeout = milliseconds(5000)) {
    CallContext c;
    c.resource = "web-ip";
    c.group = "shop";
    c.node = "node-a";
    c.fencing_token = 42;
    c.timeout = timeout;
    c.parameters = {{"record", record_}};
    return c;
  }

  OcfResource make(const std::string& spec = "clusweb-test:recorder",
                   std::map<std::string, std::string> parameters = {}) {
    return OcfResource(*parse_ocf_agent(spec, test_root()), std::move(parameters), reaper_,
                       io_.get_executor(),
                       [this](std::string_view line) { sink_lines_.emplace_back(line); });
  }

  // The whole process group is gone, zombies included (the ChildReaper, as
  // subreaper, reaps orphans).
  bool group_gone(pid_t group) {
    return run_until([group] { return ::kill(-group, 0) != 0 && errno == ESRCH; },
                     milliseconds(2000));
  }

  std::string record_;
};

TEST_F(OcfResourceTest, EnvironmentOfEachActionIsOcf11) {
  OcfResource resource =
      make("clusweb-test:recorder",
           {{"agent", "clusweb-test:recorder"}, {"ip", "10.0.0.1"}, {"cidr_netmask", "16"}});
  CallContext c = context();
  c.parameters["cidr_netmask"] = "24";  // the call's parameters win
  c.parameters["Mixed_Case"] = "a b=c";
  c.parameters["ocfRoot"] = "/elsewhere";  // the type's own: never passed on
  c.parameters["isAliveDepth"] = "20";

  ASSERT_TRUE(call(resource, Verb::kOnline, c).ok);
  CallContext looks_alive = c;
  looks_alive.interval = milliseconds(1000);
  ASSERT_TRUE(call(resource, Verb::kLooksAlive, looks_alive).ok);
  CallContext is_alive = c;
  is_alive.interval = milliseconds(10000);
  ASSERT_TRUE(call(resource, Verb::kIsAlive, is_alive).ok);
  ASSERT_TRUE(call(resource, Verb::kOffline, c).ok);
  ASSERT_TRUE(call(resource, Verb::kTerminate, c).ok);

  std::vector<Record> records = read_records(record_);
  ASSERT_THAT(actions(records),
              ElementsAre("validate-all", "start", "monitor", "monitor", "stop", "stop"));
  const std::string root = test_root();
  auto expected = [&](const std::string& action) {
    return std::map<std::string, std::string>{
        {"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
        {"OCF_ROOT", root},
        {"OCF_FUNCTIONS_DIR", root + "/lib/heartbeat"},
        {"OCF_RA_VERSION_MAJOR", "1"},
        {"OCF_RA_VERSION_MINOR", "1"},
        {"OCF_RESOURCE_INSTANCE", "web-ip"},
        {"OCF_RESOURCE_PROVIDER", "clusweb-test"},
        {"OCF_RESOURCE_TYPE", "recorder"},
        {"OCF_RESKEY_record", record_},
        {"OCF_RESKEY_ip", "10.0.0.1"},
        {"OCF_RESKEY_cidr_netmask", "24"},
        {"OCF_RESKEY_Mixed_Case", "a b=c"},
        {"OCF_RESKEY_CRM_meta_name", action},
        {"OCF_RESKEY_CRM_meta_timeout", "5000"},
        {"OCF_RESKEY_CRM_meta_interval", "0"},
        {"OCF_RESKEY_CRM_meta_on_node", "node-a"},
        {"HA_RSCTMP", "/run/resource-agents"},
        {"CLUSWEB_GROUP", "shop"},
        {"CLUSWEB_NODE", "node-a"},
        {"CLUSWEB_FENCING_TOKEN", "42"},
    };
  };
  for (const Record& record : records) EXPECT_EQ(record.argv, record.action);

  // The first Online reads the meta-data first; validate-all and start get
  // what is left of the call's timeout.
  for (int i : {0, 1}) {
    Record record = records[i];
    int timeout = std::atoi(record.env["OCF_RESKEY_CRM_meta_timeout"].c_str());
    EXPECT_GT(timeout, 0) << record.action;
    EXPECT_LE(timeout, 5000) << record.action;
    record.env["OCF_RESKEY_CRM_meta_timeout"] = "5000";
    EXPECT_EQ(record.env, expected(record.action)) << record.action;
  }
  // The polls are recurring monitors: their interval tells them from a probe.
  auto monitor = [&](const std::string& level, const std::string& interval) {
    auto env = expected("monitor");
    env["OCF_CHECK_LEVEL"] = level;
    env["OCF_RESKEY_CRM_meta_interval"] = interval;
    return env;
  };
  EXPECT_EQ(records[2].env, monitor("0", "1000"));    // LooksAlive
  EXPECT_EQ(records[3].env, monitor("20", "10000"));  // IsAlive at isAliveDepth
  EXPECT_EQ(records[4].env, expected("stop"));
  EXPECT_EQ(records[5].env, expected("stop"));
}

TEST_F(OcfResourceTest, IsAliveDepthDefaultsToTen) {
  OcfResource resource = make();
  CallContext c = context(milliseconds(1500));
  ASSERT_TRUE(call(resource, Verb::kIsAlive, c).ok);
  std::vector<Record> records = read_records(record_);
  ASSERT_THAT(actions(records), ElementsAre("monitor"));
  EXPECT_EQ(records[0].env["OCF_CHECK_LEVEL"], "10");
  EXPECT_EQ(records[0].env["OCF_RESKEY_CRM_meta_timeout"], "1500");

  c.parameters["isAliveDepth"] = "ten";
  CallResult result = call(resource, Verb::kIsAlive, c);
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.failure, FailureClass::kFatal);
  EXPECT_THAT(result.detail, HasSubstr("isAliveDepth \"ten\""));
}

TEST_F(OcfResourceTest, ValidateAllRunsOnceBeforeTheFirstStart) {
  OcfResource resource = make();
  CallContext c = context();
  c.parameters["exit_validate_all"] = "1";
  CallResult result = call(resource, Verb::kOnline, c);
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.failure, FailureClass::kSoft);
  EXPECT_EQ(result.detail, "validate-all: exited 1 (generic error)");

  c.parameters["exit_validate_all"] = "0";
  EXPECT_TRUE(call(resource, Verb::kOnline, c).ok);
  EXPECT_TRUE(call(resource, Verb::kOffline, c).ok);
  EXPECT_TRUE(call(resource, Verb::kOnline, c).ok);
  EXPECT_THAT(actions(read_records(record_)),
              ElementsAre("validate-all", "validate-all", "start", "stop", "start"));
}

TEST_F(OcfResourceTest, ValidateAllUnimplementedCountsAsValid) {
  OcfResource resource = make();
  CallContext c = context();
  c.parameters["exit_validate_all"] = "3";
  CallResult result = call(resource, Verb::kOnline, c);
  EXPECT_TRUE(result.ok) << result.detail;
  EXPECT_THAT(actions(read_records(record_)), ElementsAre("validate-all", "start"));
}

TEST_F(OcfResourceTest, ExitCodesMapToPacemakersClasses) {
  struct Case {
    Verb verb;
    const char* parameter;
    int code;
    bool ok;
    FailureClass failure;
    const char* detail;
  };
  const Case cases[] = {
      {Verb::kLooksAlive, "exit_monitor", 0, true, FailureClass::kSoft, ""},
      {Verb::kLooksAlive, "exit_monitor", 1, false, FailureClass::kSoft,
       "monitor: exited 1 (generic error)"},
      {Verb::kLooksAlive, "exit_monitor", 2, false, FailureClass::kHard,
       "monitor: exited 2 (invalid arguments)"},
      {Verb::kIsAlive, "exit_monitor", 3, false, FailureClass::kHard,
       "monitor: exited 3 (unimplemented)"},
      {Verb::kIsAlive, "exit_monitor", 4, false, FailureClass::kHard,
       "monitor: exited 4 (insufficient privileges)"},
      {Verb::kLooksAlive, "exit_monitor", 5, false, FailureClass::kHard,
       "monitor: exited 5 (not installed)"},
      {Verb::kLooksAlive, "exit_monitor", 6, false, FailureClass::kFatal,
       "monitor: exited 6 (not configured)"},
      {Verb::kLooksAlive, "exit_monitor", 7, false, FailureClass::kSoft,
       "monitor: exited 7 (not running)"},
      {Verb::kLooksAlive, "exit_monitor", 8, true, FailureClass::kSoft,
       "monitor: exited 8 (running promoted)"},
      {Verb::kLooksAlive, "exit_monitor", 9, false, FailureClass::kSoft,
       "monitor: exited 9 (failed promoted)"},
      {Verb::kIsAlive, "exit_monitor", 190, true, FailureClass::kSoft,
       "monitor: exited 190 (degraded)"},
      {Verb::kIsAlive, "exit_monitor", 191, true, FailureClass::kSoft,
       "monitor: exited 191 (degraded promoted)"},
      {Verb::kLooksAlive, "exit_monitor", 42, false, FailureClass::kSoft,
       "monitor: exited 42 (unknown)"},
      {Verb::kOffline, "exit_stop", 7, true, FailureClass::kSoft, "stop: exited 7 (not running)"},
      {Verb::kOffline, "exit_stop", 1, false, FailureClass::kSoft,
       "stop: exited 1 (generic error)"},
      {Verb::kTerminate, "exit_stop", 5, false, FailureClass::kHard,
       "stop: exited 5 (not installed)"},
      {Verb::kOnline, "exit_start", 7, false, FailureClass::kSoft, "start: exited 7 (not running)"},
      {Verb::kOnline, "exit_start", 190, false, FailureClass::kSoft,
       "start: exited 190 (degraded)"},
      {Verb::kOnline, "exit_start", 6, false, FailureClass::kFatal,
       "start: exited 6 (not configured)"},
      {Verb::kOnline, "exit_start", 2, false, FailureClass::kHard,
       "start: exited 2 (invalid arguments)"},
  };
  OcfResource resource = make();
  for (const Case& expected : cases) {
    CallContext c = context();
    c.parameters[expected.parameter] = std::to_string(expected.code);
    CallResult result = call(resource, expected.verb, c);
    SCOPED_TRACE(::testing::Message() << expected.parameter << "=" << expected.code);
    EXPECT_EQ(result.ok, expected.ok);
    EXPECT_FALSE(result.timed_out);
    EXPECT_EQ(result.detail, expected.detail);
    if (!result.ok) {
      EXPECT_EQ(result.failure, expected.failure);
    }
  }
}

TEST_F(OcfResourceTest, ExitReasonEndsTheDetail) {
  OcfResource resource = make();
  CallContext c = context();
  c.parameters["exit_monitor"] = "7";
  c.parameters["reason"] = "No process state file found";
  CallResult result = call(resource, Verb::kLooksAlive, c);
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.detail, "monitor: exited 7 (not running): No process state file found");
  EXPECT_THAT(result.output, ElementsAre("ocf-exit-reason:No process state file found"));
  EXPECT_THAT(sink_lines_, ElementsAre("ocf-exit-reason:No process state file found"));
}

TEST(OcfExitResult, ValidateAllUnimplementedIsOkOtherActionsHard) {
  EXPECT_TRUE(ocf_exit_result("validate-all", 3).ok);
  CallResult start = ocf_exit_result("start", 3);
  EXPECT_FALSE(start.ok);
  EXPECT_EQ(start.failure, FailureClass::kHard);
  EXPECT_TRUE(ocf_exit_result("stop", 0).ok);
  EXPECT_EQ(ocf_exit_result("stop", 0).detail, "");
  EXPECT_FALSE(ocf_exit_result("start", 8).ok);
  EXPECT_FALSE(ocf_exit_result("stop", 191).ok);
  EXPECT_EQ(ocf_exit_result("validate-all", 6).failure, FailureClass::kFatal);
}

TEST_F(OcfResourceTest, HangingStartIsKilledAtItsTimeoutWithItsGroup) {
  OcfResource resource = make();
  CallContext c = context(milliseconds(300));
  // Meta-data and validate-all first, so the hanging start is the call's
  // first step and gets its whole timeout.
  ASSERT_TRUE(call(resource, Verb::kOnline, c).ok);
  ASSERT_TRUE(call(resource, Verb::kOffline, c).ok);
  c.parameters["hang"] = "start";

  auto began = Clock::now();
  CallResult result = call(resource, Verb::kOnline, c);
  auto took = Clock::now() - began;
  EXPECT_FALSE(result.ok);
  EXPECT_TRUE(result.timed_out);
  EXPECT_EQ(result.failure, FailureClass::kSoft);
  EXPECT_EQ(result.detail, "start: timed out after 300 ms");
  EXPECT_THAT(result.output, ElementsAre("hanging"));
  EXPECT_GE(took, milliseconds(300));
  EXPECT_LT(took, milliseconds(300 + 150 + 500));  // SIGTERM ends it before the grace
  EXPECT_TRUE(group_gone(read_pid(record_ + ".start.pid")));
}

TEST_F(OcfResourceTest, TerminateSupersedesAHangingMonitorThenStops) {
  OcfResource resource = make();
  CallContext c = context(milliseconds(10000));
  c.parameters["hang"] = "monitor";
  std::optional<CallResult> monitor;
  start(resource, Verb::kLooksAlive, c, monitor);
  pid_t monitor_pid = read_pid(record_ + ".monitor.pid");
  ASSERT_GT(monitor_pid, 0);

  auto began = Clock::now();
  std::optional<CallResult> terminate;
  start(resource, Verb::kTerminate, c, terminate);
  ASSERT_TRUE(run_until([&] { return monitor.has_value() && terminate.has_value(); }));
  EXPECT_LT(Clock::now() - began, milliseconds(2000));

  EXPECT_FALSE(monitor->ok);
  EXPECT_FALSE(monitor->timed_out);
  EXPECT_EQ(monitor->failure, FailureClass::kSoft);
  EXPECT_EQ(monitor->detail, "monitor: superseded by terminate");
  EXPECT_TRUE(terminate->ok) << terminate->detail;
  EXPECT_THAT(actions(read_records(record_)), ElementsAre("monitor", "stop"));
  EXPECT_TRUE(group_gone(monitor_pid));
}

TEST_F(OcfResourceTest, TerminateDuringOnlineEndsItBeforeStart) {
  OcfResource resource = make();
  CallContext c = context(milliseconds(10000));
  c.parameters["hang"] = "validate-all";
  std::optional<CallResult> online;
  start(resource, Verb::kOnline, c, online);
  pid_t validate_pid = read_pid(record_ + ".validate-all.pid");
  ASSERT_GT(validate_pid, 0);

  std::optional<CallResult> terminate;
  start(resource, Verb::kTerminate, c, terminate);
  ASSERT_TRUE(run_until([&] { return online.has_value() && terminate.has_value(); }));
  EXPECT_FALSE(online->ok);
  EXPECT_EQ(online->detail, "validate-all: superseded by terminate");
  EXPECT_TRUE(terminate->ok) << terminate->detail;
  EXPECT_THAT(actions(read_records(record_)), ElementsAre("validate-all", "stop"));
  EXPECT_TRUE(group_gone(validate_pid));
}

TEST_F(OcfResourceTest, MissingAgentIsHardAndNamesThePath) {
  OcfResource resource = make("clusweb-test:no-such-agent");
  const std::string path = test_root() + "/resource.d/clusweb-test/no-such-agent";
  for (Verb verb : {Verb::kOnline, Verb::kLooksAlive, Verb::kOffline, Verb::kTerminate}) {
    CallResult result = call(resource, verb, context());
    EXPECT_FALSE(result.ok) << cluster::to_string(verb);
    EXPECT_FALSE(result.timed_out);
    EXPECT_EQ(result.failure, FailureClass::kHard) << cluster::to_string(verb);
    EXPECT_THAT(result.detail, HasSubstr(path)) << cluster::to_string(verb);
  }
}

TEST_F(OcfResourceTest, MissingRequiredParameterIsFatalBeforeValidateAll) {
  OcfResource resource = make();
  CallContext c = context();
  c.parameters.erase("record");
  CallResult result = call(resource, Verb::kOnline, c);
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.failure, FailureClass::kFatal);
  EXPECT_EQ(result.detail, "missing required parameter record of ocf agent clusweb-test:recorder");
  EXPECT_FALSE(std::filesystem::exists(record_));
}

TEST_F(OcfResourceTest, OpenAndCloseRunNothing) {
  OcfResource resource = make();
  EXPECT_TRUE(call(resource, Verb::kOpen, context()).ok);
  EXPECT_TRUE(call(resource, Verb::kClose, context()).ok);
  EXPECT_FALSE(std::filesystem::exists(record_));
}

TEST_F(OcfResourceTest, RegistryMakesOcfResourcesFromTheAgentParameter) {
  EXPECT_THAT(resource_types(), ElementsAre("ip", "mount", "ocf", "script", "website"));
  ResourceDeps deps;
  deps.reaper = &reaper_;
  EXPECT_THAT(make_resource("ocf", io_.get_executor(), deps).error().message,
              HasSubstr("needs parameter agent"));
  deps.parameters = {{"agent", "recorder"}};
  EXPECT_THAT(make_resource("ocf", io_.get_executor(), deps).error().message,
              HasSubstr("want provider:type"));
  deps.parameters = {{"agent", "clusweb-test:recorder"}, {"ocfRoot", test_root()}};
  Result<std::unique_ptr<Resource>> made = make_resource("ocf", io_.get_executor(), deps);
  ASSERT_TRUE(made.ok()) << made.error().describe();
  EXPECT_TRUE(call(static_cast<OcfResource&>(**made), Verb::kOnline, context()).ok);
  deps.reaper = nullptr;
  EXPECT_THAT(make_resource("ocf", io_.get_executor(), deps).error().message,
              HasSubstr("needs a child reaper"));
}

// Debian's heartbeat:Dummy, unchanged: its state file lives in HA_RSCTMP.
TEST_F(OcfResourceTest, DebianDummyLifecycle) {
  const std::string instance = "clusweb-test-dummy-" + std::to_string(::getpid());
  const std::string state = "/run/resource-agents/Dummy-" + instance + ".state";
  std::filesystem::remove(state);
  OcfResource resource(*parse_ocf_agent("heartbeat:Dummy"), {}, reaper_, io_.get_executor());
  CallContext c = context(milliseconds(20000));
  c.resource = instance;
  c.parameters.clear();

  CallResult result = call(resource, Verb::kOnline, c);
  EXPECT_TRUE(result.ok) << result.detail;
  EXPECT_TRUE(std::filesystem::exists(state));
  result = call(resource, Verb::kLooksAlive, c);
  EXPECT_TRUE(result.ok) << result.detail;
  result = call(resource, Verb::kIsAlive, c);
  EXPECT_TRUE(result.ok) << result.detail;
  result = call(resource, Verb::kOffline, c);
  EXPECT_TRUE(result.ok) << result.detail;
  EXPECT_FALSE(std::filesystem::exists(state));
  result = call(resource, Verb::kLooksAlive, c);
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.failure, FailureClass::kSoft);
  EXPECT_THAT(result.detail, HasSubstr("monitor: exited 7 (not running)"));
  result = call(resource, Verb::kOffline, c);
  EXPECT_TRUE(result.ok) << result.detail;  // stop on a stopped resource succeeds
  result = call(resource, Verb::kTerminate, c);
  EXPECT_TRUE(result.ok) << result.detail;
  std::filesystem::remove(state);
}

}  // namespace
}  // namespace clusweb::resources
