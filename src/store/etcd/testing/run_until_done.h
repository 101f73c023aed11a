#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <exception>
#include <optional>
#include <utility>

namespace clusweb::store::testing {

// Runs `task` on `io` (on this thread) until it finishes and returns its
// result; other work, such as live watch streams, may stay pending. Rethrows
// what the task throws (a failed gtest ASSERT inside a coroutine only returns
// from it).
inline void run_until_done(boost::asio::io_context& io, boost::asio::awaitable<void> task) {
  std::exception_ptr failure;
  bool done = false;
  boost::asio::co_spawn(io, std::move(task), [&](std::exception_ptr error) {
    failure = error;
    done = true;
  });
  io.restart();
  while (!done) io.run_one();
  if (failure) std::rethrow_exception(failure);
}

template <class T>
T run_until_done(boost::asio::io_context& io, boost::asio::awaitable<T> task) {
  std::optional<T> result;
  // Through awaitable<void>: co_spawn's value handler needs a default-constructible T.
  run_until_done(
      io,
      [](boost::asio::awaitable<T> inner, std::optional<T>& out) -> boost::asio::awaitable<void> {
        out.emplace(co_await std::move(inner));
      }(std::move(task), result));
  return std::move(*result);
}

}  // namespace clusweb::store::testing
