#include "pool/failure_window.h"

namespace clusweb::pool {

bool FailureWindow::record(Clock::TimePoint now) {
  failures_.push_back(now);
  while (!failures_.empty() && now - failures_.front() >= interval_) failures_.pop_front();
  return count() > max_failures_;
}

}  // namespace clusweb::pool
