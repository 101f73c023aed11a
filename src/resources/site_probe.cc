#include "resources/site_probe.h"

#include <fmt/format.h>
#include <openssl/ssl.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <charconv>
#include <optional>
#include <string_view>
#include <utility>

namespace clusweb::resources {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using boost::system::error_code;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

struct BindingUrl {
  bool https = false;
  std::string address;
  std::uint16_t port = 0;
  std::string host;
};

// "http|https://ADDRESS:PORT[/HOST]", ADDRESS "*", IPv4 or "[IPv6]".
std::optional<BindingUrl> parse_binding(std::string_view url) {
  BindingUrl binding;
  if (url.starts_with("http://")) {
    url.remove_prefix(7);
  } else if (url.starts_with("https://")) {
    binding.https = true;
    url.remove_prefix(8);
  } else {
    return std::nullopt;
  }
  std::size_t address_end = 0;
  if (url.starts_with('[')) {
    const auto close = url.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    binding.address = std::string(url.substr(1, close - 1));
    address_end = close + 1;
  } else {
    address_end = url.find(':');
    if (address_end == std::string_view::npos) return std::nullopt;
    binding.address = std::string(url.substr(0, address_end));
  }
  url.remove_prefix(address_end);
  if (!url.starts_with(':')) return std::nullopt;
  url.remove_prefix(1);
  const auto slash = url.find('/');
  const std::string_view port = url.substr(0, slash);
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), binding.port);
  if (ec != std::errc() || end != port.data() + port.size() || binding.port == 0) {
    return std::nullopt;
  }
  if (slash != std::string_view::npos) binding.host = std::string(url.substr(slash + 1));
  return binding;
}

// A TCP stream (plain or TLS) for one request: the request, then the answer's
// head. The deadline is already set on the lowest layer.
template <class Stream>
asio::awaitable<Result<int>> ask(Stream& stream, const ProbeTarget& target,
                                 const std::stop_token& stop) {
  const std::string what = target.describe();
  http::request<http::empty_body> request{http::verb::get, target.path, 11};
  request.set(http::field::host, target.host);
  request.set(http::field::user_agent, "clusweb-probe");
  request.keep_alive(false);
  auto [write_error, written] = co_await http::async_write(stream, request, kTuple);
  if (stop.stop_requested()) co_return make_error("probe {}: stopped", what);
  if (write_error) co_return make_error("probe {}: {}", what, write_error.message());

  beast::flat_buffer buffer;
  http::response_parser<http::empty_body> parser;
  auto [read_error, read] = co_await http::async_read_header(stream, buffer, parser, kTuple);
  if (stop.stop_requested()) co_return make_error("probe {}: stopped", what);
  if (read_error == beast::error::timeout)
    co_return make_error("probe {}: no answer in time", what);
  if (read_error) co_return make_error("probe {}: {}", what, read_error.message());
  co_return static_cast<int>(parser.get().result_int());
}

// Closes the lowest layer when stop is triggered: pending operations end at once.
struct CloseOnStop {
  beast::tcp_stream* stream;
  void operator()() const noexcept { stream->close(); }
};

}  // namespace

std::string ProbeTarget::describe() const {
  const std::string bracketed =
      address.find(':') != std::string::npos ? "[" + address + "]" : address;
  return fmt::format("{}://{}:{}{} (Host {})", https ? "https" : "http", bracketed, port, path,
                     host);
}

Result<ProbeTarget> probe_target(const std::vector<std::string>& binding_urls, std::string path) {
  std::optional<BindingUrl> chosen;
  for (const std::string& url : binding_urls) {
    std::optional<BindingUrl> binding = parse_binding(url);
    if (!binding) return make_error("binding \"{}\" is not scheme://address:port[/host]", url);
    if (!binding->https) {
      chosen = std::move(binding);
      break;
    }
    if (!chosen) chosen = std::move(binding);
  }
  if (!chosen) return make_error("the site has no binding to probe");

  ProbeTarget target;
  target.https = chosen->https;
  target.port = chosen->port;
  target.path = std::move(path);
  if (chosen->address == "*" || chosen->address == "0.0.0.0") {
    target.address = "127.0.0.1";
  } else if (chosen->address == "::") {
    target.address = "::1";
  } else {
    target.address = chosen->address;
  }
  error_code ec;
  asio::ip::make_address(target.address, ec);
  if (ec) return make_error("binding address \"{}\" is not an IP address", chosen->address);

  std::string name;
  if (chosen->host.starts_with("*.")) {
    name = "probe" + chosen->host.substr(1);
  } else {
    name = chosen->host;
  }
  if (target.https) target.server_name = name;
  if (name.empty()) {
    name =
        target.address.find(':') != std::string::npos ? "[" + target.address + "]" : target.address;
  }
  const std::uint16_t default_port = target.https ? 443 : 80;
  target.host = target.port == default_port ? name : fmt::format("{}:{}", name, target.port);
  return target;
}

asio::awaitable<Result<int>> probe_site(asio::any_io_executor executor, ProbeTarget target,
                                        std::chrono::steady_clock::time_point deadline,
                                        std::stop_token stop) {
  const std::string what = target.describe();
  if (stop.stop_requested()) co_return make_error("probe {}: stopped", what);
  error_code ec;
  const asio::ip::address address = asio::ip::make_address(target.address, ec);
  if (ec) co_return make_error("probe {}: not an IP address", what);
  const asio::ip::tcp::endpoint endpoint(address, target.port);

  if (!target.https) {
    beast::tcp_stream stream(executor);
    const std::stop_callback on_stop(stop, CloseOnStop{&stream});
    stream.expires_at(deadline);
    auto [connect_error] = co_await stream.async_connect(endpoint, kTuple);
    if (stop.stop_requested()) co_return make_error("probe {}: stopped", what);
    if (connect_error == beast::error::timeout) {
      co_return make_error("probe {}: no connection in time", what);
    }
    if (connect_error) co_return make_error("probe {}: {}", what, connect_error.message());
    co_return co_await ask(stream, target, stop);
  }

  asio::ssl::context context(asio::ssl::context::tls_client);
  context.set_verify_mode(asio::ssl::verify_none, ec);
  beast::ssl_stream<beast::tcp_stream> stream(executor, context);
  if (!target.server_name.empty() &&
      SSL_set_tlsext_host_name(stream.native_handle(), target.server_name.c_str()) != 1) {
    co_return make_error("probe {}: cannot set the server name", what);
  }
  beast::tcp_stream& tcp = beast::get_lowest_layer(stream);
  const std::stop_callback on_stop(stop, CloseOnStop{&tcp});
  tcp.expires_at(deadline);
  auto [connect_error] = co_await tcp.async_connect(endpoint, kTuple);
  if (stop.stop_requested()) co_return make_error("probe {}: stopped", what);
  if (connect_error == beast::error::timeout) {
    co_return make_error("probe {}: no connection in time", what);
  }
  if (connect_error) co_return make_error("probe {}: {}", what, connect_error.message());
  auto [handshake_error] = co_await stream.async_handshake(asio::ssl::stream_base::client, kTuple);
  if (stop.stop_requested()) co_return make_error("probe {}: stopped", what);
  if (handshake_error) {
    co_return make_error("probe {}: tls handshake: {}", what, handshake_error.message());
  }
  co_return co_await ask(stream, target, stop);
}

}  // namespace clusweb::resources
