#include "store/etcd/etcd_store.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <optional>
#include <string_view>

#include "base/log.h"
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

// "http://10.0.0.2:2379/" -> "10.0.0.2:2379", as endpoints are written.
std::string_view without_scheme(std::string_view url) {
  if (auto at = url.find("://"); at != std::string_view::npos) url.remove_prefix(at + 3);
  while (!url.empty() && url.back() == '/') url.remove_suffix(1);
  return url;
}

// The answers of every endpoint to one status request each, asked at once.
struct StatusRound {
  explicit StatusRound(const boost::asio::any_io_executor& executor, std::size_t count)
      : answers(count), pending(count), all_in(executor) {}
  std::vector<std::optional<Result<pb::StatusResponse>>> answers;
  std::size_t pending;
  boost::asio::steady_timer all_in;
};

void fill_from(const pb::StatusResponse& status, StoreMember& member) {
  member.healthy = true;
  member.version = status.version();
  member.db_size = status.dbsize();
  member.db_size_in_use = status.dbsizeinuse();
  member.raft_term = status.header().raft_term();
  member.raft_index = status.raftindex();
  for (const std::string& alarm : status.errors()) member.alarms.push_back(alarm);
}

etcd::AttemptOptions member_question(std::chrono::milliseconds timeout) {
  etcd::AttemptOptions how;
  how.timeout = timeout;
  how.require_leader = false;  // a member without a leader still tells its status
  return how;
}

// Parameters, not captures: the coroutine outlives the loop that starts it.
boost::asio::awaitable<void> ask_status(std::shared_ptr<etcd::EtcdClient> client,
                                        std::shared_ptr<StatusRound> round, std::size_t index,
                                        std::chrono::milliseconds timeout) {
  auto status = co_await client->unary_on<pb::StatusResponse>(
      index, "status", pb::StatusRequest(),
      [](Endpoint& target, grpc::ClientContext* context, const pb::StatusRequest* in,
         pb::StatusResponse* out,
         Done done) { target.maintenance->async()->Status(context, in, out, std::move(done)); },
      member_question(timeout));
  round->answers[index] = std::move(status);
  if (--round->pending == 0) round->all_in.cancel();
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

boost::asio::awaitable<Result<StoreHealth>> EtcdStore::members(std::chrono::milliseconds timeout) {
  auto client = client_;
  if (!client->options_status()) co_return client->options_status().error();
  const std::size_t count = client->endpoint_count();
  auto round = std::make_shared<StatusRound>(client->executor(), count);
  for (std::size_t index = 0; index < count; ++index) {
    boost::asio::co_spawn(client->executor(), ask_status(client, round, index, timeout),
                          boost::asio::detached);
  }
  if (round->pending > 0) {
    // Every attempt ends by its deadline; the timer is only woken early.
    round->all_in.expires_after(timeout + std::chrono::seconds(1));
    (void)co_await round->all_in.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  }

  StoreHealth health;
  health.kind = "etcd";
  // The member list from a member that answered, first the one that knows the newest term.
  std::vector<std::size_t> order;
  std::uint64_t newest_term = 0;
  for (std::size_t index = 0; index < count; ++index) {
    const auto& answer = round->answers[index];
    if (!answer || !answer->ok()) continue;
    order.push_back(index);
    if ((*answer)->header().raft_term() >= newest_term && (*answer)->leader() != 0) {
      newest_term = (*answer)->header().raft_term();
      health.leader = (*answer)->leader();
    }
  }
  std::optional<pb::MemberListResponse> listed;
  std::optional<Error> list_error;
  for (std::size_t index : order) {
    auto list = co_await client->unary_on<pb::MemberListResponse>(
        index, "member list", pb::MemberListRequest(),
        [](Endpoint& target, grpc::ClientContext* context, const pb::MemberListRequest* in,
           pb::MemberListResponse* out,
           Done done) { target.cluster->async()->MemberList(context, in, out, std::move(done)); },
        member_question(timeout));
    if (list.ok()) {
      listed = std::move(*list);
      break;
    }
    list_error = list.error();
  }

  std::vector<bool> matched(count, false);
  if (listed) {
    for (const pb::Member& member : listed->members()) {
      StoreMember seen;
      seen.id = member.id();
      seen.name = member.name();
      seen.learner = member.islearner();
      for (const std::string& url : member.clienturls()) seen.client_urls.push_back(url);
      std::optional<std::size_t> through;
      for (std::size_t index = 0; index < count && !through; ++index) {
        const auto& answer = round->answers[index];
        if (answer && answer->ok() && (*answer)->header().member_id() == member.id()) {
          through = index;
        }
      }
      for (std::size_t index = 0; index < count && !through; ++index) {
        const auto& answer = round->answers[index];
        const bool answered_as_other = answer && answer->ok();
        for (const std::string& url : member.clienturls()) {
          if (!answered_as_other && without_scheme(url) == client->endpoint(index).address) {
            through = index;
          }
        }
      }
      if (!through) {
        seen.error = "not among this node's etcd endpoints";
      } else {
        matched[*through] = true;
        seen.endpoint = client->endpoint(*through).address;
        const auto& answer = round->answers[*through];
        if (!answer) {
          seen.error = "no answer";
        } else if (!answer->ok()) {
          seen.error = answer->error().message;
        } else {
          fill_from(**answer, seen);
        }
      }
      seen.leader = health.leader != 0 && seen.id == health.leader;
      health.members.push_back(std::move(seen));
    }
  }
  for (std::size_t index = 0; index < count; ++index) {
    if (matched[index]) continue;
    const auto& answer = round->answers[index];
    if (answer && answer->ok()) {
      // Without a member list (or a member it does not hold yet), the status alone.
      if (listed) continue;
      StoreMember seen;
      seen.id = (*answer)->header().member_id();
      seen.endpoint = client->endpoint(index).address;
      fill_from(**answer, seen);
      seen.leader = health.leader != 0 && seen.id == health.leader;
      health.members.push_back(std::move(seen));
      continue;
    }
    std::string why = !answer ? "no answer" : answer->error().message;
    health.unreachable.emplace_back(client->endpoint(index).address, std::move(why));
  }
  std::stable_sort(health.members.begin(), health.members.end(),
                   [](const StoreMember& a, const StoreMember& b) { return a.name < b.name; });
  if (!listed && list_error) {
    logger("store")->debug("etcd member list failed error=\"{}\"", list_error->describe());
  }
  co_return health;
}

}  // namespace clusweb::store
