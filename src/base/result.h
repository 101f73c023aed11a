#pragma once

#include <fmt/format.h>

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace clusweb {

// An expected failure: bad input, I/O, a dead child, an unreachable peer.
// `where` names the place (file:line, a key, a socket path) when one exists.
struct Error {
  std::string message;
  std::string where;
  int sys_errno = 0;
  // A component's own classification when callers must tell failures apart
  // (e.g. store::Code); 0 when there is none.
  int code = 0;

  // "where: message", or just "message" when there is no `where` or the
  // message already starts with it (multi-problem reports name each place).
  std::string describe() const {
    if (where.empty() || message.starts_with(where)) return message;
    return where + ": " + message;
  }
};

template <class... Args>
Error make_error(fmt::format_string<Args...> format, Args&&... args) {
  return Error{fmt::format(format, std::forward<Args>(args)...), {}, 0};
}

// Error from errno with the failing call named, e.g. errno_error("bind", "127.0.0.1:80").
Error errno_error(std::string_view call, std::string_view what, int err);
Error errno_error(std::string_view call, std::string_view what);

// A value or an Error. Cheap to move; never throws on the failure path.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : state_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(state_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(state_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(state_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const {
    assert(!ok());
    return std::get<1>(state_);
  }

 private:
  std::variant<T, Error> state_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  // NOLINTNEXTLINE(google-explicit-constructor)
  Result(Error error) : error_(std::move(error)), ok_(false) {}

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const {
    assert(!ok_);
    return error_;
  }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

inline Status ok_status() { return {}; }

}  // namespace clusweb
