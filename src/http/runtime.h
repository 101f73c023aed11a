#pragma once

#include <atomic>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/boottime.h"
#include "base/result.h"
#include "base/unique_fd.h"
#include "config/web_config.h"
#include "http/mime_types.h"
#include "http/router.h"
#include "http/tls.h"

namespace clusweb::http {

// Counters of one site, kept across reloads (by site name). Lock-free.
struct SiteCounters {
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> responses[5] = {};  // 1xx .. 5xx
  std::atomic<std::uint64_t> bytes_sent{0};
  std::atomic<std::int64_t> active_connections{0};

  void count_response(int status, std::uint64_t bytes) {
    requests.fetch_add(1, std::memory_order_relaxed);
    int cls = status / 100 - 1;
    if (cls >= 0 && cls < 5) responses[cls].fetch_add(1, std::memory_order_relaxed);
    bytes_sent.fetch_add(bytes, std::memory_order_relaxed);
  }
};

// The serving permit of one site, kept across reloads (by site name): a
// CLOCK_BOOTTIME deadline in ms (base/boottime.h), or kUnlimited for a site
// that is not clustered. The control thread sets it, serving threads check it
// on every request and when told to enforce permits. Lock-free.
struct SitePermit {
  static constexpr std::int64_t kUnlimited = std::numeric_limits<std::int64_t>::max();
  std::atomic<std::int64_t> deadline_ms{kUnlimited};

  // True while the site may serve; reads the clock only for a clustered site.
  bool allows_now() const {
    const std::int64_t deadline = deadline_ms.load(std::memory_order_relaxed);
    return deadline == kUnlimited || boottime_now_ms() < deadline;
  }
};

// How a site serves: not at all, on its own (not clustered), or under a live permit (the
// cluster brought it online here).
enum class Serving { kNo, kFreely, kUnderPermit };

inline Serving serving_of(bool started, const SitePermit& permit) {
  if (!started) return Serving::kNo;
  const std::int64_t deadline = permit.deadline_ms.load(std::memory_order_relaxed);
  if (deadline == SitePermit::kUnlimited) return Serving::kFreely;
  return boottime_now_ms() < deadline ? Serving::kUnderPermit : Serving::kNo;
}

struct PoolCounters {
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> queue_full{0};
};

// What the front end knows of a site: its configuration, its open root and
// counters. Shared by runtimes of successive generations while the site's
// configuration does not change.
struct SiteRuntime {
  config::Site site;
  // O_PATH directory of site.root, opened when the site began to serve as it does now
  // (`serving`); invalid while it does not serve, or when it could not be opened.
  UniqueFd root_fd;
  std::string root_error;          // why root_fd is invalid although the site serves
  Serving serving = Serving::kNo;  // what root_fd was opened (or not) for
  MimeTypes mime;
  std::string cache_key;  // site name + generation it was opened in
  std::shared_ptr<SiteCounters> counters;
  std::shared_ptr<const SitePermit> permit;  // never null
  bool access_log = false;
};

// A pool as the front end sees it: whether it takes requests and where its
// workers listen ("unix:/path" or "tcp:127.0.0.1:port").
struct PoolRuntime {
  std::string name;
  int state = 3;  // IIS numbering: 1 Started, 3 Stopped ...
  std::string reason;
  std::vector<std::string> endpoints;
  int queue_length = 1000;
  std::shared_ptr<PoolCounters> counters;
};

struct ListenerRuntime {
  std::string key;  // Binding::listener_key()
  bool tls = false;
  std::shared_ptr<TlsListener> tls_listener;  // for https
};

// One immutable view of everything the front end serves. A new one is built
// for every configuration, site-state or pool change and swapped in; requests
// in flight keep the one they started with.
struct Runtime {
  std::uint64_t generation = 0;
  std::shared_ptr<const config::WebConfig> config;
  std::shared_ptr<const Router> router;                   // built over *config
  std::vector<std::shared_ptr<const SiteRuntime>> sites;  // by router site index
  std::vector<bool> started;                              // by router site index
  std::map<std::string, std::shared_ptr<const PoolRuntime>, std::less<>> pools;
  std::vector<ListenerRuntime> listeners;  // by router listener index

  const PoolRuntime* pool(std::string_view name) const {
    auto it = pools.find(name);
    return it == pools.end() ? nullptr : it->second.get();
  }
};

using RuntimePtr = std::shared_ptr<const Runtime>;

}  // namespace clusweb::http
