#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "base/result.h"

namespace clusweb {

// "250ms", "90s", "20m", "1h", "1h30m" (units in decreasing order, each at most once);
// a bare number is seconds.
Result<std::chrono::milliseconds> parse_duration(std::string_view text);
// The shortest exact form parse_duration reads back: "1h30m", "1m30s", "250ms", "0s".
std::string format_duration(std::chrono::milliseconds duration);

}  // namespace clusweb
