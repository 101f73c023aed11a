#pragma once

// Translation between store types and etcd's protobuf messages, and the
// classification of a failed gRPC call. Pure functions; internal to EtcdStore.

#include <grpcpp/support/status.h>

#include <string>
#include <string_view>

#include "etcdpb/rpc.pb.h"
#include "store/store.h"

namespace clusweb::store::etcd {

namespace pb = ::etcdserverpb;

// The range_end that selects every key starting with `prefix`: the prefix with
// its last byte below 0xff incremented and what follows dropped; "\0" (every
// key from `prefix` on) when there is no such byte, as for the empty prefix.
std::string prefix_end(std::string_view prefix);

void to_pb(const Range& range, pb::RangeRequest* out);
void to_pb(const Put& put, pb::PutRequest* out);
void to_pb(const Delete& erase, pb::DeleteRangeRequest* out);
void to_pb(const Compare& compare, pb::Compare* out);
void to_pb(const Txn& txn, pb::TxnRequest* out);
// A watch created at `start_revision` (0 = from now).
void to_pb(const WatchOptions& options, Revision start_revision, pb::WatchCreateRequest* out);

KeyValue from_pb(const ::mvccpb::KeyValue& kv);
RangeResult from_pb(const pb::RangeResponse& response);
PutResult from_pb(const pb::PutResponse& response);
DeleteResult from_pb(const pb::DeleteRangeResponse& response);
// Results of the operations carry the txn's revision (etcd leaves theirs unset).
TxnResult from_pb(const pb::TxnResponse& response);
WatchEvent from_pb(const ::mvccpb::Event& event);

// Whether a call may be repeated on another endpoint after its reply was lost.
enum class Retry {
  kSafe,    // reads and idempotent or self-guarding writes
  kUnsafe,  // a lost reply leaves the outcome unknown
};

// What to do about a failed attempt.
struct Verdict {
  enum class Action {
    kFail,            // return `code`
    kNextEndpoint,    // try the next endpoint; `code` if none is left
    kReauthenticate,  // the auth token was refused: get a new one and repeat
  };
  Action action = Action::kFail;
  Code code = Code::kInternal;
  bool from_server = false;    // etcd itself answered: the endpoint works
  bool maybe_applied = false;  // the attempt may have taken effect
};

// Classifies a failed call (status not OK). etcd's own errors carry messages
// starting "etcdserver: "; the rest come from gRPC's transport.
Verdict classify(grpc::StatusCode status, std::string_view message, Retry retry);

}  // namespace clusweb::store::etcd
