#include "store/memory_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "base/testing/crashing_file_system.h"
#include "base/testing/manual_clock.h"
#include "store/testing/conformance.h"

namespace clusweb::store {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::must;
using testing::must_fail;

// Leases run on a ManualClock: pass_time moves it and expires what is due.
class MemoryBackend {
 public:
  std::unique_ptr<Store> connect(asio::any_io_executor executor) {
    if (!store_) {
      MemoryStoreOptions options;
      options.expiry_interval = 0ms;
      store_ = must(MemoryStore::open(executor, clock_, options));
    }
    return store_->client();
  }
  asio::awaitable<void> pass_time(std::chrono::milliseconds duration) {
    clock_.advance(duration);
    store_->expire_leases();
    co_return;
  }
  std::chrono::seconds lease_ttl() const { return 5s; }
  std::string prefix() const { return "/conformance/"; }

 private:
  clusweb::testing::ManualClock clock_;
  std::unique_ptr<MemoryStore> store_;
};

}  // namespace

namespace testing {
INSTANTIATE_TYPED_TEST_SUITE_P(Memory, StoreConformance, MemoryBackend);
}  // namespace testing

namespace {

// Runs a coroutine to completion on a fresh io_context.
template <class F>
void run(asio::io_context& io, F body) {
  bool done = false;
  std::exception_ptr failure;
  asio::co_spawn(io, body(), [&](std::exception_ptr e) {
    failure = e;
    done = true;
  });
  while (!done && io.run_one_for(5s) > 0) {
  }
  ASSERT_TRUE(done) << "the coroutine did not finish";
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      FAIL() << e.what();
    }
  }
}

class MemoryStorePersistenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/memory-store-test.XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  MemoryStoreOptions options(FileSystem* fs = nullptr) const {
    MemoryStoreOptions o;
    o.state_file = dir_ / "store.state";
    o.file_system = fs;
    o.expiry_interval = 0ms;
    return o;
  }
  // The keys under "/" of a store reopened from the state file.
  std::map<std::string, std::string> reopened() {
    asio::io_context io;
    std::map<std::string, std::string> found;
    auto store = MemoryStore::open(io.get_executor(), clock_, options());
    EXPECT_TRUE(store) << (store ? "" : store.error().describe());
    if (!store) return found;
    run(io, [&]() -> asio::awaitable<void> {
      auto all = must(co_await (*store)->range(Range{"/", true}));
      for (const auto& kv : all.kvs) found[kv.key] = kv.value;
    });
    return found;
  }

  std::filesystem::path dir_;
  clusweb::testing::ManualClock clock_;
};

TEST_F(MemoryStorePersistenceTest, KeysAndRevisionSurviveARestartLeasesDoNot) {
  Revision last = 0;
  {
    asio::io_context io;
    auto store = must(MemoryStore::open(io.get_executor(), clock_, options()));
    run(io, [&]() -> asio::awaitable<void> {
      must(co_await store->put(Put{"/a", "1"}));
      must(co_await store->put(Put{"/b", std::string("two\0bytes\n", 10)}));
      must(co_await store->put(Put{"/a", "3"}));
      auto lease = must(co_await store->grant(10s));
      must(co_await store->put(Put{"/leased", "x", lease.id}));
      last = store->revision();
    });
  }
  asio::io_context io;
  auto store = must(MemoryStore::open(io.get_executor(), clock_, options()));
  EXPECT_EQ(store->revision(), last);
  run(io, [&]() -> asio::awaitable<void> {
    auto a = must(co_await get(*store, "/a"));
    EXPECT_TRUE(a && a->value == "3" && a->version == 2 && a->create_revision == 2);
    auto b = must(co_await get(*store, "/b"));
    EXPECT_TRUE(b && b->value == std::string("two\0bytes\n", 10));
    EXPECT_FALSE(must(co_await get(*store, "/leased")).has_value());
    // Revisions go on from where they were: a fencing token is never reused.
    auto next = must(co_await store->put(Put{"/c", "4"}));
    EXPECT_EQ(next.revision, last + 1);
    // History from before the restart is gone, as after a compaction.
    Range old{"/a"};
    old.revision = 2;
    EXPECT_EQ(must_fail(co_await store->range(old)), Code::kCompacted);
  });
}

TEST_F(MemoryStorePersistenceTest, ADamagedStateFileIsAnErrorNotAnEmptyStore) {
  {
    asio::io_context io;
    auto store = must(MemoryStore::open(io.get_executor(), clock_, options()));
    run(io, [&]() -> asio::awaitable<void> { must(co_await store->put(Put{"/a", "1"})); });
  }
  {
    std::FILE* f = std::fopen((dir_ / "store.state").c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    std::fseek(f, -2, SEEK_END);
    std::fputc('#', f);
    std::fclose(f);
  }
  asio::io_context io;
  auto store = MemoryStore::open(io.get_executor(), clock_, options());
  ASSERT_FALSE(store);
  EXPECT_NE(store.error().describe().find("store.state"), std::string::npos);
  EXPECT_NE(store.error().describe().find("checksum"), std::string::npos);
}

// A crash at every step of every save: reopening finds either the state
// before or after the write that was being saved, and every write that was
// acknowledged before the crash.
TEST_F(MemoryStorePersistenceTest, ACrashAtAnyStepOfASaveLosesNoAcknowledgedWrite) {
  clusweb::testing::CrashingFileSystem crashing(os_file_system());
  const int steps_per_save = 5;
  for (int writes_before = 0; writes_before < 3; ++writes_before) {
    for (int step = 1; step <= steps_per_save; ++step) {
      SCOPED_TRACE(fmt::format("{} writes acknowledged, crash at step {}", writes_before, step));
      std::filesystem::remove(dir_ / "store.state");
      std::map<std::string, std::string> acknowledged;
      bool last_failed = false;
      {
        asio::io_context io;
        crashing.crash_at(writes_before * steps_per_save + step);
        auto store = must(MemoryStore::open(io.get_executor(), clock_, options(&crashing)));
        run(io, [&]() -> asio::awaitable<void> {
          for (int i = 0; i <= writes_before; ++i) {
            std::string key = fmt::format("/k{}", i);
            auto put = co_await store->put(Put{key, fmt::format("v{}", i)});
            if (put) {
              acknowledged[key] = fmt::format("v{}", i);
            } else {
              EXPECT_EQ(code_of(put.error()), Code::kUnavailable);
              last_failed = true;
              // Not acknowledged, and not visible either.
              EXPECT_FALSE(must(co_await get(*store, key)).has_value());
            }
          }
        });
      }
      EXPECT_TRUE(last_failed);
      EXPECT_TRUE(crashing.crashed());
      auto found = reopened();
      // Every acknowledged write is there; the one being saved may be too.
      for (const auto& [key, value] : acknowledged) {
        EXPECT_EQ(found[key], value) << key;
      }
      EXPECT_LE(found.size(), acknowledged.size() + 1);
      if (found.size() == acknowledged.size() + 1) {
        EXPECT_EQ(found[fmt::format("/k{}", writes_before)], fmt::format("v{}", writes_before));
      }
    }
  }
}

TEST(MemoryStoreTest, LeasesExpireOnTheClockWithoutAnyOperation) {
  asio::io_context io;
  clusweb::testing::ManualClock clock;
  MemoryStoreOptions options;
  options.expiry_interval = 10ms;
  auto store = must(MemoryStore::open(io.get_executor(), clock, options));
  std::unique_ptr<Watch> watch;
  LeaseGrant lease;
  run(io, [&]() -> asio::awaitable<void> {
    lease = must(co_await store->grant(2s));
    must(co_await store->put(Put{"/owned", "x", lease.id}));
    watch = must(co_await store->watch(WatchOptions{"/owned"}));
  });
  clock.advance(1999ms);
  io.run_for(50ms);
  EXPECT_TRUE(store->revision() == 2);  // still there
  clock.advance(1ms);
  run(io, [&]() -> asio::awaitable<void> {
    auto batch = co_await testing::next_batch(*watch, 5s);
    EXPECT_EQ(batch.events.size(), 1u);
    EXPECT_EQ(batch.events[0].type, WatchEvent::Type::kDelete);
  });
}

TEST(MemoryStoreTest, GrantedTtlIsAtLeastOneSecondAndIdsAreUnique) {
  asio::io_context io;
  clusweb::testing::ManualClock clock;
  auto store = must(MemoryStore::open(io.get_executor(), clock));
  run(io, [&]() -> asio::awaitable<void> {
    auto a = must(co_await store->grant(0s));
    EXPECT_EQ(a.ttl, 1s);
    auto b = must(co_await store->grant(3s, 42));
    EXPECT_EQ(b.id, 42);
    EXPECT_EQ(must_fail(co_await store->grant(3s, 42)), Code::kInvalidArgument);
    EXPECT_NE(a.id, b.id);
  });
}

TEST(MemoryStoreTest, MembersIsThisProcessHealthyAndLeader) {
  asio::io_context io;
  clusweb::testing::ManualClock clock;
  auto store = must(MemoryStore::open(io.get_executor(), clock));
  StoreHealth health;
  run(io, [&]() -> asio::awaitable<void> {
    must(co_await store->put(Put{"/k", "v"}));
    health = must(co_await store->client()->members(1s));
  });
  EXPECT_EQ(health.kind, "memory");
  ASSERT_EQ(health.members.size(), 1u);
  EXPECT_TRUE(health.members[0].healthy);
  EXPECT_TRUE(health.members[0].leader);
  EXPECT_EQ(health.leader, health.members[0].id);
  EXPECT_EQ(health.members[0].raft_index, 2u);
  EXPECT_TRUE(health.unreachable.empty());
}

}  // namespace
}  // namespace clusweb::store
