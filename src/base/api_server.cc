#include "base/api_server.h"

#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "base/log.h"

namespace clusweb {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using local = asio::local::stream_protocol;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr auto kRequestTimeout = std::chrono::seconds(30);

// Shared with the hang-up reader and with subscriptions holding the waker,
// which may outlive the stream's frame.
struct StreamState {
  explicit StreamState(const asio::any_io_executor& executor) : wake(executor) {}
  asio::steady_timer wake;
  bool woken = false;
  bool closed = false;
};

class ChunkedLineStream final : public ApiLineStream {
 public:
  ChunkedLineStream(beast::basic_stream<local>& stream, std::shared_ptr<StreamState> state)
      : stream_(stream), state_(std::move(state)) {}

  asio::awaitable<bool> send(std::string line) override {
    if (state_->closed) co_return false;
    line += '\n';
    std::string chunk = fmt::format("{:x}\r\n{}\r\n", line.size(), line);
    auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(chunk), kTuple);
    if (ec) state_->closed = true;
    co_return !state_->closed;
  }

  asio::awaitable<void> wait(std::chrono::milliseconds timeout) override {
    if (!state_->woken && !state_->closed) {
      state_->wake.expires_after(timeout);
      co_await state_->wake.async_wait(kTuple);
    }
    state_->woken = false;
  }

  std::function<void()> waker() override {
    return [weak = std::weak_ptr<StreamState>(state_)] {
      if (auto state = weak.lock()) {
        state->woken = true;
        state->wake.cancel();
      }
    };
  }

  bool open() const override { return !state_->closed; }

 private:
  beast::basic_stream<local>& stream_;
  std::shared_ptr<StreamState> state_;
};

}  // namespace

ApiTarget parse_api_target(std::string_view target) {
  ApiTarget out;
  std::string_view path = target;
  if (auto question = target.find('?'); question != std::string_view::npos) {
    path = target.substr(0, question);
    std::string_view rest = target.substr(question + 1);
    while (!rest.empty()) {
      const auto amp = rest.find('&');
      const std::string_view pair = rest.substr(0, amp);
      const auto eq = pair.find('=');
      if (!pair.empty()) {
        out.query[std::string(pair.substr(0, eq))] =
            eq == std::string_view::npos ? "" : std::string(pair.substr(eq + 1));
      }
      if (amp == std::string_view::npos) break;
      rest = rest.substr(amp + 1);
    }
  }
  std::size_t start = 0;
  while (start <= path.size()) {
    const auto slash = path.find('/', start);
    const auto piece = path.substr(start, slash == std::string_view::npos ? slash : slash - start);
    if (!piece.empty()) out.parts.emplace_back(piece);
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

struct ApiServer::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::any_io_executor executor_in, Options options_in, Handler handler_in,
       IsStream is_stream_in, Streamer streamer_in)
      : executor(std::move(executor_in)),
        options(std::move(options_in)),
        handler(std::move(handler_in)),
        is_stream(std::move(is_stream_in)),
        streamer(std::move(streamer_in)),
        acceptor(executor) {}

  asio::any_io_executor executor;
  Options options;
  Handler handler;
  IsStream is_stream;
  Streamer streamer;
  local::acceptor acceptor;
  std::string path;

  asio::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    while (acceptor.is_open()) {
      auto [ec, socket] = co_await acceptor.async_accept(kTuple);
      if (ec) {
        if (!acceptor.is_open() || ec == asio::error::operation_aborted) co_return;
        continue;
      }
      asio::co_spawn(executor, serve(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> stream_lines(beast::basic_stream<local>& stream,
                                     const ApiRequest& request) {
    bhttp::response<bhttp::empty_body> head{bhttp::status::ok, 11};
    head.set(bhttp::field::content_type, "application/x-ndjson");
    head.set(bhttp::field::cache_control, "no-cache");
    head.set(bhttp::field::server, "clusweb");
    head.chunked(true);
    bhttp::response_serializer<bhttp::empty_body> serializer(head);
    stream.expires_never();
    auto [hec, hn] = co_await bhttp::async_write_header(stream, serializer, kTuple);
    if (hec) co_return;
    auto state = std::make_shared<StreamState>(executor);
    // A reader that notices the client hanging up; it touches the socket only
    // while `closed` is false, i.e. while this frame still owns it.
    auto hang_up = [state, &socket = stream.socket()]() -> asio::awaitable<void> {
      char scratch[256];
      while (!state->closed) {
        auto [ec, n] = co_await socket.async_read_some(asio::buffer(scratch), kTuple);
        if (ec) break;
      }
      state->closed = true;
      state->wake.cancel();
    };
    asio::co_spawn(executor, hang_up(), asio::detached);
    ChunkedLineStream lines(stream, state);
    co_await streamer(request, lines);
    state->closed = true;
    boost::system::error_code ignored;
    stream.socket().close(ignored);
  }

  asio::awaitable<void> serve(local::socket socket) {
    auto self = shared_from_this();
    beast::basic_stream<local> stream(std::move(socket));
    beast::flat_buffer buffer;
    while (true) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.body_limit(options.body_limit);
      stream.expires_after(kRequestTimeout);
      auto [ec, n] = co_await bhttp::async_read(stream, buffer, parser, kTuple);
      if (ec) co_return;
      auto message = parser.release();
      ApiRequest request;
      request.method = message.method();
      request.target = parse_api_target(message.target());
      request.body = std::move(message.body());
      if (is_stream(request)) {
        co_await stream_lines(stream, request);
        co_return;
      }
      ApiReply reply = co_await handler(request);
      bhttp::response<bhttp::string_body> response{static_cast<bhttp::status>(reply.status),
                                                   message.version()};
      response.set(bhttp::field::content_type, "application/json");
      response.set(bhttp::field::server, "clusweb");
      response.body() = std::move(reply.body);
      response.keep_alive(message.keep_alive());
      response.prepare_payload();
      stream.expires_after(kRequestTimeout);
      auto [wec, wn] = co_await bhttp::async_write(stream, response, kTuple);
      if (wec || !message.keep_alive()) co_return;
    }
  }
};

ApiServer::ApiServer(asio::any_io_executor executor, Options options, Handler handler,
                     IsStream is_stream, Streamer streamer)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(options), std::move(handler),
                                   std::move(is_stream), std::move(streamer))) {}

ApiServer::~ApiServer() { close(); }

Status ApiServer::listen(const std::string& path) {
  ::unlink(path.c_str());
  boost::system::error_code ec;
  impl_->acceptor.open(local(), ec);
  if (!ec) impl_->acceptor.bind(local::endpoint(path), ec);
  if (!ec) impl_->acceptor.listen(64, ec);
  if (ec)
    return Error{fmt::format("{} socket: {}", impl_->options.name, ec.message()), path, ec.value()};
  gid_t group = ::getegid();
  if (struct group* clusweb_group = ::getgrnam("clusweb")) group = clusweb_group->gr_gid;
  if (::chown(path.c_str(), ::geteuid(), group) != 0 || ::chmod(path.c_str(), 0660) != 0) {
    return errno_error("chmod", path);
  }
  impl_->path = path;
  asio::co_spawn(impl_->executor, impl_->accept_loop(), asio::detached);
  logger("api")->info("{} listening socket={}", impl_->options.name, path);
  return {};
}

void ApiServer::close() {
  if (!impl_->acceptor.is_open()) return;
  boost::system::error_code ignored;
  impl_->acceptor.close(ignored);
  if (!impl_->path.empty()) ::unlink(impl_->path.c_str());
}

}  // namespace clusweb
