#include "cluster/group_controller.h"

#include <algorithm>

#include "base/duration.h"

namespace clusweb::cluster {
namespace {

template <class... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;  // clang 14 lacks aggregate deduction

}  // namespace

std::string_view to_string(ResourceState state) {
  switch (state) {
    case ResourceState::kOnline:
      return "Online";
    case ResourceState::kOffline:
      return "Offline";
    case ResourceState::kFailed:
      return "Failed";
    case ResourceState::kOnlinePending:
      return "OnlinePending";
    case ResourceState::kOfflinePending:
      return "OfflinePending";
  }
  return "Unknown";
}

std::string_view to_string(Verb verb) {
  switch (verb) {
    case Verb::kOpen:
      return "open";
    case Verb::kOnline:
      return "online";
    case Verb::kLooksAlive:
      return "looksalive";
    case Verb::kIsAlive:
      return "isalive";
    case Verb::kOffline:
      return "offline";
    case Verb::kClose:
      return "close";
    case Verb::kTerminate:
      return "terminate";
  }
  return "unknown";
}

std::string_view to_string(FailureClass failure) {
  switch (failure) {
    case FailureClass::kSoft:
      return "soft";
    case FailureClass::kHard:
      return "hard";
    case FailureClass::kFatal:
      return "fatal";
  }
  return "unknown";
}

std::string_view to_string(GroupStatus state) {
  switch (state) {
    case GroupStatus::kOnline:
      return "Online";
    case GroupStatus::kPartialOnline:
      return "PartialOnline";
    case GroupStatus::kOffline:
      return "Offline";
    case GroupStatus::kFailed:
      return "Failed";
    case GroupStatus::kPending:
      return "Pending";
  }
  return "Unknown";
}

GroupController::GroupController(GroupSpec group)
    : group_(std::move(group)),
      order_(dependency_order(group_)),
      resources_(group_.resources.size()) {}

std::vector<ControllerAction> GroupController::step(const ControllerEvent& event,
                                                    Clock::TimePoint now) {
  Actions actions;
  std::visit(Overloaded{
                 [&](const BringOnline&) {
                   target_ = Target::kOnline;
                   reported_online_ = false;
                 },
                 [&](const TakeOffline&) {
                   if (target_ == Target::kOnline || target_ == Target::kIdle)
                     target_ = Target::kOffline;
                 },
                 [&](const TerminateAll&) {
                   target_ = Target::kTerminate;
                   for (Resource& resource : resources_) {
                     resource.terminated = false;
                     resource.probing = false;  // a Terminate ends it whatever it is
                   }
                 },
                 [&](const CallFinished& done) { on_call_finished(done, now, actions); },
                 [&](const ResourceLooksDead& dead) {
                   if (dead.resource < 0 || dead.resource >= static_cast<int>(resources_.size()))
                     return;
                   Resource& resource = resources_[dead.resource];
                   if (target_ == Target::kOnline && resource.state == ResourceState::kOnline) {
                     resource.is_alive_now = true;
                     resource.last_error = dead.reason;
                   }
                 },
                 [&](const Timer&) {},
                 [&](const SetUnmanaged& set) {
                   for (size_t r = 0; r < resources_.size(); ++r) {
                     resources_[r].unmanaged = r < set.unmanaged.size() && set.unmanaged[r];
                   }
                 },
                 [&](const Adopt&) {
                   target_ = Target::kOnline;
                   reported_online_ = false;
                   for (Resource& resource : resources_) {
                     if (!resource.call_id && resource.state == ResourceState::kOffline) {
                       resource.probing = true;
                     }
                   }
                 },
             },
             event);
  reconcile(now, actions);
  return actions;
}

void GroupController::on_call_finished(const CallFinished& done, Clock::TimePoint now,
                                       Actions& actions) {
  auto it = std::find_if(resources_.begin(), resources_.end(),
                         [&](const Resource& r) { return r.call_id == done.call_id; });
  if (it == resources_.end()) return;  // superseded by a Terminate
  const int r = static_cast<int>(it - resources_.begin());
  Resource& resource = *it;
  const ResourcePolicy& policy = group_.resources[r].policy;
  const Verb verb = resource.call_verb;
  resource.call_id.reset();
  auto failure_text = [&](std::string_view what, Milliseconds limit) {
    if (done.timed_out) {
      return fmt::format("{} did not finish within {}", what, format_duration(limit));
    }
    if (done.detail.empty()) return fmt::format("{} failed", what);
    return fmt::format("{} failed: {}", what, done.detail);
  };

  switch (verb) {
    case Verb::kOnline:
      if (done.ok) {
        restart_polls(r, now);
        set_state(r, ResourceState::kOnline, "online", actions);
      } else {
        on_failure(r, failure_text("online", policy.pending_timeout), done.failure, actions);
      }
      break;
    case Verb::kOffline:
      if (done.ok) {
        set_state(r, ResourceState::kOffline, "offline", actions);
      } else {
        on_failure(r, failure_text("offline", policy.pending_timeout), done.failure, actions);
      }
      break;
    case Verb::kLooksAlive:
      if (done.ok) {
        resource.next_looks_alive = now + policy.looks_alive_interval;
      } else if (target_ == Target::kOnline && done.failure != FailureClass::kSoft) {
        // Not "looks dead" but "cannot run here" or "misconfigured": a
        // deeper check cannot change that.
        on_failure(r, failure_text("looksalive", policy.probe_timeout), done.failure, actions);
      } else if (target_ == Target::kOnline) {
        // WSFC: a false LooksAlive runs IsAlive at once; only IsAlive fails.
        resource.is_alive_now = true;
        resource.last_error = failure_text("looksalive", policy.probe_timeout);
      }
      break;
    case Verb::kIsAlive:
      if (resource.probing) {
        resource.probing = false;
        if (done.ok) {
          restart_polls(r, now);
          set_state(r, ResourceState::kOnline, "adopted: isalive succeeded", actions);
        } else {
          resource.last_error = failure_text("isalive", policy.probe_timeout);
        }
        break;
      }
      if (done.ok) {
        restart_polls(r, now);
        if (resource.state != ResourceState::kOnline && hands_off(r)) {
          // Started (or repaired) by hand while unmanaged: what it is now is what counts.
          resource.failure_unhandled = false;
          resource.restart_at.reset();
          resource.retry_at.reset();
          set_state(r, ResourceState::kOnline, "isalive succeeded (unmanaged)", actions);
        }
      } else if (target_ == Target::kOnline && resource.state == ResourceState::kOnline) {
        on_failure(r, failure_text("isalive", policy.probe_timeout), done.failure, actions);
      }
      break;
    case Verb::kTerminate:
      after_terminate(r, now, actions);
      break;
    case Verb::kOpen:
    case Verb::kClose:
      break;  // never issued here
  }
}

void GroupController::on_failure(int r, const std::string& reason, FailureClass failure,
                                 Actions& actions) {
  Resource& resource = resources_[r];
  resource.last_error = reason;
  resource.last_failure = failure;
  resource.is_alive_now = false;
  if (hands_off(r)) {
    resource.failure_unhandled = true;
    set_state(r, ResourceState::kFailed, reason + " (unmanaged: left as it is)", actions);
    return;
  }
  set_state(r, ResourceState::kFailed, reason, actions);
  // Top-down, as an Offline would go: its dependents first (reconcile takes them offline now
  // that it is not online), then its Terminate.
  if (dependents_down(r)) {
    issue(r, Verb::kTerminate, actions);
  } else {
    resource.terminate_pending = true;
  }
}

void GroupController::after_terminate(int r, Clock::TimePoint now, Actions& actions) {
  Resource& resource = resources_[r];
  resource.terminated = true;
  if (resource.state != ResourceState::kFailed) {
    set_state(r, ResourceState::kOffline, "terminated", actions);
    return;
  }
  if (target_ != Target::kOnline) return;

  // A failure-driven Terminate ended: apply the restart policy, unless a
  // restart here cannot help (Pacemaker's hard and fatal errors).
  const ResourceSpec& spec = group_.resources[r];
  const ResourcePolicy& policy = spec.policy;
  // A group with an unmanaged resource stays on this node: what would fail it over leaves the
  // failed resource Failed instead, retried after its retry period.
  const bool may_fail_over = !any_unmanaged();
  if (resource.last_failure != FailureClass::kSoft && !may_fail_over) {
    resource.retry_at = now + policy.retry_period_on_failure;
    return;
  }
  if (resource.last_failure != FailureClass::kSoft) {
    target_ = Target::kFailover;
    failover_failure_ = resource.last_failure;
    failover_reason_ =
        resource.last_failure == FailureClass::kHard
            ? fmt::format("resource {} cannot run on this node: {}", spec.name, resource.last_error)
            : fmt::format("resource {} is misconfigured: {}", spec.name, resource.last_error);
    return;
  }
  if (policy.restart_action == RestartAction::kNoRestart) {
    resource.retry_at = now + policy.retry_period_on_failure;
    return;
  }
  while (!resource.restarts.empty() && resource.restarts.front() <= now - policy.restart_period) {
    resource.restarts.pop_front();
  }
  if (static_cast<int>(resource.restarts.size()) < policy.restart_threshold) {
    resource.restarts.push_back(now);
    resource.restart_at = now + policy.restart_delay;
    return;
  }
  if (policy.restart_action == RestartAction::kRestartNoFailover || !may_fail_over) {
    resource.retry_at = now + policy.retry_period_on_failure;
    return;
  }
  target_ = Target::kFailover;
  failover_failure_ = FailureClass::kSoft;
  failover_reason_ = fmt::format("resource {} failed after {} restarts within {}: {}", spec.name,
                                 resource.restarts.size(), format_duration(policy.restart_period),
                                 resource.last_error);
}

void GroupController::reconcile(Clock::TimePoint now, Actions& actions) {
  for (size_t r = 0; r < resources_.size(); ++r) {
    Resource& resource = resources_[r];
    const ResourcePolicy& policy = group_.resources[r].policy;
    if (target_ != Target::kOnline) {
      resource.restart_at.reset();
      resource.retry_at.reset();
      continue;
    }
    if (resource.unmanaged) continue;  // its timers wait until it is managed again
    if (resource.restart_at && now >= *resource.restart_at) {
      resource.restart_at.reset();
      set_state(static_cast<int>(r), ResourceState::kOffline,
                fmt::format("restarting in place ({} of {} within {})", resource.restarts.size(),
                            policy.restart_threshold, format_duration(policy.restart_period)),
                actions);
    }
    if (resource.retry_at && now >= *resource.retry_at) {
      resource.retry_at.reset();
      resource.restarts.clear();
      set_state(
          static_cast<int>(r), ResourceState::kOffline,
          fmt::format("retrying after {} Failed", format_duration(policy.retry_period_on_failure)),
          actions);
    }
  }
  for (size_t r = 0; r < resources_.size(); ++r) {
    Resource& resource = resources_[r];
    if (hands_off(static_cast<int>(r))) continue;
    if (resource.failure_unhandled) {
      // Failed while unmanaged and managed again (or the group is going down): recovered now,
      // as any failure is.
      resource.failure_unhandled = false;
      if (resource.state == ResourceState::kFailed) resource.terminate_pending = true;
    }
    if (resource.terminate_pending && !resource.call_id && dependents_down(static_cast<int>(r))) {
      resource.terminate_pending = false;
      issue(static_cast<int>(r), Verb::kTerminate, actions);
    }
  }
  switch (target_) {
    case Target::kIdle:
      break;
    case Target::kOnline:
      reconcile_online(now, actions);
      break;
    case Target::kOffline:
    case Target::kFailover:
      reconcile_offline(actions);
      break;
    case Target::kTerminate:
      reconcile_terminate(actions);
      break;
  }
}

void GroupController::restart_polls(int r, Clock::TimePoint now) {
  Resource& resource = resources_[r];
  const ResourcePolicy& policy = group_.resources[r].policy;
  resource.is_alive_now = false;
  resource.next_looks_alive = now + policy.looks_alive_interval;
  resource.next_is_alive = now + policy.is_alive_interval;
}

bool GroupController::probe_adopted(Actions& actions) {
  bool outstanding = false;
  for (size_t r = 0; r < resources_.size(); ++r) {
    Resource& resource = resources_[r];
    if (!resource.probing) continue;
    outstanding = true;
    if (!resource.call_id) issue(static_cast<int>(r), Verb::kIsAlive, actions);
  }
  return outstanding;
}

void GroupController::reconcile_online(Clock::TimePoint now, Actions& actions) {
  // Nothing is started or stopped before every probe has answered: a resource that looks
  // offline only because its probe is outstanding would take its dependents down.
  if (probe_adopted(actions)) return;
  for (int r : order_) {
    Resource& resource = resources_[r];
    const ResourcePolicy& policy = group_.resources[r].policy;
    if (resource.call_id) continue;
    if (resource.unmanaged) {
      poll_unmanaged(r, now, actions);
      continue;
    }
    if (resource.state == ResourceState::kOffline) {
      if (dependencies_online(r)) {
        set_state(r, ResourceState::kOnlinePending, "bringing online", actions);
        issue(r, Verb::kOnline, actions);
      }
    } else if (resource.state == ResourceState::kOnline) {
      if (!dependencies_online(r)) {
        if (dependents_down(r)) {
          set_state(r, ResourceState::kOfflinePending, "a resource it depends on is not online",
                    actions);
          issue(r, Verb::kOffline, actions);
        }
      } else if (resource.is_alive_now || now >= resource.next_is_alive) {
        resource.next_looks_alive = now + policy.looks_alive_interval;
        issue(r, Verb::kIsAlive, actions);
      } else if (now >= resource.next_looks_alive) {
        issue(r, Verb::kLooksAlive, actions);
      }
    }
  }
  bool all_online = std::all_of(resources_.begin(), resources_.end(), [](const Resource& r) {
    return r.state == ResourceState::kOnline;
  });
  if (all_online && !reported_online_) {
    reported_online_ = true;
    actions.push_back(
        GroupOutcome{Outcome::kOnline, fmt::format("all {} resources online", resources_.size())});
  } else if (!all_online) {
    reported_online_ = false;
  }
}

void GroupController::reconcile_offline(Actions& actions) {
  for (auto it = order_.rbegin(); it != order_.rend(); ++it) {
    const int r = *it;
    Resource& resource = resources_[r];
    if (resource.call_id || resource.state != ResourceState::kOnline) continue;
    if (dependents_down(r)) {
      set_state(r, ResourceState::kOfflinePending, "taking the group offline", actions);
      issue(r, Verb::kOffline, actions);
    }
  }
  if (!all_settled()) return;
  if (target_ == Target::kFailover) {
    actions.push_back(GroupOutcome{Outcome::kFailover, failover_reason_, failover_failure_});
  } else {
    actions.push_back(GroupOutcome{Outcome::kOffline, "every resource offline"});
  }
  target_ = Target::kIdle;
}

void GroupController::reconcile_terminate(Actions& actions) {
  for (size_t r = 0; r < resources_.size(); ++r) {
    Resource& resource = resources_[r];
    // Every resource at once: a node that lost its lease ends everything before its
    // deadline, whatever order an Offline would take.
    resource.terminate_pending = false;
    if (resource.terminated) continue;
    if (resource.call_id && resource.call_verb == Verb::kTerminate) continue;
    if (resource.state == ResourceState::kOffline && !resource.call_id) {
      resource.terminated = true;  // nothing runs
      continue;
    }
    issue(static_cast<int>(r), Verb::kTerminate, actions);
  }
  if (!all_settled()) return;
  actions.push_back(GroupOutcome{Outcome::kTerminated, "every resource terminated"});
  target_ = Target::kIdle;
}

void GroupController::poll_unmanaged(int r, Clock::TimePoint now, Actions& actions) {
  Resource& resource = resources_[r];
  const ResourcePolicy& policy = group_.resources[r].policy;
  if (resource.state == ResourceState::kOnline) {
    if (resource.is_alive_now || now >= resource.next_is_alive) {
      resource.next_looks_alive = now + policy.looks_alive_interval;
      issue(r, Verb::kIsAlive, actions);
    } else if (now >= resource.next_looks_alive) {
      issue(r, Verb::kLooksAlive, actions);
    }
  } else if (now >= resource.next_is_alive) {
    // Offline or Failed: is it running after all (started or repaired by hand)?
    resource.next_is_alive = now + policy.is_alive_interval;
    issue(r, Verb::kIsAlive, actions);
  }
}

bool GroupController::hands_off(int r) const {
  return resources_[r].unmanaged && (target_ == Target::kOnline || target_ == Target::kIdle);
}

bool GroupController::any_unmanaged() const {
  return std::any_of(resources_.begin(), resources_.end(),
                     [](const Resource& r) { return r.unmanaged; });
}

void GroupController::set_state(int r, ResourceState to, std::string reason, Actions& actions) {
  Resource& resource = resources_[r];
  if (resource.state == to) return;
  actions.push_back(ResourceChanged{r, resource.state, to, std::move(reason)});
  resource.state = to;
}

void GroupController::issue(int r, Verb verb, Actions& actions) {
  Resource& resource = resources_[r];
  const ResourcePolicy& policy = group_.resources[r].policy;
  Milliseconds timeout = policy.pending_timeout;
  if (verb == Verb::kLooksAlive || verb == Verb::kIsAlive) timeout = policy.probe_timeout;
  if (verb == Verb::kTerminate) timeout = policy.terminate_timeout;
  resource.call_id = next_call_id_++;
  resource.call_verb = verb;
  actions.push_back(Call{*resource.call_id, r, verb, timeout});
}

// Each "any of" list has a resource that is online and stays so: a dependency that is
// online but must go down itself (something below it failed) does not count, so a failure
// deep in a stack takes everything above it down, top first. Worked out along the
// dependency order (dependencies first), once per question.
bool GroupController::dependencies_online(int r) const {
  std::vector<char> stays(resources_.size(), 0);
  auto satisfied = [&](size_t j) {
    for (const auto& any_of : group_.resources[j].depends_on) {
      bool one = false;
      for (size_t k = 0; k < resources_.size() && !one; ++k) {
        one = stays[k] != 0 &&
              std::find(any_of.begin(), any_of.end(), group_.resources[k].name) != any_of.end();
      }
      if (!one) return false;
    }
    return true;
  };
  for (int j : order_) {
    const auto index = static_cast<size_t>(j);
    stays[index] = resources_[index].state == ResourceState::kOnline && satisfied(index) ? 1 : 0;
  }
  return satisfied(static_cast<size_t>(r));
}

bool GroupController::dependents_down(int r) const {
  const std::string& name = group_.resources[r].name;
  for (size_t j = 0; j < resources_.size(); ++j) {
    bool depends = false;
    for (const auto& any_of : group_.resources[j].depends_on) {
      depends = depends || std::find(any_of.begin(), any_of.end(), name) != any_of.end();
    }
    if (!depends) continue;
    const Resource& dependent = resources_[j];
    bool down =
        dependent.state == ResourceState::kOffline || dependent.state == ResourceState::kFailed;
    if (!down || dependent.call_id || dependent.terminate_pending || dependent.failure_unhandled) {
      return false;
    }
  }
  return true;
}

bool GroupController::all_settled() const {
  return std::all_of(resources_.begin(), resources_.end(), [](const Resource& r) {
    return !r.call_id && !r.terminate_pending && !r.failure_unhandled &&
           (r.state == ResourceState::kOffline || r.state == ResourceState::kFailed);
  });
}

GroupStatus GroupController::group_status() const {
  int online = 0;
  int failed = 0;
  for (const Resource& resource : resources_) {
    // Adopted and not yet probed: neither known to run nor known not to.
    if (resource.probing) return GroupStatus::kPending;
    switch (resource.state) {
      case ResourceState::kOnline:
        ++online;
        break;
      case ResourceState::kOffline:
        break;
      case ResourceState::kFailed:
        ++failed;
        break;
      case ResourceState::kOnlinePending:
      case ResourceState::kOfflinePending:
        return GroupStatus::kPending;
    }
  }
  const int total = static_cast<int>(resources_.size());
  if (online == total) return GroupStatus::kOnline;
  if (online > 0) return GroupStatus::kPartialOnline;
  if (failed > 0) return GroupStatus::kFailed;
  return GroupStatus::kOffline;
}

std::optional<Clock::TimePoint> GroupController::next_wakeup() const {
  if (target_ != Target::kOnline) return std::nullopt;
  // Adopting: nothing is due until every probe has answered (their ends are events).
  if (std::any_of(resources_.begin(), resources_.end(),
                  [](const Resource& r) { return r.probing; }))
    return std::nullopt;
  std::optional<Clock::TimePoint> wakeup;
  auto consider = [&](Clock::TimePoint t) {
    if (!wakeup || t < *wakeup) wakeup = t;
  };
  for (size_t r = 0; r < resources_.size(); ++r) {
    const Resource& resource = resources_[r];
    if (resource.unmanaged) {
      if (resource.call_id) continue;
      consider(resource.state == ResourceState::kOnline
                   ? std::min(resource.next_looks_alive, resource.next_is_alive)
                   : resource.next_is_alive);
      continue;
    }
    if (resource.restart_at) consider(*resource.restart_at);
    if (resource.retry_at) consider(*resource.retry_at);
    // Polls run only while the resource's dependencies are online; otherwise
    // it waits for its dependents to go down, which a call's end reports.
    if (resource.state == ResourceState::kOnline && !resource.call_id &&
        dependencies_online(static_cast<int>(r))) {
      consider(std::min(resource.next_looks_alive, resource.next_is_alive));
    }
  }
  return wakeup;
}

}  // namespace clusweb::cluster
