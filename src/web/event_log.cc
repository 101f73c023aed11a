#include "web/event_log.h"

#include <fmt/format.h>

#include <ctime>
#include <nlohmann/json.hpp>
#include <vector>

namespace clusweb::web {

std::string to_json_line(const WebEvent& event) {
  std::time_t seconds = static_cast<std::time_t>(event.unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
  nlohmann::json j;
  j["seq"] = event.seq;
  j["time"] = fmt::format("{}.{:03}Z", text, event.unix_ms % 1000);
  j["type"] = event.type;
  if (!event.name.empty()) j["name"] = event.name;
  if (!event.state.empty()) j["state"] = event.state;
  if (event.state_code >= 0) j["stateCode"] = event.state_code;
  if (!event.reason.empty()) j["reason"] = event.reason;
  j["message"] = event.message;
  return j.dump();
}

const WebEvent& EventLog::record(WebEvent event) {
  event.seq = next_seq_++;
  event.unix_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock_.wall_now().time_since_epoch())
          .count();
  events_.push_back(std::move(event));
  if (events_.size() > capacity_) events_.pop_front();
  // Subscribers may unsubscribe while being told: iterate over a copy of ids.
  std::vector<std::uint64_t> ids;
  for (const auto& [id, subscriber] : subscribers_) ids.push_back(id);
  const WebEvent& stored = events_.back();
  for (auto id : ids) {
    auto it = subscribers_.find(id);
    if (it != subscribers_.end()) it->second(stored);
  }
  return events_.back();
}

std::uint64_t EventLog::subscribe(Subscriber subscriber) {
  auto id = next_subscriber_++;
  subscribers_.emplace(id, std::move(subscriber));
  return id;
}

void EventLog::unsubscribe(std::uint64_t id) { subscribers_.erase(id); }

}  // namespace clusweb::web
