#pragma once

// The agent shell (ARCHITECTURE.md, "The decision cores are pure"): turns the
// store's keys, lease renewals, timers and resource call results into events
// for NodeCore, runs the coordinator's placement when this node holds the
// election key, and carries out the actions: ownership transactions guarded
// by the fencing token, resource calls, status and event-log writes.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "agent/liveness.h"
#include "base/clock.h"
#include "base/result.h"
#include "cluster/node_core.h"
#include "cluster/store_keys.h"
#include "resources/resource.h"
#include "store/store.h"

namespace clusweb::agent {

struct AgentOptions {
  std::string cluster = "default";
  std::string node;
  std::chrono::seconds ttl{2};
  // Where the agent writes the list of clustered sites for the web service
  // (`clusweb web --clustered-sites`); empty = not written.
  std::filesystem::path clustered_sites_file;
  // Events kept in the store's log; older ones are deleted as new ones come.
  uint64_t event_log_size = 1000;
  // Where the agent keeps its lease id (state folder), so that an agent restarted while the
  // lease lives resumes it and adopts the groups it owns instead of stopping them; empty =
  // never resumes.
  std::filesystem::path lease_file;
  // Called once the keys are read and the clustered-sites file is written,
  // before the start-up probe (the moment to start the web service).
  std::function<void()> loaded;
  // Tests only: false leaves the wakeup timer unarmed (its wait is computed
  // from the injected clock but runs in real time); the test then moves its
  // ManualClock and calls wake(). Production keeps the default.
  bool wakeup_timer = true;
};

// Creates the resource object for one resource of a group. Unknown types and
// bad parameters are errors (the call then fails and the event log says why).
using ResourceFactory = std::function<Result<std::unique_ptr<resources::Resource>>(
    const std::string& group, const cluster::ResourceSpec&)>;

// One event of the log (events/<sequence>).
struct LoggedEvent {
  std::chrono::system_clock::time_point time;
  std::string node;
  std::string group;
  std::string resource;
  std::string what;
  std::string why;
};
std::string encode(const LoggedEvent& event);

class Agent {
 public:
  Agent(boost::asio::any_io_executor executor, store::Store& store, Liveness& liveness,
        ResourceFactory factory, const Clock& clock, AgentOptions options);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Reads the cluster's keys, stops every resource this node could host
  // (nothing may run here without ownership), joins, and then runs until
  // shutdown() or a store error it cannot recover from.
  boost::asio::awaitable<Status> run();
  // Graceful leave: every owned group goes offline top-down and is released
  // with the `released` marker, then the membership is revoked. Bounded by
  // `timeout`; what is still running then is terminated.
  boost::asio::awaitable<void> shutdown(std::chrono::milliseconds timeout);
  // Before the agent replaces itself (exec) and resumes its lease: no lease is given up and
  // nothing is stopped; waits up to `timeout` for the resource calls in flight to end and the
  // event log to be written, so the new agent starts from a settled state.
  boost::asio::awaitable<void> quiesce_for_restart(std::chrono::milliseconds timeout);

  // Read by the API (on the agent's executor).
  const std::string& node() const { return options_.node; }
  const std::string& cluster() const { return options_.cluster; }
  const cluster::StoreKeys& keys() const { return keys_; }
  store::Store& store() { return store_; }
  store::Revision revision() const { return revision_; }
  const std::map<std::string, store::KeyValue>& snapshot() const { return snapshot_; }
  bool joined() const { return core_.joined() && !core_.fenced(); }
  // Records an event in the store's log (and the agent's log). `token` != 0
  // makes the write conditional on still owning `group` with that token.
  void record(std::string group, std::string resource, std::string what, std::string why,
              int64_t token = 0);
  // Calls `listener` after every change of the snapshot (the API's event
  // streams) until remove_listener() with the id returned.
  int add_listener(std::function<void()> listener);
  void remove_listener(int id) { listeners_.erase(id); }
  // Returns once the snapshot holds `revision` (a write of this agent's own, so that what it
  // answers next includes it), or after `limit`.
  boost::asio::awaitable<void> caught_up(store::Revision revision, std::chrono::milliseconds limit);
  // Does what the wakeup timer does when it fires: handles what is due by the
  // clock now (harmless when nothing is). For tests with `wakeup_timer` off.
  void wake();

 private:
  struct ResourceKey {
    std::string group;
    int64_t token = 0;
    int resource = 0;
    bool operator<(const ResourceKey& other) const {
      return std::tie(group, token, resource) < std::tie(other.group, other.token, other.resource);
    }
  };
  struct PendingEvent {
    LoggedEvent event;
    int64_t token = 0;
  };

  boost::asio::awaitable<Status> load();
  boost::asio::awaitable<void> follow();
  // Applies a batch to the snapshot; true when it changed a key that a
  // decision reads.
  bool apply(const store::WatchBatch& batch);
  void refresh_view();
  void changed(bool decisive);

  // The lease of the lease file when it still holds this node's membership in the snapshot,
  // with adopt_ set to the groups owned under it; 0 otherwise.
  int64_t kept_lease();
  // Renews `lease` once: the lease to resume, or nullopt when the store no longer has it.
  boost::asio::awaitable<std::optional<ResumedLease>> resume_lease(int64_t lease);
  // Terminates the resources of every group this node could host but those in adopt_ (or
  // only those of `only`).
  boost::asio::awaitable<void> startup_probe(
      std::optional<std::map<std::string, int64_t>> only = std::nullopt);
  void write_clustered_sites();

  void step(const cluster::NodeEvent& event);
  void act(const cluster::NodeAction& action);
  void schedule_wakeup();
  boost::asio::awaitable<void> acquire(std::string group, int64_t lease);
  boost::asio::awaitable<void> release(cluster::ReleaseOwnership release);
  boost::asio::awaitable<void> run_call(cluster::ResourceCall call);
  resources::Resource* resource_for(const ResourceKey& key, std::string& error);
  resources::CallContext context_for(const std::string& group, int64_t token,
                                     const cluster::ResourceSpec& spec,
                                     std::chrono::milliseconds timeout) const;
  void drop_resources();
  void on_group_event(const cluster::GroupEvent& event);
  void watch_resource(const std::string& group, int64_t token, int index, bool online);
  boost::asio::awaitable<void> write_status(std::string group, int64_t token);
  // status/<group>: the group's and its resources' states as the owner sees them.
  std::string status_json(const std::string& group, int64_t token, const std::string& state) const;

  void coordinate();
  boost::asio::awaitable<void> campaign();
  boost::asio::awaitable<void> write_placement(std::string group, std::string value, int64_t token);
  boost::asio::awaitable<void> drain_events();

  boost::asio::any_io_executor executor_;
  store::Store& store_;
  Liveness& liveness_;
  ResourceFactory factory_;
  const Clock& clock_;
  AgentOptions options_;
  cluster::StoreKeys keys_;
  cluster::NodeCore core_;

  std::map<std::string, store::KeyValue> snapshot_;
  store::Revision revision_ = 0;
  std::map<int, std::function<void()>> listeners_;
  int next_listener_ = 1;
  struct DecodedGroup {
    store::Revision revision = 0;            // mod_revision of groups/<group> decoded
    std::optional<cluster::GroupSpec> spec;  // nullopt: unreadable (logged once)
  };
  std::map<std::string, DecodedGroup> decoded_groups_;
  cluster::ClusterView view_;  // of the snapshot, as of the last decisive change

  int64_t lease_ = 0;
  Clock::TimePoint deadline_{};
  int64_t resumed_lease_ = 0;             // asked of the liveness at start
  std::map<std::string, int64_t> adopt_;  // group -> token owned under resumed_lease_
  bool campaigning_ = false;
  bool stopping_ = false;
  std::set<std::string> placement_writes_;  // groups with a write in flight
  boost::asio::steady_timer wakeup_;
  std::map<ResourceKey, std::unique_ptr<resources::Resource>> resources_;
  std::map<ResourceKey, int> in_flight_;  // calls running per resource object
  std::set<std::string> status_writes_;   // groups with a status write in flight
  std::set<std::string> status_dirty_;
  std::deque<PendingEvent> events_;
  bool draining_events_ = false;
  uint64_t events_next_ = 1;  // as of our last append (the snapshot may lag)
  store::Revision events_next_mod_ = 0;
  std::string clustered_sites_written_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace clusweb::agent
