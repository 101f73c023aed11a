#pragma once

// Stand-ins for the local web service, for tests of the website resource: an
// admin API on a unix socket that keeps a small model of sites, pools and
// permits (FakeWebService), and a site's binding on loopback that answers
// probes (FakeBinding). Both run as coroutines on the test's io_context and
// write what they are asked, in order, into one journal the test reads.

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace clusweb::resources::testing {

namespace fake_detail {

namespace asio = boost::asio;
namespace http = boost::beast::http;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// "METHOD /target" of a request.
inline std::string request_line(const http::request<http::string_body>& request) {
  return std::string(request.method_string()) + " " + std::string(request.target());
}

}  // namespace fake_detail

class FakeWebService {
 public:
  struct Site {
    std::string state = "Stopped";
    std::vector<std::string> bindings;
    std::vector<std::pair<std::string, std::string>> applications;  // path, pool
    bool clustered = true;
    std::int64_t permit_deadline_ms = 0;  // CLOCK_BOOTTIME of the fake (boottime_ms)
  };
  struct Pool {
    std::string state = "Stopped";
    std::string reason;
    std::vector<std::int64_t> workers;  // pids
  };

  FakeWebService(boost::asio::io_context& io, std::string socket_path,
                 std::vector<std::string>& journal)
      : core_(std::make_shared<Core>(io, std::move(socket_path), journal)) {}
  ~FakeWebService() { core_->close(); }
  FakeWebService(const FakeWebService&) = delete;
  FakeWebService& operator=(const FakeWebService&) = delete;

  // Binds the socket (replacing a stale one) and starts accepting; false
  // when binding failed.
  bool listen() {
    namespace asio = fake_detail::asio;
    using Local = asio::local::stream_protocol;
    ::unlink(core_->socket_path.c_str());
    boost::system::error_code ec;
    core_->acceptor.open(Local(), ec);
    if (!ec) core_->acceptor.bind(Local::endpoint(core_->socket_path), ec);
    if (!ec) core_->acceptor.listen(16, ec);
    if (ec) return false;
    asio::co_spawn(core_->io, Core::accept_loop(core_), asio::detached);
    return true;
  }

  std::map<std::string, Site>& sites() { return core_->sites; }
  std::map<std::string, Pool>& pools() { return core_->pools; }
  // The fake's CLOCK_BOOTTIME in ms, for permitRemainingMs.
  std::int64_t& boottime_ms() { return core_->boottime_ms; }
  // Every permit posted: site and deadlineBoottimeMs, in order.
  const std::vector<std::pair<std::string, std::int64_t>>& permits() const {
    return core_->permits;
  }
  // Requests ("POST /v1/permits/shop") that get no answer until release().
  std::set<std::string>& held() { return core_->held; }
  void release() {
    core_->held.clear();
    core_->release.cancel();
  }
  // Replies for requests ("POST /v1/sites/shop/start") instead of the model's.
  std::map<std::string, std::pair<int, std::string>>& overrides() { return core_->overrides; }
  // Event streams open now, and opened so far.
  std::size_t event_streams() const { return core_->streams.size(); }
  int event_streams_opened() const { return core_->streams_opened; }
  // Requests being answered (or held) now.
  int requests_in_flight() const { return core_->in_flight; }

  // Sends one event line to every open event stream.
  void emit(const nlohmann::json& event) { core_->emit(event); }

 private:
  struct Stream {
    explicit Stream(boost::asio::io_context& io) : wake(io) {}
    std::deque<std::string> queue;
    boost::asio::steady_timer wake;
    bool closed = false;
  };

  struct Core {
    using Local = fake_detail::asio::local::stream_protocol;
    using Request = fake_detail::http::request<fake_detail::http::string_body>;

    Core(boost::asio::io_context& io_in, std::string path, std::vector<std::string>& journal_in)
        : io(io_in),
          socket_path(std::move(path)),
          journal(journal_in),
          acceptor(io_in),
          release(io_in) {
      release.expires_at(boost::asio::steady_timer::time_point::max());
    }

    boost::asio::io_context& io;
    std::string socket_path;
    std::vector<std::string>& journal;
    Local::acceptor acceptor;
    boost::asio::steady_timer release;
    std::map<std::string, Site> sites;
    std::map<std::string, Pool> pools;
    std::int64_t boottime_ms = 1'000'000;
    std::vector<std::pair<std::string, std::int64_t>> permits;
    std::set<std::string> held;
    std::map<std::string, std::pair<int, std::string>> overrides;
    std::vector<std::shared_ptr<Stream>> streams;
    std::vector<std::weak_ptr<Local::socket>> sockets;
    int streams_opened = 0;
    int in_flight = 0;
    std::int64_t next_pid = 4000;
    bool closed = false;

    void close() {
      closed = true;
      boost::system::error_code ignored;
      acceptor.close(ignored);
      release.cancel();
      for (auto& stream : streams) {
        stream->closed = true;
        stream->wake.cancel();
      }
      for (auto& weak : sockets) {
        if (auto socket = weak.lock()) socket->close(ignored);
      }
    }

    void emit(const nlohmann::json& event) {
      for (auto& stream : streams) {
        stream->queue.push_back(event.dump() + "\n");
        stream->wake.cancel();
      }
    }

    nlohmann::json site_json(const std::string& name, const Site& site) const {
      nlohmann::json applications = nlohmann::json::array();
      for (const auto& [path, pool] : site.applications) {
        applications.push_back({{"path", path}, {"pool", pool}});
      }
      const std::int64_t remaining =
          std::max<std::int64_t>(0, site.permit_deadline_ms - boottime_ms);
      return {{"name", name},
              {"state", site.state},
              {"stateCode", site.state == "Started" ? 1 : 3},
              {"autoStart", false},
              {"clustered", site.clustered},
              {"permitRemainingMs", remaining},
              {"root", "/srv/" + name},
              {"bindings", site.bindings},
              {"applications", applications},
              {"accessLog", ""},
              {"counters", {{"requests", 0}}}};
    }

    nlohmann::json pool_json(const std::string& name, const Pool& pool) const {
      nlohmann::json workers = nlohmann::json::array();
      int slot = 0;
      for (std::int64_t pid : pool.workers) {
        workers.push_back({{"slot", slot++},
                           {"pid", pid},
                           {"endpoint", "/run/w.sock"},
                           {"ready", true},
                           {"startedAt", "2024-01-01T00:00:00Z"},
                           {"generation", 1}});
      }
      return {{"name", name},       {"state", pool.state},
              {"stateCode", 1},     {"reason", pool.reason},
              {"processes", 1},     {"autoStart", false},
              {"workers", workers}, {"counters", {{"workerStarts", 0}}}};
    }

    static std::pair<int, std::string> error(int status, const std::string& message) {
      return {status, nlohmann::json{{"error", message}}.dump()};
    }

    static std::vector<std::string> split(std::string_view target) {
      std::vector<std::string> parts;
      std::size_t start = 0;
      while (start <= target.size()) {
        const auto slash = target.find('/', start);
        const auto piece =
            target.substr(start, slash == std::string_view::npos ? slash : slash - start);
        if (!piece.empty()) parts.emplace_back(piece);
        if (slash == std::string_view::npos) break;
        start = slash + 1;
      }
      return parts;
    }

    void record(std::string type, const std::string& name, const std::string& state) {
      emit({{"seq", 1},
            {"type", std::move(type)},
            {"name", name},
            {"state", state},
            {"message", "fake"}});
    }

    std::pair<int, std::string> answer(const Request& request) {
      const std::string line = fake_detail::request_line(request);
      if (auto it = overrides.find(line); it != overrides.end()) return it->second;
      const auto parts = split(request.target());
      const bool post = request.method() == fake_detail::http::verb::post;
      if (parts.size() < 2 || parts[0] != "v1") return error(404, "no such endpoint");
      if (parts[1] == "sites" && parts.size() == 2) {
        nlohmann::json list = nlohmann::json::array();
        for (const auto& [name, site] : sites) list.push_back(site_json(name, site));
        return {200, nlohmann::json{{"sites", list}}.dump()};
      }
      if (parts[1] == "sites") {
        auto it = sites.find(parts[2]);
        if (it == sites.end()) return error(404, "site \"" + parts[2] + "\" does not exist");
        Site& site = it->second;
        if (post && parts.size() == 4 && parts[3] == "start") {
          if (site.clustered && site.permit_deadline_ms <= boottime_ms) {
            return error(409, "site \"" + parts[2] + "\" has no live permit");
          }
          site.state = "Started";
          record("site", parts[2], "Started");
        } else if (post && parts.size() == 4 && parts[3] == "stop") {
          site.state = "Stopped";
          record("site", parts[2], "Stopped");
        }
        return {200, site_json(parts[2], site).dump()};
      }
      if (parts[1] == "pools" && parts.size() >= 3) {
        auto it = pools.find(parts[2]);
        if (it == pools.end()) return error(404, "pool \"" + parts[2] + "\" does not exist");
        Pool& pool = it->second;
        if (post && parts.size() == 4 && parts[3] == "start") {
          pool.state = "Started";
          pool.workers = {next_pid++};
          record("pool", parts[2], "Started");
        } else if (post && parts.size() == 4 && parts[3] == "stop") {
          pool.state = "Stopped";
          pool.workers.clear();
          record("pool", parts[2], "Stopped");
        }
        return {200, pool_json(parts[2], pool).dump()};
      }
      if (parts[1] == "permits" && parts.size() == 3 && post) {
        auto it = sites.find(parts[2]);
        if (it == sites.end()) return error(404, "site \"" + parts[2] + "\" does not exist");
        const auto body = nlohmann::json::parse(request.body(), nullptr, false);
        if (!body.is_object() || !body.contains("deadlineBoottimeMs")) {
          return error(400, "no deadlineBoottimeMs");
        }
        const std::int64_t deadline = body["deadlineBoottimeMs"].get<std::int64_t>();
        permits.emplace_back(parts[2], deadline);
        it->second.permit_deadline_ms = deadline;
        const std::int64_t remaining = std::max<std::int64_t>(0, deadline - boottime_ms);
        return {200,
                nlohmann::json{
                    {"site", parts[2]}, {"clustered", true}, {"permitRemainingMs", remaining}}
                    .dump()};
      }
      return error(404, "no such endpoint");
    }

    static fake_detail::asio::awaitable<void> accept_loop(std::shared_ptr<Core> self) {
      while (!self->closed) {
        auto [ec, socket] = co_await self->acceptor.async_accept(fake_detail::kTuple);
        if (ec) co_return;
        auto shared = std::make_shared<Local::socket>(std::move(socket));
        self->sockets.push_back(shared);
        fake_detail::asio::co_spawn(self->io, serve(self, shared), fake_detail::asio::detached);
      }
    }

    static fake_detail::asio::awaitable<void> serve(std::shared_ptr<Core> self,
                                                    std::shared_ptr<Local::socket> socket) {
      namespace http = fake_detail::http;
      boost::beast::flat_buffer buffer;
      Request request;
      auto [ec, n] = co_await http::async_read(*socket, buffer, request, fake_detail::kTuple);
      if (ec || self->closed) co_return;
      const std::string line = fake_detail::request_line(request);
      self->journal.push_back(request.body().empty() ? line : line + " " + request.body());
      if (request.method() == http::verb::get && request.target() == "/v1/events") {
        co_await stream_events(self, socket);
        co_return;
      }
      ++self->in_flight;
      while (self->held.count(line) != 0 && !self->closed) {
        co_await self->release.async_wait(fake_detail::kTuple);
        self->release.expires_at(boost::asio::steady_timer::time_point::max());
      }
      --self->in_flight;
      if (self->closed) co_return;
      auto [status, body] = self->answer(request);
      http::response<http::string_body> response{static_cast<http::status>(status), 11};
      response.set(http::field::content_type, "application/json");
      response.body() = body;
      response.keep_alive(false);
      response.prepare_payload();
      co_await http::async_write(*socket, response, fake_detail::kTuple);
      boost::system::error_code ignored;
      socket->shutdown(Local::socket::shutdown_send, ignored);
    }

    static fake_detail::asio::awaitable<void> stream_events(std::shared_ptr<Core> self,
                                                            std::shared_ptr<Local::socket> socket) {
      namespace http = fake_detail::http;
      const std::string head =
          "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
          "Transfer-Encoding: chunked\r\n\r\n";
      auto [hec, hn] = co_await fake_detail::asio::async_write(
          *socket, fake_detail::asio::buffer(head), fake_detail::kTuple);
      if (hec) co_return;
      auto stream = std::make_shared<Stream>(self->io);
      self->streams.push_back(stream);
      ++self->streams_opened;
      // Notices the client leaving: the socket becomes readable at EOF.
      fake_detail::asio::co_spawn(
          self->io,
          [stream, socket]() -> fake_detail::asio::awaitable<void> {
            char scratch[64];
            while (!stream->closed) {
              auto [ec, n] = co_await socket->async_read_some(fake_detail::asio::buffer(scratch),
                                                              fake_detail::kTuple);
              if (ec) break;
            }
            stream->closed = true;
            stream->wake.cancel();
          },
          fake_detail::asio::detached);
      while (!stream->closed) {
        while (!stream->queue.empty() && !stream->closed) {
          const std::string& line = stream->queue.front();
          char size[32];
          std::snprintf(size, sizeof size, "%zx\r\n", line.size());
          const std::string chunk = size + line + "\r\n";
          stream->queue.pop_front();
          auto [ec, n] = co_await fake_detail::asio::async_write(
              *socket, fake_detail::asio::buffer(chunk), fake_detail::kTuple);
          if (ec) stream->closed = true;
        }
        if (stream->closed) break;
        stream->wake.expires_at(boost::asio::steady_timer::time_point::max());
        co_await stream->wake.async_wait(fake_detail::kTuple);
      }
      std::erase(self->streams, stream);
      boost::system::error_code ignored;
      socket->close(ignored);
    }
  };

  std::shared_ptr<Core> core_;
};

// A site's binding on 127.0.0.1 (port chosen by the kernel), plain or TLS with
// a throwaway self-signed certificate. Answers every request with `status`,
// or never answers while `silent`; journals "probe <target> Host=<host>"
// (and " SNI=<name>" over TLS).
class FakeBinding {
 public:
  FakeBinding(boost::asio::io_context& io, std::vector<std::string>& journal, bool tls = false)
      : core_(std::make_shared<Core>(io, journal, tls)) {
    namespace asio = fake_detail::asio;
    const asio::ip::tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), 0);
    core_->acceptor.open(endpoint.protocol());
    core_->acceptor.bind(endpoint);
    core_->acceptor.listen();
    asio::co_spawn(io, Core::accept_loop(core_), asio::detached);
  }
  ~FakeBinding() { core_->close(); }
  FakeBinding(const FakeBinding&) = delete;
  FakeBinding& operator=(const FakeBinding&) = delete;

  std::uint16_t port() const { return core_->acceptor.local_endpoint().port(); }
  std::string url() const {
    return std::string(core_->tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(port());
  }
  int& status() { return core_->status; }
  bool& silent() { return core_->silent; }
  int probes() const { return core_->probes; }

 private:
  struct Core {
    using Tcp = fake_detail::asio::ip::tcp;

    Core(boost::asio::io_context& io_in, std::vector<std::string>& journal_in, bool tls_in)
        : io(io_in),
          journal(journal_in),
          acceptor(io_in),
          tls(tls_in),
          context(boost::asio::ssl::context::tls_server) {
      if (tls) make_identity();
    }

    // A P-256 key and a self-signed certificate for it, valid for an hour.
    void make_identity() {
      EVP_PKEY* key = EVP_EC_gen("P-256");
      X509* certificate = X509_new();
      X509_set_version(certificate, 2);
      ASN1_INTEGER_set(X509_get_serialNumber(certificate), 1);
      X509_gmtime_adj(X509_getm_notBefore(certificate), 0);
      X509_gmtime_adj(X509_getm_notAfter(certificate), 3600);
      X509_set_pubkey(certificate, key);
      X509_NAME* name = X509_get_subject_name(certificate);
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>("fake"), -1, -1, 0);
      X509_set_issuer_name(certificate, name);
      X509_sign(certificate, key, EVP_sha256());
      SSL_CTX_use_certificate(context.native_handle(), certificate);
      SSL_CTX_use_PrivateKey(context.native_handle(), key);
      X509_free(certificate);
      EVP_PKEY_free(key);
    }

    boost::asio::io_context& io;
    std::vector<std::string>& journal;
    Tcp::acceptor acceptor;
    bool tls;
    boost::asio::ssl::context context;
    std::vector<std::weak_ptr<Tcp::socket>> sockets;
    int status = 200;
    bool silent = false;
    int probes = 0;
    bool closed = false;

    void close() {
      closed = true;
      boost::system::error_code ignored;
      acceptor.close(ignored);
      for (auto& weak : sockets) {
        if (auto socket = weak.lock()) socket->close(ignored);
      }
    }

    static fake_detail::asio::awaitable<void> accept_loop(std::shared_ptr<Core> self) {
      while (!self->closed) {
        auto [ec, socket] = co_await self->acceptor.async_accept(fake_detail::kTuple);
        if (ec) co_return;
        auto shared = std::make_shared<Tcp::socket>(std::move(socket));
        self->sockets.push_back(shared);
        fake_detail::asio::co_spawn(self->io, serve(self, shared), fake_detail::asio::detached);
      }
    }

    template <class Stream>
    static fake_detail::asio::awaitable<void> answer(std::shared_ptr<Core> self, Stream& stream,
                                                     std::string note) {
      namespace http = fake_detail::http;
      boost::beast::flat_buffer buffer;
      http::request<http::string_body> request;
      auto [ec, n] = co_await http::async_read(stream, buffer, request, fake_detail::kTuple);
      if (ec || self->closed) co_return;
      ++self->probes;
      self->journal.push_back("probe " + std::string(request.target()) +
                              " Host=" + std::string(request[http::field::host]) + note);
      if (self->silent) {
        // Keep the connection open without a word, until the client leaves.
        char scratch[64];
        co_await stream.async_read_some(fake_detail::asio::buffer(scratch), fake_detail::kTuple);
        co_return;
      }
      http::response<http::string_body> response{static_cast<http::status>(self->status), 11};
      if (self->status >= 200 && self->status != 204 && self->status != 304) {
        response.body() = "fake\n";
      }
      response.keep_alive(false);
      response.prepare_payload();
      co_await http::async_write(stream, response, fake_detail::kTuple);
    }

    static fake_detail::asio::awaitable<void> serve(std::shared_ptr<Core> self,
                                                    std::shared_ptr<Tcp::socket> socket) {
      if (!self->tls) {
        co_await answer(self, *socket, "");
        boost::system::error_code ignored;
        socket->shutdown(Tcp::socket::shutdown_send, ignored);
        co_return;
      }
      boost::asio::ssl::stream<Tcp::socket&> stream(*socket, self->context);
      auto [ec] = co_await stream.async_handshake(boost::asio::ssl::stream_base::server,
                                                  fake_detail::kTuple);
      if (ec) co_return;
      const char* sni = SSL_get_servername(stream.native_handle(), TLSEXT_NAMETYPE_host_name);
      co_await answer(self, stream, std::string(" SNI=") + (sni != nullptr ? sni : ""));
      boost::system::error_code ignored;
      socket->close(ignored);
    }
  };

  std::shared_ptr<Core> core_;
};

}  // namespace clusweb::resources::testing
