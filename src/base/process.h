#pragma once

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/result.h"

namespace clusweb {

// The identity a child runs as.
struct UserIds {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string name;
  std::string home;
  std::vector<gid_t> groups;  // supplementary groups, including gid
};

// Looks a user up in the password database (getpwnam_r + getgrouplist).
// The error names the user.
Result<UserIds> lookup_user(const std::string& name);
// The same by user id (for "the user we already run as").
Result<UserIds> lookup_user_id(uid_t uid);

struct SpawnOptions {
  // argv[0] without '/' is looked up in the PATH of `env` (default
  // "/usr/local/bin:/usr/bin:/bin" when `env` has none).
  std::vector<std::string> argv;
  // The complete environment of the child.
  std::map<std::string, std::string> env;
  // "" = inherit the parent's working directory. Entered after the user drop.
  std::string working_directory;
  // Drop to this user (setgroups, setgid, setuid) before exec.
  std::optional<UserIds> user;
  // (fd in the parent, fd number in the child), e.g. {sock, 3}. Every other
  // descriptor except 0-2 is closed in the child.
  std::vector<std::pair<int, int>> fds;
  // Put LISTEN_PID=<child pid> into the environment (systemd socket activation).
  bool set_listen_pid = false;
  // setpgid(0, 0): the child leads a new process group, so signal_group()
  // reaches everything it starts.
  bool new_process_group = true;
  // PR_SET_NO_NEW_PRIVS: setuid binaries cannot raise the child's privileges.
  bool no_new_privs = false;
  // PR_SET_PDEATHSIG (0 = none). The kernel sends it when the *thread* that
  // called spawn() exits, so spawn from a long-lived thread.
  int parent_death_signal = SIGTERM;
  // -1 = inherit; stdin is always /dev/null.
  int stdout_fd = -1;
  int stderr_fd = -1;
};

// fork + exec. Between fork and exec the child makes only async-signal-safe
// calls; it starts with default signal dispositions and an empty signal mask.
// A failure in the child before exec (chdir, setuid, exec itself) comes back
// through a close-on-exec pipe as an Error naming argv[0] and the errno; the
// failed child is reaped before spawn() returns. Call it from the thread that
// runs the ChildReaper's io_context, then watch() the pid before returning to
// the event loop.
Result<pid_t> spawn(const SpawnOptions& options);

// Sends `signal` to the process group `pid`, or to the process `pid` when it
// leads no group. Errors (already gone) are ignored.
void signal_group(pid_t pid, int signal);

// "exited 3", "killed by SIGKILL", "killed by SIGSEGV (core dumped)".
std::string describe_wait_status(int wait_status);

// Reaps children as soon as they exit. Makes the process a child subreaper
// (PR_SET_CHILD_SUBREAPER), so orphaned grandchildren are reparented to us and
// reaped here too instead of lingering as zombies of a slow init. On SIGCHLD
// it calls waitpid(-1, WNOHANG) until no child is left to reap and calls the
// callback registered for each pid with its raw wait status; children nobody
// watches are reaped silently.
//
// One per process (every waitpid(-1) takes any child). Not thread-safe: use it
// on the io_context's thread. Callbacks run on that thread, after the child is
// reaped; a callback may call watch()/forget().
class ChildReaper {
 public:
  explicit ChildReaper(boost::asio::io_context& io);
  ~ChildReaper();
  ChildReaper(const ChildReaper&) = delete;
  ChildReaper& operator=(const ChildReaper&) = delete;

  void watch(pid_t pid, std::function<void(int wait_status)> on_exit);
  void forget(pid_t pid);

 private:
  void wait_for_signal();
  void reap();

  boost::asio::signal_set signals_;
  std::unordered_map<pid_t, std::function<void(int)>> watched_;
};

}  // namespace clusweb
