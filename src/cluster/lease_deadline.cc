#include "cluster/lease_deadline.h"

#include <algorithm>

namespace clusweb::cluster {
namespace {

long long as_ms(Clock::Duration duration) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(duration).count();
}

}  // namespace

Status LeaseDeadline::check_ttl(Clock::Duration ttl) const {
  if (options_.renewals_per_ttl < 2) {
    return make_error("at least 2 renewals per TTL are needed, got {}", options_.renewals_per_ttl);
  }
  // After a keepalive sent at t is lost, the next goes out at t + interval
  // and is itself overdue at t + 2 intervals; it must still be able to land
  // before the deadline t + ttl - margin.
  const Clock::Duration needed = 2 * (ttl / options_.renewals_per_ttl) + options_.margin;
  if (ttl <= needed) {
    return make_error(
        "lease TTL {} ms is too short: two renewal intervals plus the {} ms margin need more",
        as_ms(ttl), as_ms(options_.margin));
  }
  return ok_status();
}

void LeaseDeadline::granted(Clock::TimePoint sent_at, Clock::Duration ttl) {
  ttl_ = ttl;
  last_acknowledged_send_ = sent_at;
  deadline_ = sent_at + ttl - options_.margin;
}

void LeaseDeadline::acknowledged(Clock::TimePoint sent_at, Clock::Duration ttl) {
  if (!deadline_) return;  // never granted, or given up
  ttl_ = ttl;
  last_acknowledged_send_ = std::max(last_acknowledged_send_, sent_at);
  deadline_ = std::max(*deadline_, sent_at + ttl - options_.margin);
}

Clock::TimePoint LeaseDeadline::next_renewal() const {
  return last_acknowledged_send_ + interval();
}

bool LeaseDeadline::overdue(Clock::TimePoint sent_at, Clock::TimePoint now) const {
  return now >= sent_at + interval();
}

}  // namespace clusweb::cluster
