#include "store/etcd/etcd_store.h"

#include <algorithm>

#include "store/etcd/etcd_client.h"
#include "store/etcd/etcd_codec.h"
#include "store/etcd/etcd_watch.h"

namespace clusweb::store {

using etcd::Endpoint;
using etcd::Retry;
namespace pb = etcd::pb;

namespace {

using Done = std::function<void(grpc::Status)>;

// A txn is safe to repeat when its compare guards it (a repeat after a lost
// reply takes the failure branch) or when it only reads.
Retry txn_retry(const Txn& txn) {
  auto reads_only = [](const std::vector<Operation>& ops) {
    return std::all_of(ops.begin(), ops.end(),
                       [](const Operation& op) { return std::holds_alternative<Range>(op); });
  };
  if (!txn.compare.empty()) return Retry::kSafe;
  return reads_only(txn.success) && reads_only(txn.failure) ? Retry::kSafe : Retry::kUnsafe;
}

}  // namespace

EtcdStore::EtcdStore(boost::asio::any_io_executor executor, EtcdOptions options)
    : client_(std::make_shared<etcd::EtcdClient>(std::move(executor), std::move(options))) {}

Result<std::unique_ptr<EtcdStore>> EtcdStore::create(boost::asio::any_io_executor executor,
                                                     EtcdOptions options) {
  if (auto status = check_options(options); !status) return status.error();
  return std::make_unique<EtcdStore>(std::move(executor), std::move(options));
}

EtcdStore::~EtcdStore() { client_->close(); }

boost::asio::any_io_executor EtcdStore::get_executor() const { return client_->executor(); }

std::uint64_t EtcdStore::calls_made() const { return client_->calls_made(); }

std::size_t EtcdStore::current_endpoint() const { return client_->preferred(); }

boost::asio::awaitable<Result<RangeResult>> EtcdStore::range(Range request) {
  auto client = client_;
  pb::RangeRequest message;
  etcd::to_pb(request, &message);
  auto response = co_await client->unary<pb::RangeResponse>(
      "range", Retry::kSafe, std::move(message),
      [](Endpoint& target, grpc::ClientContext* context, const pb::RangeRequest* in,
         pb::RangeResponse* out,
         Done done) { target.kv->async()->Range(context, in, out, std::move(done)); });
  if (!response) co_return response.error();
  co_return etcd::from_pb(*response);
}

boost::asio::awaitable<Result<PutResult>> EtcdStore::put(Put request) {
  auto client = client_;
  pb::PutRequest message;
  etcd::to_pb(request, &message);
  auto response = co_await client->unary<pb::PutResponse>(
      "put", Retry::kUnsafe, std::move(message),
      [](Endpoint& target, grpc::ClientContext* context, const pb::PutRequest* in,
         pb::PutResponse* out,
         Done done) { target.kv->async()->Put(context, in, out, std::move(done)); });
  if (!response) co_return response.error();
  co_return etcd::from_pb(*response);
}

boost::asio::awaitable<Result<DeleteResult>> EtcdStore::erase(Delete request) {
  auto client = client_;
  pb::DeleteRangeRequest message;
  etcd::to_pb(request, &message);
  auto response = co_await client->unary<pb::DeleteRangeResponse>(
      "delete", Retry::kUnsafe, std::move(message),
      [](Endpoint& target, grpc::ClientContext* context, const pb::DeleteRangeRequest* in,
         pb::DeleteRangeResponse* out,
         Done done) { target.kv->async()->DeleteRange(context, in, out, std::move(done)); });
  if (!response) co_return response.error();
  co_return etcd::from_pb(*response);
}

boost::asio::awaitable<Result<TxnResult>> EtcdStore::txn(Txn request) {
  auto client = client_;
  pb::TxnRequest message;
  etcd::to_pb(request, &message);
  auto response = co_await client->unary<pb::TxnResponse>(
      "txn", txn_retry(request), std::move(message),
      [](Endpoint& target, grpc::ClientContext* context, const pb::TxnRequest* in,
         pb::TxnResponse* out,
         Done done) { target.kv->async()->Txn(context, in, out, std::move(done)); });
  if (!response) co_return response.error();
  co_return etcd::from_pb(*response);
}

boost::asio::awaitable<Status> EtcdStore::compact(Revision revision) {
  auto client = client_;
  pb::CompactionRequest message;
  message.set_revision(revision);
  bool maybe_applied = false;
  auto response = co_await client->unary<pb::CompactionResponse>(
      "compact", Retry::kSafe, std::move(message),
      [](Endpoint& target, grpc::ClientContext* context, const pb::CompactionRequest* in,
         pb::CompactionResponse* out,
         Done done) { target.kv->async()->Compact(context, in, out, std::move(done)); },
      &maybe_applied);
  if (!response) {
    // A repeat after a lost reply finds its own compaction done.
    if (maybe_applied && code_of(response.error()) == Code::kCompacted) co_return ok_status();
    co_return response.error();
  }
  co_return ok_status();
}

boost::asio::awaitable<Result<LeaseGrant>> EtcdStore::grant(std::chrono::seconds ttl, LeaseId id) {
  auto client = client_;
  pb::LeaseGrantRequest message;
  message.set_ttl(ttl.count());
  message.set_id(id);
  bool maybe_applied = false;
  auto response = co_await client->unary<pb::LeaseGrantResponse>(
      "grant", Retry::kSafe, std::move(message),
      [](Endpoint& target, grpc::ClientContext* context, const pb::LeaseGrantRequest* in,
         pb::LeaseGrantResponse* out,
         Done done) { target.lease->async()->LeaseGrant(context, in, out, std::move(done)); },
      &maybe_applied);
  if (!response) {
    // A repeat of a grant with a chosen id may find the lease it made itself.
    if (maybe_applied && id != 0 &&
        response.error().message.find("lease already exist") != std::string::npos) {
      auto status = co_await time_to_live(id);
      if (status) co_return LeaseGrant{id, status->granted};
    }
    co_return response.error();
  }
  if (!response->error().empty()) {
    co_return store_error(Code::kInternal, "etcd grant failed: " + response->error(), "etcd");
  }
  co_return LeaseGrant{response->id(), std::chrono::seconds(response->ttl())};
}

boost::asio::awaitable<Result<std::chrono::seconds>> EtcdStore::keepalive(LeaseId id) {
  auto client = client_;
  auto response = co_await client->keepalive(id);
  if (!response) co_return response.error();
  // etcd answers a keepalive of an unknown lease with TTL 0.
  if (response->ttl() <= 0) {
    co_return store_error(Code::kLeaseNotFound, "etcd lease not found", std::to_string(id));
  }
  co_return std::chrono::seconds(response->ttl());
}

boost::asio::awaitable<Status> EtcdStore::revoke(LeaseId id) {
  auto client = client_;
  pb::LeaseRevokeRequest message;
  message.set_id(id);
  bool maybe_applied = false;
  auto response = co_await client->unary<pb::LeaseRevokeResponse>(
      "revoke", Retry::kSafe, std::move(message),
      [](Endpoint& target, grpc::ClientContext* context, const pb::LeaseRevokeRequest* in,
         pb::LeaseRevokeResponse* out,
         Done done) { target.lease->async()->LeaseRevoke(context, in, out, std::move(done)); },
      &maybe_applied);
  if (!response) {
    // A repeat after a lost reply finds the lease already gone.
    if (maybe_applied && code_of(response.error()) == Code::kLeaseNotFound) co_return ok_status();
    co_return response.error();
  }
  co_return ok_status();
}

boost::asio::awaitable<Result<LeaseStatus>> EtcdStore::time_to_live(LeaseId id, bool with_keys) {
  auto client = client_;
  pb::LeaseTimeToLiveRequest message;
  message.set_id(id);
  message.set_keys(with_keys);
  auto response = co_await client->unary<pb::LeaseTimeToLiveResponse>(
      "time to live", Retry::kSafe, std::move(message),
      [](Endpoint& target, grpc::ClientContext* context, const pb::LeaseTimeToLiveRequest* in,
         pb::LeaseTimeToLiveResponse* out,
         Done done) { target.lease->async()->LeaseTimeToLive(context, in, out, std::move(done)); });
  if (!response) co_return response.error();
  // etcd reports an expired or unknown lease with TTL -1.
  if (response->ttl() < 0) {
    co_return store_error(Code::kLeaseNotFound, "etcd lease not found", std::to_string(id));
  }
  LeaseStatus status;
  status.id = response->id();
  status.remaining = std::chrono::seconds(response->ttl());
  status.granted = std::chrono::seconds(response->grantedttl());
  status.keys.assign(response->keys().begin(), response->keys().end());
  co_return status;
}

boost::asio::awaitable<Result<std::unique_ptr<Watch>>> EtcdStore::watch(WatchOptions options) {
  return etcd::start_watch(client_, std::move(options));
}

}  // namespace clusweb::store
