#pragma once

#include <cstdint>
#include <string_view>

#include "base/result.h"

namespace clusweb::web {

// The longest permit the admin API grants: a permit follows the cluster
// agent's lease (seconds), so anything near this is a unit mistake (say,
// microseconds) that would leave a site served long after its owner is gone.
inline constexpr std::int64_t kMaxPermitMs = 24LL * 3600 * 1000;

// The deadline of a `POST /v1/permits/NAME` body, {"deadlineBoottimeMs": N}:
// N is an absolute CLOCK_BOOTTIME time in ms, not negative, at most
// kMaxPermitMs after `now_ms`; 0 or a past time revokes. Anything else is an
// Error in plain words that names the field.
Result<std::int64_t> parse_permit_request(std::string_view body, std::int64_t now_ms);

}  // namespace clusweb::web
