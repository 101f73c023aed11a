#include "cli/command_support.h"

#include <fmt/format.h>

#include <CLI/App.hpp>
#include <CLI/Option.hpp>
#include <CLI/Validators.hpp>
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <ostream>
#include <utility>

namespace clusweb::cli {
namespace {

constexpr std::string_view kDefaultRunDir = "/run/clusweb";
constexpr std::string_view kColumnGap = "   ";

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

}  // namespace

// ---- reading a reply's JSON ----

Result<Json> parse_json(std::string_view text, const AdminService& service) {
  Json doc = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return make_error("{} sent a reply that is not JSON", service.name);
  return Result<Json>(std::move(doc));
}

Result<Json> parse_object(std::string_view text, const AdminService& service) {
  Result<Json> doc = parse_json(text, service);
  if (doc.ok() && !doc->is_object()) {
    return make_error("{} sent a JSON {} where an object was expected", service.name,
                      doc->type_name());
  }
  return doc;
}

const Json* member(const Json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  auto found = object.find(key);
  return found == object.end() ? nullptr : &*found;
}

std::string text_of(const Json& object, const char* key, std::string_view fallback) {
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

std::vector<std::string> strings_of(const Json& object, const char* key) {
  std::vector<std::string> strings;
  for (const Json* element : elements_of(object, key)) {
    if (element->is_string()) strings.push_back(element->get<std::string>());
  }
  return strings;
}

// ---- layout ----

std::string render_table(const std::vector<Row>& rows, std::string_view indent) {
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

std::string join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string text;
  for (const std::string& part : parts) {
    if (!text.empty()) text += separator;
    text += part;
  }
  return text;
}

std::string pretty_json(const Json& doc) {
  return doc.dump(2, ' ', false, Json::error_handler_t::replace) + '\n';
}

// ---- running a command ----

void report(std::ostream& err, std::string_view reason) { err << "clusweb: " << reason << '\n'; }

int check_answer(const Result<AdminResponse>& response, const AdminService& service,
                 std::ostream& err) {
  if (!response.ok()) {
    report(err, response.error().describe());
    return kExitUnreachable;
  }
  if (response->status < 200 || response->status > 299) {
    report(err, server_error_message(*response, service));
    return kExitRefused;
  }
  return kExitOk;
}

int receive_object(const Result<AdminResponse>& response, const AdminService& service, Json& body,
                   std::ostream& err) {
  if (int code = check_answer(response, service, err); code != kExitOk) return code;
  Result<Json> doc = parse_object(response->body, service);
  if (!doc.ok()) {
    report(err, doc.error().message);
    return kExitRefused;
  }
  body = std::move(*doc);
  return kExitOk;
}

int print_text(const Result<std::string>& text, std::ostream& out, std::ostream& err) {
  if (!text.ok()) {
    report(err, text.error().describe());
    return kExitRefused;
  }
  out << *text;
  out.flush();
  return kExitOk;
}

void print_event_line(std::string_view line, OutputFormat output, EventLineFormat format,
                      std::ostream& out) {
  if (output == OutputFormat::kJson) {
    out << line << '\n';
  } else {
    out << format(line);
  }
  out.flush();
}

int follow_stream(AdminClient& client, std::string_view target, OutputFormat output,
                  EventLineFormat format, std::ostream& out, std::ostream& err) {
  Status streamed = client.stream(target, [&](std::string_view line) {
    print_event_line(line, output, format, out);
    return static_cast<bool>(out);  // stop once nobody reads our output
  });
  if (!streamed.ok()) {
    report(err, streamed.error().describe());
    // A refusal comes with the service's reason and no errno (AdminClient::stream).
    return streamed.error().sys_errno != 0 ? kExitUnreachable : kExitRefused;
  }
  return kExitOk;
}

std::string api_target(std::string_view collection, std::string_view name,
                       std::string_view action) {
  std::string path = fmt::format("/v1/{}/{}", collection, path_segment(name));
  if (!action.empty()) path += fmt::format("/{}", action);
  return path;
}

// ---- the flags that find the service ----

std::string service_socket_path(std::string_view socket_flag, std::string_view run_dir_flag,
                                const char* run_dir_env, std::string_view socket_file) {
  if (!socket_flag.empty()) return std::string(socket_flag);
  std::string_view run_dir = kDefaultRunDir;
  if (!run_dir_flag.empty()) {
    run_dir = run_dir_flag;
  } else if (run_dir_env != nullptr && *run_dir_env != '\0') {
    run_dir = run_dir_env;
  }
  return (std::filesystem::path(run_dir) / socket_file).string();
}

void add_service_flags(CLI::App& leaf, const ServiceEndpoint& endpoint, ServiceFlags& flags) {
  leaf.add_option("--run-dir", flags.run_dir,
                  fmt::format("{} (default: $CLUSWEB_RUN_DIR, else {})", endpoint.run_dir_help,
                              kDefaultRunDir));
  leaf.add_option(
      "--socket", flags.socket,
      fmt::format("{} (default: <run-dir>/{})", endpoint.socket_help, endpoint.socket_file));
  leaf.add_option("-o,--output", flags.output, "output format: table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
}

AdminClient service_client(const CLI::App& leaf, const ServiceEndpoint& endpoint,
                           const ServiceFlags& flags) {
  return AdminClient(service_socket_path(inherited(leaf, "--socket", flags.socket),
                                         inherited(leaf, "--run-dir", flags.run_dir),
                                         std::getenv("CLUSWEB_RUN_DIR"), endpoint.socket_file),
                     endpoint.service);
}

OutputFormat output_format(const ServiceFlags& flags) {
  return flags.output == "json" ? OutputFormat::kJson : OutputFormat::kTable;
}

}  // namespace clusweb::cli
