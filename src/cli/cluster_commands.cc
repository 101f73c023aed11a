#include "cli/cluster_commands.h"

#include <fmt/format.h>
#include <unistd.h>

#include <CLI/App.hpp>
#include <CLI/Option.hpp>
#include <CLI/Validators.hpp>
#include <algorithm>
#include <cstddef>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "base/duration.h"
#include "cli/admin_client.h"
#include "cli/command_support.h"
#include "cli/config_commands.h"
#include "cli/secret_commands.h"
#include "cluster/store_keys.h"
#include "config/group_manifest.h"
#include "config/manifest_loader.h"
#include "config/web_config_json.h"
#include "resources/ocf_policy.h"

namespace clusweb::cli {
namespace {

using std::chrono::milliseconds;

constexpr ServiceEndpoint kEndpoint{kClusterAgent, "agent.sock", "runtime directory of the agent",
                                    "API socket of the agent"};
constexpr milliseconds kPollInterval{200};
// Events per request when reading the log from its start.
constexpr std::size_t kEventPage = 1000;
// `clusweb events` without --after or -n.
constexpr int kRecentEvents = 20;
// Events a `cluster status --watch` frame shows.
constexpr std::size_t kWatchEvents = 8;

// ---- helpers of these commands alone (the shared ones are in command_support.h) ----

bool flag_of(const Json& object, const char* key) {
  const Json* value = member(object, key);
  return value != nullptr && value->is_boolean() && value->get<bool>();
}

std::string join_or(const std::vector<std::string>& parts, std::string_view separator,
                    std::string_view fallback) {
  return parts.empty() ? std::string(fallback) : join(parts, separator);
}

std::vector<std::string> split(std::string_view text, char separator) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = text.find(separator, start);
    parts.emplace_back(text.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

// "2026-11-26 01:02:03.456" from "2026-11-26T01:02:03.456Z".
std::string readable_time(std::string timestamp) {
  if (std::size_t t = timestamp.find('T'); t != std::string::npos) timestamp[t] = ' ';
  if (!timestamp.empty() && timestamp.back() == 'Z') timestamp.pop_back();
  return timestamp;
}

// ---- the status JSON ----

std::string owner_column(const Json& group) {
  std::string owner = text_of(group, "owner");
  std::string placement = text_of(group, "placement", "");
  if (!placement.empty() && placement != owner) owner += " -> " + placement;
  return owner;
}

std::string resource_count(const Json& group) {
  const std::vector<const Json*> resources = elements_of(group, "resources");
  const auto online = std::count_if(resources.begin(), resources.end(), [](const Json* resource) {
    return text_of(*resource, "state", "") == "Online";
  });
  return fmt::format("{}/{}", online, resources.size());
}

// The state, marked when the cluster does not act on it (maintenance).
std::string resource_state(const Json& resource) {
  std::string state = text_of(resource, "state");
  if (flag_of(resource, "unmanaged")) state += " (unmanaged)";
  return state;
}

std::string group_state(const Json& group) {
  std::string state = text_of(group, "state");
  if (flag_of(group, "unmanaged")) return state + " (unmanaged)";
  const std::vector<const Json*> resources = elements_of(group, "resources");
  if (std::any_of(resources.begin(), resources.end(),
                  [](const Json* resource) { return flag_of(*resource, "unmanaged"); })) {
    state += " (partly unmanaged)";
  }
  return state;
}

std::string groups_table(const Json& cluster) {
  const std::vector<const Json*> groups = elements_of(cluster, "groups");
  if (groups.empty()) return "no groups\n";
  std::vector<Row> rows{{"GROUP", "STATE", "OWNER", "RESOURCES"}};
  for (const Json* group : groups) {
    rows.push_back({text_of(*group, "name"), group_state(*group), owner_column(*group),
                    resource_count(*group)});
  }
  return render_table(rows);
}

// ---- talking to the agent ----

// Reports a failed exchange and returns its exit code; kExitOk when the agent answered 2xx
// with a JSON object, which is stored in `body`.
int receive(const Result<AdminResponse>& response, Json& body, std::ostream& err) {
  return receive_object(response, kClusterAgent, body, err);
}

void print_json(const Json& doc, std::ostream& out) {
  out << pretty_json(doc);
  out.flush();
}

using Formatter = std::function<Result<std::string>(std::string_view)>;

// Unlike the web service's commands, even the JSON output must be a JSON object.
int print_reply(const Result<AdminResponse>& response, OutputFormat output, const Formatter& format,
                std::ostream& out, std::ostream& err) {
  Json body;
  if (int code = receive(response, body, err); code != kExitOk) return code;
  if (output == OutputFormat::kJson) {
    print_json(body, out);
    return kExitOk;
  }
  return print_text(format(response->body), out, err);
}

std::string group_target(std::string_view group, std::string_view action = "") {
  return api_target("groups", group, action);
}

Json spec_json(const cluster::GroupSpec& spec) { return Json::parse(cluster::encode(spec)); }

// ---- waiting for a group ----

// What `--wait` waits for.
struct Goal {
  std::string state;       // Online or Offline
  std::string owner;       // when set: this owner
  std::string other_than;  // when set: any owner but this one
  std::string description() const {
    if (!owner.empty()) return fmt::format("{} on {}", state, owner);
    if (!other_than.empty()) return fmt::format("{} on a node other than {}", state, other_than);
    return state;
  }
};

struct Observed {
  std::string state;
  std::string owner;  // empty: none
  std::optional<std::int64_t> token;
  std::string reason;
  // The same state on the same ownership (a new reason alone is no progress).
  bool same_as(const Observed& other) const {
    return state == other.state && owner == other.owner && token == other.token;
  }
};

Observed observe(const Json& reply) {
  const Json none = Json::object();
  const Json& status = object_or(reply, "status", none);
  return Observed{text_of(status, "state", "Unknown"), text_of(status, "owner", ""),
                  integer_of(status, "token"), text_of(status, "reason", "")};
}

// "Pending on n2 (bringing resources online)"
std::string state_text(const Observed& seen) {
  std::string text = seen.state;
  if (!seen.owner.empty()) text += fmt::format(" on {}", seen.owner);
  if (!seen.reason.empty()) text += fmt::format(" ({})", seen.reason);
  return text;
}

std::string describe(std::string_view group, const Observed& seen) {
  return fmt::format("group \"{}\" is {}", group, state_text(seen));
}

bool reached(const Goal& goal, const Observed& seen) {
  if (seen.state != goal.state) return false;
  if (!goal.owner.empty() && seen.owner != goal.owner) return false;
  if (!goal.other_than.empty() && (seen.owner.empty() || seen.owner == goal.other_than)) {
    return false;
  }
  return true;
}

// Polls the group every kPollInterval until it reaches `goal`, fails, or `timeout` passes;
// people see a line for every change. A Failed state counts once the group has moved on from
// what the first poll saw: a group Failed before the command may still show that state
// until its owner acts.
int wait_for(AdminClient& client, const std::string& group, const Goal& goal, milliseconds timeout,
             OutputFormat output, const Pacing& pacing, std::ostream& out, std::ostream& err) {
  const Clock::TimePoint deadline = pacing.now() + timeout;
  std::optional<Observed> first;
  std::optional<Observed> last;
  bool moved_on = false;
  while (true) {
    Json reply;
    if (int code = receive(client.get(group_target(group)), reply, err); code != kExitOk) {
      return code;
    }
    const Observed seen = observe(reply);
    if (!first) first = seen;
    moved_on = moved_on || !seen.same_as(*first);
    if (output == OutputFormat::kTable && (!last || !seen.same_as(*last))) {
      out << describe(group, seen) << '\n';
      out.flush();
    }
    last = seen;
    if (reached(goal, seen)) {
      if (output == OutputFormat::kJson) print_json(reply, out);
      return kExitOk;
    }
    if (seen.state == "Failed" && (first->state != "Failed" || moved_on)) {
      report(err, fmt::format("{} instead of {}", describe(group, seen), goal.description()));
      return kExitRefused;
    }
    const Clock::TimePoint now = pacing.now();
    if (now >= deadline) {
      report(err,
             fmt::format("gave up after {} waiting for group \"{}\" to be {}; it is {}",
                         format_duration(timeout), group, goal.description(), state_text(seen)));
      return kExitRefused;
    }
    pacing.sleep(std::min(kPollInterval, std::chrono::ceil<milliseconds>(deadline - now)));
  }
}

// ---- the commands ----

int group_action(const ClusterCommand& command, AdminClient& client, std::ostream& out,
                 std::ostream& err, const Pacing& pacing) {
  const bool online = command.kind == ClusterCommand::Kind::kGroupOnline;
  Json reply;
  if (int code = receive(client.post(group_target(command.group, online ? "online" : "offline")),
                         reply, err);
      code != kExitOk) {
    return code;
  }
  if (!command.wait) {
    if (command.output == OutputFormat::kJson) {
      print_json(reply, out);
    } else {
      out << fmt::format("group \"{}\": {} requested\n", command.group,
                         online ? "online" : "offline");
    }
    return kExitOk;
  }
  return wait_for(client, command.group, Goal{online ? "Online" : "Offline", "", ""},
                  command.timeout, command.output, pacing, out, err);
}

int group_maintenance(const ClusterCommand& command, AdminClient& client, std::ostream& out,
                      std::ostream& err) {
  const bool unmanage = command.kind == ClusterCommand::Kind::kGroupUnmanage;
  Json body = Json::object();
  if (!command.resources.empty()) body["resources"] = command.resources;
  Json reply;
  if (int code = receive(
          client.post(group_target(command.group, unmanage ? "unmanage" : "manage"), body.dump()),
          reply, err);
      code != kExitOk) {
    return code;
  }
  if (command.output == OutputFormat::kJson) {
    print_json(reply, out);
    return kExitOk;
  }
  const Json none = Json::object();
  const Json& now = object_or(reply, "unmanaged", none);
  const std::vector<std::string> still = strings_of(now, "resources");
  if (flag_of(now, "group")) {
    out << fmt::format(
        "group \"{}\" is unmanaged: the cluster watches it but starts, stops, recovers and moves "
        "none of it until `clusweb group manage {}`\n",
        command.group, command.group);
  } else if (!still.empty()) {
    out << fmt::format("group \"{}\": unmanaged resources: {} (the group stays on its node)\n",
                       command.group, fmt::join(still, ", "));
  } else {
    out << fmt::format("group \"{}\" is managed by the cluster again\n", command.group);
  }
  return kExitOk;
}

int group_move(const ClusterCommand& command, AdminClient& client, std::ostream& out,
               std::ostream& err, const Pacing& pacing) {
  Json body = Json::object();
  if (!command.to_node.empty()) body["node"] = command.to_node;
  Json reply;
  if (int code = receive(client.post(group_target(command.group, "move"), body.dump()), reply, err);
      code != kExitOk) {
    return code;
  }
  const std::string from = text_of(reply, "from", "");
  const std::string to = text_of(reply, "to", command.to_node);
  if (!command.wait || command.output == OutputFormat::kTable) {
    if (command.output == OutputFormat::kJson) {
      print_json(reply, out);
    } else {
      out << fmt::format("moving group \"{}\"{} to {}\n", command.group,
                         from.empty() ? "" : " from " + from, to.empty() ? "another node" : to);
    }
  }
  if (!command.wait) return kExitOk;
  Goal goal{"Online", to, ""};
  if (to.empty()) goal.other_than = from;
  return wait_for(client, command.group, goal, command.timeout, command.output, pacing, out, err);
}

// The groups `node` owns, by name -> state, from GET /v1/cluster.
std::map<std::string, std::string> groups_owned_by(const Json& cluster, const std::string& node) {
  std::map<std::string, std::string> owned;
  for (const Json* group : elements_of(cluster, "groups")) {
    if (text_of(*group, "owner", "") == node) {
      owned[text_of(*group, "name", "")] = text_of(*group, "state", "Unknown");
    }
  }
  return owned;
}

// Drain waits until the node owns no group, printing each group as it lands elsewhere (or
// finds no other node), so the operator sees the drain advance group by group.
// `reply` is the agent's answer to the drain: the groups the node owned when it was written (a
// group may have left before the first poll here).
int wait_drained(const ClusterCommand& command, const Json& reply, AdminClient& client,
                 std::ostream& out, std::ostream& err, const Pacing& pacing) {
  const Clock::TimePoint deadline = pacing.now() + command.timeout;
  std::set<std::string> leaving;  // were on the node when drained or at some poll
  for (const std::string& name : strings_of(reply, "groups")) leaving.insert(name);
  std::set<std::string> announced;  // their new place was printed
  bool first = true;
  while (true) {
    Json cluster;
    if (int code = receive(client.get("/v1/cluster"), cluster, err); code != kExitOk) return code;
    const std::map<std::string, std::string> owned = groups_owned_by(cluster, command.node);
    for (const auto& [name, state] : owned) leaving.insert(name);
    if (first && command.output == OutputFormat::kTable) {
      const std::vector<std::string> names(leaving.begin(), leaving.end());
      out << (names.empty()
                  ? fmt::format("draining {}: it owns no group\n", command.node)
                  : fmt::format(
                        "draining {}: {} to move ({})\n", command.node,
                        names.size() == 1 ? "1 group" : fmt::format("{} groups", names.size()),
                        join(names, ", ")));
      out.flush();
    }
    first = false;
    bool settled = true;
    for (const Json* group : elements_of(cluster, "groups")) {
      const std::string name = text_of(*group, "name", "");
      if (!leaving.contains(name) || owned.contains(name) || announced.contains(name)) continue;
      const std::string state = text_of(*group, "state", "Unknown");
      const std::string owner = text_of(*group, "owner", "");
      const std::string placement = text_of(*group, "placement", "");
      // Settled: Online (or Failed) on its new owner, or placed nowhere (no node can take it).
      // Released here but placed elsewhere and not yet acquired there, it is still moving,
      // whatever state the release reported.
      const bool landed = !owner.empty() && (state == "Online" || state == "Failed");
      const bool nowhere = owner.empty() && placement.empty();
      if (!landed && !nowhere) {
        settled = false;
        continue;
      }
      announced.insert(name);
      if (command.output == OutputFormat::kTable) {
        out << fmt::format("group \"{}\": {}\n", name,
                           owner.empty()
                               ? fmt::format("{} ({})", state, text_of(*group, "reason", ""))
                               : fmt::format("{} on {}", state, owner));
        out.flush();
      }
    }
    if (owned.empty() && settled) {
      if (command.output == OutputFormat::kJson) {
        print_json(Json{{"node", command.node}, {"drained", true}}, out);
      } else {
        out << fmt::format(
            "node {} is drained: it owns no group and takes none until `clusweb node resume {}`\n",
            command.node, command.node);
      }
      return kExitOk;
    }
    const Clock::TimePoint now = pacing.now();
    if (now >= deadline) {
      std::vector<std::string> names;
      names.reserve(owned.size());
      for (const auto& [name, state] : owned) names.push_back(fmt::format("{} ({})", name, state));
      report(err, fmt::format(
                      "gave up after {} waiting for {} to drain; it still owns {}",
                      format_duration(command.timeout), command.node,
                      names.empty() ? "no group, but groups are still moving" : join(names, ", ")));
      return kExitRefused;
    }
    pacing.sleep(std::min(kPollInterval, std::chrono::ceil<milliseconds>(deadline - now)));
  }
}

int node_action(const ClusterCommand& command, AdminClient& client, std::ostream& out,
                std::ostream& err, const Pacing& pacing) {
  using Kind = ClusterCommand::Kind;
  const std::string verb = command.kind == Kind::kNodePause    ? "pause"
                           : command.kind == Kind::kNodeResume ? "resume"
                                                               : "drain";
  Json reply;
  if (int code =
          receive(client.post(fmt::format("/v1/nodes/{}/{}", command.node, verb)), reply, err);
      code != kExitOk) {
    return code;
  }
  if (command.kind == Kind::kNodeDrain && command.wait) {
    return wait_drained(command, reply, client, out, err, pacing);
  }
  if (command.output == OutputFormat::kJson) {
    print_json(reply, out);
  } else if (command.kind == Kind::kNodePause) {
    out << fmt::format("node {} paused: it keeps its groups and takes no new ones\n", command.node);
  } else if (command.kind == Kind::kNodeResume) {
    out << fmt::format("node {} resumed: it takes groups again\n", command.node);
  } else {
    out << fmt::format("node {} draining: its groups move to other nodes\n", command.node);
  }
  return kExitOk;
}

int group_create(const ClusterCommand& command, AdminClient& client, std::ostream& out,
                 std::ostream& err) {
  cluster::GroupSpec spec = command.spec;
  spec.name = command.group;
  if (Status valid = cluster::validate(spec); !valid.ok()) {
    report(err, valid.error().describe());
    return kExitUsage;
  }
  const Json body{{"spec", spec_json(spec)}, {"revision", 0}};
  Json reply;
  if (int code = receive(client.post(group_target(command.group), body.dump()), reply, err);
      code != kExitOk) {
    return code;
  }
  if (command.output == OutputFormat::kJson) {
    print_json(reply, out);
  } else {
    out << fmt::format("group \"{}\" created (revision {})\n", command.group,
                       count_of(reply, "revision"));
  }
  return kExitOk;
}

int group_delete(const ClusterCommand& command, AdminClient& client, std::ostream& out,
                 std::ostream& err) {
  Json reply;
  if (int code = receive(client.post(group_target(command.group, "delete")), reply, err);
      code != kExitOk) {
    return code;
  }
  if (command.output == OutputFormat::kJson) {
    print_json(reply, out);
  } else {
    out << fmt::format("group \"{}\" deleted\n", command.group);
  }
  return kExitOk;
}

int group_list(const ClusterCommand& command, AdminClient& client, std::ostream& out,
               std::ostream& err) {
  Json reply;
  if (int code = receive(client.get("/v1/cluster"), reply, err); code != kExitOk) return code;
  if (command.output == OutputFormat::kJson) {
    const Json* groups = member(reply, "groups");
    print_json(Json{{"groups", groups != nullptr ? *groups : Json::array()}}, out);
  } else {
    out << groups_table(reply);
    out.flush();
  }
  return kExitOk;
}

std::string edit_summary(const ClusterCommand& command, const cluster::GroupSpec& group) {
  using Kind = ClusterCommand::Kind;
  const std::string resource = fmt::format("resource \"{}\"", command.resource);
  switch (command.kind) {
    case Kind::kResourceAdd:
      return fmt::format("{} added to group \"{}\"", resource, command.group);
    case Kind::kResourceRemove:
      return fmt::format("{} removed from group \"{}\"", resource, command.group);
    case Kind::kResourceDepend: {
      for (const cluster::ResourceSpec& spec : group.resources) {
        if (spec.name != command.resource) continue;
        if (spec.depends_on.empty()) {
          return fmt::format("{} of group \"{}\" depends on nothing", resource, command.group);
        }
        return fmt::format("{} of group \"{}\" depends on {}", resource, command.group,
                           format_dependencies(spec.depends_on));
      }
      break;
    }
    default:
      break;
  }
  return fmt::format("{} of group \"{}\" changed", resource, command.group);
}

// Read, change, write back only if unchanged since the read.
int resource_edit(const ClusterCommand& command, AdminClient& client, std::ostream& out,
                  std::ostream& err) {
  Json current;
  if (int code = receive(client.get(group_target(command.group)), current, err); code != kExitOk) {
    return code;
  }
  const Json* spec_value = member(current, "spec");
  const std::optional<std::int64_t> revision = integer_of(current, "revision");
  if (spec_value == nullptr || !spec_value->is_object() || !revision) {
    report(err, fmt::format("the cluster agent's reply for group \"{}\" has no spec or revision",
                            command.group));
    return kExitRefused;
  }
  auto group = cluster::decode_group(spec_value->dump(), "group " + command.group);
  if (!group.ok()) {
    report(err, fmt::format("cannot read the spec of group \"{}\" the cluster agent sent: {}",
                            command.group, group.error().message));
    return kExitRefused;
  }
  if (Status edited = edit_group(command, *group, policy_defaults(err)); !edited.ok()) {
    report(err, edited.error().describe());
    return kExitRefused;
  }
  const Json body{{"spec", spec_json(*group)}, {"revision", *revision}};
  const Result<AdminResponse> written = client.post(group_target(command.group), body.dump());
  if (written.ok() && written->status == 409) {
    report(err, fmt::format("group \"{}\" changed while this command ran (it was at revision {}); "
                            "nothing was written, run the command again",
                            command.group, *revision));
    return kExitRefused;
  }
  Json reply;
  if (int code = receive(written, reply, err); code != kExitOk) return code;
  if (command.output == OutputFormat::kJson) {
    print_json(reply, out);
  } else {
    out << fmt::format("{} (revision {})\n", edit_summary(command, *group),
                       count_of(reply, "revision"));
  }
  return kExitOk;
}

// The last `count` events of the log, oldest first. The agent reads the log forward from a
// sequence number, so this pages through it from the start; the log is bounded (1000 events
// by default), which keeps that to a request or two.
int recent_events(AdminClient& client, std::size_t count, Json& events, std::ostream& err) {
  events = Json::array();
  std::uint64_t after = 0;
  while (true) {
    Json page;
    if (int code = receive(
            client.get(fmt::format("/v1/events?after={}&limit={}", after, kEventPage)), page, err);
        code != kExitOk) {
      return code;
    }
    const std::vector<const Json*> got = elements_of(page, "events");
    for (const Json* event : got) events.push_back(*event);
    if (events.size() > count) {
      events.erase(events.begin(),
                   events.begin() + static_cast<std::ptrdiff_t>(events.size() - count));
    }
    if (got.size() < kEventPage) return kExitOk;
    const std::optional<std::int64_t> last = integer_of(*got.back(), "seq");
    if (!last || *last <= static_cast<std::int64_t>(after)) return kExitOk;  // cannot page on
    after = static_cast<std::uint64_t>(*last);
  }
}

int list_events(const ClusterCommand& command, AdminClient& client, std::ostream& out,
                std::ostream& err) {
  if (command.after) {
    std::string target = fmt::format("/v1/events?after={}", *command.after);
    if (command.limit) target += fmt::format("&limit={}", *command.limit);
    return print_reply(client.get(target), command.output, format_event_table, out, err);
  }
  Json events;
  const auto count = static_cast<std::size_t>(command.limit.value_or(kRecentEvents));
  if (int code = recent_events(client, count, events, err); code != kExitOk) return code;
  const Json reply{{"events", std::move(events)}};
  if (command.output == OutputFormat::kJson) {
    print_json(reply, out);
  } else {
    out << *format_event_table(reply.dump());
    out.flush();
  }
  return kExitOk;
}

// `cluster status --watch`: the status and the last events, fetched every interval and shown
// again when they changed: on a terminal in place of the last frame, otherwise after it (with
// -o json, one line per frame). An agent that cannot be reached is shown as such, and the
// watch goes on: it is meant to be left open through restarts and failovers.
int watch_status(const ClusterCommand& command, AdminClient& client, std::ostream& out,
                 const Pacing& pacing) {
  Json events = Json::array();
  std::optional<std::int64_t> last_seq;
  std::string shown;
  for (int frame = 0; !command.frames || frame < *command.frames; ++frame) {
    if (frame > 0) pacing.sleep(command.interval);
    std::ostringstream problem;
    Json cluster;
    bool reached = receive(client.get("/v1/cluster?store=1"), cluster, problem) == kExitOk;
    if (reached) {
      // The raft index moves with every write anywhere: a frame per poll says nothing.
      if (Json* store =
              cluster.is_object() && cluster.contains("store") ? &cluster["store"] : nullptr;
          store != nullptr && store->is_object() && store->contains("members") &&
          (*store)["members"].is_array()) {
        for (Json& member : (*store)["members"]) {
          if (member.is_object()) member.erase("raftIndex");
        }
      }
      Json fresh;
      if (!last_seq) {
        reached = recent_events(client, kWatchEvents, fresh, problem) == kExitOk;
      } else {
        Json page;
        reached =
            receive(client.get(fmt::format("/v1/events?after={}&limit={}", *last_seq, kEventPage)),
                    page, problem) == kExitOk;
        fresh = Json::array();
        for (const Json* event : elements_of(page, "events")) fresh.push_back(*event);
      }
      for (const Json& event : fresh) events.push_back(event);
      if (events.size() > kWatchEvents) {
        events.erase(events.begin(),
                     events.begin() + static_cast<std::ptrdiff_t>(events.size() - kWatchEvents));
      }
      if (!events.empty()) last_seq = integer_of(events.back(), "seq").value_or(0);
    }
    std::string text;
    if (command.output == OutputFormat::kJson) {
      const Json doc =
          reached ? Json{{"cluster", cluster}, {"events", events}} : Json{{"error", problem.str()}};
      text = doc.dump() + "\n";
    } else {
      text = fmt::format("cluster status every {}, Ctrl-C stops\n\n",
                         format_duration(command.interval));
      if (reached) {
        Result<std::string> status = format_cluster_status(cluster.dump());
        text += status.ok() ? *status : status.error().describe() + "\n";
        text += "\nLAST EVENTS\n";
        Result<std::string> table = format_event_table(Json{{"events", events}}.dump());
        text += table.ok() ? *table : table.error().describe() + "\n";
      } else {
        text += problem.str();
      }
    }
    if (text == shown) continue;
    if (command.redraw && command.output == OutputFormat::kTable) {
      out << "\x1b[H\x1b[2J";  // cursor home, clear the screen
    } else if (!shown.empty() && command.output == OutputFormat::kTable) {
      out << '\n';
    }
    out << text;
    out.flush();
    shown = std::move(text);
  }
  return kExitOk;
}

// Without --after: the last events first, as `tail -f` does, then what comes after them.
int follow_events(const ClusterCommand& command, AdminClient& client, std::ostream& out,
                  std::ostream& err) {
  std::uint64_t after = command.after.value_or(0);
  if (!command.after) {
    Json events;
    const auto count = static_cast<std::size_t>(command.limit.value_or(kRecentEvents));
    if (int code = recent_events(client, count, events, err); code != kExitOk) return code;
    for (const Json& event : events) {
      print_event_line(event.dump(-1, ' ', false, Json::error_handler_t::replace), command.output,
                       format_event_line, out);
      if (std::optional<std::int64_t> seq = integer_of(event, "seq"); seq && *seq > 0) {
        after = std::max(after, static_cast<std::uint64_t>(*seq));
      }
    }
  }
  return follow_stream(client, fmt::format("/v1/events?follow=1&after={}", after), command.output,
                       format_event_line, out, err);
}

// The body of POST /v1/apply from the command's files; kExitOk, or the exit code after
// reporting why nothing is sent. `web_only`: the sites and pools alone (config diff).
int apply_body(const ClusterCommand& command, bool web_only, Json& body, std::ostream& err) {
  config::GroupLoadOptions options;
  options.policy_defaults = policy_defaults(err);
  auto loaded = config::load_group_manifest_files(command.files, options);
  if (!loaded.ok()) {
    err << loaded.error().describe() << '\n';
    report(err, "nothing was applied");
    return kExitUsage;
  }
  // Sites and pools go to the shared configuration, validated here as the web service would
  // (paths resolved against each manifest's folder and checked on this machine).
  Json web;
  if (!loaded->web_documents.empty()) {
    auto sites_and_pools = config::load_web_config_files(command.files);
    if (!sites_and_pools.ok()) {
      err << sites_and_pools.error().message << '\n';
      report(err, "nothing was applied");
      return kExitUsage;
    }
    if (!sites_and_pools->server.where.file.empty()) {
      report(err, fmt::format("{}: kind WebServer holds one node's own settings and is not part "
                              "of the shared configuration; keep it in that node's manifests "
                              "(\"clusweb web -f\"); nothing was applied",
                              sites_and_pools->server.where.describe()));
      return kExitUsage;
    }
    if (Status sealed = seal_secrets(*sites_and_pools, data_key_path(command.state_dir));
        !sealed.ok()) {
      report(err, sealed.error().describe() + "; nothing was applied");
      return kExitUsage;
    }
    web = Json::parse(config::to_json(*sites_and_pools));
    web.erase("server");
  }
  Json groups = Json::array();
  if (!web_only) {
    for (const cluster::GroupSpec& group : loaded->groups) groups.push_back(spec_json(group));
  }
  if (groups.empty() && web.is_null()) {
    report(err, web_only ? "no Site or ApplicationPool documents in the files given"
                         : "no Group, Site or ApplicationPool documents in the files given; "
                           "nothing to apply");
    return web_only ? kExitUsage : kExitOk;
  }
  body = Json{{"groups", std::move(groups)}, {"dryRun", command.dry_run || web_only}};
  if (!web.is_null()) body["web"] = std::move(web);
  return kExitOk;
}

int apply(const ClusterCommand& command, AdminClient& client, std::ostream& out,
          std::ostream& err) {
  Json body;
  if (int code = apply_body(command, /*web_only=*/false, body, err);
      code != kExitOk || body.is_null()) {
    return code;
  }
  return print_reply(
      client.post("/v1/apply", body.dump()), command.output,
      [&](std::string_view json) { return format_apply_result(json, command.dry_run); }, out, err);
}

int config_diff(const ClusterCommand& command, AdminClient& client, std::ostream& out,
                std::ostream& err) {
  if (command.files.empty()) {
    return print_reply(client.get(fmt::format("/v1/config/diff?from={}&to={}", command.revision,
                                              command.to_revision)),
                       command.output, format_config_diff, out, err);
  }
  Json body;
  if (int code = apply_body(command, /*web_only=*/true, body, err); code != kExitOk) return code;
  return print_reply(
      client.post("/v1/apply", body.dump()), command.output,
      [](std::string_view json) -> Result<std::string> {
        Result<Json> doc = parse_object(json, kClusterAgent);
        if (!doc.ok()) return doc.error();
        return "what applying the files would change:\n" +
               format_config_changes(member(*doc, "configDiff"));
      },
      out, err);
}

int config_delete(const ClusterCommand& command, AdminClient& client, std::ostream& out,
                  std::ostream& err) {
  Result<Json> objects = config_objects(command.objects);
  if (!objects.ok()) {
    report(err, objects.error().message);
    return kExitUsage;
  }
  (*objects)["dryRun"] = command.dry_run;
  return print_reply(
      client.post("/v1/config/delete", objects->dump()), command.output,
      [&](std::string_view json) { return format_config_write(json, command.dry_run); }, out, err);
}

// ---- checking a resource edit against the group ----

cluster::ResourceSpec* find_resource(cluster::GroupSpec& group, const std::string& name) {
  for (cluster::ResourceSpec& resource : group.resources) {
    if (resource.name == name) return &resource;
  }
  return nullptr;
}

Error no_such_resource(const cluster::GroupSpec& group, const std::string& name) {
  std::vector<std::string> names;
  for (const cluster::ResourceSpec& resource : group.resources) names.push_back(resource.name);
  if (names.empty()) {
    return make_error("group \"{}\" has no resources; there is no \"{}\"", group.name, name);
  }
  return make_error("group \"{}\" has no resource named \"{}\" (it has: {})", group.name, name,
                    join(names, ", "));
}

Status check_dependencies(const cluster::GroupSpec& group, const cluster::ResourceSpec& resource) {
  for (const auto& any_of : resource.depends_on) {
    for (const std::string& name : any_of) {
      if (name == resource.name) return make_error("a resource cannot depend on itself");
      if (std::none_of(group.resources.begin(), group.resources.end(),
                       [&](const cluster::ResourceSpec& other) { return other.name == name; })) {
        return make_error("resource \"{}\" cannot depend on \"{}\": {}", resource.name, name,
                          no_such_resource(group, name).message);
      }
    }
  }
  return ok_status();
}

Status check_type(const cluster::ResourceSpec& resource) {
  const std::vector<config::ResourceTypeProblem> problems =
      config::resource_type_problems(resource);
  if (problems.empty()) return ok_status();
  std::vector<std::string> lines;
  lines.reserve(problems.size());
  for (const config::ResourceTypeProblem& problem : problems) {
    lines.push_back(problem.parameter.empty()
                        ? fmt::format("resource \"{}\": {}", resource.name, problem.what)
                        : fmt::format("resource \"{}\": parameter \"{}\": {}", resource.name,
                                      problem.parameter, problem.what));
  }
  return make_error("{}", join(lines, "\n"));
}

// ---- the command line ----

struct Sink {
  int* exit_code;
  std::ostream* out;
  std::ostream* err;
  Pacing pacing;
};

// Turns the raw flags of a leaf into its ClusterCommand; an Error is a usage problem.
using Builder = std::function<Result<ClusterCommand>()>;

CLI::App* add_leaf(CLI::App& parent, const std::string& name, const std::string& description,
                   const Sink& sink, const std::shared_ptr<Builder>& builder) {
  auto flags = std::make_shared<ServiceFlags>();
  CLI::App* leaf = parent.add_subcommand(name, description);
  add_service_flags(*leaf, kEndpoint, *flags);
  leaf->callback([leaf, flags, builder, sink] {
    Result<ClusterCommand> command = (*builder)();
    if (!command.ok()) {
      report(*sink.err, command.error().describe());
      *sink.exit_code = kExitUsage;
      return;
    }
    command->output = output_format(*flags);
    AdminClient client = service_client(*leaf, kEndpoint, *flags);
    *sink.exit_code = run_cluster_command(*command, client, *sink.out, *sink.err, sink.pacing);
  });
  return leaf;
}

// A leaf whose command is only its kind and names.
struct Names {
  std::string group;
  std::string resource;
};

std::shared_ptr<Builder> simple(ClusterCommand::Kind kind, const std::shared_ptr<Names>& names) {
  return std::make_shared<Builder>([kind, names]() -> Result<ClusterCommand> {
    ClusterCommand command;
    command.kind = kind;
    command.group = names->group;
    command.resource = names->resource;
    return command;
  });
}

Result<milliseconds> duration_flag(std::string_view flag, const std::string& text) {
  auto parsed = parse_duration(text);
  if (!parsed.ok()) return make_error("{}: {}", flag, parsed.error().message);
  if (parsed->count() <= 0) return make_error("{}: must be greater than 0", flag);
  return *parsed;
}

Result<std::vector<std::string>> node_list_flag(std::string_view flag, const std::string& text) {
  std::vector<std::string> nodes;
  if (text.empty()) return nodes;
  std::set<std::string> seen;
  for (std::string& node : split(text, ',')) {
    if (Status named = cluster::check_name("node", node); !named.ok()) {
      return make_error("{}: {}", flag, named.error().message);
    }
    if (!seen.insert(node).second) return make_error("{}: node \"{}\" is listed twice", flag, node);
    nodes.push_back(std::move(node));
  }
  return nodes;
}

Result<std::pair<std::string, std::string>> assignment_flag(std::string_view flag,
                                                            const std::string& text) {
  const std::size_t equals = text.find('=');
  if (equals == std::string::npos || equals == 0) {
    return make_error("{} \"{}\": expected NAME=VALUE", flag, text);
  }
  return std::make_pair(text.substr(0, equals), text.substr(equals + 1));
}

// The edits shared by `resource add` and `resource set`.
struct EditFlags {
  std::vector<std::string> parameters;
  std::vector<std::string> removed_parameters;
  std::vector<std::string> policy;
  std::string possible_owners;
  CLI::Option* possible_owners_option = nullptr;
};

void add_edit_flags(CLI::App& leaf, EditFlags& flags, bool removals) {
  leaf.add_option("--param", flags.parameters, "set a parameter, NAME=VALUE (repeatable)")
      ->allow_extra_args(false);
  if (removals) {
    leaf.add_option("--remove-param", flags.removed_parameters, "remove a parameter (repeatable)")
        ->allow_extra_args(false);
  }
  leaf.add_option("--policy", flags.policy,
                  "set a policy field, FIELD=VALUE, e.g. restartThreshold=5 (repeatable)")
      ->allow_extra_args(false);
  flags.possible_owners_option =
      leaf.add_option("--possible-owners", flags.possible_owners,
                      "the nodes the resource may run on, comma-separated (\"\" = every node)");
}

Status read_edit_flags(const EditFlags& flags, ClusterCommand& command) {
  for (const std::string& text : flags.parameters) {
    auto parameter = assignment_flag("--param", text);
    if (!parameter.ok()) return parameter.error();
    command.parameters[parameter->first] = parameter->second;
  }
  command.removed_parameters = flags.removed_parameters;
  for (const std::string& text : flags.policy) {
    auto field = assignment_flag("--policy", text);
    if (!field.ok()) return field.error();
    cluster::ResourcePolicy scratch;
    if (Status set = config::set_policy_field(scratch, field->first, field->second); !set.ok()) {
      return make_error("--policy {}: {}", field->first, set.error().message);
    }
    command.policy.emplace_back(field->first, field->second);
  }
  if (flags.possible_owners_option->count() > 0) {
    auto nodes = node_list_flag("--possible-owners", flags.possible_owners);
    if (!nodes.ok()) return nodes.error();
    command.possible_owners = std::move(*nodes);
  }
  return ok_status();
}

void add_group_commands(CLI::App& root, const Sink& sink) {
  using Kind = ClusterCommand::Kind;
  CLI::App* group = root.add_subcommand("group", "Create, change, move and show cluster groups");
  group->require_subcommand(1);

  auto list_names = std::make_shared<Names>();
  add_leaf(*group, "list", "List the groups with their state and owner", sink,
           simple(Kind::kGroupList, list_names));

  auto show_names = std::make_shared<Names>();
  add_leaf(*group, "show", "Show a group's state, settings and resources", sink,
           simple(Kind::kGroupShow, show_names))
      ->add_option("group", show_names->group, "the group")
      ->required();

  auto delete_names = std::make_shared<Names>();
  add_leaf(*group, "delete", "Delete a group (its resources are taken offline first)", sink,
           simple(Kind::kGroupDelete, delete_names))
      ->add_option("group", delete_names->group, "the group")
      ->required();

  // group create
  struct CreateFlags {
    std::string group;
    std::string preferred_owners;
    std::string failback;
    int failover_threshold = -1;
    std::string failover_period;
    std::string retry_period;
  };
  auto create = std::make_shared<CreateFlags>();
  auto create_builder = std::make_shared<Builder>([create]() -> Result<ClusterCommand> {
    ClusterCommand command;
    command.kind = Kind::kGroupCreate;
    command.group = create->group;
    if (Status named = cluster::check_name("group", create->group); !named.ok()) {
      return named.error();
    }
    command.spec.name = create->group;
    auto owners = node_list_flag("--preferred-owners", create->preferred_owners);
    if (!owners.ok()) return owners.error();
    command.spec.preferred_owners = std::move(*owners);
    if (create->failback == "allow") command.spec.failback = cluster::FailbackPolicy::kAllow;
    if (create->failover_threshold >= 0) {
      command.spec.failover_threshold = create->failover_threshold;
    }
    if (!create->failover_period.empty()) {
      auto period = duration_flag("--failover-period", create->failover_period);
      if (!period.ok()) return period.error();
      command.spec.failover_period = *period;
    }
    if (!create->retry_period.empty()) {
      auto period = duration_flag("--retry-period-on-failure", create->retry_period);
      if (!period.ok()) return period.error();
      command.spec.retry_period_on_failure = *period;
    }
    return command;
  });
  CLI::App* create_leaf =
      add_leaf(*group, "create", "Create a group without resources", sink, create_builder);
  create_leaf->add_option("group", create->group, "the new group's name")->required();
  create_leaf->add_option("--preferred-owners", create->preferred_owners,
                          "nodes to try in order, comma-separated");
  create_leaf->add_option("--failback", create->failback, "prevent (default) or allow")
      ->check(CLI::IsMember({"prevent", "allow"}));
  create_leaf
      ->add_option("--failover-threshold", create->failover_threshold,
                   "failovers allowed within --failover-period (default: nodes - 1)")
      ->check(CLI::NonNegativeNumber);
  create_leaf->add_option("--failover-period", create->failover_period,
                          "the window failovers are counted in (default 6h)");
  create_leaf->add_option("--retry-period-on-failure", create->retry_period,
                          "how long a Failed group waits before it is tried again (default 1h)");

  // group move, online, offline
  struct WaitFlags {
    std::string group;
    std::string to;
    bool wait = false;
    std::string timeout = "60s";
  };
  auto add_waiting_leaf = [&](const std::string& name, const std::string& description, Kind kind) {
    auto flags = std::make_shared<WaitFlags>();
    auto builder = std::make_shared<Builder>([flags, kind]() -> Result<ClusterCommand> {
      ClusterCommand command;
      command.kind = kind;
      command.group = flags->group;
      command.to_node = flags->to;
      if (!flags->to.empty()) {
        if (Status named = cluster::check_name("node", flags->to); !named.ok()) {
          return make_error("--to: {}", named.error().message);
        }
      }
      command.wait = flags->wait;
      auto timeout = duration_flag("--timeout", flags->timeout);
      if (!timeout.ok()) return timeout.error();
      command.timeout = *timeout;
      return command;
    });
    CLI::App* leaf = add_leaf(*group, name, description, sink, builder);
    leaf->add_option("group", flags->group, "the group")->required();
    if (kind == Kind::kGroupMove) {
      leaf->add_option("--to", flags->to, "the target node (default: the best other node)");
    }
    CLI::Option* wait = leaf->add_flag("--wait", flags->wait, "wait until it is done");
    leaf->add_option("--timeout", flags->timeout, "how long --wait waits")
        ->needs(wait)
        ->capture_default_str();
  };
  add_waiting_leaf("move", "Move a group to another node", Kind::kGroupMove);
  add_waiting_leaf("online", "Bring a group online", Kind::kGroupOnline);
  add_waiting_leaf("offline", "Take a group offline (it stays offline until brought online)",
                   Kind::kGroupOffline);

  // group unmanage, manage
  struct MaintenanceFlags {
    std::string group;
    std::vector<std::string> resources;
  };
  auto add_maintenance_leaf = [&](const std::string& name, const std::string& description,
                                  Kind kind) {
    auto flags = std::make_shared<MaintenanceFlags>();
    auto builder = std::make_shared<Builder>([flags, kind]() -> Result<ClusterCommand> {
      ClusterCommand command;
      command.kind = kind;
      if (Status named = cluster::check_name("group", flags->group); !named.ok()) {
        return named.error();
      }
      command.group = flags->group;
      command.resources = flags->resources;
      return command;
    });
    CLI::App* leaf = add_leaf(*group, name, description, sink, builder);
    leaf->add_option("group", flags->group, "the group")->required();
    leaf->add_option("resources", flags->resources, "only these resources (default: all)");
  };
  add_maintenance_leaf("unmanage",
                       "Maintenance: the cluster stops acting on a group or some of its "
                       "resources (still polled and shown; nothing started, stopped or moved)",
                       Kind::kGroupUnmanage);
  add_maintenance_leaf("manage", "End maintenance: the cluster acts on the group again",
                       Kind::kGroupManage);
}

void add_node_commands(CLI::App& root, const Sink& sink) {
  using Kind = ClusterCommand::Kind;
  CLI::App* node = root.add_subcommand("node", "Pause, resume and drain cluster nodes");
  node->require_subcommand(1);
  struct NodeFlags {
    std::string node;
    bool no_wait = false;
    std::string timeout = "5m";
  };
  auto add_node_leaf = [&](const std::string& name, const std::string& description, Kind kind) {
    auto flags = std::make_shared<NodeFlags>();
    auto builder = std::make_shared<Builder>([flags, kind]() -> Result<ClusterCommand> {
      ClusterCommand command;
      command.kind = kind;
      if (Status named = cluster::check_name("node", flags->node); !named.ok()) {
        return named.error();
      }
      command.node = flags->node;
      command.wait = !flags->no_wait;
      auto timeout = duration_flag("--timeout", flags->timeout);
      if (!timeout.ok()) return timeout.error();
      command.timeout = *timeout;
      return command;
    });
    CLI::App* leaf = add_leaf(*node, name, description, sink, builder);
    leaf->add_option("node", flags->node, "the node")->required();
    if (kind == Kind::kNodeDrain) {
      CLI::Option* no_wait =
          leaf->add_flag("--no-wait", flags->no_wait, "return once the drain is requested");
      leaf->add_option("--timeout", flags->timeout, "how long to wait for the groups to move")
          ->excludes(no_wait)
          ->capture_default_str();
    }
  };
  add_node_leaf("pause", "Keep the node's groups where they are but place no new group there",
                Kind::kNodePause);
  add_node_leaf("resume", "Let a paused or drained node take groups again", Kind::kNodeResume);
  add_node_leaf("drain",
                "Move every group off the node gracefully, one by one, then keep it paused",
                Kind::kNodeDrain);
}

void add_resource_commands(CLI::App& root, const Sink& sink) {
  using Kind = ClusterCommand::Kind;
  CLI::App* resource =
      root.add_subcommand("resource", "Add, change and remove the resources of a group");
  resource->require_subcommand(1);

  struct ResourceFlags {
    Names names;
    std::string type;
    std::vector<std::string> depends_on;
    std::vector<std::string> on;
    bool none = false;
    EditFlags edits;
  };
  auto add_names = [](CLI::App& leaf, ResourceFlags& flags) {
    leaf.add_option("group", flags.names.group, "the group")->required();
    leaf.add_option("resource", flags.names.resource, "the resource")->required();
  };
  auto start = [](Kind kind, const ResourceFlags& flags) {
    ClusterCommand command;
    command.kind = kind;
    command.group = flags.names.group;
    command.resource = flags.names.resource;
    return command;
  };

  auto add = std::make_shared<ResourceFlags>();
  CLI::App* add_leaf_app = add_leaf(
      *resource, "add", "Add a resource to a group", sink,
      std::make_shared<Builder>([add, start]() -> Result<ClusterCommand> {
        ClusterCommand command = start(Kind::kResourceAdd, *add);
        if (Status named = cluster::check_name("resource", add->names.resource); !named.ok()) {
          return named.error();
        }
        command.type = add->type;
        if (Status read = read_edit_flags(add->edits, command); !read.ok()) return read.error();
        auto depends = parse_dependencies(add->depends_on);
        if (!depends.ok()) return make_error("--depends-on: {}", depends.error().message);
        command.depends_on = std::move(*depends);
        return command;
      }));
  add_names(*add_leaf_app, *add);
  add_leaf_app->add_option("--type", add->type, "ip, script or website")->required();
  add_edit_flags(*add_leaf_app, add->edits, false);
  add_leaf_app
      ->add_option("--depends-on", add->depends_on,
                   "resources that must be online first: R (R1|R2 = either; repeatable)")
      ->allow_extra_args(false);

  auto set = std::make_shared<ResourceFlags>();
  CLI::App* set_leaf = add_leaf(
      *resource, "set", "Change a resource's parameters, policy or possible owners", sink,
      std::make_shared<Builder>([set, start]() -> Result<ClusterCommand> {
        ClusterCommand command = start(Kind::kResourceSet, *set);
        if (Status read = read_edit_flags(set->edits, command); !read.ok()) return read.error();
        if (command.parameters.empty() && command.removed_parameters.empty() &&
            command.policy.empty() && !command.possible_owners) {
          return make_error(
              "nothing to change: give --param, --remove-param, --policy or --possible-owners");
        }
        return command;
      }));
  add_names(*set_leaf, *set);
  add_edit_flags(*set_leaf, set->edits, true);

  auto remove_names = std::make_shared<ResourceFlags>();
  CLI::App* remove_leaf =
      add_leaf(*resource, "remove", "Remove a resource from its group", sink,
               std::make_shared<Builder>([remove_names, start]() -> Result<ClusterCommand> {
                 return start(Kind::kResourceRemove, *remove_names);
               }));
  add_names(*remove_leaf, *remove_names);

  auto depend = std::make_shared<ResourceFlags>();
  CLI::App* depend_leaf =
      add_leaf(*resource, "depend", "Set what a resource depends on (replaces its dependencies)",
               sink, std::make_shared<Builder>([depend, start]() -> Result<ClusterCommand> {
                 ClusterCommand command = start(Kind::kResourceDepend, *depend);
                 if (depend->none == !depend->on.empty()) {
                   return make_error("give either --on RESOURCE[,RESOURCE...] or --none");
                 }
                 auto depends = parse_dependencies(depend->on);
                 if (!depends.ok()) return make_error("--on: {}", depends.error().message);
                 command.depends_on = std::move(*depends);
                 return command;
               }));
  add_names(*depend_leaf, *depend);
  depend_leaf
      ->add_option("--on", depend->on,
                   "R1,R2 = both must be online first; R1|R2 = either one (repeatable)")
      ->allow_extra_args(false);
  depend_leaf->add_flag("--none", depend->none, "depend on nothing");
}

void add_other_commands(CLI::App& root, const Sink& sink) {
  using Kind = ClusterCommand::Kind;
  CLI::App* cluster_app = root.add_subcommand("cluster", "Show the failover cluster");
  cluster_app->require_subcommand(1);
  struct StatusFlags {
    bool watch = false;
    std::string interval = "1s";
    int frames = 0;
  };
  auto status = std::make_shared<StatusFlags>();
  CLI::App* status_leaf =
      add_leaf(*cluster_app, "status", "Show the nodes, groups and resources of the cluster", sink,
               std::make_shared<Builder>([status]() -> Result<ClusterCommand> {
                 ClusterCommand command;
                 command.kind = Kind::kStatus;
                 command.watch = status->watch;
                 auto interval = duration_flag("--interval", status->interval);
                 if (!interval.ok()) return interval.error();
                 command.interval = *interval;
                 if (status->frames > 0) command.frames = status->frames;
                 command.redraw = ::isatty(STDOUT_FILENO) != 0;
                 return command;
               }));
  CLI::Option* watch_flag = status_leaf->add_flag(
      "-w,--watch", status->watch,
      "keep the view open: redraw it when it changes, with the last events, until Ctrl-C");
  status_leaf->add_option("--interval", status->interval, "how often --watch looks")
      ->needs(watch_flag)
      ->capture_default_str();
  status_leaf->add_option("--frames", status->frames, "stop --watch after this many looks")
      ->needs(watch_flag)
      ->check(CLI::PositiveNumber);
  CLI::App* config_app =
      root.add_subcommand("config", "Show the cluster's shared web configuration");
  config_app->require_subcommand(1);
  add_leaf(*config_app, "status",
           "Show the shared configuration's revision and the revision each node serves", sink,
           simple(Kind::kConfigStatus, std::make_shared<Names>()));
  auto revision = std::make_shared<std::int64_t>(0);
  CLI::App* get_leaf = add_leaf(
      *config_app, "get", "Print the shared sites and pools as manifests (or JSON with -o json)",
      sink, std::make_shared<Builder>([revision]() -> Result<ClusterCommand> {
        ClusterCommand command;
        command.kind = Kind::kConfigGet;
        command.revision = *revision;
        return command;
      }));
  get_leaf->add_option("--revision", *revision, "as of this store revision (default: now)")
      ->check(CLI::NonNegativeNumber);

  struct DiffFlags {
    std::vector<std::string> files;
    std::int64_t from = 0;
    std::int64_t to = 0;
    std::string state_dir = "/var/lib/clusweb";
  };
  auto diff = std::make_shared<DiffFlags>();
  CLI::App* diff_leaf = add_leaf(
      *config_app, "diff",
      "Show what applying manifest files would change (-f), or what changed between revisions",
      sink, std::make_shared<Builder>([diff]() -> Result<ClusterCommand> {
        if (diff->files.empty() == (diff->from == 0)) {
          return make_error(
              "give either -f FILE (what applying it would change) or --from "
              "REVISION [--to REVISION]");
        }
        ClusterCommand command;
        command.kind = Kind::kConfigDiff;
        command.files = diff->files;
        command.revision = diff->from;
        command.to_revision = diff->to;
        command.state_dir = diff->state_dir;
        return command;
      }));
  diff_leaf->add_option("-f,--file", diff->files, "manifest file or folder (repeatable)")
      ->allow_extra_args(false);
  diff_leaf->add_option("--from", diff->from, "the older revision")->check(CLI::PositiveNumber);
  diff_leaf
      ->add_option("--state-dir", diff->state_dir,
                   "this node's state folder: its data key seals the TLS keys of https bindings")
      ->envname("CLUSWEB_STATE_DIR")
      ->capture_default_str();
  diff_leaf->add_option("--to", diff->to, "the newer revision (default: now)")
      ->check(CLI::PositiveNumber);

  auto history_limit = std::make_shared<int>(20);
  CLI::App* history_leaf = add_leaf(
      *config_app, "history", "List the latest revisions of the shared configuration, newest first",
      sink, std::make_shared<Builder>([history_limit]() -> Result<ClusterCommand> {
        ClusterCommand command;
        command.kind = Kind::kConfigHistory;
        command.limit = *history_limit;
        return command;
      }));
  history_leaf->add_option("-n,--limit", *history_limit, "at most this many revisions")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();

  struct DeleteFlags {
    std::vector<std::string> objects;
    bool dry_run = false;
  };
  auto remove = std::make_shared<DeleteFlags>();
  CLI::App* delete_leaf =
      add_leaf(*config_app, "delete", "Remove sites and pools from the shared configuration", sink,
               std::make_shared<Builder>([remove]() -> Result<ClusterCommand> {
                 ClusterCommand command;
                 command.kind = Kind::kConfigDelete;
                 command.objects = remove->objects;
                 command.dry_run = remove->dry_run;
                 return command;
               }));
  delete_leaf->add_option("objects", remove->objects, "site/NAME or pool/NAME (one or more)")
      ->required();
  delete_leaf->add_flag("--dry-run", remove->dry_run, "show what would be removed, write nothing");

  // The data key and the moves of the whole configuration.
  struct KeyFlags {
    std::string password_file;
    std::string state_dir = "/var/lib/clusweb";
    std::string kdf = "moderate";
    std::string file;
    bool dry_run = false;
  };
  auto add_key_leaf = [&](const char* name, const char* description, Kind kind) {
    auto flags = std::make_shared<KeyFlags>();
    CLI::App* leaf = add_leaf(*config_app, name, description, sink,
                              std::make_shared<Builder>([flags, kind]() -> Result<ClusterCommand> {
                                ClusterCommand command;
                                command.kind = kind;
                                command.password_file = flags->password_file;
                                command.state_dir = flags->state_dir;
                                command.kdf = flags->kdf;
                                command.file = flags->file;
                                command.dry_run = flags->dry_run;
                                return command;
                              }));
    CLI::Option* password = leaf->add_option("--password-file", flags->password_file,
                                             "file whose first line is the administrator's "
                                             "password of the data key");
    if (kind != Kind::kConfigExport && kind != Kind::kConfigImport) password->required();
    if (kind != Kind::kConfigExport) {
      leaf->add_option("--state-dir", flags->state_dir,
                       "this node's state folder, where it keeps the data key (data.key)")
          ->envname("CLUSWEB_STATE_DIR")
          ->capture_default_str();
    }
    if (kind == Kind::kConfigInitKey || kind == Kind::kConfigImport) {
      leaf->add_option("--kdf", flags->kdf,
                       "how hard the password is made to guess: moderate (Argon2id, 3 passes, "
                       "256 MiB) or interactive (2 passes, 64 MiB)")
          ->check(CLI::IsMember({"moderate", "interactive"}))
          ->capture_default_str();
    }
    return std::pair{leaf, flags};
  };
  add_key_leaf("init-key", "Create the cluster's data key, wrapped with a password",
               Kind::kConfigInitKey);
  add_key_leaf("join-key", "Unwrap the cluster's data key with its password and keep it here",
               Kind::kConfigJoinKey);
  auto [export_leaf, export_flags] = add_key_leaf(
      "export", "Write the whole shared configuration with its wrapped key", Kind::kConfigExport);
  export_leaf->add_option("-f,--file", export_flags->file,
                          "write to this file (mode 0600) instead of standard output");
  auto [import_leaf, import_flags] = add_key_leaf(
      "import", "Replace the shared configuration with an export's", Kind::kConfigImport);
  import_leaf->add_option("file", import_flags->file, "the export")->required();
  import_leaf->add_flag("--dry-run", import_flags->dry_run,
                        "show what would change, write nothing");

  struct EventFlags {
    bool follow = false;
    std::uint64_t after = 0;
    CLI::Option* after_option = nullptr;
    int limit = 0;
    CLI::Option* limit_option = nullptr;
  };
  auto events = std::make_shared<EventFlags>();
  CLI::App* events_leaf = add_leaf(root, "events", "Show the cluster's event log", sink,
                                   std::make_shared<Builder>([events]() -> Result<ClusterCommand> {
                                     ClusterCommand command;
                                     command.kind = Kind::kEvents;
                                     command.follow = events->follow;
                                     if (events->after_option->count() > 0)
                                       command.after = events->after;
                                     if (events->limit_option->count() > 0)
                                       command.limit = events->limit;
                                     return command;
                                   }));
  events_leaf->add_flag("-f,--follow", events->follow, "keep printing new events as they come");
  events->after_option =
      events_leaf->add_option("--after", events->after, "only events after this sequence number");
  events->limit_option =
      events_leaf->add_option("-n,--limit", events->limit, "at most this many events")
          ->check(CLI::PositiveNumber);

  struct ApplyFlags {
    std::vector<std::string> files;
    bool dry_run = false;
    std::string state_dir = "/var/lib/clusweb";
  };
  auto apply_flags = std::make_shared<ApplyFlags>();
  CLI::App* apply_leaf =
      add_leaf(root, "apply", "Create or change the groups of manifest files, all or nothing", sink,
               std::make_shared<Builder>([apply_flags]() -> Result<ClusterCommand> {
                 ClusterCommand command;
                 command.kind = Kind::kApply;
                 command.files = apply_flags->files;
                 command.dry_run = apply_flags->dry_run;
                 command.state_dir = apply_flags->state_dir;
                 return command;
               }));
  apply_leaf->add_option("-f,--file", apply_flags->files, "manifest file or folder (repeatable)")
      ->required()
      ->allow_extra_args(false);
  apply_leaf->add_flag("--dry-run", apply_flags->dry_run,
                       "check with the agent what would change, write nothing");
  apply_leaf
      ->add_option("--state-dir", apply_flags->state_dir,
                   "this node's state folder: its data key seals the TLS keys of https bindings")
      ->envname("CLUSWEB_STATE_DIR")
      ->capture_default_str();
}

}  // namespace

Pacing real_time_pacing() {
  return Pacing{[] { return std::chrono::steady_clock::now(); },
                [](milliseconds duration) { std::this_thread::sleep_for(duration); }};
}

void add_cluster_commands(CLI::App& root, int& exit_code) {
  add_cluster_commands(root, exit_code, std::cout, std::cerr);
}

void add_cluster_commands(CLI::App& root, int& exit_code, std::ostream& out, std::ostream& err,
                          Pacing pacing) {
  const Sink sink{&exit_code, &out, &err, std::move(pacing)};
  add_other_commands(root, sink);
  add_group_commands(root, sink);
  add_node_commands(root, sink);
  add_resource_commands(root, sink);
}

std::string agent_socket_path(std::string_view socket_flag, std::string_view run_dir_flag,
                              const char* run_dir_env) {
  return service_socket_path(socket_flag, run_dir_flag, run_dir_env, kEndpoint.socket_file);
}

int run_cluster_command(const ClusterCommand& command, AdminClient& client, std::ostream& out,
                        std::ostream& err, const Pacing& pacing) {
  using Kind = ClusterCommand::Kind;
  switch (command.kind) {
    case Kind::kStatus:
      if (command.watch) return watch_status(command, client, out, pacing);
      return print_reply(client.get("/v1/cluster?store=1"), command.output, format_cluster_status,
                         out, err);
    case Kind::kConfigStatus:
      return print_reply(client.get("/v1/config"), command.output, format_config_status, out, err);
    case Kind::kConfigGet:
      return print_reply(client.get(fmt::format("/v1/config/web?revision={}", command.revision)),
                         command.output, format_config_manifests, out, err);
    case Kind::kConfigDiff:
      return config_diff(command, client, out, err);
    case Kind::kConfigHistory:
      return print_reply(
          client.get(fmt::format("/v1/config/history?limit={}", command.limit.value_or(20))),
          command.output, format_config_history, out, err);
    case Kind::kConfigDelete:
      return config_delete(command, client, out, err);
    case Kind::kConfigInitKey:
    case Kind::kConfigJoinKey:
    case Kind::kConfigExport:
    case Kind::kConfigImport: {
      KeyCommand key{command.password_file,
                     command.state_dir,
                     command.kdf == "interactive" ? secrets::kInteractive : secrets::kModerate,
                     command.file,
                     command.dry_run,
                     command.output};
      if (command.kind == Kind::kConfigInitKey) return init_key(key, client, out, err);
      if (command.kind == Kind::kConfigJoinKey) return join_key(key, client, out, err);
      if (command.kind == Kind::kConfigExport) return export_config(key, client, out, err);
      return import_config(key, client, out, err);
    }
    case Kind::kNodePause:
    case Kind::kNodeResume:
    case Kind::kNodeDrain:
      return node_action(command, client, out, err, pacing);
    case Kind::kGroupList:
      return group_list(command, client, out, err);
    case Kind::kGroupShow:
      return print_reply(client.get(group_target(command.group)), command.output,
                         format_group_details, out, err);
    case Kind::kGroupCreate:
      return group_create(command, client, out, err);
    case Kind::kGroupDelete:
      return group_delete(command, client, out, err);
    case Kind::kGroupMove:
      return group_move(command, client, out, err, pacing);
    case Kind::kGroupOnline:
    case Kind::kGroupOffline:
      return group_action(command, client, out, err, pacing);
    case Kind::kGroupUnmanage:
    case Kind::kGroupManage:
      return group_maintenance(command, client, out, err);
    case Kind::kResourceAdd:
    case Kind::kResourceSet:
    case Kind::kResourceRemove:
    case Kind::kResourceDepend:
      return resource_edit(command, client, out, err);
    case Kind::kEvents:
      if (command.follow) return follow_events(command, client, out, err);
      return list_events(command, client, out, err);
    case Kind::kApply:
      return apply(command, client, out, err);
  }
  report(err, "unknown cluster command");
  return kExitRefused;
}

config::PolicyDefaults policy_defaults(std::ostream& err) {
  return [&err](const cluster::ResourceSpec& resource) {
    return resources::starting_policy(
        resource, [&err](const std::string& why) { report(err, "warning: " + why); });
  };
}

Status edit_group(const ClusterCommand& command, cluster::GroupSpec& group,
                  const config::PolicyDefaults& defaults) {
  using Kind = ClusterCommand::Kind;
  cluster::ResourceSpec* resource = find_resource(group, command.resource);
  if (command.kind == Kind::kResourceAdd) {
    if (resource != nullptr) {
      return make_error("group \"{}\" already has a resource named \"{}\"", group.name,
                        command.resource);
    }
    cluster::ResourceSpec added;
    added.name = command.resource;
    added.type = command.type;
    group.resources.push_back(std::move(added));
    resource = &group.resources.back();
  } else if (resource == nullptr) {
    return no_such_resource(group, command.resource);
  }

  switch (command.kind) {
    case Kind::kResourceAdd:
    case Kind::kResourceSet:
      for (const auto& [name, value] : command.parameters) resource->parameters[name] = value;
      for (const std::string& name : command.removed_parameters) {
        if (resource->parameters.erase(name) == 0) {
          return make_error("resource \"{}\" has no parameter \"{}\"", resource->name, name);
        }
      }
      // A new resource starts from its type's policy; --policy settings win.
      if (command.kind == Kind::kResourceAdd && defaults) resource->policy = defaults(*resource);
      for (const auto& [field, value] : command.policy) {
        if (Status set = config::set_policy_field(resource->policy, field, value); !set.ok()) {
          return make_error("policy field {}: {}", field, set.error().message);
        }
      }
      if (command.possible_owners) resource->possible_owners = *command.possible_owners;
      if (command.depends_on) resource->depends_on = *command.depends_on;
      if (Status typed = check_type(*resource); !typed.ok()) return typed;
      if (Status depends = check_dependencies(group, *resource); !depends.ok()) return depends;
      break;
    case Kind::kResourceDepend:
      resource->depends_on = command.depends_on.value_or(decltype(resource->depends_on){});
      if (Status depends = check_dependencies(group, *resource); !depends.ok()) return depends;
      break;
    case Kind::kResourceRemove: {
      std::vector<std::string> dependents;
      for (const cluster::ResourceSpec& other : group.resources) {
        for (const auto& any_of : other.depends_on) {
          if (std::find(any_of.begin(), any_of.end(), command.resource) != any_of.end()) {
            dependents.push_back(other.name);
            break;
          }
        }
      }
      if (!dependents.empty()) {
        return make_error(
            "cannot remove resource \"{}\": {} depend{} on it (change that first with \"clusweb "
            "resource depend\")",
            command.resource, join(dependents, ", "), dependents.size() == 1 ? "s" : "");
      }
      std::erase_if(group.resources,
                    [&](const cluster::ResourceSpec& r) { return r.name == command.resource; });
      break;
    }
    default:
      return make_error("not a resource command");
  }
  return cluster::validate(group);
}

Result<std::vector<std::vector<std::string>>> parse_dependencies(
    const std::vector<std::string>& terms) {
  std::vector<std::vector<std::string>> depends_on;
  for (const std::string& text : terms) {
    for (const std::string& term : split(text, ',')) {
      std::vector<std::string> any_of = split(term, '|');
      for (const std::string& name : any_of) {
        if (Status named = cluster::check_name("resource", name); !named.ok()) {
          return make_error("\"{}\": {}", text, named.error().message);
        }
      }
      depends_on.push_back(std::move(any_of));
    }
  }
  return depends_on;
}

std::string format_dependencies(const std::vector<std::vector<std::string>>& depends_on) {
  std::vector<std::string> terms;
  terms.reserve(depends_on.size());
  for (const auto& any_of : depends_on) terms.push_back(join(any_of, "|"));
  return join(terms, ",");
}

Result<std::string> format_group_table(std::string_view json) {
  Result<Json> doc = parse_object(json, kClusterAgent);
  if (!doc.ok()) return doc.error();
  return groups_table(*doc);
}

Result<std::string> format_config_status(std::string_view json) {
  Result<Json> doc = parse_object(json, kClusterAgent);
  if (!doc.ok()) return doc.error();
  const Json& config = *doc;
  const std::vector<std::string> sites = strings_of(config, "sites");
  const std::vector<std::string> pools = strings_of(config, "pools");
  std::string text = render_fields({{"revision", {count_of(config, "revision")}},
                                    {"sites", {join_or(sites, ", ", "none")}},
                                    {"pools", {join_or(pools, ", ", "none")}}});
  text += '\n';
  std::vector<Row> rows{{"NODE", "STATE", "SERVES", "PROBLEM"}};
  for (const Json* node : elements_of(config, "nodes")) {
    rows.push_back({text_of(*node, "node"), flag_of(*node, "up") ? "up" : "down",
                    count_of(*node, "revision"), text_of(*node, "problem")});
  }
  if (rows.size() == 1) return text + "no nodes\n";
  return text + render_table(rows);
}

// "20 KiB", "1.5 MiB": sizes as an operator reads them.
std::string byte_size(std::int64_t bytes) {
  constexpr std::string_view kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  auto value = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  if (unit == 0 || value >= 100) return fmt::format("{:.0f} {}", value, kUnits[unit]);
  return fmt::format("{:.1f} {}", value, kUnits[unit]);
}

// The store's members as the agent found them: health, leader, size, alarms; why a member is
// unhealthy below the table (the reasons are long).
std::string store_section(const Json& store) {
  if (const Json* error = member(store, "error"); error != nullptr && error->is_string()) {
    return fmt::format("STORE: {}\n", error->get<std::string>());
  }
  const std::vector<const Json*> members = elements_of(store, "members");
  std::size_t healthy = 0;
  std::string leader = "none known";
  for (const Json* one : members) {
    healthy += flag_of(*one, "healthy") ? 1 : 0;
    if (flag_of(*one, "leader")) {
      leader = text_of(*one, "name");
      // Its followers name it until they elect another.
      if (!flag_of(*one, "healthy")) leader += " (not answering)";
    }
  }
  std::string text = fmt::format("STORE {}: {} of {} members healthy, leader {}\n",
                                 text_of(store, "kind"), healthy, members.size(), leader);
  std::vector<Row> rows{
      {"MEMBER", "ENDPOINT", "HEALTH", "LEADER", "DB SIZE", "RAFT TERM", "VERSION", "ALARMS"}};
  std::string reasons;
  for (const Json* one : members) {
    std::string name = text_of(*one, "name");
    if (name.empty() || name == kAbsent) name = "(unstarted " + text_of(*one, "id") + ")";
    if (flag_of(*one, "learner")) name += " (learner)";
    const bool ok = flag_of(*one, "healthy");
    std::string size(kAbsent);
    if (ok) {
      size = byte_size(integer_of(*one, "dbSize").value_or(0));
      if (std::int64_t in_use = integer_of(*one, "dbSizeInUse").value_or(0); in_use > 0) {
        size += fmt::format(" ({} in use)", byte_size(in_use));
      }
    }
    std::string endpoint = text_of(*one, "endpoint");
    if (endpoint.empty()) endpoint = std::string(kAbsent);
    if (!ok) reasons += fmt::format("{}: {}\n", name, text_of(*one, "error"));
    rows.push_back({std::move(name), std::move(endpoint), ok ? "healthy" : "unhealthy",
                    flag_of(*one, "leader") ? "leader" : "", std::move(size),
                    ok ? count_of(*one, "raftTerm") : std::string(kAbsent),
                    ok ? text_of(*one, "version") : std::string(kAbsent),
                    join_or(strings_of(*one, "alarms"), ", ", "")});
  }
  text += render_table(rows);
  text += reasons;
  for (const Json* lost : elements_of(store, "unreachable")) {
    text += fmt::format("endpoint {} unreachable: {}\n", text_of(*lost, "endpoint"),
                        text_of(*lost, "error"));
  }
  return text;
}

Result<std::string> format_cluster_status(std::string_view json) {
  Result<Json> doc = parse_object(json, kClusterAgent);
  if (!doc.ok()) return doc.error();
  const Json& cluster = *doc;
  std::string text = render_fields({{"cluster", {text_of(cluster, "cluster")}},
                                    {"node", {text_of(cluster, "node")}},
                                    {"coordinator", {text_of(cluster, "coordinator")}},
                                    {"revision", {count_of(cluster, "revision")}}});

  text += '\n';
  const std::vector<const Json*> nodes = elements_of(cluster, "nodes");
  if (nodes.empty()) {
    text += "no nodes\n";
  } else {
    std::vector<Row> rows{{"NODE", "STATE", "GROUPS"}};
    for (const Json* node : nodes) {
      std::string state = flag_of(*node, "up") ? "up" : "down";
      if (flag_of(*node, "draining")) {
        state += integer_of(*node, "groups").value_or(0) == 0 ? ", drained" : ", draining";
      } else if (flag_of(*node, "paused")) {
        state += ", paused";
      }
      rows.push_back({text_of(*node, "name"), std::move(state), count_of(*node, "groups")});
    }
    text += render_table(rows);
  }

  text += '\n';
  text += groups_table(cluster);
  std::vector<Row> resources{{"GROUP", "RESOURCE", "TYPE", "STATE", "RESTARTS", "LAST ERROR"}};
  for (const Json* group : elements_of(cluster, "groups")) {
    for (const Json* resource : elements_of(*group, "resources")) {
      resources.push_back({text_of(*group, "name"), text_of(*resource, "name"),
                           text_of(*resource, "type"), resource_state(*resource),
                           count_of(*resource, "restarts"), text_of(*resource, "lastError")});
    }
  }
  if (resources.size() > 1) text += '\n' + render_table(resources);
  if (const Json* store = member(cluster, "store"); store != nullptr && store->is_object()) {
    text += '\n' + store_section(*store);
  }
  return text;
}

Result<std::string> format_group_details(std::string_view json) {
  Result<Json> doc = parse_object(json, kClusterAgent);
  if (!doc.ok()) return doc.error();
  const Json none = Json::object();
  const Json& status = object_or(*doc, "status", none);
  const Json& spec = object_or(*doc, "spec", none);

  std::string threshold = count_of(spec, "failoverThreshold");
  if (threshold == kAbsent) threshold = "nodes - 1";
  std::string failback = text_of(spec, "failback");
  if (const Json* window = member(spec, "failbackWindow"); window != nullptr) {
    failback +=
        fmt::format(", between {:02}:00 and {:02}:59 UTC", integer_of(*window, "start").value_or(0),
                    integer_of(*window, "end").value_or(23));
  }
  std::string text = render_fields({
      {"name", {text_of(*doc, "name", text_of(spec, "name"))}},
      {"state", {group_state(status)}},
      {"owner", {text_of(status, "owner")}},
      {"placement", {text_of(status, "placement")}},
      {"fencing token", {count_of(status, "token")}},
      {"reason", {text_of(status, "reason")}},
      {"revision", {count_of(*doc, "revision")}},
      {"preferred owners", {join_or(strings_of(spec, "preferredOwners"), ", ", "any")}},
      {"failback", {failback}},
      {"anti-affinity classes", {join_or(strings_of(spec, "antiAffinityClasses"), ", ", "none")}},
      {"failover threshold", {threshold}},
      {"failover period", {text_of(spec, "failoverPeriod")}},
      {"retry period on failure", {text_of(spec, "retryPeriodOnFailure")}},
  });

  // The spec's resources in its order, with the status of each; then any the status has
  // that the spec does not (a change not yet carried out).
  std::map<std::string, const Json*> states;
  for (const Json* resource : elements_of(status, "resources")) {
    states.emplace(text_of(*resource, "name"), resource);
  }
  std::vector<Row> rows{{"NAME", "TYPE", "STATE", "RESTARTS", "DEPENDS ON", "POSSIBLE OWNERS",
                         "PARAMETERS", "LAST ERROR"}};
  for (const Json* resource : elements_of(spec, "resources")) {
    const std::string name = text_of(*resource, "name");
    const auto found = states.find(name);
    const Json& state = found != states.end() ? *found->second : none;
    if (found != states.end()) states.erase(found);

    std::vector<std::vector<std::string>> depends_on;
    for (const Json* any_of : elements_of(*resource, "dependsOn")) {
      std::vector<std::string> names;
      if (any_of->is_array()) {
        for (const Json& item : *any_of) {
          if (item.is_string()) names.push_back(item.get<std::string>());
        }
      }
      depends_on.push_back(std::move(names));
    }
    std::vector<std::string> parameters;
    for (const auto& [key, value] : object_or(*resource, "parameters", none).items()) {
      parameters.push_back(key + "=" +
                           (value.is_string() ? value.get<std::string>() : value.dump()));
    }
    rows.push_back({name, text_of(*resource, "type"), resource_state(state),
                    count_of(state, "restarts"),
                    depends_on.empty() ? std::string(kAbsent) : format_dependencies(depends_on),
                    join_or(strings_of(*resource, "possibleOwners"), ",", "any"),
                    join_or(parameters, " ", kAbsent), text_of(state, "lastError")});
  }
  for (const auto& [name, state] : states) {
    rows.push_back({name, text_of(*state, "type"), text_of(*state, "state"),
                    count_of(*state, "restarts"), "-", "-", "-", text_of(*state, "lastError")});
  }
  if (rows.size() == 1) return text + "resources:               none\n";
  return text + "resources:\n" + render_table(rows, "  ");
}

Result<std::string> format_event_table(std::string_view json) {
  Result<Json> doc = parse_object(json, kClusterAgent);
  if (!doc.ok()) return doc.error();
  const std::vector<const Json*> events = elements_of(*doc, "events");
  if (events.empty()) return std::string("no events\n");
  std::vector<Row> rows{{"SEQ", "TIME", "NODE", "GROUP", "RESOURCE", "WHAT", "WHY"}};
  for (const Json* event : events) {
    rows.push_back({count_of(*event, "seq"), readable_time(text_of(*event, "time")),
                    text_of(*event, "node"), text_of(*event, "group"), text_of(*event, "resource"),
                    text_of(*event, "what"), text_of(*event, "why", "")});
  }
  return render_table(rows);
}

std::string format_event_line(std::string_view line) {
  Result<Json> doc = parse_object(line, kClusterAgent);
  if (!doc.ok()) return std::string(line) + '\n';
  const Json& event = *doc;
  // Streamed lines cannot be aligned on the widest cell; typical widths keep them readable.
  std::string text = fmt::format(
      "{:<6} {:<23}  {:<8}  {:<12}  {:<12}  {:<10}  {}", count_of(event, "seq"),
      readable_time(text_of(event, "time")), text_of(event, "node"), text_of(event, "group"),
      text_of(event, "resource"), text_of(event, "what"), text_of(event, "why", ""));
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text + '\n';
}

Result<std::string> format_apply_result(std::string_view json, bool dry_run) {
  Result<Json> doc = parse_object(json, kClusterAgent);
  if (!doc.ok()) return doc.error();
  std::string text = dry_run ? "dry run: nothing was written\n" : "";
  if (const Json* diff = member(*doc, "configDiff");
      dry_run && diff != nullptr && diff->is_array() && !diff->empty()) {
    text += "shared configuration:\n" + format_config_changes(diff);
  }
  return text + render_fields({
                    {dry_run ? "would create" : "created",
                     {join_or(strings_of(*doc, "created"), ", ", "none")}},
                    {dry_run ? "would change" : "changed",
                     {join_or(strings_of(*doc, "changed"), ", ", "none")}},
                    {"unchanged", {join_or(strings_of(*doc, "unchanged"), ", ", "none")}},
                });
}

}  // namespace clusweb::cli
