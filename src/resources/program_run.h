#pragma once

#include <sys/types.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/process.h"
#include "base/result.h"

namespace clusweb::resources {

// One program to run for a resource call (`script`, `ocf`).
struct Program {
  // argv[0] is the executable, absolute.
  std::vector<std::string> argv;
  // The complete environment of the program.
  std::map<std::string, std::string> env;
  // The run is killed at this timeout; must be positive.
  std::chrono::milliseconds timeout{0};
  // -1: stdout shares the output pipe with stderr (lines to the log sink and
  // ProgramOutcome::output). Otherwise stdout goes to this descriptor (the
  // caller keeps it; e.g. a memfd for output that must arrive whole, such as
  // an OCF agent's meta-data) and only stderr is read as lines.
  int stdout_fd = -1;
};

// How one run ended. At most one of spawn_error, superseded, timed_out
// describes it, checked in that order; otherwise the program exited (or was
// killed by a signal of its own) with `wait_status`.
struct ProgramOutcome {
  std::optional<Error> spawn_error;  // never ran: no timeout, pipe or spawn (exec) failure
  bool superseded = false;           // killed by ProgramRunner::supersede()
  bool timed_out = false;            // killed at Program::timeout
  bool exited = false;               // wait_status holds the raw waitpid() status
  int wait_status = 0;
  std::chrono::milliseconds timeout{0};
  std::vector<std::string> output;  // the last kMaxOutputLines lines it printed

  // The exit code when the program exited by itself (not timed out, not
  // superseded, not by a signal).
  std::optional<int> exit_code() const;
  // "superseded by terminate", "timed out after 200 ms", "exited 3",
  // "killed by SIGSEGV", or the spawn error.
  std::string describe() const;
};

// Runs programs for one resource: each in its own process group, in "/",
// stdin from /dev/null, stdout and stderr through one pipe whose lines (at
// most kMaxLineBytes, longer ones cut) go to the log sink as they arrive; the
// last kMaxOutputLines end up in ProgramOutcome::output.
//
// Timeout: at Program::timeout the process group gets SIGTERM, and SIGKILL
// min(kMaxKillGrace, timeout / 2) later if the program is still running; the
// outcome is then timed_out. Whatever is left of a timed-out (or superseded)
// run's process group when its program exits is killed too. A run ends at the
// latest shortly after timeout + grace (a killed program that the kernel does
// not let die is given up on after a short backstop), and the child is always
// reaped through the ChildReaper.
//
// After the program has exited, its output is read for at most kDrainTime
// more: a background child that keeps the pipe open does not hold the run.
// (Such a child is left running after a normal exit: scripts and agents may
// start daemons. It is killed only with a timed-out or superseded run.)
//
// Supersede: at most one tracked run is "the call in flight" at a time;
// supersede() SIGKILLs its process group and waits until it has ended (its
// outcome is superseded). Untracked runs (what a Terminate runs itself) are
// never superseded.
//
// Threading: use it on the thread that runs the ChildReaper's io_context
// (spawn() requires it); the executor must belong to that io_context. The
// runner must outlive its runs; destroying it SIGKILLs the process group of
// a tracked run still going.
class ProgramRunner {
 public:
  using LogSink = std::function<void(std::string_view line)>;

  static constexpr std::size_t kMaxOutputLines = 100;
  static constexpr std::size_t kMaxLineBytes = 1000;
  static constexpr std::chrono::milliseconds kDrainTime{100};
  static constexpr std::chrono::milliseconds kMaxKillGrace{1000};

  enum class Tracking {
    kTracked,    // the call in flight until it ends: supersede() ends it
    kUntracked,  // a Terminate's own program
  };

  // `log_sink` (may be empty) gets every output line, on the executor's thread.
  ProgramRunner(ChildReaper& reaper, boost::asio::any_io_executor executor, LogSink log_sink = {});
  ~ProgramRunner();
  ProgramRunner(const ProgramRunner&) = delete;
  ProgramRunner& operator=(const ProgramRunner&) = delete;

  // Runs `program` to its end. Never throws; a program that cannot be started
  // is an outcome with spawn_error naming argv[0].
  boost::asio::awaitable<ProgramOutcome> run(Program program, Tracking tracking);

  // Ends the tracked run in flight, if any, and waits until it has ended.
  // `resource` names it in the log line.
  boost::asio::awaitable<void> supersede(std::string resource);

 private:
  class Run;  // one running program

  ChildReaper& reaper_;
  boost::asio::any_io_executor executor_;
  LogSink log_sink_;
  std::shared_ptr<Run> in_flight_;  // the tracked run going now
};

}  // namespace clusweb::resources
