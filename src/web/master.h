#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/boottime.h"
#include "base/boottime_timer.h"
#include "base/clock.h"
#include "base/process.h"
#include "base/result.h"
#include "config/shared_config.h"
#include "config/web_config.h"
#include "pool/pool_manager.h"
#include "web/control_channel.h"
#include "web/event_log.h"
#include "web/listeners.h"
#include "web/permit_table.h"
#include "web/protocol.h"

namespace clusweb::web {

struct WebServiceOptions {
  std::vector<std::string> config_paths;       // manifest files or folders
  std::string run_dir = "/run/clusweb";        // admin socket, pool sockets
  std::string state_dir = "/var/lib/clusweb";  // logs of pool workers
  std::string executable;                      // this binary, to start the front end
  std::string log_level = "info";
  std::chrono::milliseconds drain_grace{10'000};  // graceful stop of the front end
  // One site name per line: sites that are clustered from the start (they
  // never start on their own); read at start and on every reload. Empty: none.
  std::string clustered_sites_path;
  // The node's cache of the cluster's shared configuration (config/shared_config.h), merged
  // with the manifests at start and on every reload. A revision that does not merge here (a
  // content path missing on this node, a name the node also defines) is not applied: the
  // previous one keeps serving and shared_config_problem() says why. Empty: none; a missing
  // file: no shared sites or pools yet.
  std::string shared_config_path;
};

// IIS site states.
enum class SiteState { kStarting = 0, kStarted = 1, kStopping = 2, kStopped = 3 };
std::string_view to_string(SiteState state);

// A site's serving permit as the admin API shows it.
struct PermitStatus {
  bool clustered = false;
  // Milliseconds left, 0 once expired or revoked; nullopt when the site never
  // had a permit.
  std::optional<std::int64_t> remaining_ms;
};

struct ReloadSummary {
  std::uint64_t generation = 0;
  std::size_t sites = 0;
  std::size_t pools = 0;
};

// The root master of `clusweb web` (nginx's model): owns the configuration,
// binds listeners, opens log files, runs application pools, and supervises
// the unprivileged front end that serves HTTP, feeding it everything over a
// control channel. Not thread-safe: everything runs on one io_context.
class WebMaster {
 public:
  WebMaster(boost::asio::io_context& io, const Clock& clock, ChildReaper& reaper,
            WebServiceOptions options);
  ~WebMaster();

  // Loads and applies the configuration, starts pools and the front end.
  Status start();
  // Parses, validates and swaps in the configuration; a bad one changes
  // nothing and the error says what and where.
  Result<ReloadSummary> reload();
  // A clustered site starts only while it holds a live serving permit.
  Status start_site(const std::string& name);
  Status stop_site(const std::string& name);
  // Grants or renews the serving permit of site `name` until `deadline_ms`, an
  // absolute CLOCK_BOOTTIME time in ms; a deadline that is not in the future
  // revokes it and stops the site at once. The site is clustered from then on
  // (until it leaves the configuration). When a permit lapses the site stops
  // with reason "serving permit expired"; the front end enforces the same
  // deadline on its own, so a hung master cannot extend it.
  Result<PermitStatus> grant_permit(const std::string& name, std::int64_t deadline_ms);
  PermitStatus permit(const std::string& name) const;
  // Reopens every access log (log rotation) and hands the files over.
  void reopen_logs();
  // Graceful stop: front end drains, pools stop; then `done`.
  void shutdown(std::function<void()> done);

  pool::PoolManager& pools() { return *pools_; }
  EventLog& events() { return events_; }
  const config::WebConfig& config() const { return *config_; }
  std::uint64_t generation() const { return generation_; }
  // The newest generation the front end serves.
  std::uint64_t applied_generation() const { return applied_generation_; }
  // Completes once the front end uses everything sent so far (or after
  // `timeout`); true when it does.
  boost::asio::awaitable<bool> wait_applied(std::chrono::milliseconds timeout);
  SiteState site_state(const std::string& name) const;
  // Why the site is in its state ("serving permit expired", "Disabled"); empty
  // when there is nothing to say.
  std::string site_reason(const std::string& name) const;
  pid_t frontend_pid() const { return frontend_ ? frontend_->pid : 0; }
  // The shared configuration revision being served (0: none), and why the newest one in the
  // cache is not ("" when it is).
  std::int64_t shared_config_revision() const { return shared_ ? shared_->revision : 0; }
  const std::string& shared_config_problem() const { return shared_problem_; }
  std::int64_t started_at_unix_ms() const { return started_at_unix_ms_; }

  // Counters from the front end, or nullopt when it does not answer in time.
  boost::asio::awaitable<std::optional<protocol::StatsMessage>> fetch_stats();

 private:
  struct Frontend {
    pid_t pid = 0;
    std::unique_ptr<ControlChannel> channel;
    std::string user;
    int threads = 1;
    bool retiring = false;
  };

  Result<std::map<std::string, std::string>> read_pem(const config::WebConfig& config) const;
  Status check_tls(const config::WebConfig& config,
                   const std::map<std::string, std::string>& pem) const;
  Result<std::map<std::string, UniqueFd>> open_access_logs(const config::WebConfig& config) const;
  // `listed`: the sites of the clustered-sites file, or nullopt to keep the
  // previous list (the file could not be read).
  Status apply(std::shared_ptr<const config::WebConfig> next,
               const std::optional<std::set<std::string>>& listed);
  std::optional<std::set<std::string>> read_clustered_sites(const config::WebConfig& config) const;
  // The manifests with the shared configuration merged in: the cache's newest revision when it
  // merges, else the revision served so far (with the reason in `problem`).
  struct Composed {
    config::WebConfig config;
    std::optional<config::SharedConfig> shared;
    std::string problem;
  };
  Result<Composed> compose();
  void adopt_shared(Composed& composed);
  Status spawn_frontend();
  void send_config(Frontend& frontend);
  void send_state();
  void on_frontend_message(Frontend* frontend, const ControlMessage& message);
  void on_frontend_exit(pid_t pid, int wait_status);
  std::vector<protocol::PoolView> pool_views() const;
  std::map<std::string, bool> site_flags() const;
  void send_permits();
  // Acts on lapsed permits: their sites stop.
  void check_permits();
  // Waits on CLOCK_BOOTTIME for the next deadline, then check_permits().
  void watch_permits();
  // Stops site `name` when it runs, for want of a live permit.
  void stop_unpermitted(const std::string& name, const std::string& reason);
  void record(std::string type, std::string name, std::string state, int code, std::string reason,
              std::string message);

  boost::asio::io_context& io_;
  const Clock& clock_;
  ChildReaper& reaper_;
  WebServiceOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  EventLog events_;
  ListenerSet listeners_;
  std::unique_ptr<pool::PoolManager> pools_;
  std::shared_ptr<const config::WebConfig> config_;
  std::optional<config::SharedConfig> shared_;  // the revision config_ holds
  std::string shared_problem_;
  std::map<std::string, std::string> pem_;
  std::map<std::string, UniqueFd> access_logs_;
  struct SiteStatus {
    SiteState state = SiteState::kStopped;
    std::string reason;
  };
  std::map<std::string, SiteStatus> sites_;
  // Serving permits of the clustered sites, on CLOCK_BOOTTIME.
  PermitTable permits_{boottime_now_ms};
  std::unique_ptr<BoottimeTimer> permit_timer_;
  std::uint64_t generation_ = 0;
  std::uint64_t applied_generation_ = 0;
  std::unique_ptr<Frontend> frontend_;
  std::vector<std::unique_ptr<Frontend>> retiring_;
  std::optional<UserIds> frontend_user_;
  boost::asio::steady_timer respawn_timer_;
  int respawn_failures_ = 0;
  bool stopping_ = false;
  std::function<void()> stopped_;
  std::int64_t started_at_unix_ms_ = 0;

  // Outstanding stats requests: id -> (timer to wake the waiter, result slot).
  struct PendingStats {
    boost::asio::steady_timer* timer;
    std::optional<protocol::StatsMessage>* result;
  };
  std::map<std::uint64_t, PendingStats> pending_stats_;
  std::uint64_t next_stats_id_ = 1;

  // Sequence numbers of config/state messages, and what waits for the front
  // end to have applied one (old pool workers retire only then).
  std::uint64_t sent_seq_ = 0;
  std::uint64_t applied_seq_ = 0;
  std::vector<std::pair<std::uint64_t, std::function<void()>>> after_applied_;
  void when_applied(std::function<void()> action);
  void run_applied(std::uint64_t seq);
};

}  // namespace clusweb::web
