#pragma once

// The connection core of EtcdStore: one gRPC channel per endpoint, the
// endpoint calls go to first, the auth token, per-attempt deadlines and the
// failover loop. Internal to EtcdStore (it exposes gRPC types).

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "etcdpb/rpc.grpc.pb.h"
#include "store/etcd/etcd_codec.h"
#include "store/etcd/etcd_store.h"
#include "store/etcd/grpc_bridge.h"

namespace clusweb::store::etcd {

// The TLS or plaintext credentials the options ask for; kInvalidArgument when
// a PEM file cannot be read.
Result<std::shared_ptr<grpc::ChannelCredentials>> make_credentials(const EtcdOptions& options);

// The channel settings EtcdStore uses (keepalive, reconnect backoff, ...).
grpc::ChannelArguments channel_arguments();

struct Endpoint {
  std::string address;  // "host:port"
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::KV::Stub> kv;
  std::unique_ptr<pb::Watch::Stub> watch;
  std::unique_ptr<pb::Lease::Stub> lease;
  std::unique_ptr<pb::Auth::Stub> auth;
  std::unique_ptr<pb::Maintenance::Stub> maintenance;
  std::unique_ptr<pb::Cluster::Stub> cluster;
};

// How one attempt is made.
struct AttemptOptions {
  // Instead of EtcdOptions::call_timeout.
  std::optional<std::chrono::milliseconds> timeout;
  // Sends "hasleader": a member without a leader refuses at once. Off only
  // for questions a leaderless member can answer (its status).
  bool require_leader = true;
};

// One attempt's outcome on one endpoint.
template <class Response>
struct Attempted {
  grpc::Status status;
  Response response;
  bool canceled_by_caller = false;
};

// A failed attempt, classified.
struct AttemptError {
  Verdict verdict;
  Error error;
};

// Shared by the store and its watches; every member function runs on the
// executor except calls_made() and the tracker (thread-safe).
class EtcdClient : public std::enable_shared_from_this<EtcdClient> {
 public:
  EtcdClient(boost::asio::any_io_executor executor, EtcdOptions options);

  const EtcdOptions& options() const { return options_; }
  const boost::asio::any_io_executor& executor() const { return executor_; }
  const std::shared_ptr<CallTracker>& tracker() const { return tracker_; }
  // Why the options are unusable, if they are.
  const Status& options_status() const { return options_status_; }
  std::size_t endpoint_count() const { return endpoints_.size(); }
  Endpoint& endpoint(std::size_t index) { return endpoints_[index]; }
  std::size_t preferred() const { return preferred_; }

  // Cancels every call and stream in flight and refuses new ones (see CallTracker::close).
  void close() { tracker_->close(); }
  bool closed() const { return tracker_->closed(); }

  void count_call() { calls_made_.fetch_add(1, std::memory_order_relaxed); }
  std::uint64_t calls_made() const { return calls_made_.load(std::memory_order_relaxed); }

  // Deadline (when `deadline`) and metadata (hasleader, the auth token) of an attempt.
  void prepare(grpc::ClientContext& context, bool deadline, const AttemptOptions& how = {}) const;

  // With credentials configured and no token held, authenticates on endpoint
  // `index`; the error when that fails.
  boost::asio::awaitable<std::optional<AttemptError>> ensure_token(std::size_t index);
  // The token was refused: the next ensure_token() authenticates again.
  void drop_token() { token_.clear(); }

  // Classifies a failed attempt of `method` on endpoint `index`.
  AttemptError failure(std::string_view method, std::size_t index, const grpc::Status& status,
                       Retry retry) const;

  // Runs `attempt(index)` (an awaitable<Attempted<Response>>) on the preferred
  // endpoint, then the others in turn as the verdicts allow. `maybe_applied`
  // (if given) is set when an attempt may have taken effect.
  template <class Response, class Attempt>
  boost::asio::awaitable<Result<Response>> call(std::string_view method, Retry retry,
                                                Attempt attempt, bool* maybe_applied = nullptr);

  // A unary call: `start(endpoint, context, request, response, on_done)`
  // starts it with the stub's callback API.
  template <class Response, class Request, class Start>
  boost::asio::awaitable<Result<Response>> unary(std::string_view method, Retry retry,
                                                 Request request, Start start,
                                                 bool* maybe_applied = nullptr);

  // A unary call on endpoint `index` alone, made once: for a question to one
  // member (its status). The error names the endpoint.
  template <class Response, class Request, class Start>
  boost::asio::awaitable<Result<Response>> unary_on(std::size_t index, std::string_view method,
                                                    Request request, Start start,
                                                    AttemptOptions how);

  // LeaseKeepAlive for one lease, on its own stream.
  boost::asio::awaitable<Result<pb::LeaseKeepAliveResponse>> keepalive(LeaseId id);

 private:
  template <class Response, class Request, class Start>
  boost::asio::awaitable<Attempted<Response>> attempt_unary(std::size_t index,
                                                            std::shared_ptr<const Request> request,
                                                            Start start, AttemptOptions how = {});
  boost::asio::awaitable<Attempted<pb::LeaseKeepAliveResponse>> attempt_keepalive(std::size_t index,
                                                                                  LeaseId id);
  Error closed_error(std::string_view method) const;

  boost::asio::any_io_executor executor_;
  EtcdOptions options_;
  Status options_status_;
  std::vector<Endpoint> endpoints_;
  std::shared_ptr<CallTracker> tracker_ = std::make_shared<CallTracker>();
  std::size_t preferred_ = 0;
  std::string token_;
  std::atomic<std::uint64_t> calls_made_{0};
};

template <class Response, class Request, class Start>
boost::asio::awaitable<Attempted<Response>> EtcdClient::attempt_unary(
    std::size_t index, std::shared_ptr<const Request> request, Start start, AttemptOptions how) {
  using State = UnaryCall<Request, Response>;
  auto call = std::make_shared<State>();
  call->request = std::move(request);
  prepare(call->context, true, how);
  Endpoint& target = endpoints_[index];
  // Named, not a temporary in the co_await expression: GCC 12 destroys such a
  // closure twice (see store.h).
  auto begin = [&target, call, start](std::function<void(grpc::Status)> done) {
    start(target, &call->context, call->request.get(), &call->response, std::move(done));
  };
  grpc::Status status = co_await async_call(tracker_, call, executor_, std::move(begin));
  co_return Attempted<Response>{std::move(status), std::move(call->response),
                                call->canceled_by_caller};
}

template <class Response, class Attempt>
boost::asio::awaitable<Result<Response>> EtcdClient::call(std::string_view method, Retry retry,
                                                          Attempt attempt, bool* maybe_applied) {
  auto self = shared_from_this();
  if (!options_status_) co_return options_status_.error();
  const std::size_t count = endpoints_.size();
  const std::size_t first = preferred_;
  std::optional<Error> last;
  bool reauthenticated = false;
  for (std::size_t tried = 0; tried < count;) {
    if (closed()) co_return closed_error(method);
    const std::size_t index = (first + tried) % count;
    if (auto refused = co_await ensure_token(index)) {
      if (refused->verdict.action != Verdict::Action::kNextEndpoint) co_return refused->error;
      last = std::move(refused->error);
      ++tried;
      continue;
    }
    count_call();
    Attempted<Response> result = co_await attempt(index);
    if (closed()) co_return closed_error(method);
    if (result.status.ok()) {
      preferred_ = index;
      co_return std::move(result.response);
    }
    if (result.canceled_by_caller) {
      if (retry == Retry::kUnsafe && maybe_applied != nullptr) *maybe_applied = true;
      co_return store_error(retry == Retry::kSafe ? Code::kCanceled : Code::kUnknownOutcome,
                            std::string(method) + " canceled by the caller",
                            endpoints_[index].address);
    }
    AttemptError failed = failure(method, index, result.status, retry);
    if (failed.verdict.maybe_applied && maybe_applied != nullptr) *maybe_applied = true;
    switch (failed.verdict.action) {
      case Verdict::Action::kFail:
        if (failed.verdict.from_server) preferred_ = index;
        co_return std::move(failed.error);
      case Verdict::Action::kReauthenticate:
        if (options_.credentials && !reauthenticated) {
          reauthenticated = true;
          drop_token();
          continue;  // the same endpoint, with a new token
        }
        co_return std::move(failed.error);
      case Verdict::Action::kNextEndpoint:
        last = std::move(failed.error);
        ++tried;
        break;
    }
  }
  co_return store_error(Code::kUnavailable,
                        std::string(method) + ": no etcd endpoint available; last: " +
                            (last ? last->describe() : std::string("none tried")),
                        "etcd");
}

template <class Response, class Request, class Start>
boost::asio::awaitable<Result<Response>> EtcdClient::unary(std::string_view method, Retry retry,
                                                           Request request, Start start,
                                                           bool* maybe_applied) {
  auto shared = std::make_shared<const Request>(std::move(request));
  auto attempt = [this, shared, start](std::size_t index) {
    return attempt_unary<Response, Request>(index, shared, start);
  };
  co_return co_await call<Response>(method, retry, std::move(attempt), maybe_applied);
}

template <class Response, class Request, class Start>
boost::asio::awaitable<Result<Response>> EtcdClient::unary_on(std::size_t index,
                                                              std::string_view method,
                                                              Request request, Start start,
                                                              AttemptOptions how) {
  auto self = shared_from_this();
  if (!options_status_) co_return options_status_.error();
  if (closed()) co_return closed_error(method);
  if (auto refused = co_await ensure_token(index)) co_return std::move(refused->error);
  count_call();
  auto shared = std::make_shared<const Request>(std::move(request));
  Attempted<Response> result = co_await attempt_unary<Response, Request>(index, shared, start, how);
  if (closed()) co_return closed_error(method);
  if (result.status.ok()) co_return std::move(result.response);
  co_return failure(method, index, result.status, Retry::kSafe).error;
}

}  // namespace clusweb::store::etcd
