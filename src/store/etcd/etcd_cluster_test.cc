// EtcdStore against a 3-member cluster losing members: failover of calls
// and watches, and quorum loss. Each test starts its own cluster (~1 s).

#include "store/etcd/testing/etcd_cluster.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <thread>

#include "store/etcd/etcd_store.h"
#include "store/etcd/testing/run_until_done.h"

namespace clusweb::store {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::EtcdCluster;
using testing::run_until_done;

constexpr auto kCallTimeout = 500ms;

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

boost::asio::awaitable<void> sleep_for(Clock::duration d) {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, d);
  co_await timer.async_wait(boost::asio::use_awaitable);
}

class EtcdClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::EtcdClusterOptions options;
    options.members = 3;
    auto started = EtcdCluster::start(options);
    ASSERT_TRUE(started) << started.error().describe();
    cluster_ = std::move(*started);
  }

  // A store whose endpoints list `first` first: calls and watches start there.
  std::unique_ptr<EtcdStore> connect(std::size_t first) {
    auto endpoints = cluster_->endpoints();
    std::rotate(endpoints.begin(), endpoints.begin() + static_cast<std::ptrdiff_t>(first),
                endpoints.end());
    EtcdOptions options;
    options.endpoints = endpoints;
    options.call_timeout = kCallTimeout;
    auto store = EtcdStore::create(io_.get_executor(), options);
    EXPECT_TRUE(store);
    return std::move(*store);
  }

  boost::asio::io_context io_;
  std::unique_ptr<EtcdCluster> cluster_;
};

// What the writer and the watcher of the leader-kill test saw.
struct History {
  std::map<std::string, Revision> acked;  // key -> revision of its acknowledged put
  std::vector<std::string> unknown;       // puts answered kUnknownOutcome
  int unavailable = 0;                    // puts answered kUnavailable
  Clock::duration longest_gap{0};         // between two acknowledged puts
  std::vector<Revision> watched;          // event revisions, in delivery order
  bool watcher_done = false;
};

boost::asio::awaitable<void> watch_all(Watch& watch, History& history) {
  for (;;) {
    auto batch = co_await watch.next();
    if (!batch) {
      EXPECT_EQ(code_of(batch.error()), Code::kCanceled) << batch.error().describe();
      break;
    }
    for (const auto& event : batch->events) history.watched.push_back(event.kv.mod_revision);
  }
  history.watcher_done = true;
}

// Writes keys in a loop; kills `leader` after 100 acknowledged puts and goes
// on until 100 more are acknowledged.
boost::asio::awaitable<void> write_through_failover(EtcdStore& store, EtcdCluster& cluster,
                                                    std::size_t leader, History& history) {
  std::optional<Clock::time_point> killed_at;
  int acked_after_kill = 0;
  auto last_ack = Clock::now();
  for (int i = 0;; ++i) {
    const std::string key = fmt::format("/failover/{:06}", i);
    auto result = co_await store.put(Put(key, std::to_string(i)));
    const auto now = Clock::now();
    if (result) {
      history.acked.emplace(key, result->revision);
      history.longest_gap = std::max(history.longest_gap, now - last_ack);
      last_ack = now;
      if (killed_at) ++acked_after_kill;
    } else {
      const Code code = code_of(result.error());
      EXPECT_TRUE(code == Code::kUnavailable || code == Code::kUnknownOutcome)
          << result.error().describe();
      if (code == Code::kUnknownOutcome) history.unknown.push_back(key);
      if (code == Code::kUnavailable) ++history.unavailable;
      co_await sleep_for(10ms);
    }
    if (!killed_at && history.acked.size() == 100) {
      cluster.kill(leader);
      killed_at = Clock::now();
      last_ack = *killed_at;
    }
    if (acked_after_kill == 100) break;
    if (killed_at && now - *killed_at > 20s) {
      ADD_FAILURE() << "writes did not recover within 20 s";
      break;
    }
  }
}

TEST_F(EtcdClusterTest, LeaderKillLosesNoAcknowledgedWriteAndNoWatchEvent) {
  auto leader = cluster_->leader();
  ASSERT_TRUE(leader) << leader.error().describe();
  auto store = connect(*leader);
  History history;
  std::unique_ptr<Watch> watch;
  Revision start = 0;

  run_until_done(io_,
                 [](EtcdStore& s, Revision& first, std::unique_ptr<Watch>& w,
                    History& h) -> boost::asio::awaitable<void> {
                   auto now = co_await s.range(Range("/failover/", true));
                   EXPECT_TRUE(now) << now.error().describe();
                   if (!now) co_return;
                   first = now->revision + 1;
                   WatchOptions options("/failover/", true);
                   options.start_revision = first;
                   auto created = co_await s.watch(options);
                   EXPECT_TRUE(created) << created.error().describe();
                   if (!created) co_return;
                   w = std::move(*created);
                   boost::asio::co_spawn(s.get_executor(), watch_all(*w, h), boost::asio::detached);
                 }(*store, start, watch, history));
  ASSERT_TRUE(watch);

  run_until_done(io_, write_through_failover(*store, *cluster_, *leader, history));

  // Every acknowledged write is there.
  auto all = run_until_done(io_, store->range(Range("/failover/", true)));
  ASSERT_TRUE(all) << all.error().describe();
  std::map<std::string, std::string> stored;
  for (const auto& kv : all->kvs) stored.emplace(kv.key, kv.value);
  for (const auto& [key, revision] : history.acked) {
    EXPECT_TRUE(stored.contains(key)) << "acknowledged write lost: " << key;
  }

  // The watch catches up with the last revision, then every revision arrived once, in order.
  const Revision last = all->revision;
  const auto deadline = Clock::now() + 10s;
  io_.restart();
  while ((history.watched.empty() || history.watched.back() < last) && Clock::now() < deadline) {
    io_.run_one_for(100ms);
  }
  watch->cancel();
  while (!history.watcher_done) io_.run_one();
  ASSERT_FALSE(history.watched.empty());
  EXPECT_EQ(history.watched.front(), start);
  for (std::size_t i = 1; i < history.watched.size(); ++i) {
    ASSERT_EQ(history.watched[i], history.watched[i - 1] + 1)
        << "gap or repeat after revision " << history.watched[i - 1];
  }
  EXPECT_GE(history.watched.back(), last);
  for (const auto& [key, revision] : history.acked) {
    EXPECT_TRUE(std::binary_search(history.watched.begin(), history.watched.end(), revision))
        << key;
  }
  EXPECT_LT(history.longest_gap, 5s);
  std::printf(
      "leader kill: writes unavailable %.0f ms (longest gap between acknowledged puts); "
      "%zu acknowledged, %zu unknown outcome, %d unavailable answers; watch saw %zu revisions "
      "%lld..%lld; %llu grpc calls\n",
      ms(history.longest_gap), history.acked.size(), history.unknown.size(), history.unavailable,
      history.watched.size(), static_cast<long long>(history.watched.front()),
      static_cast<long long>(history.watched.back()),
      static_cast<unsigned long long>(store->calls_made()));
}

TEST_F(EtcdClusterTest, GracefulLeaderStopHandsOver) {
  auto leader = cluster_->leader();
  ASSERT_TRUE(leader) << leader.error().describe();
  auto store = connect(*leader);
  ASSERT_TRUE(run_until_done(io_, store->put(Put("/graceful/k", "0"))));
  cluster_->stop(*leader);  // SIGTERM: etcd transfers leadership before it exits
  const auto stopped_at = Clock::now();
  Result<PutResult> write = store_error(Code::kUnavailable, "not tried");
  int attempts = 0;
  while (!write && Clock::now() - stopped_at < 10s) {
    ++attempts;
    write = run_until_done(io_, store->put(Put("/graceful/k", "1")));
  }
  ASSERT_TRUE(write) << write.error().describe();
  const auto took = Clock::now() - stopped_at;
  EXPECT_LT(took, 2 * kCallTimeout);
  auto restarted = cluster_->restart(*leader);
  ASSERT_TRUE(restarted) << restarted.error().describe();
  auto healthy = cluster_->wait_healthy();
  ASSERT_TRUE(healthy) << healthy.error().describe();
  auto read = run_until_done(io_, get(*store, "/graceful/k"));
  ASSERT_TRUE(read && read->has_value());
  EXPECT_EQ((*read)->value, "1");
  std::printf("graceful leader stop: next write acknowledged after %.0f ms (%d attempts)\n",
              ms(took), attempts);
}

TEST_F(EtcdClusterTest, QuorumLossFailsFastAndRecovers) {
  auto leader = cluster_->leader();
  ASSERT_TRUE(leader) << leader.error().describe();
  // The leader survives, alone: the harder case (it still believes it leads
  // until its check-quorum timeout steps it down).
  auto store = connect(*leader);
  ASSERT_TRUE(run_until_done(io_, store->put(Put("/quorum/k", "before"))));

  for (std::size_t i = 0; i < cluster_->size(); ++i) {
    if (i != *leader) cluster_->kill(i);
  }
  const auto killed_at = Clock::now();
  Clock::duration slowest{0};
  // From the kill until calls fail at once (and keep doing so); max() = not yet.
  auto fast_since = Clock::duration::max();
  std::map<Code, int> answers;
  while (Clock::now() - killed_at < 2s) {
    auto begin = Clock::now();
    auto read = run_until_done(io_, store->range(Range("/quorum/", true)));
    const auto read_took = Clock::now() - begin;
    ASSERT_FALSE(read);
    EXPECT_EQ(code_of(read.error()), Code::kUnavailable) << read.error().describe();
    begin = Clock::now();
    auto write = run_until_done(io_, store->put(Put("/quorum/k", "during")));
    const auto write_took = Clock::now() - begin;
    ASSERT_FALSE(write);
    const Code code = code_of(write.error());
    ++answers[code];
    // kUnknownOutcome while the lone leader still takes proposals it cannot commit.
    EXPECT_TRUE(code == Code::kUnavailable || code == Code::kUnknownOutcome)
        << write.error().describe();
    EXPECT_LT(read_took, 2 * kCallTimeout);
    EXPECT_LT(write_took, 2 * kCallTimeout);
    slowest = std::max({slowest, read_took, write_took});
    const bool fast = read_took < 50ms && write_took < 50ms && code == Code::kUnavailable;
    if (fast && fast_since == Clock::duration::max()) fast_since = Clock::now() - killed_at;
    if (!fast) fast_since = Clock::duration::max();
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_NE(fast_since, Clock::duration::max()) << "calls never failed fast";

  std::size_t back = *leader == 0 ? 1 : 0;
  const auto restart_begin = Clock::now();
  auto restarted = cluster_->restart(back);
  ASSERT_TRUE(restarted) << restarted.error().describe();
  Result<PutResult> write = store_error(Code::kUnavailable, "not tried");
  while (!write && Clock::now() - restart_begin < 15s) {
    write = run_until_done(io_, store->put(Put("/quorum/k", "after")));
    if (!write) std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(write) << write.error().describe();
  const auto recovered = Clock::now() - restart_begin;
  auto read = run_until_done(io_, get(*store, "/quorum/k"));
  ASSERT_TRUE(read && read->has_value());
  EXPECT_EQ((*read)->value, "after");
  std::printf(
      "quorum loss: slowest failing call %.0f ms (call_timeout %lld ms); calls fail at once "
      "(< 50 ms, unavailable) from %.0f ms after the kill; write answers: %d unavailable, %d "
      "unknown outcome; a member restarted -> writes work again after %.0f ms\n",
      ms(slowest), static_cast<long long>(kCallTimeout.count()), ms(fast_since),
      answers[Code::kUnavailable], answers[Code::kUnknownOutcome], ms(recovered));
}

// The member of `health` named `name`, or null.
const StoreMember* named(const StoreHealth& health, const std::string& name) {
  for (const StoreMember& member : health.members) {
    if (member.name == name) return &member;
  }
  return nullptr;
}

TEST_F(EtcdClusterTest, MembersShowsEachMembersHealthAndTheLeader) {
  auto leader = cluster_->leader();
  ASSERT_TRUE(leader) << leader.error().describe();
  auto store = connect(0);
  auto health = run_until_done(io_, store->members(1s));
  ASSERT_TRUE(health) << health.error().describe();
  EXPECT_EQ(health->kind, "etcd");
  ASSERT_EQ(health->members.size(), 3u);
  EXPECT_TRUE(health->unreachable.empty());
  for (std::size_t i = 0; i < 3; ++i) {
    const StoreMember* member = named(*health, fmt::format("m{}", i));
    ASSERT_NE(member, nullptr) << "m" << i;
    EXPECT_EQ(member->endpoint, cluster_->endpoint(i));
    EXPECT_TRUE(member->healthy) << member->error;
    EXPECT_EQ(member->leader, i == *leader) << "m" << i;
    EXPECT_FALSE(member->version.empty());
    EXPECT_GT(member->db_size, 0);
    EXPECT_GT(member->raft_term, 0u);
    EXPECT_TRUE(member->alarms.empty());
  }
  EXPECT_EQ(health->leader, named(*health, fmt::format("m{}", *leader))->id);

  // A member killed: it shows as unhealthy and says why; the others still answer and agree on
  // the leader, within the time each was given.
  const std::size_t victim = (*leader + 1) % 3;
  cluster_->kill(victim);
  const auto asked = Clock::now();
  health = run_until_done(io_, store->members(500ms));
  EXPECT_LT(Clock::now() - asked, 1500ms);
  ASSERT_TRUE(health) << health.error().describe();
  ASSERT_EQ(health->members.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    const StoreMember* member = named(*health, fmt::format("m{}", i));
    ASSERT_NE(member, nullptr) << "m" << i;
    EXPECT_EQ(member->endpoint, cluster_->endpoint(i));
    EXPECT_EQ(member->healthy, i != victim) << "m" << i << ": " << member->error;
    EXPECT_EQ(member->error.empty(), i != victim) << "m" << i << ": " << member->error;
    EXPECT_EQ(member->leader, i == *leader) << "m" << i;
  }
}

TEST_F(EtcdClusterTest, MembersBeyondTheClientsEndpointsAreListedButNotAsked) {
  EtcdOptions options;
  options.endpoints = {cluster_->endpoint(0)};
  options.call_timeout = kCallTimeout;
  auto store = EtcdStore::create(io_.get_executor(), options);
  ASSERT_TRUE(store);
  auto health = run_until_done(io_, (*store)->members(1s));
  ASSERT_TRUE(health) << health.error().describe();
  ASSERT_EQ(health->members.size(), 3u);
  EXPECT_TRUE(named(*health, "m0")->healthy);
  for (const char* name : {"m1", "m2"}) {
    const StoreMember* member = named(*health, name);
    ASSERT_NE(member, nullptr) << name;
    EXPECT_FALSE(member->healthy);
    EXPECT_EQ(member->endpoint, "");
    EXPECT_EQ(member->error, "not among this node's etcd endpoints");
    EXPECT_EQ(member->client_urls.size(), 1u);
  }
  EXPECT_NE(health->leader, 0u);
}

}  // namespace
}  // namespace clusweb::store
