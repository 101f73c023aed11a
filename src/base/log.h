#pragma once

#include <spdlog/logger.h>

#include <memory>
#include <string>

namespace clusweb {

// Returns the component's named logger ("web", "pool", ...), creating it on
// first use with the process-wide sinks. Loggers write lowercase facts with
// key=value pairs: `worker exited pool=shop pid=123 status=9`.
std::shared_ptr<spdlog::logger> logger(const std::string& component);

// Sets the level of every logger ("debug", "info", "warn", "error", "off").
// Returns false for an unknown level name.
bool set_log_level(const std::string& level);

}  // namespace clusweb
