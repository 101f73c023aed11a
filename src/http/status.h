#pragma once

#include <string_view>

namespace clusweb::http {

// The reason phrase of an HTTP status code ("Not Found"); "Unknown" for a
// code without one.
std::string_view reason_phrase(int status);

}  // namespace clusweb::http
