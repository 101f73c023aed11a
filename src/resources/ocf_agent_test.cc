#include "resources/ocf_agent.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/process.h"

namespace clusweb::resources {
namespace {

using std::chrono::milliseconds;
using testing::HasSubstr;

std::string test_root() { return std::string(CLUSWEB_RESOURCES_TESTDATA) + "/ocf"; }

TEST(ParseOcfAgent, ProviderAndTypeUnderTheRoot) {
  Result<OcfAgent> agent = parse_ocf_agent("heartbeat:IPaddr2");
  ASSERT_TRUE(agent.ok()) << agent.error().describe();
  EXPECT_EQ(agent->provider, "heartbeat");
  EXPECT_EQ(agent->type, "IPaddr2");
  EXPECT_EQ(agent->path(), "/usr/lib/ocf/resource.d/heartbeat/IPaddr2");

  agent = parse_ocf_agent("clusweb-test:recorder", "/opt/ocf/");
  ASSERT_TRUE(agent.ok()) << agent.error().describe();
  EXPECT_EQ(agent->path(), "/opt/ocf/resource.d/clusweb-test/recorder");
}

TEST(ParseOcfAgent, BadSpecsNameWhatIsWrong) {
  EXPECT_THAT(parse_ocf_agent("Dummy").error().message, HasSubstr("want provider:type"));
  EXPECT_THAT(parse_ocf_agent(":Dummy").error().message, HasSubstr("bad provider \"\""));
  EXPECT_THAT(parse_ocf_agent("heartbeat:").error().message, HasSubstr("bad type \"\""));
  EXPECT_THAT(parse_ocf_agent("heartbeat:../../bin/sh").error().message,
              HasSubstr("bad type \"../../bin/sh\""));
  EXPECT_THAT(parse_ocf_agent("..:Dummy").error().message, HasSubstr("bad provider \"..\""));
  EXPECT_THAT(parse_ocf_agent("heartbeat:Dummy", "lib/ocf").error().message,
              HasSubstr("not absolute: lib/ocf"));
}

TEST(OcfExitCodeName, NamesTheStandardCodes) {
  EXPECT_EQ(ocf_exit_code_name(0), "success");
  EXPECT_EQ(ocf_exit_code_name(5), "not installed");
  EXPECT_EQ(ocf_exit_code_name(7), "not running");
  EXPECT_EQ(ocf_exit_code_name(190), "degraded");
  EXPECT_EQ(ocf_exit_code_name(191), "degraded promoted");
  EXPECT_EQ(ocf_exit_code_name(42), "unknown");
}

TEST(OcfBaseEnvironment, IsTheOcfSetForTheAction) {
  OcfAgent agent = *parse_ocf_agent("heartbeat:Dummy");
  std::map<std::string, std::string> expected{
      {"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
      {"OCF_ROOT", "/usr/lib/ocf"},
      {"OCF_FUNCTIONS_DIR", "/usr/lib/ocf/lib/heartbeat"},
      {"OCF_RA_VERSION_MAJOR", "1"},
      {"OCF_RA_VERSION_MINOR", "1"},
      {"OCF_RESOURCE_PROVIDER", "heartbeat"},
      {"OCF_RESOURCE_TYPE", "Dummy"},
      {"OCF_RESKEY_CRM_meta_name", "monitor"},
      {"OCF_RESKEY_CRM_meta_timeout", "20000"},
      {"HA_RSCTMP", "/run/resource-agents"},
  };
  EXPECT_EQ(ocf_base_environment(agent, "monitor", milliseconds(20000)), expected);
}

TEST(ParseOcfDuration, ReadsPacemakerUnits) {
  EXPECT_EQ(*parse_ocf_duration("20s"), milliseconds(20000));
  EXPECT_EQ(*parse_ocf_duration("20"), milliseconds(20000));
  EXPECT_EQ(*parse_ocf_duration("1m"), milliseconds(60000));
  EXPECT_EQ(*parse_ocf_duration("2min"), milliseconds(120000));
  EXPECT_EQ(*parse_ocf_duration("500ms"), milliseconds(500));
  EXPECT_EQ(*parse_ocf_duration("500msec"), milliseconds(500));
  EXPECT_EQ(*parse_ocf_duration("15sec"), milliseconds(15000));
  EXPECT_EQ(*parse_ocf_duration("1h"), milliseconds(3600000));
  EXPECT_EQ(*parse_ocf_duration(" 0 "), milliseconds(0));
}

TEST(ParseOcfDuration, RejectsWhatIsNotOne) {
  EXPECT_THAT(parse_ocf_duration("").error().message, HasSubstr("not a duration"));
  EXPECT_THAT(parse_ocf_duration("s").error().message, HasSubstr("not a duration"));
  EXPECT_THAT(parse_ocf_duration("-5s").error().message, HasSubstr("not a duration"));
  EXPECT_THAT(parse_ocf_duration("20 s").error().message, HasSubstr("unknown unit \" s\""));
  EXPECT_THAT(parse_ocf_duration("3days").error().message, HasSubstr("unknown unit \"days\""));
  EXPECT_THAT(parse_ocf_duration("1.5s").error().message, HasSubstr("unknown unit \".5s\""));
}

TEST(ParseOcfMetadata, ReadsParametersAndActions) {
  Result<OcfMetadata> metadata = parse_ocf_metadata(R"(<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="IPaddr2" version="1.0">
<version>1.1</version>
<parameters>
<parameter name="ip" unique="1" required="1"><content type="string" /></parameter>
<parameter name="cidr_netmask"><content type="integer" default="" /></parameter>
<parameter name="arp_count" required="false"><content type="integer" default="5"/></parameter>
</parameters>
<actions>
<action name="start" timeout="20s" />
<action name="monitor" depth="0" timeout="20s" interval="10s" />
<action name="monitor" depth="10" timeout="1m" interval="500ms" role="Promoted" />
<action name="meta-data" timeout="5" />
</actions>
</resource-agent>)");
  ASSERT_TRUE(metadata.ok()) << metadata.error().describe();
  EXPECT_EQ(metadata->name, "IPaddr2");
  EXPECT_EQ(metadata->version, "1.1");
  ASSERT_EQ(metadata->parameters.size(), 3u);
  const OcfParameter& ip = metadata->parameters[0];
  EXPECT_EQ(ip.name, "ip");
  EXPECT_TRUE(ip.required);
  EXPECT_TRUE(ip.unique);
  EXPECT_EQ(ip.type, "string");
  EXPECT_FALSE(ip.default_value.has_value());
  const OcfParameter* netmask = metadata->find_parameter("cidr_netmask");
  ASSERT_NE(netmask, nullptr);
  EXPECT_FALSE(netmask->required);
  EXPECT_EQ(netmask->default_value, "");
  EXPECT_EQ(metadata->find_parameter("arp_count")->default_value, "5");
  EXPECT_EQ(metadata->find_parameter("nic"), nullptr);

  ASSERT_EQ(metadata->actions.size(), 4u);
  EXPECT_EQ(metadata->actions[0].timeout, milliseconds(20000));
  EXPECT_FALSE(metadata->actions[0].interval.has_value());
  EXPECT_FALSE(metadata->actions[0].depth.has_value());
  EXPECT_EQ(metadata->actions[2].name, "monitor");
  EXPECT_EQ(metadata->actions[2].depth, 10);
  EXPECT_EQ(metadata->actions[2].timeout, milliseconds(60000));
  EXPECT_EQ(metadata->actions[2].interval, milliseconds(500));
  EXPECT_EQ(metadata->actions[2].role, "Promoted");
  EXPECT_EQ(metadata->find_action("monitor")->depth, 0);
  EXPECT_EQ(metadata->find_action("meta-data")->timeout, milliseconds(5000));
  EXPECT_EQ(metadata->find_action("promote"), nullptr);
}

TEST(ParseOcfMetadata, MalformedInputsNameWhatIsWrong) {
  EXPECT_THAT(parse_ocf_metadata("").error().message, HasSubstr("not XML"));
  EXPECT_THAT(parse_ocf_metadata("<resource-agent><parameters>").error().message,
              HasSubstr("not XML"));
  EXPECT_THAT(parse_ocf_metadata("usage: Dummy {start|stop}").error().message,
              HasSubstr("not XML: No document element found"));
  EXPECT_THAT(parse_ocf_metadata("<html/>").error().message,
              HasSubstr("root element is <html>, want <resource-agent>"));
  EXPECT_THAT(parse_ocf_metadata(
                  "<resource-agent><parameters><parameter><content/></parameter></parameters>"
                  "</resource-agent>")
                  .error()
                  .message,
              HasSubstr("parameter #1 has no name"));
  EXPECT_THAT(
      parse_ocf_metadata("<resource-agent><parameters><parameter name=\"ip\" required=\"maybe\"/>"
                         "</parameters></resource-agent>")
          .error()
          .message,
      HasSubstr("parameter \"ip\" required=\"maybe\" is not a boolean"));
  EXPECT_THAT(parse_ocf_metadata("<resource-agent><actions><action name=\"start\"/>"
                                 "<action timeout=\"20s\"/></actions></resource-agent>")
                  .error()
                  .message,
              HasSubstr("action #2 has no name"));
  EXPECT_THAT(parse_ocf_metadata("<resource-agent><actions><action name=\"stop\" "
                                 "timeout=\"soon\"/></actions></resource-agent>")
                  .error()
                  .message,
              HasSubstr("action \"stop\" timeout: \"soon\" is not a duration"));
  EXPECT_THAT(parse_ocf_metadata("<resource-agent><actions><action name=\"monitor\" "
                                 "interval=\"10x\"/></actions></resource-agent>")
                  .error()
                  .message,
              HasSubstr("action \"monitor\" interval: \"10x\": unknown unit \"x\""));
  EXPECT_THAT(parse_ocf_metadata("<resource-agent><actions><action name=\"monitor\" "
                                 "depth=\"deep\"/></actions></resource-agent>")
                  .error()
                  .message,
              HasSubstr("action \"monitor\" depth=\"deep\" is not a whole number"));
}

// read_ocf_metadata() runs real agents: Debian's Dummy and the test agent.
class ReadOcfMetadataTest : public testing::Test {
 protected:
  Result<OcfMetadata> read(const OcfAgent& agent, milliseconds timeout = milliseconds(5000)) {
    ProgramRunner runner(reaper_, io_.get_executor(),
                         [this](std::string_view line) { log_lines_.emplace_back(line); });
    std::optional<Result<OcfMetadata>> out;
    // Result<> has no default value, which co_spawn's handler would need.
    auto reading = [&]() -> boost::asio::awaitable<void> {
      out = co_await read_ocf_metadata(runner, agent, timeout);
    };
    boost::asio::co_spawn(io_, reading(),
                          [](const std::exception_ptr& error) { ASSERT_FALSE(error); });
    auto deadline = std::chrono::steady_clock::now() + timeout + milliseconds(2000);
    while (!out && std::chrono::steady_clock::now() < deadline) io_.run_one_for(milliseconds(10));
    EXPECT_TRUE(out.has_value());
    return out.value_or(make_error("did not finish"));
  }

  boost::asio::io_context io_;
  ChildReaper reaper_{io_};
  std::vector<std::string> log_lines_;
};

TEST_F(ReadOcfMetadataTest, ReadsDebiansDummy) {
  Result<OcfMetadata> metadata = read(*parse_ocf_agent("heartbeat:Dummy"));
  ASSERT_TRUE(metadata.ok()) << metadata.error().describe();
  EXPECT_EQ(metadata->name, "Dummy");
  EXPECT_EQ(metadata->version, "1.0");
  ASSERT_NE(metadata->find_parameter("state"), nullptr);
  const OcfParameter& state = *metadata->find_parameter("state");
  EXPECT_TRUE(state.unique);
  EXPECT_FALSE(state.required);
  EXPECT_EQ(state.type, "string");
  // Without an instance name, ocf-shellfuncs uses RESOURCE_ID in meta-data,
  // and the state lives under HA_RSCTMP.
  EXPECT_EQ(state.default_value, "/run/resource-agents/Dummy-RESOURCE_ID.state");
  ASSERT_NE(metadata->find_parameter("fake"), nullptr);
  EXPECT_EQ(metadata->find_parameter("fake")->default_value, "dummy");
  for (const char* action : {"start", "stop", "monitor", "validate-all"}) {
    ASSERT_NE(metadata->find_action(action), nullptr) << action;
    EXPECT_EQ(metadata->find_action(action)->timeout, milliseconds(20000)) << action;
  }
  EXPECT_EQ(metadata->find_action("monitor")->interval, milliseconds(10000));
  EXPECT_EQ(metadata->find_action("monitor")->depth, 0);
  EXPECT_EQ(metadata->find_action("meta-data")->timeout, milliseconds(5000));
}

TEST_F(ReadOcfMetadataTest, ReadsTheTestAgentsRequiredParameter) {
  Result<OcfMetadata> metadata = read(*parse_ocf_agent("clusweb-test:recorder", test_root()));
  ASSERT_TRUE(metadata.ok()) << metadata.error().describe();
  EXPECT_EQ(metadata->name, "recorder");
  ASSERT_NE(metadata->find_parameter("record"), nullptr);
  EXPECT_TRUE(metadata->find_parameter("record")->required);
  EXPECT_FALSE(metadata->find_parameter("hang")->required);
}

TEST_F(ReadOcfMetadataTest, MissingAgentIsNotInstalled) {
  OcfAgent agent = *parse_ocf_agent("clusweb-test:no-such-agent", test_root());
  Result<OcfMetadata> metadata = read(agent);
  ASSERT_FALSE(metadata.ok());
  EXPECT_EQ(metadata.error().code, kOcfErrInstalled);
  EXPECT_THAT(metadata.error().describe(), HasSubstr(agent.path()));
}

TEST_F(ReadOcfMetadataTest, OutputThatIsNotMetadataIsNotInstalled) {
  std::string root = std::filesystem::temp_directory_path() / "ocf_agent_test.XXXXXX";
  ASSERT_NE(::mkdtemp(root.data()), nullptr);
  std::filesystem::create_directories(root + "/resource.d/broken");
  const std::string path = root + "/resource.d/broken/usage";
  std::ofstream(path) << "#!/bin/sh\necho \"usage: $0 {start|stop}\"\necho to-stderr >&2\n";
  std::filesystem::permissions(path, std::filesystem::perms::owner_all);

  Result<OcfMetadata> metadata = read(*parse_ocf_agent("broken:usage", root));
  std::filesystem::remove_all(root);
  ASSERT_FALSE(metadata.ok());
  EXPECT_EQ(metadata.error().code, kOcfErrInstalled);
  EXPECT_THAT(metadata.error().describe(), HasSubstr(path + ": meta-data: not XML"));
  // Only stderr reaches the log; stdout was the document.
  EXPECT_THAT(log_lines_, testing::ElementsAre("to-stderr"));
}

TEST_F(ReadOcfMetadataTest, FailingRunIsItsExitCode) {
  std::string root = std::filesystem::temp_directory_path() / "ocf_agent_test.XXXXXX";
  ASSERT_NE(::mkdtemp(root.data()), nullptr);
  std::filesystem::create_directories(root + "/resource.d/broken");
  const std::string path = root + "/resource.d/broken/fails";
  std::ofstream(path) << "#!/bin/sh\nexit 6\n";
  std::filesystem::permissions(path, std::filesystem::perms::owner_all);

  Result<OcfMetadata> metadata = read(*parse_ocf_agent("broken:fails", root));
  std::filesystem::remove_all(root);
  ASSERT_FALSE(metadata.ok());
  EXPECT_EQ(metadata.error().code, kOcfErrConfigured);
  EXPECT_THAT(metadata.error().describe(), HasSubstr("meta-data: exited 6 (not configured)"));
}

}  // namespace
}  // namespace clusweb::resources
