#include "base/boottime.h"

#include <gtest/gtest.h>

#include <ctime>

namespace clusweb {
namespace {

TEST(BoottimeTest, NowReadsClockBoottime) {
  timespec before{};
  ::clock_gettime(CLOCK_BOOTTIME, &before);
  const std::int64_t now = boottime_now_ms();
  timespec after{};
  ::clock_gettime(CLOCK_BOOTTIME, &after);
  EXPECT_GE(now, before.tv_sec * 1000 + before.tv_nsec / 1'000'000);
  EXPECT_LE(now, after.tv_sec * 1000 + after.tv_nsec / 1'000'000);
}

}  // namespace
}  // namespace clusweb
