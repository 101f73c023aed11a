#include "base/api_server.h"

#include <gtest/gtest.h>

namespace clusweb {
namespace {

TEST(ApiTargetTest, SplitsThePathAndTheQuery) {
  ApiTarget target = parse_api_target("/v1/groups/web/move?after=3&follow&limit=");
  EXPECT_EQ(target.parts, (std::vector<std::string>{"v1", "groups", "web", "move"}));
  EXPECT_EQ(target.query,
            (std::map<std::string, std::string>{{"after", "3"}, {"follow", ""}, {"limit", ""}}));
}

TEST(ApiTargetTest, IgnoresEmptySegmentsAndPairs) {
  ApiTarget target = parse_api_target("//v1//sites/?&&");
  EXPECT_EQ(target.parts, (std::vector<std::string>{"v1", "sites"}));
  EXPECT_TRUE(target.query.empty());
  EXPECT_TRUE(parse_api_target("").parts.empty());
}

}  // namespace
}  // namespace clusweb
