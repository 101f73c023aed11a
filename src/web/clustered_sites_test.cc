#include "web/clustered_sites.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace clusweb::web {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

const std::set<std::string> kConfigured = {"shop", "blog", "api.v2"};

TEST(ParseClusteredSitesTest, TakesOneNamePerLineIgnoringCommentsAndBlanks) {
  auto parsed = parse_clustered_sites(
      "# sites of group web\n"
      "shop\n"
      "\n"
      "   blog   # the blog\n"
      "\tapi.v2\r\n"
      "#shop-old\n",
      "/etc/clusweb/clustered", kConfigured);

  EXPECT_THAT(parsed.sites, ElementsAre("api.v2", "blog", "shop"));
  EXPECT_THAT(parsed.problems, IsEmpty());
}

TEST(ParseClusteredSitesTest, ReportsUnknownNamesAndBadLinesWithFileAndLine) {
  auto parsed = parse_clustered_sites("shop\nnope\nblog api.v2\n", "/tmp/list", kConfigured);

  EXPECT_THAT(parsed.sites, ElementsAre("shop"));
  EXPECT_THAT(parsed.problems,
              ElementsAre("/tmp/list:2: site \"nope\" is not in the configuration",
                          "/tmp/list:3: expected one site name per line, found \"blog api.v2\""));
}

TEST(ParseClusteredSitesTest, EmptyTextNamesNothing) {
  auto parsed = parse_clustered_sites("", "/tmp/list", kConfigured);

  EXPECT_THAT(parsed.sites, IsEmpty());
  EXPECT_THAT(parsed.problems, IsEmpty());
}

TEST(ParseClusteredSitesTest, LastLineNeedsNoNewline) {
  auto parsed = parse_clustered_sites("shop\nblog", "/tmp/list", kConfigured);

  EXPECT_THAT(parsed.sites, ElementsAre("blog", "shop"));
}

class LoadClusteredSitesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/clustered-sites-test-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path dir_;
};

TEST_F(LoadClusteredSitesTest, MissingFileNamesNothing) {
  auto loaded = load_clustered_sites((dir_ / "absent").string(), kConfigured);

  ASSERT_TRUE(loaded.ok()) << loaded.error().describe();
  EXPECT_THAT(loaded->sites, IsEmpty());
}

TEST_F(LoadClusteredSitesTest, ReadsTheFile) {
  const auto path = (dir_ / "clustered").string();
  std::ofstream(path) << "shop\nunknown\n";

  auto loaded = load_clustered_sites(path, kConfigured);

  ASSERT_TRUE(loaded.ok()) << loaded.error().describe();
  EXPECT_THAT(loaded->sites, ElementsAre("shop"));
  EXPECT_THAT(loaded->problems,
              ElementsAre(path + ":2: site \"unknown\" is not in the configuration"));
}

TEST_F(LoadClusteredSitesTest, FolderIsAnError) {
  auto loaded = load_clustered_sites(dir_.string(), kConfigured);

  ASSERT_FALSE(loaded.ok());
  EXPECT_THAT(loaded.error().describe(), ::testing::HasSubstr(dir_.string()));
}

}  // namespace
}  // namespace clusweb::web
