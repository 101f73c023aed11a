#pragma once

#include <cstdint>

namespace clusweb {

// CLOCK_BOOTTIME in milliseconds. Unlike CLOCK_MONOTONIC (steady_clock, asio's
// timers) it keeps counting while the machine is suspended, so a deadline on
// it passes during a suspend too. Serving permits are deadlines on this clock;
// BoottimeTimer (base/boottime_timer.h) waits for one.
std::int64_t boottime_now_ms();

}  // namespace clusweb
