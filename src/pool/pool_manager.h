#pragma once

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/log.h"
#include "base/process.h"
#include "base/result.h"
#include "config/web_config.h"
#include "pool/pool_status.h"

namespace clusweb::pool {

struct PoolManagerOptions {
  std::string run_dir;  // activation sockets go to run_dir/pools/ (created 0750)
  std::string log_dir;  // each pool's workers append stdout/stderr to log_dir/pool-<name>.log
  // Sockets (and run_dir/pools) get this group and mode 0660, so the
  // unprivileged front end can connect.
  std::optional<gid_t> socket_group;
  std::chrono::milliseconds restart_delay{100};  // before replacing a worker that exited
  // After a recycle switches requests to the new workers, the old ones get
  // SIGTERM only when the gate calls `proceed`: the request router must have
  // stopped using them first. Unset: at once. Called on the io_context thread.
  std::function<void(const std::string& pool, std::function<void()> proceed)> retire_gate;
};

// Runs the application pools of a configuration (IIS semantics): `processes`
// workers per pool, each with its own listening socket — a unix socket handed
// over by socket activation (fd 3, LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES) or a
// free loopback port in PORT. Workers that exit are replaced after
// restart_delay; rapid-fail protection stops a pool that fails too often
// (reason "AppOffline"); recycling is overlapped: the new generation is ready
// before the old one gets SIGTERM. A worker's process group is its unit: it is
// signalled as a group, and whatever remains of the group when the worker
// exits is killed.
//
// Not thread-safe: call it on the io_context's thread. Listeners run on that
// thread, synchronously after each change, and may call back into the
// manager. The destructor kills (SIGKILL) any worker still running; call
// shutdown() first for a graceful stop. `reaper` and `clock` must outlive it.
class PoolManager {
 public:
  PoolManager(boost::asio::io_context& io, ChildReaper& reaper, const Clock& clock,
              PoolManagerOptions options);
  ~PoolManager();
  PoolManager(const PoolManager&) = delete;
  PoolManager& operator=(const PoolManager&) = delete;

  // Reconciles with a new validated config: new pools start when autoStart,
  // removed pools stop (and disappear from status() once stopped), pools whose
  // ApplicationPool changed are recycled with the new settings when running
  // (kept stopped otherwise, unless they failed to start and autoStart is on),
  // unchanged pools are left alone.
  void apply(const config::WebConfig& config);

  // Starts an unknown pool: error naming it. Already started (or starting) is
  // OK. A pool whose user or log cannot be set up stays Stopped with reason
  // "StartupFailed" and the error is returned. Clears the rapid-fail history.
  Status start(const std::string& name);
  // Graceful: SIGTERM to each worker's group, SIGKILL after shutdownTimeLimit;
  // reason "Disabled". Stopping a stopped pool is OK.
  Status stop(const std::string& name);
  // Overlapped: a new generation of workers, all ready, before the old one
  // gets SIGTERM. The pool must be started (or starting).
  Status recycle(const std::string& name);

  std::vector<PoolStatus> status() const;  // sorted by name
  std::optional<PoolStatus> status(const std::string& name) const;

  // Called after every change of a pool's state, reason or worker list.
  void subscribe(std::function<void(const PoolStatus&)> listener);

  // Stops every pool; `done` runs (posted to the io_context) once every
  // worker is gone. Afterwards start() and apply() refuse to start pools.
  void shutdown(std::function<void()> done);

 private:
  struct Worker;
  struct Pool;

  Pool* find(const std::string& name);
  Pool* find_by_id(std::uint64_t pool_id);
  Worker* find_worker(Pool& pool, std::uint64_t worker_id);

  std::string pools_dir() const;
  Status prepare(Pool& pool);
  Status start_pool(Pool& pool);
  void stop_pool(Pool& pool, std::string_view reason);
  void fill_slots(Pool& pool);
  void launch(Pool& pool, int slot);
  void probe(Pool& pool, Worker& worker);
  void retire(Pool& pool, Worker& worker);
  void retire_after_switch(Pool& pool, std::vector<std::uint64_t> worker_ids);
  void on_worker_exit(std::uint64_t pool_id, std::uint64_t worker_id, int wait_status);
  void on_startup_timeout(std::uint64_t pool_id, std::uint64_t worker_id);
  void record_failure(Pool& pool);
  void schedule_restart(Pool& pool, int slot);
  void remove_worker(Pool& pool, std::uint64_t worker_id);
  // Moves the pool's state forward, tells listeners, erases a removed pool
  // once stopped, and finishes a shutdown. `pool` may be gone afterwards.
  void update(Pool& pool);
  void advance(Pool& pool);
  void publish(Pool& pool);
  void finish_shutdown_when_idle();
  PoolStatus make_status(const Pool& pool) const;

  boost::asio::io_context& io_;
  ChildReaper& reaper_;
  const Clock& clock_;
  PoolManagerOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  std::map<std::string, std::unique_ptr<Pool>> pools_;
  std::vector<std::function<void(const PoolStatus&)>> listeners_;
  std::uint64_t next_id_ = 1;
  bool shutting_down_ = false;
  std::function<void()> shutdown_done_;
};

}  // namespace clusweb::pool
