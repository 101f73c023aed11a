#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "base/process.h"
#include "cluster/group_controller.h"
#include "resources/program_run.h"
#include "resources/resource.h"

namespace clusweb::resources {

// The `script` resource type: an executable that implements the WSFC Generic
// Script entry points, called once per verb as
//
//   <path> open|online|looksalive|isalive|offline|close|terminate
//
// (the WSFC names, lower case, one word each: cluster::to_string(Verb)).
//
// Exit status: 0 = true (ok); anything else = false, with the status as the
// detail ("exited 1", "killed by SIGSEGV"). Open and Close are optional entry
// points: for them, exit 3 means "not implemented" and counts as ok.
//
// Environment: only PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin,
// CLUSWEB_RESOURCE, CLUSWEB_GROUP, CLUSWEB_NODE, CLUSWEB_FENCING_TOKEN,
// CLUSWEB_VERB (the verb name as passed in argv[1]), CLUSWEB_TIMEOUT_MS (how
// long the call may run, so a script can give up with a message) and one
// CLUSWEB_PARAM_<NAME> per parameter (see script_parameter_variable()).
// The script runs under a ProgramRunner (program_run.h): in "/" with stdin
// on /dev/null, leading its own process group; its stdout and stderr go
// through one pipe: every line (at most kMaxLineBytes, longer ones cut) goes
// to the log sink as it arrives, and the last kMaxOutputLines end up in
// CallResult::output.
//
// Timeout: at CallContext::timeout the process group gets SIGTERM, and
// SIGKILL min(1 s, timeout / 2) later if the script is still running; the
// result is then timed_out with detail "timed out after <N> ms". A call
// without a positive timeout fails without running anything. Whatever was
// left of a timed-out (or superseded) call's process group when its script
// exits is killed too. A call ends at the latest shortly after timeout +
// grace, and the child is always reaped through the ChildReaper.
//
// After the script has exited, its output is read for at most kDrainTime
// more: a background child that keeps the pipe open does not hold the call.
// (Such a child is left running after a normal exit: scripts may start
// daemons. It is killed only with a timed-out or superseded call.)
//
// Concurrency: calls come one at a time, except Terminate, which may arrive
// while another call runs. Terminate first SIGKILLs the running call's process
// group (that call then ends with ok = false, detail "superseded by
// terminate"), waits for it to end, then runs `<path> terminate`.
//
// Errors never throw: a missing or non-executable script, or a relative path,
// is an ok = false result whose detail names the path.
//
// Threading: use it on the thread that runs the ChildReaper's io_context
// (spawn() requires it); the executor must belong to that io_context. The
// resource must outlive its calls.
class ScriptResource final : public Resource {
 public:
  using LogSink = ProgramRunner::LogSink;

  static constexpr std::size_t kMaxOutputLines = ProgramRunner::kMaxOutputLines;
  static constexpr std::size_t kMaxLineBytes = ProgramRunner::kMaxLineBytes;
  static constexpr std::chrono::milliseconds kDrainTime = ProgramRunner::kDrainTime;
  static constexpr std::chrono::milliseconds kMaxKillGrace = ProgramRunner::kMaxKillGrace;
  // Open and Close exit with this when the script does not implement them.
  static constexpr int kNotImplemented = 3;

  // `path`: the script, absolute. `log_sink` (may be empty) gets every output
  // line, on the executor's thread. Destroying the resource SIGKILLs the
  // process group of a call still running.
  ScriptResource(std::string path, ChildReaper& reaper, boost::asio::any_io_executor executor,
                 LogSink log_sink = {});

  boost::asio::awaitable<CallResult> call(cluster::Verb verb, const CallContext& context) override;

 private:
  std::string path_;
  ProgramRunner runner_;  // the call in flight is its tracked run
};

// "CLUSWEB_PARAM_" + the name upper-cased, every character other than
// [A-Z0-9_] replaced by '_' ("probe-url" -> "CLUSWEB_PARAM_PROBE_URL"). Two
// names that map to one variable: the later one (in name order) wins.
std::string script_parameter_variable(std::string_view name);

}  // namespace clusweb::resources
