#pragma once

// What the two local HTTP+JSON APIs (the web service's admin API and the
// cluster agent's) share: their unix socket, created the same way, and the
// parsing of a request target.

#include <boost/asio/local/stream_protocol.hpp>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace clusweb {

// Binds `path` (replacing a stale socket file) and listens; the socket file
// gets mode 0660 and the group "clusweb" when that group exists, so its
// members can use the CLI without root. `what` names the socket in errors.
Status listen_api_socket(boost::asio::local::stream_protocol::acceptor& acceptor,
                         const std::string& path, std::string_view what);
// Stops accepting and removes the socket file.
void close_api_socket(boost::asio::local::stream_protocol::acceptor& acceptor,
                      const std::string& path);

// "/v1/groups/web/move?after=3&follow" -> parts {"v1", "groups", "web",
// "move"}, query {"after": "3", "follow": ""}. No percent-decoding: names
// in these APIs are plain (cluster::check_name, site and pool names).
struct ApiTarget {
  std::vector<std::string> parts;
  std::map<std::string, std::string> query;
};
ApiTarget parse_api_target(std::string_view target);

}  // namespace clusweb
