#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>

#include "base/clock.h"

namespace clusweb::web {

// A state change of the web service, as the admin API streams it.
struct WebEvent {
  std::uint64_t seq = 0;
  std::int64_t unix_ms = 0;
  std::string type;  // "site", "pool", "worker", "reload", "frontend", "permit"
  std::string name;
  std::string state;
  int state_code = -1;  // IIS numbering when a state is given
  std::string reason;
  std::string message;
};

// JSON object of one event, on one line.
std::string to_json_line(const WebEvent& event);

// Keeps the most recent events and tells subscribers of new ones. Not
// thread-safe: used on the master's io_context thread.
class EventLog {
 public:
  using Subscriber = std::function<void(const WebEvent&)>;

  explicit EventLog(const Clock& clock, std::size_t capacity = 1000)
      : clock_(clock), capacity_(capacity) {}

  const WebEvent& record(WebEvent event);
  // Returns an id for unsubscribe().
  std::uint64_t subscribe(Subscriber subscriber);
  void unsubscribe(std::uint64_t id);
  const std::deque<WebEvent>& recent() const { return events_; }

 private:
  const Clock& clock_;
  std::size_t capacity_;
  std::deque<WebEvent> events_;
  std::uint64_t next_seq_ = 1;
  std::uint64_t next_subscriber_ = 1;
  std::map<std::uint64_t, Subscriber> subscribers_;
};

}  // namespace clusweb::web
