#pragma once

// The `clusweb site ...`, `clusweb pool ...`, `clusweb web reload` and `clusweb web events`
// commands: clients of the web service's admin API (see admin_client.h).

#include <iosfwd>
#include <string>
#include <string_view>

#include "base/result.h"
#include "cli/command_support.h"  // also declares CLI::App and AdminClient

namespace clusweb::cli {

// One admin command as parsed from the command line.
struct AdminCommand {
  enum class Kind {
    kSiteList,
    kSiteShow,
    kSiteStart,
    kSiteStop,
    kPoolList,
    kPoolShow,
    kPoolStart,
    kPoolStop,
    kPoolRecycle,
    kReload,
    kEvents,
  };

  Kind kind = Kind::kSiteList;
  std::string name;  // the site or pool of show/start/stop/recycle
  OutputFormat output = OutputFormat::kTable;
};

// Registers `site list|show|start|stop` and `pool list|show|start|stop|recycle` on `root` and
// `reload` and `events` on `web`; each takes --run-dir, --socket and -o/--output. When one of
// them runs (as a CLI11 callback), `exit_code` receives its exit code (command_support.h).
// Results go to `out`, problems to `err` (std::cout and std::cerr in the first form); both
// must outlive `root`. --run-dir and --socket given to a parent command (`clusweb web
// --run-dir D reload`) count too when the leaf does not set them.
void add_web_admin_commands(CLI::App& root, CLI::App& web, int& exit_code);
void add_web_admin_commands(CLI::App& root, CLI::App& web, int& exit_code, std::ostream& out,
                            std::ostream& err);

// The admin socket: `socket_flag` when set, else `<run dir>/web.sock` where the run dir is
// `run_dir_flag`, else `run_dir_env` ($CLUSWEB_RUN_DIR, may be null), else /run/clusweb.
std::string admin_socket_path(std::string_view socket_flag, std::string_view run_dir_flag,
                              const char* run_dir_env);

// Runs `command` against the service behind `client`; prints results to `out` and
// `clusweb: <reason>` lines to `err`. Returns the exit code. kEvents returns only when the
// service ends the stream.
int run_admin_command(const AdminCommand& command, AdminClient& client, std::ostream& out,
                      std::ostream& err);

// Formatters for table output. Each takes the JSON text of a reply and returns whole lines
// (each ending in '\n'); an Error when the text is not the JSON object expected. Absent
// members show as "-".

// {"sites":[SITE...]} -> NAME STATE BINDINGS REQUESTS CONNECTIONS, or "no sites".
Result<std::string> format_site_table(std::string_view json);
// {"pools":[POOL...]} -> NAME STATE REASON WORKERS(ready/processes) FAILURES, or "no pools".
Result<std::string> format_pool_table(std::string_view json);
// SITE -> "key: value" lines, bindings and applications one per line; the serving permit as
// "N ms left", "expired or revoked" or "none" (never had one).
Result<std::string> format_site_details(std::string_view json);
// POOL -> "key: value" lines, then the workers as an indented table.
Result<std::string> format_pool_details(std::string_view json);
// SITE or POOL -> `site "example" is Started` (a pool's reason follows in parentheses).
Result<std::string> format_state_line(std::string_view kind, std::string_view json);
// {"generation":4,"sites":2,"pools":1} -> "reloaded: generation 4, 2 sites, 1 pool".
Result<std::string> format_reload(std::string_view json);
// One event line -> "13:00:01.123 pool shop Stopped (AppOffline): message"; a line that is not
// a JSON object comes back unchanged.
std::string format_event(std::string_view line);
// Any JSON text -> the same JSON indented by 2 spaces.
Result<std::string> format_pretty_json(std::string_view json);

}  // namespace clusweb::cli
