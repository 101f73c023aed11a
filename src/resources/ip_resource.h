#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "base/result.h"
#include "resources/netlink.h"
#include "resources/resource.h"

namespace clusweb::resources {

class Announcer;

// The `ip` resource type: a floating address on an interface.
//
// Parameters: `address` ("10.77.0.10/24", "fd00::10/64"; required),
// `interface` (required), `lifetime` (seconds of kernel lifetime, the late
// backstop after fencing; default 10).
//
//   online      hold_address(), then announce: gratuitous ARP (IPv4) or an
//               unsolicited neighbour advertisement (IPv6) at once and every
//               200 ms for 2 s more, in the background; ok when the address
//               is on the interface.
//   looksalive  the address is on the interface and the link is up (admin
//   isalive     up, carrier, operational state up or unknown); while the
//               address is there its lifetime is renewed via hold_address().
//   offline     stop the announcements, delete the address (gone = ok).
//   terminate   the same as offline.
//   open/close  nothing to do.
//
// Netlink and packet sends are quick and synchronous; the announcements
// repeat on `executor`. The resource works in the network namespace of the
// thread that makes the call. Calls, the background announcements and
// destruction must run on one thread (the executor's).
class IpResource final : public Resource {
 public:
  explicit IpResource(boost::asio::any_io_executor executor);
  ~IpResource() override;
  IpResource(const IpResource&) = delete;
  IpResource& operator=(const IpResource&) = delete;

  boost::asio::awaitable<CallResult> call(cluster::Verb verb, const CallContext& context) override;
  // While online: refreshes the address's lifetime with the new deadline.
  void renewed(Clock::TimePoint deadline) override;

  // The one function through which every add or refresh of the address goes.
  // Checks the fencing deadline immediately before the netlink call and
  // refuses ("fencing deadline passed") once it has passed; otherwise adds
  // the address, or renews the one present (re-creating an address that has
  // gone), with a lifetime of min(`lifetime`, whole seconds left until the
  // deadline), at least 1 s. IPv6 addresses are added with IFA_F_NODAD.
  Status hold_address(const CallContext& context);

 private:
  struct Config {
    IpAddress address;
    std::string interface;
    uint32_t lifetime_seconds = 10;
    std::string describe() const;  // "10.77.0.10/24 on eth0"
  };
  static Result<Config> parse(const CallContext& context);

  Status hold(const Config& config, RouteSocket& route, int ifindex, const CallContext& context);
  CallResult online(const CallContext& context);
  CallResult check(const CallContext& context);
  CallResult remove(const CallContext& context);
  void stop_announcing();

  boost::asio::any_io_executor executor_;
  std::shared_ptr<Announcer> announcer_;
  std::optional<CallContext> held_;  // of the last successful online, until offline
};

}  // namespace clusweb::resources
