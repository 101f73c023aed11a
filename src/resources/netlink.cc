#include "resources/netlink.h"

#include <arpa/inet.h>
#include <linux/if.h>
#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/socket.h>
#include <sys/socket.h>

#include <charconv>
#include <cstring>

namespace clusweb::resources {
namespace {

// libnl objects are reference counted C structs; these give each one owner.
struct AddrPut {
  void operator()(nl_addr* a) const { nl_addr_put(a); }
};
struct RtnlAddrPut {
  void operator()(rtnl_addr* a) const { rtnl_addr_put(a); }
};
struct LinkPut {
  void operator()(rtnl_link* l) const { rtnl_link_put(l); }
};
struct CacheFree {
  void operator()(nl_cache* c) const { nl_cache_free(c); }
};
using NlAddr = std::unique_ptr<nl_addr, AddrPut>;
using RtnlAddr = std::unique_ptr<rtnl_addr, RtnlAddrPut>;
using Link = std::unique_ptr<rtnl_link, LinkPut>;
using Cache = std::unique_ptr<nl_cache, CacheFree>;

// libnl returns negative NLE_* codes.
Error nl_error(std::string_view call, std::string_view what, int err) {
  return Error{fmt::format("{}: {}", call, nl_geterror(err)), std::string(what), 0, 0};
}

Result<RtnlAddr> make_request(int ifindex, const IpAddress& address) {
  NlAddr local(
      nl_addr_build(address.ipv6 ? AF_INET6 : AF_INET, address.bytes.data(), address.size()));
  if (!local) return make_error("out of memory");
  nl_addr_set_prefixlen(local.get(), address.prefix_length);
  RtnlAddr request(rtnl_addr_alloc());
  if (!request) return make_error("out of memory");
  rtnl_addr_set_ifindex(request.get(), ifindex);
  rtnl_addr_set_family(request.get(), address.ipv6 ? AF_INET6 : AF_INET);
  if (int err = rtnl_addr_set_local(request.get(), local.get()); err < 0) {
    return nl_error("rtnl_addr_set_local", address.to_string(), err);
  }
  rtnl_addr_set_prefixlen(request.get(), address.prefix_length);
  return request;
}

}  // namespace

std::string IpAddress::host() const {
  std::array<char, INET6_ADDRSTRLEN> text{};
  if (inet_ntop(ipv6 ? AF_INET6 : AF_INET, bytes.data(), text.data(), text.size()) == nullptr) {
    return "?";
  }
  return text.data();
}

std::string IpAddress::to_string() const { return fmt::format("{}/{}", host(), prefix_length); }

Result<IpAddress> parse_ip_address(std::string_view text) {
  IpAddress address;
  const size_t slash = text.find('/');
  const std::string host(text.substr(0, slash));
  if (inet_pton(AF_INET, host.c_str(), address.bytes.data()) == 1) {
    address.ipv6 = false;
  } else if (inet_pton(AF_INET6, host.c_str(), address.bytes.data()) == 1) {
    address.ipv6 = true;
  } else {
    return make_error("not an IPv4 or IPv6 address: \"{}\"", text);
  }
  const int max_prefix = address.ipv6 ? 128 : 32;
  address.prefix_length = max_prefix;
  if (slash != std::string_view::npos) {
    const std::string_view prefix = text.substr(slash + 1);
    const auto [end, ec] =
        std::from_chars(prefix.data(), prefix.data() + prefix.size(), address.prefix_length);
    if (ec != std::errc() || end != prefix.data() + prefix.size() || prefix.empty() ||
        address.prefix_length < 1 || address.prefix_length > max_prefix) {
      return make_error("bad prefix length in \"{}\" (1 to {})", text, max_prefix);
    }
  }
  return address;
}

void RouteSocket::Close::operator()(nl_sock* socket) const { nl_socket_free(socket); }

Result<RouteSocket> RouteSocket::open() {
  nl_sock* socket = nl_socket_alloc();
  if (socket == nullptr) return make_error("nl_socket_alloc: out of memory");
  RouteSocket route(socket);
  if (int err = nl_connect(socket, NETLINK_ROUTE); err < 0) {
    return nl_error("nl_connect", "NETLINK_ROUTE", err);
  }
  return route;
}

Result<LinkState> RouteSocket::link(const std::string& name) {
  rtnl_link* raw = nullptr;
  if (int err = rtnl_link_get_kernel(socket_.get(), 0, name.c_str(), &raw); err < 0) {
    if (err == -NLE_NODEV || err == -NLE_OBJ_NOTFOUND) {
      return Error{"no such interface", name, 0, kNoSuchInterface};
    }
    return nl_error("rtnl_link_get_kernel", name, err);
  }
  const Link link(raw);
  LinkState state;
  state.index = rtnl_link_get_ifindex(link.get());
  const unsigned flags = rtnl_link_get_flags(link.get());
  state.admin_up = (flags & IFF_UP) != 0;
  state.carrier = (flags & IFF_LOWER_UP) != 0;
  const uint8_t operstate = rtnl_link_get_operstate(link.get());
  state.oper_up = operstate == IF_OPER_UP || operstate == IF_OPER_UNKNOWN;
  std::array<char, 32> operstate_name{};
  rtnl_link_operstate2str(operstate, operstate_name.data(), operstate_name.size());
  state.operstate = operstate_name.data();
  if (nl_addr* mac = rtnl_link_get_addr(link.get()); mac != nullptr) {
    const auto* bytes = static_cast<const uint8_t*>(nl_addr_get_binary_addr(mac));
    state.mac.assign(bytes, bytes + nl_addr_get_len(mac));
  }
  return state;
}

Status RouteSocket::replace_address(int ifindex, const IpAddress& address, uint32_t valid_seconds,
                                    uint32_t preferred_seconds, unsigned flags) {
  auto request = make_request(ifindex, address);
  if (!request) return request.error();
  rtnl_addr_set_valid_lifetime(request->get(), valid_seconds);
  rtnl_addr_set_preferred_lifetime(request->get(), preferred_seconds);
  if (flags != 0) rtnl_addr_set_flags(request->get(), flags);
  if (int err = rtnl_addr_add(socket_.get(), request->get(), NLM_F_REPLACE); err < 0) {
    return nl_error("rtnl_addr_add", address.to_string(), err);
  }
  return ok_status();
}

Status RouteSocket::delete_address(int ifindex, const IpAddress& address) {
  auto request = make_request(ifindex, address);
  if (!request) return request.error();
  const int err = rtnl_addr_delete(socket_.get(), request->get(), 0);
  if (err < 0 && err != -NLE_NOADDR && err != -NLE_NODEV) {
    return nl_error("rtnl_addr_delete", address.to_string(), err);
  }
  return ok_status();
}

Result<std::optional<AddressState>> RouteSocket::find_address(int ifindex,
                                                              const IpAddress& address) {
  nl_cache* raw = nullptr;
  if (int err = rtnl_addr_alloc_cache(socket_.get(), &raw); err < 0) {
    return nl_error("rtnl_addr_alloc_cache", address.to_string(), err);
  }
  const Cache cache(raw);
  const int family = address.ipv6 ? AF_INET6 : AF_INET;
  for (nl_object* object = nl_cache_get_first(cache.get()); object != nullptr;
       object = nl_cache_get_next(object)) {
    auto* candidate = reinterpret_cast<rtnl_addr*>(object);  // the cache holds rtnl_addr objects
    if (rtnl_addr_get_ifindex(candidate) != ifindex) continue;
    if (rtnl_addr_get_family(candidate) != family) continue;
    nl_addr* local = rtnl_addr_get_local(candidate);
    if (local == nullptr || nl_addr_get_len(local) != address.size()) continue;
    if (std::memcmp(nl_addr_get_binary_addr(local), address.bytes.data(), address.size()) != 0) {
      continue;
    }
    return std::optional<AddressState>(AddressState{
        rtnl_addr_get_valid_lifetime(candidate),
        rtnl_addr_get_preferred_lifetime(candidate),
        rtnl_addr_get_flags(candidate),
    });
  }
  return std::optional<AddressState>();
}

}  // namespace clusweb::resources
