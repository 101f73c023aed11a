#include "cluster/placement.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <string_view>
#include <tuple>
#include <utility>

#include "base/duration.h"

namespace clusweb::cluster {
namespace {

using std::chrono::milliseconds;

constexpr size_t kNotPreferred = std::numeric_limits<size_t>::max();

// ISO 8601 in UTC, computed from the time point alone (no time zone database, no locale), so
// every node writes the same text for the same decision.
std::string format_time(WallTime time) {
  const auto in_ms = std::chrono::floor<milliseconds>(time);
  const auto day = std::chrono::floor<std::chrono::days>(in_ms);
  const std::chrono::year_month_day date(day);
  const std::chrono::hh_mm_ss clock(in_ms - day);
  std::string text =
      fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", static_cast<int>(date.year()),
                  static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                  clock.hours().count(), clock.minutes().count(), clock.seconds().count());
  if (clock.subseconds().count() != 0) text += fmt::format(".{:03}", clock.subseconds().count());
  return text + "Z";
}

std::string count_of(int64_t count, std::string_view singular, std::string_view plural) {
  return fmt::format("{} {}", count, count == 1 ? singular : plural);
}

int utc_hour(WallTime time) {
  const auto since_midnight = time - std::chrono::floor<std::chrono::days>(time);
  return static_cast<int>(std::chrono::floor<std::chrono::hours>(since_midnight).count());
}

bool in_window(WallTime at, WallTime now, milliseconds period) {
  return at <= now && at > now - period;
}

struct Outcome {
  std::optional<std::string> node;
  std::string reason;
};

// What place() works out once per group before applying the rules.
struct GroupView {
  const GroupState* state = nullptr;
  // Nodes that failed the group within failover_period -> the latest such failover.
  std::map<std::string, WallTime> failed_by;
  // Nodes with a hard failover of the group, of any age -> the latest.
  std::map<std::string, WallTime> banned;
  // The latest fatal failover, of any age.
  std::optional<FailoverRecord> fatal;
  // The owner a pending move without a target takes the group away from. Only an owner: with
  // none, the placement is usually the node the move already chose (the old owner released, the
  // new one has not acquired yet), and excluding it would send the group on again.
  std::optional<std::string> excluded;
  // Why earlier rules did not settle the group; they lead the final reason.
  std::vector<std::string> notes;
  std::optional<Outcome> outcome;
};

class Placer {
 public:
  Placer(const std::vector<NodeState>& nodes, WallTime now) : now_(now) {
    // By name, so every scan (least loaded, ties, "no node can run it") runs in name order
    // whatever order the caller listed the nodes in; a repeated name keeps its first entry.
    for (const NodeState& node : nodes) nodes_.emplace(node.name, node);
  }

  GroupView view_of(const GroupState& group) const {
    GroupView view;
    view.state = &group;
    for (const FailoverRecord& failover : group.failovers) {
      if (failover.failure == FailureClass::kHard) {
        auto [it, inserted] = view.banned.emplace(failover.from_node, failover.at);
        if (!inserted) it->second = std::max(it->second, failover.at);
      } else if (failover.failure == FailureClass::kFatal) {
        if (!view.fatal || view.fatal->at < failover.at) view.fatal = failover;
      }
      if (!in_window(failover.at, now_, group.spec.failover_period)) continue;
      auto [it, inserted] = view.failed_by.emplace(failover.from_node, failover.at);
      if (!inserted) it->second = std::max(it->second, failover.at);
    }
    return view;
  }

  // Rules 1-4: what needs no load counts. Leaves view.outcome empty when rules 5-8 decide.
  void decide_first(GroupView& view) const {
    const GroupState& group = *view.state;
    const GroupSpec& spec = group.spec;
    if (group.unmanaged) {
      auto owner = group.owner ? nodes_.find(*group.owner) : nodes_.end();
      if (owner != nodes_.end() && owner->second.up) {
        view.outcome =
            Outcome{*group.owner, fmt::format("unmanaged: stays on its owner {}", *group.owner)};
        return;
      }
      if (!group.owner) {
        view.outcome = group.placement
                           ? Outcome{*group.placement,
                                     fmt::format("unmanaged: stays placed on {}", *group.placement)}
                           : Outcome{std::nullopt, "unmanaged: placed nowhere"};
        return;
      }
      // An owner that left the membership while it still owns the group is an agent being
      // stopped: it takes the group offline once the rules below place it elsewhere.
      view.notes.push_back(fmt::format("unmanaged, but its owner {} is leaving", *group.owner));
    }
    if (group.offline_requested) {
      view.outcome = Outcome{std::nullopt, "offline by administrator"};
      return;
    }
    if (view.fatal) {
      view.outcome = Outcome{
          std::nullopt,
          fmt::format("stopped on every node: a resource was found misconfigured on {} at {}; "
                      "after fixing it, `clusweb group online {}` clears this",
                      view.fatal->from_node, format_time(view.fatal->at), spec.name)};
      return;
    }

    if (auto failed = failed_state(group)) {
      if (failed->waiting) {
        view.outcome = Outcome{std::nullopt, std::move(failed->note)};
        return;
      }
      view.notes.push_back(std::move(failed->note));
    }

    const bool move_pending =
        group.move && (!group.owner || group.owner_token < group.move->revision);
    if (move_pending && !group.move->to_node.empty()) {
      const std::string& target = group.move->to_node;
      if (auto why = why_not_new(view, target)) {
        view.notes.push_back(
            fmt::format("cannot move to {} as requested: {} {}", target, target, *why));
      } else {
        view.outcome = Outcome{
            target, with_notes(view, group.owner == target
                                         ? fmt::format("stays on {} as requested", target)
                                         : fmt::format("moves to {} as requested", target))};
        return;
      }
    } else if (move_pending && group.owner) {
      view.excluded = group.owner;
      view.notes.push_back(fmt::format("moving away from {} as requested", *group.owner));
    }

    std::optional<std::string> sticky;
    std::string stay_reason;
    if (group.owner && group.owner != view.excluded) {
      if (auto why = why_not_owner(view, *group.owner)) {
        view.notes.push_back(fmt::format("its owner {} {}", *group.owner, *why));
      } else {
        sticky = group.owner;
        stay_reason = is_paused(*group.owner)
                          ? fmt::format("stays on its owner {}, which is paused", *group.owner)
                          : fmt::format("stays on its owner {}", *group.owner);
      }
    } else if (!group.owner && group.placement) {
      const std::string& placed = *group.placement;
      if (auto why = why_not_fresh(view, placed)) {
        view.notes.push_back(fmt::format("its node {} {}", placed, *why));
      } else {
        sticky = placed;
        stay_reason = fmt::format("stays on {}, where it is placed", placed);
      }
    }
    if (!sticky) return;

    if (spec.failback == FailbackPolicy::kAllow) {
      const size_t sticky_rank = preference(spec, *sticky);
      for (size_t i = 0; i < spec.preferred_owners.size() && i < sticky_rank; ++i) {
        const std::string& preferred = spec.preferred_owners[i];
        if (why_not_fresh(view, preferred)) continue;
        if (spec.failback_window && !spec.failback_window->contains(utc_hour(now_))) {
          view.notes.push_back(
              fmt::format("fails back to {} only between {:02}:00 and {:02}:59 UTC", preferred,
                          spec.failback_window->start_hour, spec.failback_window->end_hour));
          break;
        }
        view.outcome = Outcome{
            preferred, with_notes(view, fmt::format("fails back to preferred owner {} from {}",
                                                    preferred, *sticky))};
        return;
      }
    }
    view.outcome = Outcome{sticky, with_notes(view, stay_reason)};
  }

  // Rules 5-8, for the groups rules 1-4 left open, counting the load decided so far.
  void decide_rest(GroupView& view) const {
    const GroupState& group = *view.state;
    const GroupSpec& spec = group.spec;

    // Rules 5 and 6 among the nodes that run no group of the same anti-affinity class; when
    // every candidate does, among all of them (the classes are soft).
    std::vector<std::string> avoided;
    if (decide_fresh(view, true, avoided)) return;
    if (!avoided.empty()) {
      view.notes.push_back(
          fmt::format("every available node runs a group of its anti-affinity "
                      "class: {}",
                      fmt::join(avoided, "; ")));
      if (decide_fresh(view, false, avoided)) return;
    }

    // Every node left failed the group recently. The one that failed it longest ago has had the
    // most time to recover; among equals, rules 5 and 6 order them.
    const std::string* oldest = nullptr;
    auto rank = [&](const std::string& name) {
      auto failed = view.failed_by.find(name);
      const WallTime at = failed == view.failed_by.end() ? WallTime::min() : failed->second;
      return std::make_tuple(at, preference(spec, name), load_of(name));
    };
    for (const auto& [name, node] : nodes_) {
      if (name == view.excluded || why_not_new(view, name)) continue;
      if (oldest == nullptr || rank(name) < rank(*oldest)) oldest = &name;
    }
    if (oldest != nullptr) {
      view.outcome = Outcome{
          *oldest, with_notes(view, fmt::format("every available node failed it within {}; {} "
                                                "failed it longest ago, at {}",
                                                format_duration(spec.failover_period), *oldest,
                                                format_time(std::get<0>(rank(*oldest)))))};
      return;
    }

    // A move without a target found no other node: the group stays where it is.
    if (view.excluded && !why_not_owner(view, *view.excluded)) {
      view.outcome = Outcome{*view.excluded,
                             with_notes(view, fmt::format("no other node can take it; stays on "
                                                          "its owner {}",
                                                          *view.excluded))};
      return;
    }
    view.outcome = Outcome{std::nullopt, with_notes(view, nowhere_reason(view))};
  }

  void count_load(const GroupView& view) {
    const Outcome& outcome = *view.outcome;
    if (!outcome.node) return;
    ++load_[*outcome.node];
    for (const std::string& name : view.state->spec.anti_affinity_classes) {
      classes_on_[*outcome.node].emplace(name, view.state->spec.name);
    }
  }

 private:
  // Rules 5 and 6 over the fresh nodes; with `avoid_conflicts`, passing over the nodes that run
  // a group of one of this group's anti-affinity classes (named in `avoided`). True when decided.
  bool decide_fresh(GroupView& view, bool avoid_conflicts,
                    std::vector<std::string>& avoided) const {
    const GroupSpec& spec = view.state->spec;
    auto usable = [&](const std::string& name) {
      if (why_not_fresh(view, name)) return false;
      if (!avoid_conflicts) return true;
      if (auto conflict = anti_affinity_conflict(spec, name)) {
        if (std::find(avoided.begin(), avoided.end(), *conflict) == avoided.end()) {
          avoided.push_back(*conflict);
        }
        return false;
      }
      return true;
    };
    for (const std::string& preferred : spec.preferred_owners) {
      if (usable(preferred)) {
        const std::string note = avoid_conflicts && !avoided.empty()
                                     ? fmt::format(", avoiding {}", fmt::join(avoided, "; "))
                                     : std::string();
        view.outcome = Outcome{
            preferred,
            with_notes(view, fmt::format("first available preferred owner {}{}", preferred, note))};
        return true;
      }
    }
    const std::string* least_loaded = nullptr;
    for (const auto& [name, node] : nodes_) {
      if (!usable(name)) continue;
      if (least_loaded == nullptr || load_of(name) < load_of(*least_loaded)) least_loaded = &name;
    }
    if (least_loaded == nullptr) return false;
    const std::string note = avoid_conflicts && !avoided.empty()
                                 ? fmt::format(", avoiding {}", fmt::join(avoided, "; "))
                                 : std::string();
    view.outcome = Outcome{
        *least_loaded,
        with_notes(view, fmt::format("least loaded node {} ({}){}", *least_loaded,
                                     count_of(load_of(*least_loaded), "group", "groups"), note))};
    return true;
  }

  // "n1 (runs db-a, anti-affinity class db)" when `node` runs a group sharing a class.
  std::optional<std::string> anti_affinity_conflict(const GroupSpec& spec,
                                                    const std::string& node) const {
    auto on = classes_on_.find(node);
    if (on == classes_on_.end()) return std::nullopt;
    for (const std::string& name : spec.anti_affinity_classes) {
      if (auto it = on->second.find(name); it != on->second.end()) {
        return fmt::format("{} (runs {}, anti-affinity class {})", node, it->second, name);
      }
    }
    return std::nullopt;
  }

  struct Failed {
    std::string note;
    bool waiting = false;  // before its retry: place nowhere
  };

  // Rule 2; nullopt when the group is not Failed.
  std::optional<Failed> failed_state(const GroupState& group) const {
    const GroupSpec& spec = group.spec;
    const int64_t threshold = spec.failover_threshold.value_or(
        std::max<int64_t>(1, static_cast<int64_t>(nodes_.size()) - 1));
    int64_t count = 0;
    WallTime last = WallTime::min();
    for (const FailoverRecord& failover : group.failovers) {
      if (!in_window(failover.at, now_, spec.failover_period)) continue;
      ++count;
      last = std::max(last, failover.at);
    }
    if (count <= threshold) return std::nullopt;
    const WallTime retry_at = last + spec.retry_period_on_failure;
    const std::string failovers = fmt::format("{} within {}", count_of(count, "time", "times"),
                                              format_duration(spec.failover_period));
    if (now_ < retry_at) {
      return Failed{fmt::format("failed over {}, more than its threshold of {}; retry at {}",
                                failovers, threshold, format_time(retry_at)),
                    true};
    }
    return Failed{fmt::format("retrying after failing over {}", failovers), false};
  }

  const NodeState* find(const std::string& name) const {
    auto it = nodes_.find(name);
    return it == nodes_.end() ? nullptr : &it->second;
  }

  bool is_paused(const std::string& name) const {
    const NodeState* node = find(name);
    return node != nullptr && node->paused;
  }

  int64_t load_of(const std::string& name) const {
    auto it = load_.find(name);
    return it == load_.end() ? 0 : it->second;
  }

  static size_t preference(const GroupSpec& spec, const std::string& name) {
    auto it = std::find(spec.preferred_owners.begin(), spec.preferred_owners.end(), name);
    return it == spec.preferred_owners.end()
               ? kNotPreferred
               : static_cast<size_t>(it - spec.preferred_owners.begin());
  }

  // Why the group may not stay with `name` as its owner (Up and allowed; paused is fine,
  // draining is not).
  std::optional<std::string> why_not_owner(const GroupView& view, const std::string& name) const {
    const NodeState* node = find(name);
    if (node == nullptr) return "is not a known node";
    if (!node->up) return "is down";
    if (!allows(view.state->spec, name)) return "is not a possible owner";
    if (auto banned = view.banned.find(name); banned != view.banned.end()) {
      return fmt::format("cannot run it (hard error at {})", format_time(banned->second));
    }
    if (node->draining) return "is being drained";
    return std::nullopt;
  }

  // Why `name` may not take the group as a new one (Up, unpaused and allowed).
  std::optional<std::string> why_not_new(const GroupView& view, const std::string& name) const {
    if (auto why = why_not_owner(view, name)) return why;
    if (find(name)->paused) return "is paused";
    return std::nullopt;
  }

  // Rules 4-6: a new node that also did not fail the group within failover_period and is not
  // the one a move takes the group away from.
  std::optional<std::string> why_not_fresh(const GroupView& view, const std::string& name) const {
    if (name == view.excluded) return "is the node it moves away from";
    if (auto why = why_not_new(view, name)) return why;
    auto failed = view.failed_by.find(name);
    if (failed != view.failed_by.end()) {
      return fmt::format("failed it at {}", format_time(failed->second));
    }
    return std::nullopt;
  }

  // Rule 8: names the nodes by cause, so the log says what an administrator could change.
  std::string nowhere_reason(const GroupView& view) const {
    if (nodes_.empty()) return "no node can run it: the cluster has no nodes";
    std::vector<std::string> down;
    std::vector<std::string> paused;
    std::vector<std::string> not_allowed;
    std::vector<std::string> banned;
    for (const auto& [name, node] : nodes_) {
      if (!node.up) {
        down.push_back(name);
      } else if (node.paused || node.draining) {
        paused.push_back(name);
      } else if (!allows(view.state->spec, name)) {
        not_allowed.push_back(name);
      } else if (view.banned.contains(name)) {
        banned.push_back(name);
      }
    }
    std::vector<std::string> parts;
    if (!down.empty()) parts.push_back(fmt::format("{} down", fmt::join(down, ", ")));
    if (!paused.empty()) parts.push_back(fmt::format("{} paused", fmt::join(paused, ", ")));
    if (!not_allowed.empty()) {
      parts.push_back(fmt::format("{} not a possible owner", fmt::join(not_allowed, ", ")));
    }
    if (!banned.empty()) {
      parts.push_back(fmt::format("{} had a hard error with it (`clusweb group online` clears)",
                                  fmt::join(banned, ", ")));
    }
    return fmt::format("no node can run it: {}", fmt::join(parts, "; "));
  }

  static std::string with_notes(const GroupView& view, const std::string& reason) {
    if (view.notes.empty()) return reason;
    return fmt::format("{}; {}", fmt::join(view.notes, "; "), reason);
  }

  std::map<std::string, NodeState> nodes_;
  std::map<std::string, int64_t> load_;
  // Node -> anti-affinity class -> the first group decided for it with that class.
  std::map<std::string, std::map<std::string, std::string>> classes_on_;
  WallTime now_;
};

}  // namespace

std::vector<PlacementDecision> place(const std::vector<NodeState>& nodes,
                                     const std::vector<GroupState>& groups, WallTime now) {
  Placer placer(nodes, now);
  std::vector<GroupView> views;
  views.reserve(groups.size());
  for (const GroupState& group : groups) views.push_back(placer.view_of(group));

  // Groups that stay (or are moved, or fail back) are counted before any group is spread by
  // load, so the least-loaded rule sees the load that will really be there.
  for (GroupView& view : views) {
    placer.decide_first(view);
    if (view.outcome) placer.count_load(view);
  }
  for (GroupView& view : views) {
    if (view.outcome) continue;
    placer.decide_rest(view);
    placer.count_load(view);
  }

  std::vector<PlacementDecision> decisions;
  decisions.reserve(views.size());
  for (GroupView& view : views) {
    decisions.push_back(PlacementDecision{view.state->spec.name, std::move(view.outcome->node),
                                          std::move(view.outcome->reason)});
  }
  return decisions;
}

}  // namespace clusweb::cluster
