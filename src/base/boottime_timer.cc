#include "base/boottime_timer.h"

#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>

namespace clusweb {

Result<std::unique_ptr<BoottimeTimer>> BoottimeTimer::open(boost::asio::io_context& io) {
  int fd = ::timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK | TFD_CLOEXEC);
  if (fd < 0) return errno_error("timerfd_create", "CLOCK_BOOTTIME");
  return std::unique_ptr<BoottimeTimer>(new BoottimeTimer(io, fd));
}

BoottimeTimer::BoottimeTimer(boost::asio::io_context& io, int fd) : descriptor_(io, fd) {}

BoottimeTimer::~BoottimeTimer() = default;

void BoottimeTimer::wait_until(std::int64_t deadline_ms, std::function<void()> handler) {
  cancel();
  deadline_ms_ = deadline_ms;
  handler_ = std::move(handler);
  arm();
}

void BoottimeTimer::cancel() {
  ++wait_id_;
  handler_ = nullptr;
  itimerspec disarm{};
  ::timerfd_settime(descriptor_.native_handle(), 0, &disarm, nullptr);
  // Completes the pending wait at once (aborted), so waits do not pile up
  // when a deadline keeps moving before it is reached.
  boost::system::error_code ignored;
  descriptor_.cancel(ignored);
}

void BoottimeTimer::arm() {
  // An absolute time of 0 would disarm the timer; anything at or before boot
  // is due at once all the same.
  const std::int64_t at = std::max<std::int64_t>(deadline_ms_, 1);
  itimerspec spec{};
  spec.it_value.tv_sec = static_cast<time_t>(at / 1000);
  spec.it_value.tv_nsec = static_cast<long>(at % 1000) * 1'000'000;
  // Fails only for a bad descriptor or value, neither of which can reach here.
  ::timerfd_settime(descriptor_.native_handle(), TFD_TIMER_ABSTIME, &spec, nullptr);
  descriptor_.async_wait(
      boost::asio::posix::stream_descriptor::wait_read,
      [this, alive = std::weak_ptr<int>(alive_), id = wait_id_](boost::system::error_code ec) {
        if (alive.expired() || ec || id != wait_id_) return;
        fired();
      });
}

void BoottimeTimer::fired() {
  std::uint64_t expirations = 0;
  // Clears the readiness; fails (EAGAIN) when nothing expired after all.
  [[maybe_unused]] ssize_t got =
      ::read(descriptor_.native_handle(), &expirations, sizeof expirations);
  // The kernel's word is checked against the clock itself: the handler's
  // contract is "the deadline has passed", whatever woke us.
  if (boottime_now_ms() < deadline_ms_) {
    arm();
    return;
  }
  auto handler = std::move(handler_);
  handler_ = nullptr;
  if (handler) handler();
}

}  // namespace clusweb
