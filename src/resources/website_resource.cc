#include "resources/website_resource.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <cstdint>
#include <map>
#include <optional>
#include <stop_token>
#include <string_view>
#include <utility>
#include <vector>

#include "base/duration.h"
#include "base/log.h"
#include "resources/site_probe.h"
#include "resources/web_admin.h"

namespace clusweb::resources {

namespace asio = boost::asio;
using cluster::Verb;
using std::chrono::milliseconds;
using Deadline = std::chrono::steady_clock::time_point;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// Retries inside a call (the service starting, a probe not answering yet, a
// state not reached yet): short at first, so a call ends soon after the
// condition holds, then no busier than twice a second.
constexpr milliseconds kFirstRetryDelay{50};
constexpr milliseconds kMaxRetryDelay{500};
// A renewal that takes longer than this is overtaken by the next one anyway.
constexpr milliseconds kRenewalTimeout{2000};
// The watcher: connecting to the event stream, and each check an event causes.
constexpr milliseconds kStreamOpenTimeout{5000};
constexpr milliseconds kWatchCheckTimeout{5000};
// How often a pool without a live worker is read during the worker grace.
constexpr milliseconds kWorkerPoll{50};
constexpr milliseconds kFirstReconnectDelay{200};
constexpr milliseconds kMaxReconnectDelay{2000};

constexpr std::string_view kStarted = "Started";
constexpr std::string_view kStarting = "Starting";
constexpr std::string_view kStopped = "Stopped";

Deadline steady_now() { return std::chrono::steady_clock::now(); }

milliseconds next_delay(milliseconds delay, milliseconds limit) {
  return std::min(delay * 2, limit);
}

struct Config {
  std::string site;
  std::string pool;  // "" = the pool of the site's root application
  std::string admin_socket = WebsiteResource::kDefaultAdminSocket;
  std::string probe_path = "/";
  std::optional<int> expect_status;
  milliseconds probe_timeout = WebsiteResource::kDefaultProbeTimeout;
  milliseconds worker_grace = WebsiteResource::kDefaultWorkerGrace;

  bool expected(int status) const {
    return expect_status ? status == *expect_status : status < 500;
  }
  std::string describe_expected() const {
    return expect_status ? fmt::format("status {}", *expect_status) : "a status below 500";
  }
};

// The web service's rule for site and pool names, which also keeps them safe
// inside a request target.
bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

// The call's parameters over the resource's defaults.
Result<Config> parse_config(const std::map<std::string, std::string>& defaults,
                            const std::map<std::string, std::string>& call_parameters) {
  std::map<std::string, std::string> parameters = defaults;
  for (const auto& [name, value] : call_parameters) parameters[name] = value;
  Config config;
  for (const auto& [name, value] : parameters) {
    if (name == "site") {
      if (!valid_name(value)) {
        return make_error("parameter site: not a site name: \"{}\"", value);
      }
      config.site = value;
    } else if (name == "pool") {
      if (!valid_name(value)) {
        return make_error("parameter pool: not a pool name: \"{}\"", value);
      }
      config.pool = value;
    } else if (name == "adminSocket") {
      if (!value.starts_with('/')) {
        return make_error("parameter adminSocket: not an absolute path: \"{}\"", value);
      }
      config.admin_socket = value;
    } else if (name == "probePath") {
      const bool printable = std::all_of(value.begin(), value.end(), [](char c) {
        return static_cast<unsigned char>(c) > 0x20 && c != 0x7f;
      });
      if (!value.starts_with('/') || !printable) {
        return make_error("parameter probePath: not a path starting with '/': \"{}\"", value);
      }
      config.probe_path = value;
    } else if (name == "expectStatus") {
      int status = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), status);
      if (ec != std::errc() || end != value.data() + value.size() || status < 100 || status > 599) {
        return make_error("parameter expectStatus: not a status code from 100 to 599: \"{}\"",
                          value);
      }
      config.expect_status = status;
    } else if (name == "probeTimeout") {
      Result<milliseconds> timeout = parse_duration(value);
      if (!timeout || *timeout <= milliseconds::zero()) {
        return make_error("parameter probeTimeout: not a positive duration: \"{}\"", value);
      }
      config.probe_timeout = *timeout;
    } else if (name == "workerGrace") {
      Result<milliseconds> grace = parse_duration(value);
      if (!grace || *grace < milliseconds::zero()) {
        return make_error("parameter workerGrace: not a duration: \"{}\"", value);
      }
      config.worker_grace = *grace;
    } else {
      return make_error(
          "unknown parameter {} (known: site, pool, adminSocket, probePath, expectStatus, "
          "probeTimeout, workerGrace)",
          name);
    }
  }
  if (config.site.empty()) return make_error("missing parameter site");
  return config;
}

// An admin API failure with what was being done in front; the code stays, so
// callers still tell an unreachable service from a refusal.
Error while_doing(std::string_view what, const Error& error) {
  return Error{fmt::format("{}: {}", what, error.message), {}, 0, error.code};
}

struct RequestStop {
  std::stop_source* source;
  void operator()() const noexcept { source->request_stop(); }
};

struct CancelTimer {
  asio::steady_timer* timer;
  void operator()() const noexcept { timer->cancel(); }
};

// Waits `delay`, cut short at `deadline`; false when stopped or the deadline
// has come.
asio::awaitable<bool> pause(const asio::any_io_executor& executor, milliseconds delay,
                            Deadline deadline, const std::stop_token& stop) {
  if (stop.stop_requested()) co_return false;
  const Deadline until = deadline - steady_now() < delay ? deadline : steady_now() + delay;
  asio::steady_timer timer(executor, until);
  const std::stop_callback on_stop(stop, CancelTimer{&timer});
  co_await timer.async_wait(kTuple);
  co_return !stop.stop_requested() && steady_now() < deadline;
}

// One call in flight. Terminate supersedes it (stops its requests at once)
// and waits for it to end; destroying the resource stops it too.
class Run {
 public:
  Run(const asio::any_io_executor& executor, const std::stop_token& destroyed)
      : done_(executor), on_destroyed_(destroyed, RequestStop{&stop_}) {
    done_.expires_at(asio::steady_timer::time_point::max());
  }
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;

  std::stop_token token() const { return stop_.get_token(); }
  bool superseded() const { return superseded_; }

  void supersede() {
    superseded_ = true;
    stop_.request_stop();
  }

  void finish() {
    finished_ = true;
    done_.cancel();
  }

  // Until the call has ended, at most until `deadline`.
  asio::awaitable<void> wait(Deadline deadline) {
    while (!finished_ && steady_now() < deadline) {
      done_.expires_at(deadline);
      co_await done_.async_wait(kTuple);
    }
  }

 private:
  std::stop_source stop_;
  asio::steady_timer done_;  // cancelled when the call ends
  bool superseded_ = false;
  bool finished_ = false;
  std::stop_callback<RequestStop> on_destroyed_;  // last: goes before stop_
};

// What watch() was given; shared with the coroutine that follows the events.
struct Watch {
  std::stop_source stop;  // unwatch()
  asio::any_io_executor callback_executor;
  std::function<void(std::string)> looks_dead;
};

}  // namespace

struct WebsiteResource::State {
  State(asio::any_io_executor executor_in, const Clock& clock_in,
        std::map<std::string, std::string> defaults_in, BootClock boottime_in)
      : executor(std::move(executor_in)),
        clock(clock_in),
        defaults(std::move(defaults_in)),
        boottime(std::move(boottime_in)) {}

  asio::any_io_executor executor;
  const Clock& clock;
  std::map<std::string, std::string> defaults;  // under every call's parameters
  BootClock boottime;
  std::stop_source destroyed;      // the resource's destructor
  std::shared_ptr<Run> in_flight;  // the call other than Terminate running now
  std::optional<Config> config;    // of the latest call with valid parameters

  // Permits: `online` from a successful grant in Online until Offline or
  // Terminate starts (then `stopping`, until the next Online).
  bool online = false;
  bool stopping = false;
  std::string permit_site;
  std::string permit_socket;
  std::optional<Clock::TimePoint> renewal_deadline;  // the newest deadline not yet posted
  std::shared_ptr<std::stop_source> renewal;         // the renewal coroutine running, if any

  std::shared_ptr<Watch> watch;
};

namespace {

using State = WebsiteResource::State;

// The permit deadline for a fencing deadline, or why there is none.
Result<std::int64_t> permit_deadline(const State& state, Clock::TimePoint fencing_deadline) {
  // CLOCK_BOOTTIME before the monotonic clock: time passing between the two
  // reads can only make the permit earlier, never later.
  const std::int64_t boot_now = state.boottime();
  const Clock::TimePoint now = state.clock.now();
  const auto left = std::chrono::floor<milliseconds>(fencing_deadline - now);
  if (left <= milliseconds::zero()) return make_error("fencing deadline passed");
  return boot_now + left.count();
}

// Offline and Terminate: no renewal from now on, none in flight, the watcher
// quiet. Returns whether a renewal was in flight (its post may still land).
bool begin_stopping(State& state) {
  state.online = false;
  state.stopping = true;
  state.renewal_deadline.reset();
  if (!state.renewal) return false;
  state.renewal->request_stop();
  state.renewal.reset();
  return true;
}

// Re-posts the permit with the newest renewal deadline until none is left.
asio::awaitable<void> renew(std::shared_ptr<State> state, std::shared_ptr<std::stop_source> mine) {
  const auto log = logger("resources");
  while (!mine->stop_requested() && state->online && state->renewal_deadline) {
    const Clock::TimePoint fencing = *std::exchange(state->renewal_deadline, std::nullopt);
    Result<std::int64_t> permit = permit_deadline(*state, fencing);
    if (!permit) {
      log->warn("permit not renewed site={} {}", state->permit_site, permit.error().message);
      continue;
    }
    const auto left = std::chrono::floor<milliseconds>(fencing - state->clock.now());
    const WebAdmin admin(state->executor, state->permit_socket, mine->get_token());
    Result<PermitInfo> granted = co_await admin.grant_permit(
        state->permit_site, *permit, steady_now() + std::min(kRenewalTimeout, left));
    if (!granted && granted.error().code != kAdminStopped) {
      log->warn("permit renewal failed site={} {}; retried at the next renewal", state->permit_site,
                granted.error().message);
    }
  }
  if (state->renewal == mine) state->renewal.reset();
}

// What the looksalive checks saw.
struct Health {
  SiteInfo site;
  std::string pool;  // the pool checked; "" = none
};

// Site Started with a live permit (when the service reports permits), pool
// Started with a live worker: a pool without one is read again until one is
// back, for the worker grace at most (within `deadline`). A health problem is
// an Error with code 0; an admin API failure keeps its code. `pool_seen`, when
// given, gets the pool's name as soon as it is known, healthy or not.
asio::awaitable<Result<Health>> check_alive(const WebAdmin& admin, const Config& config,
                                            Deadline deadline, const std::stop_token& stop,
                                            std::string* pool_seen = nullptr) {
  Result<SiteInfo> site = co_await admin.site(config.site, deadline);
  if (!site) co_return while_doing(fmt::format("site {}", config.site), site.error());
  if (site->state != kStarted) {
    co_return make_error("site {} is {}{}", config.site, site->state,
                         site->reason.empty() ? "" : " (" + site->reason + ")");
  }
  if (site->clustered && site->permit_remaining_ms && *site->permit_remaining_ms <= 0) {
    co_return make_error("site {} has no live permit", config.site);
  }
  Health health{std::move(*site), config.pool};
  if (health.pool.empty()) health.pool = health.site.root_pool();
  if (pool_seen != nullptr) *pool_seen = health.pool;
  if (health.pool.empty()) co_return health;
  Result<PoolInfo> pool = co_await admin.pool(health.pool, deadline);
  if (!pool) co_return while_doing(fmt::format("pool {}", health.pool), pool.error());
  const Deadline grace_ends = std::min(deadline, steady_now() + config.worker_grace);
  while (true) {
    if (pool->state != kStarted) {
      co_return make_error("pool {} is {}{}", health.pool, pool->state,
                           pool->reason.empty() ? "" : " (" + pool->reason + ")");
    }
    if (pool->live_workers() > 0) co_return health;
    if (!co_await pause(admin.executor(), kWorkerPoll, grace_ends, stop)) {
      co_return make_error("pool {} has no live worker", health.pool);
    }
    pool = co_await admin.pool(health.pool, deadline);
    if (!pool) co_return while_doing(fmt::format("pool {}", health.pool), pool.error());
  }
}

// One call: its parameters, deadline, requests and result so far.
struct Call {
  Call(std::shared_ptr<State> state_in, CallContext context_in, Config config_in,
       Deadline deadline_in, std::shared_ptr<Run> run_in)
      : state(std::move(state_in)),
        context(std::move(context_in)),
        config(std::move(config_in)),
        deadline(deadline_in),
        run(std::move(run_in)),
        admin(state->executor, config.admin_socket, run->token()) {}

  std::shared_ptr<State> state;
  CallContext context;
  Config config;
  Deadline deadline;
  std::shared_ptr<Run> run;
  WebAdmin admin;
  CallResult result;

  std::stop_token stop() const { return run->token(); }
  void say(std::string line) { result.output.push_back(std::move(line)); }

  CallResult fail(std::string detail) {
    result.ok = false;
    if (state->destroyed.stop_requested()) {
      result.detail = "resource destroyed";
    } else if (run->superseded()) {
      result.detail = "superseded by terminate";
    } else if (steady_now() >= deadline) {
      result.timed_out = true;
      result.detail =
          fmt::format("timed out after {} ms: {}", context.timeout.count(), std::move(detail));
    } else {
      result.detail = std::move(detail);
    }
    return std::move(result);
  }

  CallResult succeed() {
    result.ok = true;
    return std::move(result);
  }

  // Probe deadline: one probe's timeout, within the call's.
  Deadline probe_deadline() const {
    return std::min(deadline, steady_now() + config.probe_timeout);
  }
};

// Grants the permit for the Online call and starts the renewals.
asio::awaitable<Status> grant(Call& c) {
  if (!c.context.fencing_deadline) co_return make_error("no fencing deadline");
  State& state = *c.state;
  Result<std::int64_t> permit = permit_deadline(state, c.context.fencing_deadline());
  if (!permit) co_return permit.error();
  Result<PermitInfo> granted = co_await c.admin.grant_permit(c.config.site, *permit, c.deadline);
  if (!granted) co_return while_doing("grant permit", granted.error());
  if (granted->remaining_ms <= 0) co_return make_error("the permit granted is not live");
  if (c.stop().stop_requested()) co_return make_error("stopped");
  state.online = true;
  state.permit_site = c.config.site;
  state.permit_socket = c.config.admin_socket;
  c.say(fmt::format("permit granted until boottime {} ms ({} ms left)", *permit,
                    granted->remaining_ms));
  co_return ok_status();
}

asio::awaitable<CallResult> online(Call& c) {
  c.state->stopping = false;
  const std::string& name = c.config.site;

  // The agent starts the web service; it may not answer yet.
  Result<SiteInfo> site = make_error("not asked yet");
  milliseconds delay = kFirstRetryDelay;
  for (int attempt = 1;; ++attempt) {
    site = co_await c.admin.site(name, c.deadline);
    if (site) {
      c.say(fmt::format("web service answers at {} (attempt {})", c.config.admin_socket, attempt));
      break;
    }
    if (site.error().code != kAdminUnreachable ||
        !co_await pause(c.state->executor, delay, c.deadline, c.stop())) {
      co_return c.fail(while_doing(fmt::format("site {}", name), site.error()).message);
    }
    delay = next_delay(delay, kMaxRetryDelay);
  }

  if (Status granted = co_await grant(c); !granted) co_return c.fail(granted.error().message);

  const std::string pool = c.config.pool.empty() ? site->root_pool() : c.config.pool;
  if (!pool.empty()) {
    Result<PoolInfo> info = co_await c.admin.pool(pool, c.deadline);
    if (!info) co_return c.fail(while_doing(fmt::format("pool {}", pool), info.error()).message);
    if (info->state == kStarted) {
      c.say(fmt::format("pool {} already Started", pool));
    } else {
      info = co_await c.admin.start_pool(pool, c.deadline);
      if (!info) {
        co_return c.fail(while_doing(fmt::format("start pool {}", pool), info.error()).message);
      }
      c.say(fmt::format("pool {} started ({})", pool, info->state));
    }
  }

  if (site->state == kStarted) {
    c.say(fmt::format("site {} already Started", name));
  } else {
    site = co_await c.admin.start_site(name, c.deadline);
    if (!site) {
      co_return c.fail(while_doing(fmt::format("start site {}", name), site.error()).message);
    }
    c.say(fmt::format("site {} started ({})", name, site->state));
  }

  Result<ProbeTarget> target = probe_target(site->bindings, c.config.probe_path);
  if (!target) co_return c.fail(fmt::format("site {}: {}", name, target.error().message));
  delay = kFirstRetryDelay;
  for (int attempt = 1;; ++attempt) {
    std::string problem;
    Result<int> answer =
        co_await probe_site(c.state->executor, *target, c.probe_deadline(), c.stop());
    if (!answer) {
      problem = answer.error().message;
    } else if (!c.config.expected(*answer)) {
      problem = fmt::format("probe {} answered {}, expected {}", target->describe(), *answer,
                            c.config.describe_expected());
    } else if (Result<Health> health =
                   co_await check_alive(c.admin, c.config, c.deadline, c.stop());
               !health) {
      problem = health.error().message;
    } else {
      c.say(fmt::format("probe {} answered {} (attempt {})", target->describe(), *answer, attempt));
      logger("resources")->info("site online resource={} site={}", c.context.resource, name);
      co_return c.succeed();
    }
    if (!co_await pause(c.state->executor, delay, c.deadline, c.stop())) {
      co_return c.fail(problem);
    }
    delay = next_delay(delay, kMaxRetryDelay);
  }
}

asio::awaitable<CallResult> looks_alive(Call& c) {
  Result<Health> health = co_await check_alive(c.admin, c.config, c.deadline, c.stop());
  if (!health) co_return c.fail(health.error().message);
  co_return c.succeed();
}

asio::awaitable<CallResult> is_alive(Call& c) {
  Result<Health> health = co_await check_alive(c.admin, c.config, c.deadline, c.stop());
  if (!health) co_return c.fail(health.error().message);
  Result<ProbeTarget> target = probe_target(health->site.bindings, c.config.probe_path);
  if (!target) co_return c.fail(fmt::format("site {}: {}", c.config.site, target.error().message));
  Result<int> answer =
      co_await probe_site(c.state->executor, *target, c.probe_deadline(), c.stop());
  if (!answer) co_return c.fail(answer.error().message);
  if (!c.config.expected(*answer)) {
    co_return c.fail(fmt::format("probe {} answered {}, expected {}", target->describe(), *answer,
                                 c.config.describe_expected()));
  }
  c.say(fmt::format("probe {} answered {}", target->describe(), *answer));
  // Serving, but not under a permit of this object's: adopted after the agent restarted (or
  // found serving while unmanaged). Its permit is renewed from now on, as one granted here.
  if (!c.state->online && !c.state->stopping) {
    if (Status granted = co_await grant(c); !granted) {
      co_return c.fail(fmt::format("site {}: {}", c.config.site, granted.error().message));
    }
  }
  co_return c.succeed();
}

// Polls until the site or pool is Stopped; the last state seen, or an Error.
template <class Read>
asio::awaitable<Result<std::string>> wait_stopped(Call& c, Read read) {
  milliseconds delay = kFirstRetryDelay;
  while (true) {
    Result<std::string> state = co_await read();
    if (!state || *state == kStopped) co_return state;
    if (!co_await pause(c.state->executor, delay, c.deadline, c.stop())) co_return state;
    delay = next_delay(delay, kMaxRetryDelay);
  }
}

// Other sites, Started or Starting, that have an application in `pool`.
std::vector<std::string> pool_users(const std::vector<SiteInfo>& sites, const std::string& site,
                                    const std::string& pool) {
  std::vector<std::string> users;
  for (const SiteInfo& other : sites) {
    if (other.name != site && (other.state == kStarted || other.state == kStarting) &&
        other.uses_pool(pool)) {
      users.push_back(other.name);
    }
  }
  return users;
}

asio::awaitable<CallResult> offline(Call& c) {
  const std::string& name = c.config.site;
  Result<SiteInfo> site = co_await c.admin.site(name, c.deadline);
  if (!site && site.error().code == kAdminNotFound) {
    c.say(fmt::format("site {} does not exist", name));
    co_return c.succeed();
  }
  if (!site) co_return c.fail(while_doing(fmt::format("site {}", name), site.error()).message);

  if (site->state != kStopped) {
    Result<SiteInfo> stopped = co_await c.admin.stop_site(name, c.deadline);
    if (!stopped) {
      co_return c.fail(while_doing(fmt::format("stop site {}", name), stopped.error()).message);
    }
    Result<std::string> state =
        co_await wait_stopped(c, [&c, &name]() -> asio::awaitable<Result<std::string>> {
          Result<SiteInfo> now = co_await c.admin.site(name, c.deadline);
          if (!now) co_return now.error();
          co_return now->state;
        });
    if (!state) co_return c.fail(while_doing(fmt::format("site {}", name), state.error()).message);
    if (*state != kStopped) co_return c.fail(fmt::format("site {} still {}", name, *state));
    c.say(fmt::format("site {} stopped", name));
  } else {
    c.say(fmt::format("site {} already Stopped", name));
  }

  const std::string pool = c.config.pool.empty() ? site->root_pool() : c.config.pool;
  if (!pool.empty()) {
    Result<std::vector<SiteInfo>> sites = co_await c.admin.sites(c.deadline);
    if (!sites) co_return c.fail(while_doing("list sites", sites.error()).message);
    const std::vector<std::string> users = pool_users(*sites, name, pool);
    if (!users.empty()) {
      c.say(fmt::format("pool {} kept: used by site {}", pool, fmt::join(users, ", ")));
    } else {
      Result<PoolInfo> stopped = co_await c.admin.stop_pool(pool, c.deadline);
      if (!stopped) {
        co_return c.fail(while_doing(fmt::format("stop pool {}", pool), stopped.error()).message);
      }
      Result<std::string> state =
          co_await wait_stopped(c, [&c, &pool]() -> asio::awaitable<Result<std::string>> {
            Result<PoolInfo> now = co_await c.admin.pool(pool, c.deadline);
            if (!now) co_return now.error();
            co_return now->state;
          });
      if (!state) {
        co_return c.fail(while_doing(fmt::format("pool {}", pool), state.error()).message);
      }
      if (*state != kStopped) co_return c.fail(fmt::format("pool {} still {}", pool, *state));
      c.say(fmt::format("pool {} stopped", pool));
    }
  }

  // Last: while the site drained, the permit let it finish its responses.
  Result<PermitInfo> revoked = co_await c.admin.grant_permit(name, 0, c.deadline);
  if (revoked) {
    c.say("permit revoked");
  } else {
    c.say(fmt::format("permit not revoked: {}", revoked.error().message));
    logger("resources")
        ->warn("permit not revoked resource={} site={} {}", c.context.resource, name,
               revoked.error().message);
  }
  logger("resources")->info("site offline resource={} site={}", c.context.resource, name);
  co_return c.succeed();
}

asio::awaitable<CallResult> terminate(Call& c, bool renewal_was_in_flight) {
  const std::string& name = c.config.site;
  // The permit first: without it the site stops serving at once, whatever
  // happens to the requests below.
  Result<PermitInfo> revoked = co_await c.admin.grant_permit(name, 0, c.deadline);
  bool not_serving = revoked.ok() || revoked.error().code == kAdminNotFound;
  c.say(revoked ? std::string("permit revoked")
                : fmt::format("permit not revoked: {}", revoked.error().message));

  Result<SiteInfo> stopped = co_await c.admin.stop_site(name, c.deadline);
  if (stopped) {
    c.say(fmt::format("site {} {}", name, stopped->state));
    if (stopped->state == kStopped) not_serving = true;
  } else {
    c.say(fmt::format("stop site {}: {}", name, stopped.error().message));
  }

  Result<std::vector<SiteInfo>> sites = co_await c.admin.sites(c.deadline);
  if (sites) {
    std::string pool = c.config.pool;
    for (const SiteInfo& site : *sites) {
      if (pool.empty() && site.name == name) pool = site.root_pool();
    }
    if (!pool.empty()) {
      const std::vector<std::string> users = pool_users(*sites, name, pool);
      if (!users.empty()) {
        c.say(fmt::format("pool {} kept: used by site {}", pool, fmt::join(users, ", ")));
      } else if (Result<PoolInfo> pool_stopped = co_await c.admin.stop_pool(pool, c.deadline);
                 pool_stopped) {
        c.say(fmt::format("pool {} {}", pool, pool_stopped->state));
      } else {
        c.say(fmt::format("stop pool {}: {}", pool, pool_stopped.error().message));
      }
    }
  } else {
    c.say(fmt::format("list sites: {}", sites.error().message));
  }

  // A renewal cut short may still have reached the service after the first
  // revocation; by now it has been handled, so this one is the last word.
  if (renewal_was_in_flight) {
    Result<PermitInfo> again = co_await c.admin.grant_permit(name, 0, c.deadline);
    if (again) not_serving = true;
  }

  if (!not_serving) {
    co_return c.fail(fmt::format("site {} may still serve: {}", name,
                                 revoked ? std::string("not stopped") : revoked.error().message));
  }
  logger("resources")->info("site terminated resource={} site={}", c.context.resource, name);
  co_return c.succeed();
}

asio::awaitable<CallResult> run_call(std::shared_ptr<State> state, Verb verb, CallContext context) {
  CallResult refused;
  if (context.timeout <= milliseconds::zero()) {
    refused.detail = "no timeout given";
    co_return refused;
  }
  const Deadline deadline = steady_now() + context.timeout;
  Result<Config> config = parse_config(state->defaults, context.parameters);
  if (!config) {
    refused.detail = config.error().message;
    co_return refused;
  }
  state->config = *config;
  if (verb == Verb::kOpen || verb == Verb::kClose) {
    refused.ok = true;
    co_return refused;
  }
  if (state->destroyed.stop_requested()) {
    refused.detail = "resource destroyed";
    co_return refused;
  }

  auto run = std::make_shared<Run>(state->executor, state->destroyed.get_token());
  bool renewal_was_in_flight = false;
  if (verb == Verb::kTerminate) {
    renewal_was_in_flight = begin_stopping(*state);
    if (std::shared_ptr<Run> running = state->in_flight) {
      logger("resources")->info("terminate supersedes running call resource={}", context.resource);
      running->supersede();
      co_await running->wait(deadline);
    }
  } else {
    state->in_flight = run;
  }
  if (verb == Verb::kOffline) begin_stopping(*state);

  Call c(state, std::move(context), std::move(*config), deadline, run);
  CallResult result;
  switch (verb) {
    case Verb::kOnline:
      result = co_await online(c);
      break;
    case Verb::kLooksAlive:
      result = co_await looks_alive(c);
      break;
    case Verb::kIsAlive:
      result = co_await is_alive(c);
      break;
    case Verb::kOffline:
      result = co_await offline(c);
      break;
    case Verb::kTerminate:
      result = co_await terminate(c, renewal_was_in_flight);
      break;
    case Verb::kOpen:
    case Verb::kClose:
      result = c.succeed();
      break;
  }
  run->finish();
  if (state->in_flight == run) state->in_flight.reset();
  co_return result;
}

// The coroutine behind watch(): follows the event stream until unwatch().
class Follower {
 public:
  Follower(std::shared_ptr<State> state, std::shared_ptr<Watch> watch, Config config)
      : state_(std::move(state)),
        watch_(std::move(watch)),
        config_(std::move(config)),
        pool_(config_.pool) {}

  static asio::awaitable<void> run(Follower follower) {
    const std::stop_token stop = follower.watch_->stop.get_token();
    const auto& executor = follower.state_->executor;
    milliseconds delay = kFirstReconnectDelay;
    while (!stop.stop_requested()) {
      WebEventStream stream(executor, follower.config_.admin_socket, stop);
      Status opened = co_await stream.open(steady_now() + kStreamOpenTimeout);
      if (opened) {
        delay = kFirstReconnectDelay;
        co_await follower.check();  // whatever happened while not connected
        while (true) {
          Result<WebEventInfo> event = co_await stream.next();
          if (!event) {
            logger("resources")
                ->debug("event stream broke site={} {}", follower.config_.site,
                        event.error().message);
            break;
          }
          co_await follower.on_event(*event);
        }
      }
      if (!co_await pause(executor, delay, Deadline::max(), stop)) co_return;
      delay = next_delay(delay, kMaxReconnectDelay);
    }
  }

 private:
  asio::awaitable<void> on_event(const WebEventInfo& event) {
    if (event.type == "site" && event.name == config_.site) {
      if (event.state != kStarted) {
        report(fmt::format("site {} is {}{}", config_.site, event.state,
                           event.reason.empty() ? "" : " (" + event.reason + ")"));
        co_return;
      }
    } else if (event.type == "pool" && !pool_.empty() && event.name == pool_) {
      if (event.state != kStarted) {
        report(fmt::format("pool {} is {}{}", pool_, event.state,
                           event.reason.empty() ? "" : " (" + event.reason + ")"));
        co_return;
      }
    } else if (!(event.type == "reload" || (event.type == "permit" && event.name == config_.site) ||
                 (event.type == "worker" && (event.name.empty() || event.name == pool_)))) {
      co_return;
    }
    // A pool event also comes when a worker exits: only a fresh look tells
    // whether one is left.
    co_await check();
  }

  asio::awaitable<void> check() {
    const WebAdmin admin(state_->executor, config_.admin_socket, watch_->stop.get_token());
    Result<Health> health = co_await check_alive(admin, config_, steady_now() + kWatchCheckTimeout,
                                                 watch_->stop.get_token(), &pool_);
    if (health) {
      reported_ = false;
      co_return;
    }
    // An unreachable service shows in the stream breaking and in the polls.
    const int code = health.error().code;
    if (code == kAdminUnreachable || code == kAdminStopped) co_return;
    report(health.error().message);
  }

  void report(std::string reason) {
    if (reported_ || state_->stopping || watch_->stop.stop_requested()) return;
    reported_ = true;
    logger("resources")->info("site looks dead site={} reason=\"{}\"", config_.site, reason);
    asio::post(watch_->callback_executor, [watch = watch_, reason = std::move(reason)]() mutable {
      if (!watch->stop.stop_requested()) watch->looks_dead(std::move(reason));
    });
  }

  std::shared_ptr<State> state_;
  std::shared_ptr<Watch> watch_;
  Config config_;
  std::string pool_;       // the pool watched: the parameter, else the last root pool seen
  bool reported_ = false;  // until a check finds everything alive again
};

}  // namespace

WebsiteResource::WebsiteResource(asio::any_io_executor executor, const Clock& clock,
                                 std::map<std::string, std::string> parameters, BootClock boottime)
    : state_(std::make_shared<State>(std::move(executor), clock, std::move(parameters),
                                     std::move(boottime))) {
  // Watching needs a call's parameters, unless these are complete already.
  if (Result<Config> config = parse_config(state_->defaults, {}); config) {
    state_->config = std::move(*config);
  }
}

WebsiteResource::~WebsiteResource() {
  unwatch();
  state_->online = false;
  state_->renewal_deadline.reset();
  if (state_->renewal) state_->renewal->request_stop();
  state_->destroyed.request_stop();
}

asio::awaitable<CallResult> WebsiteResource::call(Verb verb, const CallContext& context) {
  // Not a coroutine itself: everything the call needs is copied into the
  // frame now, so the call never touches the resource after it is gone.
  return run_call(state_, verb, context);
}

void WebsiteResource::renewed(Clock::TimePoint deadline) {
  State& state = *state_;
  if (!state.online) return;
  state.renewal_deadline = deadline;
  if (state.renewal) return;  // the running renewal takes it next
  state.renewal = std::make_shared<std::stop_source>();
  asio::co_spawn(state.executor, renew(state_, state.renewal), asio::detached);
}

void WebsiteResource::watch(asio::any_io_executor executor,
                            std::function<void(std::string reason)> looks_dead) {
  unwatch();
  if (!state_->config) {
    logger("resources")->warn("watch without a call before: no site to watch");
    return;
  }
  auto watch = std::make_shared<Watch>();
  watch->callback_executor = std::move(executor);
  watch->looks_dead = std::move(looks_dead);
  state_->watch = watch;
  asio::co_spawn(state_->executor, Follower::run(Follower(state_, watch, *state_->config)),
                 asio::detached);
}

void WebsiteResource::unwatch() {
  if (!state_->watch) return;
  state_->watch->stop.request_stop();
  state_->watch.reset();
}

}  // namespace clusweb::resources
