#include "agent/liveness.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <optional>
#include <utility>

#include "base/log.h"

namespace clusweb::agent {

namespace asio = boost::asio;
using std::chrono::milliseconds;

// Everything below runs on the liveness executor; the callbacks are posted to
// the agent's. `generation` ends the coroutines of an earlier membership:
// each checks it after every suspension.
struct LeaseLiveness::State : std::enable_shared_from_this<State> {
  State(asio::any_io_executor executor_in, store::Store& store_in, const Clock& clock_in,
        asio::any_io_executor report_to_in, LeaseLivenessOptions options_in)
      : executor(std::move(executor_in)),
        store(store_in),
        clock(clock_in),
        report_to(std::move(report_to_in)),
        options(std::move(options_in)),
        timer(executor),
        deadline(options.deadline) {}

  asio::any_io_executor executor;
  store::Store& store;
  const Clock& clock;
  asio::any_io_executor report_to;
  LeaseLivenessOptions options;
  Callbacks callbacks;
  asio::steady_timer timer;
  int generation = 0;
  int64_t lease = 0;
  Clock::Duration granted_ttl{0};
  cluster::LeaseDeadline deadline;
  bool stopped = false;
  // When the last keepalive went out. One is due a renewal interval after the
  // last acknowledged send; while none is acknowledged, another goes out
  // every retry pause without waiting for those in flight: during a store
  // leader change a member holds a keepalive until its call deadline, and the
  // first sent after the new leader is elected is the one that renews.
  Clock::TimePoint last_sent{};
  Clock::Duration retry_pause{0};

  Clock::TimePoint next_send() const {
    return std::max(deadline.next_renewal(), last_sent + retry_pause);
  }

  void report(std::function<void()> work) { asio::post(report_to, std::move(work)); }

  asio::awaitable<void> pause(Clock::Duration how_long) {
    timer.expires_after(how_long);
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    (void)ec;
  }

  // Grants a lease and creates nodes/<node> bound to it; returns when joined
  // or when `generation` moved on.
  asio::awaitable<bool> join(int my_generation) {
    bool warned_in_use = false;
    while (my_generation == generation) {
      const Clock::TimePoint sent = clock.now();
      auto grant = co_await store.grant(options.ttl);
      if (my_generation != generation) {
        // An orphan lease would expire by itself; revoking only ends it sooner.
        if (grant.ok()) (void)co_await store.revoke(grant->id);
        co_return false;
      }
      if (!grant.ok()) {
        logger("liveness")->warn("cannot get a lease: {}", grant.error().describe());
        co_await pause(options.join_retry);
        continue;
      }
      if (Status fits = deadline.check_ttl(grant->ttl); !fits.ok()) {
        logger("liveness")
            ->warn("the store granted a TTL of {} s: {}", grant->ttl.count(),
                   fits.error().describe());
      }
      store::Txn create({store::Compare::absent(options.node_key)},
                        {store::Put(options.node_key, options.node_value, grant->id)});
      auto created = co_await store.txn(std::move(create));
      bool joined = created.ok() && created->succeeded;
      if (!created.ok() || !created->succeeded) {
        // A lost reply may have committed: the key then carries our lease.
        auto current = co_await store::get(store, options.node_key);
        joined = current.ok() && current->has_value() && (*current)->lease == grant->id;
        if (!joined && current.ok() && current->has_value() && !warned_in_use) {
          logger("liveness")
              ->warn(
                  "liveness: node name \"{}\" is in use by another live member (lease {:x}); "
                  "waiting for it to end",
                  options.node, (*current)->lease);
          warned_in_use = true;
        }
      }
      if (my_generation != generation) {
        (void)co_await store.revoke(grant->id);
        co_return false;
      }
      if (!joined) {
        (void)co_await store.revoke(grant->id);
        co_await pause(options.join_retry);
        continue;
      }
      lease = grant->id;
      granted_ttl = grant->ttl;
      deadline = cluster::LeaseDeadline(options.deadline);
      deadline.granted(sent, grant->ttl);
      co_return true;
    }
    co_return false;
  }

  asio::awaitable<void> run(int my_generation, std::optional<ResumedLease> resume) {
    auto self = shared_from_this();
    if (resume) {
      lease = resume->lease;
      granted_ttl = resume->ttl;
      deadline = cluster::LeaseDeadline(options.deadline);
      deadline.granted(resume->sent, resume->ttl);
    } else if (!co_await join(my_generation)) {
      co_return;
    }
    const int64_t my_lease = lease;
    const Clock::TimePoint first_deadline = deadline.deadline();
    logger("liveness")
        ->info("{} as \"{}\" with lease {:x} (TTL {} s)", resume ? "resumed" : "joined",
               options.node, my_lease,
               std::chrono::duration_cast<std::chrono::seconds>(granted_ttl).count());
    report([self, my_lease, first_deadline] {
      if (self->callbacks.joined) self->callbacks.joined(my_lease, first_deadline);
    });
    const Clock::Duration interval = granted_ttl / options.deadline.renewals_per_ttl;
    retry_pause = std::max<Clock::Duration>(interval / 5, milliseconds(100));
    last_sent = clock.now();
    while (my_generation == generation) {
      const Clock::TimePoint now = clock.now();
      if (deadline.expired(now)) {
        // Never resumed: whatever acknowledgement comes later is ignored.
        ++generation;
        report([self] {
          if (self->callbacks.lost) {
            self->callbacks.lost("no renewal was acknowledged before the fencing deadline");
          }
        });
        co_return;
      }
      if (now >= next_send()) {
        asio::co_spawn(executor, keepalive(my_generation, my_lease, now), asio::detached);
        last_sent = now;
      }
      co_await pause(std::min(next_send(), deadline.deadline()) - clock.now());
    }
  }

  asio::awaitable<void> keepalive(int my_generation, int64_t my_lease, Clock::TimePoint sent) {
    auto self = shared_from_this();
    auto ttl = co_await store.keepalive(my_lease);
    if (my_generation != generation) co_return;
    if (!ttl.ok()) {
      if (store::code_of(ttl.error()) == store::Code::kLeaseNotFound) {
        ++generation;
        timer.cancel();
        report([self] {
          if (self->callbacks.lost) self->callbacks.lost("the store no longer has our lease");
        });
      } else {
        logger("liveness")->warn("keepalive failed: {}", ttl.error().describe());
      }
      co_return;
    }
    // Acknowledged too late: the deadline has passed and fencing has begun.
    if (deadline.expired(clock.now())) co_return;
    deadline.acknowledged(sent, *ttl);
    const Clock::TimePoint moved = deadline.deadline();
    report([self, moved] {
      if (self->callbacks.renewed) self->callbacks.renewed(moved);
    });
  }

  asio::awaitable<void> give_up_lease() {
    if (lease == 0) co_return;
    const int64_t old = lease;
    lease = 0;
    Status revoked = co_await store.revoke(old);
    if (!revoked.ok() && store::code_of(revoked.error()) != store::Code::kLeaseNotFound) {
      logger("liveness")->warn("could not revoke lease {:x}: {}", old, revoked.error().describe());
    }
  }
};

LeaseLiveness::LeaseLiveness(asio::any_io_executor executor, store::Store& store,
                             const Clock& clock, asio::any_io_executor report_to,
                             LeaseLivenessOptions options)
    : state_(std::make_shared<State>(std::move(executor), store, clock, std::move(report_to),
                                     std::move(options))) {}

LeaseLiveness::~LeaseLiveness() {
  auto state = state_;
  asio::post(state->executor, [state] {
    ++state->generation;
    state->stopped = true;
    state->timer.cancel();
  });
}

void LeaseLiveness::start(Callbacks callbacks, std::optional<ResumedLease> resume) {
  auto state = state_;
  asio::post(state->executor, [state, callbacks = std::move(callbacks), resume]() mutable {
    state->callbacks = std::move(callbacks);
    asio::co_spawn(state->executor, state->run(state->generation, resume), asio::detached);
  });
}

void LeaseLiveness::rejoin() {
  auto state = state_;
  asio::post(state->executor, [state] {
    if (state->stopped) return;
    const int next = ++state->generation;
    state->timer.cancel();
    auto again = [](std::shared_ptr<State> s, int generation) -> asio::awaitable<void> {
      co_await s->give_up_lease();
      if (generation == s->generation) co_await s->run(generation, std::nullopt);
    };
    asio::co_spawn(state->executor, again(state, next), asio::detached);
  });
}

void LeaseLiveness::stop(std::function<void()> done) {
  auto state = state_;
  asio::post(state->executor, [state, done = std::move(done)]() mutable {
    ++state->generation;
    state->stopped = true;
    state->timer.cancel();
    auto leave = [](std::shared_ptr<State> s, std::function<void()> d) -> asio::awaitable<void> {
      co_await s->give_up_lease();
      if (d) s->report(std::move(d));
    };
    asio::co_spawn(state->executor, leave(state, std::move(done)), asio::detached);
  });
}

}  // namespace clusweb::agent
