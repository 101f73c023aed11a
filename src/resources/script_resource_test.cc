#include "resources/script_resource.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
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

#include "resources/testing/program_calls.h"

namespace clusweb::resources {
namespace {

using cluster::Verb;
using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::read_file;

std::string script(const std::string& name) {
  return std::string(CLUSWEB_RESOURCES_TESTDATA) + "/script/" + name;
}

class ScriptResourceTest : public testing::ProgramResourceTest {
 protected:
  ScriptResourceTest() : ProgramResourceTest("script_resource_test", milliseconds(3000)) {}

  void TearDown() override {
    for (pid_t pid : leftovers_) {
      ::kill(pid, SIGKILL);
      process_gone(pid);
    }
    ProgramResourceTest::TearDown();
  }

  CallContext context(milliseconds timeout = milliseconds(2000)) {
    CallContext c;
    c.resource = "web-script";
    c.group = "shop";
    c.node = "node-a";
    c.fencing_token = 42;
    c.timeout = timeout;
    return c;
  }

  ScriptResource make(const std::string& path) {
    return ScriptResource(path, reaper_, io_.get_executor(),
                          [this](std::string_view line) { sink_lines_.emplace_back(line); });
  }

  // Gone = not even a zombie (the ChildReaper, as subreaper, reaps orphans).
  bool process_gone(pid_t pid) {
    return run_until([pid] { return ::kill(pid, 0) != 0 && errno == ESRCH; }, milliseconds(1000));
  }

  std::vector<pid_t> leftovers_;
};

TEST(ScriptVerbName, IsTheLowerCaseWsfcName) {
  EXPECT_EQ(cluster::to_string(Verb::kOpen), "open");
  EXPECT_EQ(cluster::to_string(Verb::kOnline), "online");
  EXPECT_EQ(cluster::to_string(Verb::kLooksAlive), "looksalive");
  EXPECT_EQ(cluster::to_string(Verb::kIsAlive), "isalive");
  EXPECT_EQ(cluster::to_string(Verb::kOffline), "offline");
  EXPECT_EQ(cluster::to_string(Verb::kClose), "close");
  EXPECT_EQ(cluster::to_string(Verb::kTerminate), "terminate");
}

TEST(ScriptParameterVariable, UpperCasesAndReplacesOtherCharacters) {
  EXPECT_EQ(script_parameter_variable("site"), "CLUSWEB_PARAM_SITE");
  EXPECT_EQ(script_parameter_variable("probe-url"), "CLUSWEB_PARAM_PROBE_URL");
  EXPECT_EQ(script_parameter_variable("a.b c/9_Z"), "CLUSWEB_PARAM_A_B_C_9_Z");
  EXPECT_EQ(script_parameter_variable("\xc3\xa9t\xc3\xa9"), "CLUSWEB_PARAM___T__");
}

TEST_F(ScriptResourceTest, ExitZeroIsOkForEveryVerb) {
  ScriptResource resource = make(script("exit_with.sh"));
  for (Verb verb : {Verb::kOpen, Verb::kOnline, Verb::kLooksAlive, Verb::kIsAlive, Verb::kOffline,
                    Verb::kClose, Verb::kTerminate}) {
    CallResult result = call(resource, verb, context());
    EXPECT_TRUE(result.ok) << cluster::to_string(verb) << ": " << result.detail;
    EXPECT_FALSE(result.timed_out);
    EXPECT_THAT(result.output, ElementsAre("verb=" + std::string(cluster::to_string(verb))));
  }
}

TEST_F(ScriptResourceTest, NonZeroExitIsFalseWithTheStatus) {
  ScriptResource resource = make(script("exit_with.sh"));
  CallContext c = context();
  for (const char* code : {"1", "3", "77"}) {
    c.parameters["exit"] = code;
    for (Verb verb :
         {Verb::kOnline, Verb::kLooksAlive, Verb::kIsAlive, Verb::kOffline, Verb::kTerminate}) {
      CallResult result = call(resource, verb, c);
      EXPECT_FALSE(result.ok) << cluster::to_string(verb);
      EXPECT_FALSE(result.timed_out);
      EXPECT_EQ(result.detail, std::string("exited ") + code);
    }
  }
}

TEST_F(ScriptResourceTest, OpenAndCloseExitThreeIsNotImplementedAndOk) {
  ScriptResource resource = make(script("exit_with.sh"));
  CallContext c = context();
  c.parameters["exit"] = "3";
  for (Verb verb : {Verb::kOpen, Verb::kClose}) {
    CallResult result = call(resource, verb, c);
    EXPECT_TRUE(result.ok) << cluster::to_string(verb);
    EXPECT_EQ(result.detail, "not implemented");
  }
  c.parameters["exit"] = "4";
  for (Verb verb : {Verb::kOpen, Verb::kClose}) {
    CallResult result = call(resource, verb, c);
    EXPECT_FALSE(result.ok) << cluster::to_string(verb);
    EXPECT_EQ(result.detail, "exited 4");
  }
}

TEST_F(ScriptResourceTest, EnvironmentIsCleanWithContextAndParameters) {
  ScriptResource resource = make(script("write_env.sh"));
  CallContext c = context();
  std::string out = dir_ + "/env";
  c.parameters = {{"out", out},
                  {"probe-url", "http://127.0.0.1:8080/health"},
                  {"Expect.Status", "204"},
                  {"with space", "a b=c"}};
  ::setenv("CLUSWEB_TEST_LEAK", "leaked", 1);
  CallResult result = call(resource, Verb::kLooksAlive, c);
  ::unsetenv("CLUSWEB_TEST_LEAK");
  ASSERT_TRUE(result.ok) << result.detail;

  std::map<std::string, std::string> env;
  std::string argv;
  std::istringstream lines(read_file(out));
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("argv=")) {
      argv = line.substr(5);
      continue;
    }
    auto equals = line.find('=');
    ASSERT_NE(equals, std::string::npos) << line;
    env[line.substr(0, equals)] = line.substr(equals + 1);
  }
  EXPECT_EQ(argv, "looksalive");
  std::map<std::string, std::string> expected{
      {"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
      {"CLUSWEB_RESOURCE", "web-script"},
      {"CLUSWEB_GROUP", "shop"},
      {"CLUSWEB_NODE", "node-a"},
      {"CLUSWEB_FENCING_TOKEN", "42"},
      {"CLUSWEB_VERB", "looksalive"},
      {"CLUSWEB_TIMEOUT_MS", std::to_string(c.timeout.count())},
      {"CLUSWEB_PARAM_OUT", out},
      {"CLUSWEB_PARAM_PROBE_URL", "http://127.0.0.1:8080/health"},
      {"CLUSWEB_PARAM_EXPECT_STATUS", "204"},
      {"CLUSWEB_PARAM_WITH_SPACE", "a b=c"},
  };
  // What the shell adds by itself.
  for (const char* shell_own : {"PWD", "OLDPWD", "SHLVL", "_"}) env.erase(shell_own);
  EXPECT_EQ(env, expected);
}

TEST_F(ScriptResourceTest, OutputLinesGoToTheSinkAndTheLastHundredToTheResult) {
  ScriptResource resource = make(script("output.sh"));
  CallResult result = call(resource, Verb::kOnline, context());
  ASSERT_TRUE(result.ok) << result.detail;

  ASSERT_EQ(sink_lines_.size(), 153u);
  EXPECT_EQ(sink_lines_.front(), "line 1");  // stdout and stderr share the pipe
  EXPECT_EQ(sink_lines_[1], "line 2");
  EXPECT_EQ(sink_lines_[150], std::string(ScriptResource::kMaxLineBytes, 'x'));
  EXPECT_EQ(sink_lines_[151], "windows");
  EXPECT_EQ(sink_lines_[152], "last");

  ASSERT_EQ(result.output.size(), ScriptResource::kMaxOutputLines);
  EXPECT_EQ(result.output.front(), "line 54");
  EXPECT_EQ(result.output.back(), "last");
}

TEST_F(ScriptResourceTest, HangingScriptIsKilledAtTheTimeoutWithItsGrandchild) {
  ScriptResource resource = make(script("hang.sh"));
  CallContext c = context(milliseconds(200));
  c.parameters["pidfile"] = dir_ + "/grandchild";
  auto began = Clock::now();
  CallResult result = call(resource, Verb::kOnline, c);
  auto took = Clock::now() - began;

  EXPECT_FALSE(result.ok);
  EXPECT_TRUE(result.timed_out);
  EXPECT_EQ(result.detail, "timed out after 200 ms");
  EXPECT_THAT(result.output, ElementsAre("hanging"));
  EXPECT_GE(took, milliseconds(200));
  EXPECT_LT(took, milliseconds(200 + 100 + 150));  // SIGTERM ends it before the grace
  EXPECT_TRUE(process_gone(read_pid(c.parameters["pidfile"])));
}

TEST_F(ScriptResourceTest, ScriptIgnoringSigtermIsKilledAfterTheGrace) {
  ScriptResource resource = make(script("hang.sh"));
  CallContext c = context(milliseconds(200));
  c.parameters["pidfile"] = dir_ + "/grandchild";
  c.parameters["ignore_term"] = "yes";
  auto began = Clock::now();
  CallResult result = call(resource, Verb::kIsAlive, c);
  auto took = Clock::now() - began;

  EXPECT_FALSE(result.ok);
  EXPECT_TRUE(result.timed_out);
  EXPECT_EQ(result.detail, "timed out after 200 ms");
  EXPECT_GE(took, milliseconds(200 + 100));  // grace = min(1 s, timeout / 2)
  EXPECT_LT(took, milliseconds(200 + 100 + 150));
  EXPECT_TRUE(process_gone(read_pid(c.parameters["pidfile"])));
}

TEST_F(ScriptResourceTest, TerminateSupersedesARunningOnline) {
  ScriptResource resource = make(script("online_hangs.sh"));
  CallContext c = context(milliseconds(5000));
  c.parameters["pidfile"] = dir_ + "/online";
  std::optional<CallResult> online;
  start(resource, Verb::kOnline, c, online);
  pid_t online_pid = read_pid(c.parameters["pidfile"]);
  ASSERT_GT(online_pid, 0);

  auto began = Clock::now();
  std::optional<CallResult> terminate;
  start(resource, Verb::kTerminate, c, terminate);
  ASSERT_TRUE(run_until([&] { return online.has_value() && terminate.has_value(); }));
  EXPECT_LT(Clock::now() - began, milliseconds(500));

  EXPECT_FALSE(online->ok);
  EXPECT_FALSE(online->timed_out);
  EXPECT_EQ(online->detail, "superseded by terminate");
  EXPECT_TRUE(terminate->ok) << terminate->detail;
  EXPECT_THAT(terminate->output, ElementsAre("terminated"));
  EXPECT_TRUE(process_gone(online_pid));
}

TEST_F(ScriptResourceTest, MissingScriptIsAFailureNamingThePath) {
  ScriptResource resource = make(dir_ + "/no-such-script");
  CallResult result = call(resource, Verb::kOnline, context());
  EXPECT_FALSE(result.ok);
  EXPECT_FALSE(result.timed_out);
  EXPECT_THAT(result.detail, HasSubstr(dir_ + "/no-such-script"));
}

TEST_F(ScriptResourceTest, NonExecutableScriptIsAFailureNamingThePath) {
  std::string path = dir_ + "/not-executable";
  std::ofstream(path) << "#!/bin/sh\nexit 0\n";
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  ScriptResource resource = make(path);
  CallResult result = call(resource, Verb::kOnline, context());
  EXPECT_FALSE(result.ok);
  EXPECT_THAT(result.detail, HasSubstr(path));
}

TEST_F(ScriptResourceTest, RelativePathOrNoTimeoutIsAFailure) {
  ScriptResource relative = make("exit_with.sh");
  CallResult result = call(relative, Verb::kOnline, context());
  EXPECT_FALSE(result.ok);
  EXPECT_THAT(result.detail, HasSubstr("not absolute: exit_with.sh"));

  ScriptResource resource = make(script("exit_with.sh"));
  result = call(resource, Verb::kOnline, context(milliseconds(0)));
  EXPECT_FALSE(result.ok);
  EXPECT_THAT(result.detail, HasSubstr("no timeout"));
}

TEST_F(ScriptResourceTest, BackgroundChildHoldingTheOutputDoesNotHoldTheCall) {
  ScriptResource resource = make(script("background.sh"));
  CallContext c = context(milliseconds(2000));
  c.parameters["pidfile"] = dir_ + "/background";
  auto began = Clock::now();
  CallResult result = call(resource, Verb::kOnline, c);
  EXPECT_LT(Clock::now() - began, milliseconds(500));
  EXPECT_TRUE(result.ok) << result.detail;
  EXPECT_FALSE(result.timed_out);
  EXPECT_THAT(result.output, ElementsAre("started"));
  // The child stays: scripts may start daemons. The test cleans it up.
  pid_t background = read_pid(c.parameters["pidfile"]);
  if (background > 0) leftovers_.push_back(background);
  EXPECT_EQ(::kill(background, 0), 0);
}

}  // namespace
}  // namespace clusweb::resources
