#include "store/etcd/etcd_codec.h"

#include <array>
#include <type_traits>

namespace clusweb::store::etcd {
namespace {

constexpr std::string_view kServerPrefix = "etcdserver: ";

pb::Compare::CompareResult compare_result(Compare::Op op) {
  switch (op) {
    case Compare::Op::kEqual:
      return pb::Compare::EQUAL;
    case Compare::Op::kNotEqual:
      return pb::Compare::NOT_EQUAL;
    case Compare::Op::kLess:
      return pb::Compare::LESS;
    case Compare::Op::kGreater:
      return pb::Compare::GREATER;
  }
  return pb::Compare::EQUAL;
}

void operation_to_pb(const Operation& operation, pb::RequestOp* out) {
  std::visit(
      [out](const auto& op) {
        using Op = std::decay_t<decltype(op)>;
        if constexpr (std::is_same_v<Op, Range>) {
          to_pb(op, out->mutable_request_range());
        } else if constexpr (std::is_same_v<Op, Put>) {
          to_pb(op, out->mutable_request_put());
        } else {
          to_pb(op, out->mutable_request_delete_range());
        }
      },
      operation);
}

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

}  // namespace

std::string prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

void to_pb(const Range& range, pb::RangeRequest* out) {
  if (range.prefix && range.key.empty()) {
    out->set_key(std::string(1, '\0'));
    out->set_range_end(std::string(1, '\0'));
  } else {
    out->set_key(range.key);
    if (range.prefix) out->set_range_end(prefix_end(range.key));
  }
  out->set_revision(range.revision);
  out->set_limit(range.limit);
  out->set_keys_only(range.keys_only);
  out->set_count_only(range.count_only);
}

void to_pb(const Put& put, pb::PutRequest* out) {
  out->set_key(put.key);
  out->set_value(put.value);
  out->set_lease(put.lease);
  out->set_prev_kv(put.prev_kv);
}

void to_pb(const Delete& erase, pb::DeleteRangeRequest* out) {
  if (erase.prefix && erase.key.empty()) {
    out->set_key(std::string(1, '\0'));
    out->set_range_end(std::string(1, '\0'));
  } else {
    out->set_key(erase.key);
    if (erase.prefix) out->set_range_end(prefix_end(erase.key));
  }
  out->set_prev_kv(erase.prev_kv);
}

void to_pb(const Compare& compare, pb::Compare* out) {
  out->set_key(compare.key);
  out->set_result(compare_result(compare.op));
  switch (compare.target) {
    case Compare::Target::kValue:
      out->set_target(pb::Compare::VALUE);
      out->set_value(compare.value);
      break;
    case Compare::Target::kVersion:
      out->set_target(pb::Compare::VERSION);
      out->set_version(compare.number);
      break;
    case Compare::Target::kCreateRevision:
      out->set_target(pb::Compare::CREATE);
      out->set_create_revision(compare.number);
      break;
    case Compare::Target::kModRevision:
      out->set_target(pb::Compare::MOD);
      out->set_mod_revision(compare.number);
      break;
    case Compare::Target::kLease:
      out->set_target(pb::Compare::LEASE);
      out->set_lease(compare.number);
      break;
  }
}

void to_pb(const Txn& txn, pb::TxnRequest* out) {
  for (const auto& compare : txn.compare) to_pb(compare, out->add_compare());
  for (const auto& op : txn.success) operation_to_pb(op, out->add_success());
  for (const auto& op : txn.failure) operation_to_pb(op, out->add_failure());
}

void to_pb(const WatchOptions& options, Revision start_revision, pb::WatchCreateRequest* out) {
  if (options.prefix && options.key.empty()) {
    out->set_key(std::string(1, '\0'));
    out->set_range_end(std::string(1, '\0'));
  } else {
    out->set_key(options.key);
    if (options.prefix) out->set_range_end(prefix_end(options.key));
  }
  out->set_start_revision(start_revision);
  out->set_prev_kv(options.prev_kv);
}

KeyValue from_pb(const ::mvccpb::KeyValue& kv) {
  return KeyValue{kv.key(),          kv.value(),   kv.create_revision(),
                  kv.mod_revision(), kv.version(), kv.lease()};
}

RangeResult from_pb(const pb::RangeResponse& response) {
  RangeResult result;
  result.revision = response.header().revision();
  result.kvs.reserve(static_cast<std::size_t>(response.kvs_size()));
  for (const auto& kv : response.kvs()) result.kvs.push_back(from_pb(kv));
  result.count = response.count();
  result.more = response.more();
  return result;
}

PutResult from_pb(const pb::PutResponse& response) {
  PutResult result;
  result.revision = response.header().revision();
  if (response.has_prev_kv()) result.prev = from_pb(response.prev_kv());
  return result;
}

DeleteResult from_pb(const pb::DeleteRangeResponse& response) {
  DeleteResult result;
  result.revision = response.header().revision();
  result.deleted = response.deleted();
  result.prev.reserve(static_cast<std::size_t>(response.prev_kvs_size()));
  for (const auto& kv : response.prev_kvs()) result.prev.push_back(from_pb(kv));
  return result;
}

TxnResult from_pb(const pb::TxnResponse& response) {
  TxnResult result;
  result.revision = response.header().revision();
  result.succeeded = response.succeeded();
  result.results.reserve(static_cast<std::size_t>(response.responses_size()));
  for (const auto& op : response.responses()) {
    switch (op.response_case()) {
      case pb::ResponseOp::kResponseRange: {
        auto range = from_pb(op.response_range());
        range.revision = result.revision;
        result.results.emplace_back(std::move(range));
        break;
      }
      case pb::ResponseOp::kResponsePut: {
        auto put = from_pb(op.response_put());
        put.revision = result.revision;
        result.results.emplace_back(std::move(put));
        break;
      }
      case pb::ResponseOp::kResponseDeleteRange: {
        auto erase = from_pb(op.response_delete_range());
        erase.revision = result.revision;
        result.results.emplace_back(std::move(erase));
        break;
      }
      default:
        // A nested txn: EtcdStore never sends one.
        break;
    }
  }
  return result;
}

WatchEvent from_pb(const ::mvccpb::Event& event) {
  WatchEvent result;
  result.type =
      event.type() == ::mvccpb::Event::DELETE ? WatchEvent::Type::kDelete : WatchEvent::Type::kPut;
  result.kv = from_pb(event.kv());
  if (event.has_prev_kv()) result.prev = from_pb(event.prev_kv());
  return result;
}

Verdict classify(grpc::StatusCode status, std::string_view message, Retry retry) {
  using Action = Verdict::Action;
  const bool from_server = message.starts_with(kServerPrefix);
  auto fail = [from_server](Code code) { return Verdict{Action::kFail, code, from_server, false}; };

  // etcd shares gRPC codes among several errors: its messages say which.
  if (contains(message, "required revision has been compacted")) return fail(Code::kCompacted);
  if (contains(message, "required revision is a future revision")) {
    return fail(Code::kFutureRevision);
  }
  if (contains(message, "lease not found")) return fail(Code::kLeaseNotFound);
  if (contains(message, "authentication failed") || contains(message, "user name is empty")) {
    return fail(Code::kPermissionDenied);
  }

  // Refused before anything was proposed: another member may serve the call.
  static constexpr std::array kRefusedByServer = {
      "etcdserver: no leader",         "etcdserver: not leader",        "etcdserver: not capable",
      "etcdserver: too many requests", "etcdserver: unhealthy cluster",
  };
  for (std::string_view refused : kRefusedByServer) {
    if (message.starts_with(refused)) {
      return Verdict{Action::kNextEndpoint, Code::kUnavailable, true, false};
    }
  }
  // A follower without a leader drops a proposal before it enters the log.
  if (contains(message, "raft proposal dropped")) {
    return Verdict{Action::kNextEndpoint, Code::kUnavailable, true, false};
  }

  switch (status) {
    case grpc::StatusCode::UNAUTHENTICATED:
      return Verdict{Action::kReauthenticate, Code::kPermissionDenied, from_server, false};
    case grpc::StatusCode::PERMISSION_DENIED:
      return fail(Code::kPermissionDenied);
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE:
      return fail(Code::kInvalidArgument);
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::UNIMPLEMENTED:
      return fail(Code::kInternal);
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      // etcd's "database space exceeded" and the like: refused, not applied.
      if (from_server) return fail(Code::kInternal);
      break;
    case grpc::StatusCode::UNAVAILABLE:
      // The channel never reached the member: nothing was sent.
      if (contains(message, "failed to connect") ||
          contains(message, "connections to all backends failing") ||
          contains(message, "DNS resolution failed")) {
        return Verdict{Action::kNextEndpoint, Code::kUnavailable, false, false};
      }
      break;
    default:
      break;
  }

  // The request may have reached the server and been applied: a deadline, a
  // connection lost mid-call, a server-side timeout ("request timed out").
  if (retry == Retry::kSafe) {
    return Verdict{Action::kNextEndpoint, Code::kUnavailable, from_server, true};
  }
  return Verdict{Action::kFail, Code::kUnknownOutcome, from_server, true};
}

}  // namespace clusweb::store::etcd
