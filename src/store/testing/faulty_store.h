#pragma once

#include <deque>

#include "store/store.h"

namespace clusweb::store::testing {

// Wraps any Store and injects faults into the calls that pass through it:
//   lose_reply()   the next write (put, erase, txn) is applied by the real
//                  store, but the caller gets kUnknownOutcome, as when the
//                  connection breaks after the request was sent;
//   refuse(code)   the next call of any kind fails with `code` without
//                  reaching the store (kUnavailable: an endpoint down).
// Faults queue up and are used in order. Watches pass through untouched.
class FaultyStore final : public Store {
 public:
  explicit FaultyStore(Store& inner) : inner_(inner) {}

  void lose_reply() { faults_.push_back(Fault{true, Code::kUnknownOutcome}); }
  void refuse(Code code) { faults_.push_back(Fault{false, code}); }
  int injected() const { return injected_; }

  boost::asio::any_io_executor get_executor() const override { return inner_.get_executor(); }

  boost::asio::awaitable<Result<RangeResult>> range(Range request) override {
    if (auto fault = take()) co_return *fault;
    co_return co_await inner_.range(std::move(request));
  }
  boost::asio::awaitable<Result<PutResult>> put(Put request) override {
    co_return co_await write(inner_.put(std::move(request)));
  }
  boost::asio::awaitable<Result<DeleteResult>> erase(Delete request) override {
    co_return co_await write(inner_.erase(std::move(request)));
  }
  boost::asio::awaitable<Result<TxnResult>> txn(Txn request) override {
    co_return co_await write(inner_.txn(std::move(request)));
  }
  boost::asio::awaitable<Status> compact(Revision revision) override {
    if (auto fault = take()) co_return *fault;
    co_return co_await inner_.compact(revision);
  }
  boost::asio::awaitable<Result<LeaseGrant>> grant(std::chrono::seconds ttl, LeaseId id) override {
    if (auto fault = take()) co_return *fault;
    co_return co_await inner_.grant(ttl, id);
  }
  boost::asio::awaitable<Result<std::chrono::seconds>> keepalive(LeaseId id) override {
    if (auto fault = take()) co_return *fault;
    co_return co_await inner_.keepalive(id);
  }
  boost::asio::awaitable<Status> revoke(LeaseId id) override {
    if (auto fault = take()) co_return *fault;
    co_return co_await inner_.revoke(id);
  }
  boost::asio::awaitable<Result<LeaseStatus>> time_to_live(LeaseId id, bool with_keys) override {
    if (auto fault = take()) co_return *fault;
    co_return co_await inner_.time_to_live(id, with_keys);
  }
  boost::asio::awaitable<Result<std::unique_ptr<Watch>>> watch(WatchOptions options) override {
    return inner_.watch(std::move(options));
  }
  boost::asio::awaitable<Result<StoreHealth>> members(std::chrono::milliseconds timeout) override {
    if (auto fault = take()) co_return *fault;
    co_return co_await inner_.members(timeout);
  }

 private:
  struct Fault {
    bool after_applying;  // lose the reply of a write that was applied
    Code code;
  };

  // The error to return instead of calling the store, if a fault is due.
  std::optional<Error> take() {
    // A lost reply is injected after the write, by write().
    if (faults_.empty() || faults_.front().after_applying) return std::nullopt;
    Fault fault = faults_.front();
    faults_.pop_front();
    ++injected_;
    return store_error(fault.code, "injected fault");
  }

  template <class T>
  boost::asio::awaitable<Result<T>> write(boost::asio::awaitable<Result<T>> call) {
    if (auto fault = take()) co_return *fault;
    auto result = co_await std::move(call);
    if (!faults_.empty() && faults_.front().after_applying) {
      faults_.pop_front();
      ++injected_;
      co_return store_error(Code::kUnknownOutcome, "injected fault: the reply was lost");
    }
    co_return result;
  }

  Store& inner_;
  std::deque<Fault> faults_;
  int injected_ = 0;
};

}  // namespace clusweb::store::testing
