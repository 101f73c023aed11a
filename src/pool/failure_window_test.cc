#include "pool/failure_window.h"

#include <gtest/gtest.h>

#include "base/testing/manual_clock.h"

namespace clusweb::pool {
namespace {

using std::chrono::seconds;

TEST(FailureWindowTest, TripsOnMoreThanMaxFailuresWithinInterval) {
  testing::ManualClock clock;
  FailureWindow window(2, seconds(60));
  EXPECT_FALSE(window.record(clock.now()));
  clock.advance(seconds(1));
  EXPECT_FALSE(window.record(clock.now()));
  clock.advance(seconds(1));
  EXPECT_TRUE(window.record(clock.now()));
  EXPECT_EQ(window.count(), 3);
}

TEST(FailureWindowTest, OldFailuresLeaveTheWindow) {
  testing::ManualClock clock;
  FailureWindow window(1, seconds(10));
  EXPECT_FALSE(window.record(clock.now()));
  clock.advance(seconds(10));  // exactly one interval later: the first no longer counts
  EXPECT_FALSE(window.record(clock.now()));
  EXPECT_EQ(window.count(), 1);
  clock.advance(seconds(9));
  EXPECT_TRUE(window.record(clock.now()));
}

TEST(FailureWindowTest, ClearForgetsHistory) {
  testing::ManualClock clock;
  FailureWindow window(1, seconds(10));
  EXPECT_FALSE(window.record(clock.now()));
  window.clear();
  EXPECT_FALSE(window.record(clock.now()));
}

}  // namespace
}  // namespace clusweb::pool
