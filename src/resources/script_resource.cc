#include "resources/script_resource.h"

#include <fmt/format.h>

#include <map>
#include <optional>
#include <utility>

namespace clusweb::resources {

using cluster::Verb;

namespace {

constexpr std::string_view kPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

std::map<std::string, std::string> script_environment(Verb verb, const CallContext& context) {
  std::map<std::string, std::string> env{
      {"PATH", std::string(kPath)},
      {"CLUSWEB_RESOURCE", context.resource},
      {"CLUSWEB_GROUP", context.group},
      {"CLUSWEB_NODE", context.node},
      {"CLUSWEB_FENCING_TOKEN", std::to_string(context.fencing_token)},
      {"CLUSWEB_VERB", std::string(cluster::to_string(verb))},
      {"CLUSWEB_TIMEOUT_MS", std::to_string(context.timeout.count())},
  };
  for (const auto& [name, value] : context.parameters) {
    env[script_parameter_variable(name)] = value;
  }
  return env;
}

}  // namespace

std::string script_parameter_variable(std::string_view name) {
  std::string variable = "CLUSWEB_PARAM_";
  variable.reserve(variable.size() + name.size());
  for (char c : name) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    bool keep = (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    variable.push_back(keep ? c : '_');
  }
  return variable;
}

ScriptResource::ScriptResource(std::string path, ChildReaper& reaper,
                               boost::asio::any_io_executor executor, LogSink log_sink)
    : path_(std::move(path)), runner_(reaper, std::move(executor), std::move(log_sink)) {}

boost::asio::awaitable<CallResult> ScriptResource::call(Verb verb, const CallContext& context) {
  // Everything from `context` is copied before the first suspension below.
  const std::chrono::milliseconds timeout = context.timeout;
  Program program;
  program.argv = {path_, std::string(cluster::to_string(verb))};
  program.env = script_environment(verb, context);
  program.timeout = timeout;

  if (verb == Verb::kTerminate) co_await runner_.supersede(context.resource);

  CallResult result;
  if (timeout.count() <= 0) {
    result.detail = fmt::format("script {}: no timeout given", path_);
    co_return result;
  }
  if (!path_.starts_with('/')) {
    result.detail = fmt::format("script path is not absolute: {}", path_);
    co_return result;
  }

  ProgramOutcome outcome = co_await runner_.run(
      std::move(program), verb == Verb::kTerminate ? ProgramRunner::Tracking::kUntracked
                                                   : ProgramRunner::Tracking::kTracked);
  result.output = std::move(outcome.output);
  std::optional<int> code = outcome.exit_code();
  if (code == 0) {
    result.ok = true;
  } else if ((verb == Verb::kOpen || verb == Verb::kClose) && code == kNotImplemented) {
    result.ok = true;
    result.detail = "not implemented";
  } else {
    result.timed_out = outcome.timed_out && !outcome.superseded;
    result.detail = outcome.describe();
  }
  co_return result;
}

}  // namespace clusweb::resources
