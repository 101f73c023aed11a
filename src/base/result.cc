#include "base/result.h"

#include <cerrno>
#include <cstring>

namespace clusweb {

Error errno_error(std::string_view call, std::string_view what, int err) {
  return Error{fmt::format("{} failed: {}", call, std::strerror(err)), std::string(what), err};
}

Error errno_error(std::string_view call, std::string_view what) {
  return errno_error(call, what, errno);
}

}  // namespace clusweb
