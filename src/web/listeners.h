#pragma once

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
Result<UniqueFd> bind_listener(const config::Binding& binding, int backlog = 4096);

// The listening sockets of the web master, by listener key. Reconciling with
// a new configuration binds what is new first and only then releases what is
// gone, so a failed bind changes nothing.
class ListenerSet {
 public:
  // Binds every listener of `config` not yet open. On error, closes what this
  // call opened and returns the error naming the binding.
  Status prepare(const config::WebConfig& config);
  // Closes listeners that `config` no longer uses.
  void retain_only(const config::WebConfig& config);
  // Listener key -> descriptor for every listener of `config` (all prepared).
  std::map<std::string, int> fds_for(const config::WebConfig& config) const;

 private:
  std::map<std::string, UniqueFd> open_;
};

// The listener keys a configuration uses, with one binding for each.
std::map<std::string, const config::Binding*> listener_bindings(const config::WebConfig& config);

}  // namespace clusweb::web
