#pragma once

#include <deque>

#include "base/clock.h"

namespace clusweb::pool {

// Rapid-fail protection's arithmetic: counts failures in a sliding window.
// Pure: the caller passes the time, so tests need no clock at all.
class FailureWindow {
 public:
  FailureWindow(int max_failures, Clock::Duration interval)
      : max_failures_(max_failures), interval_(interval) {}

  // Records a failure at `now`. True when more than `max_failures` failures
  // (this one included) happened within the last `interval`.
  bool record(Clock::TimePoint now);
  // Failures still inside the window as of the last record().
  int count() const { return static_cast<int>(failures_.size()); }
  void clear() { failures_.clear(); }

 private:
  int max_failures_;
  Clock::Duration interval_;
  std::deque<Clock::TimePoint> failures_;
};

}  // namespace clusweb::pool
