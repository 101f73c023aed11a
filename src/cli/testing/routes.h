#pragma once

// Handlers for FakeAdminServer shared by the tests of the commands that use AdminClient.

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli/testing/fake_admin_server.h"

namespace clusweb::cli::testing {

inline FakeAdminServer::Reply json_reply(int status, std::string_view body) {
  FakeAdminServer::Reply reply;
  reply.status = status;
  reply.body = std::string(body);
  return reply;
}

// Answers "METHOD /target" with the replies listed for it, one per request; the last one
// repeats, so that a list of one answers every time. Everything else gets 404.
inline FakeAdminServer::Handler routes(
    std::map<std::string, std::vector<FakeAdminServer::Reply>> table) {
  auto state = std::make_shared<std::map<std::string, std::vector<FakeAdminServer::Reply>>>(
      std::move(table));
  return [state](const FakeAdminServer::Request& request) {
    auto found = state->find(request.method + " " + request.target);
    if (found == state->end() || found->second.empty()) {
      return json_reply(404, R"({"error":"no route"})");
    }
    FakeAdminServer::Reply reply = found->second.front();
    if (found->second.size() > 1) found->second.erase(found->second.begin());
    return reply;
  };
}

}  // namespace clusweb::cli::testing
