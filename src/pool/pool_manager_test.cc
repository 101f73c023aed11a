#include "pool/pool_manager.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "base/testing/manual_clock.h"
#include "base/unique_fd.h"

namespace clusweb::pool {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr auto kTimeout = std::chrono::seconds(15);

bool process_exists(pid_t pid) { return ::kill(pid, 0) == 0 || errno != ESRCH; }

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

std::map<std::string, std::string> parse_env(const std::string& text) {
  std::map<std::string, std::string> env;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    auto equals = line.find('=');
    if (equals != std::string::npos) env[line.substr(0, equals)] = line.substr(equals + 1);
  }
  return env;
}

std::string worker_py() {
  const char* root = std::getenv("CLUSWEB_TEST_SRCDIR");
  return std::string(root != nullptr ? root : CLUSWEB_SOURCE_DIR) + "/examples/pool/worker.py";
}

// Sends `request` on a connected socket and reads until the peer closes.
std::string exchange(UniqueFd fd, const std::string& request) {
  timeval limit{10, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
  std::size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = ::send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return "send failed: " + std::string(std::strerror(errno));
    sent += static_cast<std::size_t>(n);
  }
  std::string response;
  for (;;) {
    char buffer[4096];
    ssize_t n = ::recv(fd.get(), buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;  // SIGCHLD from a worker exiting
    if (n <= 0) return response;
    response.append(buffer, static_cast<std::size_t>(n));
  }
}

// One request over a worker endpoint ("unix:/path" or "tcp:127.0.0.1:PORT").
std::string http(const std::string& endpoint, const std::string& request) {
  if (endpoint.starts_with("unix:")) {
    std::string path = endpoint.substr(5);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, path.c_str(), path.size());
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      return "connect failed";
    }
    return exchange(std::move(fd), request);
  }
  auto port = static_cast<std::uint16_t>(std::stoi(endpoint.substr(endpoint.rfind(':') + 1)));
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    return "connect failed";
  }
  return exchange(std::move(fd), request);
}

std::set<pid_t> pids_of(const PoolStatus& status) {
  std::set<pid_t> pids;
  for (const auto& worker : status.workers) pids.insert(worker.pid);
  return pids;
}

class PoolManagerTest : public ::testing::Test {
 protected:
  PoolManagerTest() : reaper_(io_) {
    std::string pattern = (std::filesystem::temp_directory_path() / "clusweb-pool-XXXXXX").string();
    dir_ = ::mkdtemp(pattern.data());
    ::chmod(dir_.c_str(), 0755);
    out_ = dir_ + "/out";
    std::filesystem::create_directories(out_);
    ::chmod(out_.c_str(), 0777);  // workers running as another user write here too
  }

  ~PoolManagerTest() override {
    if (manager_) {
      bool done = false;
      manager_->shutdown([&done] { done = true; });
      EXPECT_TRUE(run_until([&] { return done; })) << "workers left after shutdown";
      manager_.reset();
    }
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  PoolManagerOptions options() const {
    PoolManagerOptions result;
    result.run_dir = dir_ + "/run";
    result.log_dir = dir_ + "/log";
    result.restart_delay = milliseconds(20);
    return result;
  }

  PoolManager& manager() {
    if (!manager_) manager_ = std::make_unique<PoolManager>(io_, reaper_, clock_, options());
    return *manager_;
  }

  config::ApplicationPool shell_pool(const std::string& name, const std::string& script) const {
    config::ApplicationPool pool;
    pool.name = name;
    pool.command = {"/bin/sh", "-c", script};
    pool.working_directory = dir_;
    pool.environment = {{"OUT", out_}};
    pool.startup_time_limit = std::chrono::seconds(10);
    pool.shutdown_time_limit = std::chrono::seconds(5);
    return pool;
  }

  config::ApplicationPool python_pool(const std::string& name) const {
    config::ApplicationPool pool = shell_pool(name, "");
    pool.command = {"/usr/bin/python3", worker_py()};
    return pool;
  }

  // Applies a configuration holding exactly `pools`.
  void apply(std::initializer_list<config::ApplicationPool> pools) {
    config::WebConfig config;
    for (const auto& pool : pools) config.pools[pool.name] = pool;
    manager().apply(config);
  }

  // Runs the io_context until `done()` holds, for at most kTimeout.
  template <class Predicate>
  bool run_until(Predicate done) {
    auto deadline = std::chrono::steady_clock::now() + kTimeout;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      io_.restart();
      io_.run_one_for(milliseconds(20));
    }
    return true;
  }

  PoolStatus status(const std::string& name) {
    auto found = manager().status(name);
    EXPECT_TRUE(found.has_value()) << "no pool " << name;
    return found.value_or(PoolStatus{});
  }

  bool in_state(const std::string& name, PoolState state) {
    auto found = manager().status(name);
    return found && found->state == state;
  }

  bool started(const std::string& name) { return in_state(name, PoolState::kStarted); }

  boost::asio::io_context io_;
  ChildReaper reaper_;
  testing::ManualClock clock_;
  std::string dir_;
  std::string out_;
  std::unique_ptr<PoolManager> manager_;
};

// Records what the worker of each slot sees, then idles with the same pid.
constexpr const char* kReportEnvironment =
    R"sh(f="$OUT/worker-$CLUSWEB_WORKER_SLOT"; { env; echo "fd3=$(readlink /proc/$$/fd/3)"; } > "$f.tmp"; mv "$f.tmp" "$f"; exec sleep 1000)sh";

TEST_F(PoolManagerTest, StartsWorkersWithSocketActivation) {
  auto pool = shell_pool("shop", kReportEnvironment);
  pool.processes = 2;
  pool.environment["GREETING"] = "hello";
  apply({pool});
  ASSERT_TRUE(run_until([&] {
    return started("shop") && std::filesystem::exists(out_ + "/worker-0") &&
           std::filesystem::exists(out_ + "/worker-1");
  }));

  PoolStatus shop = status("shop");
  EXPECT_EQ(shop.reason, "");
  EXPECT_EQ(shop.processes, 2);
  EXPECT_EQ(shop.worker_starts, 2u);
  ASSERT_EQ(shop.workers.size(), 2u);
  std::set<std::string> endpoints;
  for (const WorkerStatus& worker : shop.workers) {
    SCOPED_TRACE(worker.slot);
    EXPECT_TRUE(worker.ready);
    EXPECT_EQ(worker.generation, 1);
    std::string path = dir_ + "/run/pools/shop-" + std::to_string(worker.slot) + "-1.sock";
    EXPECT_EQ(worker.endpoint, "unix:" + path);
    endpoints.insert(worker.endpoint);
    struct stat info {};
    ASSERT_EQ(::stat(path.c_str(), &info), 0);
    EXPECT_TRUE(S_ISSOCK(info.st_mode));
    EXPECT_EQ(info.st_mode & 0777, 0660u);

    auto env = parse_env(read_file(out_ + "/worker-" + std::to_string(worker.slot)));
    EXPECT_EQ(env["LISTEN_FDS"], "1");
    EXPECT_EQ(env["LISTEN_PID"], std::to_string(worker.pid));
    EXPECT_EQ(env["LISTEN_FDNAMES"], "shop");
    EXPECT_EQ(env["CLUSWEB_POOL"], "shop");
    EXPECT_EQ(env["CLUSWEB_WORKER_SLOT"], std::to_string(worker.slot));
    EXPECT_EQ(env["PATH"], "/usr/local/bin:/usr/bin:/bin");
    EXPECT_EQ(env["LANG"], "C.UTF-8");
    EXPECT_EQ(env["USER"], "root");
    EXPECT_EQ(env["HOME"], "/root");
    EXPECT_EQ(env["GREETING"], "hello");
    EXPECT_THAT(env["fd3"], StartsWith("socket:"));
  }
  EXPECT_EQ(endpoints.size(), 2u);
  EXPECT_TRUE(std::filesystem::is_directory(dir_ + "/run/pools"));
  EXPECT_EQ(std::filesystem::status(dir_ + "/run/pools").permissions(),
            std::filesystem::perms(0750));
}

TEST_F(PoolManagerTest, WorkerAnswersHttpOverTheActivationSocket) {
  auto pool = python_pool("shop");
  pool.environment["CLUSWEB_NODE"] = "n1";
  apply({pool});
  ASSERT_TRUE(run_until([&] { return started("shop"); }));
  WorkerStatus worker = status("shop").workers.at(0);

  // Two pipelined requests on one keep-alive connection.
  std::string response = http(worker.endpoint,
                              "GET /hello?x=1 HTTP/1.1\r\nHost: shop\r\n"
                              "X-Forwarded-For: 203.0.113.9\r\n\r\n"
                              "GET /again HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n");
  EXPECT_THAT(response, StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(response,
              HasSubstr("worker pid=" + std::to_string(worker.pid) + " pool=shop node=n1"));
  EXPECT_THAT(response, HasSubstr("method=GET path=/hello?x=1"));
  EXPECT_THAT(response, HasSubstr("x-forwarded-for=203.0.113.9"));
  EXPECT_THAT(response, HasSubstr("path=/again"));
}

TEST_F(PoolManagerTest, KilledWorkerIsReplaced) {
  apply({shell_pool("shop", "exec sleep 1000")});
  ASSERT_TRUE(run_until([&] { return started("shop"); }));
  pid_t first = status("shop").workers.at(0).pid;

  ASSERT_EQ(::kill(first, SIGKILL), 0);
  ASSERT_TRUE(run_until([&] {
    auto shop = status("shop");
    return shop.workers.size() == 1 && shop.workers[0].pid != first;
  }));
  PoolStatus shop = status("shop");
  EXPECT_EQ(shop.state, PoolState::kStarted);
  EXPECT_EQ(shop.worker_failures, 1u);
  EXPECT_EQ(shop.worker_starts, 2u);
  EXPECT_EQ(shop.workers[0].generation, 1);
  EXPECT_FALSE(process_exists(first));
}

TEST_F(PoolManagerTest, CrashingWorkerIsReplaced) {
  apply({python_pool("shop")});
  ASSERT_TRUE(run_until([&] { return started("shop"); }));
  WorkerStatus first = status("shop").workers.at(0);

  std::string response = http(first.endpoint, "GET /crash HTTP/1.1\r\nHost: shop\r\n\r\n");
  EXPECT_EQ(response, "");  // exits without answering
  ASSERT_TRUE(run_until([&] {
    auto shop = status("shop");
    return shop.workers.size() == 1 && shop.workers[0].pid != first.pid;
  }));
  EXPECT_EQ(status("shop").worker_failures, 1u);
  EXPECT_THAT(read_file(dir_ + "/log/pool-shop.log"),
              HasSubstr("worker pid=" + std::to_string(first.pid) + " crashing on request"));
}

TEST_F(PoolManagerTest, StopEndsWorkersAndRemovesSockets) {
  auto pool = shell_pool("shop", "exec sleep 1000");
  pool.processes = 2;
  apply({pool});
  ASSERT_TRUE(run_until([&] { return started("shop"); }));
  std::set<pid_t> pids = pids_of(status("shop"));
  ASSERT_EQ(pids.size(), 2u);

  ASSERT_TRUE(manager().stop("shop").ok());
  EXPECT_EQ(status("shop").state, PoolState::kStopping);
  EXPECT_EQ(status("shop").reason, "Disabled");
  EXPECT_TRUE(status("shop").workers.empty());
  ASSERT_TRUE(run_until([&] { return in_state("shop", PoolState::kStopped); }));
  EXPECT_EQ(status("shop").reason, "Disabled");
  EXPECT_EQ(status("shop").worker_failures, 0u);
  for (pid_t pid : pids) EXPECT_FALSE(process_exists(pid)) << pid;
  EXPECT_TRUE(std::filesystem::is_empty(dir_ + "/run/pools"));
  EXPECT_TRUE(manager().stop("shop").ok());
}

TEST_F(PoolManagerTest, StopKillsWorkersThatIgnoreSigterm) {
  auto pool = shell_pool("shop", "trap '' TERM; exec sleep 1000");
  pool.shutdown_time_limit = milliseconds(200);
  apply({pool});
  ASSERT_TRUE(run_until([&] { return started("shop"); }));
  pid_t pid = status("shop").workers.at(0).pid;

  ASSERT_TRUE(manager().stop("shop").ok());
  ASSERT_TRUE(run_until([&] { return in_state("shop", PoolState::kStopped); }));
  EXPECT_FALSE(process_exists(pid));
}

TEST_F(PoolManagerTest, RecycleOverlapsGenerations) {
  auto pool = python_pool("shop");
  pool.socket = config::SocketMode::kPort;
  pool.processes = 2;
  apply({pool});
  ASSERT_TRUE(run_until([&] { return started("shop"); }));
  std::set<pid_t> old_pids = pids_of(status("shop"));
  ASSERT_EQ(old_pids.size(), 2u);

  // Listeners outlive the test body (the fixture shuts down later): share, don't borrow.
  struct Seen {
    std::size_t fewest_serving = 2;
    bool new_served = false;
    bool old_alive_when_new_served = false;
    int new_generation = 0;
  };
  auto seen = std::make_shared<Seen>();
  manager().subscribe([seen, old_pids](const PoolStatus& update) {
    seen->fewest_serving = std::min(seen->fewest_serving, update.workers.size());
    std::set<pid_t> pids = pids_of(update);
    if (!seen->new_served && !pids.empty() && pids != old_pids) {
      seen->new_served = true;
      seen->old_alive_when_new_served = true;
      for (pid_t pid : old_pids) seen->old_alive_when_new_served &= process_exists(pid);
      seen->new_generation = update.workers.front().generation;
    }
  });
  ASSERT_TRUE(manager().recycle("shop").ok());
  EXPECT_EQ(pids_of(status("shop")), old_pids);  // still serving while the new ones start

  ASSERT_TRUE(run_until([&] {
    bool old_gone = true;
    for (pid_t pid : old_pids) old_gone &= !process_exists(pid);
    return seen->new_served && old_gone;
  }));
  EXPECT_TRUE(seen->old_alive_when_new_served);
  EXPECT_EQ(seen->new_generation, 2);
  EXPECT_EQ(seen->fewest_serving, 2u);
  PoolStatus shop = status("shop");
  EXPECT_EQ(shop.state, PoolState::kStarted);
  ASSERT_EQ(shop.workers.size(), 2u);
  EXPECT_EQ(shop.worker_failures, 0u);
  for (const auto& worker : shop.workers) {
    EXPECT_EQ(old_pids.count(worker.pid), 0u);
    EXPECT_THAT(http(worker.endpoint, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
                HasSubstr("worker pid=" + std::to_string(worker.pid)));
  }
}

TEST_F(PoolManagerTest, RecycleGivesActivatedWorkersNewSockets) {
  apply({shell_pool("shop", "exec sleep 1000")});
  ASSERT_TRUE(run_until([&] { return started("shop"); }));
  WorkerStatus old = status("shop").workers.at(0);
  ASSERT_TRUE(manager().recycle("shop").ok());
  ASSERT_TRUE(run_until([&] { return !process_exists(old.pid); }));
  WorkerStatus current = status("shop").workers.at(0);
  EXPECT_EQ(current.generation, 2);
  EXPECT_EQ(current.endpoint, "unix:" + dir_ + "/run/pools/shop-0-2.sock");
  EXPECT_FALSE(std::filesystem::exists(old.endpoint.substr(5)));
  EXPECT_TRUE(std::filesystem::exists(current.endpoint.substr(5)));
}

TEST_F(PoolManagerTest, RapidFailProtectionStopsAFailingPool) {
  auto pool = shell_pool("shop", "exit 1");
  pool.rapid_fail_max_crashes = 2;
  pool.rapid_fail_interval = std::chrono::minutes(1);
  apply({pool});
  ASSERT_TRUE(run_until([&] { return in_state("shop", PoolState::kStopped); }));
  PoolStatus shop = status("shop");
  EXPECT_EQ(shop.reason, "AppOffline");
  EXPECT_EQ(shop.worker_failures, 3u);
  EXPECT_EQ(shop.worker_starts, 3u);
  EXPECT_TRUE(shop.workers.empty());

  // An administrator's start clears the history and tries again.
  ASSERT_TRUE(manager().start("shop").ok());
  EXPECT_NE(status("shop").state, PoolState::kStopped);
  ASSERT_TRUE(run_until([&] { return in_state("shop", PoolState::kStopped); }));
  EXPECT_EQ(status("shop").worker_failures, 6u);
}

TEST_F(PoolManagerTest, FailuresSpreadOverTimeDoNotTripRapidFail) {
  auto pool = shell_pool("shop", "exit 1");
  pool.rapid_fail_max_crashes = 1;
  pool.rapid_fail_interval = std::chrono::seconds(10);
  apply({pool});
  for (std::uint64_t failures = 1; failures <= 4; ++failures) {
    ASSERT_TRUE(run_until([&] { return status("shop").worker_failures >= failures; }));
    EXPECT_EQ(status("shop").worker_failures, failures);
    clock_.advance(std::chrono::seconds(11));
  }
  EXPECT_NE(status("shop").state, PoolState::kStopped);
}

TEST_F(PoolManagerTest, RapidFailProtectionCanBeDisabled) {
  auto pool = shell_pool("shop", "exit 1");
  pool.rapid_fail_protection = false;
  pool.rapid_fail_max_crashes = 1;
  apply({pool});
  ASSERT_TRUE(run_until([&] { return status("shop").worker_failures >= 5; }));
  EXPECT_NE(status("shop").state, PoolState::kStopped);
}

TEST_F(PoolManagerTest, PortModeServesHttp) {
  auto pool = python_pool("shop");
  pool.socket = config::SocketMode::kPort;
  apply({pool});
  EXPECT_EQ(status("shop").state, PoolState::kStarting);
  ASSERT_TRUE(run_until([&] { return started("shop"); }));
  WorkerStatus worker = status("shop").workers.at(0);
  EXPECT_THAT(worker.endpoint, StartsWith("tcp:127.0.0.1:"));
  std::string response =
      http(worker.endpoint, "GET /slow?ms=10 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  EXPECT_THAT(response, StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(response, HasSubstr("worker pid=" + std::to_string(worker.pid) + " pool=shop"));
  EXPECT_THAT(response, HasSubstr("path=/slow?ms=10"));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/run/pools"));
}

TEST_F(PoolManagerTest, PortModeWorkerThatNeverListensFailsItsStartup) {
  auto pool = shell_pool("shop", "exec sleep 1000");
  pool.socket = config::SocketMode::kPort;
  pool.startup_time_limit = milliseconds(150);
  pool.rapid_fail_max_crashes = 1;
  auto published = std::make_shared<std::set<pid_t>>();
  manager().subscribe([published](const PoolStatus& update) { published->merge(pids_of(update)); });
  apply({pool});
  ASSERT_TRUE(run_until([&] { return in_state("shop", PoolState::kStopped); }));
  PoolStatus shop = status("shop");
  EXPECT_EQ(shop.reason, "AppOffline");
  EXPECT_EQ(shop.worker_failures, 2u);
  EXPECT_TRUE(published->empty()) << "a worker that never listened was published";
}

TEST_F(PoolManagerTest, ApplyReconcilesAddedChangedAndRemovedPools) {
  auto keep = shell_pool("keep", "exec sleep 1000");
  auto change = shell_pool("change", "exec sleep 1000");
  auto drop = shell_pool("drop", "exec sleep 1000");
  apply({keep, change, drop});
  ASSERT_TRUE(run_until([&] { return started("keep") && started("change") && started("drop"); }));
  pid_t keep_pid = status("keep").workers.at(0).pid;
  pid_t change_pid = status("change").workers.at(0).pid;
  pid_t drop_pid = status("drop").workers.at(0).pid;

  change.environment["VERSION"] = "2";
  auto add = shell_pool("add", "exec sleep 1000");
  auto manual = shell_pool("manual", "exec sleep 1000");
  manual.auto_start = false;
  apply({keep, change, add, manual});
  ASSERT_TRUE(run_until([&] {
    return started("add") && !manager().status("drop") && !process_exists(drop_pid) &&
           !process_exists(change_pid);
  }));

  EXPECT_EQ(status("keep").workers.at(0).pid, keep_pid);
  EXPECT_EQ(status("keep").workers.at(0).generation, 1);
  PoolStatus changed = status("change");
  EXPECT_EQ(changed.state, PoolState::kStarted);
  ASSERT_EQ(changed.workers.size(), 1u);
  EXPECT_NE(changed.workers[0].pid, change_pid);
  EXPECT_EQ(changed.workers[0].generation, 2);
  EXPECT_EQ(status("manual").state, PoolState::kStopped);
  EXPECT_EQ(status("manual").reason, "Disabled");
  EXPECT_TRUE(status("manual").workers.empty());
  EXPECT_EQ(manager().status().size(), 4u);
  EXPECT_FALSE(manager().start("drop").ok());
}

TEST_F(PoolManagerTest, CommandsNameUnknownPoolsAndCheckState) {
  apply({shell_pool("shop", "exec sleep 1000")});
  auto unknown = manager().start("nope");
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(unknown.error().describe(), HasSubstr("nope"));
  EXPECT_FALSE(manager().stop("nope").ok());
  EXPECT_FALSE(manager().recycle("nope").ok());

  EXPECT_TRUE(manager().start("shop").ok());  // already starting: fine
  ASSERT_TRUE(run_until([&] { return started("shop"); }));
  EXPECT_TRUE(manager().start("shop").ok());
  EXPECT_EQ(status("shop").worker_starts, 1u);

  ASSERT_TRUE(manager().stop("shop").ok());
  auto recycle = manager().recycle("shop");
  ASSERT_FALSE(recycle.ok());
  EXPECT_THAT(recycle.error().describe(), HasSubstr("not started"));
  ASSERT_TRUE(manager().start("shop").ok());
  ASSERT_TRUE(run_until([&] { return started("shop"); }));
  EXPECT_EQ(status("shop").workers.at(0).generation, 2);
}

TEST_F(PoolManagerTest, UnknownUserLeavesThePoolStoppedWithStartupFailed) {
  auto pool = shell_pool("shop", "exec sleep 1000");
  pool.user = "clusweb-no-such-user";
  apply({pool});
  PoolStatus shop = status("shop");
  EXPECT_EQ(shop.state, PoolState::kStopped);
  EXPECT_EQ(shop.reason, "StartupFailed");
  EXPECT_EQ(shop.worker_starts, 0u);
  auto started_again = manager().start("shop");
  ASSERT_FALSE(started_again.ok());
  EXPECT_THAT(started_again.error().describe(), HasSubstr("clusweb-no-such-user"));
}

TEST_F(PoolManagerTest, WorkersRunAsThePoolUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  auto nobody = lookup_user("nobody");
  ASSERT_TRUE(nobody.ok());
  auto pool = shell_pool(
      "shop",
      R"sh(id -u > "$OUT/id.tmp"; echo "$USER $HOME" >> "$OUT/id.tmp"; mv "$OUT/id.tmp" "$OUT/id"; exec sleep 1000)sh");
  pool.user = "nobody";
  pool.working_directory = "/";
  apply({pool});
  ASSERT_TRUE(run_until([&] { return started("shop") && std::filesystem::exists(out_ + "/id"); }));
  EXPECT_EQ(read_file(out_ + "/id"), std::to_string(nobody->uid) + "\nnobody /nonexistent\n");
}

TEST_F(PoolManagerTest, WorkerOutputGoesToThePoolLog) {
  apply({shell_pool("shop", "echo to-stdout; echo to-stderr >&2; exec sleep 1000")});
  std::string log = dir_ + "/log/pool-shop.log";
  ASSERT_TRUE(run_until([&] {
    std::string text = read_file(log);
    return text.find("to-stdout") != std::string::npos &&
           text.find("to-stderr") != std::string::npos;
  }));
}

TEST_F(PoolManagerTest, ListenersSeeEveryStateChange) {
  auto pool = python_pool("shop");
  pool.socket = config::SocketMode::kPort;
  using Seen = std::pair<PoolState, std::size_t>;
  auto seen = std::make_shared<std::vector<Seen>>();
  manager().subscribe([seen](const PoolStatus& update) {
    seen->emplace_back(update.state, update.workers.size());
  });
  apply({pool});
  ASSERT_TRUE(run_until([&] { return started("shop"); }));
  ASSERT_TRUE(manager().stop("shop").ok());
  ASSERT_TRUE(run_until([&] { return in_state("shop", PoolState::kStopped); }));
  EXPECT_THAT(*seen,
              ::testing::ElementsAre(Seen{PoolState::kStarting, 0}, Seen{PoolState::kStarted, 1},
                                     Seen{PoolState::kStopping, 0}, Seen{PoolState::kStopped, 0}));
}

TEST_F(PoolManagerTest, ShutdownStopsEveryPool) {
  auto first = shell_pool("first", "exec sleep 1000");
  first.processes = 2;
  apply({first, python_pool("second")});
  ASSERT_TRUE(run_until([&] { return started("first") && started("second"); }));
  std::set<pid_t> pids = pids_of(status("first"));
  pids.merge(pids_of(status("second")));
  ASSERT_EQ(pids.size(), 3u);

  bool done = false;
  manager().shutdown([&done] { done = true; });
  ASSERT_TRUE(run_until([&] { return done; }));
  for (pid_t pid : pids) EXPECT_FALSE(process_exists(pid)) << pid;
  for (const auto& pool : manager().status()) EXPECT_EQ(pool.state, PoolState::kStopped);
  EXPECT_FALSE(manager().start("first").ok());
}

}  // namespace
}  // namespace clusweb::pool
