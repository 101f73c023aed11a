#include "cli/web_admin_commands.h"

#include <fmt/format.h>

#include <CLI/App.hpp>
#include <cstdint>
#include <functional>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "cli/admin_client.h"
#include "cli/command_support.h"

namespace clusweb::cli {
namespace {

constexpr ServiceEndpoint kEndpoint{kWebService, "web.sock", "runtime directory of the web service",
                                    "admin socket of the web service"};

// ---- helpers of these commands alone (the shared ones are in command_support.h) ----

std::string yes_no_of(const Json& object, const char* key) {
  const Json* value = member(object, key);
  if (value == nullptr || !value->is_boolean()) return std::string(kAbsent);
  return value->get<bool>() ? "yes" : "no";
}

// A site's serving permit: "-" when the reply does not say, "none" when the site never had one
// (null), else the time it has left.
std::string permit_of(const Json& site) {
  const Json* value = member(site, "permitRemainingMs");
  if (value == nullptr) return std::string(kAbsent);
  if (value->is_null()) return "none";
  if (!value->is_number_integer()) return std::string(kAbsent);
  const auto remaining = value->get<std::int64_t>();
  if (remaining <= 0) return "expired or revoked";
  return fmt::format("{} ms left", remaining);
}

std::string plural(std::string_view count, std::string_view noun) {
  return fmt::format("{} {}{}", count, noun, count == "1" ? "" : "s");
}

std::vector<std::string> or_none(std::vector<std::string> values) {
  if (values.empty()) values.emplace_back("none");
  return values;
}

// "13:00:01.123" from "2026-11-25T13:00:01.123Z": events are read as they happen, so the
// time of day is what matters.
std::string time_of_day(const std::string& timestamp) {
  std::size_t t = timestamp.find('T');
  if (t == std::string::npos) return timestamp;
  std::string time = timestamp.substr(t + 1);
  if (!time.empty() && time.back() == 'Z') time.pop_back();
  return time;
}

// ---- running a command ----

using Formatter = std::function<Result<std::string>(std::string_view)>;

// The JSON output is the service's JSON whatever its shape, pretty-printed.
int print_reply(const Result<AdminResponse>& response, OutputFormat output, const Formatter& format,
                std::ostream& out, std::ostream& err) {
  if (int code = check_answer(response, kWebService, err); code != kExitOk) return code;
  return print_text(
      output == OutputFormat::kJson ? format_pretty_json(response->body) : format(response->body),
      out, err);
}

Formatter state_line(std::string_view kind) {
  return [kind](std::string_view json) { return format_state_line(kind, json); };
}

// ---- the command line ----

struct LeafOptions {
  ServiceFlags flags;
  std::string name;
};

struct Sink {
  int* exit_code;
  std::ostream* out;
  std::ostream* err;
};

void add_leaf(CLI::App& parent, const std::string& name, const std::string& description,
              AdminCommand::Kind kind, const char* name_help, const Sink& sink) {
  auto options = std::make_shared<LeafOptions>();
  CLI::App* leaf = parent.add_subcommand(name, description);
  if (name_help != nullptr) leaf->add_option("name", options->name, name_help)->required();
  add_service_flags(*leaf, kEndpoint, options->flags);
  leaf->callback([leaf, options, kind, sink] {
    AdminClient client = service_client(*leaf, kEndpoint, options->flags);
    AdminCommand command{kind, options->name, output_format(options->flags)};
    *sink.exit_code = run_admin_command(command, client, *sink.out, *sink.err);
  });
}

}  // namespace

void add_web_admin_commands(CLI::App& root, CLI::App& web, int& exit_code) {
  add_web_admin_commands(root, web, exit_code, std::cout, std::cerr);
}

void add_web_admin_commands(CLI::App& root, CLI::App& web, int& exit_code, std::ostream& out,
                            std::ostream& err) {
  using Kind = AdminCommand::Kind;
  const Sink sink{&exit_code, &out, &err};

  CLI::App* site = root.add_subcommand("site", "Show and control the sites of the web service");
  site->require_subcommand(1);
  add_leaf(*site, "list", "List the sites with their state and traffic", Kind::kSiteList, nullptr,
           sink);
  add_leaf(*site, "show", "Show one site in detail", Kind::kSiteShow, "the site", sink);
  add_leaf(*site, "start", "Start a site (a clustered site needs its serving permit)",
           Kind::kSiteStart, "the site", sink);
  add_leaf(*site, "stop", "Stop a site", Kind::kSiteStop, "the site", sink);

  CLI::App* pool =
      root.add_subcommand("pool", "Show and control the application pools of the web service");
  pool->require_subcommand(1);
  add_leaf(*pool, "list", "List the application pools with their state and workers",
           Kind::kPoolList, nullptr, sink);
  add_leaf(*pool, "show", "Show one application pool and its workers", Kind::kPoolShow,
           "the application pool", sink);
  add_leaf(*pool, "start", "Start an application pool", Kind::kPoolStart, "the application pool",
           sink);
  add_leaf(*pool, "stop", "Stop an application pool", Kind::kPoolStop, "the application pool",
           sink);
  add_leaf(*pool, "recycle", "Replace the workers of an application pool with new ones",
           Kind::kPoolRecycle, "the application pool", sink);

  add_leaf(web, "reload", "Reload the configuration of the running web service", Kind::kReload,
           nullptr, sink);
  add_leaf(web, "events", "Follow the events of the web service until interrupted", Kind::kEvents,
           nullptr, sink);
}

std::string admin_socket_path(std::string_view socket_flag, std::string_view run_dir_flag,
                              const char* run_dir_env) {
  return service_socket_path(socket_flag, run_dir_flag, run_dir_env, kEndpoint.socket_file);
}

int run_admin_command(const AdminCommand& command, AdminClient& client, std::ostream& out,
                      std::ostream& err) {
  using Kind = AdminCommand::Kind;
  const OutputFormat output = command.output;
  switch (command.kind) {
    case Kind::kSiteList:
      return print_reply(client.get("/v1/sites"), output, format_site_table, out, err);
    case Kind::kSiteShow:
      return print_reply(client.get(api_target("sites", command.name)), output, format_site_details,
                         out, err);
    case Kind::kSiteStart:
      return print_reply(client.post(api_target("sites", command.name, "start")), output,
                         state_line("site"), out, err);
    case Kind::kSiteStop:
      return print_reply(client.post(api_target("sites", command.name, "stop")), output,
                         state_line("site"), out, err);
    case Kind::kPoolList:
      return print_reply(client.get("/v1/pools"), output, format_pool_table, out, err);
    case Kind::kPoolShow:
      return print_reply(client.get(api_target("pools", command.name)), output, format_pool_details,
                         out, err);
    case Kind::kPoolStart:
      return print_reply(client.post(api_target("pools", command.name, "start")), output,
                         state_line("pool"), out, err);
    case Kind::kPoolStop:
      return print_reply(client.post(api_target("pools", command.name, "stop")), output,
                         state_line("pool"), out, err);
    case Kind::kPoolRecycle:
      return print_reply(client.post(api_target("pools", command.name, "recycle")), output,
                         state_line("pool"), out, err);
    case Kind::kReload:
      return print_reply(client.post("/v1/reload"), output, format_reload, out, err);
    case Kind::kEvents:
      return follow_stream(client, "/v1/events", output, format_event, out, err);
  }
  report(err, "unknown admin command");
  return kExitRefused;
}

Result<std::string> format_site_table(std::string_view json) {
  Result<Json> doc = parse_object(json, kWebService);
  if (!doc.ok()) return doc.error();
  std::vector<const Json*> sites = elements_of(*doc, "sites");
  if (sites.empty()) return std::string("no sites\n");
  std::vector<Row> rows{{"NAME", "STATE", "BINDINGS", "REQUESTS", "CONNECTIONS"}};
  const Json none = Json::object();
  for (const Json* site : sites) {
    const Json& counters = object_or(*site, "counters", none);
    std::string bindings = join(strings_of(*site, "bindings"), ",");
    rows.push_back({text_of(*site, "name"), text_of(*site, "state"),
                    bindings.empty() ? std::string(kAbsent) : bindings,
                    count_of(counters, "requests"), count_of(counters, "activeConnections")});
  }
  return render_table(rows);
}

Result<std::string> format_pool_table(std::string_view json) {
  Result<Json> doc = parse_object(json, kWebService);
  if (!doc.ok()) return doc.error();
  std::vector<const Json*> pools = elements_of(*doc, "pools");
  if (pools.empty()) return std::string("no pools\n");
  std::vector<Row> rows{{"NAME", "STATE", "REASON", "WORKERS", "FAILURES"}};
  const Json none = Json::object();
  for (const Json* pool : pools) {
    int ready = 0;
    for (const Json* worker : elements_of(*pool, "workers")) {
      const Json* is_ready = member(*worker, "ready");
      if (is_ready != nullptr && is_ready->is_boolean() && is_ready->get<bool>()) ++ready;
    }
    rows.push_back({text_of(*pool, "name"), text_of(*pool, "state"), text_of(*pool, "reason"),
                    fmt::format("{}/{}", ready, count_of(*pool, "processes")),
                    count_of(object_or(*pool, "counters", none), "workerFailures")});
  }
  return render_table(rows);
}

Result<std::string> format_site_details(std::string_view json) {
  Result<Json> doc = parse_object(json, kWebService);
  if (!doc.ok()) return doc.error();
  const Json& site = *doc;
  const Json none = Json::object();
  const Json& counters = object_or(site, "counters", none);
  const Json& responses = object_or(counters, "responses", none);

  std::vector<std::string> applications;
  for (const Json* application : elements_of(site, "applications")) {
    std::string pool = text_of(*application, "pool", "");
    applications.push_back(text_of(*application, "path") +
                           (pool.empty() ? " (static)" : " -> pool " + pool));
  }
  std::vector<std::string> classes;
  for (const char* status_class : {"1xx", "2xx", "3xx", "4xx", "5xx"}) {
    classes.push_back(fmt::format("{} {}", status_class, count_of(responses, status_class)));
  }

  return render_fields({
      {"name", {text_of(site, "name")}},
      {"state", {text_of(site, "state")}},
      {"reason", {text_of(site, "reason")}},
      {"auto start", {yes_no_of(site, "autoStart")}},
      {"clustered", {yes_no_of(site, "clustered")}},
      {"permit", {permit_of(site)}},
      {"root", {text_of(site, "root")}},
      {"bindings", or_none(strings_of(site, "bindings"))},
      {"applications", or_none(std::move(applications))},
      {"requests", {count_of(counters, "requests")}},
      {"responses", {join(classes, ", ")}},
      {"bytes sent", {count_of(counters, "bytesSent")}},
      {"connections", {count_of(counters, "activeConnections")}},
  });
}

Result<std::string> format_pool_details(std::string_view json) {
  Result<Json> doc = parse_object(json, kWebService);
  if (!doc.ok()) return doc.error();
  const Json& pool = *doc;
  const Json none = Json::object();
  const Json& counters = object_or(pool, "counters", none);

  std::vector<Row> workers{{"SLOT", "PID", "READY", "GENERATION", "STARTED", "ENDPOINT"}};
  for (const Json* worker : elements_of(pool, "workers")) {
    workers.push_back({count_of(*worker, "slot"), count_of(*worker, "pid"),
                       yes_no_of(*worker, "ready"), count_of(*worker, "generation"),
                       text_of(*worker, "startedAt"), text_of(*worker, "endpoint")});
  }
  const bool has_workers = workers.size() > 1;

  std::string text = render_fields({
      {"name", {text_of(pool, "name")}},
      {"state", {text_of(pool, "state")}},
      {"reason", {text_of(pool, "reason")}},
      {"processes", {count_of(pool, "processes")}},
      {"requests", {count_of(counters, "requests")}},
      {"queue full", {count_of(counters, "queueFull")}},
      {"worker starts", {count_of(counters, "workerStarts")}},
      {"worker failures", {count_of(counters, "workerFailures")}},
      {"workers", has_workers ? std::vector<std::string>{} : or_none({})},
  });
  if (has_workers) text += render_table(workers, "  ");
  return text;
}

Result<std::string> format_state_line(std::string_view kind, std::string_view json) {
  Result<Json> doc = parse_object(json, kWebService);
  if (!doc.ok()) return doc.error();
  std::string line =
      fmt::format("{} \"{}\" is {}", kind, text_of(*doc, "name", ""), text_of(*doc, "state"));
  std::string reason = text_of(*doc, "reason", "");
  if (!reason.empty()) line += fmt::format(" ({})", reason);
  return line + '\n';
}

Result<std::string> format_reload(std::string_view json) {
  Result<Json> doc = parse_object(json, kWebService);
  if (!doc.ok()) return doc.error();
  return fmt::format("reloaded: generation {}, {}, {}\n", count_of(*doc, "generation"),
                     plural(count_of(*doc, "sites"), "site"),
                     plural(count_of(*doc, "pools"), "pool"));
}

std::string format_event(std::string_view line) {
  Result<Json> doc = parse_object(line, kWebService);
  if (!doc.ok()) return std::string(line) + '\n';
  const Json& event = *doc;

  std::vector<std::string> parts;
  for (std::string part : {time_of_day(text_of(event, "time", "")), text_of(event, "type", ""),
                           text_of(event, "name", ""), text_of(event, "state", "")}) {
    if (!part.empty()) parts.push_back(std::move(part));
  }
  std::string reason = text_of(event, "reason", "");
  if (!reason.empty()) parts.push_back("(" + reason + ")");
  std::string text = join(parts, " ");
  std::string message = text_of(event, "message", "");
  if (!message.empty()) text += (text.empty() ? "" : ": ") + message;
  return text + '\n';
}

Result<std::string> format_pretty_json(std::string_view json) {
  Result<Json> doc = parse_json(json, kWebService);
  if (!doc.ok()) return doc.error();
  return pretty_json(*doc);
}

}  // namespace clusweb::cli
