#include "agent/agent.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <utility>

#include "base/log.h"
#include "cluster/placement.h"

namespace clusweb::agent {

namespace asio = boost::asio;
using cluster::StoreKeys;
using nlohmann::json;
using std::chrono::milliseconds;

namespace {

std::shared_ptr<spdlog::logger> log_() { return logger("agent"); }

std::string format_time(std::chrono::system_clock::time_point at) {
  const auto ms = std::chrono::duration_cast<milliseconds>(at.time_since_epoch()).count();
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03}Z", text, ms % 1000);
}

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view outcome_name(cluster::Outcome outcome) {
  switch (outcome) {
    case cluster::Outcome::kOnline:
      return "online";
    case cluster::Outcome::kOffline:
      return "offline";
    case cluster::Outcome::kTerminated:
      return "terminated";
    case cluster::Outcome::kFailover:
      return "failover";
  }
  return "unknown";
}

// Plain text for the web service (one site per line), replaced atomically.
Status write_plain_file(const std::filesystem::path& path, const std::string& contents) {
  const std::filesystem::path temporary = path.string() + ".tmp";
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno_error("open", temporary.string());
  const bool written =
      ::write(fd, contents.data(), contents.size()) == static_cast<ssize_t>(contents.size()) &&
      ::fsync(fd) == 0;
  ::close(fd);
  if (!written || ::rename(temporary.c_str(), path.c_str()) != 0) {
    return errno_error("write", path.string());
  }
  return {};
}

}  // namespace

std::string encode(const LoggedEvent& event) {
  json out = {{"time", format_time(event.time)}, {"node", event.node}, {"group", event.group},
              {"resource", event.resource},      {"what", event.what}, {"why", event.why}};
  return out.dump();
}

Agent::Agent(asio::any_io_executor executor, store::Store& store, Liveness& liveness,
             ResourceFactory factory, const Clock& clock, AgentOptions options)
    : executor_(std::move(executor)),
      store_(store),
      liveness_(liveness),
      factory_(std::move(factory)),
      clock_(clock),
      options_(std::move(options)),
      keys_(options_.cluster),
      core_(cluster::NodeCoreOptions{options_.node, options_.ttl, {"website", "ip"}}),
      wakeup_(executor_) {}

Agent::~Agent() { *alive_ = false; }

// --- the store's keys ---

asio::awaitable<Status> Agent::load() {
  auto all = co_await store_.range(store::Range(keys_.root(), /*prefix_in=*/true));
  if (!all.ok()) co_return all.error();
  snapshot_.clear();
  for (store::KeyValue& kv : all->kvs) snapshot_[kv.key] = std::move(kv);
  revision_ = all->revision;
  co_return Status{};
}

asio::awaitable<void> Agent::follow() {
  auto alive = alive_;
  while (*alive && !stopping_) {
    store::WatchOptions options(keys_.root(), /*prefix_in=*/true);
    options.start_revision = revision_ + 1;
    auto watch = co_await store_.watch(options);
    if (!*alive) co_return;
    if (!watch.ok()) {
      log_()->warn("cannot watch the cluster's keys: {}", watch.error().describe());
      asio::steady_timer pause(executor_, milliseconds(500));
      co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    while (*alive && !stopping_) {
      auto batch = co_await (*watch)->next();
      if (!*alive) co_return;
      if (!batch.ok()) {
        if (store::code_of(batch.error()) == store::Code::kCompacted) {
          // History is gone: read everything again.
          for (;;) {
            Status loaded = co_await load();
            if (!*alive) co_return;
            if (loaded.ok()) break;
            asio::steady_timer pause(executor_, milliseconds(500));
            co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
          }
          changed(/*decisive=*/true);
        } else {
          log_()->warn("watch of the cluster's keys ended: {}", batch.error().describe());
        }
        break;
      }
      changed(apply(*batch));
    }
  }
}

bool Agent::apply(const store::WatchBatch& batch) {
  bool decisive = false;
  for (const store::WatchEvent& event : batch.events) {
    if (event.type == store::WatchEvent::Type::kPut) {
      snapshot_[event.kv.key] = event.kv;
    } else {
      snapshot_.erase(event.kv.key);
    }
    revision_ = std::max(revision_, event.kv.mod_revision);
    // The event log and the owners' status reports are written often and
    // decide nothing.
    const std::string& key = event.kv.key;
    decisive = decisive || !(key.starts_with(keys_.events()) || key == keys_.events_next() ||
                             key.starts_with(keys_.statuses()));
  }
  revision_ = std::max(revision_, batch.revision);
  return decisive;
}

void Agent::refresh_view() {
  view_ = cluster::ClusterView{};
  view_.revision = revision_;
  // Specs are decoded again only when their key changed.
  std::map<std::string, DecodedGroup> decoded;
  for (auto it = snapshot_.lower_bound(keys_.groups());
       it != snapshot_.end() && it->first.starts_with(keys_.groups()); ++it) {
    auto name = StoreKeys::name_under(keys_.groups(), it->first);
    if (!name) continue;
    auto cached = decoded_groups_.find(it->first);
    if (cached != decoded_groups_.end() && cached->second.revision == it->second.mod_revision) {
      decoded.insert(decoded_groups_.extract(cached));
    } else {
      auto spec = cluster::decode_group(it->second.value, it->first);
      if (!spec.ok()) {
        log_()->error("ignoring a group the agent cannot read: {}", spec.error().describe());
      }
      decoded[it->first] = DecodedGroup{
          it->second.mod_revision,
          spec.ok() ? std::optional<cluster::GroupSpec>(std::move(*spec)) : std::nullopt};
    }
    if (const auto& spec = decoded[it->first].spec) view_.groups[std::string(*name)] = *spec;
  }
  decoded_groups_ = std::move(decoded);
  for (auto it = snapshot_.lower_bound(keys_.placements());
       it != snapshot_.end() && it->first.starts_with(keys_.placements()); ++it) {
    auto name = StoreKeys::name_under(keys_.placements(), it->first);
    auto value = cluster::decode_placement(it->second.value, it->first);
    if (!name || !value.ok() || value->node.empty()) continue;
    view_.placement[std::string(*name)] =
        cluster::PlacementRecord{value->node, it->second.mod_revision};
  }
  for (auto it = snapshot_.lower_bound(keys_.owners());
       it != snapshot_.end() && it->first.starts_with(keys_.owners()); ++it) {
    auto name = StoreKeys::name_under(keys_.owners(), it->first);
    if (!name) continue;
    view_.owners[std::string(*name)] =
        cluster::OwnerRecord{it->second.value, it->second.create_revision, it->second.lease};
  }
  for (auto it = snapshot_.lower_bound(keys_.unmanageds());
       it != snapshot_.end() && it->first.starts_with(keys_.unmanageds()); ++it) {
    auto name = StoreKeys::name_under(keys_.unmanageds(), it->first);
    if (!name) continue;
    auto value = cluster::decode_unmanaged(it->second.value, it->first);
    if (!value.ok()) {
      // Unreadable maintenance: hands off the whole group rather than act on what the
      // operator meant to protect.
      log_()->error("treating the group as unmanaged: {}", value.error().describe());
      value = cluster::Unmanaged{true, {}};
    }
    view_.unmanaged[std::string(*name)] = std::move(*value);
  }
}

void Agent::changed(bool decisive) {
  if (decisive) {
    refresh_view();
    write_clustered_sites();
    if (lease_ != 0) {
      step(cluster::ViewChanged{view_});
      coordinate();
    }
  }
  for (const auto& [id, listener] : listeners_) listener();
}

asio::awaitable<void> Agent::caught_up(store::Revision revision, milliseconds limit) {
  if (revision_ >= revision) co_return;
  asio::steady_timer timer(executor_, limit);
  const int id = add_listener([this, &timer, revision] {
    if (revision_ >= revision) timer.cancel();
  });
  co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  remove_listener(id);
}

int Agent::add_listener(std::function<void()> listener) {
  const int id = next_listener_++;
  listeners_.emplace(id, std::move(listener));
  return id;
}

void Agent::write_clustered_sites() {
  if (options_.clustered_sites_file.empty()) return;
  std::set<std::string> sites;
  for (const auto& [name, spec] : view_.groups) {
    for (const cluster::ResourceSpec& resource : spec.resources) {
      if (resource.type != "website") continue;
      auto site = resource.parameters.find("site");
      if (site != resource.parameters.end()) sites.insert(site->second);
    }
  }
  std::string contents =
      "# Sites of clustered groups: served only with a permit from the cluster agent.\n";
  for (const std::string& site : sites) contents += site + "\n";
  if (contents == clustered_sites_written_) return;
  if (Status written = write_plain_file(options_.clustered_sites_file, contents); !written.ok()) {
    log_()->error("{}", written.error().describe());
    return;
  }
  clustered_sites_written_ = contents;
}

// --- start-up ---

asio::awaitable<Status> Agent::run() {
  auto alive = alive_;
  for (int attempt = 0;; ++attempt) {
    Status loaded = co_await load();
    if (!*alive) co_return Status{};
    if (loaded.ok()) break;
    if (attempt % 10 == 0) {
      log_()->warn("cannot read the cluster's keys yet: {}", loaded.error().describe());
    }
    asio::steady_timer pause(executor_, milliseconds(500));
    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  refresh_view();
  write_clustered_sites();
  if (options_.loaded) options_.loaded();
  // The groups owned under the lease of the last run are left to run; that lease is renewed
  // once the probe is done, so that it has a whole TTL left when the liveness takes it over.
  const int64_t kept = kept_lease();
  co_await startup_probe();
  if (!*alive) co_return Status{};
  std::optional<ResumedLease> resume;
  if (kept != 0) resume = co_await resume_lease(kept);
  if (!*alive) co_return Status{};
  if (!resume && !adopt_.empty()) {
    // Gone meanwhile: what was left running is stopped like the rest before joining anew.
    std::map<std::string, int64_t> left = std::exchange(adopt_, {});
    co_await startup_probe(std::move(left));
    if (!*alive) co_return Status{};
  }
  asio::co_spawn(executor_, follow(), asio::detached);

  Liveness::Callbacks callbacks;
  callbacks.joined = [this, alive](int64_t lease, Clock::TimePoint deadline) {
    if (!*alive || stopping_) return;
    lease_ = lease;
    deadline_ = deadline;
    // Only the lease asked to resume brings its groups; a new one (the resume failed, or a
    // rejoin after fencing) starts with none.
    std::map<std::string, int64_t> adopt = std::exchange(adopt_, {});
    if (lease == resumed_lease_) {
      std::string groups;
      for (const auto& [group, token] : adopt) groups += (groups.empty() ? "" : ", ") + group;
      record("", "", "resumed",
             fmt::format("lease {:x} after the agent restarted; adopting {}", lease,
                         groups.empty() ? std::string("no group") : groups));
    } else {
      adopt.clear();
      record("", "", "joined", fmt::format("lease {:x}", lease));
    }
    if (!options_.lease_file.empty()) {
      Status written = write_plain_file(options_.lease_file, fmt::format("{:x}\n", lease));
      if (!written.ok()) log_()->warn("cannot keep the lease id: {}", written.error().describe());
    }
    // The view first: the groups adopted are looked up in it.
    step(cluster::ViewChanged{view_});
    step(cluster::Joined{lease, deadline, std::move(adopt)});
    coordinate();
  };
  callbacks.renewed = [this, alive](Clock::TimePoint deadline) {
    if (!*alive) return;
    deadline_ = std::max(deadline_, deadline);
    step(cluster::Renewed{deadline});
    for (auto& [key, resource] : resources_) resource->renewed(deadline_);
    // Re-checked on every renewal, so a lost placement write is retried even
    // when nothing else changes.
    coordinate();
  };
  callbacks.lost = [this, alive](std::string reason) {
    if (!*alive) return;
    step(cluster::LeaseLost{std::move(reason)});
  };
  if (resume) resumed_lease_ = resume->lease;
  liveness_.start(std::move(callbacks), resume);
  co_return Status{};
}

int64_t Agent::kept_lease() {
  adopt_.clear();
  if (options_.lease_file.empty()) return 0;
  std::error_code exists_ec;
  if (!std::filesystem::exists(options_.lease_file, exists_ec)) return 0;
  std::ifstream in(options_.lease_file);
  std::string text;
  in >> text;
  errno = 0;
  char* end = nullptr;
  const auto lease = static_cast<int64_t>(std::strtoull(text.c_str(), &end, 16));
  if (text.empty() || end == nullptr || *end != '\0' || errno != 0 || lease <= 0) {
    log_()->warn("{}: not a lease id (\"{}\"); joining with a new lease",
                 options_.lease_file.string(), text);
    return 0;
  }
  // Only a lease that still holds this node's membership: otherwise the node left, or its
  // groups have been taken over already.
  auto member = snapshot_.find(keys_.node(options_.node));
  if (member == snapshot_.end() || member->second.lease != lease) {
    log_()->info("lease {:x} of the last run no longer holds {}; joining with a new lease", lease,
                 keys_.node(options_.node));
    return 0;
  }
  for (const auto& [group, owner] : view_.owners) {
    if (owner.node == options_.node && owner.lease == lease) adopt_[group] = owner.token;
  }
  return lease;
}

asio::awaitable<std::optional<ResumedLease>> Agent::resume_lease(int64_t lease) {
  auto alive = alive_;
  const Clock::TimePoint sent = clock_.now();
  auto ttl = co_await store_.keepalive(lease);
  if (!*alive) co_return std::nullopt;
  if (!ttl.ok()) {
    log_()->info("lease {:x} of the last run cannot be renewed ({}); joining with a new lease",
                 lease, ttl.error().describe());
    co_return std::nullopt;
  }
  log_()->info("resuming lease {:x} of the last run: {} group(s) to adopt", lease, adopt_.size());
  co_return ResumedLease{lease, sent, std::chrono::duration_cast<Clock::Duration>(*ttl)};
}

asio::awaitable<void> Agent::startup_probe(std::optional<std::map<std::string, int64_t>> only) {
  // Nothing may run here without ownership (Safety 8): every resource this
  // node could host is terminated before the node takes part.
  for (const auto& [name, spec] : view_.groups) {
    if (!cluster::allows(spec, options_.node)) continue;
    if (only ? !only->contains(name) : adopt_.contains(name)) continue;
    std::vector<int> order = cluster::dependency_order(spec);
    std::reverse(order.begin(), order.end());
    for (int index : order) {
      const cluster::ResourceSpec& resource_spec = spec.resources[index];
      auto resource = factory_(name, resource_spec);
      if (!resource.ok()) {
        log_()->warn("start-up probe: {}/{}: {}", name, resource_spec.name,
                     resource.error().describe());
        continue;
      }
      resources::CallContext context =
          context_for(name, 0, resource_spec, resource_spec.policy.terminate_timeout);
      resources::CallResult result = co_await (*resource)->call(cluster::Verb::kTerminate, context);
      log_()->info("start-up probe: terminated {}/{}: {}", name, resource_spec.name,
                   result.ok ? "ok" : result.detail);
    }
  }
}

// --- the node core ---

void Agent::step(const cluster::NodeEvent& event) {
  std::vector<cluster::NodeAction> actions = core_.step(event, clock_.now());
  for (const cluster::NodeAction& action : actions) act(action);
  drop_resources();
  schedule_wakeup();
}

void Agent::wake() { step(cluster::NodeTimer{}); }

void Agent::schedule_wakeup() {
  if (!options_.wakeup_timer) return;
  auto when = core_.next_wakeup();
  if (!when) {
    wakeup_.cancel();
    return;
  }
  const Clock::Duration wait = std::max(*when - clock_.now(), Clock::Duration(0));
  wakeup_.expires_after(wait);
  auto alive = alive_;
  wakeup_.async_wait([this, alive](boost::system::error_code ec) {
    if (ec || !*alive) return;
    step(cluster::NodeTimer{});
  });
}

void Agent::act(const cluster::NodeAction& action) {
  if (const auto* acquire = std::get_if<cluster::AcquireOwnership>(&action)) {
    asio::co_spawn(executor_, this->acquire(acquire->group, lease_), asio::detached);
  } else if (const auto* release = std::get_if<cluster::ReleaseOwnership>(&action)) {
    cluster::ReleaseOwnership copy = *release;
    asio::co_spawn(executor_, this->release(std::move(copy)), asio::detached);
  } else if (const auto* call = std::get_if<cluster::ResourceCall>(&action)) {
    cluster::ResourceCall copy = *call;
    asio::co_spawn(executor_, run_call(std::move(copy)), asio::detached);
  } else if (const auto* event = std::get_if<cluster::GroupEvent>(&action)) {
    on_group_event(*event);
  } else if (const auto* fence = std::get_if<cluster::Fence>(&action)) {
    record("", "", "fenced", fence->reason);
    log_()->error("fencing: {}; terminating every owned group", fence->reason);
  } else if (std::holds_alternative<cluster::Rejoin>(action)) {
    lease_ = 0;
    record("", "", "rejoining", "fencing finished; joining again with a new lease");
    if (!stopping_) liveness_.rejoin();
  }
}

asio::awaitable<void> Agent::acquire(std::string group, int64_t lease) {
  auto alive = alive_;
  const std::string owner_key = keys_.owner(group);
  const std::string released_key = keys_.released(group);
  store::Txn take({store::Compare::absent(owner_key)},
                  {store::Put(owner_key, options_.node, lease), store::Range(released_key),
                   store::Delete(released_key)});
  auto result = co_await store_.txn(std::move(take));
  if (!*alive) co_return;
  cluster::AcquireDone done;
  done.group = group;
  if (result.ok()) {
    done.acquired = result->succeeded;
    if (done.acquired) {
      done.token = result->revision;
      const auto& marker = std::get<store::RangeResult>(result->results[1]);
      done.after_expiry = marker.kvs.empty();
    }
  } else {
    // The reply was lost: read back; the key is ours if it carries our lease.
    auto owner = co_await store::get(store_, owner_key);
    if (!*alive) co_return;
    if (owner.ok() && owner->has_value() && (*owner)->lease == lease) {
      done.acquired = true;
      done.token = (*owner)->create_revision;
      done.after_expiry = true;  // unknown: take the slow path
    }
  }
  if (done.acquired) {
    record(group, "", "acquired",
           done.after_expiry ? "ownership taken over from an expired or absent owner"
                             : "ownership taken after a graceful release",
           done.token);
  }
  step(done);
}

asio::awaitable<void> Agent::release(cluster::ReleaseOwnership release) {
  auto alive = alive_;
  const std::string owner_key = keys_.owner(release.group);
  // The final report goes with the release; status writes still in flight
  // compare the token and then fail.
  const std::string status =
      status_json(release.group, release.token, release.failover_reason ? "Failed" : "Offline");
  for (int attempt = 0; *alive; ++attempt) {
    std::vector<store::Operation> writes{store::Delete(owner_key),
                                         store::Put(keys_.status(release.group), status)};
    if (release.resources_stopped) {
      writes.emplace_back(store::Put(keys_.released(release.group), std::to_string(release.token)));
    }
    if (release.failover_reason) {
      cluster::FailureHistory history;
      if (auto it = snapshot_.find(keys_.failures(release.group)); it != snapshot_.end()) {
        if (auto read = cluster::decode_failures(it->second.value, it->first); read.ok()) {
          history = std::move(*read);
        }
      }
      history.entries.push_back(cluster::FailureHistory::Entry{
          cluster::FailoverRecord{options_.node, clock_.wall_now(), release.failure},
          *release.failover_reason});
      history.trim(clock_.wall_now(), std::chrono::hours(24));
      writes.emplace_back(store::Put(keys_.failures(release.group), encode(history)));
    }
    store::Txn give_back(
        {store::Compare::create_revision_is(owner_key, store::Compare::Op::kEqual, release.token)},
        std::move(writes));
    auto result = co_await store_.txn(std::move(give_back));
    if (!*alive) co_return;
    if (result.ok()) {
      record(release.group, "", release.failover_reason ? "failed-over" : "released",
             release.failover_reason.value_or(release.resources_stopped
                                                  ? "resources stopped; ownership released"
                                                  : "released before starting anything"));
      break;
    }
    // Retried until the store answers: a lost release would leave the group
    // owned by a node that no longer runs it (until our lease ends).
    if (attempt % 10 == 0) {
      log_()->warn("releasing {} failed: {}; retrying", release.group, result.error().describe());
    }
    asio::steady_timer pause(executor_, milliseconds(200));
    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  if (!*alive) co_return;
  step(cluster::ReleaseDone{release.group, release.token});
}

resources::CallContext Agent::context_for(const std::string& group, int64_t token,
                                          const cluster::ResourceSpec& spec,
                                          std::chrono::milliseconds timeout) const {
  resources::CallContext context;
  context.resource = spec.name;
  context.group = group;
  context.node = options_.node;
  context.fencing_token = token;
  context.parameters = spec.parameters;
  context.timeout = timeout;
  // Once fenced (the lease is lost), every resource is told at once that its
  // time is up, in a call in flight or a context kept for renewals.
  context.fencing_deadline = [this, alive = alive_] {
    return *alive && !core_.fenced() ? deadline_ : Clock::TimePoint{};
  };
  context.clock = &clock_;
  return context;
}

resources::Resource* Agent::resource_for(const ResourceKey& key, std::string& error) {
  auto it = resources_.find(key);
  if (it != resources_.end()) return it->second.get();
  const cluster::GroupController* controller = core_.controller(key.group);
  if (controller == nullptr) {
    error = "the group is no longer owned here";
    return nullptr;
  }
  auto made = factory_(key.group, controller->spec().resources[key.resource]);
  if (!made.ok()) {
    error = made.error().describe();
    return nullptr;
  }
  return resources_.emplace(key, std::move(*made)).first->second.get();
}

asio::awaitable<void> Agent::run_call(cluster::ResourceCall call) {
  auto alive = alive_;
  const cluster::GroupController* controller = core_.controller(call.group);
  cluster::CallFinished finished;
  finished.call_id = call.call.call_id;
  std::string resource_name;
  if (controller != nullptr) {
    const cluster::ResourceSpec& spec = controller->spec().resources[call.call.resource];
    resource_name = spec.name;
    std::string error;
    ResourceKey key{call.group, call.token, call.call.resource};
    resources::Resource* resource = resource_for(key, error);
    if (resource == nullptr) {
      finished.detail = error;
    } else {
      resources::CallContext context = context_for(call.group, call.token, spec, call.call.timeout);
      if (call.call.verb == cluster::Verb::kLooksAlive) {
        context.interval = spec.policy.looks_alive_interval;
      } else if (call.call.verb == cluster::Verb::kIsAlive) {
        context.interval = spec.policy.is_alive_interval;
      }
      in_flight_[key] += 1;
      resources::CallResult result = co_await resource->call(call.call.verb, context);
      if (!*alive) co_return;
      in_flight_[key] -= 1;
      finished.ok = result.ok;
      finished.timed_out = result.timed_out;
      finished.detail = result.detail;
      finished.failure = result.failure;
      // Polls that pass say nothing worth keeping: their output goes to the
      // event log only when they fail.
      const bool poll =
          call.call.verb == cluster::Verb::kLooksAlive || call.call.verb == cluster::Verb::kIsAlive;
      if (!poll || !result.ok) {
        const size_t shown = std::min<size_t>(result.output.size(), 20);
        for (size_t line = 0; line < shown; ++line) {
          record(call.group, spec.name, "output", result.output[line], call.token);
        }
      }
    }
  } else {
    finished.detail = "the group is no longer owned here";
  }
  log_()->debug("call {} {}/{} token={} ok={} {}", to_string(call.call.verb), call.group,
                resource_name, call.token, finished.ok, finished.detail);
  step(cluster::GroupCallFinished{call.group, call.token, std::move(finished)});
}

void Agent::drop_resources() {
  // Resource objects of ownerships that ended (also an earlier ownership of
  // a group owned again), once no call of theirs runs.
  for (auto it = resources_.begin(); it != resources_.end();) {
    const bool still_owned = core_.token(it->first.group) == it->first.token;
    auto running = in_flight_.find(it->first);
    const bool busy = running != in_flight_.end() && running->second > 0;
    if (!still_owned && !busy) {
      it->second->unwatch();
      in_flight_.erase(it->first);
      it = resources_.erase(it);
    } else {
      ++it;
    }
  }
}

void Agent::watch_resource(const std::string& group, int64_t token, int index, bool online) {
  auto it = resources_.find(ResourceKey{group, token, index});
  if (it == resources_.end()) return;
  if (!online) {
    it->second->unwatch();
    return;
  }
  // Failures the resource sees by itself (a worker exited) are checked at
  // once instead of at the next poll; only for this very ownership.
  it->second->watch(executor_, [this, alive = alive_, group, token, index](std::string reason) {
    if (!*alive || !resources_.contains(ResourceKey{group, token, index})) return;
    step(cluster::GroupResourceLooksDead{group,
                                         cluster::ResourceLooksDead{index, std::move(reason)}});
  });
}

void Agent::on_group_event(const cluster::GroupEvent& event) {
  const cluster::GroupController* controller = core_.controller(event.group);
  if (const auto* change = std::get_if<cluster::ResourceChanged>(&event.what)) {
    std::string name;
    if (controller != nullptr) name = controller->spec().resources[change->resource].name;
    record(event.group, name, lower(to_string(change->to)), change->reason, event.token);
    watch_resource(event.group, event.token, change->resource,
                   change->to == cluster::ResourceState::kOnline);
  } else if (const auto* outcome = std::get_if<cluster::GroupOutcome>(&event.what)) {
    record(event.group, "", std::string(outcome_name(outcome->outcome)), outcome->reason,
           event.token);
  }
  status_dirty_.insert(event.group);
  // Marked before the writer starts (co_spawn only posts it): one writer per
  // group at a time, so an older status cannot land after a newer one.
  if (status_writes_.insert(event.group).second) {
    asio::co_spawn(executor_, write_status(event.group, event.token), asio::detached);
  }
}

std::string Agent::status_json(const std::string& group, int64_t token,
                               const std::string& state) const {
  json status = {{"node", options_.node},
                 {"token", token},
                 {"state", state},
                 {"updated", format_time(clock_.wall_now())}};
  if (const cluster::GroupController* controller = core_.controller(group)) {
    json resources = json::array();
    const cluster::GroupSpec& spec = controller->spec();
    for (size_t r = 0; r < spec.resources.size(); ++r) {
      const int index = static_cast<int>(r);
      resources.push_back({{"name", spec.resources[r].name},
                           {"type", spec.resources[r].type},
                           {"state", to_string(controller->state(index))},
                           {"restarts", controller->restart_count(index)},
                           {"lastError", controller->last_error(index)}});
    }
    status["resources"] = resources;
  }
  return status.dump();
}

asio::awaitable<void> Agent::write_status(std::string group, int64_t token) {
  auto alive = alive_;
  while (*alive && status_dirty_.erase(group) > 0) {
    const cluster::GroupController* controller = core_.controller(group);
    if (controller == nullptr) break;
    const std::string status =
        status_json(group, token, std::string(to_string(controller->group_status())));
    store::Txn write(
        {store::Compare::create_revision_is(keys_.owner(group), store::Compare::Op::kEqual, token)},
        {store::Put(keys_.status(group), status)});
    auto result = co_await store_.txn(std::move(write));
    if (!*alive) co_return;
    if (result.ok() && !result->succeeded) break;  // no longer ours: the next owner writes
    if (!result.ok()) {
      status_dirty_.insert(group);  // retried after a pause
      asio::steady_timer pause(executor_, milliseconds(200));
      co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
      if (!*alive) co_return;
    }
  }
  status_writes_.erase(group);
}

// --- the event log ---

void Agent::record(std::string group, std::string resource, std::string what, std::string why,
                   int64_t token) {
  LoggedEvent event;
  event.time = clock_.wall_now();
  event.node = options_.node;
  event.group = std::move(group);
  event.resource = std::move(resource);
  event.what = std::move(what);
  event.why = std::move(why);
  log_()->info("event {}{}{} {}: {}", event.group.empty() ? "node" : "group=" + event.group,
               event.resource.empty() ? "" : " resource=", event.resource, event.what, event.why);
  events_.push_back(PendingEvent{std::move(event), token});
  // Marked before the writer starts (co_spawn only posts it): one writer at
  // a time, since it keeps a reference to the front event across the store
  // call.
  if (!draining_events_) {
    draining_events_ = true;
    asio::co_spawn(executor_, drain_events(), asio::detached);
  }
}

asio::awaitable<void> Agent::drain_events() {
  auto alive = alive_;
  int failures = 0;
  while (*alive && !events_.empty()) {
    PendingEvent& pending = events_.front();
    // The next sequence: from our last write, or from the snapshot.
    uint64_t next = 1;
    store::Revision next_mod = 0;
    if (auto it = snapshot_.find(keys_.events_next()); it != snapshot_.end()) {
      next = std::strtoull(it->second.value.c_str(), nullptr, 10);
      next_mod = it->second.mod_revision;
    }
    if (next_mod < events_next_mod_) {
      next = events_next_;
      next_mod = events_next_mod_;
    }
    std::vector<store::Compare> compare{
        store::Compare::mod_revision_is(keys_.events_next(), store::Compare::Op::kEqual, next_mod)};
    if (pending.token != 0) {
      compare.push_back(store::Compare::create_revision_is(
          keys_.owner(pending.event.group), store::Compare::Op::kEqual, pending.token));
    }
    std::vector<store::Operation> writes{store::Put(keys_.events_next(), std::to_string(next + 1)),
                                         store::Put(keys_.event(next), encode(pending.event))};
    if (next > options_.event_log_size) {
      writes.emplace_back(store::Delete(keys_.event(next - options_.event_log_size)));
    }
    store::Txn append(
        std::move(compare), std::move(writes),
        {store::Range(keys_.events_next()), store::Range(keys_.owner(pending.event.group))});
    auto result = co_await store_.txn(std::move(append));
    if (!*alive) co_return;
    if (result.ok() && result->succeeded) {
      events_next_ = next + 1;
      events_next_mod_ = result->revision;
      events_.pop_front();
      failures = 0;
      continue;
    }
    if (result.ok()) {
      const auto& counter = std::get<store::RangeResult>(result->results[0]);
      if (!counter.kvs.empty()) {
        events_next_ = std::strtoull(counter.kvs[0].value.c_str(), nullptr, 10);
        events_next_mod_ = counter.kvs[0].mod_revision;
      }
      const auto& owner = std::get<store::RangeResult>(result->results[1]);
      if (pending.token != 0 &&
          (owner.kvs.empty() || owner.kvs[0].create_revision != pending.token)) {
        // Written by an owner that no longer owns the group: in our log only.
        events_.pop_front();
      }
      continue;
    }
    if (++failures >= 50) {
      log_()->warn("the event log cannot be written ({}); {} events kept in this log only",
                   result.error().describe(), events_.size());
      events_.clear();
      break;
    }
    asio::steady_timer pause(executor_, milliseconds(200));
    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
    if (!*alive) co_return;
  }
  draining_events_ = false;
}

// --- the coordinator ---

void Agent::coordinate() {
  if (lease_ == 0 || core_.fenced() || stopping_) return;
  auto coordinator = snapshot_.find(keys_.coordinator());
  if (coordinator == snapshot_.end()) {
    if (!campaigning_) asio::co_spawn(executor_, campaign(), asio::detached);
    return;
  }
  // A campaign whose reply was lost is resolved here: the key carries our lease.
  if (coordinator->second.lease != lease_) return;
  const int64_t token = coordinator->second.create_revision;

  std::vector<cluster::NodeState> nodes;
  std::set<std::string> names;
  for (auto it = snapshot_.lower_bound(keys_.nodes());
       it != snapshot_.end() && it->first.starts_with(keys_.nodes()); ++it) {
    if (auto name = StoreKeys::name_under(keys_.nodes(), it->first))
      names.insert(std::string(*name));
  }
  const std::string admin_prefix = keys_.node_admin("");
  std::set<std::string> paused;
  std::set<std::string> draining;
  for (auto it = snapshot_.lower_bound(admin_prefix);
       it != snapshot_.end() && it->first.starts_with(admin_prefix); ++it) {
    json value = json::parse(it->second.value, nullptr, false);
    if (value.is_object() && value.value("paused", false)) {
      paused.insert(it->first.substr(admin_prefix.size()));
    }
    if (value.is_object() && value.value("drain", false)) {
      draining.insert(it->first.substr(admin_prefix.size()));
    }
  }
  nodes.reserve(names.size() + paused.size());
  for (const std::string& name : names) {
    nodes.push_back({name, true, paused.contains(name), draining.contains(name)});
  }
  for (const std::string& name : paused) {
    if (!names.contains(name)) nodes.push_back({name, false, true, draining.contains(name)});
  }

  std::vector<cluster::GroupState> groups;
  std::map<std::string, size_t> failures_seen;
  for (const auto& [name, spec] : view_.groups) {
    cluster::GroupState state;
    state.spec = spec;
    state.offline_requested = snapshot_.contains(keys_.offline(name));
    if (auto it = view_.unmanaged.find(name); it != view_.unmanaged.end()) {
      state.unmanaged = it->second.any();
    }
    if (auto it = snapshot_.find(keys_.owner(name)); it != snapshot_.end()) {
      state.owner = it->second.value;
      state.owner_token = it->second.create_revision;
    }
    if (auto it = snapshot_.find(keys_.placement(name)); it != snapshot_.end()) {
      auto value = cluster::decode_placement(it->second.value, it->first);
      if (value.ok() && !value->node.empty()) state.placement = value->node;
    }
    if (auto it = snapshot_.find(keys_.failures(name)); it != snapshot_.end()) {
      if (auto history = cluster::decode_failures(it->second.value, it->first); history.ok()) {
        state.failovers = history->records();
        failures_seen[name] = history->entries.size();
      }
    }
    if (auto it = snapshot_.find(keys_.move(name)); it != snapshot_.end()) {
      state.move = cluster::MoveRequest{it->second.value, it->second.mod_revision};
    }
    groups.push_back(std::move(state));
  }
  for (const cluster::PlacementDecision& decision :
       cluster::place(nodes, groups, clock_.wall_now())) {
    // The decision records how many failovers it saw: after a failover the
    // placement is written anew even when the node stays the same, which
    // tells the node that released the group that it may take it again.
    const cluster::PlacementValue value{decision.node.value_or(""), failures_seen[decision.group],
                                        decision.reason};
    if (auto current = snapshot_.find(keys_.placement(decision.group));
        current != snapshot_.end()) {
      auto written = cluster::decode_placement(current->second.value, current->first);
      if (written.ok() && written->node == value.node &&
          written->failovers_seen == value.failovers_seen) {
        continue;
      }
    } else if (!decision.node) {
      continue;
    }
    if (placement_writes_.contains(decision.group)) continue;
    placement_writes_.insert(decision.group);
    asio::co_spawn(executor_, write_placement(decision.group, encode(value), token),
                   asio::detached);
    record(decision.group, "", "placed", decision.reason);
  }
}

asio::awaitable<void> Agent::campaign() {
  auto alive = alive_;
  campaigning_ = true;
  const int64_t lease = lease_;
  store::Txn take({store::Compare::absent(keys_.coordinator())},
                  {store::Put(keys_.coordinator(), options_.node, lease)});
  auto result = co_await store_.txn(std::move(take));
  if (!*alive) co_return;
  campaigning_ = false;
  if (result.ok() && result->succeeded) {
    record("", "", "coordinator", "this node now runs placement");
  }
  // Whatever happened, the watch shows the key (ours when it carries our lease).
}

asio::awaitable<void> Agent::write_placement(std::string group, std::string value, int64_t token) {
  auto alive = alive_;
  // Written only while this node still holds the coordinator key.
  store::Txn write(
      {store::Compare::create_revision_is(keys_.coordinator(), store::Compare::Op::kEqual, token)},
      {store::Put(keys_.placement(group), value)});
  auto result = co_await store_.txn(std::move(write));
  if (!*alive) co_return;
  placement_writes_.erase(group);
  if (!result.ok())
    log_()->warn("placement of {} not written: {}", group, result.error().describe());
}

// --- leaving ---

asio::awaitable<void> Agent::shutdown(std::chrono::milliseconds timeout) {
  auto alive = alive_;
  const Clock::TimePoint give_up = clock_.now() + timeout;
  if (lease_ != 0 && !core_.fenced()) {
    // Membership ends first, so the coordinator places our groups elsewhere
    // and they move gracefully (offline here, released, online there).
    record("", "", "leaving", "the agent is shutting down");
    store::Txn leave(
        {store::Compare::lease_is(keys_.node(options_.node), store::Compare::Op::kEqual, lease_)},
        {store::Delete(keys_.node(options_.node))});
    auto leave_result = co_await store_.txn(std::move(leave));
    if (!*alive) co_return;
    if (!leave_result.ok()) {
      // Then the groups stay until the lease is revoked below or expires.
      log_()->warn("could not leave the membership first: {}", leave_result.error().describe());
    }
    while (*alive && !core_.owned_groups().empty() && clock_.now() < give_up) {
      asio::steady_timer pause(executor_, milliseconds(50));
      co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }
  stopping_ = true;
  if (!*alive) co_return;
  if (!core_.owned_groups().empty()) {
    step(cluster::LeaseLost{"the agent is shutting down and the graceful release timed out"});
    const Clock::TimePoint terminate_until = clock_.now() + std::chrono::seconds(30);
    while (*alive && !core_.owned_groups().empty() && clock_.now() < terminate_until) {
      asio::steady_timer pause(executor_, milliseconds(50));
      co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }
  // Let the event log catch up briefly, then revoke the lease.
  const Clock::TimePoint flush_until = clock_.now() + std::chrono::seconds(2);
  while (*alive && !events_.empty() && clock_.now() < flush_until) {
    asio::steady_timer pause(executor_, milliseconds(20));
    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  auto left = std::make_shared<asio::steady_timer>(executor_, std::chrono::seconds(5));
  liveness_.stop([left] { left->cancel(); });
  co_await left->async_wait(asio::as_tuple(asio::use_awaitable));
  wakeup_.cancel();
  // Left: nothing to resume next time.
  if (!options_.lease_file.empty()) {
    std::error_code removed_ec;
    std::filesystem::remove(options_.lease_file, removed_ec);
  }
}

asio::awaitable<void> Agent::quiesce_for_restart(std::chrono::milliseconds timeout) {
  auto alive = alive_;
  record("", "", "restarting", "the agent replaces itself; its groups stay here");
  const Clock::TimePoint give_up = clock_.now() + timeout;
  auto busy = [this] {
    bool calls = std::any_of(in_flight_.begin(), in_flight_.end(),
                             [](const auto& entry) { return entry.second > 0; });
    return calls || !events_.empty() || !status_writes_.empty();
  };
  while (*alive && busy() && clock_.now() < give_up) {
    asio::steady_timer pause(executor_, milliseconds(20));
    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

}  // namespace clusweb::agent
