#include "store/etcd/grpc_bridge.h"

#include <vector>

namespace clusweb::store::etcd {

std::optional<CallTracker::Ticket> CallTracker::begin(const std::shared_ptr<Call>& call) {
  std::lock_guard lock(mutex_);
  if (closed_) return std::nullopt;
  const Ticket ticket = next_ticket_++;
  active_.emplace(ticket, call);
  return ticket;
}

void CallTracker::end(Ticket ticket) {
  std::lock_guard lock(mutex_);
  active_.erase(ticket);
  if (active_.empty()) idle_.notify_all();
}

void CallTracker::close() {
  std::vector<std::shared_ptr<Call>> in_flight;
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
    for (auto& [ticket, weak] : active_) {
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
