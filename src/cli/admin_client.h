#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace clusweb::cli {

// One reply of the admin API: the HTTP status and the JSON body.
struct AdminResponse {
  int status = 0;
  std::string body;
};

// The service behind the socket as messages name it, so that a failure tells people which
// service to look at and how to start it. Views of string literals.
struct AdminService {
  std::string_view name;     // as it stands in a sentence: "the web service"
  std::string_view command;  // the command that runs it: "clusweb web"
};

// `clusweb web`'s admin API.
inline constexpr AdminService kWebService{"the web service", "clusweb web"};
// The cluster agent's API (`clusweb agent`), which speaks the same HTTP + JSON.
inline constexpr AdminService kClusterAgent{"the cluster agent", "clusweb agent"};

// A blocking client of the admin API that `clusweb web` serves (HTTP/1.1 + JSON on a unix
// socket), or of another service that speaks it (`service`). Each call opens its own
// connection, sends one request and closes; the object holds no connection between calls and
// is not thread-safe.
//
// Failures to talk to the service (cannot connect, no answer in time, connection lost,
// malformed reply) are Errors with a plain-language message and a nonzero `sys_errno`
// (ENOENT, ECONNREFUSED, ETIMEDOUT, EPROTO, ...). An answer with an error status is not an
// Error for get() and post(): the caller sees the status and the body.
class AdminClient {
 public:
  static constexpr std::chrono::seconds kDefaultTimeout{5};

  // `service` is what messages call the peer. `timeout` bounds each get()/post() from connect
  // to the last byte of the reply, and the connect and reply header of stream().
  explicit AdminClient(std::string socket_path, AdminService service = kWebService,
                       std::chrono::milliseconds timeout = kDefaultTimeout);

  const std::string& socket_path() const { return socket_path_; }
  const AdminService& service() const { return service_; }

  Result<AdminResponse> get(std::string_view target);
  Result<AdminResponse> post(std::string_view target, std::string body = "");

  // Sends GET `target` and hands each line of the reply body to `on_line` as it arrives
  // (without the line break; empty lines are skipped), however the body is framed. Returns
  // when `on_line` returns false or the server ends the body or closes the connection; the
  // body itself has no time limit. A reply with a non-2xx status is an Error carrying the
  // server's message (see server_error_message) and `sys_errno` 0.
  Status stream(std::string_view target, const std::function<bool(std::string_view line)>& on_line);

 private:
  Result<AdminResponse> request(bool post, std::string_view target, std::string body);

  std::string socket_path_;
  AdminService service_;
  std::chrono::milliseconds timeout_;
};

// The plain-language reason of a refusal: the "error" member of the JSON body when there is
// one, otherwise a sentence naming `service` and the status (and the body's text, when short).
std::string server_error_message(const AdminResponse& response,
                                 const AdminService& service = kWebService);

}  // namespace clusweb::cli
