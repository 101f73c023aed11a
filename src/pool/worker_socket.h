#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"

namespace clusweb::pool {

// Creates a listening unix stream socket at `path` (replacing a stale file),
// mode 0660, group `group` when given, with `backlog` queued connections.
// The descriptor is close-on-exec; spawn() maps it to the worker's fd 3.
Result<UniqueFd> listen_unix(const std::string& path, int backlog, std::optional<gid_t> group);

// A loopback TCP port that was free a moment ago (bind 127.0.0.1:0, read, close).
// Another process may take it before the worker binds it; the worker then
// fails to start and is replaced with a new port.
Result<std::uint16_t> pick_free_loopback_port();

}  // namespace clusweb::pool
