#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "http/access_log.h"
#include "http/runtime.h"

namespace clusweb::http {

// The HTTP front end: serving threads, each with its own io_context, accepting
// on every listener and serving static content and pool applications.
//
// The server holds no privileges and binds nothing: listening sockets arrive
// as descriptors. update() swaps in a new Runtime; connections whose listener
// disappears or whose site stops are closed, all others keep going (sites whose
// configuration did not change keep their connections). A clustered site's
// connections are also closed, responses in flight aborted, when its serving
// permit (SitePermit) lapses; no request is served for it after that.
class HttpServer {
 public:
  HttpServer(int threads, AccessLogWriter& logs, const Clock& clock);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Installs `runtime`. `listener_fds` maps each listener key of the runtime
  // to a listening socket; the server duplicates the descriptors it keeps, so
  // the caller still owns them; -1 means "keep the socket you have". Listeners
  // not in the map are closed. Thread-safe; takes effect asynchronously on
  // every serving thread.
  // `applied` (optional) runs on some serving thread once every thread uses
  // the new runtime.
  void update(const RuntimePtr& runtime, const std::map<std::string, int>& listener_fds,
              std::function<void()> applied = {});

  // Tells every serving thread that deadlines of serving permits (SitePermit)
  // changed. Each thread enforces them by itself: it closes the connections
  // of a site whose permit has lapsed, aborting responses in flight, and waits
  // on CLOCK_BOOTTIME for the next deadline of the runtime it serves. Call
  // after storing new deadlines. Thread-safe.
  void permits_changed();

  // Starts the serving threads; fails only when a thread cannot get its
  // permit timer (no descriptor left).
  Status start();
  // Stops accepting, closes idle connections, lets in-flight responses finish
  // for up to `grace`, then closes the rest. Returns when every thread ended.
  void stop(std::chrono::milliseconds grace);

  std::int64_t open_connections() const { return connections_.load(std::memory_order_relaxed); }

  // One serving thread and its state; defined in server.cc.
  struct Worker;

 private:
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<std::int64_t> connections_{0};
};

}  // namespace clusweb::http
