#include "base/boottime_timer.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <vector>

namespace clusweb {
namespace {

// Far enough ahead that no test run reaches it.
constexpr std::int64_t kOneDayMs = 24LL * 3600 * 1000;

// Runs the io_context until it has no work left; the bound only stops a
// broken test from hanging (no waits here are meant to take any time).
void run(boost::asio::io_context& io) {
  io.restart();
  io.run_for(std::chrono::seconds(10));
}

TEST(BoottimeTimerTest, DeadlineInThePastFiresOnce) {
  boost::asio::io_context io;
  auto timer = BoottimeTimer::open(io);
  ASSERT_TRUE(timer.ok()) << timer.error().describe();
  int calls = 0;
  (*timer)->wait_until(boottime_now_ms() - 1, [&] { ++calls; });
  run(io);
  EXPECT_EQ(calls, 1);
  run(io);
  EXPECT_EQ(calls, 1);
}

TEST(BoottimeTimerTest, DeadlineZeroFires) {
  boost::asio::io_context io;
  auto timer = BoottimeTimer::open(io);
  ASSERT_TRUE(timer.ok());
  bool fired = false;
  (*timer)->wait_until(0, [&] { fired = true; });
  run(io);
  EXPECT_TRUE(fired);
}

TEST(BoottimeTimerTest, FutureDeadlineDoesNotFire) {
  boost::asio::io_context io;
  auto timer = BoottimeTimer::open(io);
  ASSERT_TRUE(timer.ok());
  bool fired = false;
  (*timer)->wait_until(boottime_now_ms() + kOneDayMs, [&] { fired = true; });
  io.poll();
  EXPECT_FALSE(fired);
  (*timer)->cancel();
  run(io);  // returns: the cancelled wait leaves no work behind
  EXPECT_FALSE(fired);
}

TEST(BoottimeTimerTest, NewWaitReplacesThePendingOne) {
  boost::asio::io_context io;
  auto timer = BoottimeTimer::open(io);
  ASSERT_TRUE(timer.ok());
  std::vector<char> calls;
  (*timer)->wait_until(boottime_now_ms() - 5, [&] { calls.push_back('a'); });
  (*timer)->wait_until(boottime_now_ms() + kOneDayMs, [&] { calls.push_back('b'); });
  (*timer)->wait_until(boottime_now_ms() - 5, [&] { calls.push_back('c'); });
  run(io);
  EXPECT_EQ(calls, std::vector<char>{'c'});
}

TEST(BoottimeTimerTest, HandlerMayWaitAgain) {
  boost::asio::io_context io;
  auto timer = BoottimeTimer::open(io);
  ASSERT_TRUE(timer.ok());
  int calls = 0;
  std::function<void()> again = [&] {
    if (++calls < 3) (*timer)->wait_until(0, again);
  };
  (*timer)->wait_until(0, again);
  run(io);
  EXPECT_EQ(calls, 3);
}

TEST(BoottimeTimerTest, DestroyedWithAWaitPending) {
  boost::asio::io_context io;
  bool fired = false;
  {
    auto timer = BoottimeTimer::open(io);
    ASSERT_TRUE(timer.ok());
    (*timer)->wait_until(0, [&] { fired = true; });
  }
  run(io);
  EXPECT_FALSE(fired);
}

}  // namespace
}  // namespace clusweb
