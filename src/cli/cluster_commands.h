#pragma once

// The cluster commands: `clusweb cluster status`, `clusweb group ...`, `clusweb resource ...`,
// `clusweb events` and `clusweb apply`. They are clients of the local agent's API (HTTP/1.1 +
// JSON on the unix socket <run dir>/agent.sock; docs/operators-guide.md, "Cluster commands"),
// spoken through AdminClient.

#include <chrono>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "cli/command_support.h"  // also declares CLI::App and AdminClient
#include "cluster/model.h"
#include "config/group_manifest.h"

namespace clusweb::cli {

// Besides kExitOk, kExitRefused and kExitUnreachable (command_support.h): bad arguments or
// bad manifests, found before anything was sent.
inline constexpr int kExitUsage = 2;

// How `--wait` passes time between its polls of the agent.
struct Pacing {
  std::function<Clock::TimePoint()> now;
  std::function<void(std::chrono::milliseconds)> sleep;
};
// The steady clock and a real sleep.
Pacing real_time_pacing();

// One cluster command, its arguments already checked.
struct ClusterCommand {
  enum class Kind {
    kStatus,          // cluster status
    kGroupList,       // group list
    kGroupShow,       // group show GROUP
    kGroupCreate,     // group create GROUP: `spec`
    kGroupDelete,     // group delete GROUP
    kGroupMove,       // group move GROUP: `to_node`, `wait`, `timeout`
    kGroupOnline,     // group online GROUP: `wait`, `timeout`
    kGroupOffline,    // group offline GROUP: `wait`, `timeout`
    kGroupUnmanage,   // group unmanage GROUP [RESOURCE...]: `resources`
    kGroupManage,     // group manage GROUP [RESOURCE...]: `resources`
    kResourceAdd,     // resource add GROUP RESOURCE: `type`, the edits below
    kResourceSet,     // resource set GROUP RESOURCE: the edits below
    kResourceRemove,  // resource remove GROUP RESOURCE
    kResourceDepend,  // resource depend GROUP RESOURCE: `depends_on`
    kEvents,          // events: `follow`, `after`, `limit`
    kApply,           // apply: `files`, `dry_run`
    kConfigStatus,    // config status
    kConfigGet,       // config get: `revision`
    kConfigDiff,      // config diff: `files`, or `revision` (from) and `to_revision`
    kConfigHistory,   // config history: `limit`
    kConfigDelete,    // config delete: `objects`, `dry_run`
    kConfigInitKey,   // config init-key: `password_file`, `state_dir`, `kdf`
    kConfigJoinKey,   // config join-key: `password_file`, `state_dir`
    kConfigExport,    // config export: `password_file`, `file` ("" = standard output)
    kConfigImport,    // config import: `file`, `password_file`, `state_dir`, `dry_run`
    kNodePause,       // node pause: `node`
    kNodeResume,      // node resume: `node`
    kNodeDrain,       // node drain: `node`, `wait` (default on), `timeout`
  };

  Kind kind = Kind::kStatus;
  OutputFormat output = OutputFormat::kTable;
  std::string group;
  std::string resource;

  // group create: the new group (its name is `group`).
  cluster::GroupSpec spec;

  // resource add, set and depend.
  std::string type;
  std::map<std::string, std::string> parameters;  // set (or added) parameters
  std::vector<std::string> removed_parameters;
  std::vector<std::pair<std::string, std::string>> policy;  // field (policy_field_names), value
  std::optional<std::vector<std::string>> possible_owners;  // empty list = every node
  // Replaces the resource's dependencies ("ANDs of ORs", cluster::ResourceSpec::depends_on).
  std::optional<std::vector<std::vector<std::string>>> depends_on;

  // node pause, resume and drain.
  std::string node;

  // cluster status --watch: redraw every `interval`, `frames` times (unset: until interrupted);
  // `redraw` (standard output is a terminal): each frame replaces the last on the screen.
  bool watch = false;
  std::chrono::milliseconds interval{1000};
  std::optional<int> frames;
  bool redraw = false;

  // group unmanage and manage: these resources (empty = the whole group).
  std::vector<std::string> resources;

  // group move, online and offline.
  std::string to_node;  // move: empty = any other node
  bool wait = false;
  std::chrono::milliseconds timeout{60'000};

  // events: those after `after`, at most `limit` (the agent's default: 100). Without
  // `after`, the last `limit` (default 20) events of the log; `follow` then goes on with the
  // events that come after them.
  bool follow = false;
  std::optional<std::uint64_t> after;
  std::optional<int> limit;

  // apply (and config diff -f, config delete --dry-run).
  std::vector<std::string> files;
  bool dry_run = false;

  // config get (0 = now), config diff (from `revision` to `to_revision`, 0 = now).
  std::int64_t revision = 0;
  std::int64_t to_revision = 0;
  // config delete: "site/NAME", "pool/NAME".
  std::vector<std::string> objects;

  // The data key (apply seals TLS keys with it): this node's state folder holds its copy.
  std::string state_dir = "/var/lib/clusweb";
  std::string password_file;
  std::string kdf = "moderate";  // init-key, import: "moderate" or "interactive"
  std::string file;              // export (output), import (input)
};

// Registers `cluster status`, `node pause|resume|drain`,
// `group list|show|create|delete|move|online|offline`,
// `resource add|set|remove|depend`, `events` and `apply` on `root`; each takes --run-dir,
// --socket and -o/--output. When one of them runs (as a CLI11 callback), `exit_code` receives
// its exit code. Results go to `out`, problems to `err` (std::cout and std::cerr in the first
// form); both must outlive `root`. `pacing` passes the time of `--wait`. Malformed values
// (k=v pairs, durations, names) give kExitUsage with a `clusweb: ...` line, not an exception;
// CLI11 itself still throws for unknown options and missing arguments.
void add_cluster_commands(CLI::App& root, int& exit_code);
void add_cluster_commands(CLI::App& root, int& exit_code, std::ostream& out, std::ostream& err,
                          Pacing pacing = real_time_pacing());

// The agent's socket: `socket_flag` when set, else `<run dir>/agent.sock` where the run dir is
// `run_dir_flag`, else `run_dir_env` ($CLUSWEB_RUN_DIR, may be null), else /run/clusweb.
std::string agent_socket_path(std::string_view socket_flag, std::string_view run_dir_flag,
                              const char* run_dir_env);

// Runs `command` against the agent behind `client`; prints results to `out` and
// `clusweb: <reason>` lines to `err`. Returns the exit code. Resource commands read the
// group, change its spec and write it back only if it is unchanged since the read. `apply`
// reads its files first and sends nothing when they have problems (kExitUsage). `events`
// with `follow` returns only when the agent ends the stream.
int run_cluster_command(const ClusterCommand& command, AdminClient& client, std::ostream& out,
                        std::ostream& err, const Pacing& pacing);

// The spec change of a resource command (add, set, remove, depend) applied to `group`. Fails,
// leaving `group` in an unspecified state, when the change does not fit the group (unknown or
// existing resource, a dependency on a missing resource, a resource others depend on) or the
// result fails cluster::validate(). A resource it adds starts from `defaults`' policy (when
// given), then takes the command's --policy settings.
Status edit_group(const ClusterCommand& command, cluster::GroupSpec& group,
                  const config::PolicyDefaults& defaults = {});

// The policy a resource this command brings in starts from: resources::starting_policy, with
// a warning on `err` when an ocf agent's meta-data cannot be read on this machine.
config::PolicyDefaults policy_defaults(std::ostream& err);

// Command-line syntax of dependencies: each term is one AND term, its alternatives separated
// by '|'; "vip", "disk-a|disk-b" -> {{"vip"}, {"disk-a", "disk-b"}}. Terms may also hold
// several comma-separated AND terms ("vip,disk-a|disk-b" is the same as the two above).
Result<std::vector<std::vector<std::string>>> parse_dependencies(
    const std::vector<std::string>& terms);
// The same written back: {{"vip"}, {"disk-a", "disk-b"}} -> "vip,disk-a|disk-b".
std::string format_dependencies(const std::vector<std::vector<std::string>>& depends_on);

// Formatters for table output. Each takes the JSON text of a reply and returns whole lines
// (each ending in '\n'); an Error when the text is not the JSON object expected. Absent
// members show as "-".

// GET /v1/cluster -> "key: value" lines, the nodes, the groups (NAME STATE OWNER RESOURCES as
// online/total) and every group's resources.
Result<std::string> format_cluster_status(std::string_view json);
// GET /v1/config -> the shared configuration's revision and what each node serves of it.
Result<std::string> format_config_status(std::string_view json);
// GET /v1/cluster -> the groups table alone, or "no groups".
Result<std::string> format_group_table(std::string_view json);
// GET /v1/groups/NAME -> "key: value" lines of status and spec, then the resources as an
// indented table.
Result<std::string> format_group_details(std::string_view json);
// {"events":[EVENT...]} -> TIME NODE GROUP RESOURCE WHAT WHY, or "no events".
Result<std::string> format_event_table(std::string_view json);
// One EVENT line of the followed stream -> one line with the table's columns; a line that is
// not a JSON object comes back unchanged.
std::string format_event_line(std::string_view line);
// POST /v1/apply's reply -> created, changed and unchanged groups ("would create" and "would
// change" for a dry run).
Result<std::string> format_apply_result(std::string_view json, bool dry_run);

}  // namespace clusweb::cli
