#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "store/store.h"

namespace clusweb::store {

namespace etcd {
class EtcdClient;
}

// PEM files for a TLS connection to etcd.
struct EtcdTls {
  std::string ca_file;    // trusted CA; "" = the system's roots
  std::string cert_file;  // client certificate ("" = none; then key_file must be "" too)
  std::string key_file;
};

struct EtcdCredentials {
  std::string user;
  std::string password;
};

struct EtcdOptions {
  // Client URLs as "host:port" (e.g. "127.0.0.1:2379"); members of one cluster.
  std::vector<std::string> endpoints;
  // The deadline of each attempt of a call on one endpoint; a call tries each
  // endpoint at most once, so it fails within endpoints × call_timeout.
  std::chrono::milliseconds call_timeout{500};
  std::optional<EtcdTls> tls;
  // etcd's user/password authentication (Auth.Authenticate; the token is
  // renewed when the server rejects it).
  std::optional<EtcdCredentials> credentials;
  // How long a broken watch waits before resuming, doubling up to the maximum.
  std::chrono::milliseconds watch_retry_initial{50};
  std::chrono::milliseconds watch_retry_max{1000};
};

// Checks the options without connecting: at least one endpoint, each
// "host:port"; TLS files readable. The error is kInvalidArgument.
Status check_options(const EtcdOptions& options);

// Store on an etcd 3.4+ cluster through its v3 gRPC API.
//
// Failover: a call goes to the endpoint that last answered; when that one is
// unreachable, has no leader (every call carries `hasleader: true`) or misses
// the deadline, the call moves on to the next endpoint. A call is repeated on
// another endpoint only when that is safe: reads, lease keepalive, time to live,
// grant (an orphan lease expires by itself), revoke, compact, watch creation,
// and txns with a non-empty compare list (a repeat after a lost reply
// then sees its own write and takes the failure branch). A put, delete or
// compare-less txn whose reply was lost — deadline exceeded, connection broken
// after sending, server-side timeout — fails with kUnknownOutcome: read back
// to find out whether it was applied.
//
// Threads: gRPC completes calls on its own threads; the store only posts to
// its executor from there, so every result and every piece of store state is
// touched on the executor alone. Like any Store it is not thread-safe.
//
// Lifetime: destroying the store cancels calls and watch streams in flight and
// waits (briefly) until gRPC has let go of them; awaiting coroutines then
// resume with kCanceled. Destroy it, and its watches, before the execution
// context of its executor. Watches may outlive the store; their next() then
// fails with kCanceled. A live watch counts as outstanding work of the
// executor (like a pending socket read) until it is canceled or destroyed.
//
// etcd semantics that differ from the Store contract: a value compare on a
// missing key is always false (etcd has no value for it, not "").
class EtcdStore final : public Store {
 public:
  // Options that fail check_options() make every call fail with that error.
  EtcdStore(boost::asio::any_io_executor executor, EtcdOptions options);
  // The same, reporting invalid options at once.
  static Result<std::unique_ptr<EtcdStore>> create(boost::asio::any_io_executor executor,
                                                   EtcdOptions options);
  ~EtcdStore() override;
  EtcdStore(const EtcdStore&) = delete;
  EtcdStore& operator=(const EtcdStore&) = delete;

  boost::asio::any_io_executor get_executor() const override;

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
  // Every endpoint asked for its status at once, the member list from one that answered.
  boost::asio::awaitable<Result<StoreHealth>> members(std::chrono::milliseconds timeout) override;

  // gRPC calls started so far: unary calls, authentications, and streams
  // (a keepalive is one request on its own LeaseKeepAlive stream; a watch
  // opens one Watch stream, and one more each time it resumes). Every attempt
  // counts, failed ones too. Safe to read from any thread.
  std::uint64_t calls_made() const;
  // The index in EtcdOptions::endpoints of the endpoint calls go to first.
  std::size_t current_endpoint() const;

 private:
  // The connection core (gRPC inside), shared with calls in flight and watches.
  std::shared_ptr<etcd::EtcdClient> client_;
};

}  // namespace clusweb::store
