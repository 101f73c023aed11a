#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"
#include "config/web_config.h"

namespace clusweb::web {

// Binds a listening TCP socket for a binding's address and port. "*" binds
// the IPv6 wildcard accepting IPv4 too (or 0.0.0.0 where IPv6 is off).
// IP_FREEBIND lets a socket exist before its (floating) address does.
// SO_REUSEPORT lets "*:P" and "ADDR:P" of one service coexist; unless
// `port_is_ours` (we already listen on that port), a plain bind is tried
// first so a port held by another process is refused, not shared.
Result<UniqueFd> bind_listener(const config::Binding& binding, bool port_is_ours,
                               int backlog = 4096);

// The listening sockets of the web master, by listener key. Reconciling with
// a new configuration binds what is new first and only then releases what is
// gone, so a failed bind changes nothing.
class ListenerSet {
 public:
  // Binds every listener of `config` not yet open. On error, closes what this
  // call opened and returns the error naming the binding.
  Status prepare(const config::WebConfig& config);
  // Sets aside listeners that `config` no longer uses, tagged with `epoch`
  // (the configuration that dropped them). They stay open — a front end may
  // still hold a copy — until close_released(), and a later prepare() takes
  // one back instead of binding its port again.
  void retain_only(const config::WebConfig& config, std::uint64_t epoch);
  // Closes what was set aside up to `epoch`: call once the front end uses
  // the configuration of that epoch.
  void close_released(std::uint64_t epoch);
  // Listener key -> descriptor for every listener of `config` (all prepared).
  std::map<std::string, int> fds_for(const config::WebConfig& config) const;

 private:
  std::map<std::string, UniqueFd> open_;
  struct Released {
    UniqueFd fd;
    std::uint64_t epoch = 0;
  };
  std::map<std::string, Released> released_;
};

// The listener keys a configuration uses, with one binding for each.
std::map<std::string, const config::Binding*> listener_bindings(const config::WebConfig& config);

}  // namespace clusweb::web
