#include "base/boottime.h"

#include <ctime>

namespace clusweb {

std::int64_t boottime_now_ms() {
  timespec now{};
  ::clock_gettime(CLOCK_BOOTTIME, &now);
  return static_cast<std::int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1'000'000;
}

}  // namespace clusweb
