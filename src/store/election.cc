#include "store/election.h"

#include "base/log.h"

namespace clusweb::store {

namespace asio = boost::asio;

Election::Election(Store& store, std::string key, std::string value, LeaseId lease)
    : store_(store), key_(std::move(key)), value_(std::move(value)), lease_(lease) {}

asio::awaitable<Result<bool>> Election::try_acquire() {
  // A lost reply may hide a committed acquire: the same transaction, sent
  // again, fails its compare against our own key, and reading the key back
  // tells. So a retry after kUnknownOutcome is safe; give up after a few.
  for (int attempt = 0; attempt < 3; ++attempt) {
    Txn txn({Compare::absent(key_)}, {Put(key_, value_, lease_)}, {Range(key_)});
    auto result = co_await store_.txn(std::move(txn));
    if (!result) {
      if (code_of(result.error()) != Code::kUnknownOutcome) co_return result.error();
      logger("store")->info("election reply lost key={} attempt={}: reading it back", key_,
                            attempt + 1);
      auto current = co_await get(store_, key_);
      if (!current) continue;
      if (current->has_value() && is_ours(**current)) {
        token_ = (*current)->create_revision;
        co_return true;
      }
      if (current->has_value()) {
        token_ = 0;
        co_return false;
      }
      continue;  // absent: the acquire did not commit; try again
    }
    if (result->succeeded) {
      token_ = result->revision;
      co_return true;
    }
    const auto& read = std::get<RangeResult>(result->results.front());
    if (!read.kvs.empty() && is_ours(read.kvs.front())) {
      // Ours already (an earlier acquire, or one whose reply was lost).
      token_ = read.kvs.front().create_revision;
      co_return true;
    }
    token_ = 0;
    co_return false;
  }
  co_return store_error(Code::kUnknownOutcome, "the outcome of acquiring the key stayed unknown",
                        key_);
}

asio::awaitable<Status> Election::campaign() {
  for (;;) {
    auto acquired = co_await try_acquire();
    if (!acquired) co_return acquired.error();
    if (*acquired) co_return ok_status();
    auto current = co_await leader();
    if (!current) co_return current.error();
    if (!current->has_value()) continue;
    auto changed = co_await observe((*current)->create_revision);
    if (!changed) co_return changed.error();
  }
}

asio::awaitable<Status> Election::resign() {
  if (token_ == 0) co_return ok_status();
  Txn txn({Compare::create_revision_is(key_, Compare::Op::kEqual, token_)}, {Delete(key_)});
  auto result = co_await store_.txn(std::move(txn));
  if (!result && code_of(result.error()) != Code::kUnknownOutcome) co_return result.error();
  // Deleting is idempotent under the compare: a lost reply is harmless.
  token_ = 0;
  co_return ok_status();
}

asio::awaitable<Result<std::optional<KeyValue>>> Election::leader() {
  co_return co_await get(store_, key_);
}

asio::awaitable<Result<std::optional<KeyValue>>> Election::observe(Revision create_revision) {
  for (;;) {
    auto current = co_await store_.range(Range(key_));
    if (!current) co_return current.error();
    std::optional<KeyValue> now;
    if (!current->kvs.empty()) now = current->kvs.front();
    if ((now ? now->create_revision : 0) != create_revision) co_return now;
    // Unchanged as of this revision: watch from the next one, so nothing
    // between the read and the watch is missed.
    WatchOptions options(key_);
    options.start_revision = current->revision + 1;
    auto watch = co_await store_.watch(std::move(options));
    if (!watch) co_return watch.error();
    for (;;) {
      auto batch = co_await (*watch)->next();
      if (!batch) {
        if (code_of(batch.error()) == Code::kCompacted) break;  // read again
        co_return batch.error();
      }
      std::optional<KeyValue> latest = now;
      bool seen = false;
      for (const auto& event : batch->events) {
        seen = true;
        if (event.type == WatchEvent::Type::kDelete) {
          latest.reset();
        } else {
          latest = event.kv;
        }
      }
      if (seen && (latest ? latest->create_revision : 0) != create_revision) co_return latest;
    }
  }
}

}  // namespace clusweb::store
