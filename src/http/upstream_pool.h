#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/result.h"

namespace clusweb::http {

// Keep-alive connections from one serving thread to pool workers, keyed by
// endpoint ("unix:/path" or "tcp:127.0.0.1:port"). Not thread-safe: one per
// serving thread, used only on its io_context.
class UpstreamPool {
 public:
  using Stream = boost::beast::basic_stream<boost::asio::generic::stream_protocol>;
  struct Connection {
    explicit Connection(boost::asio::io_context& io) : stream(io) {}
    Stream stream;
    boost::beast::flat_buffer buffer;
    std::string endpoint;
    bool reused = false;  // taken from the idle list: the worker may have closed it meanwhile
  };

  static constexpr std::size_t kMaxIdlePerEndpoint = 256;

  explicit UpstreamPool(boost::asio::io_context& io) : io_(io) {}

  // An idle connection to `endpoint`, or a new one. Connecting is bounded by `timeout`.
  boost::asio::awaitable<Result<std::unique_ptr<Connection>>> acquire(
      const std::string& endpoint, std::chrono::milliseconds timeout, bool allow_idle = true);
  // Returns a connection whose last exchange completed cleanly with keep-alive.
  void release(std::unique_ptr<Connection> connection);
  // Closes idle connections to endpoints not in `live`.
  void retain_only(const std::vector<std::string>& live);
  std::size_t idle_count() const;

 private:
  boost::asio::io_context& io_;
  std::unordered_map<std::string, std::vector<std::unique_ptr<Connection>>> idle_;
};

// Parses "unix:/path" or "tcp:ADDRESS:PORT".
Result<boost::asio::generic::stream_protocol::endpoint> parse_endpoint(const std::string& text);

}  // namespace clusweb::http
