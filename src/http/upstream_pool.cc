#include "http/upstream_pool.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace clusweb::http {

namespace asio = boost::asio;

Result<asio::generic::stream_protocol::endpoint> parse_endpoint(const std::string& text) {
  if (text.starts_with("unix:")) {
    std::string path = text.substr(5);
    if (path.empty() || path.size() >= sizeof(sockaddr_un::sun_path)) {
      return make_error("bad unix endpoint \"{}\"", text);
    }
    return asio::generic::stream_protocol::endpoint(asio::local::stream_protocol::endpoint(path));
  }
  if (text.starts_with("tcp:")) {
    std::string rest = text.substr(4);
    auto colon = rest.rfind(':');
    if (colon == std::string::npos) return make_error("bad tcp endpoint \"{}\"", text);
    boost::system::error_code ec;
    auto address = asio::ip::make_address(rest.substr(0, colon), ec);
    int port = std::atoi(rest.c_str() + colon + 1);
    if (ec || port <= 0 || port > 65535) return make_error("bad tcp endpoint \"{}\"", text);
    return asio::generic::stream_protocol::endpoint(
        asio::ip::tcp::endpoint(address, static_cast<unsigned short>(port)));
  }
  return make_error("unknown endpoint kind \"{}\"", text);
}

asio::awaitable<Result<std::unique_ptr<UpstreamPool::Connection>>> UpstreamPool::acquire(
    const std::string& endpoint, std::chrono::milliseconds timeout, bool allow_idle) {
  if (allow_idle) {
    auto it = idle_.find(endpoint);
    if (it != idle_.end() && !it->second.empty()) {
      auto connection = std::move(it->second.back());
      it->second.pop_back();
      connection->reused = true;
      co_return connection;
    }
  }
  auto parsed = parse_endpoint(endpoint);
  if (!parsed) co_return parsed.error();
  auto connection = std::make_unique<Connection>(io_);
  connection->endpoint = endpoint;
  connection->stream.expires_after(timeout);
  auto [ec] =
      co_await connection->stream.async_connect(*parsed, asio::as_tuple(asio::use_awaitable));
  if (ec) co_return Error{ec.message(), endpoint, ec.value()};
  // From here on the serving connection's deadline covers this one.
  connection->stream.expires_never();
  // Non-blocking, so that writes can be tried directly before waiting.
  boost::system::error_code ignored;
  connection->stream.socket().non_blocking(true, ignored);
  co_return connection;
}

void UpstreamPool::release(std::unique_ptr<Connection> connection) {
  auto& list = idle_[connection->endpoint];
  if (list.size() >= kMaxIdlePerEndpoint || connection->buffer.size() != 0) return;
  connection->stream.expires_never();
  list.push_back(std::move(connection));
}

void UpstreamPool::retain_only(const std::vector<std::string>& live) {
  for (auto it = idle_.begin(); it != idle_.end();) {
    if (std::find(live.begin(), live.end(), it->first) == live.end()) {
      it = idle_.erase(it);
    } else {
      ++it;
    }
  }
}

std::size_t UpstreamPool::idle_count() const {
  std::size_t n = 0;
  for (const auto& [endpoint, list] : idle_) n += list.size();
  return n;
}

}  // namespace clusweb::http
