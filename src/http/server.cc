#include "http/server.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <charconv>
#include <ctime>
#include <list>
#include <optional>
#include <set>
#include <span>
#include <thread>
#include <unordered_map>

#include "base/boottime.h"
#include "base/boottime_timer.h"
#include "base/log.h"
#include "http/proxy_head.h"
#include "http/request_checks.h"
#include "http/static_file.h"
#include "http/status.h"
#include "http/upstream_pool.h"

namespace clusweb::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
using beast::error_code;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::chrono::seconds kUpstreamConnectTimeout{5};
constexpr std::size_t kRelayBufferBytes = std::size_t{32} * 1024;

// Writes all of `buffers`. On a plain socket (kept in non-blocking mode) it
// first hands them to the kernel directly: a write that fits in the socket
// buffer, as nearly every response does, then completes without a trip
// through the event loop. Whatever is left goes out asynchronously.
template <class AsyncStream, class Buffers>
asio::awaitable<error_code> send_all(AsyncStream& stream, const Buffers& buffers) {
  if constexpr (std::is_same_v<AsyncStream, PlainStream> ||
                std::is_same_v<AsyncStream, UpstreamPool::Stream>) {
    const std::size_t total = asio::buffer_size(buffers);
    if (total == 0) co_return error_code{};
    error_code ec;
    const std::size_t sent = stream.socket().write_some(buffers, ec);
    if (!ec && sent == total) co_return ec;
    if (ec && ec != asio::error::would_block && ec != asio::error::try_again) co_return ec;
    beast::buffers_suffix<Buffers> rest(buffers);
    rest.consume(sent);
    auto [wec, n] = co_await asio::async_write(stream, rest, kTuple);
    co_return wec;
  } else {
    auto [ec, n] = co_await asio::async_write(stream, buffers, kTuple);
    co_return ec;
  }
}

// Waits until the handlers ready now have run. A read issued right after
// this side wrote to its peer would find nothing yet, and asio tries a read
// at once before it waits for the socket: a system call that fails. Issued
// after the handlers of this turn of the event loop, the read usually finds
// the peer's answer there. With nothing else ready this costs one dispatch.
template <class Executor>
asio::awaitable<void> after_ready_handlers(const Executor& executor) {
  return asio::post(executor, asio::use_awaitable);
}

// Writes `head` (may be empty) and one piece of body framed as `chunked`
// says; `last` ends a chunked body. One gather write.
template <class AsyncStream>
asio::awaitable<error_code> write_piece(AsyncStream& stream, std::string_view head,
                                        std::span<const char> data, bool chunked, bool last) {
  std::array<asio::const_buffer, 5> parts;
  std::size_t count = 0;
  char size_line[24];
  if (!head.empty()) parts[count++] = asio::buffer(head);
  if (chunked && !data.empty()) {
    auto [end, ignored] = std::to_chars(size_line, size_line + 20, data.size(), 16);
    *end++ = '\r';
    *end++ = '\n';
    parts[count++] = asio::buffer(size_line, static_cast<std::size_t>(end - size_line));
  }
  if (!data.empty()) parts[count++] = asio::buffer(data.data(), data.size());
  if (chunked && !data.empty()) parts[count++] = asio::buffer("\r\n", 2);
  if (chunked && last) parts[count++] = asio::buffer("0\r\n\r\n", 5);
  if (count == 0) co_return error_code{};
  co_return co_await send_all(stream, std::span<const asio::const_buffer>(parts.data(), count));
}

// Parses body bytes already buffered into `relay` without reading the
// socket; `got` is set to the bytes placed there.
template <class BodyParser>
error_code take_buffered(BodyParser& parser, beast::flat_buffer& buffer, std::span<char> relay,
                         std::size_t& got) {
  auto& body = parser.get().body();
  body.data = relay.data();
  body.size = relay.size();
  parser.eager(true);
  error_code ec;
  while (buffer.size() > 0 && !parser.is_done()) {
    const std::size_t used = parser.put(buffer.data(), ec);
    buffer.consume(used);
    if (ec == bhttp::error::need_more || ec == bhttp::error::need_buffer) {
      ec = {};
      break;
    }
    if (ec || used == 0) break;
  }
  got = relay.size() - body.size;
  // Eager parsing asks for more input after a piece instead of returning it:
  // async_read_some would then hold each piece back until the next arrived.
  parser.eager(false);
  return ec;
}

bool is_benign_close(const error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::operation_aborted || ec == beast::error::timeout ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::error::bad_descriptor || ec == asio::ssl::error::stream_truncated;
}

}  // namespace

// A connection as the server tracks it, so it can be closed from outside its
// coroutine (site stopped, listener removed, shutdown, time-out).
struct ConnectionSlot {
  using Clock = std::chrono::steady_clock;

  ConnectionSlot(asio::io_context& io, std::string key)
      : listener_key(std::move(key)), watchdog(io) {}
  ConnectionSlot(const ConnectionSlot&) = delete;
  ConnectionSlot& operator=(const ConnectionSlot&) = delete;

  std::string listener_key;
  std::string site;                          // site of the current or last request
  std::shared_ptr<SiteCounters> counters;    // that site's; counts this connection as active
  std::shared_ptr<const SitePermit> permit;  // that site's serving permit
  bool busy = false;                         // a request is in progress
  std::function<void()> close;               // closes the client connection
  UpstreamPool::Stream* upstream = nullptr;  // the worker connection in use, if any
  bool upstream_timed_out = false;           // expire() closed it
  static constexpr std::chrono::seconds kAnswerGrace{5};

  // The time-out of whatever the connection waits for next. One timer per
  // connection, re-armed only when it fires before a deadline that has moved
  // meanwhile, so an operation costs a clock read instead of a timer insertion
  // and removal.
  asio::steady_timer watchdog;
  Clock::time_point deadline;
  bool watching = false;

  void attach(const SiteRuntime& runtime) {
    if (permit != runtime.permit) permit = runtime.permit;
    if (counters == runtime.counters) return;
    if (counters) counters->active_connections.fetch_sub(1, std::memory_order_relaxed);
    site = runtime.site.name;
    counters = runtime.counters;
    counters->active_connections.fetch_add(1, std::memory_order_relaxed);
  }

  // The next wait, on the client or the worker, must end within `timeout`.
  void extend(Clock::duration timeout) {
    deadline = Clock::now() + timeout;
    if (!watching) arm();
  }

  // A wait on a worker that runs out closes only the worker connection, so
  // the client can still be answered (504) within a fresh deadline.
  void expire() {
    if (upstream != nullptr && upstream->socket().is_open()) {
      upstream->close();
      upstream_timed_out = true;
      extend(kAnswerGrace);
      return;
    }
    if (close) close();
  }

  // The site's permit has lapsed: nothing more may be sent for it.
  bool permit_lapsed() const { return permit && !permit->allows_now(); }

  // Cuts the connection off, with the response in flight: the client
  // connection and, for a proxied request, the worker connection, so the
  // coroutine stops waiting for the worker too.
  void abort() {
    if (upstream != nullptr && upstream->socket().is_open()) upstream->close();
    if (close) close();
  }

  ~ConnectionSlot() {
    if (counters) counters->active_connections.fetch_sub(1, std::memory_order_relaxed);
  }

 private:
  void arm() {
    watching = true;
    watchdog.expires_at(deadline);
    // Destroying the slot cancels the wait: the handler then sees an error
    // and must not touch the slot.
    watchdog.async_wait([this](error_code ec) {
      if (ec) return;
      watching = false;
      if (Clock::now() < deadline) {
        arm();
      } else {
        expire();
      }
    });
  }
};

struct HttpServer::Worker {
  Worker(AccessLogWriter& logs_in, const Clock& clock_in, std::atomic<std::int64_t>& count)
      : work(io.get_executor()),
        logs(logs_in),
        clock(clock_in),
        files(clock_in),
        upstreams(io),
        connection_count(count) {}

  // Every socket and timer of this io_context is used from its one thread
  // only; handlers are posted to it from others. So the reactor needs no
  // locking per descriptor.
  asio::io_context io{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  asio::executor_work_guard<asio::io_context::executor_type> work;
  AccessLogWriter& logs;
  const Clock& clock;
  StaticFileHandler files;
  UpstreamPool upstreams;
  std::atomic<std::int64_t>& connection_count;
  RuntimePtr runtime;
  std::map<std::string, std::unique_ptr<tcp::acceptor>> acceptors;
  std::list<ConnectionSlot> connections;
  std::unordered_map<std::string, int> pool_in_flight;
  std::unordered_map<std::string, std::size_t> next_worker;  // round robin per pool
  bool stopping = false;
  std::shared_ptr<asio::steady_timer> grace_timer;  // set while stopping
  // Waits for the next deadline of a serving permit; `lapsed_permits`: the
  // permits whose lapse close_affected() has already acted on.
  std::unique_ptr<BoottimeTimer> permit_timer;
  std::set<const SitePermit*> lapsed_permits;
  std::thread thread;

  std::time_t date_second = 0;
  std::string date_text;

  const std::string& http_date() {
    std::time_t now = std::time(nullptr);
    if (now != date_second) {
      date_second = now;
      std::tm tm{};
      gmtime_r(&now, &tm);
      char text[40];
      std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
      date_text = text;
    }
    return date_text;
  }

  void apply(RuntimePtr next, const std::map<std::string, int>& fds);
  void close_affected();
  void watch_permits();
  // Stopping, the last connection gone: drop the timers that keep io running.
  void finish_stopping();
  asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, std::string key);
  asio::awaitable<void> serve(tcp::socket socket, std::string key);
};

namespace {

// Facts about a request that outlive its parser, for logging and counters.
struct Exchange {
  int status = 0;
  std::uint64_t bytes = 0;
  bool close = false;  // the connection must close after this response
};

template <class Stream>
class Session {
 public:
  Session(HttpServer::Worker& worker, Stream& stream, std::string listener_key, std::string remote,
          bool tls, ConnectionSlot& slot)
      : w_(worker),
        stream_(stream),
        listener_key_(std::move(listener_key)),
        remote_(std::move(remote)),
        tls_(tls),
        slot_(slot) {}

  asio::awaitable<void> run();

 private:
  using Parser = bhttp::request_parser<bhttp::buffer_body>;

  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }
  asio::awaitable<Exchange> handle(const Runtime& rt, Parser& parser);
  asio::awaitable<Exchange> serve_static(const Runtime& rt, const SiteRuntime& site, Parser& parser,
                                         std::string_view path, std::string_view query,
                                         bool keep_alive);
  asio::awaitable<Exchange> serve_proxy(const Runtime& rt, const PoolRuntime& pool, Parser& parser,
                                        bool keep_alive, std::string_view host);
  asio::awaitable<Exchange> write_simple(int status, std::string_view detail, bool keep_alive,
                                         std::string_view extra_header = {});
  asio::awaitable<error_code> write_file_body(const OpenFile& file, std::uint64_t offset,
                                              std::uint64_t length);
  asio::awaitable<error_code> discard_body(Parser& parser);
  void begin_head(int status, bool keep_alive, int version);
  void log(const SiteRuntime& site, const Parser& parser, const Exchange& ex);

  HttpServer::Worker& w_;
  Stream& stream_;
  std::string listener_key_;
  std::string remote_;
  bool tls_;
  ConnectionSlot& slot_;
  beast::flat_buffer buffer_;
  std::string head_;
  std::unique_ptr<char[]> relay_;
  std::uint64_t cached_generation_ = UINT64_MAX;
  int listener_index_ = -1;
};

template <class Stream>
void Session<Stream>::begin_head(int status, bool keep_alive, int version) {
  head_.clear();
  head_ += "HTTP/1.1 ";
  head_ += std::to_string(status);
  head_ += ' ';
  head_ += reason_phrase(status);
  head_ += "\r\nServer: clusweb\r\nDate: ";
  head_ += w_.http_date();
  head_ += "\r\n";
  if (!keep_alive) {
    head_ += "Connection: close\r\n";
  } else if (version < 11) {
    head_ += "Connection: keep-alive\r\n";
  }
}

template <class Stream>
asio::awaitable<Exchange> Session<Stream>::write_simple(int status, std::string_view detail,
                                                        bool keep_alive,
                                                        std::string_view extra_header) {
  std::string body = fmt::format(
      "<!DOCTYPE html>\n<html><head><title>{0} {1}</title></head><body><h1>{0} {1}</h1>"
      "<p>{2}</p></body></html>\n",
      status, reason_phrase(status), detail);
  begin_head(status, keep_alive, 11);
  head_ += "Content-Type: text/html; charset=utf-8\r\nContent-Length: ";
  head_ += std::to_string(body.size());
  head_ += "\r\n";
  head_ += extra_header;
  head_ += "\r\n";
  slot_.extend(w_.runtime->config->server.limits.idle_timeout);
  std::array<asio::const_buffer, 2> buffers{asio::buffer(head_), asio::buffer(body)};
  error_code ec = co_await send_all(stream_, buffers);
  co_return Exchange{status, ec ? 0 : body.size(), !keep_alive || static_cast<bool>(ec)};
}

template <class Stream>
asio::awaitable<error_code> Session<Stream>::discard_body(Parser& parser) {
  char scratch[8192];
  while (!parser.is_done()) {
    parser.get().body().data = scratch;
    parser.get().body().size = sizeof scratch;
    auto [ec, n] = co_await bhttp::async_read(stream_, buffer_, parser, kTuple);
    if (ec == bhttp::error::need_buffer) continue;
    if (ec) co_return ec;
  }
  co_return error_code{};
}

template <class Stream>
asio::awaitable<error_code> Session<Stream>::write_file_body(const OpenFile& file,
                                                             std::uint64_t offset,
                                                             std::uint64_t length) {
  const auto idle = w_.runtime->config->server.limits.idle_timeout;
  if constexpr (std::is_same_v<Stream, PlainStream>) {
    // Zero-copy: the kernel moves file pages to the socket (non-blocking
    // since accept).
    auto& socket = lowest().socket();
    off_t position = static_cast<off_t>(offset);
    std::uint64_t left = length;
    while (left > 0) {
      // A fast reader may take a large file without the loop ever waiting:
      // check the permit between pieces as well.
      if (slot_.permit_lapsed()) co_return error_code(asio::error::operation_aborted);
      ssize_t sent = ::sendfile(socket.native_handle(), file.fd.get(), &position,
                                std::min<std::uint64_t>(left, 1u << 20));
      if (sent > 0) {
        left -= static_cast<std::uint64_t>(sent);
        continue;
      }
      if (sent == 0) co_return error_code(asio::error::eof);
      if (errno == EINTR) continue;
      if (errno != EAGAIN) co_return error_code(errno, boost::system::system_category());
      slot_.extend(idle);
      auto [ec] = co_await socket.async_wait(tcp::socket::wait_write, kTuple);
      if (ec) co_return ec;
    }
    co_return error_code{};
  } else {
    std::vector<char> chunk(std::min<std::uint64_t>(length, kRelayBufferBytes));
    std::uint64_t position = offset;
    std::uint64_t left = length;
    while (left > 0) {
      if (slot_.permit_lapsed()) co_return error_code(asio::error::operation_aborted);
      ssize_t got =
          ::pread(file.fd.get(), chunk.data(), std::min<std::uint64_t>(left, chunk.size()),
                  static_cast<off_t>(position));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) co_return error_code(got == 0 ? EIO : errno, boost::system::system_category());
      slot_.extend(idle);
      if (auto ec =
              co_await send_all(stream_, asio::buffer(chunk.data(), static_cast<std::size_t>(got)));
          ec) {
        co_return ec;
      }
      position += static_cast<std::uint64_t>(got);
      left -= static_cast<std::uint64_t>(got);
    }
    co_return error_code{};
  }
}

template <class Stream>
asio::awaitable<Exchange> Session<Stream>::serve_static(const Runtime& rt, const SiteRuntime& site,
                                                        Parser& parser, std::string_view path,
                                                        std::string_view query, bool keep_alive) {
  if (!parser.is_done()) {
    if (auto ec = co_await discard_body(parser); ec) {
      if (ec == bhttp::error::body_limit) {
        co_return co_await write_simple(413, "The request body is too large.", false);
      }
      co_return Exchange{400, 0, true};
    }
  }
  if (!site.root_fd) {
    co_return co_await write_simple(500, "The site's content folder cannot be opened.", keep_alive);
  }
  const auto& req = parser.get();
  StaticSite static_site{site.root_fd.get(), site.cache_key, &site.site.default_documents,
                         site.site.directory_browsing, &site.mime};
  StaticRequest request{req.method_string(),
                        path,
                        query,
                        req[bhttp::field::if_none_match],
                        req[bhttp::field::if_modified_since],
                        req[bhttp::field::range],
                        req[bhttp::field::if_range]};
  StaticResponse response = w_.files.serve(static_site, request);

  begin_head(response.status, keep_alive, req.version());
  for (const auto& [name, value] : response.headers) {
    head_ += name;
    head_ += ": ";
    head_ += value;
    head_ += "\r\n";
  }
  std::uint64_t length = response.file ? response.length : response.body.size();
  if (response.status != 304) {
    head_ += "Content-Length: ";
    head_ += std::to_string(length);
    head_ += "\r\n";
  }
  head_ += "\r\n";
  slot_.extend(rt.config->server.limits.idle_timeout);

  Exchange ex{response.status, 0, !keep_alive};
  if (!response.send_body || response.status == 304) {
    error_code ec = co_await send_all(stream_, asio::buffer(head_));
    ex.close = ex.close || static_cast<bool>(ec);
    co_return ex;
  }
  if (!response.file || response.file->in_memory()) {
    std::string_view body =
        response.file
            ? std::string_view(response.file->contents).substr(response.offset, response.length)
            : std::string_view(response.body);
    std::array<asio::const_buffer, 2> buffers{asio::buffer(head_),
                                              asio::buffer(body.data(), body.size())};
    error_code ec = co_await send_all(stream_, buffers);
    if (ec)
      ex.close = true;
    else
      ex.bytes = body.size();
    co_return ex;
  }
  error_code ec = co_await send_all(stream_, asio::buffer(head_));
  if (!ec) ec = co_await write_file_body(*response.file, response.offset, response.length);
  if (ec)
    ex.close = true;
  else
    ex.bytes = length;
  co_return ex;
}

template <class Stream>
asio::awaitable<Exchange> Session<Stream>::serve_proxy(const Runtime& rt, const PoolRuntime& pool,
                                                       Parser& parser, bool keep_alive,
                                                       std::string_view host) {
  const auto& limits = rt.config->server.limits;
  auto& req = parser.get();
  const bool has_body = !parser.is_done();
  if (pool.state != 1 || pool.endpoints.empty()) {
    std::string reason = pool.state != 1 ? (pool.reason.empty() ? "Disabled" : pool.reason)
                                         : std::string("NoWorker");
    // The unread body would be taken for the next request: close instead.
    co_return co_await write_simple(
        503, fmt::format("The application pool \"{}\" is not available ({}).", pool.name, reason),
        keep_alive && !has_body, fmt::format("X-Clusweb-Reason: {}\r\n", reason));
  }
  int& in_flight = w_.pool_in_flight[pool.name];
  if (in_flight >= pool.queue_length) {
    pool.counters->queue_full.fetch_add(1, std::memory_order_relaxed);
    co_return co_await write_simple(
        503, fmt::format("The application pool \"{}\" has too many queued requests.", pool.name),
        keep_alive && !has_body, "X-Clusweb-Reason: QueueFull\r\n");
  }
  pool.counters->requests.fetch_add(1, std::memory_order_relaxed);
  ++in_flight;
  struct InFlight {
    int& count;
    ~InFlight() { --count; }
  } guard{in_flight};

  const bool expect_continue = beast::iequals(req[bhttp::field::expect], "100-continue");
  const bool request_chunked = req.chunked();
  const int client_version = static_cast<int>(req.version());
  const bool head_request = req.method() == bhttp::verb::head;
  head_.clear();
  append_upstream_request_head(head_, req.base(), ForwardedBy{remote_, tls_, host});

  auto& index = w_.next_worker[pool.name];
  std::unique_ptr<UpstreamPool::Connection> upstream;
  // The worker connection in use times out with the client's deadline.
  struct Watched {
    ConnectionSlot& slot;
    ~Watched() { slot.upstream = nullptr; }
  } watched{slot_};
  slot_.upstream_timed_out = false;
  std::optional<bhttp::response_parser<bhttp::buffer_body>> response_parser;
  // One relay buffer per connection, allocated on first use, never zeroed.
  if (!relay_) relay_.reset(new char[kRelayBufferBytes]);
  const std::span<char> relay(relay_.get(), kRelayBufferBytes);
  // A reused idle connection may have been closed by its worker; a request
  // without a body is safe to send again on a fresh connection, once.
  for (int attempt = 0; attempt < 2 && !upstream; ++attempt) {
    // A retry asks the pool as the front end knows it now: a recycle may have
    // replaced the workers this request saw, and their successors are listed.
    // `pool` lives as long as the runtime this request began with; a newer
    // pool is held here, as its runtime may be replaced while we wait.
    std::shared_ptr<const PoolRuntime> newer;
    if (attempt > 0) {
      auto now = w_.runtime->pools.find(pool.name);
      if (now != w_.runtime->pools.end() && now->second->state == 1 &&
          !now->second->endpoints.empty()) {
        newer = now->second;
      }
    }
    const PoolRuntime& current = newer ? *newer : pool;
    const std::string& endpoint = current.endpoints[index++ % current.endpoints.size()];
    auto acquired = co_await w_.upstreams.acquire(endpoint, kUpstreamConnectTimeout, attempt == 0);
    if (!acquired) {
      logger("http")->warn("worker unreachable pool={} endpoint={} error=\"{}\"", pool.name,
                           endpoint, acquired.error().message);
      continue;
    }
    auto connection = std::move(*acquired);
    slot_.upstream = &connection->stream;
    if (expect_continue && attempt == 0) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      if (co_await send_all(stream_, asio::buffer(kContinue))) co_return Exchange{0, 0, true};
    }
    slot_.extend(limits.idle_timeout);
    error_code ec;
    if (!has_body) {
      ec = co_await send_all(connection->stream, asio::buffer(head_));
    } else {
      // Stream the body: the head with the first piece, then each piece as
      // it arrives from the client, framed as the client framed it.
      bool head_sent = false;
      bool last = false;
      while (!ec && !last) {
        auto& body = req.body();
        body.data = relay.data();
        body.size = relay.size();
        slot_.extend(limits.idle_timeout);
        // read_some: forward what has arrived instead of waiting for a full buffer.
        auto [rec, rn] = co_await bhttp::async_read_some(stream_, buffer_, parser, kTuple);
        if (rec == bhttp::error::body_limit) {
          co_return co_await write_simple(413, "The request body is too large.", false);
        }
        if (rec && rec != bhttp::error::need_buffer) co_return Exchange{400, 0, true};
        const std::size_t got = relay.size() - body.size;
        last = parser.is_done();
        if (got == 0 && !last) continue;
        slot_.extend(limits.idle_timeout);
        ec = co_await write_piece(connection->stream, head_sent ? std::string_view() : head_,
                                  relay.first(got), request_chunked, last);
        head_sent = true;
      }
    }
    if (!ec) {
      co_await after_ready_handlers(connection->stream.get_executor());
      response_parser.emplace();
      if (head_request) response_parser->skip(true);
      response_parser->body_limit(boost::none);
      slot_.extend(limits.idle_timeout);
      std::tie(ec, std::ignore) = co_await bhttp::async_read_header(
          connection->stream, connection->buffer, *response_parser, kTuple);
    }
    if (ec && slot_.upstream_timed_out) {
      logger("http")->warn("worker timed out pool={} endpoint={}", pool.name, endpoint);
      co_return co_await write_simple(
          504, fmt::format("The application pool \"{}\" did not answer in time.", pool.name),
          false);
    }
    if (ec) {
      bool retry = connection->reused && !has_body && attempt == 0 &&
                   !(response_parser && response_parser->got_some());
      logger("http")->debug("upstream exchange failed pool={} endpoint={} error=\"{}\" retry={}",
                            pool.name, endpoint, ec.message(), retry);
      if (!retry) {
        co_return co_await write_simple(
            502, fmt::format("The application pool \"{}\" did not answer.", pool.name), false);
      }
      response_parser.reset();
      slot_.upstream = nullptr;
      continue;
    }
    upstream = std::move(connection);
  }
  if (!upstream) {
    co_return co_await write_simple(
        503, fmt::format("No worker of the application pool \"{}\" can be reached.", pool.name),
        keep_alive && !has_body, "X-Clusweb-Reason: NoWorker\r\n");
  }

  // The response: relay head and body to the client as they arrive.
  auto& rp = *response_parser;
  const auto& res = rp.get();
  const int status = static_cast<int>(res.result_int());
  const bool upstream_keep_alive = res.keep_alive();
  const bool bodiless = head_request || status / 100 == 1 || status == 204 || status == 304;
  const RelayPlan plan = plan_relay(rp.chunked(), rp.content_length().has_value(), bodiless,
                                    client_version, keep_alive);
  head_.clear();
  append_client_response_head(head_, res.base(), plan, client_version, w_.http_date());

  Exchange ex{status, 0, !plan.keep_alive};
  const bool chunked = plan.framing == Framing::kChunked;
  // The first piece goes out with the head: for a small answer whose body
  // arrived with its head, the whole response is one write.
  std::size_t got = 0;
  error_code ec;
  if (!rp.is_done()) ec = take_buffered(rp, upstream->buffer, relay, got);
  bool last = rp.is_done();
  if (!ec) {
    slot_.extend(limits.idle_timeout);
    ec = co_await write_piece(stream_, head_, relay.first(got), chunked, last);
    ex.bytes += got;
  } else {
    co_return Exchange{status, 0, true};
  }
  while (!ec && !last) {
    auto& body = rp.get().body();
    body.data = relay.data();
    body.size = relay.size();
    slot_.extend(limits.idle_timeout);
    auto [rec, rn] =
        co_await bhttp::async_read_some(upstream->stream, upstream->buffer, rp, kTuple);
    if (rec && rec != bhttp::error::need_buffer) {
      // The worker failed mid-response: the client cannot be told
      // otherwise than by closing.
      co_return Exchange{status, ex.bytes, true};
    }
    got = relay.size() - body.size;
    last = rp.is_done();
    if (got == 0 && !last) continue;
    slot_.extend(limits.idle_timeout);
    ec = co_await write_piece(stream_, {}, relay.first(got), chunked, last);
    ex.bytes += got;
  }
  if (ec) ex.close = true;
  if (upstream_keep_alive && rp.is_done()) {
    w_.upstreams.release(std::move(upstream));
  }
  co_return ex;
}

template <class Stream>
asio::awaitable<Exchange> Session<Stream>::handle(const Runtime& rt, Parser& parser) {
  const auto& req = parser.get();
  const auto& limits = rt.config->server.limits;
  bool keep_alive = req.keep_alive() && !w_.stopping;

  if (auto verdict = check_request_head(req.base(), limits); verdict.status != 0) {
    co_return co_await write_simple(verdict.status, verdict.reason, false);
  }
  parser.body_limit(limits.max_body_bytes);
  auto target = split_target(req.target());
  std::string_view host =
      target.authority.empty() ? std::string_view(req[bhttp::field::host]) : target.authority;

  if (cached_generation_ != rt.generation) {
    cached_generation_ = rt.generation;
    listener_index_ = rt.router->listener_index(listener_key_);
  }
  int site_index = rt.router->route(listener_index_, host);
  if (site_index == Router::kNoSite) {
    co_return co_await write_simple(400, "No site is bound to this host name.", false);
  }
  const SiteRuntime& site = *rt.sites[site_index];
  slot_.attach(site);
  if (!rt.started[site_index]) {
    co_return co_await write_simple(503, "The site is stopped.", false,
                                    "X-Clusweb-Reason: SiteStopped\r\n");
  }
  // A clustered site serves only while its permit is live; the check costs a
  // clock read, so no request starts past the deadline even before the
  // enforcement pass closes the site's connections.
  if (!site.permit->allows_now()) {
    co_return co_await write_simple(503, "The site is not served on this server now.", false,
                                    "X-Clusweb-Reason: NoServingPermit\r\n");
  }
  // Matched on the decoded, normalized path, so no spelling of a path under
  // an application reaches static content; paths that would climb out of
  // the root are refused before any routing.
  auto match = rt.router->match_application(site_index, target.path);
  if (match.verdict != PathVerdict::kOk) {
    int status = match.verdict == PathVerdict::kForbidden ? 403 : 400;
    co_return co_await write_simple(status, "The request path is not acceptable.",
                                    keep_alive && parser.is_done());
  }
  Exchange ex;
  const config::Application* app = match.application;
  if (app != nullptr && !app->pool.empty()) {
    const PoolRuntime* pool = rt.pool(app->pool);
    if (pool == nullptr) {
      ex = co_await write_simple(503, "The application pool does not exist.", keep_alive);
    } else {
      std::string host_copy(host);
      ex = co_await serve_proxy(rt, *pool, parser, keep_alive, host_copy);
    }
  } else {
    ex = co_await serve_static(rt, site, parser, target.path, target.query, keep_alive);
  }
  site.counters->count_response(ex.status, ex.bytes);
  if (site.access_log) log(site, parser, ex);
  co_return ex;
}

template <class Stream>
void Session<Stream>::log(const SiteRuntime& site, const Parser& parser, const Exchange& ex) {
  const auto& req = parser.get();
  AccessRecord record;
  record.remote = remote_;
  record.method = req.method_string();
  record.target = req.target();
  record.version = static_cast<int>(req.version());
  record.status = ex.status;
  record.bytes = ex.bytes;
  record.referer = req[bhttp::field::referer];
  record.user_agent = req[bhttp::field::user_agent];
  record.unix_time =
      std::chrono::duration_cast<std::chrono::seconds>(w_.clock.wall_now().time_since_epoch())
          .count();
  w_.logs.append(site.site.name, format_combined(record));
}

template <class Stream>
asio::awaitable<void> Session<Stream>::run() {
  bool first = true;
  while (!w_.stopping) {
    RuntimePtr rt = w_.runtime;
    const auto& limits = rt->config->server.limits;
    Parser parser;
    parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
    // The declared length is judged by check_request_head (413); the limit
    // applies to the body as it is read.
    parser.body_limit(boost::none);
    slot_.extend(first ? limits.header_timeout : limits.idle_timeout);
    slot_.busy = false;
    // A client sends its next request only after it has read the last answer.
    if (!first && buffer_.size() == 0) co_await after_ready_handlers(stream_.get_executor());
    first = false;
    auto [ec, n] = co_await bhttp::async_read_header(stream_, buffer_, parser, kTuple);
    if (ec) {
      if (is_benign_close(ec) || w_.stopping) co_return;
      if (ec == bhttp::error::header_limit) {
        co_await write_simple(431, "The request head is too large.", false);
      } else {
        co_await write_simple(400, "The request could not be parsed.", false);
      }
      co_return;
    }
    slot_.busy = true;
    // Re-read: a new runtime may have been installed while we waited.
    rt = w_.runtime;
    Exchange ex = co_await handle(*rt, parser);
    if (ex.close || w_.stopping) co_return;
  }
}

}  // namespace

void HttpServer::Worker::close_affected() {
  for (auto& slot : connections) {
    bool listener_gone = runtime->router->listener_index(slot.listener_key) < 0;
    bool site_down = false;
    if (!slot.site.empty()) {
      int index = runtime->router->site_index(slot.site);
      site_down = index < 0 || !runtime->started[index] || slot.permit_lapsed();
    }
    if (listener_gone || site_down) {
      slot.abort();
    } else if (stopping && !slot.busy) {
      slot.close();
    }
  }
}

// Permits are enforced here, on each serving thread, rather than on the
// control thread: that thread blocks in stop() while connections drain, and
// deadlines must still be kept then.
void HttpServer::Worker::watch_permits() {
  if (!runtime || !permit_timer) return;
  if (stopping && connections.empty()) {
    finish_stopping();
    return;
  }
  const std::int64_t now = boottime_now_ms();
  bool newly_lapsed = false;
  std::optional<std::int64_t> next;
  std::set<const SitePermit*> lapsed;
  for (const auto& site : runtime->sites) {
    const SitePermit* permit = site->permit.get();
    const std::int64_t deadline = permit->deadline_ms.load(std::memory_order_relaxed);
    if (deadline == SitePermit::kUnlimited) continue;
    if (deadline > now) {
      if (!next || deadline < *next) next = deadline;
    } else {
      lapsed.insert(permit);
      if (lapsed_permits.count(permit) == 0) {
        newly_lapsed = true;
        logger("http")->debug("serving permit lapsed, closing connections site={} late_ms={}",
                              site->site.name, now - deadline);
      }
    }
  }
  lapsed_permits = std::move(lapsed);
  // A pass over every connection only when a permit has just lapsed, not on
  // every renewal.
  if (newly_lapsed) close_affected();
  if (next) {
    permit_timer->wait_until(*next, [this] { watch_permits(); });
  } else {
    permit_timer->cancel();
  }
}

void HttpServer::Worker::finish_stopping() {
  if (grace_timer) grace_timer->cancel();
  if (permit_timer) permit_timer->cancel();
}

void HttpServer::Worker::apply(RuntimePtr next, const std::map<std::string, int>& fds) {
  runtime = std::move(next);
  files.clear();
  // Listeners: keep those still wanted, open new ones, close the rest.
  for (auto it = acceptors.begin(); it != acceptors.end();) {
    if (fds.count(it->first) == 0) {
      error_code ignored;
      it->second->close(ignored);
      it = acceptors.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& [key, fd] : fds) {
    if (acceptors.count(key) != 0) {
      if (fd >= 0) ::close(fd);
      continue;
    }
    if (fd < 0) continue;
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    auto protocol = address.ss_family == AF_INET6 ? tcp::v6() : tcp::v4();
    error_code ec;
    auto acceptor = std::make_unique<tcp::acceptor>(io);
    acceptor->assign(protocol, fd, ec);
    if (ec) {
      logger("http")->error("cannot use listener key={} error=\"{}\"", key, ec.message());
      ::close(fd);
      continue;
    }
    auto& ref = *acceptor;
    acceptors.emplace(key, std::move(acceptor));
    asio::co_spawn(io, accept_loop(ref, key), asio::detached);
  }
  std::vector<std::string> live;
  for (const auto& [name, pool] : runtime->pools) {
    live.insert(live.end(), pool->endpoints.begin(), pool->endpoints.end());
  }
  upstreams.retain_only(live);
  close_affected();
  watch_permits();
}

asio::awaitable<void> HttpServer::Worker::accept_loop(tcp::acceptor& acceptor, std::string key) {
  asio::steady_timer backoff(io);
  while (acceptor.is_open() && !stopping) {
    auto [ec, socket] = co_await acceptor.async_accept(kTuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      // Out of descriptors or memory: pause rather than spin.
      logger("http")->warn("accept failed listener={} error=\"{}\"", key, ec.message());
      backoff.expires_after(std::chrono::milliseconds(100));
      co_await backoff.async_wait(kTuple);
      continue;
    }
    if (connection_count.load(std::memory_order_relaxed) >=
        runtime->config->server.limits.max_connections) {
      error_code ignored;
      socket.close(ignored);
      continue;
    }
    error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    asio::co_spawn(io, serve(std::move(socket), key), asio::detached);
  }
}

asio::awaitable<void> HttpServer::Worker::serve(tcp::socket socket, std::string key) {
  connection_count.fetch_add(1, std::memory_order_relaxed);
  struct Count {
    std::atomic<std::int64_t>& n;
    ~Count() { n.fetch_sub(1, std::memory_order_relaxed); }
  } count{connection_count};

  RuntimePtr rt = runtime;
  int listener = rt->router->listener_index(key);
  if (listener < 0) co_return;
  error_code ec;
  auto peer = socket.remote_endpoint(ec);
  std::string remote = ec ? std::string("-") : peer.address().to_string();
  auto slot = connections.emplace(connections.end(), io, key);
  struct Unregister {
    std::list<ConnectionSlot>& list;
    std::list<ConnectionSlot>::iterator it;
    Worker& worker;
    ~Unregister() {
      list.erase(it);
      // The last connection gone ends the grace period early.
      if (worker.stopping && list.empty()) worker.finish_stopping();
    }
  } unregister{connections, slot, *this};

  const auto& listener_runtime = rt->listeners[listener];
  if (listener_runtime.tls) {
    auto tls = listener_runtime.tls_listener;  // keeps the contexts alive
    TlsStream stream(PlainStream(std::move(socket)), tls->default_context());
    slot->close = [&stream] { beast::get_lowest_layer(stream).close(); };
    slot->extend(rt->config->server.limits.header_timeout);
    auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::server, kTuple);
    if (hec) co_return;
    Session<TlsStream> session(*this, stream, key, remote, true, *slot);
    co_await session.run();
    slot->extend(std::chrono::seconds(2));
    co_await stream.async_shutdown(kTuple);
  } else {
    // Non-blocking for send_all's direct writes and sendfile.
    socket.non_blocking(true, ec);
    PlainStream stream(std::move(socket));
    slot->close = [&stream] { stream.close(); };
    Session<PlainStream> session(*this, stream, key, remote, false, *slot);
    co_await session.run();
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  }
}

HttpServer::HttpServer(int threads, AccessLogWriter& logs, const Clock& clock) {
  for (int i = 0; i < std::max(1, threads); ++i) {
    workers_.push_back(std::make_unique<Worker>(logs, clock, connections_));
  }
}

HttpServer::~HttpServer() {
  for (auto& worker : workers_) {
    worker->work.reset();
    worker->io.stop();
    if (worker->thread.joinable()) worker->thread.join();
  }
}

void HttpServer::update(const RuntimePtr& runtime, const std::map<std::string, int>& listener_fds,
                        std::function<void()> applied) {
  auto remaining = std::make_shared<std::atomic<std::size_t>>(workers_.size());
  auto done = std::make_shared<std::function<void()>>(std::move(applied));
  for (auto& worker : workers_) {
    std::map<std::string, int> own;
    for (const auto& [key, fd] : listener_fds) {
      own.emplace(key, fd < 0 ? -1 : ::fcntl(fd, F_DUPFD_CLOEXEC, 3));
    }
    asio::post(worker->io, [w = worker.get(), runtime, own = std::move(own), remaining, done] {
      w->apply(runtime, own);
      if (remaining->fetch_sub(1) == 1 && *done) (*done)();
    });
  }
}

void HttpServer::permits_changed() {
  for (auto& worker : workers_) {
    asio::post(worker->io, [w = worker.get()] { w->watch_permits(); });
  }
}

Status HttpServer::start() {
  for (auto& worker : workers_) {
    auto timer = BoottimeTimer::open(worker->io);
    if (!timer) return timer.error();
    worker->permit_timer = std::move(*timer);
  }
  for (auto& worker : workers_) {
    worker->thread = std::thread([w = worker.get()] { w->io.run(); });
  }
  return {};
}

void HttpServer::stop(std::chrono::milliseconds grace) {
  for (auto& worker : workers_) {
    asio::post(worker->io, [w = worker.get(), grace] {
      w->stopping = true;
      for (auto& [key, acceptor] : w->acceptors) {
        error_code ignored;
        acceptor->close(ignored);
      }
      w->close_affected();
      // After the grace period, whatever is still running is cut off.
      w->grace_timer = std::make_shared<asio::steady_timer>(w->io, grace);
      w->grace_timer->async_wait([w](error_code) {
        for (auto& slot : w->connections) slot.close();
      });
      if (w->connections.empty()) w->finish_stopping();
      w->work.reset();
    });
  }
  for (auto& worker : workers_) {
    if (worker->thread.joinable()) worker->thread.join();
  }
}

}  // namespace clusweb::http
