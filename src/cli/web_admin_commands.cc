#include "cli/web_admin_commands.h"

#include <fmt/format.h>

#include <CLI/App.hpp>
#include <CLI/Option.hpp>
#include <CLI/Validators.hpp>
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>
#include <vector>

#include "cli/admin_client.h"

namespace clusweb::cli {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kDefaultRunDir = "/run/clusweb";
constexpr std::string_view kColumnGap = "   ";
constexpr std::string_view kAbsent = "-";

// ---- reading the service's JSON without trusting its shape ----

Result<Json> parse_json(std::string_view text) {
  Json doc = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return make_error("the web service sent a reply that is not JSON");
  return Result<Json>(std::move(doc));
}

Result<Json> parse_object(std::string_view text) {
  Result<Json> doc = parse_json(text);
  if (doc.ok() && !doc->is_object()) {
    return make_error("the web service sent a JSON {} where an object was expected",
                      doc->type_name());
  }
  return doc;
}

const Json* member(const Json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  auto found = object.find(key);
  return found == object.end() ? nullptr : &*found;
}

// The string member `key`, or `fallback` when it is absent, empty or not a string.
std::string text_of(const Json& object, const char* key, std::string_view fallback = kAbsent) {
  const Json* value = member(object, key);
  if (value == nullptr || !value->is_string() || value->get_ref<const std::string&>().empty()) {
    return std::string(fallback);
  }
  return value->get<std::string>();
}

std::optional<std::int64_t> integer_of(const Json& object, const char* key) {
  const Json* value = member(object, key);
  if (value == nullptr || !value->is_number_integer()) return std::nullopt;
  return value->get<std::int64_t>();
}

std::string count_of(const Json& object, const char* key) {
  std::optional<std::int64_t> value = integer_of(object, key);
  return value ? std::to_string(*value) : std::string(kAbsent);
}

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

// The elements of the array member `key`; none when it is absent or not an array.
std::vector<const Json*> elements_of(const Json& object, const char* key) {
  std::vector<const Json*> elements;
  const Json* value = member(object, key);
  if (value != nullptr && value->is_array()) {
    for (const Json& element : *value) elements.push_back(&element);
  }
  return elements;
}

const Json& object_or(const Json& object, const char* key, const Json& fallback) {
  const Json* value = member(object, key);
  return value != nullptr && value->is_object() ? *value : fallback;
}

std::string plural(std::string_view count, std::string_view noun) {
  return fmt::format("{} {}{}", count, noun, count == "1" ? "" : "s");
}

// ---- layout ----

using Row = std::vector<std::string>;

// Columns padded to their widest cell, `kColumnGap` apart, no trailing blanks.
std::string render_table(const std::vector<Row>& rows, std::string_view indent = "") {
  std::vector<std::size_t> widths;
  for (const Row& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (std::size_t column = 0; column < row.size(); ++column) {
      widths[column] = std::max(widths[column], row[column].size());
    }
  }
  std::string text;
  for (const Row& row : rows) {
    std::string line(indent);
    for (std::size_t column = 0; column < row.size(); ++column) {
      line += row[column];
      if (column + 1 < row.size()) {
        line.append(widths[column] - row[column].size(), ' ');
        line += kColumnGap;
      }
    }
    while (line.size() > indent.size() && line.back() == ' ') line.pop_back();
    text += line;
    text += '\n';
  }
  return text;
}

// "key: value" lines with the values aligned; a field's further values go on lines of their own.
struct Field {
  std::string key;
  std::vector<std::string> values;
};

std::string render_fields(const std::vector<Field>& fields) {
  std::size_t width = 0;
  for (const Field& field : fields) width = std::max(width, field.key.size() + 2);
  std::string text;
  for (const Field& field : fields) {
    std::string label = field.key + ":";
    if (field.values.empty()) {
      text += label + '\n';
      continue;
    }
    label.resize(width, ' ');
    for (std::size_t i = 0; i < field.values.size(); ++i) {
      text += (i == 0 ? label : std::string(width, ' ')) + field.values[i] + '\n';
    }
  }
  return text;
}

std::vector<std::string> or_none(std::vector<std::string> values) {
  if (values.empty()) values.emplace_back("none");
  return values;
}

std::string join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string text;
  for (const std::string& part : parts) {
    if (!text.empty()) text += separator;
    text += part;
  }
  return text;
}

std::vector<std::string> strings_of(const Json& object, const char* key) {
  std::vector<std::string> strings;
  for (const Json* element : elements_of(object, key)) {
    if (element->is_string()) strings.push_back(element->get<std::string>());
  }
  return strings;
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

void report(std::ostream& err, std::string_view reason) { err << "clusweb: " << reason << '\n'; }

int print_reply(const Result<AdminResponse>& response, OutputFormat output, const Formatter& format,
                std::ostream& out, std::ostream& err) {
  if (!response.ok()) {
    report(err, response.error().describe());
    return kExitUnreachable;
  }
  if (response->status < 200 || response->status > 299) {
    report(err, server_error_message(*response));
    return kExitRefused;
  }
  Result<std::string> text =
      output == OutputFormat::kJson ? format_pretty_json(response->body) : format(response->body);
  if (!text.ok()) {
    report(err, text.error().describe());
    return kExitRefused;
  }
  out << *text;
  out.flush();
  return kExitOk;
}

int follow_events(AdminClient& client, OutputFormat output, std::ostream& out, std::ostream& err) {
  Status streamed = client.stream("/v1/events", [&](std::string_view line) {
    if (output == OutputFormat::kJson) {
      out << line << '\n';
    } else {
      out << format_event(line);
    }
    out.flush();
    return static_cast<bool>(out);  // stop once nobody reads our output
  });
  if (!streamed.ok()) {
    report(err, streamed.error().describe());
    return streamed.error().sys_errno != 0 ? kExitUnreachable : kExitRefused;
  }
  return kExitOk;
}

// A name as one path segment: unreserved characters stay, the rest is percent-encoded.
std::string path_segment(std::string_view name) {
  std::string segment;
  for (char c : name) {
    const auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) || c == '-' || c == '.' || c == '_' || c == '~') {
      segment += c;
    } else {
      segment += fmt::format("%{:02X}", byte);
    }
  }
  return segment;
}

std::string target(std::string_view collection, std::string_view name,
                   std::string_view action = "") {
  std::string path = fmt::format("/v1/{}/{}", collection, path_segment(name));
  if (!action.empty()) path += fmt::format("/{}", action);
  return path;
}

Formatter state_line(std::string_view kind) {
  return [kind](std::string_view json) { return format_state_line(kind, json); };
}

// ---- the command line ----

struct LeafOptions {
  std::string run_dir;
  std::string socket;
  std::string output = "table";
  std::string name;
};

struct Sink {
  int* exit_code;
  std::ostream* out;
  std::ostream* err;
};

// `own` when set, else the value given to `flag` on the nearest parent command that has it.
std::string inherited(const CLI::App& app, const std::string& flag, const std::string& own) {
  if (!own.empty()) return own;
  for (const CLI::App* parent = app.get_parent(); parent != nullptr;
       parent = parent->get_parent()) {
    const CLI::Option* option = parent->get_option_no_throw(flag);
    if (option != nullptr && option->count() > 0 && !option->results().empty()) {
      return option->results().front();
    }
  }
  return {};
}

void add_leaf(CLI::App& parent, const std::string& name, const std::string& description,
              AdminCommand::Kind kind, const char* name_help, const Sink& sink) {
  auto options = std::make_shared<LeafOptions>();
  CLI::App* leaf = parent.add_subcommand(name, description);
  if (name_help != nullptr) leaf->add_option("name", options->name, name_help)->required();
  leaf->add_option("--run-dir", options->run_dir,
                   "runtime directory of the web service (default: $CLUSWEB_RUN_DIR, else " +
                       std::string(kDefaultRunDir) + ")");
  leaf->add_option("--socket", options->socket,
                   "admin socket of the web service (default: <run-dir>/web.sock)");
  leaf->add_option("-o,--output", options->output, "output format: table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  leaf->callback([leaf, options, kind, sink] {
    AdminClient client(admin_socket_path(inherited(*leaf, "--socket", options->socket),
                                         inherited(*leaf, "--run-dir", options->run_dir),
                                         std::getenv("CLUSWEB_RUN_DIR")));
    AdminCommand command{kind, options->name,
                         options->output == "json" ? OutputFormat::kJson : OutputFormat::kTable};
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
  if (!socket_flag.empty()) return std::string(socket_flag);
  std::string_view run_dir = kDefaultRunDir;
  if (!run_dir_flag.empty()) {
    run_dir = run_dir_flag;
  } else if (run_dir_env != nullptr && *run_dir_env != '\0') {
    run_dir = run_dir_env;
  }
  return (std::filesystem::path(run_dir) / "web.sock").string();
}

int run_admin_command(const AdminCommand& command, AdminClient& client, std::ostream& out,
                      std::ostream& err) {
  using Kind = AdminCommand::Kind;
  const OutputFormat output = command.output;
  switch (command.kind) {
    case Kind::kSiteList:
      return print_reply(client.get("/v1/sites"), output, format_site_table, out, err);
    case Kind::kSiteShow:
      return print_reply(client.get(target("sites", command.name)), output, format_site_details,
                         out, err);
    case Kind::kSiteStart:
      return print_reply(client.post(target("sites", command.name, "start")), output,
                         state_line("site"), out, err);
    case Kind::kSiteStop:
      return print_reply(client.post(target("sites", command.name, "stop")), output,
                         state_line("site"), out, err);
    case Kind::kPoolList:
      return print_reply(client.get("/v1/pools"), output, format_pool_table, out, err);
    case Kind::kPoolShow:
      return print_reply(client.get(target("pools", command.name)), output, format_pool_details,
                         out, err);
    case Kind::kPoolStart:
      return print_reply(client.post(target("pools", command.name, "start")), output,
                         state_line("pool"), out, err);
    case Kind::kPoolStop:
      return print_reply(client.post(target("pools", command.name, "stop")), output,
                         state_line("pool"), out, err);
    case Kind::kPoolRecycle:
      return print_reply(client.post(target("pools", command.name, "recycle")), output,
                         state_line("pool"), out, err);
    case Kind::kReload:
      return print_reply(client.post("/v1/reload"), output, format_reload, out, err);
    case Kind::kEvents:
      return follow_events(client, output, out, err);
  }
  report(err, "unknown admin command");
  return kExitRefused;
}

Result<std::string> format_site_table(std::string_view json) {
  Result<Json> doc = parse_object(json);
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
  Result<Json> doc = parse_object(json);
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
  Result<Json> doc = parse_object(json);
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
  Result<Json> doc = parse_object(json);
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
  Result<Json> doc = parse_object(json);
  if (!doc.ok()) return doc.error();
  std::string line =
      fmt::format("{} \"{}\" is {}", kind, text_of(*doc, "name", ""), text_of(*doc, "state"));
  std::string reason = text_of(*doc, "reason", "");
  if (!reason.empty()) line += fmt::format(" ({})", reason);
  return line + '\n';
}

Result<std::string> format_reload(std::string_view json) {
  Result<Json> doc = parse_object(json);
  if (!doc.ok()) return doc.error();
  return fmt::format("reloaded: generation {}, {}, {}\n", count_of(*doc, "generation"),
                     plural(count_of(*doc, "sites"), "site"),
                     plural(count_of(*doc, "pools"), "pool"));
}

std::string format_event(std::string_view line) {
  Result<Json> doc = parse_object(line);
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
  Result<Json> doc = parse_json(json);
  if (!doc.ok()) return doc.error();
  return doc->dump(2, ' ', false, Json::error_handler_t::replace) + '\n';
}

}  // namespace clusweb::cli
