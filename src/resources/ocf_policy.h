#pragma once

// The policy an `ocf` resource starts from: its agent's advertised operation timeouts and
// intervals, read from the agent's meta-data when a manifest or `clusweb resource add` brings
// the resource in (as `pcs resource create` copies them into the resource's operations).
// Whatever the manifest's `policy` sets wins over these.

#include <chrono>
#include <functional>
#include <map>
#include <string>

#include "base/result.h"
#include "cluster/model.h"
#include "resources/ocf_agent.h"

namespace clusweb::resources {

// `base` with what `metadata` advertises (actions with a role, i.e. promotable ones, and
// intervals of 0 are passed over):
//   pendingTimeout     the longer of stop's timeout and start's plus validate-all's and
//                      meta-data's (the first Online runs all three within one timeout);
//   probeTimeout       the longest timeout of a monitor;
//   looksAliveInterval the interval of the monitor at depth 0 (or without a depth);
//   isAliveInterval    the interval of the shortest deeper monitor; without one, at least
//                      looksAliveInterval (a deep check never runs more often than a light
//                      one).
cluster::ResourcePolicy ocf_policy(const OcfMetadata& metadata, cluster::ResourcePolicy base = {});

// The agent an `ocf` resource's parameters name: `agent` (provider:type) under `ocfRoot`
// (default /usr/lib/ocf).
Result<OcfAgent> ocf_agent_of(const std::map<std::string, std::string>& parameters);

// Runs `<agent> meta-data` and parses it, blocking for at most `timeout` (then the agent's
// process group is killed). For the command line and start-up, never an event loop. Errors
// name the agent's path.
Result<OcfMetadata> read_ocf_metadata_now(const OcfAgent& agent, std::chrono::milliseconds timeout);

// The policy `resource` starts from: ocf_policy() of its agent's meta-data for an `ocf`
// resource, the built-in defaults for every other type. When the meta-data cannot be had
// here, `warn` hears why and the built-in defaults stay.
cluster::ResourcePolicy starting_policy(const cluster::ResourceSpec& resource,
                                        const std::function<void(const std::string&)>& warn);

}  // namespace clusweb::resources
