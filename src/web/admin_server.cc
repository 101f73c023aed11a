#include "web/admin_server.h"

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
#include <ctime>
#include <deque>
#include <nlohmann/json.hpp>

#include "base/api_socket.h"
#include "base/boottime.h"
#include "base/log.h"
#include "web/permit_request.h"

namespace clusweb::web {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using local = asio::local::stream_protocol;
using nlohmann::json;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

std::string iso_time(std::int64_t unix_ms) {
  std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

// Milliseconds left, or null for a site that never had a permit.
json remaining_json(const PermitStatus& permit) {
  return permit.remaining_ms ? json(*permit.remaining_ms) : json(nullptr);
}

json site_json(const WebMaster& master, const config::Site& site,
               const std::optional<protocol::StatsMessage>& stats) {
  auto state = master.site_state(site.name);
  json bindings = json::array();
  for (const auto& binding : site.bindings) bindings.push_back(binding.url());
  json applications = json::array();
  for (const auto& app : site.applications) {
    applications.push_back({{"path", app.path}, {"pool", app.pool}});
  }
  json counters = {{"requests", 0},
                   {"responses", {{"1xx", 0}, {"2xx", 0}, {"3xx", 0}, {"4xx", 0}, {"5xx", 0}}},
                   {"bytesSent", 0},
                   {"activeConnections", 0}};
  if (stats) {
    auto it = stats->sites.find(site.name);
    if (it != stats->sites.end()) {
      const auto& s = it->second;
      counters = {{"requests", s.requests},
                  {"responses",
                   {{"1xx", s.responses[0]},
                    {"2xx", s.responses[1]},
                    {"3xx", s.responses[2]},
                    {"4xx", s.responses[3]},
                    {"5xx", s.responses[4]}}},
                  {"bytesSent", s.bytes_sent},
                  {"activeConnections", s.active_connections}};
    }
  }
  auto permit = master.permit(site.name);
  return {{"name", site.name},
          {"state", to_string(state)},
          {"stateCode", static_cast<int>(state)},
          {"reason", master.site_reason(site.name)},
          {"autoStart", site.auto_start},
          {"clustered", permit.clustered},
          {"permitRemainingMs", remaining_json(permit)},
          {"root", site.root},
          {"bindings", bindings},
          {"applications", applications},
          {"accessLog", site.access_log},
          {"counters", counters}};
}

json pool_json(const pool::PoolStatus& status, const config::WebConfig& config,
               const std::optional<protocol::StatsMessage>& stats) {
  json workers = json::array();
  for (const auto& w : status.workers) {
    workers.push_back({{"slot", w.slot},
                       {"pid", w.pid},
                       {"endpoint", w.endpoint},
                       {"ready", w.ready},
                       {"startedAt", iso_time(w.started_at_unix_ms)},
                       {"generation", w.generation}});
  }
  std::uint64_t requests = 0;
  std::uint64_t queue_full = 0;
  if (stats) {
    auto it = stats->pools.find(status.name);
    if (it != stats->pools.end()) {
      requests = it->second.requests;
      queue_full = it->second.queue_full;
    }
  }
  auto pool = config.pools.find(status.name);
  return {{"name", status.name},
          {"state", pool::to_string(status.state)},
          {"stateCode", static_cast<int>(status.state)},
          {"reason", status.reason},
          {"processes", status.processes},
          {"autoStart", pool != config.pools.end() && pool->second.auto_start},
          {"workers", workers},
          {"counters",
           {{"workerStarts", status.worker_starts},
            {"workerFailures", status.worker_failures},
            {"requests", requests},
            {"queueFull", queue_full}}}};
}

struct Reply {
  int status = 200;
  std::string body;
};

Reply error_reply(int status, std::string_view message) {
  return {status, json{{"error", message}}.dump() + "\n"};
}

Reply ok_reply(const json& body) { return {200, body.dump(2) + "\n"}; }

}  // namespace

struct AdminServer::Impl {
  Impl(asio::io_context& io_in, WebMaster& master_in)
      : io(io_in), master(master_in), acceptor(io_in) {}

  asio::io_context& io;
  WebMaster& master;
  local::acceptor acceptor;
  std::string path;
  std::shared_ptr<spdlog::logger> log = logger("admin");

  asio::awaitable<void> accept_loop() {
    while (acceptor.is_open()) {
      auto [ec, socket] = co_await acceptor.async_accept(kTuple);
      if (ec) {
        if (!acceptor.is_open() || ec == asio::error::operation_aborted) co_return;
        continue;
      }
      asio::co_spawn(io, serve(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<Reply> dispatch(const bhttp::request<bhttp::string_body>& request) {
    auto parts = parse_api_target(request.target()).parts;
    const bool get = request.method() == bhttp::verb::get;
    const bool post = request.method() == bhttp::verb::post;
    if (parts.size() < 2 || parts[0] != "v1") co_return error_reply(404, "no such endpoint");
    const std::string& what = parts[1];

    if (what == "status" && parts.size() == 2 && get) {
      const auto& config = master.config();
      co_return ok_reply({{"generation", master.generation()},
                          {"pid", ::getpid()},
                          {"frontendPid", master.frontend_pid()},
                          {"appliedGeneration", master.applied_generation()},
                          {"startedAt", iso_time(master.started_at_unix_ms())},
                          {"sites", config.sites.size()},
                          {"pools", config.pools.size()}});
    }
    if (what == "reload" && parts.size() == 2 && post) {
      auto result = master.reload();
      if (!result) co_return error_reply(400, result.error().describe());
      // Answer once the front end serves the new configuration.
      if (!co_await master.wait_applied(std::chrono::seconds(5))) {
        co_return error_reply(504,
                              "configuration accepted, but the front end has not applied it "
                              "within 5 s");
      }
      co_return ok_reply(
          {{"generation", result->generation}, {"sites", result->sites}, {"pools", result->pools}});
    }
    if (what == "sites") {
      if (parts.size() == 2 && get) {
        auto stats = co_await master.fetch_stats();
        json sites = json::array();
        for (const auto& [name, site] : master.config().sites) {
          sites.push_back(site_json(master, site, stats));
        }
        co_return ok_reply({{"sites", sites}});
      }
      if (parts.size() >= 3) {
        const std::string& name = parts[2];
        auto site = master.config().sites.find(name);
        if (site == master.config().sites.end()) {
          co_return error_reply(404, fmt::format("site \"{}\" does not exist", name));
        }
        if (parts.size() == 4 && post && (parts[3] == "start" || parts[3] == "stop")) {
          Status done = parts[3] == "start" ? master.start_site(name) : master.stop_site(name);
          if (!done) co_return error_reply(409, done.error().describe());
        } else if (!(parts.size() == 3 && get)) {
          co_return error_reply(404, "no such endpoint");
        }
        auto stats = co_await master.fetch_stats();
        co_return ok_reply(site_json(master, site->second, stats));
      }
    }
    if (what == "permits" && parts.size() == 3) {
      if (!post) co_return error_reply(405, "use POST to grant, renew or revoke a permit");
      co_return co_await grant_permit(parts[2], request.body());
    }
    if (what == "pools") {
      if (parts.size() == 2 && get) {
        auto stats = co_await master.fetch_stats();
        json pools = json::array();
        for (const auto& status : master.pools().status()) {
          pools.push_back(pool_json(status, master.config(), stats));
        }
        co_return ok_reply({{"pools", pools}});
      }
      if (parts.size() >= 3) {
        const std::string& name = parts[2];
        if (!master.pools().status(name)) {
          co_return error_reply(404, fmt::format("application pool \"{}\" does not exist", name));
        }
        if (parts.size() == 4 && post) {
          Status done;
          if (parts[3] == "start") {
            done = master.pools().start(name);
          } else if (parts[3] == "stop") {
            done = master.pools().stop(name);
          } else if (parts[3] == "recycle") {
            done = master.pools().recycle(name);
          } else {
            co_return error_reply(404, "no such endpoint");
          }
          if (!done) co_return error_reply(409, done.error().describe());
        } else if (!(parts.size() == 3 && get)) {
          co_return error_reply(404, "no such endpoint");
        }
        auto status = master.pools().status(name);
        if (!status)
          co_return error_reply(404, fmt::format("application pool \"{}\" is gone", name));
        auto stats = co_await master.fetch_stats();
        co_return ok_reply(pool_json(*status, master.config(), stats));
      }
    }
    co_return error_reply(get || post ? 404 : 405, "no such endpoint");
  }

  // POST /v1/permits/NAME {"deadlineBoottimeMs": N}.
  asio::awaitable<Reply> grant_permit(const std::string& name, const std::string& body) {
    if (master.config().sites.count(name) == 0) {
      co_return error_reply(404, fmt::format("site \"{}\" does not exist", name));
    }
    auto deadline = parse_permit_request(body, boottime_now_ms());
    if (!deadline) co_return error_reply(400, deadline.error().describe());
    const bool was_serving = master.site_state(name) == SiteState::kStarted;
    auto granted = master.grant_permit(name, *deadline);
    if (!granted) co_return error_reply(404, granted.error().describe());
    // A revocation answers once the front end no longer serves the site, so
    // the caller may rely on it at once.
    if (was_serving && master.site_state(name) != SiteState::kStarted) {
      if (!co_await master.wait_applied(std::chrono::seconds(5))) {
        log->warn("front end has not applied a revoked permit within 5 s site={}", name);
      }
    }
    co_return ok_reply({{"site", name},
                        {"clustered", granted->clustered},
                        {"permitRemainingMs", remaining_json(*granted)}});
  }

  // Streams events until the client goes away: chunked, one JSON per line.
  asio::awaitable<void> stream_events(beast::basic_stream<local>& stream) {
    bhttp::response<bhttp::empty_body> head{bhttp::status::ok, 11};
    head.set(bhttp::field::content_type, "application/x-ndjson");
    head.set(bhttp::field::cache_control, "no-cache");
    head.chunked(true);
    bhttp::response_serializer<bhttp::empty_body> serializer(head);
    stream.expires_never();
    auto [hec, hn] = co_await bhttp::async_write_header(stream, serializer, kTuple);
    if (hec) co_return;

    // Shared with the subscriber and the hang-up reader, which may outlive
    // this frame by one completion.
    struct Shared {
      explicit Shared(asio::io_context& context) : wake(context) {}
      std::deque<std::string> queue;
      asio::steady_timer wake;
      bool closed = false;
    };
    auto shared = std::make_shared<Shared>(io);
    auto id = master.events().subscribe([shared](const WebEvent& event) {
      shared->queue.push_back(to_json_line(event) + "\n");
      shared->wake.cancel();
    });
    // A reader that notices the client hanging up; it touches the socket only
    // while `closed` is false, i.e. while this frame still owns it.
    asio::co_spawn(
        io,
        [shared, &socket = stream.socket()]() -> asio::awaitable<void> {
          char scratch[256];
          while (!shared->closed) {
            auto [ec, n] = co_await socket.async_read_some(asio::buffer(scratch), kTuple);
            if (ec) break;
          }
          shared->closed = true;
          shared->wake.cancel();
        },
        asio::detached);
    while (!shared->closed) {
      while (!shared->queue.empty() && !shared->closed) {
        std::string chunk =
            fmt::format("{:x}\r\n{}\r\n", shared->queue.front().size(), shared->queue.front());
        shared->queue.pop_front();
        auto [ec, n] = co_await asio::async_write(stream, asio::buffer(chunk), kTuple);
        if (ec) shared->closed = true;
      }
      if (shared->closed) break;
      shared->wake.expires_at(asio::steady_timer::time_point::max());
      co_await shared->wake.async_wait(kTuple);
    }
    master.events().unsubscribe(id);
    shared->closed = true;
    boost::system::error_code ignored;
    stream.socket().close(ignored);
  }

  asio::awaitable<void> serve(local::socket socket) {
    beast::basic_stream<local> stream(std::move(socket));
    beast::flat_buffer buffer;
    while (true) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.body_limit(1 << 20);
      stream.expires_after(std::chrono::seconds(30));
      auto [ec, n] = co_await bhttp::async_read(stream, buffer, parser, kTuple);
      if (ec) co_return;
      auto request = parser.release();
      auto parts = parse_api_target(request.target()).parts;
      if (request.method() == bhttp::verb::get && parts.size() == 2 && parts[0] == "v1" &&
          parts[1] == "events") {
        co_await stream_events(stream);
        co_return;
      }
      Reply reply = co_await dispatch(request);
      bhttp::response<bhttp::string_body> response{static_cast<bhttp::status>(reply.status),
                                                   request.version()};
      response.set(bhttp::field::content_type, "application/json");
      response.set(bhttp::field::server, "clusweb");
      response.body() = std::move(reply.body);
      response.keep_alive(request.keep_alive());
      response.prepare_payload();
      stream.expires_after(std::chrono::seconds(30));
      auto [wec, wn] = co_await bhttp::async_write(stream, response, kTuple);
      if (wec || !request.keep_alive()) co_return;
    }
  }
};

AdminServer::AdminServer(asio::io_context& io, WebMaster& master)
    : impl_(std::make_unique<Impl>(io, master)) {}

AdminServer::~AdminServer() { close(); }

Status AdminServer::listen(const std::string& path) {
  if (Status listening = listen_api_socket(impl_->acceptor, path, "admin socket");
      !listening.ok()) {
    return listening;
  }
  impl_->path = path;
  asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached);
  impl_->log->info("admin api listening socket={}", path);
  return {};
}

void AdminServer::close() {
  if (impl_) close_api_socket(impl_->acceptor, impl_->path);
}

}  // namespace clusweb::web
