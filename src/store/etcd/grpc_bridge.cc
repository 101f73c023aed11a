#include "store/etcd/grpc_bridge.h"

#include <vector>

namespace clusweb::store::etcd {

bool CallTracker::begin(const std::shared_ptr<Call>& call) {
  std::lock_guard lock(mutex_);
  if (closed_) return false;
  active_.emplace(call.get(), call);
  return true;
}

void CallTracker::end(const Call* call) {
  std::lock_guard lock(mutex_);
  active_.erase(call);
  if (active_.empty()) idle_.notify_all();
}

void CallTracker::close() {
  std::vector<std::shared_ptr<Call>> in_flight;
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
    for (auto& [raw, weak] : active_) {
      if (auto call = weak.lock()) in_flight.push_back(std::move(call));
    }
  }
  // Outside the lock: gRPC may run a final callback (which calls end()) inline
  // in TryCancel.
  for (auto& call : in_flight) call->context.TryCancel();
  in_flight.clear();
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [this] { return active_.empty(); });
}

bool CallTracker::closed() const {
  std::lock_guard lock(mutex_);
  return closed_;
}

}  // namespace clusweb::store::etcd
