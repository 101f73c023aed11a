#include "store/etcd/etcd_codec.h"

#include <gtest/gtest.h>

namespace clusweb::store::etcd {
namespace {

using Action = Verdict::Action;

TEST(EtcdCodecTest, PrefixEndIncrementsTheLastByteBelowFf) {
  EXPECT_EQ(prefix_end("a"), "b");
  EXPECT_EQ(prefix_end("/app/"), "/app0");
  EXPECT_EQ(prefix_end(std::string("a\xff", 2)), "b");
  EXPECT_EQ(prefix_end(std::string("\xff\xff", 2)), std::string(1, '\0'));
  EXPECT_EQ(prefix_end(""), std::string(1, '\0'));
}

TEST(EtcdCodecTest, RangeWithPrefix) {
  Range range("/k/", true);
  range.revision = 7;
  range.limit = 3;
  range.keys_only = true;
  pb::RangeRequest request;
  to_pb(range, &request);
  EXPECT_EQ(request.key(), "/k/");
  EXPECT_EQ(request.range_end(), "/k0");
  EXPECT_EQ(request.revision(), 7);
  EXPECT_EQ(request.limit(), 3);
  EXPECT_TRUE(request.keys_only());
  EXPECT_FALSE(request.count_only());
}

TEST(EtcdCodecTest, EmptyPrefixSelectsEveryKey) {
  pb::RangeRequest range;
  to_pb(Range("", true), &range);
  EXPECT_EQ(range.key(), std::string(1, '\0'));
  EXPECT_EQ(range.range_end(), std::string(1, '\0'));
  pb::DeleteRangeRequest erase;
  to_pb(Delete{"", true, true}, &erase);
  EXPECT_EQ(erase.key(), std::string(1, '\0'));
  EXPECT_EQ(erase.range_end(), std::string(1, '\0'));
  EXPECT_TRUE(erase.prev_kv());
}

TEST(EtcdCodecTest, SingleKeyHasNoRangeEnd) {
  pb::DeleteRangeRequest erase;
  to_pb(Delete{"k"}, &erase);
  EXPECT_EQ(erase.key(), "k");
  EXPECT_TRUE(erase.range_end().empty());
}

TEST(EtcdCodecTest, CompareTargetsAndOps) {
  pb::Compare value;
  to_pb(Compare::value_is("k", Compare::Op::kNotEqual, "v"), &value);
  EXPECT_EQ(value.target(), pb::Compare::VALUE);
  EXPECT_EQ(value.result(), pb::Compare::NOT_EQUAL);
  EXPECT_EQ(value.value(), "v");

  pb::Compare absent;
  to_pb(Compare::absent("k"), &absent);
  EXPECT_EQ(absent.target(), pb::Compare::CREATE);
  EXPECT_EQ(absent.result(), pb::Compare::EQUAL);
  EXPECT_EQ(absent.target_union_case(), pb::Compare::kCreateRevision);
  EXPECT_EQ(absent.create_revision(), 0);

  pb::Compare mod;
  to_pb(Compare::mod_revision_is("k", Compare::Op::kLess, 9), &mod);
  EXPECT_EQ(mod.target(), pb::Compare::MOD);
  EXPECT_EQ(mod.result(), pb::Compare::LESS);
  EXPECT_EQ(mod.mod_revision(), 9);

  pb::Compare version;
  to_pb(Compare::version_is("k", Compare::Op::kGreater, 2), &version);
  EXPECT_EQ(version.target(), pb::Compare::VERSION);
  EXPECT_EQ(version.result(), pb::Compare::GREATER);
  EXPECT_EQ(version.version(), 2);

  pb::Compare lease;
  to_pb(Compare::lease_is("k", Compare::Op::kEqual, 42), &lease);
  EXPECT_EQ(lease.target(), pb::Compare::LEASE);
  EXPECT_EQ(lease.lease(), 42);
}

TEST(EtcdCodecTest, TxnOperationsKeepTheirOrder) {
  Txn txn;
  txn.compare.push_back(Compare::absent("a"));
  txn.success = {Put("a", "1"), Range("b"), Delete("c", true)};
  txn.failure = {Range("a")};
  pb::TxnRequest request;
  to_pb(txn, &request);
  ASSERT_EQ(request.success_size(), 3);
  EXPECT_EQ(request.success(0).request_put().key(), "a");
  EXPECT_EQ(request.success(1).request_range().key(), "b");
  EXPECT_EQ(request.success(2).request_delete_range().range_end(), "d");
  ASSERT_EQ(request.failure_size(), 1);
  EXPECT_TRUE(request.failure(0).has_request_range());
}

TEST(EtcdCodecTest, TxnResultsCarryTheTxnRevision) {
  pb::TxnResponse response;
  response.mutable_header()->set_revision(12);
  response.set_succeeded(true);
  auto* put = response.add_responses()->mutable_response_put();
  put->mutable_prev_kv()->set_key("a");
  auto* range = response.add_responses()->mutable_response_range();
  range->add_kvs()->set_key("b");
  range->set_count(1);
  TxnResult result = from_pb(response);
  EXPECT_EQ(result.revision, 12);
  EXPECT_TRUE(result.succeeded);
  ASSERT_EQ(result.results.size(), 2u);
  const auto& put_result = std::get<PutResult>(result.results[0]);
  EXPECT_EQ(put_result.revision, 12);
  ASSERT_TRUE(put_result.prev);
  EXPECT_EQ(put_result.prev->key, "a");
  EXPECT_EQ(std::get<RangeResult>(result.results[1]).kvs.at(0).key, "b");
}

TEST(EtcdCodecTest, PutWithoutPreviousKeyHasNoPrev) {
  pb::PutResponse response;
  response.mutable_header()->set_revision(3);
  PutResult result = from_pb(response);
  EXPECT_EQ(result.revision, 3);
  EXPECT_FALSE(result.prev);
}

TEST(EtcdCodecTest, DeleteEventKeepsPrevWhenSent) {
  ::mvccpb::Event event;
  event.set_type(::mvccpb::Event::DELETE);
  event.mutable_kv()->set_key("k");
  event.mutable_kv()->set_mod_revision(5);
  event.mutable_prev_kv()->set_value("old");
  WatchEvent converted = from_pb(event);
  EXPECT_EQ(converted.type, WatchEvent::Type::kDelete);
  EXPECT_EQ(converted.kv.mod_revision, 5);
  ASSERT_TRUE(converted.prev);
  EXPECT_EQ(converted.prev->value, "old");
}

// The messages below are etcd 3.4's (rpctypes) and gRPC 1.51's.
TEST(EtcdCodecTest, ClassifiesEtcdErrors) {
  auto verdict = classify(grpc::StatusCode::OUT_OF_RANGE,
                          "etcdserver: mvcc: required revision has been compacted", Retry::kSafe);
  EXPECT_EQ(verdict.action, Action::kFail);
  EXPECT_EQ(verdict.code, Code::kCompacted);
  EXPECT_TRUE(verdict.from_server);

  EXPECT_EQ(classify(grpc::StatusCode::OUT_OF_RANGE,
                     "etcdserver: mvcc: required revision is a future revision", Retry::kSafe)
                .code,
            Code::kFutureRevision);
  EXPECT_EQ(
      classify(grpc::StatusCode::NOT_FOUND, "etcdserver: requested lease not found", Retry::kSafe)
          .code,
      Code::kLeaseNotFound);
  EXPECT_EQ(classify(grpc::StatusCode::INVALID_ARGUMENT,
                     "etcdserver: duplicate key given in txn request", Retry::kUnsafe)
                .code,
            Code::kInvalidArgument);
  EXPECT_EQ(classify(grpc::StatusCode::INVALID_ARGUMENT,
                     "etcdserver: authentication failed, invalid user ID or password", Retry::kSafe)
                .code,
            Code::kPermissionDenied);
  EXPECT_EQ(
      classify(grpc::StatusCode::PERMISSION_DENIED, "etcdserver: permission denied", Retry::kSafe)
          .code,
      Code::kPermissionDenied);
  auto token =
      classify(grpc::StatusCode::UNAUTHENTICATED, "etcdserver: invalid auth token", Retry::kUnsafe);
  EXPECT_EQ(token.action, Action::kReauthenticate);
  EXPECT_EQ(token.code, Code::kPermissionDenied);
}

TEST(EtcdCodecTest, NoLeaderMovesOnEvenForWrites) {
  auto verdict = classify(grpc::StatusCode::UNAVAILABLE, "etcdserver: no leader", Retry::kUnsafe);
  EXPECT_EQ(verdict.action, Action::kNextEndpoint);
  EXPECT_EQ(verdict.code, Code::kUnavailable);
  EXPECT_FALSE(verdict.maybe_applied);
}

TEST(EtcdCodecTest, ConnectFailureMovesOnEvenForWrites) {
  auto verdict = classify(grpc::StatusCode::UNAVAILABLE,
                          "failed to connect to all addresses; last error: UNKNOWN: "
                          "ipv4:127.0.0.1:1: Failed to connect to remote host: Connection refused",
                          Retry::kUnsafe);
  EXPECT_EQ(verdict.action, Action::kNextEndpoint);
  EXPECT_FALSE(verdict.maybe_applied);
}

TEST(EtcdCodecTest, LostReplyIsUnknownForUnsafeWritesOnly) {
  for (auto [code, message] :
       {std::pair{grpc::StatusCode::DEADLINE_EXCEEDED, "Deadline Exceeded"},
        std::pair{grpc::StatusCode::UNAVAILABLE, "Socket closed"},
        std::pair{grpc::StatusCode::UNAVAILABLE, "etcdserver: request timed out"},
        std::pair{grpc::StatusCode::UNAVAILABLE,
                  "etcdserver: request timed out, possibly due to previous leader failure"}}) {
    SCOPED_TRACE(message);
    auto unsafe = classify(code, message, Retry::kUnsafe);
    EXPECT_EQ(unsafe.action, Action::kFail);
    EXPECT_EQ(unsafe.code, Code::kUnknownOutcome);
    EXPECT_TRUE(unsafe.maybe_applied);
    auto safe = classify(code, message, Retry::kSafe);
    EXPECT_EQ(safe.action, Action::kNextEndpoint);
    EXPECT_EQ(safe.code, Code::kUnavailable);
  }
}

}  // namespace
}  // namespace clusweb::store::etcd
