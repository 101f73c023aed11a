#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "base/process.h"
#include "cluster/group_controller.h"
#include "resources/ocf_agent.h"
#include "resources/program_run.h"
#include "resources/resource.h"

namespace clusweb::resources {

// The `ocf` resource type: an OCF 1.1 resource agent run unchanged, as
// Pacemaker runs it (REFERENCE.md, "OCF Resource Agent API 1.1").
//
// Parameters: `agent` = "provider:type" (e.g. "heartbeat:IPaddr2") and
// `ocfRoot` (default /usr/lib/ocf) name the agent, <ocfRoot>/resource.d/
// <provider>/<type>; both are read when the resource is made (the registry
// parses them), and a call's own values for them are ignored. `isAliveDepth`
// (default 10) is the OCF_CHECK_LEVEL of IsAlive. Every other parameter
// reaches the agent as OCF_RESKEY_<name>, the name unchanged (OCF names are
// case-sensitive). A call's parameters are taken over the ones the resource
// was made with.
//
// Verbs: Open and Close do nothing (ok). Online runs, the first time only,
// `meta-data` (kept for the object's life) and checks that every parameter
// the agent marks required is given; then `validate-all` until it succeeds
// once for this object (exit 3, unimplemented, counts as success); then
// `start`. LooksAlive = `monitor` with OCF_CHECK_LEVEL=0; IsAlive = `monitor`
// with OCF_CHECK_LEVEL=<isAliveDepth>. Offline = `stop`. Terminate kills the
// call in flight (its process group, as ProgramRunner::supersede()), then
// runs `stop`; an Online it interrupts starts no further step and ends with
// detail "<action>: superseded by terminate" (or "superseded by terminate"
// between steps). The steps of one call share its timeout: the first runs with
// all of it, each later one with what is left.
//
// Environment of every action: ocf_base_environment() (PATH, OCF_ROOT,
// OCF_FUNCTIONS_DIR, OCF_RA_VERSION_MAJOR=1, OCF_RA_VERSION_MINOR=1,
// OCF_RESOURCE_PROVIDER, OCF_RESOURCE_TYPE, OCF_RESKEY_CRM_meta_name=<action>,
// OCF_RESKEY_CRM_meta_timeout=<ms the action may run>, HA_RSCTMP=
// /run/resource-agents, created if missing) plus
//   OCF_RESOURCE_INSTANCE=<resource name>,
//   OCF_RESKEY_CRM_meta_interval=<CallContext::interval in ms> for monitor
//     (0, a probe to ocf_is_probe(), when the check does not recur), 0 for
//     every other action,
//   OCF_RESKEY_CRM_meta_on_node=<node>,
//   OCF_CHECK_LEVEL=<depth> (monitor only),
//   OCF_RESKEY_<name>=<value> per parameter,
//   CLUSWEB_GROUP, CLUSWEB_NODE, CLUSWEB_FENCING_TOKEN.
// Output: stdout and stderr lines go to the log sink and CallResult::output
// (ProgramRunner); the last "ocf-exit-reason:" line, if any, ends the detail.
//
// Results: ocf_exit_result() maps the exit code (Pacemaker's mapping);
// a timeout, a kill by a signal or a superseded call is a soft failure (a
// timeout also sets timed_out). A missing or non-executable agent is a hard
// failure naming the path; a missing required parameter, a bad isAliveDepth
// or a parameter name that cannot be an environment variable is fatal.
//
// Threading: as ScriptResource: on the thread of the ChildReaper's
// io_context; the resource must outlive its calls, and destroying it SIGKILLs
// the process group of a call still running.
class OcfResource final : public Resource {
 public:
  using LogSink = ProgramRunner::LogSink;

  static constexpr std::string_view kAgentParameter = "agent";
  static constexpr std::string_view kRootParameter = "ocfRoot";
  static constexpr std::string_view kIsAliveDepthParameter = "isAliveDepth";
  static constexpr int kDefaultIsAliveDepth = 10;

  // `parameters`: the configured ones (ResourceDeps::parameters), under each
  // call's. `log_sink` (may be empty) gets every output line.
  OcfResource(OcfAgent agent, std::map<std::string, std::string> parameters, ChildReaper& reaper,
              boost::asio::any_io_executor executor, LogSink log_sink = {});

  boost::asio::awaitable<CallResult> call(cluster::Verb verb, const CallContext& context) override;

 private:
  struct Instance;  // what one call passes to the agent

  bool superseded(const Instance& instance) const;
  boost::asio::awaitable<CallResult> online(Instance& instance);
  boost::asio::awaitable<CallResult> run_action(Instance& instance, std::string_view action,
                                                std::optional<int> check_level,
                                                ProgramRunner::Tracking tracking);

  OcfAgent agent_;
  std::map<std::string, std::string> parameters_;
  ProgramRunner runner_;
  std::optional<OcfMetadata> metadata_;  // read by the first Online
  bool validated_ = false;               // validate-all succeeded once
  uint64_t terminations_ = 0;            // Terminate calls begun so far
};

// The result of `action` exiting with `code`, as Pacemaker treats it:
//   0 success: ok;
//   1 generic error: soft;
//   2 invalid arguments, 3 unimplemented, 4 insufficient privileges,
//     5 not installed: hard;
//   6 not configured: fatal;
//   7 not running: ok for stop (stopping a stopped resource succeeds), soft
//     failure otherwise (for monitor: "not running", the boolean false);
//   8 running promoted: ok for monitor (running), soft otherwise;
//   9 failed promoted: soft;
//   190 degraded, 191 degraded promoted: ok for monitor, soft otherwise;
//   3 from validate-all: ok (the agent has no validation);
//   anything else: soft.
// `detail` names the code when it is not 0 ("monitor: exited 7 (not
// running)"), ok or not.
CallResult ocf_exit_result(std::string_view action, int code);

}  // namespace clusweb::resources
