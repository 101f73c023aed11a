#pragma once

#include <chrono>

namespace clusweb {

// The source of time for everything that decides. Production code uses
// SystemClock; tests use ManualClock (base/testing/manual_clock.h).
class Clock {
 public:
  using Duration = std::chrono::nanoseconds;
  using TimePoint = std::chrono::time_point<std::chrono::steady_clock, Duration>;

  virtual ~Clock() = default;
  // Monotonic time (CLOCK_MONOTONIC).
  virtual TimePoint now() const = 0;
  // Wall time, for logs and HTTP dates only.
  virtual std::chrono::system_clock::time_point wall_now() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimePoint now() const override { return std::chrono::steady_clock::now(); }
  std::chrono::system_clock::time_point wall_now() const override {
    return std::chrono::system_clock::now();
  }
};

}  // namespace clusweb
