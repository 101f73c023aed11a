#pragma once

// How a node proves it is alive, and learns that it may no longer act as a
// member (ARCHITECTURE.md, "Failure detection and recovery"). The agent sees
// only this interface: the lease-based version below comes first; a faster
// detector can replace it without touching placement or resources.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "base/clock.h"
#include "cluster/lease_deadline.h"
#include "store/store.h"

namespace clusweb::agent {

// A lease the agent held before it restarted, still alive: the agent renewed it once
// (`sent` is when that keepalive went out, `ttl` what the store granted) and found
// nodes/<node> still bound to it.
struct ResumedLease {
  int64_t lease = 0;
  Clock::TimePoint sent;
  Clock::Duration ttl{0};
};

class Liveness {
 public:
  // Called on the agent's executor, never on the liveness thread.
  struct Callbacks {
    // Membership was granted: `lease` holds nodes/<node>; the node must have
    // fenced itself by `deadline` unless renewed() moves it.
    std::function<void(int64_t lease, Clock::TimePoint deadline)> joined;
    // A renewal was acknowledged in time.
    std::function<void(Clock::TimePoint deadline)> renewed;
    // Renewing stopped for good (the lease is gone, or the deadline passed
    // before an acknowledgement): the agent fences and calls rejoin().
    std::function<void(std::string reason)> lost;
  };

  virtual ~Liveness() = default;
  // Joins and keeps renewing until stop(). With `resume`, the membership is that lease's:
  // joined() reports it at once and renewals go on from it (a later rejoin() joins anew).
  virtual void start(Callbacks callbacks, std::optional<ResumedLease> resume) = 0;
  // Gives up the current membership (revokes it if the store answers) and
  // joins again with a new one; never resumes the old one.
  virtual void rejoin() = 0;
  // Leaves the cluster: stops renewing and revokes the membership, so other
  // nodes take over at once instead of after the TTL. `done` runs on the
  // agent's executor once the store answered (or failed to).
  virtual void stop(std::function<void()> done) = 0;
};

struct LeaseLivenessOptions {
  std::string node;
  std::string node_key;  // nodes/<node> with the cluster prefix
  std::string node_value;
  std::chrono::seconds ttl{2};
  cluster::LeaseDeadline::Options deadline;
  // Pause between join attempts (store unreachable, name still in use).
  std::chrono::milliseconds join_retry{500};
};

// Membership as a lease in the store: nodes/<node> is created bound to the
// lease only when absent (two agents with one name cannot both take part),
// keepalives go out every TTL/3 without waiting for each other (a hung one
// never delays the next; the store moves to another endpoint by itself when
// one misses its deadline), and while none is acknowledged, another every
// TTL/15 (at least 100 ms), so the first sent after a store leader change
// renews; the fencing deadline is computed from send
// times (LeaseDeadline). Runs every store call on `executor`, which should
// belong to a thread of its own that does nothing else (no fork, fsync or
// netlink behind a keepalive); results are posted to `report_to`.
class LeaseLiveness final : public Liveness {
 public:
  LeaseLiveness(boost::asio::any_io_executor executor, store::Store& store, const Clock& clock,
                boost::asio::any_io_executor report_to, LeaseLivenessOptions options);
  ~LeaseLiveness() override;

  void start(Callbacks callbacks, std::optional<ResumedLease> resume) override;
  void rejoin() override;
  void stop(std::function<void()> done) override;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace clusweb::agent
