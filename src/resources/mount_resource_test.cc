#include "resources/mount_resource.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/process.h"
#include "base/testing/manual_clock.h"
#include "base/unique_fd.h"

namespace clusweb::resources {
namespace {

using cluster::FailureClass;
using cluster::Verb;
using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

// --- mountinfo ------------------------------------------------------------

TEST(MountInfo, ParsesALineWithOptionalFields) {
  auto entry = parse_mountinfo_line(
      "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue");
  ASSERT_TRUE(entry.ok()) << entry.error().message;
  EXPECT_EQ(entry->mount_id, 36);
  EXPECT_EQ(entry->parent_id, 35);
  EXPECT_EQ(entry->major, 98U);
  EXPECT_EQ(entry->minor, 0U);
  EXPECT_EQ(entry->root, "/mnt1");
  EXPECT_EQ(entry->mount_point, "/mnt2");
  EXPECT_EQ(entry->mount_options, "rw,noatime");
  EXPECT_THAT(entry->optional_fields, ElementsAre("master:1", "shared:7"));
  EXPECT_EQ(entry->fstype, "ext3");
  EXPECT_EQ(entry->source, "/dev/root");
  EXPECT_EQ(entry->super_options, "rw,errors=continue");
}

TEST(MountInfo, ParsesALineWithoutOptionalFields) {
  auto entry = parse_mountinfo_line("22 1 0:21 / /tmp rw,nosuid - tmpfs tmpfs rw,size=1024k");
  ASSERT_TRUE(entry.ok()) << entry.error().message;
  EXPECT_TRUE(entry->optional_fields.empty());
  EXPECT_EQ(entry->mount_point, "/tmp");
  EXPECT_EQ(entry->fstype, "tmpfs");
  EXPECT_EQ(entry->source, "tmpfs");
}

TEST(MountInfo, DecodesOctalEscapes) {
  auto entry = parse_mountinfo_line(
      R"(40 22 0:50 / /srv/my\040data\011x\134y rw - nfs4 srv:/export\040one rw,addr=10.0.0.1)");
  ASSERT_TRUE(entry.ok()) << entry.error().message;
  EXPECT_EQ(entry->mount_point, "/srv/my data\tx\\y");
  EXPECT_EQ(entry->source, "srv:/export one");
  EXPECT_EQ(unescape_mount_field(R"(a\012b)"), "a\nb");
  // Not an escape: left as it is.
  EXPECT_EQ(unescape_mount_field(R"(a\9b\04)"), R"(a\9b\04)");
}

TEST(MountInfo, RefusesMalformedLines) {
  EXPECT_FALSE(parse_mountinfo_line("36 35 98:0 /mnt1 /mnt2 rw ext3 /dev/root rw").ok());
  EXPECT_FALSE(parse_mountinfo_line("36 35 98-0 /mnt1 /mnt2 rw - ext3 /dev/root rw").ok());
  EXPECT_FALSE(parse_mountinfo_line("x 35 98:0 /mnt1 /mnt2 rw - ext3 /dev/root rw").ok());
  EXPECT_FALSE(parse_mountinfo_line("36 35 98:0 /mnt1 - ext3 /dev/root rw").ok());
  EXPECT_FALSE(parse_mountinfo_line("36 35 98:0 /mnt1 /mnt2 rw - ext3").ok());
}

TEST(MountInfo, ParsesAFileAndNamesTheBadLine) {
  const std::string good =
      "22 1 0:21 / / rw shared:1 - ext4 /dev/sda1 rw\n"
      "23 22 0:22 / /tmp rw shared:2 - tmpfs tmpfs rw\n";
  auto entries = parse_mountinfo(good);
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 2U);
  EXPECT_EQ((*entries)[1].mount_point, "/tmp");

  auto bad = parse_mountinfo(good + "garbage\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.error().message, HasSubstr("line 3"));
}

// --- options --------------------------------------------------------------

TEST(MountOptionsSplit, SplitsFlagsFromData) {
  auto options =
      parse_mount_options("ro,noatime,nodev,nosuid,noexec,sync,data=ordered,errors=panic");
  ASSERT_TRUE(options.ok()) << options.error().message;
  EXPECT_EQ(options->flags,
            MS_RDONLY | MS_NOATIME | MS_NODEV | MS_NOSUID | MS_NOEXEC | MS_SYNCHRONOUS);
  EXPECT_EQ(options->data, "data=ordered,errors=panic");
}

TEST(MountOptionsSplit, TheLaterOfAPairWins) {
  auto options = parse_mount_options("ro,noexec,rw,exec,async,sync");
  ASSERT_TRUE(options.ok());
  EXPECT_EQ(options->flags, MS_SYNCHRONOUS);
  EXPECT_EQ(options->data, "");
}

TEST(MountOptionsSplit, DropsWhatOnlyMountReadsAndKeepsQuotedCommas) {
  auto options = parse_mount_options(
      "defaults,_netdev,nofail,x-systemd.automount,size=16m,,context=\"system_u:object_r:t:s0:c1,"
      "c2\"");
  ASSERT_TRUE(options.ok()) << options.error().message;
  EXPECT_EQ(options->flags, 0UL);
  EXPECT_EQ(options->data, "size=16m,context=\"system_u:object_r:t:s0:c1,c2\"");
  EXPECT_TRUE(parse_mount_options("").ok());
}

TEST(MountOptionsSplit, RefusesBindRemountAndPropagation) {
  for (const char* option : {"bind", "remount", "move", "rshared", "make-private"}) {
    auto options = parse_mount_options(std::string("ro,") + option);
    ASSERT_FALSE(options.ok()) << option;
    EXPECT_THAT(options.error().message, HasSubstr(option));
  }
}

// --- holders --------------------------------------------------------------

TEST(MountHolders, PathOnMountComparesWholeComponents) {
  EXPECT_TRUE(path_on_mount("/srv/data", "/srv/data"));
  EXPECT_TRUE(path_on_mount("/srv/data/x/y", "/srv/data"));
  EXPECT_TRUE(path_on_mount("/srv/data/log (deleted)", "/srv/data"));
  EXPECT_TRUE(path_on_mount("/srv/data/x", "/srv/data/"));
  EXPECT_FALSE(path_on_mount("/srv/database", "/srv/data"));
  EXPECT_FALSE(path_on_mount("/srv", "/srv/data"));
  EXPECT_FALSE(path_on_mount("socket:[1234]", "/srv/data"));
  EXPECT_FALSE(path_on_mount("/srv/data", ""));
}

TEST(MountHolders, MappedPathsSkipsAnonymousMappings) {
  const std::string maps =
      "55d0c0a00000-55d0c0a02000 r--p 00000000 fd:01 1835014                    /usr/bin/sleep\n"
      "55d0c1e9b000-55d0c1ebc000 rw-p 00000000 00:00 0                          [heap]\n"
      "7f1c2a000000-7f1c2a021000 rw-p 00000000 00:00 0 \n"
      "7f1c2b000000-7f1c2b001000 r--s 00000000 07:03 12                         /srv/my data/f\n"
      "7f1c2c000000-7f1c2c001000 r--s 00000000 07:03 13                         /srv/a\\012b "
      "(deleted)\n";
  EXPECT_THAT(mapped_paths(maps),
              ElementsAre("/usr/bin/sleep", "/srv/my data/f", "/srv/a\nb (deleted)"));
}

class MountHoldersFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = fs::temp_directory_path() / "mount_holders_test.XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    proc_ = pattern;
  }
  void TearDown() override { fs::remove_all(proc_); }

  // A fake /proc/<pid> with the given links and files.
  void process(int pid, const std::string& comm, const std::string& cwd,
               const std::vector<std::string>& fds, const std::string& maps = "") {
    const fs::path dir = proc_ / std::to_string(pid);
    fs::create_directories(dir / "fd");
    fs::create_directory_symlink(cwd, dir / "cwd");
    fs::create_directory_symlink("/", dir / "root");
    for (size_t i = 0; i < fds.size(); ++i) {
      fs::create_symlink(fds[i], dir / "fd" / std::to_string(i));
    }
    std::ofstream(dir / "maps") << maps;
    std::ofstream(dir / "comm") << comm << "\n";
  }

  fs::path proc_;
};

TEST_F(MountHoldersFixture, FindsCwdFdsAndMapsOnTheMountOnly) {
  process(100, "bash", "/srv/data/www", {"/dev/null"});
  process(200, "postgres", "/", {"/dev/null", "socket:[77]", "/srv/data/pg/wal (deleted)"});
  process(300, "java", "/opt", {"pipe:[5]"},
          "7f00-7f01 r--s 00000000 07:03 12       /srv/data/app.jar\n");
  process(400, "other", "/srv/database", {"/srv/database/x"});
  process(500, "agent", "/srv/data", {});  // the caller itself
  fs::create_directories(proc_ / "self");  // not a pid: ignored
  std::ofstream(proc_ / "uptime") << "1 2\n";

  const std::vector<MountHolder> holders = find_mount_holders(proc_.string(), "/srv/data", 500);
  ASSERT_EQ(holders.size(), 3U);
  EXPECT_EQ(holders[0].pid, 100);
  EXPECT_EQ(holders[0].name, "bash");
  EXPECT_EQ(holders[0].what, "cwd /srv/data/www");
  EXPECT_EQ(holders[1].pid, 200);
  EXPECT_EQ(holders[1].what, "fd 2 /srv/data/pg/wal (deleted)");
  EXPECT_EQ(holders[2].pid, 300);
  EXPECT_EQ(holders[2].what, "map /srv/data/app.jar");
}

TEST_F(MountHoldersFixture, AnFdOnTheDirectoryUnderneathTheMountDoesNotHoldIt) {
  // Both opened /srv/data: 100 before the mount (its fd is on mount 22, the parent's), 200
  // after (on mount 40, the mount itself).
  process(100, "web", "/", {"/srv/data"});
  process(200, "shell", "/", {"/srv/data"});
  for (const auto& [pid, id] : {std::pair{100, 22}, std::pair{200, 40}}) {
    fs::create_directories(proc_ / std::to_string(pid) / "fdinfo");
    std::ofstream(proc_ / std::to_string(pid) / "fdinfo" / "0")
        << "pos:\t0\nflags:\t02100000\nmnt_id:\t" << id << "\nino:\t2\n";
  }
  const auto holders = find_mount_holders(proc_.string(), "/srv/data", 1, {40, 41});
  ASSERT_EQ(holders.size(), 1U);
  EXPECT_EQ(holders[0].pid, 200);
  // Without the mount's ids, by path alone, both look like holders.
  EXPECT_EQ(find_mount_holders(proc_.string(), "/srv/data", 1).size(), 2U);
}

TEST_F(MountHoldersFixture, AChrootOnTheMountHoldsIt) {
  const fs::path dir = proc_ / "42";
  fs::create_directories(dir / "fd");
  fs::create_directory_symlink("/", dir / "cwd");
  fs::create_directory_symlink("/srv/data/jail", dir / "root");
  const auto holders = find_mount_holders(proc_.string(), "/srv/data", 1);
  ASSERT_EQ(holders.size(), 1U);
  EXPECT_EQ(holders[0].what, "root /srv/data/jail");
  EXPECT_EQ(holders[0].name, "?");
}

// --- the resource -----------------------------------------------------------

// Runs calls to completion on a private io_context.
class MountCalls {
 public:
  MountCalls() : resource_(io_.get_executor()) {
    context_.resource = "disk";
    context_.group = "shop";
    context_.node = "node-a";
    context_.fencing_token = 42;
    context_.timeout = 10s;
    context_.clock = &clock_;
    context_.fencing_deadline = [this] { return clock_.now() + 1h; };
    clock_.set_wall(std::chrono::system_clock::time_point(std::chrono::seconds(1'764'000'000)));
  }

  CallResult call(Verb verb) {
    std::optional<CallResult> result;
    boost::asio::co_spawn(io_, resource_.call(verb, context_),
                          [&result](const std::exception_ptr& error, CallResult done) {
                            EXPECT_FALSE(error);
                            result = std::move(done);
                          });
    io_.restart();
    // Every call ends at its timeout; the bound only stops a broken one.
    const auto limit = std::chrono::steady_clock::now() + context_.timeout + 5s;
    while (!result && std::chrono::steady_clock::now() < limit) io_.run_one_for(100ms);
    if (!result) {
      result.emplace();
      result->detail = "call did not finish";
    }
    return *result;
  }

  CallContext context_;

 private:
  boost::asio::io_context io_;
  clusweb::testing::ManualClock clock_;
  MountResource resource_;
};

TEST(MountParameters, AreCheckedBeforeAnythingElse) {
  MountCalls calls;
  calls.context_.parameters = {{"device", "tmpfs"}, {"directory", "/srv/x"}};
  CallResult result = calls.call(Verb::kOnline);
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.failure, FailureClass::kFatal);
  EXPECT_THAT(result.detail, HasSubstr("fstype"));

  const std::map<std::string, std::string> base{
      {"device", "tmpfs"}, {"directory", "/srv/x"}, {"fstype", "tmpfs"}};
  const std::vector<std::pair<std::string, std::string>> bad{
      {"device", "UUID=1234"},  {"directory", "srv/x"}, {"directory", "/"},
      {"directory", "/a/../b"}, {"options", "bind"},    {"statusFile", "/abs"},
      {"statusFile", "../up"},  {"writeCheck", "yes"},  {"killGrace", "soon"},
      {"colour", "blue"}};
  for (const auto& [name, value] : bad) {
    calls.context_.parameters = base;
    calls.context_.parameters[name] = value;
    result = calls.call(Verb::kLooksAlive);
    EXPECT_FALSE(result.ok) << name << "=" << value;
    EXPECT_EQ(result.failure, FailureClass::kFatal) << name << "=" << value;
    EXPECT_THAT(result.detail, HasSubstr(name));
  }

  calls.context_.parameters = base;
  calls.context_.timeout = 0ms;
  EXPECT_THAT(calls.call(Verb::kOffline).detail, HasSubstr("timeout"));
  EXPECT_TRUE(calls.call(Verb::kOpen).ok);
  EXPECT_TRUE(calls.call(Verb::kClose).ok);
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

int run_command(const std::string& command) { return std::system(command.c_str()); }

std::string command_output(const std::string& command) {
  std::string output;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return output;
  std::array<char, 512> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe) != nullptr) output += buffer.data();
  ::pclose(pipe);
  while (!output.empty() && output.back() == '\n') output.pop_back();
  return output;
}

// The top mount at `directory` in this thread's namespace, or nullopt.
std::optional<MountEntry> mounted_at(const std::string& directory) {
  auto entries = parse_mountinfo(read_file("/proc/thread-self/mountinfo"));
  std::optional<MountEntry> top;
  if (!entries) return top;
  for (const MountEntry& entry : *entries) {
    if (entry.mount_point == directory) top = entry;
  }
  return top;
}

// Polls a condition that another process makes true, up to a generous bound.
template <class Done>
bool wait_until(Done done, milliseconds limit = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// Real mounts, as root. Each test runs in a private mount namespace entered
// by the test thread (the resource's threads start from it and inherit it),
// so whatever a failing test leaves mounted vanishes with the namespace.
class MountResourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root for mounts";
    original_ = UniqueFd(::open("/proc/thread-self/ns/mnt", O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(original_.valid());
    ASSERT_EQ(::unshare(CLONE_NEWNS), 0) << std::strerror(errno);
    entered_ = true;
    ASSERT_EQ(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), 0)
        << std::strerror(errno);
    std::string pattern = fs::temp_directory_path() / "mount_resource_test.XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    base_ = fs::canonical(pattern);
    dir_ = (base_ / "data").string();
    calls_.context_.parameters = {{"device", "tmpfs"},
                                  {"directory", dir_},
                                  {"fstype", "tmpfs"},
                                  {"options", "nodev,nosuid,size=8m,mode=0755"}};
  }

  void TearDown() override {
    for (pid_t pid : children_) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    if (!entered_) return;
    // Innermost first; a lazy detach is fine for cleanup.
    while (mounted_at(dir_)) {
      if (::umount2(dir_.c_str(), MNT_DETACH) != 0) break;
    }
    if (!loop_.empty()) {
      EXPECT_EQ(run_command("losetup -d " + loop_), 0);
    }
    if (!base_.empty()) fs::remove_all(base_);
    // setns() wants this thread's filesystem state unshared: a call's thread
    // that has posted its result may still be exiting.
    EXPECT_TRUE(wait_until([this] { return ::setns(original_.get(), CLONE_NEWNS) == 0; }))
        << std::strerror(errno);
  }

  pid_t spawn_child(const std::vector<std::string>& argv, const std::string& cwd = "") {
    SpawnOptions options;
    options.argv = argv;
    options.env = {{"PATH", "/usr/bin:/bin"}};
    options.working_directory = cwd;
    auto pid = spawn(options);
    EXPECT_TRUE(pid.ok()) << pid.error().describe();
    if (!pid) return -1;
    children_.push_back(*pid);
    return *pid;
  }

  // Waits for a child's exit and returns the signal that ended it (0 if none).
  int exit_signal(pid_t pid) {
    int status = 0;
    // Bounded: the resource has already waited for the exit through a pidfd.
    const bool exited = wait_until([&] { return ::waitpid(pid, &status, WNOHANG) == pid; });
    EXPECT_TRUE(exited) << "pid " << pid << " still running";
    if (!exited) return 0;
    std::erase(children_, pid);
    return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  }

  static bool cwd_in(pid_t pid, const std::string& directory) {
    std::array<char, 4096> buffer{};
    const std::string link = "/proc/" + std::to_string(pid) + "/cwd";
    const ssize_t size = ::readlink(link.c_str(), buffer.data(), buffer.size() - 1);
    return size > 0 && path_on_mount(std::string(buffer.data(), size), directory);
  }

  static std::string comm(pid_t pid) {
    std::string name = read_file("/proc/" + std::to_string(pid) + "/comm");
    while (!name.empty() && name.back() == '\n') name.pop_back();
    return name;
  }

  MountCalls calls_;
  UniqueFd original_;
  bool entered_ = false;
  fs::path base_;
  std::string dir_;
  std::string loop_;
  std::vector<pid_t> children_;
};

TEST_F(MountResourceTest, TmpfsGoesOnlineIsAliveWritesStatusAndGoesOffline) {
  EXPECT_FALSE(calls_.call(Verb::kLooksAlive).ok);

  CallResult online = calls_.call(Verb::kOnline);
  ASSERT_TRUE(online.ok) << online.detail;
  auto entry = mounted_at(dir_);
  ASSERT_TRUE(entry);
  EXPECT_EQ(entry->fstype, "tmpfs");
  EXPECT_THAT(entry->mount_options, HasSubstr("nodev"));
  EXPECT_THAT(entry->super_options, HasSubstr("size=8192k"));

  EXPECT_TRUE(calls_.call(Verb::kLooksAlive).ok);
  CallResult alive = calls_.call(Verb::kIsAlive);
  EXPECT_TRUE(alive.ok) << alive.detail;
  EXPECT_FALSE(fs::exists(fs::path(dir_) / ".clusweb-status"));  // read-only check

  calls_.context_.parameters["writeCheck"] = "true";
  alive = calls_.call(Verb::kIsAlive);
  EXPECT_TRUE(alive.ok) << alive.detail;
  EXPECT_EQ(read_file(fs::path(dir_) / ".clusweb-status"),
            "resource=disk\ngroup=shop\nnode=node-a\nfencing_token=42\n"
            "time=2025-11-24T16:00:00Z\n");
  EXPECT_FALSE(fs::exists(fs::path(dir_) / ".clusweb-status.tmp"));
  calls_.context_.parameters["writeCheck"] = "false";
  EXPECT_TRUE(calls_.call(Verb::kIsAlive).ok);  // reads the file now

  CallResult offline = calls_.call(Verb::kOffline);
  EXPECT_TRUE(offline.ok) << offline.detail;
  EXPECT_FALSE(mounted_at(dir_));
  EXPECT_FALSE(calls_.call(Verb::kLooksAlive).ok);
  EXPECT_FALSE(calls_.call(Verb::kIsAlive).ok);
  offline = calls_.call(Verb::kOffline);
  EXPECT_TRUE(offline.ok) << offline.detail;  // not mounted = ok
}

TEST_F(MountResourceTest, OnlineTwiceIsOk) {
  ASSERT_TRUE(calls_.call(Verb::kOnline).ok);
  CallResult again = calls_.call(Verb::kOnline);
  EXPECT_TRUE(again.ok) << again.detail;
  EXPECT_EQ(again.detail, "already mounted");
  EXPECT_TRUE(calls_.call(Verb::kOffline).ok);
  EXPECT_FALSE(mounted_at(dir_));
}

TEST_F(MountResourceTest, OnlineRefusesAForeignMountAsHard) {
  fs::create_directories(dir_);
  ASSERT_EQ(::mount("othertmp", dir_.c_str(), "tmpfs", 0, nullptr), 0) << std::strerror(errno);
  CallResult online = calls_.call(Verb::kOnline);
  EXPECT_FALSE(online.ok);
  EXPECT_EQ(online.failure, FailureClass::kHard);
  EXPECT_THAT(online.detail, HasSubstr("othertmp"));
  EXPECT_FALSE(calls_.call(Verb::kLooksAlive).ok);
  // Offline leaves what is not ours alone.
  EXPECT_TRUE(calls_.call(Verb::kOffline).ok);
  ASSERT_TRUE(mounted_at(dir_));
  EXPECT_EQ(mounted_at(dir_)->source, "othertmp");
}

TEST_F(MountResourceTest, OnlineRefusesWithoutAFencingDeadline) {
  calls_.context_.fencing_deadline = nullptr;
  CallResult online = calls_.call(Verb::kOnline);
  EXPECT_FALSE(online.ok);
  EXPECT_THAT(online.detail, HasSubstr("fencing deadline"));
  EXPECT_FALSE(mounted_at(dir_));
}

TEST_F(MountResourceTest, OfflineKillsHoldersTermThenKill) {
  ASSERT_TRUE(calls_.call(Verb::kOnline).ok);
  const pid_t polite = spawn_child({"sleep", "1000"}, dir_);
  const pid_t stubborn =
      spawn_child({"sh", "-c", "trap '' TERM; cd '" + dir_ + "/' && exec sleep 1000"});
  ASSERT_GT(polite, 0);
  ASSERT_GT(stubborn, 0);
  ASSERT_TRUE(wait_until([&] { return cwd_in(polite, dir_); }));
  // After the exec: the ignored SIGTERM is inherited by sleep.
  ASSERT_TRUE(wait_until([&] { return cwd_in(stubborn, dir_) && comm(stubborn) == "sleep"; }));

  calls_.context_.parameters["killGrace"] = "300ms";
  const auto start = std::chrono::steady_clock::now();
  CallResult offline = calls_.call(Verb::kOffline);
  EXPECT_TRUE(offline.ok) << offline.detail;
  EXPECT_GE(std::chrono::steady_clock::now() - start, 300ms);  // the stubborn one had its grace
  EXPECT_FALSE(mounted_at(dir_));
  EXPECT_EQ(exit_signal(polite), SIGTERM);
  EXPECT_EQ(exit_signal(stubborn), SIGKILL);
}

TEST_F(MountResourceTest, TerminateKillsAtOnce) {
  ASSERT_TRUE(calls_.call(Verb::kOnline).ok);
  const pid_t holder = spawn_child({"sleep", "1000"}, dir_);
  ASSERT_TRUE(wait_until([&] { return cwd_in(holder, dir_); }));
  CallResult terminated = calls_.call(Verb::kTerminate);
  EXPECT_TRUE(terminated.ok) << terminated.detail;
  EXPECT_FALSE(mounted_at(dir_));
  EXPECT_EQ(exit_signal(holder), SIGKILL);
}

TEST_F(MountResourceTest, OfflineFailsLoudlyWhenItCannotUnmount) {
  ASSERT_TRUE(calls_.call(Verb::kOnline).ok);
  // This process is the agent: it never kills itself, so its open file keeps
  // the mount busy.
  const UniqueFd held(::open((dir_ + "/held").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600));
  ASSERT_TRUE(held.valid());
  calls_.context_.timeout = 1s;
  CallResult offline = calls_.call(Verb::kOffline);
  EXPECT_FALSE(offline.ok);
  EXPECT_FALSE(offline.timed_out);
  EXPECT_THAT(offline.detail, HasSubstr(dir_));
  EXPECT_THAT(offline.detail, HasSubstr("EBUSY"));
  EXPECT_THAT(offline.detail, HasSubstr("this agent (" + std::to_string(::getpid())));
  EXPECT_THAT(offline.detail, ::testing::Not(HasSubstr("detached")));
  EXPECT_TRUE(mounted_at(dir_));

  CallResult terminated = calls_.call(Verb::kTerminate);
  EXPECT_FALSE(terminated.ok);
  EXPECT_THAT(terminated.detail, HasSubstr("detached lazily, holders:"));
  EXPECT_FALSE(mounted_at(dir_));
}

TEST_F(MountResourceTest, LoopDeviceExt4SurvivesARemount) {
  if (run_command("command -v losetup >/dev/null && command -v mkfs.ext4 >/dev/null") != 0) {
    GTEST_SKIP() << "needs losetup and mkfs.ext4";
  }
  const std::string image = (base_ / "disk.img").string();
  std::ofstream(image).close();
  ASSERT_EQ(::truncate(image.c_str(), 16 << 20), 0);
  ASSERT_EQ(run_command("mkfs.ext4 -q -F " + image), 0);
  loop_ = command_output("losetup --find --show " + image);
  if (!loop_.starts_with("/dev/loop")) {
    loop_.clear();
    GTEST_SKIP() << "no loop device available";
  }
  calls_.context_.parameters = {{"device", loop_},
                                {"directory", dir_},
                                {"fstype", "ext4"},
                                {"options", "noatime,errors=remount-ro"},
                                {"writeCheck", "true"}};

  CallResult online = calls_.call(Verb::kOnline);
  ASSERT_TRUE(online.ok) << online.detail;
  struct stat device {};
  ASSERT_EQ(::stat(loop_.c_str(), &device), 0);
  auto entry = mounted_at(dir_);
  ASSERT_TRUE(entry);
  EXPECT_EQ(makedev(entry->major, entry->minor), device.st_rdev);
  EXPECT_THAT(entry->mount_options, HasSubstr("noatime"));
  EXPECT_TRUE(calls_.call(Verb::kLooksAlive).ok);
  CallResult alive = calls_.call(Verb::kIsAlive);
  EXPECT_TRUE(alive.ok) << alive.detail;
  std::ofstream(fs::path(dir_) / "content.txt") << "kept\n";
  ASSERT_TRUE(calls_.call(Verb::kOffline).ok);
  EXPECT_FALSE(mounted_at(dir_));
  EXPECT_FALSE(fs::exists(fs::path(dir_) / "content.txt"));

  online = calls_.call(Verb::kOnline);
  ASSERT_TRUE(online.ok) << online.detail;
  EXPECT_EQ(read_file(fs::path(dir_) / "content.txt"), "kept\n");
  EXPECT_THAT(read_file(fs::path(dir_) / ".clusweb-status"), HasSubstr("fencing_token=42\n"));
  CallResult offline = calls_.call(Verb::kOffline);
  EXPECT_TRUE(offline.ok) << offline.detail;
  EXPECT_FALSE(mounted_at(dir_));
}

}  // namespace
}  // namespace clusweb::resources
