#pragma once

// A Liveness the test drives by hand, for tests of the agent shell. It keeps
// membership as LeaseLiveness does (a lease granted by the store and
// nodes/<node> created bound to it only when absent), but joins, renews and
// loses the membership only when the test says so, and records what the
// agent asked of it (start, rejoin, stop). Single-threaded: the callbacks run
// on the caller's thread, which must be the agent's (the test's io_context).

#include <gtest/gtest.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "agent/liveness.h"
#include "base/clock.h"
#include "store/store.h"

namespace clusweb::agent::testing {

class FakeLiveness final : public Liveness {
 public:
  // The lease lives `lease_ttl` on the store's clock; keep it longer than
  // any time a test lets pass, unless the test means it to expire.
  FakeLiveness(store::Store& store, std::string node_key,
               std::chrono::seconds lease_ttl = std::chrono::hours(1))
      : store_(store), node_key_(std::move(node_key)), lease_ttl_(lease_ttl) {}

  // --- what the agent calls ---
  void start(Callbacks callbacks, std::optional<ResumedLease> resume) override {
    callbacks_ = std::move(callbacks);
    resume_ = resume;
    ++starts_;
  }
  void rejoin() override { ++rejoins_; }
  void stop(std::function<void()> done) override {
    ++stops_;
    if (on_stop) on_stop();
    boost::asio::post(store_.get_executor(), std::move(done));
  }

  // --- what the test calls ---
  // Revokes the previous lease (as LeaseLiveness does before it joins
  // again), grants a new one, creates nodes/<node> bound to it and reports
  // joined(lease, deadline). Returns the new lease, or 0 when the store
  // refused (nothing is reported then).
  boost::asio::awaitable<int64_t> join(Clock::TimePoint deadline) {
    if (lease_ != 0) {
      const int64_t old = lease_;
      lease_ = 0;
      Status revoked = co_await store_.revoke(old);
      (void)revoked;  // an expired lease is gone either way
    }
    auto grant = co_await store_.grant(lease_ttl_);
    if (!grant.ok()) co_return 0;
    store::Txn create({store::Compare::absent(node_key_)},
                      {store::Put(node_key_, "{}", grant->id)});
    auto created = co_await store_.txn(std::move(create));
    if (!created.ok() || !created->succeeded) co_return 0;
    lease_ = grant->id;
    if (callbacks_.joined) callbacks_.joined(lease_, deadline);
    co_return lease_;
  }
  // Reports joined() with the lease the agent asked to resume (it must have asked).
  void resume(Clock::TimePoint deadline) {
    if (!resume_) {
      ADD_FAILURE() << "the agent did not ask to resume a lease";
      return;
    }
    lease_ = resume_->lease;
    if (callbacks_.joined) callbacks_.joined(lease_, deadline);
  }
  void renew(Clock::TimePoint deadline) {
    if (callbacks_.renewed) callbacks_.renewed(deadline);
  }
  void lose(std::string reason) {
    if (callbacks_.lost) callbacks_.lost(std::move(reason));
  }

  int64_t lease() const { return lease_; }
  int starts() const { return starts_; }
  // What the agent asked to resume at its last start.
  const std::optional<ResumedLease>& resumed() const { return resume_; }
  int rejoins() const { return rejoins_; }
  int stops() const { return stops_; }
  // Runs inside stop(), before `done` is posted: lets a test look at the
  // moment the agent gave up its membership.
  std::function<void()> on_stop;

 private:
  store::Store& store_;
  std::string node_key_;
  std::chrono::seconds lease_ttl_;
  Callbacks callbacks_;
  int64_t lease_ = 0;
  int starts_ = 0;
  std::optional<ResumedLease> resume_;
  int rejoins_ = 0;
  int stops_ = 0;
};

}  // namespace clusweb::agent::testing
