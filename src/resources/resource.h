#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/clock.h"
#include "cluster/group_controller.h"

// Resource types: what the agent runs for the group controller's calls.
namespace clusweb::resources {

// Everything one call needs to know. Built by the agent per call.
struct CallContext {
  std::string resource;
  std::string group;
  std::string node;
  int64_t fencing_token = 0;
  std::map<std::string, std::string> parameters;
  // The call must end by then: a hung call is killed (with its process group
  // when it runs a program) and reported as timed out.
  std::chrono::milliseconds timeout{0};
  // For LooksAlive and IsAlive, how often the check recurs; 0 for every
  // other call, and for a one-off check such as the start-up probe.
  std::chrono::milliseconds interval{0};
  // The node's fencing deadline as of now (it moves with every renewal).
  // Whatever makes a resource serve (adding an address, refreshing its
  // lifetime) checks it immediately before acting and refuses once it has
  // passed.
  std::function<Clock::TimePoint()> fencing_deadline;
  const Clock* clock = nullptr;
};

struct CallResult {
  bool ok = false;                  // the verb's boolean answer (exit 0 = true)
  bool timed_out = false;           // killed at the timeout
  std::string detail;               // why not ok, in a few words ("exited 3", "address missing")
  std::vector<std::string> output;  // lines the call printed, for the event log
  // When !ok: how the controller treats the failure (types that can tell
  // a failure's class, such as `ocf` from the agent's exit code).
  cluster::FailureClass failure = cluster::FailureClass::kSoft;
};

// One configured resource of one type. Calls are made one at a time per
// resource, except Terminate, which may arrive while another call runs and
// must end it. Every call completes within its timeout.
//
// Besides the calls, the agent tells a resource of lease renewals and lets it
// report failures as they happen; types with nothing to do there keep the
// default no-ops. All of it happens on the thread of the executor the
// resource was made with.
class Resource {
 public:
  virtual ~Resource() = default;
  virtual boost::asio::awaitable<CallResult> call(cluster::Verb verb,
                                                  const CallContext& context) = 0;

  // After every acknowledged lease renewal, for every resource of every group
  // the node owns: `deadline` is the node's new fencing deadline. Returns at
  // once; whatever a resource does with it (extend a serving permit) runs in
  // the background and never holds the caller.
  virtual void renewed(Clock::TimePoint /*deadline*/) {}

  // From the moment the resource is online until unwatch(): the resource may
  // call `looks_dead` (posted to `executor`) when it sees itself fail, so the
  // agent checks it at once instead of at the next poll. A second watch()
  // replaces the first. After unwatch() returns, `looks_dead` is not called
  // again. Both by value: implementations keep them (the default ignores them).
  // NOLINTBEGIN(performance-unnecessary-value-param)
  virtual void watch(boost::asio::any_io_executor /*executor*/,
                     std::function<void(std::string reason)> /*looks_dead*/) {}
  // NOLINTEND(performance-unnecessary-value-param)
  virtual void unwatch() {}
};

}  // namespace clusweb::resources
