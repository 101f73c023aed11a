#pragma once

#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>

#include "base/result.h"
#include "web/master.h"

namespace clusweb::web {

// The web service's admin API (the AdminManager analog): HTTP/1.1 + JSON on
// a unix socket, mode 0660 (group "clusweb" when that group exists).
//
//   GET  /v1/status                 service summary
//   GET  /v1/sites[/NAME]           sites with state and counters
//   POST /v1/sites/NAME/start|stop
//   GET  /v1/pools[/NAME]           pools with state, workers, counters
//   POST /v1/pools/NAME/start|stop|recycle
//   POST /v1/permits/NAME           {"deadlineBoottimeMs": N}: grant, renew, revoke
//                                   the serving permit of a clustered site
//   POST /v1/reload                 parse, validate, swap the configuration
//   GET  /v1/events                 chunked stream, one JSON event per line
//
// Errors are 4xx/5xx with {"error": "..."}. Runs on the master's io_context.
class AdminServer {
 public:
  AdminServer(boost::asio::io_context& io, WebMaster& master);
  ~AdminServer();

  // Binds `path` (replacing a stale socket file) and starts accepting.
  Status listen(const std::string& path);
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace clusweb::web
