#include "pool/pool_manager.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <utility>

#include "base/log.h"
#include "base/unique_fd.h"
#include "pool/failure_window.h"
#include "pool/worker_socket.h"

namespace clusweb::pool {
namespace {

using boost::asio::steady_timer;
using ErrorCode = boost::system::error_code;

constexpr auto kProbeInterval = std::chrono::milliseconds(25);
constexpr std::string_view kWorkerPath = "/usr/local/bin:/usr/bin:/bin";

Error filesystem_error(std::string_view what, const std::string& path, const std::error_code& ec) {
  return Error{fmt::format("{} failed: {}", what, ec.message()), path, ec.value()};
}

// The value of a secret environment variable: the file's contents without one trailing line
// break. Errors name the file, never what it holds.
Result<std::string> read_secret_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return make_error("cannot read {}: {}", path, std::strerror(errno));
  std::string value;
  char buffer[4096];
  for (;;) {
    const ssize_t got = ::read(fd.get(), buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return make_error("cannot read {}: {}", path, std::strerror(errno));
    if (got == 0) break;
    value.append(buffer, static_cast<std::size_t>(got));
    if (value.size() > std::size_t{64} * 1024) return make_error("{} holds more than 64 KiB", path);
  }
  if (value.ends_with("\n")) value.pop_back();
  if (value.ends_with("\r")) value.pop_back();
  if (value.find('\0') != std::string::npos) {
    return make_error("{} holds a NUL byte, which an environment variable cannot", path);
  }
  return value;
}

std::string absolute_or_same(const std::string& path) {
  if (path.empty()) return path;
  std::error_code ec;
  auto absolute = std::filesystem::absolute(path, ec);
  return ec ? path : absolute.lexically_normal().string();
}

}  // namespace

struct PoolManager::Worker {
  explicit Worker(boost::asio::io_context& io) : timer(io), probe_timer(io), probe(io) {}

  std::uint64_t id = 0;
  int slot = 0;
  int generation = 0;
  pid_t pid = -1;
  std::string endpoint;
  std::string socket_path;  // activation mode: removed when the worker is gone
  std::uint16_t port = 0;   // port mode
  bool ready = false;
  // Told to stop (stop, recycle, startup limit): its exit is no surprise and
  // its slot counts as empty.
  bool retired = false;
  std::int64_t started_at_unix_ms = 0;
  std::chrono::milliseconds shutdown_time_limit{0};
  steady_timer timer;        // the startup limit, later the shutdown limit
  steady_timer probe_timer;  // port mode: between connect attempts
  boost::asio::ip::tcp::socket probe;
};

struct PoolManager::Pool {
  Pool(std::uint64_t pool_id, std::string pool_name, config::ApplicationPool pool_config)
      : id(pool_id),
        name(std::move(pool_name)),
        config(std::move(pool_config)),
        failures(config.rapid_fail_max_crashes, config.rapid_fail_interval) {}

  void reset_failures() {
    failures = FailureWindow(config.rapid_fail_max_crashes, config.rapid_fail_interval);
  }

  std::uint64_t id;  // never reused, so late callbacks can tell a re-added pool apart
  std::string name;
  config::ApplicationPool config;
  PoolState state = PoolState::kStopped;
  std::string reason{kReasonDisabled};
  bool wanted = false;         // Starting or Started: keep every slot filled
  bool removed = false;        // gone from the configuration: erased once stopped
  int generation = 0;          // the last generation number handed out
  int serving_generation = 0;  // its ready workers receive requests
  int target_generation = 0;   // being filled; differs from serving while recycling
  std::vector<std::unique_ptr<Worker>> workers;
  struct Restart {
    std::uint64_t id;
    std::unique_ptr<steady_timer> timer;
  };
  std::map<int, Restart> restarts;  // slot -> pending replacement
  FailureWindow failures;
  // Set up by prepare() for every launch.
  std::optional<UserIds> user;  // nullopt: run as the manager's user
  std::string user_name;
  std::string home;
  UniqueFd log;
  std::uint64_t worker_starts = 0;
  std::uint64_t worker_failures = 0;
  std::optional<PoolStatus> published;
};

PoolManager::PoolManager(boost::asio::io_context& io, ChildReaper& reaper, const Clock& clock,
                         PoolManagerOptions options)
    : io_(io), reaper_(reaper), clock_(clock), options_(std::move(options)), log_(logger("pool")) {
  options_.run_dir = absolute_or_same(options_.run_dir);
  options_.log_dir = absolute_or_same(options_.log_dir);
}

PoolManager::~PoolManager() {
  for (auto& [name, pool] : pools_) {
    for (auto& worker : pool->workers) {
      reaper_.forget(worker->pid);
      signal_group(worker->pid, SIGKILL);
      if (!worker->socket_path.empty()) ::unlink(worker->socket_path.c_str());
    }
  }
}

void PoolManager::apply(const config::WebConfig& config) {
  std::vector<std::uint64_t> gone;
  for (const auto& [name, pool] : pools_) {
    if (!pool->removed && !config.pools.contains(name)) gone.push_back(pool->id);
  }
  for (std::uint64_t id : gone) {
    Pool* pool = find_by_id(id);
    if (pool == nullptr) continue;
    log_->info("pool removed from configuration pool={}", pool->name);
    pool->removed = true;
    if (pool->wanted) stop_pool(*pool, kReasonDisabled);
    update(*pool);
  }

  for (const auto& [name, pool_config] : config.pools) {
    auto it = pools_.find(name);
    if (it == pools_.end()) {
      auto created = std::make_unique<Pool>(next_id_++, name, pool_config);
      Pool& pool = *created;
      pools_.emplace(name, std::move(created));
      log_->info("pool added pool={} processes={} auto_start={}", name, pool_config.processes,
                 pool_config.auto_start);
      if (pool_config.auto_start && !shutting_down_) {
        (void)start_pool(pool);  // failures are logged and shown as StartupFailed
      } else {
        update(pool);
      }
      continue;
    }
    Pool& pool = *it->second;
    if (pool.removed) {
      // Re-added while its old workers drain: a fresh pool under the same name.
      log_->info("pool added again pool={}", name);
      pool.removed = false;
      pool.config = pool_config;
      pool.reset_failures();
      pool.reason = kReasonDisabled;
      if (pool_config.auto_start && !shutting_down_) {
        (void)start_pool(pool);
      } else {
        update(pool);
      }
      continue;
    }
    if (pool.config == pool_config) continue;

    log_->info("pool configuration changed pool={}", name);
    pool.config = pool_config;
    pool.reset_failures();
    if (pool.wanted) {
      (void)recycle(name);
    } else if (pool.reason == kReasonStartupFailed && pool_config.auto_start && !shutting_down_) {
      (void)start_pool(pool);
    }
  }
}

Status PoolManager::start(const std::string& name) {
  Pool* pool = find(name);
  if (pool == nullptr) return make_error("unknown application pool \"{}\"", name);
  return start_pool(*pool);
}

Status PoolManager::stop(const std::string& name) {
  Pool* pool = find(name);
  if (pool == nullptr) return make_error("unknown application pool \"{}\"", name);
  if (pool->wanted) {
    stop_pool(*pool, kReasonDisabled);
  } else {
    pool->reason = kReasonDisabled;  // an administrator's stop outranks an earlier cause
  }
  update(*pool);
  return {};
}

Status PoolManager::recycle(const std::string& name) {
  Pool* pool = find(name);
  if (pool == nullptr) return make_error("unknown application pool \"{}\"", name);
  if (!pool->wanted) return make_error("application pool \"{}\" is not started", name);
  // Re-read the user and reopen the log: a recycle picks up both.
  if (auto prepared = prepare(*pool); !prepared.ok()) {
    log_->error("pool recycle failed pool={} error=\"{}\"", name, prepared.error().describe());
    stop_pool(*pool, kReasonStartupFailed);
    update(*pool);
    return prepared;
  }
  pool->restarts.clear();
  // An unfinished recycle's workers give way to the newest generation.
  for (auto& worker : pool->workers) {
    if (!worker->retired && worker->generation != pool->serving_generation) retire(*pool, *worker);
  }
  pool->target_generation = ++pool->generation;
  log_->info("pool recycling pool={} from_generation={} to_generation={}", name,
             pool->serving_generation, pool->target_generation);
  fill_slots(*pool);
  update(*pool);
  return {};
}

std::vector<PoolStatus> PoolManager::status() const {
  std::vector<PoolStatus> result;
  result.reserve(pools_.size());
  for (const auto& [name, pool] : pools_) result.push_back(make_status(*pool));
  return result;
}

std::optional<PoolStatus> PoolManager::status(const std::string& name) const {
  auto it = pools_.find(name);
  if (it == pools_.end()) return std::nullopt;
  return make_status(*it->second);
}

void PoolManager::subscribe(std::function<void(const PoolStatus&)> listener) {
  listeners_.push_back(std::move(listener));
}

void PoolManager::shutdown(std::function<void()> done) {
  log_->info("pool manager shutting down pools={}", pools_.size());
  shutting_down_ = true;
  shutdown_done_ = std::move(done);
  std::vector<std::uint64_t> ids;
  for (const auto& [name, pool] : pools_) ids.push_back(pool->id);
  for (std::uint64_t id : ids) {
    Pool* pool = find_by_id(id);
    if (pool == nullptr) continue;
    if (pool->wanted) stop_pool(*pool, kReasonDisabled);
    update(*pool);
  }
  finish_shutdown_when_idle();
}

PoolManager::Pool* PoolManager::find(const std::string& name) {
  auto it = pools_.find(name);
  if (it == pools_.end() || it->second->removed) return nullptr;
  return it->second.get();
}

PoolManager::Pool* PoolManager::find_by_id(std::uint64_t pool_id) {
  for (auto& [name, pool] : pools_) {
    if (pool->id == pool_id) return pool.get();
  }
  return nullptr;
}

PoolManager::Worker* PoolManager::find_worker(Pool& pool, std::uint64_t worker_id) {
  for (auto& worker : pool.workers) {
    if (worker->id == worker_id) return worker.get();
  }
  return nullptr;
}

std::string PoolManager::pools_dir() const { return options_.run_dir + "/pools"; }

Status PoolManager::prepare(Pool& pool) {
  const config::ApplicationPool& config = pool.config;
  std::optional<UserIds> user;
  std::string user_name;
  std::string home;
  if (config.user.empty()) {
    auto self = lookup_user_id(::geteuid());
    user_name = self.ok() ? self->name : std::to_string(::geteuid());
    home = self.ok() ? self->home : "/";
  } else {
    auto found = lookup_user(config.user);
    if (!found.ok()) return found.error();
    user_name = found->name;
    home = found->home;
    if (found->uid != ::geteuid() || found->gid != ::getegid()) user = *found;
  }

  std::error_code ec;
  if (config.socket == config::SocketMode::kActivation) {
    const std::string dir = pools_dir();
    std::filesystem::create_directories(dir, ec);
    if (ec) return filesystem_error("create directory", dir, ec);
    if (::chmod(dir.c_str(), 0750) != 0) return errno_error("chmod", dir);
    if (options_.socket_group &&
        ::chown(dir.c_str(), static_cast<uid_t>(-1), *options_.socket_group) != 0) {
      return errno_error("chown", dir);
    }
  }
  std::filesystem::create_directories(options_.log_dir, ec);
  if (ec) return filesystem_error("create directory", options_.log_dir, ec);
  const std::string log_path = fmt::format("{}/pool-{}.log", options_.log_dir, pool.name);
  UniqueFd log(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
  if (!log) return errno_error("open", log_path);

  pool.user = std::move(user);
  pool.user_name = std::move(user_name);
  pool.home = std::move(home);
  pool.log = std::move(log);
  return {};
}

Status PoolManager::start_pool(Pool& pool) {
  if (pool.wanted) return {};
  if (shutting_down_) return make_error("cannot start pool \"{}\": shutting down", pool.name);
  if (auto prepared = prepare(pool); !prepared.ok()) {
    log_->error("pool start failed pool={} error=\"{}\"", pool.name, prepared.error().describe());
    pool.reason = kReasonStartupFailed;
    update(pool);
    return prepared;
  }
  pool.reset_failures();
  pool.wanted = true;
  pool.state = PoolState::kStarting;
  pool.reason.clear();
  pool.serving_generation = pool.target_generation = ++pool.generation;
  log_->info("pool starting pool={} processes={} generation={}", pool.name, pool.config.processes,
             pool.generation);
  fill_slots(pool);
  update(pool);
  return {};
}

void PoolManager::stop_pool(Pool& pool, std::string_view reason) {
  pool.wanted = false;
  pool.restarts.clear();
  pool.reason = reason;
  for (auto& worker : pool.workers) {
    if (!worker->retired) retire(pool, *worker);
  }
  pool.state = pool.workers.empty() ? PoolState::kStopped : PoolState::kStopping;
  log_->info("pool stopping pool={} reason={} workers={}", pool.name, reason, pool.workers.size());
}

void PoolManager::fill_slots(Pool& pool) {
  for (int slot = 0; slot < pool.config.processes && pool.wanted; ++slot) {
    if (pool.restarts.contains(slot)) continue;
    bool filled = std::any_of(pool.workers.begin(), pool.workers.end(), [&](const auto& worker) {
      return !worker->retired && worker->generation == pool.target_generation &&
             worker->slot == slot;
    });
    if (!filled) launch(pool, slot);
  }
}

void PoolManager::launch(Pool& pool, int slot) {
  const config::ApplicationPool& config = pool.config;
  auto worker = std::make_unique<Worker>(io_);
  worker->id = next_id_++;
  worker->slot = slot;
  worker->generation = pool.target_generation;
  worker->shutdown_time_limit = config.shutdown_time_limit;

  SpawnOptions spawn_options;
  spawn_options.argv = config.command;
  spawn_options.env = {
      {"PATH", std::string(kWorkerPath)},
      {"HOME", pool.home},
      {"USER", pool.user_name},
      {"LOGNAME", pool.user_name},
      {"LANG", "C.UTF-8"},
      {"CLUSWEB_POOL", pool.name},
      {"CLUSWEB_WORKER_SLOT", std::to_string(slot)},
  };
  for (const auto& [key, value] : config.environment) spawn_options.env[key] = value;
  spawn_options.working_directory = config.working_directory;
  spawn_options.user = pool.user;
  spawn_options.no_new_privs = true;
  spawn_options.stdout_fd = pool.log.get();
  spawn_options.stderr_fd = pool.log.get();

  auto fail = [&](const Error& error) {
    log_->error("worker start failed pool={} slot={} generation={} error=\"{}\"", pool.name, slot,
                worker->generation, error.describe());
    if (!worker->socket_path.empty()) ::unlink(worker->socket_path.c_str());
    record_failure(pool);
    if (pool.wanted) schedule_restart(pool, slot);
  };

  // Secret variables are read now, as root, and only ever live in the worker's environment.
  for (const auto& [key, path] : config.secret_environment) {
    Result<std::string> value = read_secret_file(path);
    if (!value.ok()) {
      return fail(make_error("secretEnvironment.{}: {}", key, value.error().message));
    }
    spawn_options.env[key] = std::move(*value);
  }

  UniqueFd listener;
  if (config.socket == config::SocketMode::kActivation) {
    std::string path =
        fmt::format("{}/{}-{}-{}.sock", pools_dir(), pool.name, slot, worker->generation);
    auto bound = listen_unix(path, config.queue_length, options_.socket_group);
    if (!bound.ok()) return fail(bound.error());
    listener = std::move(*bound);
    worker->socket_path = path;
    worker->endpoint = "unix:" + path;
    spawn_options.env["LISTEN_FDS"] = "1";
    spawn_options.env["LISTEN_FDNAMES"] = pool.name;
    spawn_options.set_listen_pid = true;
    spawn_options.fds = {{listener.get(), 3}};
  } else {
    auto port = pick_free_loopback_port();
    if (!port.ok()) return fail(port.error());
    worker->port = *port;
    worker->endpoint = fmt::format("tcp:127.0.0.1:{}", *port);
    spawn_options.env["PORT"] = std::to_string(*port);
  }

  auto pid = spawn(spawn_options);
  listener.reset();  // the worker holds the socket now
  if (!pid.ok()) return fail(pid.error());

  worker->pid = *pid;
  worker->started_at_unix_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock_.wall_now().time_since_epoch())
          .count();
  ++pool.worker_starts;
  reaper_.watch(*pid, [this, pool_id = pool.id, worker_id = worker->id](int wait_status) {
    on_worker_exit(pool_id, worker_id, wait_status);
  });
  log_->info("worker started pool={} slot={} generation={} pid={} endpoint={}", pool.name, slot,
             worker->generation, *pid, worker->endpoint);

  Worker& started = *worker;
  pool.workers.push_back(std::move(worker));
  if (config.socket == config::SocketMode::kActivation) {
    started.ready = true;  // the kernel queues connections until the worker accepts
    return;
  }
  started.timer.expires_after(config.startup_time_limit);
  started.timer.async_wait([this, pool_id = pool.id, worker_id = started.id](const ErrorCode& ec) {
    if (ec) return;
    on_startup_timeout(pool_id, worker_id);
  });
  probe(pool, started);
}

void PoolManager::probe(Pool& pool, Worker& worker) {
  ErrorCode ignored;
  worker.probe.close(ignored);
  boost::asio::ip::tcp::endpoint endpoint(boost::asio::ip::address_v4::loopback(), worker.port);
  worker.probe.async_connect(
      endpoint, [this, pool_id = pool.id, worker_id = worker.id](const ErrorCode& ec) {
        // Aborted: the worker was retired or the manager is gone.
        if (ec == boost::asio::error::operation_aborted) return;
        Pool* p = find_by_id(pool_id);
        Worker* w = p != nullptr ? find_worker(*p, worker_id) : nullptr;
        if (w == nullptr || w->retired || w->ready) return;
        ErrorCode close_error;
        w->probe.close(close_error);
        if (!ec) {
          w->ready = true;
          w->timer.cancel();
          log_->info("worker ready pool={} slot={} generation={} pid={}", p->name, w->slot,
                     w->generation, w->pid);
          update(*p);
          return;
        }
        w->probe_timer.expires_after(kProbeInterval);
        w->probe_timer.async_wait([this, pool_id, worker_id](const ErrorCode& wait_error) {
          if (wait_error) return;
          Pool* again = find_by_id(pool_id);
          Worker* retry = again != nullptr ? find_worker(*again, worker_id) : nullptr;
          if (retry == nullptr || retry->retired || retry->ready) return;
          probe(*again, *retry);
        });
      });
}

void PoolManager::retire(Pool& pool, Worker& worker) {
  worker.retired = true;
  worker.probe_timer.cancel();
  ErrorCode ignored;
  worker.probe.close(ignored);
  log_->info("worker stopping pool={} slot={} generation={} pid={}", pool.name, worker.slot,
             worker.generation, worker.pid);
  signal_group(worker.pid, SIGTERM);
  worker.timer.expires_after(worker.shutdown_time_limit);
  worker.timer.async_wait([this, pool_id = pool.id, worker_id = worker.id](const ErrorCode& ec) {
    if (ec) return;
    Pool* p = find_by_id(pool_id);
    Worker* w = p != nullptr ? find_worker(*p, worker_id) : nullptr;
    if (w == nullptr) return;
    log_->warn("worker exceeded shutdown time limit pool={} pid={} limit_ms={} action=kill",
               p->name, w->pid, w->shutdown_time_limit.count());
    signal_group(w->pid, SIGKILL);
  });
}

void PoolManager::on_worker_exit(std::uint64_t pool_id, std::uint64_t worker_id, int wait_status) {
  Pool* pool = find_by_id(pool_id);
  Worker* worker = pool != nullptr ? find_worker(*pool, worker_id) : nullptr;
  if (worker == nullptr) return;
  const bool expected = worker->retired;
  const int slot = worker->slot;
  const int generation = worker->generation;
  const pid_t pid = worker->pid;
  if (expected) {
    log_->info("worker exited pool={} slot={} generation={} pid={} status=\"{}\"", pool->name, slot,
               generation, pid, describe_wait_status(wait_status));
  } else {
    log_->warn("worker exited unexpectedly pool={} slot={} generation={} pid={} status=\"{}\"",
               pool->name, slot, generation, pid, describe_wait_status(wait_status));
  }
  // Whatever the worker left behind in its group goes with it. The group id
  // cannot have been reused yet: we reaped its leader a moment ago.
  ::kill(-pid, SIGKILL);
  remove_worker(*pool, worker_id);
  if (!expected) {
    record_failure(*pool);
    if (pool->wanted && generation == pool->target_generation) schedule_restart(*pool, slot);
  }
  update(*pool);
}

void PoolManager::on_startup_timeout(std::uint64_t pool_id, std::uint64_t worker_id) {
  Pool* pool = find_by_id(pool_id);
  Worker* worker = pool != nullptr ? find_worker(*pool, worker_id) : nullptr;
  if (worker == nullptr || worker->ready || worker->retired) return;
  log_->warn("worker exceeded startup time limit pool={} slot={} generation={} pid={} limit_ms={}",
             pool->name, worker->slot, worker->generation, worker->pid,
             pool->config.startup_time_limit.count());
  worker->retired = true;
  worker->probe_timer.cancel();
  ErrorCode ignored;
  worker->probe.close(ignored);
  signal_group(worker->pid, SIGKILL);
  const int slot = worker->slot;
  const int generation = worker->generation;
  record_failure(*pool);
  if (pool->wanted && generation == pool->target_generation) schedule_restart(*pool, slot);
  update(*pool);
}

void PoolManager::record_failure(Pool& pool) {
  ++pool.worker_failures;
  if (!pool.config.rapid_fail_protection || !pool.wanted) return;
  if (!pool.failures.record(clock_.now())) return;
  log_->error("pool rapid-fail protection tripped pool={} failures={} interval_ms={}", pool.name,
              pool.failures.count(), pool.config.rapid_fail_interval.count());
  stop_pool(pool, kReasonAppOffline);
}

void PoolManager::schedule_restart(Pool& pool, int slot) {
  const std::uint64_t restart_id = next_id_++;
  auto timer = std::make_unique<steady_timer>(io_, options_.restart_delay);
  timer->async_wait([this, pool_id = pool.id, slot, restart_id](const ErrorCode& ec) {
    if (ec) return;
    Pool* p = find_by_id(pool_id);
    if (p == nullptr) return;
    // A stop or recycle may have dropped this restart after it fired.
    auto it = p->restarts.find(slot);
    if (it == p->restarts.end() || it->second.id != restart_id) return;
    p->restarts.erase(it);
    fill_slots(*p);
    update(*p);
  });
  pool.restarts[slot] = Pool::Restart{restart_id, std::move(timer)};
  log_->info("worker restart scheduled pool={} slot={} delay_ms={}", pool.name, slot,
             options_.restart_delay.count());
}

void PoolManager::remove_worker(Pool& pool, std::uint64_t worker_id) {
  auto it = std::find_if(pool.workers.begin(), pool.workers.end(),
                         [worker_id](const auto& worker) { return worker->id == worker_id; });
  if (it == pool.workers.end()) return;
  const std::string path = (*it)->socket_path;
  pool.workers.erase(it);
  bool shared = std::any_of(pool.workers.begin(), pool.workers.end(),
                            [&path](const auto& worker) { return worker->socket_path == path; });
  if (!path.empty() && !shared) ::unlink(path.c_str());
}

void PoolManager::update(Pool& pool) {
  advance(pool);
  const std::uint64_t id = pool.id;
  publish(pool);
  // Listeners may have called back into the manager: look the pool up again.
  Pool* current = find_by_id(id);
  if (current != nullptr && current->removed && current->state == PoolState::kStopped &&
      current->workers.empty()) {
    const std::string name = current->name;
    log_->info("pool removed pool={}", name);
    pools_.erase(name);
  }
  finish_shutdown_when_idle();
}

void PoolManager::advance(Pool& pool) {
  if (!pool.wanted) {
    if (pool.workers.empty() && pool.state != PoolState::kStopped) {
      pool.state = PoolState::kStopped;
      log_->info("pool stopped pool={} reason={}", pool.name, pool.reason);
    }
    return;
  }
  for (int slot = 0; slot < pool.config.processes; ++slot) {
    bool ready = std::any_of(pool.workers.begin(), pool.workers.end(), [&](const auto& worker) {
      return !worker->retired && worker->ready && worker->slot == slot &&
             worker->generation == pool.target_generation;
    });
    if (!ready) return;
  }
  if (pool.serving_generation != pool.target_generation) {
    // Overlap done: the new generation serves, the old one drains once the
    // request router no longer sends it anything (options_.retire_gate).
    std::vector<std::uint64_t> old_workers;
    for (auto& worker : pool.workers) {
      if (!worker->retired && worker->generation != pool.target_generation) {
        old_workers.push_back(worker->id);
      }
    }
    pool.serving_generation = pool.target_generation;
    log_->info("pool recycled pool={} generation={}", pool.name, pool.serving_generation);
    retire_after_switch(pool, std::move(old_workers));
  }
  if (pool.state != PoolState::kStarted) {
    pool.state = PoolState::kStarted;
    pool.reason.clear();
    log_->info("pool started pool={} processes={} generation={}", pool.name, pool.config.processes,
               pool.serving_generation);
  }
}

void PoolManager::retire_after_switch(Pool& pool, std::vector<std::uint64_t> worker_ids) {
  if (!options_.retire_gate) {
    for (auto id : worker_ids) {
      if (Worker* worker = find_worker(pool, id); worker != nullptr && !worker->retired) {
        retire(pool, *worker);
      }
    }
    return;
  }
  // Posted, so the gate is asked after this change has been published.
  boost::asio::post(io_, [this, pool_id = pool.id, ids = std::move(worker_ids)]() mutable {
    Pool* current = find_by_id(pool_id);
    if (current == nullptr) return;
    options_.retire_gate(current->name, [this, pool_id, ids = std::move(ids)] {
      Pool* gated = find_by_id(pool_id);
      if (gated == nullptr) return;
      for (auto id : ids) {
        if (Worker* worker = find_worker(*gated, id); worker != nullptr && !worker->retired) {
          retire(*gated, *worker);
        }
      }
      update(*gated);
    });
  });
}

void PoolManager::publish(Pool& pool) {
  PoolStatus status = make_status(pool);
  if (pool.published && pool.published->state == status.state &&
      pool.published->reason == status.reason && pool.published->workers == status.workers) {
    return;
  }
  pool.published = status;
  auto listeners = listeners_;  // a listener may subscribe another
  for (const auto& listener : listeners) listener(status);
}

void PoolManager::finish_shutdown_when_idle() {
  if (!shutting_down_ || !shutdown_done_) return;
  for (const auto& [name, pool] : pools_) {
    if (!pool->workers.empty()) return;
  }
  log_->info("pool manager shut down");
  boost::asio::post(io_, std::exchange(shutdown_done_, nullptr));
}

PoolStatus PoolManager::make_status(const Pool& pool) const {
  PoolStatus status;
  status.name = pool.name;
  status.state = pool.state;
  status.reason = pool.reason;
  status.processes = pool.config.processes;
  status.worker_starts = pool.worker_starts;
  status.worker_failures = pool.worker_failures;
  for (const auto& worker : pool.workers) {
    if (worker->retired || !worker->ready || worker->generation != pool.serving_generation)
      continue;
    status.workers.push_back(WorkerStatus{worker->slot, worker->pid, worker->endpoint,
                                          worker->ready, worker->started_at_unix_ms,
                                          worker->generation});
  }
  std::sort(status.workers.begin(), status.workers.end(),
            [](const WorkerStatus& a, const WorkerStatus& b) { return a.slot < b.slot; });
  return status;
}

}  // namespace clusweb::pool
