#include "store/store.h"

#include <boost/asio/use_awaitable.hpp>

namespace clusweb::store {

Code code_of(const Error& error) {
  if (error.code >= static_cast<int>(Code::kUnavailable) &&
      error.code <= static_cast<int>(Code::kInternal)) {
    return static_cast<Code>(error.code);
  }
  return Code::kInternal;
}

Error store_error(Code code, std::string message, std::string where) {
  return Error{std::move(message), std::move(where), 0, static_cast<int>(code)};
}

std::string_view code_name(Code code) {
  switch (code) {
    case Code::kUnavailable:
      return "unavailable";
    case Code::kUnknownOutcome:
      return "unknown outcome";
    case Code::kCompacted:
      return "compacted";
    case Code::kFutureRevision:
      return "future revision";
    case Code::kLeaseNotFound:
      return "lease not found";
    case Code::kInvalidArgument:
      return "invalid argument";
    case Code::kPermissionDenied:
      return "permission denied";
    case Code::kCanceled:
      return "canceled";
    case Code::kInternal:
      return "internal";
  }
  return "internal";
}

Compare Compare::value_is(std::string key, Op op, std::string value) {
  return Compare{std::move(key), Target::kValue, op, std::move(value), 0};
}
Compare Compare::version_is(std::string key, Op op, std::int64_t version) {
  return Compare{std::move(key), Target::kVersion, op, {}, version};
}
Compare Compare::create_revision_is(std::string key, Op op, Revision revision) {
  return Compare{std::move(key), Target::kCreateRevision, op, {}, revision};
}
Compare Compare::mod_revision_is(std::string key, Op op, Revision revision) {
  return Compare{std::move(key), Target::kModRevision, op, {}, revision};
}
Compare Compare::lease_is(std::string key, Op op, LeaseId lease) {
  return Compare{std::move(key), Target::kLease, op, {}, lease};
}
Compare Compare::absent(std::string key) {
  return create_revision_is(std::move(key), Op::kEqual, 0);
}

boost::asio::awaitable<Result<std::optional<KeyValue>>> get(Store& store, std::string key) {
  auto result = co_await store.range(Range{std::move(key)});
  if (!result) co_return result.error();
  if (result->kvs.empty()) co_return std::optional<KeyValue>();
  co_return std::optional<KeyValue>(std::move(result->kvs.front()));
}

}  // namespace clusweb::store
