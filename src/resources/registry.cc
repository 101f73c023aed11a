#include "resources/registry.h"

#include <fmt/format.h>

#include "resources/ip_resource.h"
#include "resources/mount_resource.h"
#include "resources/ocf_policy.h"
#include "resources/ocf_resource.h"
#include "resources/website_resource.h"

namespace clusweb::resources {

const std::vector<std::string_view>& resource_types() {
  static const std::vector<std::string_view> kTypes{"ip", "mount", "ocf", "script", "website"};
  return kTypes;
}

Result<std::unique_ptr<Resource>> make_resource(const std::string& type,
                                                boost::asio::any_io_executor executor,
                                                const ResourceDeps& deps) {
  if (type == "script") {
    if (deps.reaper == nullptr) return make_error("resource type script needs a child reaper");
    const auto path = deps.parameters.find("path");
    if (path == deps.parameters.end() || path->second.empty()) {
      return make_error("resource type script needs parameter path");
    }
    return std::unique_ptr<Resource>(std::make_unique<ScriptResource>(
        path->second, *deps.reaper, std::move(executor), deps.log_sink));
  }
  if (type == "ocf") {
    if (deps.reaper == nullptr) return make_error("resource type ocf needs a child reaper");
    Result<OcfAgent> parsed = ocf_agent_of(deps.parameters);
    if (!parsed.ok()) return parsed.error();
    return std::unique_ptr<Resource>(std::make_unique<OcfResource>(
        std::move(*parsed), deps.parameters, *deps.reaper, std::move(executor), deps.log_sink));
  }
  if (type == "ip") {
    return std::unique_ptr<Resource>(std::make_unique<IpResource>(std::move(executor)));
  }
  if (type == "mount") {
    return std::unique_ptr<Resource>(std::make_unique<MountResource>(std::move(executor)));
  }
  if (type == "website") {
    if (deps.clock == nullptr) return make_error("resource type website needs a clock");
    return std::unique_ptr<Resource>(
        std::make_unique<WebsiteResource>(std::move(executor), *deps.clock, deps.parameters));
  }
  return make_error("unknown resource type \"{}\" (known: {})", type,
                    fmt::join(resource_types(), ", "));
}

}  // namespace clusweb::resources
