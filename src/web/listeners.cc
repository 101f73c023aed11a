#include "web/listeners.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>

namespace clusweb::web {

namespace {

Result<UniqueFd> bind_family(const config::Binding& binding, int family, int backlog,
                             bool reuse_port) {
  UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  std::string where = binding.listener_key();
  if (!fd) return errno_error("socket", where);
  int one = 1;
  int zero = 0;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  // Lets "*:P" and "ADDR:P" listen side by side (the kernel prefers the more
  // specific socket), and lets a reload bind a new listener before the one it
  // replaces is closed.
  if (reuse_port) ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  sockaddr_storage address{};
  socklen_t length = 0;
  if (family == AF_INET6) {
    ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof one);
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&address);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(binding.port);
    if (binding.address == "*") {
      ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
      in6->sin6_addr = in6addr_any;
    } else {
      ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
      if (::inet_pton(AF_INET6, binding.address.c_str(), &in6->sin6_addr) != 1) {
        return Error{"not an IPv6 address", where, 0};
      }
    }
    length = sizeof(sockaddr_in6);
  } else {
    ::setsockopt(fd.get(), IPPROTO_IP, IP_FREEBIND, &one, sizeof one);
    auto* in4 = reinterpret_cast<sockaddr_in*>(&address);
    in4->sin_family = AF_INET;
    in4->sin_port = htons(binding.port);
    if (binding.address == "*") {
      in4->sin_addr.s_addr = htonl(INADDR_ANY);
    } else if (::inet_pton(AF_INET, binding.address.c_str(), &in4->sin_addr) != 1) {
      return Error{"not an IPv4 address", where, 0};
    }
    length = sizeof(sockaddr_in);
  }
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), length) != 0) {
    return errno_error("bind", where);
  }
  if (backlog > 0 && ::listen(fd.get(), backlog) != 0) return errno_error("listen", where);
  return fd;
}

Result<UniqueFd> bind_once(const config::Binding& binding, int backlog, bool reuse_port) {
  if (binding.address == "*") {
    auto dual = bind_family(binding, AF_INET6, backlog, reuse_port);
    if (dual ||
        (dual.error().sys_errno != EAFNOSUPPORT && dual.error().sys_errno != EADDRNOTAVAIL)) {
      return dual;
    }
    return bind_family(binding, AF_INET, backlog, reuse_port);
  }
  bool v6 = binding.address.find(':') != std::string::npos;
  return bind_family(binding, v6 ? AF_INET6 : AF_INET, backlog, reuse_port);
}

}  // namespace

Result<UniqueFd> bind_listener(const config::Binding& binding, bool port_is_ours, int backlog) {
  if (!port_is_ours) {
    // SO_REUSEPORT would let us share a port another process listens on;
    // a plain bind first makes that an "address in use" error instead.
    auto probe = bind_once(binding, 0, false);
    if (!probe) return probe.error();
  }
  return bind_once(binding, backlog, true);
}

std::map<std::string, const config::Binding*> listener_bindings(const config::WebConfig& config) {
  std::map<std::string, const config::Binding*> out;
  for (const auto& [name, site] : config.sites) {
    for (const auto& binding : site.bindings) out.emplace(binding.listener_key(), &binding);
  }
  return out;
}

Status ListenerSet::prepare(const config::WebConfig& config) {
  std::map<std::string, UniqueFd> fresh;
  for (const auto& [key, binding] : listener_bindings(config)) {
    if (open_.count(key) != 0) continue;
    if (auto kept = released_.find(key); kept != released_.end()) {
      fresh.emplace(key, std::move(kept->second.fd));
      released_.erase(kept);
      continue;
    }
    const std::string port_suffix = ":" + std::to_string(binding->port);
    bool port_is_ours = false;
    for (const auto& [open_key, fd] : open_) port_is_ours |= open_key.ends_with(port_suffix);
    for (const auto& [fresh_key, fd] : fresh) port_is_ours |= fresh_key.ends_with(port_suffix);
    for (const auto& [kept_key, kept] : released_) port_is_ours |= kept_key.ends_with(port_suffix);
    auto fd = bind_listener(*binding, port_is_ours);
    if (!fd) return fd.error();  // `fresh` closes what was opened
    fresh.emplace(key, std::move(*fd));
  }
  for (auto& [key, fd] : fresh) open_.emplace(key, std::move(fd));
  return {};
}

void ListenerSet::close_released(std::uint64_t epoch) {
  for (auto it = released_.begin(); it != released_.end();) {
    it = it->second.epoch <= epoch ? released_.erase(it) : std::next(it);
  }
}

void ListenerSet::retain_only(const config::WebConfig& config, std::uint64_t epoch) {
  auto wanted = listener_bindings(config);
  for (auto it = open_.begin(); it != open_.end();) {
    if (wanted.count(it->first) == 0) {
      released_[it->first] = Released{std::move(it->second), epoch};
      it = open_.erase(it);
    } else {
      ++it;
    }
  }
}

std::map<std::string, int> ListenerSet::fds_for(const config::WebConfig& config) const {
  std::map<std::string, int> out;
  for (const auto& [key, binding] : listener_bindings(config)) {
    auto it = open_.find(key);
    if (it != open_.end()) out.emplace(key, it->second.get());
  }
  return out;
}

}  // namespace clusweb::web
