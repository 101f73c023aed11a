#pragma once

// The local HTTP/1.1 + JSON APIs (the web service's admin API, the cluster
// agent's API) share everything but their endpoints: a unix socket with mode
// 0660 (group "clusweb" when it exists, so its members can use the CLI
// without root), keep-alive request/response handling with time limits, and
// long-lived streams of JSON lines (`.../events`). ApiServer is that part;
// each API supplies a handler for requests and one for streams.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/verb.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace clusweb {

// "/v1/groups/web/move?after=3&follow" -> parts {"v1", "groups", "web",
// "move"}, query {"after": "3", "follow": ""}. No percent-decoding: names
// in these APIs are plain (cluster::check_name, site and pool names).
struct ApiTarget {
  std::vector<std::string> parts;
  std::map<std::string, std::string> query;
};
ApiTarget parse_api_target(std::string_view target);

struct ApiRequest {
  boost::beast::http::verb method = boost::beast::http::verb::get;
  ApiTarget target;
  std::string body;
  bool get() const { return method == boost::beast::http::verb::get; }
  bool post() const { return method == boost::beast::http::verb::post; }
};

struct ApiReply {
  int status = 200;
  std::string body;  // JSON
};

// One long-lived response: chunked, one line per chunk, until the handler
// returns or the client leaves.
class ApiLineStream {
 public:
  virtual ~ApiLineStream() = default;
  // Sends `line` (a line break is added); false once the client has left.
  virtual boost::asio::awaitable<bool> send(std::string line) = 0;
  // Returns when the waker was called (also before this wait began, since the
  // last wait), when the client leaves, or after `timeout`.
  virtual boost::asio::awaitable<void> wait(
      std::chrono::milliseconds timeout = std::chrono::hours(24)) = 0;
  // A callable for subscriptions: wakes wait(); harmless after the stream ended.
  virtual std::function<void()> waker() = 0;
  virtual bool open() const = 0;
};

class ApiServer {
 public:
  using Handler = std::function<boost::asio::awaitable<ApiReply>(const ApiRequest&)>;
  using Streamer = std::function<boost::asio::awaitable<void>(const ApiRequest&, ApiLineStream&)>;
  using IsStream = std::function<bool(const ApiRequest&)>;

  struct Options {
    std::string name;  // "admin api", "agent api": logs, errors, the Server header
    std::size_t body_limit = 1 << 20;
  };

  // Requests for which `is_stream` is true are answered by `streamer`, the
  // others by `handler`. The handlers run on `executor` and must outlive the
  // server's connections (close() stops accepting new ones).
  ApiServer(boost::asio::any_io_executor executor, Options options, Handler handler,
            IsStream is_stream, Streamer streamer);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Binds `path` (replacing a stale socket file), sets its mode and group,
  // and starts accepting.
  Status listen(const std::string& path);
  // Stops accepting and removes the socket file.
  void close();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace clusweb
