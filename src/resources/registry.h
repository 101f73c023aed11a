#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/process.h"
#include "base/result.h"
#include "resources/resource.h"
#include "resources/script_resource.h"

namespace clusweb::resources {

// What the resource types need from the agent to be made. Pointers must
// outlive the resources made with them.
struct ResourceDeps {
  // The resource's configured parameters: `script` takes its `path` from
  // them, `ocf` its `agent` and `ocfRoot`; for `website` and `ocf` they are
  // defaults under every call's (the agent adds `adminSocket` for `website`);
  // `ip` and `mount` read only the call's.
  std::map<std::string, std::string> parameters;
  ChildReaper* reaper = nullptr;     // script, ocf: reaps their children
  ScriptResource::LogSink log_sink;  // script, ocf: each output line, as it arrives
  const Clock* clock = nullptr;      // website: the clock of the fencing deadlines
};

// The types make_resource() knows, in name order: "ip", "mount", "ocf",
// "script", "website".
const std::vector<std::string_view>& resource_types();

// A resource of `type` running on `executor` (the thread of the agent's
// event loop; for `script` and `ocf`, the executor of the reaper's
// io_context). An
// unknown type, or a dependency the type needs and `deps` lacks, is an Error
// naming it.
Result<std::unique_ptr<Resource>> make_resource(const std::string& type,
                                                boost::asio::any_io_executor executor,
                                                const ResourceDeps& deps);

}  // namespace clusweb::resources
