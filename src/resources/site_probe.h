#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <stop_token>
#include <string>
#include <vector>

#include "base/result.h"

namespace clusweb::resources {

// Where an HTTP probe of a site goes: one of the site's own bindings, reached
// on this host.
struct ProbeTarget {
  bool https = false;
  std::string address;  // an IP literal to connect to: "127.0.0.1", "::1", "10.77.0.10"
  std::uint16_t port = 0;
  std::string host;         // the Host header: "www.example.com", "127.0.0.1:8080"
  std::string server_name;  // the SNI name (https only); "" = none
  std::string path = "/";   // the request target

  // "http://127.0.0.1:8080/ (Host www.example.com)"
  std::string describe() const;
};

// The target for the site's bindings as the admin API reports them
// ("http|https://ADDRESS:PORT[/HOST]"): the first http binding, else the
// first https one. Address "*" and 0.0.0.0 become 127.0.0.1, "::" becomes
// ::1. The Host header is the binding's host name ("*.example.com" becomes
// "probe.example.com"), or else the address, with ":PORT" unless the port is
// the scheme's default; the SNI name is the host name, when there is one.
Result<ProbeTarget> probe_target(const std::vector<std::string>& binding_urls, std::string path);

// One GET of `target`: the status code of the answer (only the status line
// and headers are read; the connection is closed after them). https checks no
// certificate: the probe asks whether the site answers, not whom to trust.
// Ends by `deadline`; triggering `stop` ends it at once.
boost::asio::awaitable<Result<int>> probe_site(boost::asio::any_io_executor executor,
                                               ProbeTarget target,
                                               std::chrono::steady_clock::time_point deadline,
                                               std::stop_token stop);

}  // namespace clusweb::resources
