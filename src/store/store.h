#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "base/result.h"

namespace clusweb::store {

// The coordination store: keys with revisions, leases, watches and
// transactions — etcd v3's model, so MemoryStore and EtcdStore are
// interchangeable and pass one conformance suite (testing/conformance.h).
//
// Every operation is an Asio awaitable. A Store belongs to the executor it
// was created with: call it from coroutines running there (it is not
// thread-safe). Failures are values; Error::code holds a store::Code.

using Revision = std::int64_t;
using LeaseId = std::int64_t;

// The request types below have constructors rather than being aggregates:
// GCC 12 destroys a braced aggregate twice when it is passed by value
// straight into a coroutine inside a co_await expression
// (`co_await store.put(Put{k, v})`); a constructor call is compiled correctly.
// The same bug destroys a capturing lambda temporary twice when it is an
// argument inside a co_await expression: name such lambdas first.

enum class Code : int {
  kUnavailable = 1,   // no endpoint answered, or the cluster has no leader: nothing happened
  kUnknownOutcome,    // a write's reply was lost: it may or may not have been applied
  kCompacted,         // the revision asked for was compacted away
  kFutureRevision,    // the revision asked for is newer than the store's
  kLeaseNotFound,     // the lease does not exist (expired or revoked)
  kInvalidArgument,   // a request the store refuses as malformed
  kPermissionDenied,  // authentication or authorisation failed
  kCanceled,          // the watch was canceled
  kInternal,          // anything else: a server-side error
};

// The Code of a store error; kInternal when the error carries none.
Code code_of(const Error& error);
Error store_error(Code code, std::string message, std::string where = {});
std::string_view code_name(Code code);

// A key as stored. Revisions are cluster-wide and grow with every change.
struct KeyValue {
  std::string key;
  std::string value;
  Revision create_revision = 0;  // revision of the put that created the key
  Revision mod_revision = 0;     // revision of its last change
  std::int64_t version = 0;      // number of puts since creation
  LeaseId lease = 0;             // 0 = not bound to a lease

  friend bool operator==(const KeyValue&, const KeyValue&) = default;
};

// Reads `key`, or every key starting with it when `prefix` is set (an empty
// prefix selects every key), in key order.
struct Range {
  Range() = default;
  explicit Range(std::string key_in, bool prefix_in = false)
      : key(std::move(key_in)), prefix(prefix_in) {}

  std::string key;
  bool prefix = false;
  Revision revision = 0;   // 0 = the latest; else read as of that revision
  std::int64_t limit = 0;  // 0 = no limit
  bool keys_only = false;  // values left empty
  bool count_only = false;
};

struct RangeResult {
  Revision revision = 0;  // the store's revision when read
  std::vector<KeyValue> kvs;
  std::int64_t count = 0;  // keys in the range, whatever the limit
  bool more = false;       // the limit cut the result short
};

// Sets `key` to `value`, bound to `lease` (0 = none).
struct Put {
  Put() = default;
  Put(std::string key_in, std::string value_in, LeaseId lease_in = 0, bool prev_kv_in = false)
      : key(std::move(key_in)), value(std::move(value_in)), lease(lease_in), prev_kv(prev_kv_in) {}

  std::string key;
  std::string value;
  LeaseId lease = 0;
  bool prev_kv = false;  // return the previous key-value, if any
};

struct PutResult {
  Revision revision = 0;  // the revision of this put
  std::optional<KeyValue> prev;
};

// Deletes `key`, or every key starting with it when `prefix` is set.
struct Delete {
  Delete() = default;
  explicit Delete(std::string key_in, bool prefix_in = false, bool prev_kv_in = false)
      : key(std::move(key_in)), prefix(prefix_in), prev_kv(prev_kv_in) {}

  std::string key;
  bool prefix = false;
  bool prev_kv = false;
};

struct DeleteResult {
  Revision revision = 0;  // the revision after the delete (unchanged when nothing matched)
  std::int64_t deleted = 0;
  std::vector<KeyValue> prev;
};

// One condition of a transaction. For a missing key, version, create and mod
// revision and lease compare as 0, and a value comparison is false whatever
// the operator (etcd's rule).
struct Compare {
  enum class Target { kValue, kVersion, kCreateRevision, kModRevision, kLease };
  enum class Op { kEqual, kNotEqual, kLess, kGreater };

  std::string key;
  Target target = Target::kVersion;
  Op op = Op::kEqual;
  std::string value;        // for kValue
  std::int64_t number = 0;  // for the numeric targets

  static Compare value_is(std::string key, Op op, std::string value);
  static Compare version_is(std::string key, Op op, std::int64_t version);
  static Compare create_revision_is(std::string key, Op op, Revision revision);
  static Compare mod_revision_is(std::string key, Op op, Revision revision);
  static Compare lease_is(std::string key, Op op, LeaseId lease);
  // create_revision == 0: the key does not exist.
  static Compare absent(std::string key);
};

using Operation = std::variant<Range, Put, Delete>;
using OperationResult = std::variant<RangeResult, PutResult, DeleteResult>;

// If every comparison holds, `success` runs, else `failure`; atomically, as
// one revision (none when nothing is written). A key may be written at most
// once per branch.
struct Txn {
  Txn() = default;
  Txn(std::vector<Compare> compare_in, std::vector<Operation> success_in,
      std::vector<Operation> failure_in = {})
      : compare(std::move(compare_in)),
        success(std::move(success_in)),
        failure(std::move(failure_in)) {}

  std::vector<Compare> compare;
  std::vector<Operation> success;
  std::vector<Operation> failure;
};

struct TxnResult {
  Revision revision = 0;
  bool succeeded = false;
  std::vector<OperationResult> results;  // one per operation of the branch that ran
};

struct LeaseGrant {
  LeaseId id = 0;
  std::chrono::seconds ttl{0};  // granted: may exceed the TTL asked for
};

struct LeaseStatus {
  LeaseId id = 0;
  std::chrono::seconds remaining{0};
  std::chrono::seconds granted{0};
  std::vector<std::string> keys;  // filled when asked for
};

// One member of the store as seen from this client (`Store::members()`).
struct StoreMember {
  std::uint64_t id = 0;
  std::string name;
  std::vector<std::string> client_urls;
  bool learner = false;
  // The client endpoint it was asked through ("" when none of this client's
  // endpoints reaches it: it was not asked).
  std::string endpoint;
  // It answered a status request in time.
  bool healthy = false;
  std::string error;  // why not, when it did not
  bool leader = false;
  std::string version;
  std::int64_t db_size = 0;         // bytes of its backend file
  std::int64_t db_size_in_use = 0;  // bytes of it in use (the rest compaction freed)
  std::uint64_t raft_term = 0;
  std::uint64_t raft_index = 0;
  std::vector<std::string> alarms;  // errors the member reports (e.g. NOSPACE)
};

struct StoreHealth {
  std::string kind;  // "etcd", "memory"
  std::vector<StoreMember> members;
  std::uint64_t leader = 0;  // member id; 0 when no member that answered knows one
  // Endpoints of this client that answered nothing and match no listed member.
  std::vector<std::pair<std::string, std::string>> unreachable;  // endpoint, error
};

struct WatchEvent {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  KeyValue kv;                   // for a delete: key and mod_revision (the delete's revision) only
  std::optional<KeyValue> prev;  // the key before this event, when asked for and known
};

// Watches `key`, or every key starting with it, from `start_revision`
// (0 = changes after now). Events of one revision arrive in one batch.
struct WatchOptions {
  WatchOptions() = default;
  explicit WatchOptions(std::string key_in, bool prefix_in = false)
      : key(std::move(key_in)), prefix(prefix_in) {}

  std::string key;
  bool prefix = false;
  Revision start_revision = 0;
  bool prev_kv = false;
};

struct WatchBatch {
  Revision revision = 0;  // the store's revision when the batch was sent
  std::vector<WatchEvent> events;
};

class Watch {
 public:
  virtual ~Watch() = default;
  // The next events, in revision order, without gaps or repeats (EtcdStore
  // resumes a broken stream from the last revision delivered). Errors:
  // kCompacted when history from the start revision is gone (then
  // compact_revision() is the oldest revision still available: re-read and
  // watch again), kCanceled after cancel(). A single waiter at a time.
  virtual boost::asio::awaitable<Result<WatchBatch>> next() = 0;
  // Ends the watch; a waiting next() returns kCanceled.
  virtual void cancel() = 0;
  virtual Revision compact_revision() const = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  virtual boost::asio::any_io_executor get_executor() const = 0;

  virtual boost::asio::awaitable<Result<RangeResult>> range(Range request) = 0;
  virtual boost::asio::awaitable<Result<PutResult>> put(Put request) = 0;
  virtual boost::asio::awaitable<Result<DeleteResult>> erase(Delete request) = 0;
  virtual boost::asio::awaitable<Result<TxnResult>> txn(Txn request) = 0;
  // Drops history before `revision`: reads and watches from older revisions
  // then fail with kCompacted.
  virtual boost::asio::awaitable<Status> compact(Revision revision) = 0;

  // A lease of at least `ttl`; the store may grant more (etcd's minimum
  // TTL): use LeaseGrant::ttl. `id` 0 lets the store choose.
  virtual boost::asio::awaitable<Result<LeaseGrant>> grant(std::chrono::seconds ttl,
                                                           LeaseId id = 0) = 0;
  // Renews the lease to its full TTL; returns that TTL. kLeaseNotFound when
  // it has expired.
  virtual boost::asio::awaitable<Result<std::chrono::seconds>> keepalive(LeaseId id) = 0;
  // Ends the lease and deletes its keys. Revoking an unknown lease is kLeaseNotFound.
  virtual boost::asio::awaitable<Status> revoke(LeaseId id) = 0;
  // The lease's remaining and granted TTL; kLeaseNotFound when it does not exist.
  virtual boost::asio::awaitable<Result<LeaseStatus>> time_to_live(LeaseId id,
                                                                   bool with_keys = false) = 0;

  // Starts a watch; returns once the store has registered it, so every
  // change committed after this returns is delivered.
  virtual boost::asio::awaitable<Result<std::unique_ptr<Watch>>> watch(WatchOptions options) = 0;

  // The store's members, each asked for its status (at most `timeout` each,
  // all at once): what an operator checks first when the cluster misbehaves.
  // Fails only when no member list can be had at all.
  virtual boost::asio::awaitable<Result<StoreHealth>> members(
      std::chrono::milliseconds timeout) = 0;
};

// Shorthands.
boost::asio::awaitable<Result<std::optional<KeyValue>>> get(Store& store, std::string key);

}  // namespace clusweb::store
