#include "resources/ocf_agent.h"

#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <pugixml.hpp>
#include <utility>

#include "base/duration.h"
#include "base/log.h"
#include "base/unique_fd.h"

namespace clusweb::resources {

namespace {

constexpr std::string_view kPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
// Meta-data documents are a few kilobytes; anything past this is not one.
constexpr std::size_t kMaxMetadataBytes = std::size_t{4} * 1024 * 1024;

Status check_agent_part(std::string_view what, std::string_view part, std::string_view spec) {
  if (part.empty() || part == "." || part == ".." || part.find('/') != std::string_view::npos) {
    return make_error("ocf agent \"{}\": bad {} \"{}\" (want provider:type, e.g. heartbeat:Dummy)",
                      spec, what, part);
  }
  return ok_status();
}

Result<bool> parse_flag(const pugi::xml_attribute& attribute, std::string_view where) {
  if (!attribute) return false;
  std::string_view value = attribute.value();
  if (value == "1" || value == "true" || value == "yes") return true;
  if (value == "0" || value == "false" || value == "no" || value.empty()) return false;
  return make_error("meta-data: {} {}=\"{}\" is not a boolean", where, attribute.name(), value);
}

Result<std::optional<std::chrono::milliseconds>> parse_duration_attribute(
    const pugi::xml_attribute& attribute, std::string_view where) {
  if (!attribute) return std::optional<std::chrono::milliseconds>();
  Result<std::chrono::milliseconds> duration = parse_ocf_duration(attribute.value());
  if (!duration.ok()) {
    return make_error("meta-data: {} {}: {}", where, attribute.name(), duration.error().message);
  }
  return std::optional<std::chrono::milliseconds>(*duration);
}

// Reads what the agent wrote to its stdout memfd.
Result<std::string> read_back(int fd) {
  if (::lseek(fd, 0, SEEK_SET) < 0) return errno_error("lseek", "meta-data output");
  std::string text;
  std::array<char, 8192> buffer{};
  for (;;) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("read", "meta-data output");
    if (n == 0) return text;
    text.append(buffer.data(), static_cast<std::size_t>(n));
    if (text.size() > kMaxMetadataBytes) {
      return make_error("meta-data output larger than {} bytes", kMaxMetadataBytes);
    }
  }
}

Error metadata_error(const OcfAgent& agent, std::string message, int code, int sys_errno = 0) {
  Error error{std::move(message), agent.path(), sys_errno, code};
  return error;
}

}  // namespace

std::string OcfAgent::path() const {
  return fmt::format("{}/resource.d/{}/{}", root, provider, type);
}

Result<OcfAgent> parse_ocf_agent(std::string_view spec, std::string_view root) {
  if (!root.starts_with('/')) return make_error("ocf root is not absolute: {}", root);
  auto colon = spec.find(':');
  if (colon == std::string_view::npos) {
    return make_error("ocf agent \"{}\": want provider:type, e.g. heartbeat:Dummy", spec);
  }
  std::string_view provider = spec.substr(0, colon);
  std::string_view type = spec.substr(colon + 1);
  if (Status ok = check_agent_part("provider", provider, spec); !ok.ok()) return ok.error();
  if (Status ok = check_agent_part("type", type, spec); !ok.ok()) return ok.error();
  OcfAgent agent;
  agent.root = std::string(root);
  while (agent.root.size() > 1 && agent.root.ends_with('/')) agent.root.pop_back();
  agent.provider = std::string(provider);
  agent.type = std::string(type);
  return agent;
}

std::string_view ocf_exit_code_name(int code) {
  switch (code) {
    case kOcfSuccess:
      return "success";
    case kOcfErrGeneric:
      return "generic error";
    case kOcfErrArgs:
      return "invalid arguments";
    case kOcfErrUnimplemented:
      return "unimplemented";
    case kOcfErrPerm:
      return "insufficient privileges";
    case kOcfErrInstalled:
      return "not installed";
    case kOcfErrConfigured:
      return "not configured";
    case kOcfNotRunning:
      return "not running";
    case kOcfRunningPromoted:
      return "running promoted";
    case kOcfFailedPromoted:
      return "failed promoted";
    case kOcfDegraded:
      return "degraded";
    case kOcfDegradedPromoted:
      return "degraded promoted";
    default:
      return "unknown";
  }
}

std::map<std::string, std::string> ocf_base_environment(const OcfAgent& agent,
                                                        std::string_view action,
                                                        std::chrono::milliseconds timeout) {
  return {
      {"PATH", std::string(kPath)},
      {"OCF_ROOT", agent.root},
      {"OCF_FUNCTIONS_DIR", agent.root + "/lib/heartbeat"},
      {"OCF_RA_VERSION_MAJOR", "1"},
      {"OCF_RA_VERSION_MINOR", "1"},
      {"OCF_RESOURCE_PROVIDER", agent.provider},
      {"OCF_RESOURCE_TYPE", agent.type},
      {"OCF_RESKEY_CRM_meta_name", std::string(action)},
      {"OCF_RESKEY_CRM_meta_timeout", std::to_string(timeout.count())},
      {"HA_RSCTMP", std::string(kOcfStateDirectory)},
  };
}

void ensure_ocf_state_directory() {
  const std::string directory(kOcfStateDirectory);
  if (::mkdir(directory.c_str(), 0755) != 0 && errno != EEXIST) {
    logger("resources")
        ->warn("cannot create ocf state directory path={}: {}", directory,
               errno_error("mkdir", directory).describe());
  }
}

const OcfParameter* OcfMetadata::find_parameter(std::string_view parameter) const {
  for (const OcfParameter& candidate : parameters) {
    if (candidate.name == parameter) return &candidate;
  }
  return nullptr;
}

const OcfAction* OcfMetadata::find_action(std::string_view action) const {
  for (const OcfAction& candidate : actions) {
    if (candidate.name == action) return &candidate;
  }
  return nullptr;
}

Result<std::chrono::milliseconds> parse_ocf_duration(std::string_view text) {
  // Pacemaker accepts surrounding blanks and spells units long or short; the
  // number itself is whole.
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) return make_error("\"{}\" is not a duration (want e.g. 20s, 1m, 500ms)", text);
  std::string_view unit = text.substr(digits);
  std::string canonical;
  if (unit.empty() || unit == "s" || unit == "sec") {
    canonical = "s";
  } else if (unit == "ms" || unit == "msec") {
    canonical = "ms";
  } else if (unit == "m" || unit == "min") {
    canonical = "m";
  } else if (unit == "h" || unit == "hr") {
    canonical = "h";
  } else {
    return make_error("\"{}\": unknown unit \"{}\" (want ms, s, m or h)", text, unit);
  }
  Result<std::chrono::milliseconds> duration =
      parse_duration(std::string(text.substr(0, digits)) + canonical);
  if (!duration.ok()) return make_error("\"{}\": {}", text, duration.error().message);
  return *duration;
}

Result<OcfMetadata> parse_ocf_metadata(std::string_view xml) {
  pugi::xml_document document;
  pugi::xml_parse_result parsed = document.load_buffer(xml.data(), xml.size());
  if (!parsed) {
    return make_error("meta-data: not XML: {} at offset {}", parsed.description(), parsed.offset);
  }
  pugi::xml_node root = document.child("resource-agent");
  if (!root) {
    return make_error("meta-data: root element is <{}>, want <resource-agent>",
                      document.document_element().name());
  }

  OcfMetadata metadata;
  metadata.name = root.attribute("name").value();
  metadata.version =
      root.child("version") ? root.child_value("version") : root.attribute("version").value();

  int index = 0;
  for (pugi::xml_node node : root.child("parameters").children("parameter")) {
    ++index;
    OcfParameter parameter;
    parameter.name = node.attribute("name").value();
    if (parameter.name.empty()) return make_error("meta-data: parameter #{} has no name", index);
    const std::string where = fmt::format("parameter \"{}\"", parameter.name);
    Result<bool> required = parse_flag(node.attribute("required"), where);
    if (!required.ok()) return required.error();
    Result<bool> unique = parse_flag(node.attribute("unique"), where);
    if (!unique.ok()) return unique.error();
    parameter.required = *required;
    parameter.unique = *unique;
    if (pugi::xml_node content = node.child("content")) {
      parameter.type = content.attribute("type").value();
      if (pugi::xml_attribute fallback = content.attribute("default")) {
        parameter.default_value = fallback.value();
      }
    }
    metadata.parameters.push_back(std::move(parameter));
  }

  index = 0;
  for (pugi::xml_node node : root.child("actions").children("action")) {
    ++index;
    OcfAction action;
    action.name = node.attribute("name").value();
    if (action.name.empty()) return make_error("meta-data: action #{} has no name", index);
    const std::string where = fmt::format("action \"{}\"", action.name);
    auto timeout = parse_duration_attribute(node.attribute("timeout"), where);
    if (!timeout.ok()) return timeout.error();
    auto interval = parse_duration_attribute(node.attribute("interval"), where);
    if (!interval.ok()) return interval.error();
    action.timeout = *timeout;
    action.interval = *interval;
    if (pugi::xml_attribute depth = node.attribute("depth")) {
      std::string_view text = depth.value();
      int value = 0;
      auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
      if (error != std::errc() || end != text.data() + text.size() || value < 0) {
        return make_error("meta-data: {} depth=\"{}\" is not a whole number", where, text);
      }
      action.depth = value;
    }
    action.role = node.attribute("role").value();
    metadata.actions.push_back(std::move(action));
  }
  return metadata;
}

boost::asio::awaitable<Result<OcfMetadata>> read_ocf_metadata(ProgramRunner& runner, OcfAgent agent,
                                                              std::chrono::milliseconds timeout) {
  const std::string path = agent.path();
  if (::access(path.c_str(), X_OK) != 0) {
    co_return metadata_error(agent, "agent not installed (not an executable file)",
                             kOcfErrInstalled, errno);
  }
  // The document arrives whole in a memfd; stderr (ocf_log) stays lines for
  // the log sink.
  UniqueFd output(::memfd_create("ocf-meta-data", MFD_CLOEXEC));
  if (!output) co_return errno_error("memfd_create", path);
  ensure_ocf_state_directory();

  Program program;
  program.argv = {path, "meta-data"};
  program.env = ocf_base_environment(agent, "meta-data", timeout);
  program.timeout = timeout;
  program.stdout_fd = output.get();
  ProgramOutcome outcome =
      co_await runner.run(std::move(program), ProgramRunner::Tracking::kTracked);
  if (outcome.spawn_error) {
    Error error = *outcome.spawn_error;
    error.code = error.sys_errno == ENOENT ? kOcfErrInstalled : kOcfErrGeneric;
    co_return error;
  }
  std::optional<int> code = outcome.exit_code();
  if (code != kOcfSuccess) {
    std::string what =
        code ? fmt::format("meta-data: exited {} ({})", *code, ocf_exit_code_name(*code))
             : fmt::format("meta-data: {}", outcome.describe());
    co_return metadata_error(agent, std::move(what), code.value_or(kOcfErrGeneric),
                             outcome.timed_out ? ETIMEDOUT : 0);
  }
  Result<std::string> text = read_back(output.get());
  if (!text.ok()) co_return metadata_error(agent, text.error().describe(), kOcfErrGeneric);
  Result<OcfMetadata> metadata = parse_ocf_metadata(*text);
  if (!metadata.ok()) {
    co_return metadata_error(agent, metadata.error().message, kOcfErrInstalled);
  }
  co_return metadata;
}

}  // namespace clusweb::resources
