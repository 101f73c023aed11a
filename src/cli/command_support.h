#pragma once

// What the commands that talk to a service through AdminClient share, those of the web service
// (web_admin_commands.h) and those of the cluster agent (cluster_commands.h): exit codes and
// output formats, reading a reply's JSON without trusting its shape, the table layout, printing
// replies and event streams, and the flags that find the service's socket. Internal to src/cli.

#include <cstdint>
#include <iosfwd>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "cli/admin_client.h"

namespace CLI {
class App;
}  // namespace CLI

namespace clusweb::cli {

// Exit codes of the commands.
inline constexpr int kExitOk = 0;
inline constexpr int kExitRefused = 1;      // the service answered with an error (or nonsense)
inline constexpr int kExitUnreachable = 3;  // could not talk to the service at all

enum class OutputFormat {
  kTable,  // for people: aligned columns, "key: value" lines
  kJson,   // for scripts: the service's JSON, pretty-printed (events: one JSON line each)
};

// ---- reading a reply's JSON without trusting its shape ----

using Json = nlohmann::json;

// What table output shows for an absent member.
inline constexpr std::string_view kAbsent = "-";

// `text` as JSON; an Error naming `service` as the sender when it is not JSON.
Result<Json> parse_json(std::string_view text, const AdminService& service);
// The same, and an Error when it is not a JSON object.
Result<Json> parse_object(std::string_view text, const AdminService& service);

// The member `key`; null when there is none or `object` is not an object.
const Json* member(const Json& object, const char* key);
// The string member `key`, or `fallback` when it is absent, null, empty or not a string.
std::string text_of(const Json& object, const char* key, std::string_view fallback = kAbsent);
std::optional<std::int64_t> integer_of(const Json& object, const char* key);
// The integer member `key` in decimal, or kAbsent.
std::string count_of(const Json& object, const char* key);
// The elements of the array member `key`; none when it is absent or not an array.
std::vector<const Json*> elements_of(const Json& object, const char* key);
// The object member `key`, or `fallback` when it is absent or not an object.
const Json& object_or(const Json& object, const char* key, const Json& fallback);
// The string elements of the array member `key`; the others are skipped.
std::vector<std::string> strings_of(const Json& object, const char* key);

// ---- layout ----

using Row = std::vector<std::string>;

// Columns padded to their widest cell, three blanks apart, no trailing blanks; each line
// starts with `indent`.
std::string render_table(const std::vector<Row>& rows, std::string_view indent = "");

// One field of render_fields: "key: value", its further values on lines of their own; without
// values, "key:" alone.
struct Field {
  std::string key;
  std::vector<std::string> values;
};

// "key: value" lines with the values aligned.
std::string render_fields(const std::vector<Field>& fields);

std::string join(const std::vector<std::string>& parts, std::string_view separator);

// `doc` indented by 2 spaces, ending in '\n'; invalid UTF-8 in strings is replaced, not thrown.
std::string pretty_json(const Json& doc);

// ---- running a command ----

// Writes "clusweb: <reason>" to `err`.
void report(std::ostream& err, std::string_view reason);

// kExitOk, reporting nothing, for a 2xx answer. Otherwise reports why on `err` and returns
// kExitUnreachable when `service` could not be talked to, kExitRefused when it answered with
// an error status.
int check_answer(const Result<AdminResponse>& response, const AdminService& service,
                 std::ostream& err);

// check_answer, then the answer's JSON object into `body`: kExitOk, or the exit code after
// reporting why not (kExitRefused for a reply that is not a JSON object).
int receive_object(const Result<AdminResponse>& response, const AdminService& service, Json& body,
                   std::ostream& err);

// Writes `text` to `out` and returns kExitOk; reports its Error and returns kExitRefused.
int print_text(const Result<std::string>& text, std::ostream& out, std::ostream& err);

// Turns one line of an event stream (a JSON object) into a line for people, ending in '\n'.
using EventLineFormat = std::string (*)(std::string_view line);

// Writes one line of an event stream to `out`: as it came for JSON output, else as `format`
// puts it. Flushes, so that a reader sees each event as it happens.
void print_event_line(std::string_view line, OutputFormat output, EventLineFormat format,
                      std::ostream& out);

// Prints each line of the stream GET `target` until the service ends it or `out` fails (nobody
// reads our output any more). Returns the exit code; a failure is reported on `err`.
int follow_stream(AdminClient& client, std::string_view target, OutputFormat output,
                  EventLineFormat format, std::ostream& out, std::ostream& err);

// "/v1/COLLECTION/NAME" or "/v1/COLLECTION/NAME/ACTION"; the name is percent-encoded as one
// path segment.
std::string api_target(std::string_view collection, std::string_view name,
                       std::string_view action = "");

// ---- the flags that find the service ----

// A service as its commands' flags know it.
struct ServiceEndpoint {
  AdminService service;
  std::string_view socket_file;   // its socket in the run directory: "web.sock"
  std::string_view run_dir_help;  // "runtime directory of the web service"
  std::string_view socket_help;   // "admin socket of the web service"
};

// `socket_flag` when set, else `<run dir>/<socket_file>` where the run dir is `run_dir_flag`,
// else `run_dir_env` ($CLUSWEB_RUN_DIR, may be null), else /run/clusweb.
std::string service_socket_path(std::string_view socket_flag, std::string_view run_dir_flag,
                                const char* run_dir_env, std::string_view socket_file);

// The flags every command against a service has.
struct ServiceFlags {
  std::string run_dir;
  std::string socket;
  std::string output = "table";
};

// Adds --run-dir, --socket and -o/--output to `leaf`; their values go to `flags`, which must
// outlive `leaf`.
void add_service_flags(CLI::App& leaf, const ServiceEndpoint& endpoint, ServiceFlags& flags);

// A client of the service whose socket `flags` name, once `leaf` is parsed. --run-dir and
// --socket given to a parent command (`clusweb web --run-dir D reload`) count too when the leaf
// does not set them.
AdminClient service_client(const CLI::App& leaf, const ServiceEndpoint& endpoint,
                           const ServiceFlags& flags);

OutputFormat output_format(const ServiceFlags& flags);

}  // namespace clusweb::cli
