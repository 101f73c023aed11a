#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

// The messages between the web master and its front end (control channel).
// Private to the web component.
namespace clusweb::web::protocol {

// What the front end needs to know of a pool.
struct PoolView {
  std::string name;
  int state = 3;
  std::string reason;
  std::vector<std::string> endpoints;
  int queue_length = 1000;
};

// Master -> front end: a whole configuration. Descriptors travel in this
// order: listeners (by `listener_keys`), then access logs (by `access_logs`).
struct ConfigMessage {
  std::uint64_t generation = 0;
  std::uint64_t seq = 0;    // acknowledged by AppliedMessage::seq
  std::string config_json;  // config::to_json
  std::vector<std::string> listener_keys;
  std::vector<std::string> access_logs;       // site names
  std::map<std::string, std::string> pem;     // file path -> contents (certificates, keys)
  std::map<std::string, bool> sites_started;  // site name -> started
  std::vector<PoolView> pools;
  std::map<std::string, std::int64_t> permits;  // as PermitsMessage::deadlines
};

// Master -> front end: the serving permits changed. Every clustered site ->
// the CLOCK_BOOTTIME deadline (ms) of its permit, 0 when it has none; a site
// not named is not clustered. The front end enforces the deadlines itself.
struct PermitsMessage {
  std::map<std::string, std::int64_t> deadlines;
};

// Master -> front end: site states and pools changed, configuration did not.
struct StateMessage {
  std::uint64_t generation = 0;
  std::uint64_t seq = 0;  // acknowledged by AppliedMessage::seq
  std::map<std::string, bool> sites_started;
  std::vector<PoolView> pools;
};

// Front end -> master.
struct SiteStats {
  std::uint64_t requests = 0;
  std::uint64_t responses[5] = {};
  std::uint64_t bytes_sent = 0;
  std::int64_t active_connections = 0;
};
struct PoolStats {
  std::uint64_t requests = 0;
  std::uint64_t queue_full = 0;
};
struct StatsMessage {
  std::uint64_t id = 0;
  std::map<std::string, SiteStats> sites;
  std::map<std::string, PoolStats> pools;
  std::int64_t connections = 0;
};

// Front end -> master once every serving thread uses what a ConfigMessage or
// StateMessage carried.
struct AppliedMessage {
  std::uint64_t generation = 0;
  std::uint64_t seq = 0;
  std::vector<std::string> problems;  // e.g. a site root it cannot open
};

std::string encode(const ConfigMessage& message);
std::string encode(const StateMessage& message);
std::string encode(const StatsMessage& message);
std::string encode(const AppliedMessage& message);
std::string encode(const PermitsMessage& message);
std::string encode_stats_request(std::uint64_t id);
std::string encode_reopen_logs(const std::vector<std::string>& sites);
std::string encode_shutdown(std::int64_t grace_ms);

// Every message has a "type"; decode the rest by it.
Result<std::string> message_type(const std::string& json);
Result<ConfigMessage> decode_config(const std::string& json);
Result<StateMessage> decode_state(const std::string& json);
Result<StatsMessage> decode_stats(const std::string& json);
Result<AppliedMessage> decode_applied(const std::string& json);
Result<PermitsMessage> decode_permits(const std::string& json);
Result<std::uint64_t> decode_stats_request(const std::string& json);
Result<std::vector<std::string>> decode_reopen_logs(const std::string& json);
Result<std::int64_t> decode_shutdown(const std::string& json);

}  // namespace clusweb::web::protocol
