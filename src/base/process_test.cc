#include "base/process.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "base/unique_fd.h"

namespace clusweb {
namespace {

using ::testing::HasSubstr;

constexpr auto kTimeout = std::chrono::seconds(10);

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

Pipe make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) ADD_FAILURE() << "pipe2 failed";
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// Reads until EOF, giving up after kTimeout.
std::string read_all(int fd) {
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + kTimeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ADD_FAILURE() << "timed out reading from child";
      return out;
    }
    pollfd p{fd, POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    char buffer[4096];
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return out;
    out.append(buffer, static_cast<std::size_t>(n));
  }
}

int wait_for(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      ADD_FAILURE() << "waitpid failed for " << pid;
      return -1;
    }
  }
  return status;
}

// Runs `io` until `done()` holds or kTimeout passes.
template <class Predicate>
bool run_until(boost::asio::io_context& io, Predicate done) {
  auto deadline = std::chrono::steady_clock::now() + kTimeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    io.restart();
    io.run_one_for(std::chrono::milliseconds(20));
  }
  return true;
}

bool process_exists(pid_t pid) { return ::kill(pid, 0) == 0 || errno != ESRCH; }

class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "clusweb-process-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

SpawnOptions shell(const std::string& script) {
  SpawnOptions options;
  options.argv = {"/bin/sh", "-c", script};
  options.env = {{"PATH", "/usr/bin:/bin"}};
  return options;
}

TEST(SpawnTest, PassesEnvironmentWorkingDirectoryAndDescriptors) {
  TempDir dir;
  Pipe out = make_pipe();
  SpawnOptions options =
      shell(R"sh(printf 'foo=%s cwd=%s home=%s' "$FOO" "$(pwd)" "${HOME-unset}" >&5)sh");
  options.env["FOO"] = "bar baz";
  options.working_directory = dir.path();
  options.fds = {{out.write.get(), 5}};
  auto pid = spawn(options);
  ASSERT_TRUE(pid.ok()) << pid.error().describe();
  out.write.reset();
  EXPECT_EQ(read_all(out.read.get()),
            "foo=bar baz cwd=" + std::filesystem::canonical(dir.path()).string() + " home=unset");
  int status = wait_for(*pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << describe_wait_status(status);
}

TEST(SpawnTest, MappedDescriptorsMaySwapNumbers) {
  Pipe first = make_pipe();
  Pipe second = make_pipe();
  int first_number = first.write.get();
  int second_number = second.write.get();
  ASSERT_LE(std::max(first_number, second_number), 9) << "sh redirects only fds 0-9";
  // Each source lands on the other's number.
  SpawnOptions options = shell("printf one >&" + std::to_string(second_number) + "; printf two >&" +
                               std::to_string(first_number));
  options.fds = {{first.write.get(), second_number}, {second.write.get(), first_number}};
  auto pid = spawn(options);
  ASSERT_TRUE(pid.ok()) << pid.error().describe();
  first.write.reset();
  second.write.reset();
  EXPECT_EQ(read_all(first.read.get()), "one");
  EXPECT_EQ(read_all(second.read.get()), "two");
  wait_for(*pid);
}

TEST(SpawnTest, ClosesUnmappedDescriptorsAndRedirectsOutput) {
  // A descriptor the parent left inheritable must still not reach the child.
  UniqueFd leaked(::open("/dev/null", O_RDONLY));
  ASSERT_TRUE(leaked.valid());
  Pipe out = make_pipe();
  SpawnOptions options = shell("if [ -e /proc/$$/fd/" + std::to_string(leaked.get()) +
                               " ]; then echo leaked; else echo closed; fi; cat; echo stderr >&2");
  options.stdout_fd = out.write.get();
  options.stderr_fd = out.write.get();
  auto pid = spawn(options);
  ASSERT_TRUE(pid.ok()) << pid.error().describe();
  out.write.reset();
  // `cat` reads stdin, which is /dev/null: it ends at once.
  EXPECT_EQ(read_all(out.read.get()), "closed\nstderr\n");
  wait_for(*pid);
}

TEST(SpawnTest, ExecFailureNamesProgramAndErrno) {
  SpawnOptions options;
  options.argv = {"/nonexistent/clusweb-program"};
  auto pid = spawn(options);
  ASSERT_FALSE(pid.ok());
  EXPECT_EQ(pid.error().sys_errno, ENOENT);
  EXPECT_THAT(pid.error().describe(), HasSubstr("/nonexistent/clusweb-program"));
  EXPECT_THAT(pid.error().describe(), HasSubstr("exec"));

  options.argv = {"clusweb-no-such-program"};
  options.env = {{"PATH", "/usr/bin:/bin"}};
  pid = spawn(options);
  ASSERT_FALSE(pid.ok());
  EXPECT_EQ(pid.error().sys_errno, ENOENT);
  EXPECT_THAT(pid.error().describe(), HasSubstr("clusweb-no-such-program"));
}

TEST(SpawnTest, FailureBeforeExecIsReported) {
  SpawnOptions options = shell("exit 0");
  options.working_directory = "/nonexistent/clusweb-directory";
  auto pid = spawn(options);
  ASSERT_FALSE(pid.ok());
  EXPECT_EQ(pid.error().sys_errno, ENOENT);
  EXPECT_THAT(pid.error().describe(), HasSubstr("chdir"));
}

TEST(SpawnTest, LooksUpBareProgramInPath) {
  Pipe out = make_pipe();
  SpawnOptions options;
  options.argv = {"sh", "-c", "echo found >&3"};
  options.env = {{"PATH", "/nonexistent:/usr/bin:/bin"}};
  options.fds = {{out.write.get(), 3}};
  auto pid = spawn(options);
  ASSERT_TRUE(pid.ok()) << pid.error().describe();
  out.write.reset();
  EXPECT_EQ(read_all(out.read.get()), "found\n");
  wait_for(*pid);
}

TEST(SpawnTest, ListenPidIsTheChildPid) {
  Pipe out = make_pipe();
  SpawnOptions options = shell(R"(printf '%s %s' "$LISTEN_PID" "$$" >&3)");
  options.env["LISTEN_PID"] = "1";  // replaced, not duplicated
  options.set_listen_pid = true;
  options.fds = {{out.write.get(), 3}};
  auto pid = spawn(options);
  ASSERT_TRUE(pid.ok()) << pid.error().describe();
  out.write.reset();
  EXPECT_EQ(read_all(out.read.get()), std::to_string(*pid) + " " + std::to_string(*pid));
  wait_for(*pid);
}

TEST(SpawnTest, NewProcessGroupIsLedByTheChild) {
  Pipe out = make_pipe();
  SpawnOptions options = shell("cut -d' ' -f5 /proc/$$/stat >&3");  // field 5: pgrp
  options.fds = {{out.write.get(), 3}};
  auto pid = spawn(options);
  ASSERT_TRUE(pid.ok()) << pid.error().describe();
  out.write.reset();
  EXPECT_EQ(read_all(out.read.get()), std::to_string(*pid) + "\n");
  wait_for(*pid);
}

TEST(SpawnTest, DropsToUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  auto nobody = lookup_user("nobody");
  ASSERT_TRUE(nobody.ok()) << nobody.error().describe();
  Pipe out = make_pipe();
  SpawnOptions options = shell("printf '%s %s' \"$(id -u)\" \"$(id -g)\" >&3");
  options.user = *nobody;
  options.no_new_privs = true;
  options.fds = {{out.write.get(), 3}};
  auto pid = spawn(options);
  ASSERT_TRUE(pid.ok()) << pid.error().describe();
  out.write.reset();
  EXPECT_EQ(read_all(out.read.get()),
            std::to_string(nobody->uid) + " " + std::to_string(nobody->gid));
  wait_for(*pid);
}

TEST(LookupUserTest, FindsRootAndNamesUnknownUsers) {
  auto root = lookup_user("root");
  ASSERT_TRUE(root.ok()) << root.error().describe();
  EXPECT_EQ(root->uid, 0u);
  EXPECT_EQ(root->gid, 0u);
  EXPECT_EQ(root->name, "root");
  EXPECT_EQ(root->home, "/root");
  EXPECT_THAT(root->groups, ::testing::Contains(0u));

  auto by_id = lookup_user_id(0);
  ASSERT_TRUE(by_id.ok()) << by_id.error().describe();
  EXPECT_EQ(by_id->name, "root");

  auto missing = lookup_user("clusweb-no-such-user");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.error().describe(), HasSubstr("clusweb-no-such-user"));
}

TEST(DescribeWaitStatusTest, ExitsAndSignals) {
  EXPECT_EQ(describe_wait_status(3 << 8), "exited 3");
  EXPECT_EQ(describe_wait_status(SIGKILL), "killed by SIGKILL");
  EXPECT_EQ(describe_wait_status(SIGSEGV | 0x80), "killed by SIGSEGV (core dumped)");
}

TEST(SignalGroupTest, KillsGrandchildren) {
  boost::asio::io_context io;
  ChildReaper reaper(io);
  Pipe out = make_pipe();
  SpawnOptions options = shell("sleep 100 3>&- & echo $! >&3; exec 3>&-; wait");
  options.fds = {{out.write.get(), 3}};
  auto pid = spawn(options);
  ASSERT_TRUE(pid.ok()) << pid.error().describe();
  std::optional<int> status;
  reaper.watch(*pid, [&status](int s) { status = s; });
  out.write.reset();
  pid_t grandchild = std::atoi(read_all(out.read.get()).c_str());
  ASSERT_GT(grandchild, 0);
  ASSERT_TRUE(process_exists(grandchild));

  signal_group(*pid, SIGKILL);
  // The grandchild is reparented to us (subreaper) and reaped silently.
  ASSERT_TRUE(run_until(io, [&] { return status.has_value() && !process_exists(grandchild); }));
  EXPECT_EQ(describe_wait_status(*status), "killed by SIGKILL");
}

TEST(ChildReaperTest, ReportsWaitStatusOfWatchedChildren) {
  boost::asio::io_context io;
  ChildReaper reaper(io);
  auto exits = spawn(shell("exit 3"));
  auto sleeps = spawn(shell("exec sleep 100"));
  ASSERT_TRUE(exits.ok() && sleeps.ok());
  std::optional<int> exit_status;
  std::optional<int> kill_status;
  reaper.watch(*exits, [&](int s) { exit_status = s; });
  reaper.watch(*sleeps, [&](int s) { kill_status = s; });
  ASSERT_TRUE(run_until(io, [&] { return exit_status.has_value(); }));
  EXPECT_EQ(describe_wait_status(*exit_status), "exited 3");
  EXPECT_FALSE(kill_status.has_value());

  ::kill(*sleeps, SIGKILL);
  ASSERT_TRUE(run_until(io, [&] { return kill_status.has_value(); }));
  EXPECT_TRUE(WIFSIGNALED(*kill_status));
  EXPECT_EQ(WTERMSIG(*kill_status), SIGKILL);
  EXPECT_FALSE(process_exists(*sleeps));
}

TEST(ChildReaperTest, ForgottenChildrenAreReapedSilently) {
  boost::asio::io_context io;
  ChildReaper reaper(io);
  auto pid = spawn(shell("exit 0"));
  ASSERT_TRUE(pid.ok());
  bool called = false;
  reaper.watch(*pid, [&](int) { called = true; });
  reaper.forget(*pid);
  ASSERT_TRUE(run_until(io, [&] { return !process_exists(*pid); }));
  EXPECT_FALSE(called);
}

TEST(ChildReaperTest, CallbackMayWatchTheNextChild) {
  boost::asio::io_context io;
  ChildReaper reaper(io);
  int exits = 0;
  std::function<void(int)> respawn = [&](int) {
    if (++exits == 3) return;
    auto next = spawn(shell("exit 0"));
    ASSERT_TRUE(next.ok());
    reaper.watch(*next, respawn);
  };
  auto first = spawn(shell("exit 0"));
  ASSERT_TRUE(first.ok());
  reaper.watch(*first, respawn);
  ASSERT_TRUE(run_until(io, [&] { return exits == 3; }));
}

}  // namespace
}  // namespace clusweb
