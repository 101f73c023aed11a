#include "resources/ocf_policy.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>

#include "base/process.h"
#include "base/unique_fd.h"
#include "resources/ocf_resource.h"

namespace clusweb::resources {

namespace {

using std::chrono::milliseconds;

// Meta-data documents are a few kilobytes; anything past this is not one.
constexpr off_t kMaxMetadataBytes = off_t{4} * 1024 * 1024;

void keep_longest(std::optional<milliseconds>& longest, std::optional<milliseconds> candidate) {
  if (candidate && (!longest || *candidate > *longest)) longest = candidate;
}

// Waits for `pid` to exit, at most until `deadline`; its raw wait status, or nullopt when it
// did not exit in time (it still runs) or another reaper took it (ECHILD).
std::optional<int> wait_until(pid_t pid, std::chrono::steady_clock::time_point deadline,
                              bool& reaped_elsewhere) {
  UniqueFd exited(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  for (;;) {
    int status = 0;
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) return status;
    if (done < 0 && errno == ECHILD) {
      reaped_elsewhere = true;
      return std::nullopt;
    }
    if (done < 0 && errno != EINTR) return std::nullopt;
    const auto left = std::chrono::ceil<milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    if (!exited) return std::nullopt;  // no pidfd (old kernel): nothing to wait on
    pollfd watch{exited.get(), POLLIN, 0};
    (void)::poll(&watch, 1, static_cast<int>(left.count()));
  }
}

}  // namespace

cluster::ResourcePolicy ocf_policy(const OcfMetadata& metadata, cluster::ResourcePolicy base) {
  std::optional<milliseconds> start;
  std::optional<milliseconds> stop;
  std::optional<milliseconds> validate;
  std::optional<milliseconds> meta_data;
  std::optional<milliseconds> monitor_timeout;
  std::optional<milliseconds> light_interval;
  std::optional<milliseconds> deep_interval;
  auto positive = [](std::optional<milliseconds> value) {
    return value && value->count() > 0 ? value : std::nullopt;
  };
  for (const OcfAction& action : metadata.actions) {
    if (!action.role.empty()) continue;
    const std::optional<milliseconds> timeout = positive(action.timeout);
    if (action.name == "start") keep_longest(start, timeout);
    if (action.name == "stop") keep_longest(stop, timeout);
    if (action.name == "validate-all") keep_longest(validate, timeout);
    if (action.name == "meta-data") keep_longest(meta_data, timeout);
    if (action.name != "monitor") continue;
    keep_longest(monitor_timeout, timeout);
    const std::optional<milliseconds> interval = positive(action.interval);
    if (!interval) continue;
    std::optional<milliseconds>& slot =
        action.depth.value_or(0) == 0 ? light_interval : deep_interval;
    if (!slot || *interval < *slot) slot = interval;
  }
  if (start || stop) {
    const milliseconds first_online = start.value_or(base.pending_timeout) +
                                      validate.value_or(milliseconds(0)) +
                                      meta_data.value_or(milliseconds(0));
    base.pending_timeout = std::max(first_online, stop.value_or(milliseconds(0)));
  }
  if (monitor_timeout) base.probe_timeout = *monitor_timeout;
  if (light_interval) base.looks_alive_interval = *light_interval;
  if (deep_interval) {
    base.is_alive_interval = *deep_interval;
  } else {
    base.is_alive_interval = std::max(base.is_alive_interval, base.looks_alive_interval);
  }
  return base;
}

Result<OcfAgent> ocf_agent_of(const std::map<std::string, std::string>& parameters) {
  const auto agent = parameters.find(std::string(OcfResource::kAgentParameter));
  if (agent == parameters.end() || agent->second.empty()) {
    return make_error("resource type ocf needs parameter agent (provider:type)");
  }
  const auto root = parameters.find(std::string(OcfResource::kRootParameter));
  return parse_ocf_agent(
      agent->second, root == parameters.end() ? kDefaultOcfRoot : std::string_view(root->second));
}

Result<OcfMetadata> read_ocf_metadata_now(const OcfAgent& agent, milliseconds timeout) {
  const std::string path = agent.path();
  if (::access(path.c_str(), X_OK) != 0) {
    return make_error("ocf agent {}: not installed here (not an executable file)", path);
  }
  UniqueFd output(::memfd_create("ocf-meta-data", MFD_CLOEXEC));
  if (!output) return errno_error("memfd_create", path);
  UniqueFd quiet(::open("/dev/null", O_WRONLY | O_CLOEXEC));
  ensure_ocf_state_directory();

  SpawnOptions options;
  options.argv = {path, "meta-data"};
  options.env = ocf_base_environment(agent, "meta-data", timeout);
  options.stdout_fd = output.get();
  options.stderr_fd = quiet ? quiet.get() : -1;
  options.parent_death_signal = SIGKILL;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Result<pid_t> pid = spawn(options);
  if (!pid.ok()) return pid.error();
  bool reaped_elsewhere = false;
  std::optional<int> status = wait_until(*pid, deadline, reaped_elsewhere);
  if (!status && !reaped_elsewhere) {
    signal_group(*pid, SIGKILL);
    (void)::waitpid(*pid, nullptr, 0);
    return make_error("ocf agent {}: meta-data did not finish within {} ms", path, timeout.count());
  }
  if (status && !(WIFEXITED(*status) && WEXITSTATUS(*status) == kOcfSuccess)) {
    return make_error("ocf agent {}: meta-data {}", path, describe_wait_status(*status));
  }
  const off_t size = ::lseek(output.get(), 0, SEEK_END);
  if (size < 0) return errno_error("lseek", path);
  if (size > kMaxMetadataBytes) {
    return make_error("ocf agent {}: meta-data printed more than {} bytes", path,
                      kMaxMetadataBytes);
  }
  std::string text(static_cast<std::size_t>(size), '\0');
  if (::pread(output.get(), text.data(), text.size(), 0) != size) {
    return errno_error("pread", path);
  }
  Result<OcfMetadata> metadata = parse_ocf_metadata(text);
  if (!metadata.ok()) return make_error("ocf agent {}: {}", path, metadata.error().message);
  return metadata;
}

cluster::ResourcePolicy starting_policy(const cluster::ResourceSpec& resource,
                                        const std::function<void(const std::string&)>& warn) {
  if (resource.type != "ocf") return {};
  Result<OcfAgent> agent = ocf_agent_of(resource.parameters);
  if (!agent.ok()) return {};  // the parameter check reports it
  Result<OcfMetadata> metadata = read_ocf_metadata_now(*agent, std::chrono::seconds(10));
  if (!metadata.ok()) {
    if (warn) {
      warn(
          fmt::format("resource {}: {}; it keeps the built-in timeouts and intervals unless its "
                      "policy sets them",
                      resource.name, metadata.error().describe()));
    }
    return {};
  }
  return ocf_policy(*metadata);
}

}  // namespace clusweb::resources
