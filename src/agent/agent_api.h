#pragma once

// The agent's API for the `clusweb` CLI: HTTP/1.1 + JSON on a unix socket
// (mode 0660, group "clusweb" when it exists), so store credentials and
// validation live in the agent alone. Endpoints (docs/operators-guide.md):
//   GET  /v1/cluster                       nodes, coordinator, groups with owners and states
//   GET  /v1/groups/NAME                   spec, revision, status
//   POST /v1/groups/NAME                   {"spec": {...}, "revision": N?} create or replace
//   POST /v1/groups/NAME/delete|online|offline
//   POST /v1/groups/NAME/move              {"node": "n2"} or {} for any other node
//   POST /v1/apply                         {"groups": [...], "web": {...}?, "dryRun": bool},
//                                          one transaction; answers what changes ("configDiff")
//   /v1/config...                          the shared web configuration (agent/config_api.h)
//   GET  /v1/events?after=SEQ&limit=N      the store's event log
//   GET  /v1/events?follow=1&after=SEQ     the same as a stream, one JSON object per line

#include <boost/asio/any_io_executor.hpp>
#include <memory>
#include <string>

#include "agent/agent.h"
#include "base/result.h"

namespace clusweb::agent {

class AgentApi {
 public:
  AgentApi(const boost::asio::any_io_executor& executor, Agent& agent);
  ~AgentApi();
  AgentApi(const AgentApi&) = delete;
  AgentApi& operator=(const AgentApi&) = delete;

  // Binds `path` (replacing a stale socket file) and starts accepting.
  Status listen(const std::string& path);
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace clusweb::agent
