#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

struct nl_sock;  // libnl's socket; libnl itself stays inside netlink.cc

// A small wrapper around libnl-route-3 for what the ip resource needs:
// interface state and interface addresses.
namespace clusweb::resources {

// An IPv4 or IPv6 interface address with its prefix length.
struct IpAddress {
  bool ipv6 = false;
  std::array<uint8_t, 16> bytes{};  // network order; the first 4 for IPv4
  int prefix_length = 0;

  size_t size() const { return ipv6 ? 16 : 4; }
  std::string host() const;       // "10.77.0.10"
  std::string to_string() const;  // "10.77.0.10/24"
};

// Parses "10.77.0.10/24" or "fd00::10/64"; without a prefix the whole
// address (/32, /128) is meant.
Result<IpAddress> parse_ip_address(std::string_view text);

// Error::code of RouteSocket::link() when the interface does not exist.
inline constexpr int kNoSuchInterface = 1;

struct LinkState {
  int index = 0;
  bool admin_up = false;     // IFF_UP
  bool carrier = false;      // IFF_LOWER_UP
  bool oper_up = false;      // operational state UP or UNKNOWN
  std::string operstate;     // "up", "lowerlayerdown", ...
  std::vector<uint8_t> mac;  // empty when the link has none
};

struct AddressState {
  uint32_t valid_lifetime = 0;  // seconds left; 0xffffffff = forever
  uint32_t preferred_lifetime = 0;
  unsigned flags = 0;  // IFA_F_*
};

// A NETLINK_ROUTE socket. It works in the network namespace of the thread
// that opened it, for its whole life. Move-only; one thread at a time.
// Requests are synchronous: the kernel answers rtnetlink at once.
class RouteSocket {
 public:
  static Result<RouteSocket> open();

  // The interface's state; an error names the interface ("no such device").
  Result<LinkState> link(const std::string& name);

  // RTM_NEWADDR with NLM_F_CREATE | NLM_F_REPLACE: adds the address, or
  // updates the lifetimes of the one present. `flags` are IFA_F_* flags.
  Status replace_address(int ifindex, const IpAddress& address, uint32_t valid_seconds,
                         uint32_t preferred_seconds, unsigned flags);

  // RTM_DELADDR. An address (or interface) that is already gone is ok.
  Status delete_address(int ifindex, const IpAddress& address);

  // The address on the interface (compared without its prefix length), or
  // nullopt when it is not there.
  Result<std::optional<AddressState>> find_address(int ifindex, const IpAddress& address);

 private:
  struct Close {
    void operator()(nl_sock* socket) const;
  };
  explicit RouteSocket(nl_sock* socket) : socket_(socket) {}

  std::unique_ptr<nl_sock, Close> socket_;
};

}  // namespace clusweb::resources
