#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <cstdint>
#include <functional>
#include <memory>

#include "base/boottime.h"
#include "base/result.h"

namespace clusweb {

// A one-shot timer on CLOCK_BOOTTIME (a timerfd), waited for on an
// io_context: it fires on time after a suspend, where asio's steady_timer
// (CLOCK_MONOTONIC) would fire late by the time the machine slept. Not
// thread-safe: use it from the io_context's thread.
class BoottimeTimer {
 public:
  // Fails only when no descriptor can be had.
  static Result<std::unique_ptr<BoottimeTimer>> open(boost::asio::io_context& io);
  ~BoottimeTimer();
  BoottimeTimer(const BoottimeTimer&) = delete;
  BoottimeTimer& operator=(const BoottimeTimer&) = delete;

  // Calls `handler` once, on the io_context, when CLOCK_BOOTTIME reaches
  // `deadline_ms` (soon when it already has). Replaces the pending wait,
  // whose handler is then never called.
  void wait_until(std::int64_t deadline_ms, std::function<void()> handler);
  // Drops the pending wait, if any; its handler is never called.
  void cancel();

 private:
  BoottimeTimer(boost::asio::io_context& io, int fd);
  void arm();
  void fired();

  boost::asio::posix::stream_descriptor descriptor_;
  std::int64_t deadline_ms_ = 0;
  std::function<void()> handler_;
  // Tells a completion which wait it belongs to: one started before the
  // latest wait_until() or cancel() must not call the new handler.
  std::uint64_t wait_id_ = 0;
  // Expires with the timer: a completion queued when it is destroyed must
  // not touch it.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace clusweb
