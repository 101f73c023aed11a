#pragma once

#include <boost/asio/steady_timer.hpp>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <vector>

#include "base/atomic_file.h"
#include "base/clock.h"
#include "store/store.h"

namespace clusweb::store {

struct MemoryStoreOptions {
  // Where the state is kept across restarts; empty = memory only. Each
  // committed revision is written (write_file_atomically) before the write
  // is acknowledged. Leases are not kept, nor the keys bound to them.
  std::filesystem::path state_file;
  FileSystem* file_system = nullptr;  // nullptr = the operating system's
  // How often leases are checked for expiry on the executor; 0 = only when
  // expire_leases() is called or an operation runs (tests with a ManualClock).
  std::chrono::milliseconds expiry_interval{100};
};

class MemoryWatch;

// The Store in process: etcd's semantics (revisions from 1, MVCC reads at a
// revision until compacted, leases on `clock`, watches replaying history),
// for one-node deployments and tests. Single-threaded: use it from its
// executor. Every operation first yields to the executor once, so
// concurrent callers interleave as they would against a server.
class MemoryStore final : public Store {
 public:
  // Loads `options.state_file` when it exists; an unreadable or damaged file
  // is an error (never taken as an empty store).
  static Result<std::unique_ptr<MemoryStore>> open(boost::asio::any_io_executor executor,
                                                   const Clock& clock,
                                                   MemoryStoreOptions options = {});
  ~MemoryStore() override;
  MemoryStore(const MemoryStore&) = delete;
  MemoryStore& operator=(const MemoryStore&) = delete;

  // Ends every lease whose TTL has run out by the clock, deleting its keys.
  void expire_leases();
  // Another handle on the same data, as a second client would have; it must
  // not outlive this store.
  std::unique_ptr<Store> client();
  Revision revision() const { return revision_; }

  boost::asio::any_io_executor get_executor() const override { return executor_; }
  boost::asio::awaitable<Result<RangeResult>> range(Range request) override;
  boost::asio::awaitable<Result<PutResult>> put(Put request) override;
  boost::asio::awaitable<Result<DeleteResult>> erase(Delete request) override;
  boost::asio::awaitable<Result<TxnResult>> txn(Txn request) override;
  boost::asio::awaitable<Status> compact(Revision revision) override;
  boost::asio::awaitable<Result<LeaseGrant>> grant(std::chrono::seconds ttl,
                                                   LeaseId id = 0) override;
  boost::asio::awaitable<Result<std::chrono::seconds>> keepalive(LeaseId id) override;
  boost::asio::awaitable<Status> revoke(LeaseId id) override;
  boost::asio::awaitable<Result<LeaseStatus>> time_to_live(LeaseId id,
                                                           bool with_keys = false) override;
  boost::asio::awaitable<Result<std::unique_ptr<Watch>>> watch(WatchOptions options) override;
  // One member, this process: healthy and leader.
  boost::asio::awaitable<Result<StoreHealth>> members(std::chrono::milliseconds timeout) override;

 private:
  friend class MemoryWatch;

  // One stored version of a key; a tombstone records a delete.
  struct Version {
    Revision revision = 0;
    bool tombstone = false;
    KeyValue kv;
  };
  struct Lease {
    std::chrono::seconds ttl{0};
    Clock::TimePoint deadline;
    std::set<std::string> keys;
  };
  struct LoggedEvent {
    Revision revision = 0;
    WatchEvent event;  // prev always recorded
  };
  // The writes of one revision in the making.
  struct Batch {
    Revision revision = 0;
    std::vector<WatchEvent> events;
  };

  MemoryStore(boost::asio::any_io_executor executor, const Clock& clock,
              MemoryStoreOptions options);
  Status load();
  std::string serialize() const;
  void schedule_expiry();

  const KeyValue* current(const std::string& key) const;
  std::vector<const KeyValue*> select(const std::string& key, bool prefix, Revision at) const;
  // Reads as if `current` were the latest revision (a transaction's reads
  // see the revision it is writing).
  Result<RangeResult> do_range(const Range& request, Revision current) const;
  PutResult do_put(Batch& batch, const Put& request);
  DeleteResult do_delete(Batch& batch, const Delete& request);
  bool holds(const Compare& compare) const;
  Status check_writes(const std::vector<Operation>& operations) const;
  // Makes the batch's revision current: persists it, then tells watchers.
  // When persisting fails the batch is undone and the error returned, unless
  // `undo_on_failure` is false (lease expiry: the keys are gone regardless).
  Status commit(Batch& batch, bool undo_on_failure = true);
  void undo(const Batch& batch);
  void revoke_lease(LeaseId id);
  boost::asio::awaitable<void> yield();

  boost::asio::any_io_executor executor_;
  const Clock& clock_;
  MemoryStoreOptions options_;
  FileSystem& files_;
  boost::asio::steady_timer expiry_timer_;

  Revision revision_ = 1;
  Revision compact_revision_ = 0;
  std::map<std::string, std::vector<Version>> keys_;
  std::vector<LoggedEvent> log_;  // events after compact_revision_, in order
  std::map<LeaseId, Lease> leases_;
  std::mt19937_64 lease_ids_;
  std::vector<MemoryWatch*> watches_;
};

}  // namespace clusweb::store
