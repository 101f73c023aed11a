#pragma once

#include "base/clock.h"

namespace clusweb::testing {

// A clock that moves only when told. Not thread-safe.
class ManualClock final : public Clock {
 public:
  TimePoint now() const override { return now_; }
  std::chrono::system_clock::time_point wall_now() const override { return wall_; }

  void advance(Duration by) {
    now_ += by;
    wall_ += std::chrono::duration_cast<std::chrono::system_clock::duration>(by);
  }
  void set_wall(std::chrono::system_clock::time_point wall) { wall_ = wall; }

 private:
  TimePoint now_{std::chrono::hours(1)};
  std::chrono::system_clock::time_point wall_{std::chrono::seconds(1'700'000'000)};
};

}  // namespace clusweb::testing
