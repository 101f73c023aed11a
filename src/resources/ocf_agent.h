#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "resources/program_run.h"

// What the `ocf` resource type needs to know of an OCF 1.1 resource agent
// (REFERENCE.md, "OCF Resource Agent API 1.1"): where it is, the environment
// every action gets, its exit codes and its meta-data.
namespace clusweb::resources {

inline constexpr std::string_view kDefaultOcfRoot = "/usr/lib/ocf";
// HA_RSCTMP: where agents keep state that must not survive a reboot (the
// default of resource-agents' ocf-directories). Created before each action.
inline constexpr std::string_view kOcfStateDirectory = "/run/resource-agents";

// One agent: the executable <root>/resource.d/<provider>/<type>.
struct OcfAgent {
  std::string root{kDefaultOcfRoot};
  std::string provider;
  std::string type;

  std::string path() const;
};

// "provider:type" (e.g. "heartbeat:Dummy") under `root`, which must be
// absolute. Neither part may be empty, ".", ".." or contain '/'; the error
// names what is wrong.
Result<OcfAgent> parse_ocf_agent(std::string_view spec, std::string_view root = kDefaultOcfRoot);

// The OCF 1.1 exit codes with a name.
enum OcfExitCode : int {
  kOcfSuccess = 0,
  kOcfErrGeneric = 1,
  kOcfErrArgs = 2,
  kOcfErrUnimplemented = 3,
  kOcfErrPerm = 4,
  kOcfErrInstalled = 5,
  kOcfErrConfigured = 6,
  kOcfNotRunning = 7,
  kOcfRunningPromoted = 8,
  kOcfFailedPromoted = 9,
  kOcfDegraded = 190,
  kOcfDegradedPromoted = 191,
};
// "success", "generic error", ..., "not running", "degraded"; "unknown" for
// codes the standard does not name.
std::string_view ocf_exit_code_name(int code);

// The environment every action of `agent` gets (OCF 1.1 and what Pacemaker
// sets), without what belongs to a resource instance:
//   PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
//   OCF_ROOT=<root>, OCF_FUNCTIONS_DIR=<root>/lib/heartbeat,
//   OCF_RA_VERSION_MAJOR=1, OCF_RA_VERSION_MINOR=1,
//   OCF_RESOURCE_PROVIDER=<provider>, OCF_RESOURCE_TYPE=<type>,
//   OCF_RESKEY_CRM_meta_name=<action>, OCF_RESKEY_CRM_meta_timeout=<timeout in ms>,
//   HA_RSCTMP=/run/resource-agents.
// Nothing else: no HA_LOGFACILITY or HA_LOGFILE, so ocf-shellfuncs' ocf_log
// writes to stderr, which ends up in the event log.
std::map<std::string, std::string> ocf_base_environment(const OcfAgent& agent,
                                                        std::string_view action,
                                                        std::chrono::milliseconds timeout);

// Creates HA_RSCTMP if missing (mode 0755). Failure is logged only: the agent
// then reports what it cannot do itself.
void ensure_ocf_state_directory();

// --- meta-data ---

struct OcfParameter {
  std::string name;
  bool required = false;
  bool unique = false;
  std::string type;                          // <content type=...>, "" when absent
  std::optional<std::string> default_value;  // <content default=...>
};

struct OcfAction {
  std::string name;
  std::optional<std::chrono::milliseconds> timeout;
  std::optional<std::chrono::milliseconds> interval;
  std::optional<int> depth;  // OCF_CHECK_LEVEL of a monitor
  std::string role;          // "" when absent
};

struct OcfMetadata {
  std::string name;     // <resource-agent name=...>
  std::string version;  // <version>, else <resource-agent version=...>
  std::vector<OcfParameter> parameters;
  std::vector<OcfAction> actions;  // in document order; monitor may appear per depth or role

  const OcfParameter* find_parameter(std::string_view name) const;
  // The first action named `name` (whatever its depth and role).
  const OcfAction* find_action(std::string_view name) const;
};

// A duration as Pacemaker reads it in meta-data: a whole number with an
// optional unit: ms/msec, s/sec (the default), m/min, h/hr ("20s", "20",
// "1m", "500ms").
Result<std::chrono::milliseconds> parse_ocf_duration(std::string_view text);

// Parses an agent's meta-data document. Required: the root element
// <resource-agent>; every <parameter> and <action> with a non-empty name;
// required/unique as 0/1 (or true/false, yes/no); durations as
// parse_ocf_duration(); depth a whole number. The error names the element
// and attribute at fault.
Result<OcfMetadata> parse_ocf_metadata(std::string_view xml);

// Runs `<agent> meta-data` through `runner` (a tracked run, so a Terminate
// of the resource that owns the runner ends it) with ocf_base_environment()
// and parses what it prints on stdout (stderr lines go to the runner's log
// sink). Failures are Errors naming the agent's path, with Error::code the
// OCF exit code they amount to: a missing or non-executable agent, or output
// that is not meta-data, kOcfErrInstalled; a run that exits with another
// code than 0, that code; a run killed (timeout: sys_errno ETIMEDOUT,
// superseded) or otherwise failed, kOcfErrGeneric.
boost::asio::awaitable<Result<OcfMetadata>> read_ocf_metadata(ProgramRunner& runner, OcfAgent agent,
                                                              std::chrono::milliseconds timeout);

}  // namespace clusweb::resources
