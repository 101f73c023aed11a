#include "web/permit_request.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace clusweb::web {
namespace {

using ::testing::HasSubstr;

constexpr std::int64_t kNow = 5'000'000;

std::string error_of(std::string_view body) {
  auto parsed = parse_permit_request(body, kNow);
  if (parsed.ok()) return "accepted: " + std::to_string(*parsed);
  return parsed.error().describe();
}

TEST(ParsePermitRequestTest, TakesTheDeadline) {
  auto parsed = parse_permit_request(R"({"deadlineBoottimeMs": 5002000})", kNow);

  ASSERT_TRUE(parsed.ok()) << parsed.error().describe();
  EXPECT_EQ(*parsed, 5'002'000);
}

TEST(ParsePermitRequestTest, ZeroAndPastDeadlinesAreAcceptedAsRevocations) {
  EXPECT_EQ(*parse_permit_request(R"({"deadlineBoottimeMs": 0})", kNow), 0);
  EXPECT_EQ(*parse_permit_request(R"({"deadlineBoottimeMs": 1000})", kNow), 1000);
}

TEST(ParsePermitRequestTest, AcceptsUpTo24HoursAhead) {
  const std::int64_t limit = kNow + kMaxPermitMs;
  EXPECT_EQ(*parse_permit_request(fmt::format(R"({{"deadlineBoottimeMs": {}}})", limit), kNow),
            limit);
  EXPECT_THAT(error_of(fmt::format(R"({{"deadlineBoottimeMs": {}}})", limit + 1)),
              HasSubstr("more than 24 hours ahead"));
  EXPECT_THAT(error_of(R"({"deadlineBoottimeMs": 18446744073709551615})"),
              HasSubstr("more than 24 hours ahead"));
}

TEST(ParsePermitRequestTest, RefusesMalformedBodiesNamingTheField) {
  EXPECT_THAT(error_of(""), HasSubstr("not JSON"));
  EXPECT_THAT(error_of("{"), HasSubstr("not JSON"));
  EXPECT_THAT(error_of("[1]"), HasSubstr("the body is a JSON array"));
  EXPECT_THAT(error_of("{}"), HasSubstr("field \"deadlineBoottimeMs\" is missing"));
  EXPECT_THAT(error_of(R"({"deadlineMs": 1})"), HasSubstr("field \"deadlineMs\" is unknown"));
  EXPECT_THAT(error_of(R"({"deadlineBoottimeMs": "5002000"})"),
              HasSubstr("field \"deadlineBoottimeMs\" must be a whole number of milliseconds"));
  EXPECT_THAT(error_of(R"({"deadlineBoottimeMs": 12.5})"),
              HasSubstr("must be a whole number of milliseconds, not 12.5"));
  EXPECT_THAT(error_of(R"({"deadlineBoottimeMs": null})"), HasSubstr("whole number"));
  EXPECT_THAT(error_of(R"({"deadlineBoottimeMs": -1})"),
              HasSubstr("field \"deadlineBoottimeMs\" must not be negative"));
}

}  // namespace
}  // namespace clusweb::web
