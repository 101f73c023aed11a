#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace clusweb::pool {

// IIS numbering (ApplicationPoolState / WAS).
enum class PoolState { kStarting = 0, kStarted = 1, kStopping = 2, kStopped = 3, kUnknown = 4 };

// "Starting", "Started", "Stopping", "Stopped", "Unknown".
std::string_view to_string(PoolState state);

// Why a pool does not serve (PoolStatus::reason).
inline constexpr std::string_view kReasonDisabled =
    "Disabled";  // stopped by an administrator, or autoStart false
inline constexpr std::string_view kReasonAppOffline = "AppOffline";  // rapid-fail protection
inline constexpr std::string_view kReasonStartupFailed =
    "StartupFailed";  // user, log or run dir unusable

struct WorkerStatus {
  int slot = 0;  // 0 .. processes-1 (web garden position)
  pid_t pid = 0;
  std::string endpoint;  // "unix:/abs/path.sock" or "tcp:127.0.0.1:PORT"
  bool ready = false;
  std::int64_t started_at_unix_ms = 0;
  int generation = 0;  // bumped by every start and recycle of the pool

  bool operator==(const WorkerStatus&) const = default;
};

struct PoolStatus {
  std::string name;
  PoolState state = PoolState::kStopped;
  std::string reason;  // kReason*, or "" when Started
  int processes = 0;   // configured worker count
  // Only workers that may receive requests: the ready ones of the serving generation.
  std::vector<WorkerStatus> workers;
  std::uint64_t worker_starts = 0;
  std::uint64_t worker_failures = 0;
};

}  // namespace clusweb::pool
