#pragma once

// Stand-ins for resource objects, for tests of the agent shell: a
// ResourceFactory whose resources write every call (group, resource, verb,
// fencing token) into one journal, answer as the test scripted (ok unless
// told otherwise), and can hold a call pending until the test lets it go or
// a Terminate of the same object ends it. Single-threaded: everything runs
// on the test's io_context.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "agent/agent.h"
#include "resources/resource.h"

namespace clusweb::agent::testing {

class FakeResources {
 public:
  struct Call {
    std::string group;
    std::string resource;
    cluster::Verb verb = cluster::Verb::kOnline;
    int64_t token = 0;
    int object = 0;  // which resource object took the call (one per factory call)
    // The call's view of the node's fencing deadline; may be asked later.
    std::function<Clock::TimePoint()> fencing_deadline;
  };

  // The factory to hand to the Agent. `this` must outlive every resource it
  // makes and every call they run.
  ResourceFactory factory() {
    return
        [this](const std::string& group,
               const cluster::ResourceSpec& spec) -> Result<std::unique_ptr<resources::Resource>> {
          if (refused_types_.contains(spec.type)) {
            return make_error("resource type \"{}\" refused by the test", spec.type);
          }
          ++made_;
          return std::unique_ptr<resources::Resource>(new Fake(*this, group, spec.name, made_));
        };
  }

  // The next call of `verb` on `resource` answers false with `detail`
  // (answers queue up per resource and verb; without one a call answers true).
  void fail_next(const std::string& resource, cluster::Verb verb, std::string detail = "failed") {
    answers_[{resource, verb}].push_back(std::move(detail));
  }
  // The next call of `verb` on `resource` stays pending until release_held()
  // (then it answers as scripted) or a Terminate of the same object ends it
  // (then it answers false, "terminated").
  void hold_next(const std::string& resource, cluster::Verb verb) {
    holds_.insert({resource, verb});
  }
  void release_held() {
    for (auto& held : held_) held.timer->cancel();
  }
  size_t held() const { return held_.size(); }
  // The factory fails for resources of this type.
  void refuse_type(std::string type) { refused_types_.insert(std::move(type)); }

  const std::vector<Call>& calls() const { return calls_; }
  // "verb resource" of every call (of `group` when given), in order.
  std::vector<std::string> journal(const std::string& group = {}) const {
    std::vector<std::string> out;
    for (const Call& call : calls_) {
      if (!group.empty() && call.group != group) continue;
      out.push_back(std::string(cluster::to_string(call.verb)) + " " + call.resource);
    }
    return out;
  }
  int made() const { return made_; }
  int alive() const { return alive_; }
  int renewals() const { return renewals_; }

 private:
  struct Held {
    int object = 0;
    std::shared_ptr<boost::asio::steady_timer> timer;
    std::shared_ptr<bool> terminated;
  };

  class Fake final : public resources::Resource {
   public:
    Fake(FakeResources& owner, std::string group, std::string name, int id)
        : owner_(owner), group_(std::move(group)), name_(std::move(name)), id_(id) {
      ++owner_.alive_;
    }
    ~Fake() override { --owner_.alive_; }

    boost::asio::awaitable<resources::CallResult> call(
        cluster::Verb verb, const resources::CallContext& context) override {
      // Nothing of `this` is used after a suspension: the agent may drop the
      // object while a superseded call of it is still held.
      FakeResources& owner = owner_;
      const int id = id_;
      const std::string name = name_;
      owner.calls_.push_back(
          Call{group_, name, verb, context.fencing_token, id, context.fencing_deadline});
      if (verb == cluster::Verb::kTerminate) {
        // Ends whatever call of this object is held.
        for (auto& held : owner.held_) {
          if (held.object == id) {
            *held.terminated = true;
            held.timer->cancel();
          }
        }
      }
      if (owner.holds_.erase({name, verb}) > 0) {
        auto timer = std::make_shared<boost::asio::steady_timer>(
            co_await boost::asio::this_coro::executor,
            boost::asio::steady_timer::time_point::max());
        auto terminated = std::make_shared<bool>(false);
        owner.held_.push_back(Held{id, timer, terminated});
        co_await timer->async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        std::erase_if(owner.held_, [&](const Held& held) { return held.timer == timer; });
        if (*terminated) co_return resources::CallResult{false, false, "terminated", {}};
      }
      auto scripted = owner.answers_.find({name, verb});
      if (scripted != owner.answers_.end() && !scripted->second.empty()) {
        std::string detail = std::move(scripted->second.front());
        scripted->second.pop_front();
        co_return resources::CallResult{false, false, std::move(detail), {}};
      }
      co_return resources::CallResult{true, false, "", {}};
    }

    void renewed(Clock::TimePoint /*deadline*/) override { ++owner_.renewals_; }

   private:
    FakeResources& owner_;
    std::string group_;
    std::string name_;
    int id_;
  };

  std::vector<Call> calls_;
  std::map<std::pair<std::string, cluster::Verb>, std::deque<std::string>> answers_;
  std::set<std::pair<std::string, cluster::Verb>> holds_;
  std::vector<Held> held_;
  std::set<std::string> refused_types_;
  int made_ = 0;
  int alive_ = 0;
  int renewals_ = 0;
};

}  // namespace clusweb::agent::testing
