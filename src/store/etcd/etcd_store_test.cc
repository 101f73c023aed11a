#include "store/etcd/etcd_store.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "store/etcd/testing/etcd_cluster.h"
#include "store/etcd/testing/run_until_done.h"

namespace clusweb::store {
namespace {

using namespace std::chrono_literals;
using testing::EtcdCluster;
using testing::run_until_done;

EtcdOptions options_for(std::vector<std::string> endpoints) {
  EtcdOptions options;
  options.endpoints = std::move(endpoints);
  return options;
}

Range range_at(std::string key, bool prefix, Revision revision, std::int64_t limit = 0) {
  Range range(std::move(key), prefix);
  range.revision = revision;
  range.limit = limit;
  return range;
}

WatchOptions watch_from(std::string key, bool prefix, Revision start, bool prev_kv = false) {
  WatchOptions options(std::move(key), prefix);
  options.start_revision = start;
  options.prev_kv = prev_kv;
  return options;
}

// Tests without a server.
TEST(EtcdOptionsTest, ChecksEndpoints) {
  EXPECT_FALSE(check_options(EtcdOptions{}));
  EXPECT_TRUE(check_options(options_for({"127.0.0.1:2379", "localhost:1"})));
  for (const char* bad :
       {"127.0.0.1", "http://127.0.0.1:2379", "host:", "host:x", "host:70000", ":2379"}) {
    SCOPED_TRACE(bad);
    auto status = check_options(options_for({bad}));
    ASSERT_FALSE(status);
    EXPECT_EQ(code_of(status.error()), Code::kInvalidArgument);
  }
}

TEST(EtcdOptionsTest, ReadsTlsFiles) {
  char dir[] = "/tmp/clusweb-etcd-options-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string ca = std::string(dir) + "/ca.pem";
  std::ofstream(ca) << "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";
  EtcdOptions options = options_for({"127.0.0.1:2379"});
  options.tls = EtcdTls{ca, "", ""};
  EXPECT_TRUE(check_options(options));

  options.tls = EtcdTls{std::string(dir) + "/missing.pem", "", ""};
  auto missing = check_options(options);
  ASSERT_FALSE(missing);
  EXPECT_EQ(code_of(missing.error()), Code::kInvalidArgument);
  EXPECT_EQ(missing.error().where, std::string(dir) + "/missing.pem");

  options.tls = EtcdTls{ca, ca, ""};  // a certificate without its key
  EXPECT_FALSE(check_options(options));
  options.tls = EtcdTls{ca, ca, ca};
  EXPECT_TRUE(check_options(options));

  options.credentials = EtcdCredentials{"", "secret"};
  EXPECT_FALSE(check_options(options));
  std::remove(ca.c_str());
  ::rmdir(dir);
}

TEST(EtcdOptionsTest, InvalidOptionsFailEveryCall) {
  boost::asio::io_context io;
  EXPECT_FALSE(EtcdStore::create(io.get_executor(), EtcdOptions{}));
  EtcdStore store(io.get_executor(), EtcdOptions{});
  auto result = run_until_done(io, store.range(Range{"k"}));
  ASSERT_FALSE(result);
  EXPECT_EQ(code_of(result.error()), Code::kInvalidArgument);
  auto watch = run_until_done(io, store.watch(WatchOptions{"k"}));
  ASSERT_FALSE(watch);
  EXPECT_EQ(code_of(watch.error()), Code::kInvalidArgument);
}

TEST(EtcdOptionsTest, NobodyListeningIsUnavailableEvenForWrites) {
  boost::asio::io_context io;
  // Port 1 on loopback: nothing listens there, connections are refused.
  EtcdStore store(io.get_executor(), options_for({"127.0.0.1:1", "127.0.0.1:1"}));
  auto started = std::chrono::steady_clock::now();
  auto read = run_until_done(io, store.range(Range{"k"}));
  ASSERT_FALSE(read);
  EXPECT_EQ(code_of(read.error()), Code::kUnavailable) << read.error().describe();
  // Nothing was sent, so a write is not "unknown outcome".
  auto write = run_until_done(io, store.put(Put{"k", "v"}));
  ASSERT_FALSE(write);
  EXPECT_EQ(code_of(write.error()), Code::kUnavailable) << write.error().describe();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
  EXPECT_EQ(store.calls_made(), 4u);
}

// One single-member cluster for the suite; each test uses its own prefix.
class EtcdStoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto started = EtcdCluster::start();
    ASSERT_TRUE(started) << started.error().describe();
    cluster_ = std::move(*started).release();
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(cluster_, nullptr);
    store_ = connect();
    prefix_ =
        std::string("/") + ::testing::UnitTest::GetInstance()->current_test_info()->name() + "/";
  }

  std::unique_ptr<EtcdStore> connect(std::chrono::milliseconds timeout = 500ms) {
    EtcdOptions options = options_for(cluster_->endpoints());
    options.call_timeout = timeout;
    auto store = EtcdStore::create(io_.get_executor(), options);
    EXPECT_TRUE(store);
    return std::move(*store);
  }

  template <class T>
  T sync(boost::asio::awaitable<T> task) {
    return run_until_done(io_, std::move(task));
  }

  Revision put(const std::string& key, const std::string& value, LeaseId lease = 0) {
    auto result = sync(store_->put(Put{prefix_ + key, value, lease}));
    EXPECT_TRUE(result) << result.error().describe();
    return result ? result->revision : 0;
  }

  static EtcdCluster* cluster_;
  boost::asio::io_context io_;
  std::unique_ptr<EtcdStore> store_;
  std::string prefix_;
};

EtcdCluster* EtcdStoreTest::cluster_ = nullptr;

TEST_F(EtcdStoreTest, RangeWithPrefixLimitAndRevision) {
  Revision first = put("a/1", "x");
  put("a/2", "y");
  put("a/3", "z");
  put("b/1", "w");

  auto all = sync(store_->range(Range{prefix_ + "a/", true}));
  ASSERT_TRUE(all) << all.error().describe();
  ASSERT_EQ(all->kvs.size(), 3u);
  EXPECT_EQ(all->kvs[0].key, prefix_ + "a/1");
  EXPECT_EQ(all->kvs[2].value, "z");
  EXPECT_EQ(all->count, 3);
  EXPECT_FALSE(all->more);
  EXPECT_EQ(all->kvs[0].create_revision, first);
  EXPECT_EQ(all->kvs[0].version, 1);

  auto limited = sync(store_->range(range_at(prefix_ + "a/", true, 0, 2)));
  ASSERT_TRUE(limited);
  EXPECT_EQ(limited->kvs.size(), 2u);
  EXPECT_EQ(limited->count, 3);
  EXPECT_TRUE(limited->more);

  auto past = sync(store_->range(range_at(prefix_ + "a/", true, first)));
  ASSERT_TRUE(past);
  ASSERT_EQ(past->kvs.size(), 1u);
  EXPECT_EQ(past->kvs[0].key, prefix_ + "a/1");

  Range keys_only{prefix_, true};
  keys_only.keys_only = true;
  auto keys = sync(store_->range(keys_only));
  ASSERT_TRUE(keys);
  ASSERT_EQ(keys->kvs.size(), 4u);
  EXPECT_EQ(keys->kvs[3].key, prefix_ + "b/1");
  EXPECT_TRUE(keys->kvs[3].value.empty());

  Range count_only{prefix_, true};
  count_only.count_only = true;
  auto counted = sync(store_->range(count_only));
  ASSERT_TRUE(counted);
  EXPECT_EQ(counted->count, 4);
  EXPECT_TRUE(counted->kvs.empty());

  auto everything = sync(store_->range(Range{"", true}));
  ASSERT_TRUE(everything);
  EXPECT_GE(everything->count, 4);
  EXPECT_GE(everything->revision, first + 3);

  auto single = sync(get(*store_, prefix_ + "a/2"));
  ASSERT_TRUE(single);
  ASSERT_TRUE(single->has_value());
  EXPECT_EQ((*single)->value, "y");
  auto missing = sync(get(*store_, prefix_ + "nothing"));
  ASSERT_TRUE(missing);
  EXPECT_FALSE(missing->has_value());

  auto future = sync(store_->range(range_at(prefix_, true, everything->revision + 1000)));
  ASSERT_FALSE(future);
  EXPECT_EQ(code_of(future.error()), Code::kFutureRevision) << future.error().describe();
}

TEST_F(EtcdStoreTest, PutReturnsThePreviousValue) {
  Revision created = put("k", "v1");
  auto second = sync(store_->put(Put{prefix_ + "k", "v2", 0, true}));
  ASSERT_TRUE(second) << second.error().describe();
  EXPECT_EQ(second->revision, created + 1);
  ASSERT_TRUE(second->prev);
  EXPECT_EQ(second->prev->value, "v1");
  EXPECT_EQ(second->prev->mod_revision, created);
  auto fresh = sync(store_->put(Put{prefix_ + "new", "v", 0, true}));
  ASSERT_TRUE(fresh);
  EXPECT_FALSE(fresh->prev);
  auto read = sync(get(*store_, prefix_ + "k"));
  ASSERT_TRUE(read && read->has_value());
  EXPECT_EQ((*read)->version, 2);
  EXPECT_EQ((*read)->create_revision, created);
}

TEST_F(EtcdStoreTest, DeletePrefix) {
  put("d/1", "a");
  put("d/2", "b");
  Revision last = put("e", "c");
  auto erased = sync(store_->erase(Delete{prefix_ + "d/", true, true}));
  ASSERT_TRUE(erased) << erased.error().describe();
  EXPECT_EQ(erased->deleted, 2);
  EXPECT_EQ(erased->revision, last + 1);
  ASSERT_EQ(erased->prev.size(), 2u);
  EXPECT_EQ(erased->prev[1].value, "b");
  auto none = sync(store_->erase(Delete{prefix_ + "d/", true}));
  ASSERT_TRUE(none);
  EXPECT_EQ(none->deleted, 0);
  EXPECT_EQ(none->revision, last + 1);
  auto left = sync(store_->range(Range{prefix_, true}));
  ASSERT_TRUE(left);
  ASSERT_EQ(left->kvs.size(), 1u);
  EXPECT_EQ(left->kvs[0].key, prefix_ + "e");
}

TEST_F(EtcdStoreTest, TxnComparesEachTarget) {
  auto lease = sync(store_->grant(10s));
  ASSERT_TRUE(lease) << lease.error().describe();
  Revision created = put("t", "v", lease->id);
  const std::string key = prefix_ + "t";
  using Op = Compare::Op;
  struct Case {
    Compare compare;
    bool holds;
  };
  const Case cases[] = {
      {Compare::value_is(key, Op::kEqual, "v"), true},
      {Compare::value_is(key, Op::kNotEqual, "v"), false},
      {Compare::version_is(key, Op::kEqual, 1), true},
      {Compare::version_is(key, Op::kGreater, 1), false},
      {Compare::create_revision_is(key, Op::kEqual, created), true},
      {Compare::mod_revision_is(key, Op::kLess, created + 1), true},
      {Compare::mod_revision_is(key, Op::kGreater, created), false},
      {Compare::lease_is(key, Op::kEqual, lease->id), true},
      {Compare::lease_is(key, Op::kNotEqual, lease->id), false},
      {Compare::absent(key), false},
      {Compare::absent(prefix_ + "missing"), true},
      // etcd: a value compare on a missing key is false whatever the value
      // (store.h says a missing key's value compares as "").
      {Compare::value_is(prefix_ + "missing", Op::kEqual, ""), false},
      {Compare::value_is(prefix_ + "missing", Op::kNotEqual, "x"), false},
  };
  for (std::size_t i = 0; i < std::size(cases); ++i) {
    const Case& c = cases[i];
    SCOPED_TRACE(i);
    Txn txn;
    txn.compare.push_back(c.compare);
    txn.success = {Range{key}};
    txn.failure = {Range{prefix_ + "missing"}};
    auto result = sync(store_->txn(txn));
    ASSERT_TRUE(result) << result.error().describe();
    EXPECT_EQ(result->succeeded, c.holds);
    ASSERT_EQ(result->results.size(), 1u);
    EXPECT_EQ(std::get<RangeResult>(result->results[0]).kvs.size(), c.holds ? 1u : 0u);
  }

  // A write branch: one revision for all its operations.
  Txn create;
  create.compare.push_back(Compare::absent(prefix_ + "lock"));
  create.success = {Put{prefix_ + "lock", "me"}, Put{prefix_ + "owner", "me"},
                    Delete{key, false, true}};
  create.failure = {Range{prefix_ + "lock"}};
  auto won = sync(store_->txn(create));
  ASSERT_TRUE(won) << won.error().describe();
  EXPECT_TRUE(won->succeeded);
  ASSERT_EQ(won->results.size(), 3u);
  EXPECT_EQ(std::get<PutResult>(won->results[0]).revision, won->revision);
  EXPECT_EQ(std::get<DeleteResult>(won->results[2]).deleted, 1);
  auto lost = sync(store_->txn(create));
  ASSERT_TRUE(lost);
  EXPECT_FALSE(lost->succeeded);
  EXPECT_EQ(std::get<RangeResult>(lost->results[0]).kvs.at(0).value, "me");
  EXPECT_EQ(lost->revision, won->revision);

  // Two writes of one key in one branch: etcd refuses the txn.
  Txn duplicate;
  duplicate.success = {Put{prefix_ + "x", "1"}, Put{prefix_ + "x", "2"}};
  auto refused = sync(store_->txn(duplicate));
  ASSERT_FALSE(refused);
  EXPECT_EQ(code_of(refused.error()), Code::kInvalidArgument) << refused.error().describe();
}

TEST_F(EtcdStoreTest, Leases) {
  auto lease = sync(store_->grant(1s));
  ASSERT_TRUE(lease) << lease.error().describe();
  EXPECT_NE(lease->id, 0);
  EXPECT_GE(lease->ttl, 1s);  // the server's minimum may be higher
  put("l/1", "a", lease->id);
  put("l/2", "b", lease->id);

  auto renewed = sync(store_->keepalive(lease->id));
  ASSERT_TRUE(renewed) << renewed.error().describe();
  EXPECT_EQ(*renewed, lease->ttl);

  auto status = sync(store_->time_to_live(lease->id, true));
  ASSERT_TRUE(status) << status.error().describe();
  EXPECT_EQ(status->id, lease->id);
  EXPECT_EQ(status->granted, lease->ttl);
  EXPECT_LE(status->remaining, lease->ttl);
  std::sort(status->keys.begin(), status->keys.end());
  EXPECT_EQ(status->keys, (std::vector<std::string>{prefix_ + "l/1", prefix_ + "l/2"}));

  auto chosen = sync(store_->grant(30s, lease->id + 1000));
  ASSERT_TRUE(chosen) << chosen.error().describe();
  EXPECT_EQ(chosen->id, lease->id + 1000);
  EXPECT_EQ(chosen->ttl, 30s);
  EXPECT_TRUE(sync(store_->revoke(chosen->id)));

  ASSERT_TRUE(sync(store_->revoke(lease->id)));
  auto left = sync(store_->range(Range{prefix_ + "l/", true}));
  ASSERT_TRUE(left);
  EXPECT_TRUE(left->kvs.empty());

  auto gone = sync(store_->keepalive(lease->id));
  ASSERT_FALSE(gone);
  EXPECT_EQ(code_of(gone.error()), Code::kLeaseNotFound) << gone.error().describe();
  auto again = sync(store_->revoke(lease->id));
  ASSERT_FALSE(again);
  EXPECT_EQ(code_of(again.error()), Code::kLeaseNotFound) << again.error().describe();
  auto unknown = sync(store_->time_to_live(lease->id));
  ASSERT_FALSE(unknown);
  EXPECT_EQ(code_of(unknown.error()), Code::kLeaseNotFound) << unknown.error().describe();
  auto bound = sync(store_->put(Put{prefix_ + "l/3", "c", lease->id}));
  ASSERT_FALSE(bound);
  EXPECT_EQ(code_of(bound.error()), Code::kLeaseNotFound) << bound.error().describe();
}

TEST_F(EtcdStoreTest, WatchReplaysHistoryThenFollows) {
  Revision first = put("w/1", "a");
  put("w/2", "b");
  put("w/1", "c");
  auto watch = sync(store_->watch(watch_from(prefix_ + "w/", true, first, true)));
  ASSERT_TRUE(watch) << watch.error().describe();

  std::vector<WatchEvent> events;
  while (events.size() < 3) {
    auto batch = sync((*watch)->next());
    ASSERT_TRUE(batch) << batch.error().describe();
    for (auto& event : batch->events) events.push_back(event);
  }
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].kv.mod_revision, first);
  EXPECT_EQ(events[1].kv.key, prefix_ + "w/2");
  EXPECT_EQ(events[2].kv.value, "c");
  ASSERT_TRUE(events[2].prev);
  EXPECT_EQ(events[2].prev->value, "a");

  auto erased = sync(store_->erase(Delete{prefix_ + "w/1"}));
  ASSERT_TRUE(erased);
  auto batch = sync((*watch)->next());
  ASSERT_TRUE(batch) << batch.error().describe();
  ASSERT_EQ(batch->events.size(), 1u);
  EXPECT_EQ(batch->events[0].type, WatchEvent::Type::kDelete);
  EXPECT_EQ(batch->events[0].kv.key, prefix_ + "w/1");
  EXPECT_EQ(batch->events[0].kv.mod_revision, erased->revision);
  EXPECT_EQ(batch->revision, erased->revision);

  (*watch)->cancel();
  auto canceled = sync((*watch)->next());
  ASSERT_FALSE(canceled);
  EXPECT_EQ(code_of(canceled.error()), Code::kCanceled);
}

TEST_F(EtcdStoreTest, WatchFromNowSeesChangesAfterItReturns) {
  auto watch = sync(store_->watch(WatchOptions{prefix_ + "k"}));
  ASSERT_TRUE(watch) << watch.error().describe();
  Revision revision = put("k", "v");
  put("other", "v");
  auto batch = sync((*watch)->next());
  ASSERT_TRUE(batch) << batch.error().describe();
  ASSERT_EQ(batch->events.size(), 1u);
  EXPECT_EQ(batch->events[0].kv.mod_revision, revision);
  EXPECT_FALSE(batch->events[0].prev);
}

TEST_F(EtcdStoreTest, CompactedHistory) {
  Revision old = put("c", "1");
  Revision now = put("c", "2");
  ASSERT_TRUE(sync(store_->compact(now)));

  auto read = sync(store_->range(range_at(prefix_ + "c", false, old)));
  ASSERT_FALSE(read);
  EXPECT_EQ(code_of(read.error()), Code::kCompacted) << read.error().describe();
  auto current = sync(store_->range(range_at(prefix_ + "c", false, now)));
  ASSERT_TRUE(current) << current.error().describe();

  auto watch = sync(store_->watch(watch_from(prefix_ + "c", false, old)));
  ASSERT_TRUE(watch) << watch.error().describe();
  auto next = sync((*watch)->next());
  ASSERT_FALSE(next);
  EXPECT_EQ(code_of(next.error()), Code::kCompacted) << next.error().describe();
  EXPECT_EQ((*watch)->compact_revision(), now);

  auto twice = sync(store_->compact(old));
  ASSERT_FALSE(twice);
  EXPECT_EQ(code_of(twice.error()), Code::kCompacted);
}

TEST_F(EtcdStoreTest, ConcurrentCallsFromManyCoroutines) {
  constexpr int kWriters = 40;
  int done = 0;
  for (int i = 0; i < kWriters; ++i) {
    boost::asio::co_spawn(
        io_,
        [](EtcdStore& store, std::string key, int& finished) -> boost::asio::awaitable<void> {
          auto result = co_await store.put(Put{key, "v"});
          EXPECT_TRUE(result) << result.error().describe();
          ++finished;
        }(*store_, prefix_ + std::to_string(i), done),
        boost::asio::detached);
  }
  io_.restart();
  while (done < kWriters) io_.run_one();
  Range count{prefix_, true};
  count.count_only = true;
  auto counted = sync(store_->range(count));
  ASSERT_TRUE(counted);
  EXPECT_EQ(counted->count, kWriters);
}

TEST_F(EtcdStoreTest, ClosingTheStoreEndsItsWatches) {
  auto watch = sync(store_->watch(WatchOptions{prefix_, true}));
  ASSERT_TRUE(watch) << watch.error().describe();
  std::optional<Result<WatchBatch>> result;
  boost::asio::co_spawn(
      io_,
      [](Watch& w, std::optional<Result<WatchBatch>>& out) -> boost::asio::awaitable<void> {
        out.emplace(co_await w.next());
      }(**watch, result),
      boost::asio::detached);
  io_.restart();
  io_.poll();
  EXPECT_FALSE(result);
  store_.reset();  // cancels the stream and waits for gRPC to let go of it
  while (!result) io_.run_one();
  ASSERT_FALSE(*result);
  EXPECT_EQ(code_of(result->error()), Code::kCanceled) << result->error().describe();
}

TEST_F(EtcdStoreTest, CountsCalls) {
  const auto before = store_->calls_made();
  put("n", "1");
  ASSERT_TRUE(sync(store_->range(Range{prefix_ + "n"})));
  auto lease = sync(store_->grant(5s));
  ASSERT_TRUE(lease);
  ASSERT_TRUE(sync(store_->keepalive(lease->id)));
  EXPECT_EQ(store_->calls_made() - before, 4u);
}

// A write whose reply never comes: the member is frozen (SIGSTOP) before the
// request is sent, so the deadline passes with the outcome unknown. Nothing is
// in flight when it stops (the range before has its reply), and pause()
// returns only once every etcd thread has stopped: a busy machine can let etcd
// run on for a while after kill(SIGSTOP) returns, long enough to answer.
TEST_F(EtcdStoreTest, LostReplyIsUnknownOutcome) {
  auto store = connect(200ms);
  ASSERT_TRUE(sync(store->range(Range{prefix_})));  // connected
  auto paused = cluster_->pause(0);
  ASSERT_TRUE(paused) << paused.error().describe();
  auto write = sync(store->put(Put{prefix_ + "lost", "v"}));
  auto read = sync(store->range(Range{prefix_ + "lost"}));
  auto resumed = cluster_->resume(0);
  ASSERT_TRUE(resumed) << resumed.error().describe();
  ASSERT_FALSE(write);
  EXPECT_EQ(code_of(write.error()), Code::kUnknownOutcome) << write.error().describe();
  ASSERT_FALSE(read);
  EXPECT_EQ(code_of(read.error()), Code::kUnavailable) << read.error().describe();
  // Resolved by reading back once the member runs again (either answer is valid).
  auto resolved = sync(get(*store, prefix_ + "lost"));
  for (int i = 0; i < 20 && !resolved; ++i) resolved = sync(get(*store, prefix_ + "lost"));
  ASSERT_TRUE(resolved) << resolved.error().describe();
  std::printf("lost-reply put applied after all: %s\n", resolved->has_value() ? "yes" : "no");
}

}  // namespace
}  // namespace clusweb::store
