#include "resources/ocf_resource.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <utility>
#include <vector>

#include "base/log.h"

namespace clusweb::resources {

using cluster::FailureClass;
using cluster::Verb;

namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::string_view kExitReasonPrefix = "ocf-exit-reason:";

bool is_own_parameter(std::string_view name) {
  return name == OcfResource::kAgentParameter || name == OcfResource::kRootParameter ||
         name == OcfResource::kIsAliveDepthParameter;
}

CallResult failure(FailureClass failure_class, std::string detail) {
  CallResult result;
  result.failure = failure_class;
  result.detail = std::move(detail);
  return result;
}

// What ocf_exit_reason() printed last, without its prefix; "" when nothing.
std::string_view exit_reason(const std::vector<std::string>& output) {
  for (auto line = output.rbegin(); line != output.rend(); ++line) {
    if (line->starts_with(kExitReasonPrefix)) {
      return std::string_view(*line).substr(kExitReasonPrefix.size());
    }
  }
  return {};
}

// Output of the steps of one call, the newest kMaxOutputLines kept.
void append_output(std::vector<std::string>& to, std::vector<std::string> from) {
  for (std::string& line : from) to.push_back(std::move(line));
  if (to.size() > ProgramRunner::kMaxOutputLines) {
    to.erase(to.begin(), to.end() - static_cast<std::ptrdiff_t>(ProgramRunner::kMaxOutputLines));
  }
}

}  // namespace

// Everything a call gives its actions, copied from the CallContext before the
// first suspension.
struct OcfResource::Instance {
  std::string resource;
  std::string group;
  std::string node;
  int64_t fencing_token = 0;
  milliseconds interval{0};  // of a recurring monitor; 0 = a probe or not a monitor
  std::map<std::string, std::string> reskeys;  // OCF_RESKEY_<name> without the prefix
  SteadyClock::time_point deadline;
  milliseconds timeout{0};
  uint64_t terminations = 0;  // OcfResource::terminations_ when the call began
  bool first_step = true;

  // What the next step may run for: the whole timeout for the first (so a
  // one-step call reports exactly its timeout to the agent), what is left of
  // it for the steps after.
  milliseconds next_budget() {
    if (std::exchange(first_step, false)) return timeout;
    return std::chrono::ceil<milliseconds>(deadline - SteadyClock::now());
  }
};

CallResult ocf_exit_result(std::string_view action, int code) {
  CallResult result;
  if (code == kOcfSuccess) {
    result.ok = true;
    return result;
  }
  result.detail = fmt::format("{}: exited {} ({})", action, code, ocf_exit_code_name(code));
  const bool monitor = action == "monitor";
  switch (code) {
    case kOcfErrGeneric:
    case kOcfFailedPromoted:
      result.failure = FailureClass::kSoft;
      break;
    case kOcfErrUnimplemented:
      if (action == "validate-all") {
        result.ok = true;
      } else {
        result.failure = FailureClass::kHard;
      }
      break;
    case kOcfErrArgs:
    case kOcfErrPerm:
    case kOcfErrInstalled:
      result.failure = FailureClass::kHard;
      break;
    case kOcfErrConfigured:
      result.failure = FailureClass::kFatal;
      break;
    case kOcfNotRunning:
      result.ok = action == "stop";
      result.failure = FailureClass::kSoft;
      break;
    case kOcfRunningPromoted:
    case kOcfDegraded:
    case kOcfDegradedPromoted:
      result.ok = monitor;
      result.failure = FailureClass::kSoft;
      break;
    default:
      result.failure = FailureClass::kSoft;
      break;
  }
  return result;
}

OcfResource::OcfResource(OcfAgent agent, std::map<std::string, std::string> parameters,
                         ChildReaper& reaper, boost::asio::any_io_executor executor,
                         LogSink log_sink)
    : agent_(std::move(agent)),
      parameters_(std::move(parameters)),
      runner_(reaper, std::move(executor), std::move(log_sink)) {}

boost::asio::awaitable<CallResult> OcfResource::call(Verb verb, const CallContext& context) {
  if (verb == Verb::kOpen || verb == Verb::kClose) {
    CallResult nothing;
    nothing.ok = true;
    co_return nothing;
  }

  // Everything from `context` is copied before the first suspension below.
  Instance instance;
  instance.resource = context.resource;
  instance.group = context.group;
  instance.node = context.node;
  instance.interval = context.interval;
  instance.fencing_token = context.fencing_token;
  instance.timeout = context.timeout;
  instance.deadline = SteadyClock::now() + context.timeout;
  std::map<std::string, std::string> parameters = parameters_;
  for (const auto& [name, value] : context.parameters) parameters[name] = value;

  if (verb == Verb::kTerminate) {
    ++terminations_;
    co_await runner_.supersede(instance.resource);
  }
  instance.terminations = terminations_;

  for (const auto& [name, value] : parameters) {
    if (is_own_parameter(name)) continue;
    // Any name works in an environment except these; the agent's own shell
    // reads only [A-Za-z0-9_] names, which is the agent's concern.
    if (name.empty() || name.find_first_of(std::string_view("=\0", 2)) != std::string::npos) {
      co_return failure(
          FailureClass::kFatal,
          fmt::format("parameter name \"{}\" cannot be passed to an ocf agent", name));
    }
    instance.reskeys[name] = value;
  }

  switch (verb) {
    case Verb::kOnline:
      co_return co_await online(instance);
    case Verb::kLooksAlive:
      co_return co_await run_action(instance, "monitor", 0, ProgramRunner::Tracking::kTracked);
    case Verb::kIsAlive: {
      // Read here only, so a bad value fails IsAlive and nothing else.
      int depth = kDefaultIsAliveDepth;
      if (auto found = parameters.find(std::string(kIsAliveDepthParameter));
          found != parameters.end()) {
        const std::string& value = found->second;
        auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), depth);
        if (error != std::errc() || end != value.data() + value.size() || depth < 0) {
          co_return failure(FailureClass::kFatal,
                            fmt::format("isAliveDepth \"{}\" is not a whole number", value));
        }
      }
      co_return co_await run_action(instance, "monitor", depth, ProgramRunner::Tracking::kTracked);
    }
    case Verb::kOffline:
      co_return co_await run_action(instance, "stop", std::nullopt,
                                    ProgramRunner::Tracking::kTracked);
    case Verb::kTerminate:
      co_return co_await run_action(instance, "stop", std::nullopt,
                                    ProgramRunner::Tracking::kUntracked);
    case Verb::kOpen:
    case Verb::kClose:
      break;  // answered above, before anything was read
  }
  CallResult nothing;
  nothing.ok = true;
  co_return nothing;
}

// A Terminate that came while a step ran kills that step, but the step may
// have ended by itself just before; either way, no later step may start once
// a Terminate has begun (its stop would otherwise not be the last action).
bool OcfResource::superseded(const Instance& instance) const {
  return terminations_ != instance.terminations;
}

boost::asio::awaitable<CallResult> OcfResource::online(Instance& instance) {
  if (!metadata_) {
    Result<OcfMetadata> metadata =
        co_await read_ocf_metadata(runner_, agent_, instance.next_budget());
    if (!metadata.ok()) {
      const Error& error = metadata.error();
      CallResult result = ocf_exit_result("meta-data", error.code);
      result.ok = false;
      result.timed_out = error.sys_errno == ETIMEDOUT;
      result.detail = error.describe();
      co_return result;
    }
    metadata_ = std::move(*metadata);
  }
  if (superseded(instance)) co_return failure(FailureClass::kSoft, "superseded by terminate");
  for (const OcfParameter& parameter : metadata_->parameters) {
    if (parameter.required && !instance.reskeys.contains(parameter.name)) {
      co_return failure(FailureClass::kFatal,
                        fmt::format("missing required parameter {} of ocf agent {}:{}",
                                    parameter.name, agent_.provider, agent_.type));
    }
  }

  std::vector<std::string> output;
  if (!validated_) {
    CallResult validated = co_await run_action(instance, "validate-all", std::nullopt,
                                               ProgramRunner::Tracking::kTracked);
    if (!validated.ok) co_return validated;
    validated_ = true;
    output = std::move(validated.output);
    if (superseded(instance)) co_return failure(FailureClass::kSoft, "superseded by terminate");
  }
  CallResult started =
      co_await run_action(instance, "start", std::nullopt, ProgramRunner::Tracking::kTracked);
  append_output(output, std::move(started.output));
  started.output = std::move(output);
  co_return started;
}

boost::asio::awaitable<CallResult> OcfResource::run_action(Instance& instance,
                                                           std::string_view action,
                                                           std::optional<int> check_level,
                                                           ProgramRunner::Tracking tracking) {
  const std::string path = agent_.path();
  if (::access(path.c_str(), X_OK) != 0) {
    co_return failure(FailureClass::kHard, fmt::format("{}: agent not installed: {} ({})", action,
                                                       path, errno_error("access", path).message));
  }
  const milliseconds left = instance.next_budget();
  if (left.count() <= 0) {
    CallResult result = failure(FailureClass::kSoft, fmt::format("{}: no time left of {} ms",
                                                                 action, instance.timeout.count()));
    result.timed_out = true;
    co_return result;
  }
  ensure_ocf_state_directory();

  Program program;
  program.argv = {path, std::string(action)};
  program.env = ocf_base_environment(agent_, action, left);
  program.env["OCF_RESOURCE_INSTANCE"] = instance.resource;
  // Pacemaker's convention: a monitor with interval 0 is a probe ("is it running here at
  // all?"), which some agents answer more leniently; the polls are recurring monitors.
  program.env["OCF_RESKEY_CRM_meta_interval"] =
      std::to_string(action == "monitor" ? instance.interval.count() : 0);
  program.env["OCF_RESKEY_CRM_meta_on_node"] = instance.node;
  if (check_level) program.env["OCF_CHECK_LEVEL"] = std::to_string(*check_level);
  for (const auto& [name, value] : instance.reskeys) program.env["OCF_RESKEY_" + name] = value;
  program.env["CLUSWEB_GROUP"] = instance.group;
  program.env["CLUSWEB_NODE"] = instance.node;
  program.env["CLUSWEB_FENCING_TOKEN"] = std::to_string(instance.fencing_token);
  program.timeout = left;

  ProgramOutcome outcome = co_await runner_.run(std::move(program), tracking);
  CallResult result;
  if (std::optional<int> code = outcome.exit_code()) {
    result = ocf_exit_result(action, *code);
    if ((*code == kOcfDegraded || *code == kOcfDegradedPromoted) && result.ok) {
      logger("resources")
          ->warn("ocf agent reports degraded resource={} agent={}:{} action={} code={}",
                 instance.resource, agent_.provider, agent_.type, action, *code);
    }
  } else if (outcome.spawn_error) {
    // As Pacemaker's executor: an agent it cannot execute is not installed
    // (ENOENT: e.g. its interpreter is missing) or not permitted.
    const int err = outcome.spawn_error->sys_errno;
    result = failure(
        err == ENOENT || err == EACCES || err == EPERM ? FailureClass::kHard : FailureClass::kSoft,
        fmt::format("{}: {}", action, outcome.spawn_error->describe()));
  } else {
    result = failure(FailureClass::kSoft, fmt::format("{}: {}", action, outcome.describe()));
    result.timed_out = outcome.timed_out && !outcome.superseded;
  }
  if (!result.detail.empty()) {
    if (std::string_view reason = exit_reason(outcome.output); !reason.empty()) {
      result.detail += fmt::format(": {}", reason);
    }
  }
  result.output = std::move(outcome.output);
  co_return result;
}

}  // namespace clusweb::resources
