#pragma once

// Helpers for the tests of the manifest loaders, which check that each problem is reported at
// the line where it is written.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <string_view>

namespace clusweb::config::testing {

// 1-based line of the only occurrence of `needle` in `text`. A needle that is missing or
// occurs twice fails the test: the expected line would be a guess.
inline int line_of(std::string_view text, std::string_view needle) {
  const std::size_t position = text.find(needle);
  if (position == std::string_view::npos) {
    ADD_FAILURE() << "\"" << needle << "\" not in the manifest";
    return 0;
  }
  if (text.find(needle, position + 1) != std::string_view::npos) {
    ADD_FAILURE() << "\"" << needle << "\" occurs twice in the manifest";
  }
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + position, '\n'));
}

}  // namespace clusweb::config::testing
