#include "web/permit_request.h"

#include <algorithm>
#include <cstdint>
#include <nlohmann/json.hpp>

namespace clusweb::web {

namespace {

constexpr std::string_view kField = "deadlineBoottimeMs";
constexpr std::string_view kShape =
    "the body must be a JSON object {\"deadlineBoottimeMs\": N}, N an absolute CLOCK_BOOTTIME "
    "time in milliseconds (0 revokes the permit)";

}  // namespace

Result<std::int64_t> parse_permit_request(std::string_view body, std::int64_t now_ms) {
  const auto doc = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
  if (doc.is_discarded()) return make_error("the body is not JSON: {}", kShape);
  if (!doc.is_object()) return make_error("the body is a JSON {}: {}", doc.type_name(), kShape);
  for (const auto& [key, value] : doc.items()) {
    if (key != kField) return make_error("field \"{}\" is unknown: {}", key, kShape);
  }
  const auto found = doc.find(kField);
  if (found == doc.end()) return make_error("field \"{}\" is missing: {}", kField, kShape);
  if (!found->is_number_integer()) {
    return make_error("field \"{}\" must be a whole number of milliseconds, not {}", kField,
                      found->dump());
  }
  if (found->is_number_unsigned()) {
    // Compared unsigned: a value above INT64_MAX must not wrap around.
    const auto value = found->get<std::uint64_t>();
    const auto limit = static_cast<std::uint64_t>(std::max<std::int64_t>(now_ms, 0)) +
                       static_cast<std::uint64_t>(kMaxPermitMs);
    if (value > limit) {
      return make_error(
          "field \"{}\" lies more than 24 hours ahead of CLOCK_BOOTTIME now ({} ms): a permit "
          "follows the agent's lease, so this is likely a unit mistake",
          kField, now_ms);
    }
    return static_cast<std::int64_t>(value);
  }
  const auto value = found->get<std::int64_t>();
  if (value < 0) return make_error("field \"{}\" must not be negative, not {}", kField, value);
  return value;
}

}  // namespace clusweb::web
