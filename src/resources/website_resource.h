#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "base/boottime.h"
#include "base/clock.h"
#include "cluster/group_controller.h"
#include "resources/resource.h"

namespace clusweb::resources {

// The `website` resource type: one site of the local web service (`clusweb
// web`) and its application pool, driven through the service's admin API
// (WebAdmin).
//
// Parameters: `site` (required); `pool` (default: the pool of the site's
// application at "/" as the service reports it; none when that application
// is static); `adminSocket` (default /run/clusweb/web.sock); `probePath`
// (default "/"); `expectStatus` (an exact status code; default: any status
// below 500 counts as an answer); `probeTimeout` (one probe, default 5s,
// base/duration.h syntax); `workerGrace` (default 2s, see watch()). Site
// and pool names are 1 to 64 letters, digits, '.', '_' or '-'. Parameters
// given to the constructor are defaults for those of every call (the agent
// sets `adminSocket` there); other names are refused.
//
//   open/close  check the parameters; nothing else.
//   online      wait until the admin socket answers (the service may still be
//               starting); grant the site's serving permit (see below); start
//               the pool unless it is Started, start the site unless it is
//               Started; then probe through the site's own binding
//               (probe_target()) until the answer has the expected status and
//               the looksalive checks pass. Progress lines in the output.
//   looksalive  the site is Started, its permit (when the service reports
//               one) is live, its pool is Started with a live worker: admin
//               API reads only.
//   isalive     looksalive, then one probe with the expected status.
//   offline     stop the site and wait until it is Stopped (the service
//               drains it); stop the pool and wait for it, unless another
//               Started or Starting site uses it; revoke the permit. True when
//               the site and (unless kept) the pool are Stopped.
//   terminate   revoke the permit first (the site stops serving at once),
//               then ask the service to stop the site, and the pool unless
//               another Started or Starting site uses it, waiting for no
//               drain. True when the permit is revoked or the site is
//               Stopped. A call in flight is ended first ("superseded by
//               terminate").
//
// Every call ends within CallContext::timeout (timed_out when it ran out).
//
// Permits: the deadline is the node's fencing deadline converted from the
// Clock (CLOCK_MONOTONIC) to CLOCK_BOOTTIME as boottime_now + (deadline -
// clock.now()), both rounded down, boottime read first, so never later than
// the fencing deadline. The fencing deadline is read immediately before the
// permit is computed; once it has passed the resource refuses to grant
// ("fencing deadline passed"). From a successful grant in Online until
// Offline or Terminate starts, renewed() re-posts the permit with each new
// deadline in the background: one post at a time (a newer deadline waits for
// the one in flight, older ones are dropped), a failure is logged and
// retried at the next renewal.
//
// watch() follows the service's event stream (GET /v1/events) for the site
// and pool named by the latest call's parameters, and posts `looks_dead`
// when the site or the pool leaves Started, the permit lapses or the pool's
// last live worker exits and none replaces it within the worker grace (the
// `workerGrace` parameter; the web service restarts a worker that exited, and
// rapid-fail protection stops a pool whose workers keep failing, which
// counts at once). Events trigger the looksalive checks; so does every
// (re)connection, to catch what happened meanwhile). It reports once per
// failure: after a report, only a check that finds everything alive again
// re-arms it. The stream reconnects after errors (200 ms, doubling up to
// 2 s); an unreachable service is not itself reported (the polls see it).
// Nothing is reported once Offline or Terminate has started.
//
// Threading: calls, renewed(), watch(), unwatch() and destruction happen on
// the executor's thread, and `looks_dead`'s executor runs there too. The
// resource may be destroyed while a call, a renewal or a watch runs: they
// stop at once (a call ends with ok = false, "resource destroyed"), touching
// nothing of the resource but state they share.
class WebsiteResource final : public Resource {
 public:
  // CLOCK_BOOTTIME now, in milliseconds.
  using BootClock = std::function<std::int64_t()>;

  static constexpr const char* kDefaultAdminSocket = "/run/clusweb/web.sock";
  static constexpr std::chrono::milliseconds kDefaultProbeTimeout{5000};
  // How long a Started pool may be without a live worker, while the web
  // service replaces one that exited, before the site counts as failed.
  static constexpr std::chrono::milliseconds kDefaultWorkerGrace{2000};

  // `clock` is the one the agent's fencing deadlines are measured on (it
  // must outlive the resource; CallContext::clock is not used); `parameters`
  // are defaults for every call's; `boottime` reads CLOCK_BOOTTIME (a seam
  // for tests).
  WebsiteResource(boost::asio::any_io_executor executor, const Clock& clock,
                  std::map<std::string, std::string> parameters = {},
                  BootClock boottime = boottime_now_ms);
  ~WebsiteResource() override;
  WebsiteResource(const WebsiteResource&) = delete;
  WebsiteResource& operator=(const WebsiteResource&) = delete;

  boost::asio::awaitable<CallResult> call(cluster::Verb verb, const CallContext& context) override;
  void renewed(Clock::TimePoint deadline) override;
  void watch(boost::asio::any_io_executor executor,
             std::function<void(std::string reason)> looks_dead) override;
  void unwatch() override;

  struct State;  // shared with the coroutines that outlive a call (in the .cc)

 private:
  std::shared_ptr<State> state_;
};

}  // namespace clusweb::resources
