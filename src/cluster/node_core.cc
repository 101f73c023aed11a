#include "cluster/node_core.h"

#include <algorithm>

namespace clusweb::cluster {

NodeCore::NodeCore(NodeCoreOptions options) : options_(std::move(options)) {}

std::vector<NodeAction> NodeCore::step(const NodeEvent& event, Clock::TimePoint now) {
  Actions actions;
  // The deadline is checked before anything else, so that no event handled
  // past it can start a resource.
  if (joined_ && !fenced_ && now >= deadline_) {
    fence("no lease renewal was acknowledged before the fencing deadline", now, actions);
  }
  if (const auto* joined = std::get_if<Joined>(&event)) {
    joined_ = true;
    fenced_ = false;
    deadline_ = joined->deadline;
    for (const auto& [group, token] : joined->adopt) adopt(group, token, now, actions);
  } else if (const auto* renewed = std::get_if<Renewed>(&event)) {
    if (joined_ && !fenced_) deadline_ = std::max(deadline_, renewed->deadline);
  } else if (const auto* changed = std::get_if<ViewChanged>(&event)) {
    view_ = changed->view;
  } else if (const auto* acquired = std::get_if<AcquireDone>(&event)) {
    acquiring_.erase(acquired->group);
    auto spec = view_.groups.find(acquired->group);
    // Acquired after fencing: the key dies with the old lease; nothing starts.
    if (acquired->acquired && joined_ && !fenced_ && !owned_.contains(acquired->group) &&
        spec != view_.groups.end()) {
      Owned owned;
      owned.token = acquired->token;
      owned.unmanaged.assign(spec->second.resources.size(), false);
      owned.controller = std::make_unique<GroupController>(spec->second);
      if (acquired->after_expiry && must_wait_after_expiry(spec->second)) {
        owned.phase = Phase::kWaiting;
        owned.online_at = now + options_.ttl;
      }
      const bool start = owned.phase == Phase::kRunning;
      owned_.emplace(acquired->group, std::move(owned));
      sync_unmanaged(acquired->group, now, actions);
      if (start) drive(acquired->group, BringOnline{}, now, actions);
    }
  } else if (const auto* released = std::get_if<ReleaseDone>(&event)) {
    auto it = owned_.find(released->group);
    if (it != owned_.end() && it->second.token == released->token) owned_.erase(it);
  } else if (const auto* finished = std::get_if<GroupCallFinished>(&event)) {
    auto it = owned_.find(finished->group);
    if (it != owned_.end() && it->second.token == finished->token) {
      drive(finished->group, finished->finished, now, actions);
    }
  } else if (const auto* dead = std::get_if<GroupResourceLooksDead>(&event)) {
    drive(dead->group, dead->dead, now, actions);
  } else if (const auto* lost = std::get_if<LeaseLost>(&event)) {
    if (joined_ && !fenced_) fence(lost->reason, now, actions);
  }
  reconcile(now, actions);
  return actions;
}

void NodeCore::reconcile(Clock::TimePoint now, Actions& actions) {
  if (joined_ && !fenced_ && now >= deadline_) {
    fence("no lease renewal was acknowledged before the fencing deadline", now, actions);
  }
  if (fenced_) {
    if (joined_ && owned_.empty()) {
      joined_ = false;
      actions.push_back(Rejoin{});
    }
    return;
  }
  if (!joined_) return;

  std::vector<std::string> names;
  for (const auto& [name, owned] : owned_) names.push_back(name);
  for (const std::string& name : names) {
    Owned& owned = owned_.at(name);
    auto placed = view_.placement.find(name);
    const bool wanted = view_.groups.contains(name) && placed != view_.placement.end() &&
                        placed->second.node == options_.node;
    auto owner = view_.owners.find(name);
    const bool store_says_ours = owner != view_.owners.end() &&
                                 owner->second.node == options_.node &&
                                 owner->second.token == owned.token;
    if (!store_says_ours && view_.revision > owned.token && owned.phase != Phase::kTerminating) {
      // The store no longer holds our ownership (deleted, or a newer owner):
      // stop at once rather than gracefully.
      owned.phase = Phase::kTerminating;
      drive(name, TerminateAll{}, now, actions);
      continue;
    }
    if (owned.phase != Phase::kTerminating) sync_unmanaged(name, now, actions);
    if (owned.phase == Phase::kWaiting) {
      if (!wanted) {
        owned.phase = Phase::kReleasing;
        owned.online_at.reset();
        release(name, owned.token, std::nullopt, FailureClass::kSoft, /*resources_stopped=*/false,
                actions);
      } else if (owned.online_at && now >= *owned.online_at) {
        owned.phase = Phase::kRunning;
        owned.online_at.reset();
        drive(name, BringOnline{}, now, actions);
      }
      continue;
    }
    if (owned.phase == Phase::kRunning && !wanted) {
      owned.phase = Phase::kReleasing;
      drive(name, TakeOffline{}, now, actions);
      continue;
    }
    auto wakeup = owned.controller->next_wakeup();
    if (wakeup && now >= *wakeup) drive(name, Timer{}, now, actions);
  }

  for (const auto& [name, placed] : view_.placement) {
    if (placed.node != options_.node || !view_.groups.contains(name)) continue;
    if (view_.owners.contains(name) || owned_.contains(name) || acquiring_.contains(name)) continue;
    auto released = released_.find(name);
    if (released != released_.end() && placed.revision <= released->second) continue;
    acquiring_.insert(name);
    actions.push_back(AcquireOwnership{name});
  }
}

void NodeCore::adopt(const std::string& group, int64_t token, Clock::TimePoint now,
                     Actions& actions) {
  auto spec = view_.groups.find(group);
  // A group deleted meanwhile is not known well enough to adopt: its key goes with the lease.
  // Past the deadline it is still taken, so that the fencing that follows terminates it.
  if (spec == view_.groups.end() || owned_.contains(group)) return;
  Owned owned;
  owned.token = token;
  owned.unmanaged.assign(spec->second.resources.size(), false);
  owned.controller = std::make_unique<GroupController>(spec->second);
  owned_.emplace(group, std::move(owned));
  sync_unmanaged(group, now, actions);
  drive(group, Adopt{}, now, actions);
}

void NodeCore::release(const std::string& group, int64_t token,
                       std::optional<std::string> failover_reason, FailureClass failure,
                       bool resources_stopped, Actions& actions) {
  if (failover_reason) {
    // The placement still names this node until the coordinator has seen
    // the failover; it writes a new decision then, even for the same node.
    auto placed = view_.placement.find(group);
    released_[group] = placed == view_.placement.end() ? view_.revision : placed->second.revision;
  }
  actions.push_back(
      ReleaseOwnership{group, token, std::move(failover_reason), failure, resources_stopped});
}

void NodeCore::fence(std::string reason, Clock::TimePoint now, Actions& actions) {
  fenced_ = true;
  acquiring_.clear();
  actions.push_back(Fence{std::move(reason)});
  std::vector<std::string> names;
  for (const auto& [name, owned] : owned_) names.push_back(name);
  for (const std::string& name : names) {
    auto it = owned_.find(name);
    if (it == owned_.end() || it->second.phase == Phase::kTerminating) continue;
    it->second.phase = Phase::kTerminating;
    drive(name, TerminateAll{}, now, actions);
  }
}

void NodeCore::drive(const std::string& group, const ControllerEvent& event, Clock::TimePoint now,
                     Actions& actions) {
  auto it = owned_.find(group);
  if (it == owned_.end()) return;
  const int64_t token = it->second.token;
  for (ControllerAction& action : it->second.controller->step(event, now)) {
    if (auto* call = std::get_if<Call>(&action)) {
      actions.push_back(ResourceCall{group, token, *call});
    } else if (auto* change = std::get_if<ResourceChanged>(&action)) {
      actions.push_back(GroupEvent{group, token, std::move(*change)});
    } else {
      auto& outcome = std::get<GroupOutcome>(action);
      const Outcome kind = outcome.outcome;
      std::string reason = outcome.reason;
      const FailureClass failure = outcome.failure;
      actions.push_back(GroupEvent{group, token, std::move(outcome)});
      Owned& owned = owned_.at(group);
      if (kind == Outcome::kTerminated && owned.phase == Phase::kTerminating) {
        owned_.erase(group);
        return;
      }
      if (kind == Outcome::kOffline && owned.phase == Phase::kReleasing) {
        release(group, token, std::nullopt, FailureClass::kSoft, true, actions);
      } else if (kind == Outcome::kFailover && owned.phase != Phase::kTerminating) {
        owned.phase = Phase::kReleasing;
        release(group, token, std::move(reason), failure, true, actions);
      }
    }
  }
}

void NodeCore::sync_unmanaged(const std::string& group, Clock::TimePoint now, Actions& actions) {
  Owned& owned = owned_.at(group);
  const GroupSpec& spec = owned.controller->spec();
  auto found = view_.unmanaged.find(group);
  std::vector<bool> wanted(spec.resources.size(), false);
  if (found != view_.unmanaged.end()) {
    for (size_t r = 0; r < spec.resources.size(); ++r) {
      wanted[r] = found->second.covers(spec.resources[r].name);
    }
  }
  if (wanted == owned.unmanaged) return;
  owned.unmanaged = wanted;
  drive(group, SetUnmanaged{std::move(wanted)}, now, actions);
}

bool NodeCore::must_wait_after_expiry(const GroupSpec& group) const {
  return std::any_of(group.resources.begin(), group.resources.end(), [&](const ResourceSpec& r) {
    return !options_.self_fencing_types.contains(r.type);
  });
}

std::optional<Clock::TimePoint> NodeCore::next_wakeup() const {
  std::optional<Clock::TimePoint> wakeup;
  auto consider = [&](Clock::TimePoint t) {
    if (!wakeup || t < *wakeup) wakeup = t;
  };
  if (joined_ && !fenced_) consider(deadline_);
  for (const auto& [name, owned] : owned_) {
    if (owned.phase == Phase::kWaiting && owned.online_at) consider(*owned.online_at);
    if (auto t = owned.controller->next_wakeup()) consider(*t);
  }
  return wakeup;
}

std::vector<std::string> NodeCore::owned_groups() const {
  std::vector<std::string> names;
  for (const auto& [name, owned] : owned_) names.push_back(name);
  return names;
}

int64_t NodeCore::token(const std::string& group) const {
  auto it = owned_.find(group);
  return it == owned_.end() ? 0 : it->second.token;
}

const GroupController* NodeCore::controller(const std::string& group) const {
  auto it = owned_.find(group);
  return it == owned_.end() ? nullptr : it->second.controller.get();
}

}  // namespace clusweb::cluster
