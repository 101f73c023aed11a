#include "web/master.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "base/atomic_file.h"
#include "base/log.h"
#include "config/manifest_loader.h"
#include "config/web_config_json.h"
#include "http/tls.h"
#include "web/clustered_sites.h"

namespace clusweb::web {

namespace asio = boost::asio;
namespace fs = std::filesystem;

std::string_view to_string(SiteState state) {
  switch (state) {
    case SiteState::kStarting:
      return "Starting";
    case SiteState::kStarted:
      return "Started";
    case SiteState::kStopping:
      return "Stopping";
    case SiteState::kStopped:
      return "Stopped";
  }
  return "Unknown";
}

namespace {

// Reasons a clustered site stops for want of a live permit.
constexpr std::string_view kPermitExpired = "serving permit expired";
constexpr std::string_view kPermitRevoked = "serving permit revoked";
constexpr std::string_view kNoPermit = "clustered without a serving permit";

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return errno_error("open", path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

WebMaster::WebMaster(asio::io_context& io, const Clock& clock, ChildReaper& reaper,
                     WebServiceOptions options)
    : io_(io),
      clock_(clock),
      reaper_(reaper),
      options_(std::move(options)),
      log_(logger("web")),
      events_(clock),
      respawn_timer_(io) {}

WebMaster::~WebMaster() {
  if (frontend_ && frontend_->pid > 0) {
    reaper_.forget(frontend_->pid);
    ::kill(frontend_->pid, SIGKILL);
  }
  for (auto& old : retiring_) {
    if (old->pid > 0) {
      reaper_.forget(old->pid);
      ::kill(old->pid, SIGKILL);
    }
  }
}

void WebMaster::record(std::string type, std::string name, std::string state, int code,
                       std::string reason, std::string message) {
  WebEvent event;
  event.type = std::move(type);
  event.name = std::move(name);
  event.state = std::move(state);
  event.state_code = code;
  event.reason = std::move(reason);
  event.message = std::move(message);
  events_.record(std::move(event));
}

Status WebMaster::start() {
  started_at_unix_ms_ =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock_.wall_now().time_since_epoch())
          .count();
  std::error_code ec;
  fs::create_directories(options_.run_dir, ec);
  if (ec) return Error{ec.message(), options_.run_dir, ec.value()};
  fs::create_directories(fs::path(options_.state_dir) / "logs", ec);
  if (ec) return Error{ec.message(), options_.state_dir, ec.value()};

  auto timer = BoottimeTimer::open(io_);
  if (!timer) return timer.error();
  permit_timer_ = std::move(*timer);

  auto composed = compose();
  if (!composed) return composed.error();
  auto initial = std::make_shared<const config::WebConfig>(composed->config);

  // The front end's identity decides who may connect to pool sockets.
  pool::PoolManagerOptions pool_options;
  pool_options.run_dir = options_.run_dir;
  pool_options.log_dir = (fs::path(options_.state_dir) / "logs").string();
  pool_options.retire_gate = [this](const std::string&, std::function<void()> proceed) {
    when_applied(std::move(proceed));
  };
  if (::geteuid() == 0) {
    auto user = lookup_user(initial->server.user);
    if (!user) return Error{user.error().message, initial->server.where.describe(), 0};
    frontend_user_ = *user;
    pool_options.socket_group = user->gid;
  }
  pools_ = std::make_unique<pool::PoolManager>(io_, reaper_, clock_, pool_options);
  pools_->subscribe([this](const pool::PoolStatus& status) {
    record("pool", status.name, std::string(pool::to_string(status.state)),
           static_cast<int>(status.state), status.reason,
           fmt::format("pool {} with {} ready worker(s)", pool::to_string(status.state),
                       status.workers.size()));
    send_state();
  });

  // Unreadable at start: nothing is clustered by the file until a reload
  // reads it (the agent's permits still make their sites clustered).
  auto listed = read_clustered_sites(*initial);
  if (auto applied = apply(initial, listed.value_or(std::set<std::string>{})); !applied) {
    return applied;
  }
  adopt_shared(*composed);
  return spawn_frontend();
}

Result<std::map<std::string, std::string>> WebMaster::read_pem(
    const config::WebConfig& config) const {
  std::map<std::string, std::string> pem;
  for (const auto& [name, site] : config.sites) {
    for (const auto& binding : site.bindings) {
      if (binding.scheme != config::Scheme::kHttps) continue;
      for (const auto* path : {&binding.certificate, &binding.key}) {
        if (pem.count(*path) != 0) continue;
        auto text = read_file(*path);
        if (!text) {
          return Error{fmt::format("site \"{}\": {}", name, text.error().describe()),
                       binding.where.describe(), text.error().sys_errno};
        }
        pem.emplace(*path, std::move(*text));
      }
    }
  }
  return pem;
}

Status WebMaster::check_tls(const config::WebConfig& config,
                            const std::map<std::string, std::string>& pem) const {
  for (const auto& [name, site] : config.sites) {
    for (const auto& binding : site.bindings) {
      if (binding.scheme != config::Scheme::kHttps) continue;
      auto built = http::TlsListener::build(
          {{binding.host, pem.at(binding.certificate), pem.at(binding.key)}});
      if (!built) {
        return Error{
            fmt::format("site \"{}\" binding {}: {}", name, binding.url(), built.error().message),
            binding.where.describe(), 0};
      }
    }
  }
  return {};
}

Result<std::map<std::string, UniqueFd>> WebMaster::open_access_logs(
    const config::WebConfig& config) const {
  std::map<std::string, UniqueFd> files;
  for (const auto& [name, site] : config.sites) {
    if (site.access_log.empty()) continue;
    std::error_code ec;
    fs::create_directories(fs::path(site.access_log).parent_path(), ec);
    UniqueFd fd(::open(site.access_log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
    if (!fd) {
      auto error = errno_error("open", site.access_log);
      error.message = fmt::format("site \"{}\": access log: {}", name, error.message);
      return error;
    }
    files.emplace(name, std::move(fd));
  }
  return files;
}

std::optional<std::set<std::string>> WebMaster::read_clustered_sites(
    const config::WebConfig& config) const {
  if (options_.clustered_sites_path.empty()) return std::set<std::string>{};
  std::set<std::string> configured;
  for (const auto& [name, site] : config.sites) configured.insert(name);
  auto loaded = load_clustered_sites(options_.clustered_sites_path, configured);
  if (!loaded) {
    log_->warn("cannot read the clustered sites, keeping the previous list error=\"{}\"",
               loaded.error().describe());
    return std::nullopt;
  }
  for (const auto& problem : loaded->problems) log_->warn("clustered sites: {}", problem);
  std::string names;
  for (const auto& name : loaded->sites) names += (names.empty() ? "" : ",") + name;
  log_->info("clustered sites file={} sites={}", options_.clustered_sites_path,
             names.empty() ? "(none)" : names);
  return std::move(loaded->sites);
}

Status WebMaster::apply(std::shared_ptr<const config::WebConfig> next,
                        const std::optional<std::set<std::string>>& listed) {
  // Everything that can fail happens before anything changes.
  auto pem = read_pem(*next);
  if (!pem) return pem.error();
  if (auto tls = check_tls(*next, *pem); !tls) return tls;
  auto logs = open_access_logs(*next);
  if (!logs) return logs.error();
  if (auto bound = listeners_.prepare(*next); !bound) return bound;

  // Permits first: a new site that is clustered ignores autoStart, and a
  // running site that became clustered without a permit stops now.
  check_permits();
  std::set<std::string> configured;
  for (const auto& [name, site] : next->sites) configured.insert(name);
  permits_.retain(configured);
  if (listed) permits_.set_listed(*listed);
  std::map<std::string, SiteStatus> sites;
  std::vector<std::string> unpermitted;
  for (const auto& [name, site] : next->sites) {
    auto old = sites_.find(name);
    if (old == sites_.end()) {
      const bool start = site.auto_start && !permits_.clustered(name);
      sites[name] = SiteStatus{start ? SiteState::kStarted : SiteState::kStopped, ""};
    } else if (old->second.state != SiteState::kStopped && !permits_.may_serve(name)) {
      sites[name] = SiteStatus{SiteState::kStopped, std::string(kNoPermit)};
      unpermitted.push_back(name);
    } else {
      sites[name] = old->second;
    }
  }
  bool replace_frontend = frontend_ && (frontend_->threads != next->server.threads ||
                                        frontend_->user != next->server.user);
  config_ = std::move(next);
  pem_ = std::move(*pem);
  access_logs_ = std::move(*logs);
  sites_ = std::move(sites);
  ++generation_;

  pools_->apply(*config_);
  if (replace_frontend) {
    // Threads and user are fixed for a process: start a new front end on the
    // same listeners, then let the old one drain.
    if (::geteuid() == 0) {
      if (auto user = lookup_user(config_->server.user)) frontend_user_ = *user;
    }
    frontend_->retiring = true;
    retiring_.push_back(std::move(frontend_));
    if (auto spawned = spawn_frontend(); !spawned) {
      log_->error("cannot start a new front end error=\"{}\"", spawned.error().describe());
    }
    auto& old = *retiring_.back();
    if (old.channel)
      (void)old.channel->send(protocol::encode_shutdown(options_.drain_grace.count()));
  } else if (frontend_) {
    send_config(*frontend_);
  }
  listeners_.retain_only(*config_, sent_seq_);
  when_applied([this, epoch = sent_seq_] { listeners_.close_released(epoch); });
  for (const auto& name : unpermitted) {
    log_->warn("site stopped: clustered without a serving permit site={}", name);
    record("site", name, "Stopped", 3, std::string(kNoPermit),
           "site stopped: it is clustered and holds no serving permit");
  }
  watch_permits();
  return {};
}

Result<ReloadSummary> WebMaster::reload() {
  auto composed = compose();
  if (!composed) {
    record("reload", "", "Failed", -1, "", composed.error().describe());
    log_->error("reload refused, previous configuration keeps serving error=\"{}\"",
                composed.error().describe());
    return composed.error();
  }
  auto next = std::make_shared<const config::WebConfig>(composed->config);
  auto listed = read_clustered_sites(*next);
  if (auto applied = apply(next, listed); !applied) {
    record("reload", "", "Failed", -1, "", applied.error().describe());
    log_->error("reload refused, previous configuration keeps serving error=\"{}\"",
                applied.error().describe());
    return applied.error();
  }
  adopt_shared(*composed);
  record("reload", "", "Applied", -1, "",
         fmt::format("configuration generation {} applied: {} site(s), {} pool(s)", generation_,
                     config_->sites.size(), config_->pools.size()));
  log_->info("configuration reloaded generation={}", generation_);
  return ReloadSummary{generation_, config_->sites.size(), config_->pools.size()};
}

Result<WebMaster::Composed> WebMaster::compose() {
  auto loaded = config::load_web_config_files(options_.config_paths);
  if (!loaded) return loaded.error();
  Composed composed{std::move(*loaded), std::nullopt, ""};
  if (options_.shared_config_path.empty()) return composed;
  auto cached = config::read_shared_config_cache(os_file_system(), options_.shared_config_path);
  if (cached && !*cached) return composed;  // no shared configuration yet
  if (cached) {
    auto merged = config::merge_shared_config(composed.config, **cached);
    if (merged) {
      composed.config = std::move(*merged);
      composed.shared = std::move(**cached);
      return composed;
    }
    composed.problem = fmt::format("revision {}: {}", (*cached)->revision, merged.error().message);
  } else {
    composed.problem = cached.error().describe();
  }
  // Not applicable here: the revision served so far stays.
  if (shared_) {
    auto previous = config::merge_shared_config(composed.config, *shared_);
    if (!previous) {
      return Error{fmt::format("{} (and shared configuration revision {}, served so far: {})",
                               composed.problem, shared_->revision, previous.error().message),
                   options_.shared_config_path, 0};
    }
    composed.config = std::move(*previous);
    composed.shared = shared_;
  }
  return composed;
}

void WebMaster::adopt_shared(Composed& composed) {
  const std::int64_t before = shared_config_revision();
  shared_ = std::move(composed.shared);
  if (!composed.problem.empty()) {
    if (composed.problem != shared_problem_) {
      record("shared-config", "", "Failed", -1, "",
             fmt::format("shared configuration not applied, revision {} keeps serving: {}",
                         shared_config_revision(), composed.problem));
      log_->error("shared configuration not applied revision={} error=\"{}\"",
                  shared_config_revision(), composed.problem);
    }
  } else if (shared_config_revision() != before) {
    record("shared-config", "", "Applied", -1, "",
           fmt::format("shared configuration revision {} applied", shared_config_revision()));
    log_->info("shared configuration applied revision={}", shared_config_revision());
  }
  shared_problem_ = std::move(composed.problem);
}

Status WebMaster::start_site(const std::string& name) {
  auto it = sites_.find(name);
  if (it == sites_.end()) return make_error("site \"{}\" does not exist", name);
  // A lapse not reported yet must not let the site start (or stay started).
  check_permits();
  if (!permits_.may_serve(name)) {
    return make_error(
        "site \"{}\" is clustered: it serves only while its group's owner holds a serving "
        "permit, and it holds none now",
        name);
  }
  if (it->second.state == SiteState::kStarted) return {};
  it->second = SiteStatus{SiteState::kStarted, ""};
  record("site", name, "Started", 1, "", "site started by administrator");
  send_state();
  return {};
}

Status WebMaster::stop_site(const std::string& name) {
  auto it = sites_.find(name);
  if (it == sites_.end()) return make_error("site \"{}\" does not exist", name);
  if (it->second.state == SiteState::kStopped) return {};
  it->second = SiteStatus{SiteState::kStopped, "Disabled"};
  record("site", name, "Stopped", 3, "Disabled", "site stopped by administrator");
  send_state();
  return {};
}

SiteState WebMaster::site_state(const std::string& name) const {
  auto it = sites_.find(name);
  return it == sites_.end() ? SiteState::kStopped : it->second.state;
}

std::string WebMaster::site_reason(const std::string& name) const {
  auto it = sites_.find(name);
  return it == sites_.end() ? std::string() : it->second.reason;
}

Result<PermitStatus> WebMaster::grant_permit(const std::string& name, std::int64_t deadline_ms) {
  if (sites_.count(name) == 0) return make_error("site \"{}\" does not exist", name);
  // A lapse the timer has not reported yet is an expiry, whatever comes now.
  check_permits();
  const auto grant = permits_.grant(name, deadline_ms);
  const auto status = permit(name);
  if (grant.live && !grant.was_live) {
    log_->info("serving permit granted site={} remaining_ms={}", name,
               status.remaining_ms.value_or(0));
    record("permit", name, "Granted", -1, "",
           fmt::format("serving permit granted for {} ms", status.remaining_ms.value_or(0)));
  } else if (!grant.live && grant.was_live) {
    log_->warn("serving permit revoked site={}", name);
    record("permit", name, "Revoked", -1, "", "serving permit revoked");
  }
  // The front end learns the deadline before any state change that follows.
  send_permits();
  if (!grant.live) {
    stop_unpermitted(name, std::string(grant.was_live ? kPermitRevoked : kNoPermit));
  }
  watch_permits();
  return status;
}

PermitStatus WebMaster::permit(const std::string& name) const {
  return PermitStatus{permits_.clustered(name), permits_.remaining_ms(name)};
}

void WebMaster::check_permits() {
  for (const auto& name : permits_.take_lapsed()) {
    log_->warn("serving permit expired site={}", name);
    record("permit", name, "Expired", -1, "", "serving permit expired");
    stop_unpermitted(name, std::string(kPermitExpired));
  }
}

void WebMaster::watch_permits() {
  if (!permit_timer_) return;
  auto next = permits_.next_deadline();
  if (!next) {
    permit_timer_->cancel();
    return;
  }
  permit_timer_->wait_until(*next, [this] {
    check_permits();
    watch_permits();
  });
}

void WebMaster::stop_unpermitted(const std::string& name, const std::string& reason) {
  auto it = sites_.find(name);
  if (it == sites_.end() || it->second.state == SiteState::kStopped) return;
  it->second = SiteStatus{SiteState::kStopped, reason};
  log_->warn("site stopped site={} reason=\"{}\"", name, reason);
  record("site", name, "Stopped", 3, reason, fmt::format("site stopped: {}", reason));
  send_state();
}

void WebMaster::send_permits() {
  protocol::PermitsMessage message;
  message.deadlines = permits_.deadlines();
  const auto text = protocol::encode(message);
  // Draining front ends still serve open connections: they follow the
  // permits too, so a renewal keeps them and a revocation reaches them.
  auto send = [&](Frontend& frontend) {
    if (!frontend.channel) return;
    if (auto sent = frontend.channel->send(text); !sent) {
      log_->error("cannot send permits to the front end pid={} error=\"{}\"", frontend.pid,
                  sent.error().describe());
    }
  };
  if (frontend_) send(*frontend_);
  for (auto& old : retiring_) send(*old);
}

void WebMaster::reopen_logs() {
  auto logs = open_access_logs(*config_);
  if (!logs) {
    log_->error("cannot reopen access logs error=\"{}\"", logs.error().describe());
    return;
  }
  access_logs_ = std::move(*logs);
  std::vector<std::string> names;
  std::vector<int> fds;
  for (const auto& [name, fd] : access_logs_) {
    names.push_back(name);
    fds.push_back(fd.get());
  }
  if (frontend_ && frontend_->channel) {
    (void)frontend_->channel->send(protocol::encode_reopen_logs(names), fds);
  }
  log_->info("access logs reopened count={}", names.size());
}

std::vector<protocol::PoolView> WebMaster::pool_views() const {
  std::vector<protocol::PoolView> views;
  for (const auto& status : pools_->status()) {
    protocol::PoolView view;
    view.name = status.name;
    view.state = static_cast<int>(status.state);
    view.reason = status.reason;
    for (const auto& worker : status.workers) {
      if (worker.ready) view.endpoints.push_back(worker.endpoint);
    }
    auto pool = config_->pools.find(status.name);
    view.queue_length = pool != config_->pools.end() ? pool->second.queue_length : 1000;
    views.push_back(std::move(view));
  }
  return views;
}

std::map<std::string, bool> WebMaster::site_flags() const {
  std::map<std::string, bool> flags;
  for (const auto& [name, site] : sites_) flags[name] = site.state == SiteState::kStarted;
  return flags;
}

void WebMaster::send_config(Frontend& frontend) {
  protocol::ConfigMessage message;
  message.generation = generation_;
  message.config_json = config::to_json(*config_);
  std::vector<int> fds;
  for (const auto& [key, fd] : listeners_.fds_for(*config_)) {
    message.listener_keys.push_back(key);
    fds.push_back(fd);
  }
  for (const auto& [name, fd] : access_logs_) {
    message.access_logs.push_back(name);
    fds.push_back(fd.get());
  }
  message.pem = pem_;
  message.sites_started = site_flags();
  message.pools = pool_views();
  message.permits = permits_.deadlines();
  message.seq = ++sent_seq_;
  if (auto sent = frontend.channel->send(protocol::encode(message), fds); !sent) {
    log_->error("cannot send configuration to the front end error=\"{}\"", sent.error().describe());
  }
}

void WebMaster::send_state() {
  if (!frontend_ || !frontend_->channel || !config_) return;
  protocol::StateMessage message;
  message.generation = generation_;
  message.sites_started = site_flags();
  message.pools = pool_views();
  message.seq = ++sent_seq_;
  if (auto sent = frontend_->channel->send(protocol::encode(message)); !sent) {
    log_->error("cannot send state to the front end error=\"{}\"", sent.error().describe());
  }
}

Status WebMaster::spawn_frontend() {
  auto pair = ControlChannel::make_pair();
  if (!pair) return pair.error();
  SpawnOptions spawn_options;
  spawn_options.argv = {options_.executable, "web-frontend",    "--control-fd", "3",
                        "--log-level",       options_.log_level};
  spawn_options.env = {{"PATH", "/usr/local/bin:/usr/bin:/bin"}, {"LANG", "C.UTF-8"}};
  spawn_options.fds = {{pair->second.get(), 3}};
  spawn_options.user = frontend_user_;
  spawn_options.no_new_privs = true;
  spawn_options.new_process_group = false;
  spawn_options.parent_death_signal = SIGTERM;
  auto pid = spawn(spawn_options);
  if (!pid) return pid.error();
  pair->second.reset();

  auto frontend = std::make_unique<Frontend>();
  frontend->pid = *pid;
  frontend->user = config_->server.user;
  frontend->threads = config_->server.threads;
  frontend->channel = std::make_unique<ControlChannel>(io_, std::move(pair->first));
  Frontend* raw = frontend.get();
  frontend->channel->start(
      [this, raw](const ControlMessage& message) { on_frontend_message(raw, message); },
      [](const Error&) {});
  reaper_.watch(*pid, [this, pid = *pid](int status) { on_frontend_exit(pid, status); });
  frontend_ = std::move(frontend);
  send_config(*frontend_);
  log_->info("front end started pid={} user={} threads={}", *pid,
             frontend_user_ ? frontend_user_->name : "(same as master)", config_->server.threads);
  record("frontend", "", "Started", 1, "", fmt::format("front end started, pid {}", *pid));
  return {};
}

void WebMaster::on_frontend_message(Frontend* frontend, const ControlMessage& message) {
  auto type = protocol::message_type(message.json);
  if (!type) return;
  if (*type == "stats") {
    auto stats = protocol::decode_stats(message.json);
    if (!stats) return;
    auto it = pending_stats_.find(stats->id);
    if (it == pending_stats_.end()) return;
    *it->second.result = std::move(*stats);
    it->second.timer->cancel();
    pending_stats_.erase(it);
  } else if (*type == "applied") {
    auto applied = protocol::decode_applied(message.json);
    if (!applied) return;
    if (frontend == frontend_.get()) {
      respawn_failures_ = 0;
      applied_generation_ = std::max(applied_generation_, applied->generation);
      run_applied(applied->seq);
    }
    for (const auto& problem : applied->problems) {
      record("frontend", "", "", -1, "", problem);
    }
  }
}

void WebMaster::on_frontend_exit(pid_t pid, int wait_status) {
  for (auto it = retiring_.begin(); it != retiring_.end(); ++it) {
    if ((*it)->pid == pid) {
      log_->info("previous front end finished draining pid={}", pid);
      retiring_.erase(it);
      if (stopping_ && !frontend_ && retiring_.empty() && stopped_) asio::post(io_, stopped_);
      return;
    }
  }
  if (!frontend_ || frontend_->pid != pid) return;
  frontend_.reset();
  // Nobody routes requests now; whatever waited for the front end may go on.
  run_applied(sent_seq_);
  if (stopping_) {
    log_->info("front end stopped pid={} {}", pid, describe_wait_status(wait_status));
    if (retiring_.empty() && stopped_) asio::post(io_, stopped_);
    return;
  }
  // The listeners stay open in the master, so a new front end picks up
  // where the old one died; back off if it keeps dying.
  ++respawn_failures_;
  auto delay = std::chrono::milliseconds(std::min(5000, 50 << std::min(respawn_failures_, 7)));
  log_->error("front end died pid={} {}, restarting in {} ms", pid,
              describe_wait_status(wait_status), delay.count());
  record("frontend", "", "Stopped", 3, "Crashed",
         fmt::format("front end pid {} {}", pid, describe_wait_status(wait_status)));
  respawn_timer_.expires_after(delay);
  respawn_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || stopping_) return;
    if (auto spawned = spawn_frontend(); !spawned) {
      log_->error("cannot restart the front end error=\"{}\"", spawned.error().describe());
    }
  });
}

asio::awaitable<bool> WebMaster::wait_applied(std::chrono::milliseconds timeout) {
  if (!frontend_ || applied_seq_ >= sent_seq_) co_return frontend_ != nullptr;
  asio::steady_timer timer(io_, timeout);
  auto done = std::make_shared<bool>(false);
  // The action may run after this frame is gone (timeout): it holds only `done`
  // and a weak link to the timer's frame through `waiting`.
  auto waiting = std::make_shared<asio::steady_timer*>(&timer);
  when_applied([done, waiting] {
    *done = true;
    if (*waiting != nullptr) (*waiting)->cancel();
  });
  co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  *waiting = nullptr;
  co_return *done;
}

void WebMaster::when_applied(std::function<void()> action) {
  if (!frontend_ || applied_seq_ >= sent_seq_) {
    action();
    return;
  }
  after_applied_.emplace_back(sent_seq_, std::move(action));
}

void WebMaster::run_applied(std::uint64_t seq) {
  applied_seq_ = std::max(applied_seq_, seq);
  std::vector<std::function<void()>> ready;
  for (auto it = after_applied_.begin(); it != after_applied_.end();) {
    if (it->first <= applied_seq_) {
      ready.push_back(std::move(it->second));
      it = after_applied_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& action : ready) action();
}

asio::awaitable<std::optional<protocol::StatsMessage>> WebMaster::fetch_stats() {
  std::optional<protocol::StatsMessage> result;
  if (!frontend_ || !frontend_->channel) co_return result;
  auto id = next_stats_id_++;
  asio::steady_timer timer(io_, std::chrono::seconds(1));
  pending_stats_[id] = PendingStats{&timer, &result};
  if (auto sent = frontend_->channel->send(protocol::encode_stats_request(id)); !sent) {
    pending_stats_.erase(id);
    co_return result;
  }
  co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  pending_stats_.erase(id);
  co_return result;
}

void WebMaster::shutdown(std::function<void()> done) {
  if (stopping_) return;
  stopping_ = true;
  respawn_timer_.cancel();
  log_->info("stopping: front end drains for up to {} ms, pools stop",
             options_.drain_grace.count());
  int remaining = 2;
  auto part_done = [remaining, done = std::move(done)]() mutable {
    if (--remaining == 0) done();
  };
  auto shared_done = std::make_shared<decltype(part_done)>(std::move(part_done));
  stopped_ = [shared_done] { (*shared_done)(); };
  // The front-end part is done when every front end process has exited
  // (on_frontend_exit calls stopped_).
  if (frontend_) {
    bool asked =
        frontend_->channel &&
        frontend_->channel->send(protocol::encode_shutdown(options_.drain_grace.count())).ok();
    if (!asked) ::kill(frontend_->pid, SIGTERM);
  } else if (retiring_.empty()) {
    asio::post(io_, stopped_);
  }
  pools_->shutdown([shared_done] { (*shared_done)(); });
}

}  // namespace clusweb::web
