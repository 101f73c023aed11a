#pragma once

// Keeps `clusweb web` running beside the agent: started before any group
// can go online here, restarted when it exits (a crash of the web service is
// a local restart, not a failover: its clustered sites stay Stopped until the
// agent grants permits again), stopped last. Its sites that groups reference
// are listed in the clustered-sites file, so a restarted web service never
// starts them by itself.

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "base/process.h"

namespace clusweb::agent {

class WebSupervisor {
 public:
  // `argv`: the complete command line of the web service.
  WebSupervisor(boost::asio::io_context& io, ChildReaper& reaper, std::vector<std::string> argv,
                std::string log_path);
  ~WebSupervisor();

  void start();
  // Takes over a web service this process started before it replaced itself by exec (still
  // its child), so that start() keeps it rather than starting another. False when `pid` is
  // not a running child of ours (it is reaped if it exited).
  bool adopt(pid_t pid);
  // SIGTERM (the web service drains), then SIGKILL after `grace`; `done`
  // runs once the process has exited.
  void stop(std::chrono::milliseconds grace, std::function<void()> done);
  pid_t pid() const { return pid_; }

 private:
  void launch();
  void watch_exit();

  ChildReaper& reaper_;
  std::vector<std::string> argv_;
  std::string log_path_;
  boost::asio::steady_timer restart_timer_;
  boost::asio::steady_timer kill_timer_;
  pid_t pid_ = 0;
  bool stopping_ = false;
  std::chrono::milliseconds backoff_{200};
  std::chrono::steady_clock::time_point started_at_{};
  std::function<void()> on_stopped_;
};

}  // namespace clusweb::agent
