#include "store/election.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "base/testing/manual_clock.h"
#include "store/memory_store.h"
#include "store/testing/conformance.h"
#include "store/testing/faulty_store.h"

namespace clusweb::store {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::must;

class ElectionTest : public ::testing::Test {
 protected:
  ElectionTest() {
    MemoryStoreOptions options;
    options.expiry_interval = 0ms;
    store_ = must(MemoryStore::open(io_.get_executor(), clock_, options));
  }

  // Runs `body` until it finishes (the io_context has no other work).
  template <class F>
  void run(F body) {
    bool done = false;
    std::exception_ptr failure;
    asio::co_spawn(io_, body(), [&](std::exception_ptr e) {
      failure = e;
      done = true;
    });
    io_.run();
    io_.restart();
    ASSERT_TRUE(done);
    if (failure) {
      try {
        std::rethrow_exception(failure);
      } catch (const std::exception& e) {
        FAIL() << e.what();
      }
    }
  }
  // Runs what is ready without waiting for anything.
  void settle() {
    io_.poll();
    io_.restart();
  }
  LeaseId lease(std::chrono::seconds ttl = 10s) {
    LeaseId id = 0;
    run([&]() -> asio::awaitable<void> { id = must(co_await store_->grant(ttl)).id; });
    return id;
  }

  asio::io_context io_;
  clusweb::testing::ManualClock clock_;
  std::unique_ptr<MemoryStore> store_;
};

TEST_F(ElectionTest, OneCandidateLeadsAndItsTokenIsTheKeysCreateRevision) {
  Election a(*store_, "/coordinator", "node-a", lease());
  Election b(*store_, "/coordinator", "node-b", lease());
  run([&]() -> asio::awaitable<void> {
    EXPECT_TRUE(must(co_await a.try_acquire()));
    EXPECT_FALSE(must(co_await b.try_acquire()));
    // Asking again while leading is harmless.
    EXPECT_TRUE(must(co_await a.try_acquire()));
    auto leader = must(co_await a.leader());
    EXPECT_TRUE(leader && leader->value == "node-a");
    EXPECT_EQ(a.token(), leader->create_revision);
  });
  EXPECT_TRUE(a.leading());
  EXPECT_FALSE(b.leading());
}

TEST_F(ElectionTest, AWaitingCandidateLeadsOnceTheLeaderResigns) {
  Election a(*store_, "/coordinator", "node-a", lease());
  Election b(*store_, "/coordinator", "node-b", lease());
  run([&]() -> asio::awaitable<void> { must(co_await a.campaign()); });
  bool b_leads = false;
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        must(co_await b.campaign());
        b_leads = true;
      },
      asio::detached);
  settle();
  EXPECT_FALSE(b_leads);
  const Revision old_token = a.token();
  run([&]() -> asio::awaitable<void> { must(co_await a.resign()); });
  EXPECT_TRUE(b_leads);
  EXPECT_FALSE(a.leading());
  EXPECT_GT(b.token(), old_token);  // fencing tokens only grow
}

TEST_F(ElectionTest, TheLeadersLeaseExpiringHandsLeadershipOver) {
  Election a(*store_, "/coordinator", "node-a", lease(2s));
  Election b(*store_, "/coordinator", "node-b", lease(60s));
  run([&]() -> asio::awaitable<void> { must(co_await a.campaign()); });
  bool b_leads = false;
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        must(co_await b.campaign());
        b_leads = true;
      },
      asio::detached);
  settle();
  clock_.advance(1s);
  store_->expire_leases();
  settle();
  EXPECT_FALSE(b_leads);
  clock_.advance(1s);
  store_->expire_leases();
  settle();
  EXPECT_TRUE(b_leads);
}

TEST_F(ElectionTest, ALostReplyIsResolvedByReadingTheKeyBack) {
  testing::FaultyStore faulty(*store_);
  Election a(faulty, "/coordinator", "node-a", lease());
  Election b(*store_, "/coordinator", "node-b", lease());
  faulty.lose_reply();
  run([&]() -> asio::awaitable<void> {
    // The acquire committed but its reply was lost: still ours.
    EXPECT_TRUE(must(co_await a.try_acquire()));
    EXPECT_EQ(faulty.injected(), 1);
    auto leader = must(co_await a.leader());
    EXPECT_TRUE(leader && leader->value == "node-a");
    EXPECT_EQ(a.token(), leader->create_revision);
    EXPECT_FALSE(must(co_await b.try_acquire()));
  });
}

TEST_F(ElectionTest, ALostReplyWhileAnotherLeadsIsNotLeadership) {
  testing::FaultyStore faulty(*store_);
  Election a(*store_, "/coordinator", "node-a", lease());
  Election b(faulty, "/coordinator", "node-b", lease());
  run([&]() -> asio::awaitable<void> {
    EXPECT_TRUE(must(co_await a.try_acquire()));
    faulty.lose_reply();
    EXPECT_FALSE(must(co_await b.try_acquire()));
    EXPECT_FALSE(b.leading());
  });
}

TEST_F(ElectionTest, AnUnavailableStoreIsAnErrorNotADefeat) {
  testing::FaultyStore faulty(*store_);
  Election a(faulty, "/coordinator", "node-a", lease());
  faulty.refuse(Code::kUnavailable);
  run([&]() -> asio::awaitable<void> {
    auto result = co_await a.try_acquire();
    EXPECT_FALSE(result.ok());
    if (!result) {
      EXPECT_EQ(code_of(result.error()), Code::kUnavailable);
    }
  });
}

TEST_F(ElectionTest, ResigningLateNeverDeletesASuccessorsKey) {
  Election a(*store_, "/coordinator", "node-a", lease(2s));
  Election b(*store_, "/coordinator", "node-b", lease(60s));
  run([&]() -> asio::awaitable<void> { must(co_await a.campaign()); });
  clock_.advance(3s);
  store_->expire_leases();
  run([&]() -> asio::awaitable<void> {
    must(co_await b.campaign());
    must(co_await a.resign());  // a still believes it leads
    auto leader = must(co_await b.leader());
    EXPECT_TRUE(leader && leader->value == "node-b");
  });
}

TEST_F(ElectionTest, ObserveReportsEachChangeOfLeader) {
  Election a(*store_, "/coordinator", "node-a", lease());
  Election b(*store_, "/coordinator", "node-b", lease());
  Election watcher(*store_, "/coordinator", "observer", 0);
  run([&]() -> asio::awaitable<void> { must(co_await a.campaign()); });
  std::vector<std::string> seen;
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        Revision known = 0;
        for (int i = 0; i < 3; ++i) {
          auto next = must(co_await watcher.observe(known));
          seen.push_back(next ? next->value : "(none)");
          known = next ? next->create_revision : 0;
        }
      },
      asio::detached);
  settle();
  run([&]() -> asio::awaitable<void> {
    must(co_await a.resign());
    must(co_await b.campaign());
  });
  settle();
  EXPECT_EQ(seen, (std::vector<std::string>{"node-a", "(none)", "node-b"}));
}

}  // namespace
}  // namespace clusweb::store
