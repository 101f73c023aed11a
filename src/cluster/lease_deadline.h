#pragma once

#include <optional>

#include "base/clock.h"
#include "base/result.h"

namespace clusweb::cluster {

// The arithmetic of a node's lease as its holder sees it (ARCHITECTURE.md,
// Safety 2): the fencing deadline is the moment the last acknowledged
// keepalive was *sent* plus the TTL the store granted, minus a margin. The
// store restarts the TTL only when it receives the keepalive, which is later,
// so the holder's deadline always comes before the store can expire the
// lease. Pure: the keepalive thread passes the times.
class LeaseDeadline {
 public:
  struct Options {
    // Taken off the deadline for the holder's own reaction time (stopping
    // what it serves) and clock-rate differences.
    Clock::Duration margin = std::chrono::milliseconds(500);
    // Keepalives go out every TTL / renewals_per_ttl.
    int renewals_per_ttl = 3;
  };

  explicit LeaseDeadline(Options options) : options_(options) {}

  // Whether a granted TTL leaves room for the renewals and the margin: the
  // deadline must survive one missed keepalive (a store leader change)
  // with time left to renew through another endpoint.
  Status check_ttl(Clock::Duration ttl) const;

  // The lease was granted by a request sent at `sent_at`.
  void granted(Clock::TimePoint sent_at, Clock::Duration ttl);
  // A keepalive sent at `sent_at` was acknowledged with `ttl`. Late
  // acknowledgements of older keepalives never move the deadline back.
  void acknowledged(Clock::TimePoint sent_at, Clock::Duration ttl);

  bool held() const { return deadline_.has_value(); }
  // Requires held().
  Clock::TimePoint deadline() const { return *deadline_; }
  bool expired(Clock::TimePoint now) const { return !deadline_ || now >= *deadline_; }
  // When the next keepalive is due: one renewal interval after the last
  // acknowledged send.
  Clock::TimePoint next_renewal() const;
  // A keepalive sent at `sent_at` and not acknowledged by `now`, a whole
  // renewal interval later: try another endpoint rather than wait for it.
  bool overdue(Clock::TimePoint sent_at, Clock::TimePoint now) const;

 private:
  Clock::Duration interval() const { return ttl_ / options_.renewals_per_ttl; }

  Options options_;
  Clock::Duration ttl_{0};
  Clock::TimePoint last_acknowledged_send_{};
  std::optional<Clock::TimePoint> deadline_;
};

}  // namespace clusweb::cluster
