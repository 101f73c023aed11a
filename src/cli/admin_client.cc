#include "cli/admin_client.h"

#include <fmt/format.h>
#include <sys/un.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <exception>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

namespace clusweb::cli {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Protocol = net::local::stream_protocol;
using boost::system::error_code;

// Completion token: coroutines get the error code as a value instead of an exception.
constexpr auto kAwait = net::as_tuple(net::use_awaitable);

// A whole reply is a few sites or pools; anything near this is not our service.
constexpr std::uint64_t kMaxReplyBytes = std::uint64_t{64} << 20;
// A refusal is one short message.
constexpr std::size_t kMaxRefusalBytes = std::size_t{64} << 10;
// One event is a few hundred bytes; a line this long means the peer is not our service.
constexpr std::size_t kMaxLineBytes = std::size_t{1} << 20;

bool is_http_error(const error_code& ec) {
  return ec.category() == http::make_error_code(http::error::end_of_stream).category();
}

std::string reason_of(const error_code& ec) {
  if (ec == beast::error::timeout) return std::strerror(ETIMEDOUT);
  return ec.message();
}

int errno_of(const error_code& ec) {
  if (ec == beast::error::timeout) return ETIMEDOUT;
  if (ec.category() == boost::system::system_category() ||
      ec.category() == boost::system::generic_category()) {
    return ec.value() != 0 ? ec.value() : EIO;
  }
  return EIO;
}

Error connect_error(const AdminService& service, const std::string& socket_path,
                    std::string_view reason, int err) {
  return Error{fmt::format("cannot reach {} at {} ({}); is \"{}\" running?", service.name,
                           socket_path, reason, service.command),
               {},
               err};
}

// Splits a byte stream into lines for AdminClient::stream.
class LineSplitter {
 public:
  enum class Outcome { kMore, kStop, kTooLong };

  explicit LineSplitter(const std::function<bool(std::string_view)>& on_line) : on_line_(on_line) {}

  Outcome feed(std::string_view bytes) {
    pending_.append(bytes);
    std::size_t start = 0;
    Outcome outcome = Outcome::kMore;
    for (std::size_t end; (end = pending_.find('\n', start)) != std::string::npos;
         start = end + 1) {
      if (!deliver(std::string_view(pending_).substr(start, end - start))) {
        outcome = Outcome::kStop;
        break;
      }
    }
    pending_.erase(0, outcome == Outcome::kStop ? pending_.size() : start);
    if (outcome == Outcome::kMore && pending_.size() > kMaxLineBytes) return Outcome::kTooLong;
    return outcome;
  }

  // The body ended: a last line without a line break still counts.
  void finish() {
    std::string last = std::move(pending_);
    pending_.clear();
    deliver(last);
  }

 private:
  bool deliver(std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) return true;
    return on_line_(line);
  }

  const std::function<bool(std::string_view)>& on_line_;
  std::string pending_;
};

// One request and its reply on a fresh connection. Every failure becomes an Error that names
// the socket.
class Exchange {
 public:
  Exchange(net::io_context& io, const std::string& socket_path, const AdminService& service,
           std::chrono::milliseconds timeout)
      : stream_(io), socket_path_(socket_path), service_(service), timeout_(timeout) {}

  net::awaitable<Status> send(http::verb method, std::string_view target, std::string body) {
    if (socket_path_.size() >= sizeof(sockaddr_un::sun_path)) {
      co_return connect_error(service_, socket_path_, "the socket path is too long", ENAMETOOLONG);
    }
    stream_.expires_after(timeout_);
    auto [connect_ec] = co_await stream_.async_connect(Protocol::endpoint(socket_path_), kAwait);
    if (connect_ec)
      co_return connect_error(service_, socket_path_, reason_of(connect_ec), errno_of(connect_ec));

    http::request<http::string_body> request{method, target, 11};
    request.set(http::field::host, "localhost");
    request.set(http::field::user_agent, "clusweb-cli");
    request.set(http::field::accept, "application/json");
    if (!body.empty()) request.set(http::field::content_type, "application/json");
    request.keep_alive(false);
    request.body() = std::move(body);
    request.prepare_payload();
    auto [write_ec, written] = co_await http::async_write(stream_, request, kAwait);
    (void)written;
    if (write_ec) co_return transport_error(write_ec);
    co_return ok_status();
  }

  // Reads the whole reply; the deadline set by send() still runs.
  net::awaitable<void> read_reply(std::optional<Result<AdminResponse>>& result) {
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxReplyBytes);
    auto [ec, read] = co_await http::async_read(stream_, buffer_, parser, kAwait);
    (void)read;
    if (ec) {
      result = transport_error(ec);
      co_return;
    }
    result =
        AdminResponse{static_cast<int>(parser.get().result_int()), std::move(parser.get().body())};
  }

  net::awaitable<Status> read_lines(const std::function<bool(std::string_view)>& on_line) {
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(boost::none);  // the event stream never ends by design
    auto [header_ec, read] = co_await http::async_read_header(stream_, buffer_, parser, kAwait);
    (void)read;
    if (header_ec) co_return transport_error(header_ec);

    const int status = static_cast<int>(parser.get().result_int());
    if (status < 200 || status > 299) {
      std::string body;
      error_code ec = co_await read_body(parser, [&body](std::string_view piece) {
        body.append(piece.substr(0, kMaxRefusalBytes - std::min(body.size(), kMaxRefusalBytes)));
        return true;
      });
      if (ec && ec != http::error::partial_message) co_return transport_error(ec);
      co_return Error{
          server_error_message(AdminResponse{status, std::move(body)}, service_), {}, 0};
    }

    stream_.expires_never();
    LineSplitter lines(on_line);
    LineSplitter::Outcome outcome = LineSplitter::Outcome::kMore;
    error_code ec = co_await read_body(parser, [&](std::string_view piece) {
      outcome = lines.feed(piece);
      return outcome == LineSplitter::Outcome::kMore;
    });
    if (outcome == LineSplitter::Outcome::kStop) co_return ok_status();
    if (outcome == LineSplitter::Outcome::kTooLong) {
      co_return Error{fmt::format("{} at {} sent a line longer than {} bytes", service_.name,
                                  socket_path_, kMaxLineBytes),
                      {},
                      EPROTO};
    }
    // The server closing the connection mid-body ends the stream as a last chunk would.
    if (ec && ec != http::error::partial_message && ec != http::error::end_of_stream) {
      co_return transport_error(ec);
    }
    lines.finish();
    co_return ok_status();
  }

 private:
  // Feeds the body to `piece` as it arrives until the body ends, `piece` returns false, or an
  // error; returns the error (none when stopped or complete).
  template <class Piece>
  net::awaitable<error_code> read_body(http::response_parser<http::buffer_body>& parser,
                                       Piece piece) {
    std::array<char, 16 * 1024> chunk;
    while (!parser.is_done()) {
      parser.get().body().data = chunk.data();
      parser.get().body().size = chunk.size();
      auto [ec, read] = co_await http::async_read_some(stream_, buffer_, parser, kAwait);
      (void)read;
      if (ec == http::error::need_buffer) ec = {};
      const std::size_t filled = chunk.size() - parser.get().body().size;
      if (filled > 0 && !piece(std::string_view(chunk.data(), filled))) co_return error_code{};
      if (ec) co_return ec;
    }
    co_return error_code{};
  }

  Error transport_error(const error_code& ec) const {
    if (ec == beast::error::timeout) {
      return Error{fmt::format("{} at {} did not answer within {:g} s", service_.name, socket_path_,
                               std::chrono::duration<double>(timeout_).count()),
                   {},
                   ETIMEDOUT};
    }
    if (ec == http::error::end_of_stream || ec == http::error::partial_message) {
      return Error{fmt::format("{} at {} closed the connection before its reply was complete",
                               service_.name, socket_path_),
                   {},
                   ECONNRESET};
    }
    if (is_http_error(ec)) {
      return Error{fmt::format("{} at {} sent a malformed reply ({})", service_.name, socket_path_,
                               ec.message()),
                   {},
                   EPROTO};
    }
    return Error{fmt::format("lost the connection to {} at {} ({})", service_.name, socket_path_,
                             reason_of(ec)),
                 {},
                 errno_of(ec)};
  }

  beast::basic_stream<Protocol> stream_;
  beast::flat_buffer buffer_;
  std::string socket_path_;
  AdminService service_;
  std::chrono::milliseconds timeout_;
};

// Runs `body` to completion on its own io_context; an exception that escapes the coroutine
// (only allocation failure can) becomes an Error.
template <class Coroutine>
Status run_to_completion(net::io_context& io, Coroutine body) {
  std::exception_ptr escaped;
  net::co_spawn(io, std::move(body), [&escaped](std::exception_ptr e) { escaped = std::move(e); });
  io.run();
  if (escaped) {
    try {
      std::rethrow_exception(escaped);
    } catch (const std::exception& e) {
      return Error{fmt::format("admin client failed: {}", e.what()), {}, EIO};
    }
  }
  return ok_status();
}

}  // namespace

AdminClient::AdminClient(std::string socket_path, AdminService service,
                         std::chrono::milliseconds timeout)
    : socket_path_(std::move(socket_path)), service_(service), timeout_(timeout) {}

Result<AdminResponse> AdminClient::get(std::string_view target) {
  return request(false, target, {});
}

Result<AdminResponse> AdminClient::post(std::string_view target, std::string body) {
  return request(true, target, std::move(body));
}

Result<AdminResponse> AdminClient::request(bool post, std::string_view target, std::string body) {
  net::io_context io;
  Exchange exchange(io, socket_path_, service_, timeout_);
  std::optional<Result<AdminResponse>> result;
  auto run = [&]() -> net::awaitable<void> {
    Status sent =
        co_await exchange.send(post ? http::verb::post : http::verb::get, target, std::move(body));
    if (!sent.ok()) {
      result = sent.error();
      co_return;
    }
    co_await exchange.read_reply(result);
  };
  Status ran = run_to_completion(io, run());
  if (!ran.ok()) return ran.error();
  if (!result) return Error{"admin client stopped without a result", {}, EIO};
  return std::move(*result);
}

Status AdminClient::stream(std::string_view target,
                           const std::function<bool(std::string_view line)>& on_line) {
  net::io_context io;
  Exchange exchange(io, socket_path_, service_, timeout_);
  Status result;
  auto run = [&]() -> net::awaitable<void> {
    Status sent = co_await exchange.send(http::verb::get, target, {});
    if (!sent.ok()) {
      result = sent;
      co_return;
    }
    result = co_await exchange.read_lines(on_line);
  };
  Status ran = run_to_completion(io, run());
  if (!ran.ok()) return ran;
  return result;
}

std::string server_error_message(const AdminResponse& response, const AdminService& service) {
  const nlohmann::json doc = nlohmann::json::parse(response.body, nullptr, false);
  if (doc.is_object()) {
    auto found = doc.find("error");
    if (found != doc.end() && found->is_string() && !found->get_ref<const std::string&>().empty()) {
      return found->get<std::string>();
    }
  }
  std::string_view text = response.body;
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  if (!text.empty() && text.size() <= 200 && !doc.is_object()) {
    return fmt::format("{} answered {}: {}", service.name, response.status, text);
  }
  return fmt::format("{} answered {}", service.name, response.status);
}

}  // namespace clusweb::cli
