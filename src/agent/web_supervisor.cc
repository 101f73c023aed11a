#include "agent/web_supervisor.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include "base/log.h"
#include "base/unique_fd.h"

namespace clusweb::agent {

namespace {
std::shared_ptr<spdlog::logger> log_() { return logger("agent"); }
}  // namespace

WebSupervisor::WebSupervisor(boost::asio::io_context& io, ChildReaper& reaper,
                             std::vector<std::string> argv, std::string log_path)
    : reaper_(reaper),
      argv_(std::move(argv)),
      log_path_(std::move(log_path)),
      restart_timer_(io),
      kill_timer_(io) {}

WebSupervisor::~WebSupervisor() {
  if (pid_ > 0) {
    reaper_.forget(pid_);
    ::kill(pid_, SIGKILL);
  }
}

void WebSupervisor::start() {
  stopping_ = false;
  launch();
}

void WebSupervisor::launch() {
  if (stopping_ || pid_ > 0) return;
  SpawnOptions options;
  options.argv = argv_;
  for (const char* name : {"PATH", "CLUSWEB_LOG_LEVEL", "LANG"}) {
    if (const char* value = ::getenv(name)) options.env[name] = value;
  }
  // Its own process group: signals to the agent's group do not reach it
  // twice, and stop() signals it alone (it forwards to its front end).
  options.new_process_group = true;
  int log_fd = -1;
  if (!log_path_.empty()) {
    log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  }
  if (log_fd >= 0) {
    options.stdout_fd = log_fd;
    options.stderr_fd = log_fd;
  }
  auto pid = spawn(options);
  if (log_fd >= 0) ::close(log_fd);
  if (!pid.ok()) {
    log_()->error("cannot start the web service: {}", pid.error().describe());
  } else {
    pid_ = *pid;
    started_at_ = std::chrono::steady_clock::now();
    log_()->info("web service started pid={} log={}", pid_, log_path_);
    watch_exit();
    return;
  }
  restart_timer_.expires_after(std::chrono::seconds(1));
  restart_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) launch();
  });
}

bool WebSupervisor::adopt(pid_t pid) {
  int status = 0;
  if (pid <= 0 || pid_ > 0 || ::waitpid(pid, &status, WNOHANG) != 0) return false;
  pid_ = pid;
  started_at_ = std::chrono::steady_clock::now();
  log_()->info("web service adopted pid={}: it kept serving while the agent restarted", pid_);
  watch_exit();
  return true;
}

void WebSupervisor::watch_exit() {
  reaper_.watch(pid_, [this](int status) {
    log_()->log(stopping_ ? spdlog::level::info : spdlog::level::warn,
                "web service exited pid={} status={}", pid_, describe_wait_status(status));
    pid_ = 0;
    kill_timer_.cancel();
    if (stopping_) {
      if (on_stopped_) std::exchange(on_stopped_, nullptr)();
      return;
    }
    // Restarted at once after a long run, with a growing pause after quick failures.
    if (std::chrono::steady_clock::now() - started_at_ > std::chrono::seconds(30)) {
      backoff_ = std::chrono::milliseconds(200);
    }
    restart_timer_.expires_after(backoff_);
    backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(10'000));
    restart_timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec) launch();
    });
  });
}

void WebSupervisor::stop(std::chrono::milliseconds grace, std::function<void()> done) {
  stopping_ = true;
  restart_timer_.cancel();
  if (pid_ <= 0) {
    if (done) done();
    return;
  }
  on_stopped_ = std::move(done);
  ::kill(pid_, SIGTERM);
  kill_timer_.expires_after(grace);
  kill_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || pid_ <= 0) return;
    log_()->warn("web service did not stop in time; killing pid={}", pid_);
    signal_group(pid_, SIGKILL);
  });
}

}  // namespace clusweb::agent
