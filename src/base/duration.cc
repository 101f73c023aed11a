#include "base/duration.h"

#include <charconv>
#include <cstdint>
#include <iterator>
#include <limits>
#include <utility>

namespace clusweb {
namespace {

using std::chrono::milliseconds;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::size_t read_number(std::string_view text, std::uint64_t& number) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (error != std::errc()) return 0;
  return static_cast<std::size_t>(end - text.data());
}

bool all_digits(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (!is_digit(c)) return false;
  }
  return true;
}

}  // namespace

Result<std::chrono::milliseconds> parse_duration(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return make_error("invalid duration \"{}\": {} (expected e.g. 250ms, 90s, 20m, 1h30m)", text,
                      why);
  };
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  if (text.empty()) return bad("empty");
  if (all_digits(text)) {
    std::uint64_t seconds = 0;
    if (read_number(text, seconds) != text.size() || seconds > kMax / 1000) return bad("too large");
    return milliseconds(static_cast<std::int64_t>(seconds) * 1000);
  }
  struct Unit {
    std::string_view name;
    std::int64_t milliseconds;
  };
  static constexpr Unit kUnits[] = {{"h", 3'600'000}, {"m", 60'000}, {"s", 1'000}, {"ms", 1}};
  std::int64_t total = 0;
  std::size_t next_unit = 0;
  std::size_t position = 0;
  while (position < text.size()) {
    std::uint64_t number = 0;
    const std::size_t digits = read_number(text.substr(position), number);
    if (digits == 0) {
      if (!is_digit(text[position])) return bad("expected a number");
      return bad("too large");
    }
    position += digits;
    const std::size_t unit_start = position;
    while (position < text.size() && text[position] >= 'a' && text[position] <= 'z') ++position;
    const std::string_view unit_name = text.substr(unit_start, position - unit_start);
    if (unit_name.empty()) {
      if (position < text.size()) return bad(fmt::format("unexpected '{}'", text[position]));
      return bad("every number needs a unit (h, m, s, ms)");
    }
    std::size_t unit = 0;
    while (unit < std::size(kUnits) && kUnits[unit].name != unit_name) ++unit;
    if (unit == std::size(kUnits)) return bad(fmt::format("unknown unit \"{}\"", unit_name));
    if (unit < next_unit) return bad("units must come in the order h, m, s, ms, each once");
    next_unit = unit + 1;
    const std::int64_t scale = kUnits[unit].milliseconds;
    if (number > static_cast<std::uint64_t>((kMax - total) / scale)) return bad("too large");
    total += static_cast<std::int64_t>(number) * scale;
  }
  return milliseconds(total);
}

std::string format_duration(std::chrono::milliseconds duration) {
  const std::int64_t signed_count = duration.count();
  if (signed_count == 0) return "0s";
  std::string text = signed_count < 0 ? "-" : "";
  std::uint64_t count = signed_count < 0 ? 0 - static_cast<std::uint64_t>(signed_count)
                                         : static_cast<std::uint64_t>(signed_count);
  constexpr std::pair<std::uint64_t, std::string_view> kUnits[] = {
      {3'600'000, "h"}, {60'000, "m"}, {1'000, "s"}, {1, "ms"}};
  for (const auto& [scale, unit] : kUnits) {
    if (count >= scale) {
      text += fmt::format("{}{}", count / scale, unit);
      count %= scale;
    }
  }
  return text;
}

}  // namespace clusweb
