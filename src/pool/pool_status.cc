#include "pool/pool_status.h"

namespace clusweb::pool {

std::string_view to_string(PoolState state) {
  switch (state) {
    case PoolState::kStarting:
      return "Starting";
    case PoolState::kStarted:
      return "Started";
    case PoolState::kStopping:
      return "Stopping";
    case PoolState::kStopped:
      return "Stopped";
    case PoolState::kUnknown:
      return "Unknown";
  }
  return "Unknown";
}

}  // namespace clusweb::pool
