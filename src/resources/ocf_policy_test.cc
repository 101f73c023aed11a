#include "resources/ocf_policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace clusweb::resources {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::HasSubstr;

OcfMetadata metadata_with(std::string_view actions) {
  const std::string xml =
      "<resource-agent name=\"t\"><actions>" + std::string(actions) + "</actions></resource-agent>";
  Result<OcfMetadata> parsed = parse_ocf_metadata(xml);
  EXPECT_TRUE(parsed.ok()) << parsed.error().describe();
  return parsed.ok() ? *parsed : OcfMetadata{};
}

TEST(OcfPolicy, TakesTheAgentsTimeoutsAndMonitorInterval) {
  // Debian's Dummy advertises these.
  cluster::ResourcePolicy policy = ocf_policy(metadata_with(R"(
      <action name="start" timeout="20s"/>
      <action name="stop" timeout="20s"/>
      <action name="monitor" timeout="20s" interval="10s" depth="0"/>
      <action name="meta-data" timeout="5s"/>
      <action name="validate-all" timeout="20s"/>)"));
  // The first Online reads meta-data, runs validate-all, then start: 5 + 20 + 20 s.
  EXPECT_EQ(policy.pending_timeout, seconds(45));
  EXPECT_EQ(policy.probe_timeout, seconds(20));
  EXPECT_EQ(policy.looks_alive_interval, seconds(10));
  // No deeper monitor: IsAlive keeps its default, never more often than LooksAlive.
  EXPECT_EQ(policy.is_alive_interval, seconds(10));
  // What meta-data does not speak of stays.
  const cluster::ResourcePolicy defaults;
  EXPECT_EQ(policy.terminate_timeout, defaults.terminate_timeout);
  EXPECT_EQ(policy.restart_threshold, defaults.restart_threshold);
}

TEST(OcfPolicy, DeepMonitorsSetIsAliveAndPromotedOnesAreIgnored) {
  cluster::ResourcePolicy policy = ocf_policy(metadata_with(R"(
      <action name="start" timeout="60s"/>
      <action name="stop" timeout="90s"/>
      <action name="monitor" timeout="40s" interval="20s" depth="0"/>
      <action name="monitor" timeout="60s" interval="2m" depth="10"/>
      <action name="monitor" timeout="99s" interval="5s" role="Promoted"/>)"));
  EXPECT_EQ(policy.pending_timeout, seconds(90));  // stop takes longer than start
  EXPECT_EQ(policy.probe_timeout, seconds(60));
  EXPECT_EQ(policy.looks_alive_interval, seconds(20));
  EXPECT_EQ(policy.is_alive_interval, seconds(120));
}

TEST(OcfPolicy, WithoutActionsTheBaseStays) {
  cluster::ResourcePolicy base;
  base.pending_timeout = seconds(7);
  base.looks_alive_interval = seconds(3);
  cluster::ResourcePolicy policy = ocf_policy(metadata_with(""), base);
  EXPECT_EQ(policy.pending_timeout, seconds(7));
  EXPECT_EQ(policy.looks_alive_interval, seconds(3));
  EXPECT_EQ(policy.probe_timeout, base.probe_timeout);
  EXPECT_EQ(policy.is_alive_interval, base.is_alive_interval);
}

// Agents written by the test under a root of its own.
class ReadOcfMetadataNowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() /
            ("clusweb-ocf-policy-" + std::to_string(::getpid()));
    std::filesystem::create_directories(root_ / "resource.d" / "t");
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  OcfAgent agent(const std::string& type, const std::string& body) {
    const std::filesystem::path path = root_ / "resource.d" / "t" / type;
    std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
    ::chmod(path.c_str(), 0755);
    return *parse_ocf_agent("t:" + type, root_.string());
  }

  std::filesystem::path root_;
};

TEST_F(ReadOcfMetadataNowTest, ReadsDebiansDummy) {
  Result<OcfMetadata> metadata =
      read_ocf_metadata_now(*parse_ocf_agent("heartbeat:Dummy"), seconds(10));
  ASSERT_TRUE(metadata.ok()) << metadata.error().describe();
  EXPECT_EQ(metadata->name, "Dummy");
  ASSERT_NE(metadata->find_action("start"), nullptr);
}

TEST_F(ReadOcfMetadataNowTest, AHangingAgentIsKilledAtTheTimeout) {
  const OcfAgent hangs = agent("hangs", "sleep 600");
  const auto began = std::chrono::steady_clock::now();
  Result<OcfMetadata> metadata = read_ocf_metadata_now(hangs, milliseconds(200));
  ASSERT_FALSE(metadata.ok());
  EXPECT_THAT(metadata.error().message, HasSubstr("did not finish within 200 ms"));
  EXPECT_LT(std::chrono::steady_clock::now() - began, seconds(5));
}

TEST_F(ReadOcfMetadataNowTest, FailuresNameTheAgent) {
  const OcfAgent fails = agent("fails", "exit 3");
  EXPECT_THAT(read_ocf_metadata_now(fails, seconds(5)).error().message,
              HasSubstr(fails.path() + ": meta-data exited 3"));
  const OcfAgent babbles = agent("babbles", "echo usage: babbles start");
  EXPECT_THAT(read_ocf_metadata_now(babbles, seconds(5)).error().message,
              HasSubstr(babbles.path() + ": meta-data: not XML"));
  OcfAgent missing = *parse_ocf_agent("t:missing", root_.string());
  EXPECT_THAT(read_ocf_metadata_now(missing, seconds(5)).error().message,
              HasSubstr("not installed here"));
}

TEST_F(ReadOcfMetadataNowTest, StartingPolicyOfAnOcfResourceIsItsAgentsAndWarnsWhenItCannot) {
  agent("quick", R"(cat <<'END'
<resource-agent name="quick"><actions>
<action name="start" timeout="3s"/><action name="stop" timeout="4s"/>
<action name="monitor" timeout="2s" interval="7s"/>
</actions></resource-agent>
END)");
  cluster::ResourceSpec resource;
  resource.name = "r";
  resource.type = "ocf";
  resource.parameters = {{"agent", "t:quick"}, {"ocfRoot", root_.string()}};
  std::vector<std::string> warnings;
  auto warn = [&](const std::string& why) { warnings.push_back(why); };
  cluster::ResourcePolicy policy = starting_policy(resource, warn);
  EXPECT_EQ(policy.pending_timeout, seconds(4));
  EXPECT_EQ(policy.probe_timeout, seconds(2));
  EXPECT_EQ(policy.looks_alive_interval, seconds(7));
  EXPECT_TRUE(warnings.empty());

  resource.parameters["agent"] = "t:absent";
  policy = starting_policy(resource, warn);
  EXPECT_EQ(policy.pending_timeout, cluster::ResourcePolicy().pending_timeout);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], HasSubstr("resource r: ocf agent "));
  EXPECT_THAT(warnings[0], HasSubstr("keeps the built-in timeouts"));

  // Other types, and an ocf resource without a usable agent parameter, run nothing.
  resource.type = "script";
  EXPECT_EQ(starting_policy(resource, warn).pending_timeout,
            cluster::ResourcePolicy().pending_timeout);
  resource.type = "ocf";
  resource.parameters = {{"agent", "no-colon"}};
  EXPECT_EQ(starting_policy(resource, warn).pending_timeout,
            cluster::ResourcePolicy().pending_timeout);
  EXPECT_EQ(warnings.size(), 1u);
}

}  // namespace
}  // namespace clusweb::resources
