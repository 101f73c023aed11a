#include "base/result.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace clusweb {
namespace {

Result<int> parse_positive(int v) {
  if (v <= 0) return make_error("not positive: {}", v);
  return v;
}

TEST(ResultTest, HoldsValueOrError) {
  auto good = parse_positive(3);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 3);
  auto bad = parse_positive(-1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "not positive: -1");
}

TEST(ResultTest, DescribeIncludesWhere) {
  Error e{"unknown field \"colour\"", "site.yaml:4", 0};
  EXPECT_EQ(e.describe(), "site.yaml:4: unknown field \"colour\"");
  EXPECT_EQ((Error{"x", "", 0}).describe(), "x");
  EXPECT_EQ((Error{"a.yaml:3: bad\na.yaml:9: worse", "a.yaml:3", 0}).describe(),
            "a.yaml:3: bad\na.yaml:9: worse");
}

TEST(ResultTest, ErrnoErrorNamesCallAndTarget) {
  auto e = errno_error("bind", "127.0.0.1:80", EADDRINUSE);
  EXPECT_EQ(e.where, "127.0.0.1:80");
  EXPECT_EQ(e.sys_errno, EADDRINUSE);
  EXPECT_NE(e.message.find("bind failed"), std::string::npos);
}

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  Status f = make_error("boom");
  EXPECT_FALSE(f.ok());
  EXPECT_EQ(f.error().message, "boom");
}

}  // namespace
}  // namespace clusweb
