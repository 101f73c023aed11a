#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "base/result.h"

namespace clusweb::resources {

// Error::code of WebAdmin and WebEventStream failures.
inline constexpr int kAdminUnreachable = 2;  // no connection, no answer in time, connection lost
inline constexpr int kAdminNotFound = 3;     // 404: no such site, pool or endpoint
inline constexpr int kAdminRefused = 4;      // any other error status; the service's message
inline constexpr int kAdminBadReply = 5;     // an answer that is not the JSON expected
inline constexpr int kAdminStopped = 6;      // the stop token was triggered

// The parts of the admin API's answers that the website resource reads.
struct SiteApplication {
  std::string path;  // "/", "/api"
  std::string pool;  // "" = static content
};

struct SiteInfo {
  std::string name;
  std::string state;                  // "Started", "Stopped", "Starting", "Stopping"
  std::string reason;                 // why it stopped ("Disabled", "serving permit expired")
  std::vector<std::string> bindings;  // "http://127.0.0.1:8080", "https://*:443/www.example.com"
  std::vector<SiteApplication> applications;
  bool clustered = false;
  // Absent when the service does not report permits or the site never had one.
  std::optional<std::int64_t> permit_remaining_ms;

  // The pool of the application at "/", or "" when there is none or it is static.
  std::string root_pool() const;
  // Whether any of the site's applications runs in `pool`.
  bool uses_pool(const std::string& pool) const;
};

struct PoolWorker {
  std::int64_t pid = 0;
  bool ready = false;
};

struct PoolInfo {
  std::string name;
  std::string state;   // "Started", "Stopped", "Starting", "Stopping", "Unknown"
  std::string reason;  // why it stopped ("RapidFailProtection"), or ""
  std::vector<PoolWorker> workers;

  // Workers with a process (pid > 0), ready or still starting.
  int live_workers() const;
};

// What the service serves of the shared configuration (GET /v1/status, POST /v1/reload).
struct SharedConfigInfo {
  std::int64_t revision = 0;  // served; 0 = none
  std::string problem;        // why the cache's newest revision is not served; "" when it is
};

struct PermitInfo {
  std::string site;
  std::int64_t remaining_ms = 0;  // 0 = revoked, expired or never granted
};

// One line of GET /v1/events.
struct WebEventInfo {
  std::string type;  // "site", "pool", "worker", "permit", "reload", "frontend"
  std::string name;
  std::string state;
  std::string reason;
  std::string message;
};

// An asynchronous client of the web service's admin API (HTTP/1.1 + JSON on
// the unix socket of `clusweb web`; docs/operators-guide.md). Each request
// opens its own connection and ends by `deadline` at the latest (then it is
// a kAdminUnreachable Error, "timed out"); triggering `stop` ends a request in
// flight at once (kAdminStopped). An error status is an Error carrying the
// service's message. Use it on the executor's thread; the object must outlive
// the requests it makes (co_await them).
class WebAdmin {
 public:
  using Deadline = std::chrono::steady_clock::time_point;

  WebAdmin(boost::asio::any_io_executor executor, std::string socket_path,
           std::stop_token stop = {});

  const std::string& socket_path() const { return socket_path_; }
  const boost::asio::any_io_executor& executor() const { return executor_; }

  boost::asio::awaitable<Result<SiteInfo>> site(std::string name, Deadline deadline) const;
  boost::asio::awaitable<Result<std::vector<SiteInfo>>> sites(Deadline deadline) const;
  // POST /v1/sites/NAME/start|stop: the site after the change.
  boost::asio::awaitable<Result<SiteInfo>> start_site(std::string name, Deadline deadline) const;
  boost::asio::awaitable<Result<SiteInfo>> stop_site(std::string name, Deadline deadline) const;

  boost::asio::awaitable<Result<PoolInfo>> pool(std::string name, Deadline deadline) const;
  boost::asio::awaitable<Result<PoolInfo>> start_pool(std::string name, Deadline deadline) const;
  boost::asio::awaitable<Result<PoolInfo>> stop_pool(std::string name, Deadline deadline) const;

  // POST /v1/reload: the configuration (and the shared configuration cache) read again;
  // what the service serves of the shared configuration afterwards.
  boost::asio::awaitable<Result<SharedConfigInfo>> reload(Deadline deadline) const;

  // POST /v1/permits/SITE {"deadlineBoottimeMs": N}: the site serves until
  // N (ms of CLOCK_BOOTTIME); 0 revokes the permit.
  boost::asio::awaitable<Result<PermitInfo>> grant_permit(std::string site,
                                                          std::int64_t deadline_boottime_ms,
                                                          Deadline deadline) const;

 private:
  struct Reply {
    int status = 0;
    std::string body;
  };
  boost::asio::awaitable<Result<Reply>> exchange(bool post, std::string target, std::string body,
                                                 Deadline deadline) const;
  // exchange() + a 200 answer holding a JSON object (404: kAdminNotFound,
  // other statuses: kAdminRefused).
  boost::asio::awaitable<Result<nlohmann::json>> object_request(bool post, std::string target,
                                                                std::string body,
                                                                Deadline deadline) const;
  boost::asio::awaitable<Result<SiteInfo>> site_request(bool post, std::string target,
                                                        Deadline deadline) const;
  boost::asio::awaitable<Result<PoolInfo>> pool_request(bool post, std::string target,
                                                        Deadline deadline) const;

  boost::asio::any_io_executor executor_;
  std::string socket_path_;
  std::stop_token stop_;
};

// GET /v1/events, followed: open() connects and waits for the answer's
// header; next() then yields one event per line for as long as the service
// keeps the stream open. `stop` ends a pending open() or next() at once
// (kAdminStopped). Use it on the executor's thread.
class WebEventStream {
 public:
  WebEventStream(boost::asio::any_io_executor executor, std::string socket_path,
                 std::stop_token stop = {});
  ~WebEventStream();
  WebEventStream(const WebEventStream&) = delete;
  WebEventStream& operator=(const WebEventStream&) = delete;

  boost::asio::awaitable<Status> open(WebAdmin::Deadline deadline);
  // Waits as long as it takes; an Error when the stream ends or breaks. A
  // line that is not an event object is skipped.
  boost::asio::awaitable<Result<WebEventInfo>> next();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace clusweb::resources
