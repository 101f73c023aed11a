#include "base/process.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <grp.h>
#include <linux/close_range.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "base/log.h"
#include "base/unique_fd.h"

namespace clusweb {
namespace {

constexpr std::string_view kDefaultPath = "/usr/local/bin:/usr/bin:/bin";
constexpr std::string_view kListenPidPrefix = "LISTEN_PID=";

Result<UserIds> user_from_passwd(const passwd& entry) {
  UserIds ids;
  ids.uid = entry.pw_uid;
  ids.gid = entry.pw_gid;
  ids.name = entry.pw_name;
  ids.home = entry.pw_dir;
  int count = 16;
  for (;;) {
    ids.groups.resize(static_cast<std::size_t>(count));
    int capacity = count;
    if (::getgrouplist(entry.pw_name, entry.pw_gid, ids.groups.data(), &count) >= 0) {
      ids.groups.resize(static_cast<std::size_t>(count));
      return ids;
    }
    // getgrouplist reports the size it needs in `count`; guard against a
    // database that keeps growing or misreports.
    if (count <= capacity) count = capacity * 2;
    if (count > 65536) return make_error("too many groups for user {}", ids.name);
  }
}

// Calls getpwnam_r/getpwuid_r (passed as `get`) with a growing buffer.
template <class Get>
Result<UserIds> lookup_passwd(std::string_view call, const std::string& what, Get get) {
  long suggested = ::sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buffer(suggested > 0 ? static_cast<std::size_t>(suggested) : 4096);
  for (;;) {
    passwd entry{};
    passwd* found = nullptr;
    int err = get(&entry, buffer.data(), buffer.size(), &found);
    if (err == ERANGE && buffer.size() < (1u << 20)) {
      buffer.resize(buffer.size() * 2);
      continue;
    }
    if (err != 0) return errno_error(call, fmt::format("user {}", what), err);
    if (found == nullptr) {
      return Error{fmt::format("no such user: {}", what), fmt::format("user {}", what), 0};
    }
    return user_from_passwd(entry);
  }
}

// What the child reports through the pipe when it fails before exec.
enum class ChildStage : int {
  kSetpgid,
  kPrctl,
  kFileDescriptors,
  kSetgroups,
  kSetgid,
  kSetuid,
  kChdir,
  kExec,
};

struct ChildFailure {
  ChildStage stage;
  int err;
};

std::string_view stage_call(ChildStage stage) {
  switch (stage) {
    case ChildStage::kSetpgid:
      return "setpgid";
    case ChildStage::kPrctl:
      return "prctl";
    case ChildStage::kFileDescriptors:
      return "dup2";
    case ChildStage::kSetgroups:
      return "setgroups";
    case ChildStage::kSetgid:
      return "setgid";
    case ChildStage::kSetuid:
      return "setuid";
    case ChildStage::kChdir:
      return "chdir";
    case ChildStage::kExec:
      return "exec";
  }
  return "spawn";
}

// Everything the child needs, built before fork so the child only reads it.
struct ChildPlan {
  std::vector<std::string> candidates;  // paths to try for argv[0]
  std::vector<char*> argv;
  std::vector<std::string> env_storage;
  std::vector<char*> envp;
  std::array<char, 48> listen_pid{};  // "LISTEN_PID=" + digits, filled in the child
  int listen_pid_digits_at = -1;
  std::vector<std::pair<int, int>> mappings;  // (source, target)
  std::vector<int> moved;                     // scratch: sources moved above max_target
  int max_target = 2;
  long open_max = 1024;
  pid_t parent = 0;
  const SpawnOptions* options = nullptr;
};

std::vector<std::string> exec_candidates(const SpawnOptions& options) {
  const std::string& name = options.argv.front();
  if (name.find('/') != std::string::npos) return {name};
  std::string_view path = kDefaultPath;
  if (auto it = options.env.find("PATH"); it != options.env.end()) path = it->second;
  std::vector<std::string> candidates;
  while (!path.empty()) {
    auto colon = path.find(':');
    std::string_view dir = path.substr(0, colon);
    // An empty element would mean the working directory; never search it.
    if (!dir.empty()) candidates.push_back(fmt::format("{}/{}", dir, name));
    if (colon == std::string_view::npos) break;
    path.remove_prefix(colon + 1);
  }
  return candidates;
}

// Async-signal-safe: writes the decimal digits of `value` and a NUL.
void write_decimal(char* out, long value) {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value > 0);
  while (n > 0) *out++ = digits[--n];
  *out = '\0';
}

[[noreturn]] void child_fail(int report_fd, ChildStage stage, int err) {
  ChildFailure failure{stage, err};
  ssize_t ignored = ::write(report_fd, &failure, sizeof(failure));
  (void)ignored;
  ::_exit(127);
}

// Runs in the forked child. Only async-signal-safe calls from here on: no
// allocation, no locks, no logging. Signals are blocked on entry.
[[noreturn]] void run_child(ChildPlan& plan, int report_fd_in) {
  const SpawnOptions& options = *plan.options;

  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &default_action, nullptr);
  }

  // Keep the report pipe above every target so the dup2s below cannot clobber it.
  int report_fd = ::fcntl(report_fd_in, F_DUPFD_CLOEXEC, plan.max_target + 1);
  if (report_fd < 0) child_fail(report_fd_in, ChildStage::kFileDescriptors, errno);

  if (options.new_process_group && ::setpgid(0, 0) != 0) {
    child_fail(report_fd, ChildStage::kSetpgid, errno);
  }

  // Move every source out of the way first: a source may sit on another
  // mapping's target number.
  for (std::size_t i = 0; i < plan.mappings.size(); ++i) {
    plan.moved[i] = ::fcntl(plan.mappings[i].first, F_DUPFD_CLOEXEC, plan.max_target + 1);
    if (plan.moved[i] < 0) child_fail(report_fd, ChildStage::kFileDescriptors, errno);
  }
  for (std::size_t i = 0; i < plan.mappings.size(); ++i) {
    if (::dup2(plan.moved[i], plan.mappings[i].second) < 0) {
      child_fail(report_fd, ChildStage::kFileDescriptors, errno);
    }
  }
  for (int fd = 3; fd <= plan.max_target; ++fd) {
    bool is_target = false;
    for (const auto& mapping : plan.mappings) is_target = is_target || mapping.second == fd;
    if (!is_target) ::close(fd);
  }
  if (::close_range(static_cast<unsigned>(plan.max_target + 1), ~0u, CLOSE_RANGE_CLOEXEC) != 0) {
    for (long fd = plan.max_target + 1; fd < plan.open_max; ++fd) {
      ::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
    }
  }

  // Raw syscalls: they change only this (the only) thread, without glibc's
  // all-threads setxid machinery.
  if (options.user) {
    const UserIds& user = *options.user;
    if (::syscall(SYS_setgroups, user.groups.size(), user.groups.data()) != 0) {
      child_fail(report_fd, ChildStage::kSetgroups, errno);
    }
    if (::syscall(SYS_setresgid, user.gid, user.gid, user.gid) != 0) {
      child_fail(report_fd, ChildStage::kSetgid, errno);
    }
    if (::syscall(SYS_setresuid, user.uid, user.uid, user.uid) != 0) {
      child_fail(report_fd, ChildStage::kSetuid, errno);
    }
  }
  if (options.no_new_privs && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    child_fail(report_fd, ChildStage::kPrctl, errno);
  }
  // After the credential change, which clears the parent-death signal.
  if (options.parent_death_signal != 0) {
    if (::prctl(PR_SET_PDEATHSIG, options.parent_death_signal, 0, 0, 0) != 0) {
      child_fail(report_fd, ChildStage::kPrctl, errno);
    }
    if (::getppid() != plan.parent) ::_exit(127);  // the parent died before prctl
  }
  if (!options.working_directory.empty() && ::chdir(options.working_directory.c_str()) != 0) {
    child_fail(report_fd, ChildStage::kChdir, errno);
  }
  if (plan.listen_pid_digits_at >= 0) {
    write_decimal(plan.listen_pid.data() + plan.listen_pid_digits_at, ::getpid());
  }

  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);

  int err = ENOENT;
  bool saw_eacces = false;
  for (const std::string& candidate : plan.candidates) {
    ::execve(candidate.c_str(), plan.argv.data(), plan.envp.data());
    err = errno;
    if (err == EACCES) {
      saw_eacces = true;
    } else if (err != ENOENT && err != ENOTDIR) {
      break;  // found but not runnable (ENOEXEC, E2BIG, ...): report that
    }
  }
  child_fail(report_fd, ChildStage::kExec, saw_eacces && err != ENOEXEC ? EACCES : err);
}

void build_plan(const SpawnOptions& options, int stdin_fd, ChildPlan& plan) {
  plan.options = &options;
  plan.candidates = exec_candidates(options);
  for (const std::string& arg : options.argv) plan.argv.push_back(const_cast<char*>(arg.c_str()));
  plan.argv.push_back(nullptr);

  for (const auto& [key, value] : options.env) {
    if (options.set_listen_pid && key == "LISTEN_PID") continue;
    plan.env_storage.push_back(fmt::format("{}={}", key, value));
  }
  for (std::string& entry : plan.env_storage) plan.envp.push_back(entry.data());
  if (options.set_listen_pid) {
    std::memcpy(plan.listen_pid.data(), kListenPidPrefix.data(), kListenPidPrefix.size());
    plan.listen_pid_digits_at = static_cast<int>(kListenPidPrefix.size());
    plan.envp.push_back(plan.listen_pid.data());
  }
  plan.envp.push_back(nullptr);

  plan.mappings.emplace_back(stdin_fd, 0);
  if (options.stdout_fd >= 0) plan.mappings.emplace_back(options.stdout_fd, 1);
  if (options.stderr_fd >= 0) plan.mappings.emplace_back(options.stderr_fd, 2);
  for (const auto& mapping : options.fds) plan.mappings.push_back(mapping);
  for (const auto& mapping : plan.mappings)
    plan.max_target = std::max(plan.max_target, mapping.second);
  plan.moved.assign(plan.mappings.size(), -1);

  long open_max = ::sysconf(_SC_OPEN_MAX);
  plan.open_max = open_max > 0 ? std::min(open_max, 1L << 20) : 1024;
  plan.parent = ::getpid();
}

}  // namespace

Result<UserIds> lookup_user(const std::string& name) {
  return lookup_passwd("getpwnam_r", name,
                       [&name](passwd* entry, char* buffer, std::size_t size, passwd** found) {
                         return ::getpwnam_r(name.c_str(), entry, buffer, size, found);
                       });
}

Result<UserIds> lookup_user_id(uid_t uid) {
  return lookup_passwd("getpwuid_r", std::to_string(uid),
                       [uid](passwd* entry, char* buffer, std::size_t size, passwd** found) {
                         return ::getpwuid_r(uid, entry, buffer, size, found);
                       });
}

Result<pid_t> spawn(const SpawnOptions& options) {
  if (options.argv.empty() || options.argv.front().empty()) {
    return make_error("spawn needs a program to run");
  }
  const std::string& program = options.argv.front();
  for (const auto& [parent_fd, child_fd] : options.fds) {
    if (parent_fd < 0 || child_fd < 0) {
      return Error{fmt::format("bad descriptor mapping {} -> {}", parent_fd, child_fd), program, 0};
    }
  }

  UniqueFd stdin_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!stdin_fd) return errno_error("open", "/dev/null");
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) return errno_error("pipe2", program);
  UniqueFd report_read(report[0]);
  UniqueFd report_write(report[1]);

  ChildPlan plan;
  build_plan(options, stdin_fd.get(), plan);

  // Block every signal across fork: the child must not run the parent's
  // handlers (Asio's would write into the parent's signal pipe) before it
  // resets them.
  sigset_t all;
  sigset_t previous;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &previous);
  pid_t pid = ::fork();
  if (pid == 0) run_child(plan, report_write.get());
  int fork_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  if (pid < 0) return errno_error("fork", program, fork_errno);

  report_write.reset();
  ChildFailure failure{};
  std::size_t got = 0;
  while (got < sizeof(failure)) {
    ssize_t n =
        ::read(report_read.get(), reinterpret_cast<char*>(&failure) + got, sizeof(failure) - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (got == 0) return pid;  // the pipe closed on exec

  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (got < sizeof(failure)) return make_error("child of {} failed before exec", program);
  return errno_error(stage_call(failure.stage), program, failure.err);
}

void signal_group(pid_t pid, int signal) {
  if (pid <= 0) return;
  if (::kill(-pid, signal) != 0 && errno == ESRCH) ::kill(pid, signal);
}

std::string describe_wait_status(int wait_status) {
  auto signal_name = [](int sig) {
    const char* abbrev = ::sigabbrev_np(sig);
    return abbrev != nullptr ? fmt::format("SIG{}", abbrev) : fmt::format("signal {}", sig);
  };
  if (WIFEXITED(wait_status)) return fmt::format("exited {}", WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) {
    return fmt::format("killed by {}{}", signal_name(WTERMSIG(wait_status)),
                       WCOREDUMP(wait_status) ? " (core dumped)" : "");
  }
  if (WIFSTOPPED(wait_status))
    return fmt::format("stopped by {}", signal_name(WSTOPSIG(wait_status)));
  if (WIFCONTINUED(wait_status)) return "continued";
  return fmt::format("wait status {}", wait_status);
}

ChildReaper::ChildReaper(boost::asio::io_context& io) : signals_(io, SIGCHLD) {
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
    logger("base")->warn("cannot become child subreaper error=\"{}\"", std::strerror(errno));
  }
  // Children that exited before the handler was installed sent a SIGCHLD
  // nobody saw; nothing can be watching them yet.
  reap();
  wait_for_signal();
}

ChildReaper::~ChildReaper() = default;

void ChildReaper::watch(pid_t pid, std::function<void(int wait_status)> on_exit) {
  watched_[pid] = std::move(on_exit);
}

void ChildReaper::forget(pid_t pid) { watched_.erase(pid); }

void ChildReaper::wait_for_signal() {
  // On destruction the wait completes with operation_aborted after `this`
  // is gone: touch nothing then.
  signals_.async_wait([this](const boost::system::error_code& ec, int) {
    if (ec) return;
    reap();
    wait_for_signal();
  });
}

void ChildReaper::reap() {
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid < 0 && errno == EINTR) continue;
    if (pid <= 0) return;  // none exited yet, or no children at all
    auto it = watched_.find(pid);
    if (it == watched_.end()) {
      logger("base")->debug("reaped unwatched child pid={} status=\"{}\"", pid,
                            describe_wait_status(status));
      continue;
    }
    auto on_exit = std::move(it->second);
    watched_.erase(it);
    if (on_exit) on_exit(status);
  }
}

}  // namespace clusweb
