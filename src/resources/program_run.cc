#include "resources/program_run.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <csignal>
#include <deque>
#include <utility>

#include "base/log.h"
#include "base/unique_fd.h"

namespace clusweb::resources {

namespace {

// How long a killed program may take to be reaped before its run ends anyway
// (a process in uninterruptible sleep dies only when the kernel lets it).
constexpr std::chrono::milliseconds kReapBackstop{100};

}  // namespace

std::optional<int> ProgramOutcome::exit_code() const {
  if (spawn_error || superseded || timed_out || !exited || !WIFEXITED(wait_status)) {
    return std::nullopt;
  }
  return WEXITSTATUS(wait_status);
}

std::string ProgramOutcome::describe() const {
  if (spawn_error) return spawn_error->describe();
  if (superseded) return "superseded by terminate";
  if (timed_out) return fmt::format("timed out after {} ms", timeout.count());
  if (!exited) return "ended without an exit status";  // only a kill backstop ends a run early
  return describe_wait_status(wait_status);
}

// One running program. Driven by callbacks on the executor's thread (output,
// the reaper's exit callback, timers); the calling coroutine waits on `done`,
// a timer that never expires and is cancelled when the run is finished. Every
// callback holds the Run, so a late one finds it alive and sees `finished`.
class ProgramRunner::Run : public std::enable_shared_from_this<ProgramRunner::Run> {
 public:
  Run(const boost::asio::any_io_executor& executor, LogSink log_sink,
      std::chrono::milliseconds timeout)
      : log_sink_(std::move(log_sink)),
        timeout_(timeout),
        pipe_(executor),
        timeout_timer_(executor),
        kill_timer_(executor),
        drain_timer_(executor),
        done_(executor) {
    done_.expires_at(boost::asio::steady_timer::time_point::max());
  }

  // Takes the read end of the output pipe and the spawned (and watched) pid.
  void start(pid_t pid, UniqueFd output) {
    pid_ = pid;
    boost::system::error_code ec;
    pipe_.assign(output.get(), ec);
    if (ec) {
      eof_ = true;  // not expected for a fresh pipe; the program runs without its output read
    } else {
      output.release();  // the stream descriptor owns it now
    }
    read_more();
    timeout_timer_.expires_after(timeout_);
    timeout_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& error) {
      if (!error) self->on_timeout();
    });
  }

  // The ChildReaper's callback: the program has exited and is reaped.
  void on_exit(int wait_status) {
    exited_ = true;
    wait_status_ = wait_status;
    if (finished_) return;
    if (timed_out_ || superseded_) {
      // The program is gone and reaped, but its group id cannot be reused
      // while members are left, so this reaches only what it started.
      ::kill(-pid_, SIGKILL);
      close_pipe();
      return;
    }
    if (eof_) {
      finish();
      return;
    }
    drain_timer_.expires_after(kDrainTime);
    drain_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& error) {
      if (!error) self->close_pipe();
    });
  }

  // Terminate arrived: kill the group now; this run ends as superseded.
  void supersede() {
    if (finished_) return;
    superseded_ = true;
    timeout_timer_.cancel();
    if (exited_) {
      ::kill(-pid_,
             SIGKILL);  // see on_exit: the group outlives its reaped leader only with members
      close_pipe();
      return;
    }
    signal_group(pid_, SIGKILL);
    arm_backstop();
  }

  // Waits (on the caller's coroutine) until the run is finished.
  boost::asio::awaitable<void> wait() {
    while (!finished_) {
      co_await done_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    }
  }

  ProgramOutcome outcome() const {
    ProgramOutcome outcome;
    outcome.superseded = superseded_;
    outcome.timed_out = timed_out_;
    outcome.exited = exited_;
    outcome.wait_status = wait_status_;
    outcome.timeout = timeout_;
    outcome.output.assign(lines_.begin(), lines_.end());
    return outcome;
  }

  pid_t pid() const { return pid_; }

 private:
  void read_more() {
    if (eof_) return;
    pipe_.async_read_some(
        boost::asio::buffer(buffer_),
        [self = shared_from_this()](const boost::system::error_code& error, std::size_t size) {
          self->take_output(std::string_view(self->buffer_.data(), size));
          if (error) {  // EOF, or the pipe closed after the drain
            self->eof_ = true;
            self->flush_partial_line();
            if (self->exited_) self->finish();
            return;
          }
          self->read_more();
        });
  }

  void take_output(std::string_view data) {
    while (!data.empty()) {
      auto newline = data.find('\n');
      std::string_view piece = data.substr(0, newline);
      if (partial_.size() < kMaxLineBytes) {
        partial_.append(piece.substr(0, kMaxLineBytes - partial_.size()));
      }
      if (newline == std::string_view::npos) return;
      emit_line();
      data.remove_prefix(newline + 1);
    }
  }

  void flush_partial_line() {
    if (!partial_.empty()) emit_line();
  }

  void emit_line() {
    if (!partial_.empty() && partial_.back() == '\r') partial_.pop_back();
    std::string line = std::exchange(partial_, {});
    if (log_sink_) log_sink_(line);
    lines_.push_back(std::move(line));
    if (lines_.size() > kMaxOutputLines) lines_.pop_front();
  }

  void on_timeout() {
    if (finished_ || exited_) return;
    timed_out_ = true;
    signal_group(pid_, SIGTERM);
    auto grace = std::min(kMaxKillGrace, timeout_ / 2);
    kill_timer_.expires_after(grace);
    kill_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& error) {
      if (error || self->finished_) return;
      if (!self->exited_) signal_group(self->pid_, SIGKILL);
      self->arm_backstop();
    });
  }

  void arm_backstop() {
    kill_timer_.expires_after(kReapBackstop);
    kill_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& error) {
      if (error || self->finished_) return;
      logger("resources")->warn("killed program not reaped in time pid={}", self->pid_);
      self->finish();
    });
  }

  void close_pipe() {
    boost::system::error_code ignored;
    pipe_.close(ignored);  // the pending read ends with operation_aborted
    if (eof_) finish();
  }

  void finish() {
    if (finished_) return;
    finished_ = true;
    flush_partial_line();
    timeout_timer_.cancel();
    kill_timer_.cancel();
    drain_timer_.cancel();
    boost::system::error_code ignored;
    pipe_.close(ignored);
    done_.cancel();
  }

  LogSink log_sink_;
  std::chrono::milliseconds timeout_;
  boost::asio::posix::stream_descriptor pipe_;
  boost::asio::steady_timer timeout_timer_;
  boost::asio::steady_timer kill_timer_;  // SIGKILL after the grace, then the reap backstop
  boost::asio::steady_timer drain_timer_;
  boost::asio::steady_timer done_;
  std::array<char, 4096> buffer_{};
  std::string partial_;  // the line being read, already cut to kMaxLineBytes
  std::deque<std::string> lines_;
  pid_t pid_ = -1;
  int wait_status_ = 0;
  bool exited_ = false;
  bool eof_ = false;
  bool timed_out_ = false;
  bool superseded_ = false;
  bool finished_ = false;
};

ProgramRunner::ProgramRunner(ChildReaper& reaper, boost::asio::any_io_executor executor,
                             LogSink log_sink)
    : reaper_(reaper), executor_(std::move(executor)), log_sink_(std::move(log_sink)) {}

ProgramRunner::~ProgramRunner() {
  if (in_flight_) in_flight_->supersede();
}

boost::asio::awaitable<void> ProgramRunner::supersede(std::string resource) {
  if (!in_flight_) co_return;
  std::shared_ptr<Run> running = in_flight_;
  logger("resources")
      ->info("terminate supersedes running call resource={} pid={}", resource, running->pid());
  running->supersede();
  co_await running->wait();
}

boost::asio::awaitable<ProgramOutcome> ProgramRunner::run(Program program, Tracking tracking) {
  ProgramOutcome failed;
  failed.timeout = program.timeout;
  const std::string name = program.argv.empty() ? std::string() : program.argv.front();
  if (program.timeout.count() <= 0) {
    failed.spawn_error = make_error("{}: no timeout given", name);
    co_return failed;
  }

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    failed.spawn_error = errno_error("pipe2", name);
    co_return failed;
  }
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);

  SpawnOptions options;
  options.argv = std::move(program.argv);
  options.env = std::move(program.env);
  options.working_directory = "/";
  options.new_process_group = true;
  options.stdout_fd = program.stdout_fd >= 0 ? program.stdout_fd : write_end.get();
  options.stderr_fd = write_end.get();
  Result<pid_t> pid = spawn(options);
  write_end.reset();  // EOF comes when the program and what it started close theirs
  if (!pid.ok()) {
    failed.spawn_error = pid.error();
    co_return failed;
  }

  auto run = std::make_shared<Run>(executor_, log_sink_, program.timeout);
  reaper_.watch(*pid, [run](int wait_status) { run->on_exit(wait_status); });
  run->start(*pid, std::move(read_end));
  if (tracking == Tracking::kTracked) in_flight_ = run;
  co_await run->wait();
  if (in_flight_ == run) in_flight_.reset();
  co_return run->outcome();
}

}  // namespace clusweb::resources
