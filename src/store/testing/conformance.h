#pragma once

// The conformance suite every Store passes: one typed GoogleTest suite,
// instantiated per backend with
//   INSTANTIATE_TYPED_TEST_SUITE_P(Name, StoreConformance, Backend);
//
// A Backend is default-constructible and provides:
//   std::unique_ptr<Store> connect(boost::asio::any_io_executor);  // a new client, same data
//   boost::asio::awaitable<void> pass_time(std::chrono::milliseconds);  // lease time passes
//   std::chrono::seconds lease_ttl();  // the TTL lease tests ask for
//   std::string prefix();              // a key prefix no other test in the process uses
//
// Tests use only their prefix and relative revisions, so a backend may share
// one server between the tests of a process.

#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <functional>
#include <source_location>
#include <stdexcept>

#include "store/store.h"

namespace clusweb::store::testing {

// The value of a Result, or an exception describing the error (the suite's
// coroutines cannot use ASSERT_*).
template <class T>
T must(Result<T> result, std::source_location where = std::source_location::current()) {
  if (!result) {
    throw std::runtime_error(fmt::format("{}:{}: {} ({})", where.file_name(), where.line(),
                                         result.error().describe(),
                                         code_name(code_of(result.error()))));
  }
  return std::move(result).value();
}

inline void must(Status status, std::source_location where = std::source_location::current()) {
  if (!status) {
    throw std::runtime_error(fmt::format("{}:{}: {} ({})", where.file_name(), where.line(),
                                         status.error().describe(),
                                         code_name(code_of(status.error()))));
  }
}

// The error code of a result expected to fail.
template <class T>
Code must_fail(const Result<T>& result,
               std::source_location where = std::source_location::current()) {
  if (result) {
    throw std::runtime_error(fmt::format("{}:{}: succeeded where a failure was expected",
                                         where.file_name(), where.line()));
  }
  return code_of(result.error());
}

// The next batch of a watch, or an exception when none comes within `limit`.
inline boost::asio::awaitable<WatchBatch> next_batch(
    Watch& watch, std::chrono::seconds limit = std::chrono::seconds(15)) {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, limit);
  auto fired = std::make_shared<bool>(false);
  timer.async_wait([fired, &watch](boost::system::error_code ec) {
    if (ec) return;
    *fired = true;
    watch.cancel();
  });
  auto batch = co_await watch.next();
  timer.cancel();
  if (*fired) throw std::runtime_error("no watch event arrived in time");
  co_return must(std::move(batch));
}

// Watch events until `count` have arrived.
inline boost::asio::awaitable<std::vector<WatchEvent>> next_events(Watch& watch,
                                                                   std::size_t count) {
  std::vector<WatchEvent> events;
  while (events.size() < count) {
    auto batch = co_await next_batch(watch);
    for (auto& event : batch.events) events.push_back(std::move(event));
  }
  co_return events;
}

// Whether a transaction comparing `compare` succeeds; `then` is written if so.
inline boost::asio::awaitable<bool> compare_holds(Store& store, Compare compare,
                                                  std::optional<Put> then = std::nullopt) {
  Txn txn;
  txn.compare.push_back(std::move(compare));
  if (then) txn.success.emplace_back(std::move(*then));
  co_return must(co_await store.txn(std::move(txn))).succeeded;
}

// One contender for a lock: takes `lock` if nobody holds it.
inline boost::asio::awaitable<void> try_lock(Store& store, std::string lock, std::string me,
                                             int& winners, int& finished, int contenders,
                                             boost::asio::steady_timer& all_done) {
  Txn txn;
  txn.compare.push_back(Compare::absent(lock));
  txn.success.emplace_back(Put{lock, std::move(me)});
  auto won = co_await store.txn(std::move(txn));
  if (won && won->succeeded) ++winners;
  if (++finished == contenders) all_done.cancel();
}

template <class Backend>
class StoreConformance : public ::testing::Test {
 protected:
  using Body = std::function<boost::asio::awaitable<void>(Store&)>;

  std::string key(std::string_view name) const { return prefix_ + std::string(name); }

  // Runs `body` with a fresh client to completion; fails the test on an
  // exception or when it takes longer than `limit`.
  void run(Body body, std::chrono::seconds limit = std::chrono::seconds(120)) {
    auto store = backend_.connect(io_.get_executor());
    bool done = false;
    std::exception_ptr failure;
    boost::asio::co_spawn(io_, body(*store), [&](std::exception_ptr e) {
      failure = e;
      done = true;
    });
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done && std::chrono::steady_clock::now() < deadline) {
      io_.run_one_for(std::chrono::milliseconds(100));
    }
    if (!done) {
      ADD_FAILURE() << "the test did not finish within " << limit.count() << " s";
      return;
    }
    if (failure) {
      try {
        std::rethrow_exception(failure);
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
      }
    }
  }

  // Declared before the backend so that the backend's stores, whose timers
  // live on it, are destroyed first.
  boost::asio::io_context io_;
  Backend backend_;
  std::string prefix_ = backend_.prefix();
};

TYPED_TEST_SUITE_P(StoreConformance);

using namespace std::chrono_literals;
namespace asio = boost::asio;

TYPED_TEST_P(StoreConformance, PutAssignsRevisionsAndVersions) {
  this->run([&](Store& store) -> asio::awaitable<void> {
    auto first = must(co_await store.put(Put{this->key("a"), "1"}));
    auto second = must(co_await store.put(Put{this->key("a"), "2", 0, true}));
    EXPECT_EQ(second.revision, first.revision + 1);
    EXPECT_FALSE(first.prev.has_value());
    EXPECT_TRUE(second.prev.has_value() && second.prev->value == "1");
    auto kv = must(co_await get(store, this->key("a")));
    EXPECT_TRUE(kv.has_value());
    if (!kv) co_return;
    EXPECT_EQ(kv->value, "2");
    EXPECT_EQ(kv->create_revision, first.revision);
    EXPECT_EQ(kv->mod_revision, second.revision);
    EXPECT_EQ(kv->version, 2);
    EXPECT_EQ(kv->lease, 0);
    auto missing = must(co_await get(store, this->key("missing")));
    EXPECT_FALSE(missing.has_value());
  });
}

TYPED_TEST_P(StoreConformance, RangeReadsAKeyAPrefixAndEverything) {
  this->run([&](Store& store) -> asio::awaitable<void> {
    for (auto name : {"dir/b", "dir/a", "dir/c", "dirt", "other"}) {
      must(co_await store.put(Put{this->key(name), name}));
    }
    auto dir = must(co_await store.range(Range{this->key("dir/"), true}));
    EXPECT_EQ(dir.count, 3);
    EXPECT_EQ(dir.kvs.size(), 3u);
    if (dir.kvs.size() == 3) {
      EXPECT_EQ(dir.kvs[0].key, this->key("dir/a"));  // key order
      EXPECT_EQ(dir.kvs[2].key, this->key("dir/c"));
    }
    auto ours = must(co_await store.range(Range{this->key(""), true}));
    EXPECT_EQ(ours.count, 5);
    // The empty prefix selects every key in the store, ours among them.
    auto all = must(co_await store.range(Range{"", true}));
    EXPECT_GE(all.count, 5);
    std::size_t found = 0;
    for (const auto& kv : all.kvs) found += kv.key.starts_with(this->key("")) ? 1 : 0;
    EXPECT_EQ(found, 5u);
    auto exact = must(co_await store.range(Range{this->key("dir")}));
    EXPECT_EQ(exact.count, 0);
  });
}

TYPED_TEST_P(StoreConformance, RangeHonoursLimitKeysOnlyAndCountOnly) {
  this->run([&](Store& store) -> asio::awaitable<void> {
    for (int i = 0; i < 5; ++i) {
      must(co_await store.put(Put{this->key(fmt::format("k{}", i)), "value"}));
    }
    Range limited{this->key("k"), true};
    limited.limit = 2;
    auto page = must(co_await store.range(limited));
    EXPECT_EQ(page.kvs.size(), 2u);
    EXPECT_EQ(page.count, 5);
    EXPECT_TRUE(page.more);
    Range keys{this->key("k"), true};
    keys.keys_only = true;
    auto names = must(co_await store.range(keys));
    EXPECT_EQ(names.kvs.size(), 5u);
    for (const auto& kv : names.kvs) {
      EXPECT_EQ(kv.value, "");
    }
    Range counted{this->key("k"), true};
    counted.count_only = true;
    auto count = must(co_await store.range(counted));
    EXPECT_EQ(count.count, 5);
    EXPECT_TRUE(count.kvs.empty());
  });
}

TYPED_TEST_P(StoreConformance, RangeAtAnOldRevisionSeesTheOldState) {
  this->run([&](Store& store) -> asio::awaitable<void> {
    auto v1 = must(co_await store.put(Put{this->key("x"), "one"}));
    must(co_await store.put(Put{this->key("x"), "two"}));
    auto gone = must(co_await store.erase(Delete{this->key("x")}));
    Range old{this->key("x")};
    old.revision = v1.revision;
    auto then = must(co_await store.range(old));
    EXPECT_EQ(then.kvs.size(), 1u);
    if (!then.kvs.empty()) {
      EXPECT_EQ(then.kvs[0].value, "one");
    }
    old.revision = gone.revision;
    EXPECT_EQ(must(co_await store.range(old)).count, 0);
    old.revision = gone.revision + 1000000;
    EXPECT_EQ(must_fail(co_await store.range(old)), Code::kFutureRevision);
  });
}

TYPED_TEST_P(StoreConformance, DeleteOneKeyOrAPrefix) {
  this->run([&](Store& store) -> asio::awaitable<void> {
    for (auto name : {"d/1", "d/2", "d/3", "keep"}) {
      must(co_await store.put(Put{this->key(name), name}));
    }
    auto one = must(co_await store.erase(Delete{this->key("d/1"), false, true}));
    EXPECT_EQ(one.deleted, 1);
    EXPECT_EQ(one.prev.size(), 1u);
    if (!one.prev.empty()) {
      EXPECT_EQ(one.prev[0].value, "d/1");
    }
    auto rest = must(co_await store.erase(Delete{this->key("d/"), true}));
    EXPECT_EQ(rest.deleted, 2);
    EXPECT_EQ(rest.revision, one.revision + 1);
    // Deleting nothing writes nothing.
    auto none = must(co_await store.erase(Delete{this->key("d/"), true}));
    EXPECT_EQ(none.deleted, 0);
    EXPECT_EQ(none.revision, rest.revision);
    EXPECT_EQ(must(co_await store.range(Range{this->key(""), true})).count, 1);
  });
}

TYPED_TEST_P(StoreConformance, LargeValuesAndManyKeys) {
  this->run([&](Store& store) -> asio::awaitable<void> {
    std::string large(1 << 20, '\0');
    for (std::size_t i = 0; i < large.size(); ++i) large[i] = static_cast<char>(i * 7919 % 251);
    must(co_await store.put(Put{this->key("large"), large}));
    auto kv = must(co_await get(store, this->key("large")));
    EXPECT_TRUE(kv && kv->value == large);
    constexpr int kKeys = 1000;
    for (int i = 0; i < kKeys; ++i) {
      must(co_await store.put(Put{this->key(fmt::format("many/{:04}", i)), std::to_string(i)}));
    }
    auto all = must(co_await store.range(Range{this->key("many/"), true}));
    EXPECT_EQ(all.count, kKeys);
    EXPECT_EQ(all.kvs.size(), static_cast<std::size_t>(kKeys));
    for (int i = 0; i < kKeys && i < static_cast<int>(all.kvs.size()); ++i) {
      EXPECT_EQ(all.kvs[static_cast<std::size_t>(i)].value, std::to_string(i));
    }
  });
}

TYPED_TEST_P(StoreConformance, TxnComparesEachTarget) {
  this->run([&](Store& store) -> asio::awaitable<void> {
    using Op = Compare::Op;
    const auto k = this->key("t");
    auto put = must(co_await store.put(Put{k, "v1"}));
    auto check = [&](Compare c) { return compare_holds(store, std::move(c)); };
    EXPECT_TRUE(co_await check(Compare::value_is(k, Op::kEqual, "v1")));
    EXPECT_FALSE(co_await check(Compare::value_is(k, Op::kEqual, "v2")));
    EXPECT_TRUE(co_await check(Compare::value_is(k, Op::kLess, "v2")));
    EXPECT_TRUE(co_await check(Compare::value_is(k, Op::kNotEqual, "v2")));
    EXPECT_TRUE(co_await check(Compare::version_is(k, Op::kEqual, 1)));
    EXPECT_TRUE(co_await check(Compare::version_is(k, Op::kGreater, 0)));
    EXPECT_TRUE(co_await check(Compare::create_revision_is(k, Op::kEqual, put.revision)));
    EXPECT_TRUE(co_await check(Compare::mod_revision_is(k, Op::kEqual, put.revision)));
    EXPECT_TRUE(co_await check(Compare::mod_revision_is(k, Op::kLess, put.revision + 1)));
    EXPECT_TRUE(co_await check(Compare::lease_is(k, Op::kEqual, 0)));
    EXPECT_FALSE(co_await check(Compare::absent(k)));
    // A missing key: version and revisions compare as 0.
    EXPECT_TRUE(co_await check(Compare::absent(this->key("nothing"))));
    EXPECT_TRUE(co_await check(Compare::version_is(this->key("nothing"), Op::kEqual, 0)));
    // ...and a value comparison fails whatever the operator.
    EXPECT_FALSE(co_await check(Compare::value_is(this->key("nothing"), Op::kEqual, "")));
    EXPECT_FALSE(co_await check(Compare::value_is(this->key("nothing"), Op::kNotEqual, "x")));
  });
}

TYPED_TEST_P(StoreConformance, TxnRunsOneBranchAtomically) {
  this->run([&](Store& store) -> asio::awaitable<void> {
    const auto lock = this->key("lock");
    Txn take{{Compare::absent(lock)},
             {Put{lock, "me"}, Put{this->key("owner"), "me"}, Range{this->key("owner")}},
             {Range{lock}}};
    auto won = must(co_await store.txn(take));
    EXPECT_TRUE(won.succeeded);
    EXPECT_EQ(won.results.size(), 3u);
    if (won.results.size() == 3) {
      // A read in the branch sees the branch's own earlier writes.
      const auto& read = std::get<RangeResult>(won.results[2]);
      EXPECT_EQ(read.kvs.size(), 1u);
    }
    auto a = must(co_await get(store, lock));
    auto b = must(co_await get(store, this->key("owner")));
    EXPECT_TRUE(a && b && a->mod_revision == b->mod_revision && a->mod_revision == won.revision);
    auto lost = must(co_await store.txn(take));
    EXPECT_FALSE(lost.succeeded);
    EXPECT_EQ(lost.results.size(), 1u);
    if (lost.results.size() == 1) {
      const auto& read = std::get<RangeResult>(lost.results[0]);
      EXPECT_TRUE(read.kvs.size() == 1 && read.kvs[0].value == "me");
    }
    // Nothing written: the revision stays.
    EXPECT_EQ(lost.revision, won.revision);
  });
}

TYPED_TEST_P(StoreConformance, TxnConflictLetsOnlyOneWriterWin) {
  this->run([&](Store& store) -> asio::awaitable<void> {
    const auto k = this->key("counter");
    must(co_await store.put(Put{k, "0"}));
    auto seen = must(co_await get(store, k));
    // Two read-modify-writes from the same read: the second is refused.
    auto write = [&](std::string value) {
      return compare_holds(store,
                           Compare::mod_revision_is(k, Compare::Op::kEqual, seen->mod_revision),
                           Put{k, std::move(value)});
    };
    EXPECT_TRUE(co_await write("1"));
    EXPECT_FALSE(co_await write("2"));
    EXPECT_EQ(must(co_await get(store, k))->value, "1");
  });
}

TYPED_TEST_P(StoreConformance, TxnRefusesADuplicateKey) {
  this->run([&](Store& store) -> asio::awaitable<void> {
    const auto k = this->key("dup");
    // (Built outside the co_await expression: GCC 12 rejects nested braced
    // lists of string literals there with "array used as initializer".)
    Txn twice;
    twice.success = {Put{k, std::string("1")}, Put{k, std::string("2")}};
    auto refused = co_await store.txn(std::move(twice));
    EXPECT_EQ(must_fail(refused), Code::kInvalidArgument);
    EXPECT_FALSE(must(co_await get(store, k)).has_value());
  });
}

TYPED_TEST_P(StoreConformance, LeasesGrantRenewReportAndRevoke) {
  this->run([&](Store& store) -> asio::awaitable<void> {
    const auto asked = this->backend_.lease_ttl();
    auto lease = must(co_await store.grant(asked));
    EXPECT_GE(lease.ttl, asked);
    EXPECT_NE(lease.id, 0);
    must(co_await store.put(Put{this->key("a"), "1", lease.id}));
    must(co_await store.put(Put{this->key("b"), "2", lease.id}));
    auto kv = must(co_await get(store, this->key("a")));
    EXPECT_TRUE(kv && kv->lease == lease.id);
    EXPECT_EQ(must(co_await store.keepalive(lease.id)), lease.ttl);
    auto status = must(co_await store.time_to_live(lease.id, true));
    EXPECT_EQ(status.granted, lease.ttl);
    EXPECT_LE(status.remaining, lease.ttl);
    EXPECT_GE(status.remaining, lease.ttl - 1s);
    std::sort(status.keys.begin(), status.keys.end());
    EXPECT_EQ(status.keys, (std::vector<std::string>{this->key("a"), this->key("b")}));
    auto watch = must(co_await store.watch(WatchOptions{this->key(""), true}));
    must(co_await store.revoke(lease.id));
    // Revoking deletes the lease's keys, in one revision.
    auto events = co_await next_events(*watch, 2);
    EXPECT_EQ(events[0].type, WatchEvent::Type::kDelete);
    EXPECT_EQ(events[1].type, WatchEvent::Type::kDelete);
    EXPECT_EQ(events[0].kv.mod_revision, events[1].kv.mod_revision);
    EXPECT_EQ(must(co_await store.range(Range{this->key(""), true})).count, 0);
    EXPECT_EQ(must_fail(co_await store.keepalive(lease.id)), Code::kLeaseNotFound);
    EXPECT_EQ(must_fail(co_await store.time_to_live(lease.id)), Code::kLeaseNotFound);
    EXPECT_EQ(must_fail(co_await store.revoke(lease.id)), Code::kLeaseNotFound);
    EXPECT_EQ(must_fail(co_await store.put(Put{this->key("c"), "3", lease.id})),
              Code::kLeaseNotFound);
  });
}

TYPED_TEST_P(StoreConformance, LeaseExpiryDeletesKeysAndFiresWatchDeletes) {
  this->run([&](Store& store) -> asio::awaitable<void> {
    auto lease = must(co_await store.grant(this->backend_.lease_ttl()));
    must(co_await store.put(Put{this->key("owned"), "x", lease.id}));
    must(co_await store.put(Put{this->key("kept"), "y"}));
    WatchOptions options{this->key(""), true};
    options.prev_kv = true;
    auto watch = must(co_await store.watch(options));
    co_await this->backend_.pass_time(lease.ttl + 1500ms);
    auto events = co_await next_events(*watch, 1);
    EXPECT_EQ(events[0].type, WatchEvent::Type::kDelete);
    EXPECT_EQ(events[0].kv.key, this->key("owned"));
    EXPECT_TRUE(events[0].prev && events[0].prev->value == "x");
    EXPECT_FALSE(must(co_await get(store, this->key("owned"))).has_value());
    EXPECT_TRUE(must(co_await get(store, this->key("kept"))).has_value());
    EXPECT_EQ(must_fail(co_await store.keepalive(lease.id)), Code::kLeaseNotFound);
  });
}

TYPED_TEST_P(StoreConformance, KeepaliveKeepsALeaseAlive) {
  this->run([&](Store& store) -> asio::awaitable<void> {
    auto lease = must(co_await store.grant(this->backend_.lease_ttl()));
    must(co_await store.put(Put{this->key("alive"), "x", lease.id}));
    for (int i = 0; i < 4; ++i) {
      co_await this->backend_.pass_time(
          std::chrono::duration_cast<std::chrono::milliseconds>(lease.ttl) / 2);
      must(co_await store.keepalive(lease.id));
    }
    EXPECT_TRUE(must(co_await get(store, this->key("alive"))).has_value());
    must(co_await store.revoke(lease.id));
  });
}

TYPED_TEST_P(StoreConformance, WatchDeliversPutsAndDeletesWithPreviousValues) {
  this->run([&](Store& store) -> asio::awaitable<void> {
    const auto k = this->key("w");
    WatchOptions options{k};
    options.prev_kv = true;
    auto watch = must(co_await store.watch(options));
    auto p1 = must(co_await store.put(Put{k, "1"}));
    auto p2 = must(co_await store.put(Put{k, "2"}));
    auto d = must(co_await store.erase(Delete{k}));
    auto events = co_await next_events(*watch, 3);
    EXPECT_EQ(events.size(), 3u);
    EXPECT_EQ(events[0].type, WatchEvent::Type::kPut);
    EXPECT_EQ(events[0].kv.value, "1");
    EXPECT_EQ(events[0].kv.mod_revision, p1.revision);
    EXPECT_FALSE(events[0].prev.has_value());
    EXPECT_EQ(events[1].kv.mod_revision, p2.revision);
    EXPECT_TRUE(events[1].prev && events[1].prev->value == "1");
    EXPECT_EQ(events[2].type, WatchEvent::Type::kDelete);
    EXPECT_EQ(events[2].kv.key, k);
    EXPECT_EQ(events[2].kv.mod_revision, d.revision);
    EXPECT_TRUE(events[2].prev && events[2].prev->value == "2");
  });
}

TYPED_TEST_P(StoreConformance, WatchOnAPrefixSeesOnlyItsKeys) {
  this->run([&](Store& store) -> asio::awaitable<void> {
    auto watch = must(co_await store.watch(WatchOptions{this->key("in/"), true}));
    must(co_await store.put(Put{this->key("out"), "x"}));
    must(co_await store.put(Put{this->key("in/a"), "a"}));
    must(co_await store.put(Put{this->key("inside"), "x"}));
    must(co_await store.put(Put{this->key("in/b"), "b"}));
    auto events = co_await next_events(*watch, 2);
    EXPECT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].kv.key, this->key("in/a"));
    EXPECT_EQ(events[1].kv.key, this->key("in/b"));
    EXPECT_FALSE(events[0].prev.has_value());  // not asked for
  });
}

TYPED_TEST_P(StoreConformance, WatchFromAnOldRevisionReplaysHistory) {
  this->run([&](Store& store) -> asio::awaitable<void> {
    const auto k = this->key("h");
    std::vector<Revision> revisions;
    for (int i = 0; i < 5; ++i) {
      revisions.push_back(must(co_await store.put(Put{k, std::to_string(i)})).revision);
    }
    revisions.push_back(must(co_await store.erase(Delete{k})).revision);
    WatchOptions options{k};
    options.start_revision = revisions[1];
    auto watch = must(co_await store.watch(options));
    auto events = co_await next_events(*watch, 5);
    EXPECT_EQ(events.size(), 5u);
    for (std::size_t i = 0; i < 5 && i < events.size(); ++i) {
      EXPECT_EQ(events[i].kv.mod_revision, revisions[i + 1]);
    }
    EXPECT_EQ(events[0].kv.value, "1");
    EXPECT_EQ(events[4].type, WatchEvent::Type::kDelete);
    // Then live changes follow, without a gap.
    auto later = must(co_await store.put(Put{k, "again"}));
    auto live = co_await next_events(*watch, 1);
    EXPECT_EQ(live[0].kv.mod_revision, later.revision);
  });
}

TYPED_TEST_P(StoreConformance, CancelEndsAWatch) {
  this->run([&](Store& store) -> asio::awaitable<void> {
    auto watch = must(co_await store.watch(WatchOptions{this->key("c")}));
    watch->cancel();
    EXPECT_EQ(must_fail(co_await watch->next()), Code::kCanceled);
  });
}

TYPED_TEST_P(StoreConformance, CompactionMakesOldRevisionsUnavailable) {
  this->run([&](Store& store) -> asio::awaitable<void> {
    const auto k = this->key("old");
    auto first = must(co_await store.put(Put{k, "1"}));
    auto second = must(co_await store.put(Put{k, "2"}));
    must(co_await store.put(Put{k, "3"}));
    must(co_await store.compact(second.revision));
    Range before{k};
    before.revision = first.revision;
    EXPECT_EQ(must_fail(co_await store.range(before)), Code::kCompacted);
    Range at{k};
    at.revision = second.revision;
    auto then = must(co_await store.range(at));
    EXPECT_TRUE(then.kvs.size() == 1 && then.kvs[0].value == "2");
    WatchOptions options{k};
    options.start_revision = first.revision;
    auto watch = must(co_await store.watch(options));
    EXPECT_EQ(must_fail(co_await watch->next()), Code::kCompacted);
    EXPECT_EQ(watch->compact_revision(), second.revision);
    EXPECT_EQ(must_fail(co_await store.compact(first.revision)), Code::kCompacted);
  });
}

TYPED_TEST_P(StoreConformance, ManyClientsRaceForOneLockAndOneWinsEachRound) {
  this->run([&](Store& main) -> asio::awaitable<void> {
    constexpr int kClients = 8;
    constexpr int kRounds = 10;
    const auto lock = this->key("lock");
    auto executor = co_await asio::this_coro::executor;
    std::vector<std::unique_ptr<Store>> clients;
    for (int i = 0; i < kClients; ++i) clients.push_back(this->backend_.connect(executor));
    for (int round = 0; round < kRounds; ++round) {
      int winners = 0;
      int finished = 0;
      asio::steady_timer all_done(executor, asio::steady_timer::time_point::max());
      for (int i = 0; i < kClients; ++i) {
        asio::co_spawn(executor,
                       try_lock(*clients[static_cast<std::size_t>(i)], lock, std::to_string(i),
                                winners, finished, kClients, all_done),
                       asio::detached);
      }
      co_await all_done.async_wait(asio::as_tuple(asio::use_awaitable));
      EXPECT_EQ(winners, 1) << "round " << round;
      must(co_await main.erase(Delete{lock}));
    }
  });
}

REGISTER_TYPED_TEST_SUITE_P(
    StoreConformance, PutAssignsRevisionsAndVersions, RangeReadsAKeyAPrefixAndEverything,
    RangeHonoursLimitKeysOnlyAndCountOnly, RangeAtAnOldRevisionSeesTheOldState,
    DeleteOneKeyOrAPrefix, LargeValuesAndManyKeys, TxnComparesEachTarget,
    TxnRunsOneBranchAtomically, TxnConflictLetsOnlyOneWriterWin, TxnRefusesADuplicateKey,
    LeasesGrantRenewReportAndRevoke, LeaseExpiryDeletesKeysAndFiresWatchDeletes,
    KeepaliveKeepsALeaseAlive, WatchDeliversPutsAndDeletesWithPreviousValues,
    WatchOnAPrefixSeesOnlyItsKeys, WatchFromAnOldRevisionReplaysHistory, CancelEndsAWatch,
    CompactionMakesOldRevisionsUnavailable, ManyClientsRaceForOneLockAndOneWinsEachRound);

}  // namespace clusweb::store::testing
