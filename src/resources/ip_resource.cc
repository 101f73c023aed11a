#include "resources/ip_resource.h"

#include <arpa/inet.h>
#include <linux/if_addr.h>
#include <net/ethernet.h>
#include <net/if_arp.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netpacket/packet.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <chrono>
#include <cstring>
#include <utility>
#include <vector>

#include "base/log.h"
#include "base/unique_fd.h"

namespace clusweb::resources {

namespace {

using std::chrono::milliseconds;

// After the first announcement: 10 more, 200 ms apart, so that switches and
// neighbours that missed one (a port still coming up) learn the new owner
// within the 2 s the architecture asks for.
constexpr int kAnnouncementRepeats = 10;
constexpr milliseconds kAnnouncementInterval{200};
constexpr uint32_t kDefaultLifetimeSeconds = 10;
constexpr uint32_t kMaxLifetimeSeconds = 86'400;
constexpr size_t kEthernetAddressSize = 6;

CallResult failure(std::string detail) {
  CallResult result;
  result.detail = std::move(detail);
  return result;
}

CallResult success() {
  CallResult result;
  result.ok = true;
  return result;
}

void append(std::vector<uint8_t>& packet, const void* data, size_t size) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  packet.insert(packet.end(), bytes, bytes + size);
}

// An ARP request with sender IP = target IP = the address: every host on the
// segment that has the address in its cache updates it to our MAC.
std::vector<uint8_t> gratuitous_arp(const IpAddress& address, const std::vector<uint8_t>& mac) {
  arphdr header{};
  header.ar_hrd = htons(ARPHRD_ETHER);
  header.ar_pro = htons(ETH_P_IP);
  header.ar_hln = kEthernetAddressSize;
  header.ar_pln = 4;
  header.ar_op = htons(ARPOP_REQUEST);
  const std::array<uint8_t, kEthernetAddressSize> unknown_mac{};
  std::vector<uint8_t> packet;
  append(packet, &header, sizeof header);
  append(packet, mac.data(), kEthernetAddressSize);
  append(packet, address.bytes.data(), 4);
  append(packet, unknown_mac.data(), unknown_mac.size());
  append(packet, address.bytes.data(), 4);
  return packet;
}

// An unsolicited neighbour advertisement (RFC 4861 7.2.6) with the override
// flag and our link-layer address, so neighbours replace their entries.
std::vector<uint8_t> unsolicited_advertisement(const IpAddress& address,
                                               const std::vector<uint8_t>& mac) {
  nd_neighbor_advert advert{};
  advert.nd_na_type = ND_NEIGHBOR_ADVERT;
  advert.nd_na_code = 0;
  advert.nd_na_flags_reserved = ND_NA_FLAG_OVERRIDE;
  std::memcpy(&advert.nd_na_target, address.bytes.data(), sizeof advert.nd_na_target);
  nd_opt_hdr option{};
  option.nd_opt_type = ND_OPT_TARGET_LINKADDR;
  option.nd_opt_len = 1;  // in units of 8 bytes: header + 6-byte MAC
  std::vector<uint8_t> packet;
  append(packet, &advert, sizeof advert);
  append(packet, &option, sizeof option);
  append(packet, mac.data(), kEthernetAddressSize);
  return packet;
}

Status set_int_option(int fd, int level, int name, int value, std::string_view what) {
  if (setsockopt(fd, level, name, &value, sizeof value) != 0) {
    return errno_error("setsockopt", what);
  }
  return ok_status();
}

}  // namespace

// Sends one announcement packet now, and repeats it in the background until
// the repeats are done or stop() is called. Shared with its own repeat
// coroutine, so it outlives the resource when needed; its socket was opened
// in the caller's network namespace and keeps working from any thread.
class Announcer : public std::enable_shared_from_this<Announcer> {
 public:
  static Result<std::shared_ptr<Announcer>> create(const boost::asio::any_io_executor& executor,
                                                   const IpAddress& address,
                                                   const std::string& interface,
                                                   const LinkState& link) {
    const std::string what =
        fmt::format("{} {} on {}", address.ipv6 ? "neighbour advertisement" : "gratuitous arp",
                    address.host(), interface);
    if (link.mac.size() != kEthernetAddressSize) {
      return make_error("{}: interface has no ethernet address", what);
    }
    auto announcer = std::shared_ptr<Announcer>(new Announcer(executor, what));
    const Status opened = address.ipv6 ? announcer->open_icmpv6(address, link, interface)
                                       : announcer->open_packet(address, link);
    if (!opened) return make_error("{}: {}", what, opened.error().describe());
    return announcer;
  }

  Status send_once() {
    // MSG_DONTWAIT: a full queue must not block the executor; the next
    // repeat tries again.
    const ssize_t sent =
        sendto(fd_.get(), packet_.data(), packet_.size(), MSG_DONTWAIT,
               reinterpret_cast<const sockaddr*>(&destination_), destination_size_);
    if (sent < 0) return make_error("{}: sendto: {}", what_, std::strerror(errno));
    return ok_status();
  }

  void start_repeats(int times, milliseconds interval) {
    boost::asio::co_spawn(timer_.get_executor(), repeat(shared_from_this(), times, interval),
                          boost::asio::detached);
  }

  void stop() {
    stopped_ = true;
    timer_.cancel();
  }

 private:
  Announcer(const boost::asio::any_io_executor& executor, std::string what)
      : what_(std::move(what)), timer_(executor) {}

  Status open_packet(const IpAddress& address, const LinkState& link) {
    // Protocol 0: the socket only sends, it receives nothing.
    fd_ = UniqueFd(socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd_) return errno_error("socket", "AF_PACKET");
    sockaddr_ll destination{};
    destination.sll_family = AF_PACKET;
    destination.sll_protocol = htons(ETH_P_ARP);
    destination.sll_ifindex = link.index;
    destination.sll_halen = kEthernetAddressSize;
    std::fill_n(destination.sll_addr, kEthernetAddressSize, 0xff);
    std::memcpy(&destination_, &destination, sizeof destination);
    destination_size_ = sizeof destination;
    packet_ = gratuitous_arp(address, link.mac);
    return ok_status();
  }

  Status open_icmpv6(const IpAddress& address, const LinkState& link,
                     const std::string& interface) {
    fd_ = UniqueFd(socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMPV6));
    if (!fd_) return errno_error("socket", "AF_INET6 ICMPv6");
    icmp6_filter filter{};
    ICMP6_FILTER_SETBLOCKALL(&filter);  // send only: keep the receive queue empty
    if (setsockopt(fd_.get(), IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof filter) != 0) {
      return errno_error("setsockopt", "ICMP6_FILTER");
    }
    // Receivers drop neighbour discovery with a hop limit other than 255.
    if (auto s = set_int_option(fd_.get(), IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 255, "hops"); !s) {
      return s;
    }
    if (auto s = set_int_option(fd_.get(), IPPROTO_IPV6, IPV6_MULTICAST_IF, link.index, interface);
        !s) {
      return s;
    }
    // The advertisement comes from the address itself (usable at once: it
    // was added with IFA_F_NODAD).
    sockaddr_in6 source{};
    source.sin6_family = AF_INET6;
    std::memcpy(&source.sin6_addr, address.bytes.data(), sizeof source.sin6_addr);
    source.sin6_scope_id = link.index;
    if (bind(fd_.get(), reinterpret_cast<const sockaddr*>(&source), sizeof source) != 0) {
      return errno_error("bind", address.host());
    }
    sockaddr_in6 destination{};
    destination.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "ff02::1", &destination.sin6_addr);
    destination.sin6_scope_id = link.index;
    std::memcpy(&destination_, &destination, sizeof destination);
    destination_size_ = sizeof destination;
    packet_ = unsolicited_advertisement(address, link.mac);
    return ok_status();
  }

  static boost::asio::awaitable<void> repeat(std::shared_ptr<Announcer> self, int times,
                                             milliseconds interval) {
    for (int i = 0; i < times && !self->stopped_; ++i) {
      self->timer_.expires_after(interval);
      boost::system::error_code ec;
      co_await self->timer_.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
      if (ec || self->stopped_) co_return;
      if (const Status sent = self->send_once(); !sent) {
        logger("resources")->warn("announcement failed {}", sent.error().message);
      }
    }
  }

  UniqueFd fd_;
  std::vector<uint8_t> packet_;
  sockaddr_storage destination_{};
  socklen_t destination_size_ = 0;
  std::string what_;
  boost::asio::steady_timer timer_;
  bool stopped_ = false;
};

IpResource::IpResource(boost::asio::any_io_executor executor) : executor_(std::move(executor)) {}

IpResource::~IpResource() { stop_announcing(); }

std::string IpResource::Config::describe() const {
  return fmt::format("{} on {}", address.to_string(), interface);
}

Result<IpResource::Config> IpResource::parse(const CallContext& context) {
  Config config;
  const auto address = context.parameters.find("address");
  if (address == context.parameters.end() || address->second.empty()) {
    return make_error("missing parameter address");
  }
  auto parsed = parse_ip_address(address->second);
  if (!parsed) return make_error("parameter address: {}", parsed.error().message);
  config.address = *parsed;

  const auto interface = context.parameters.find("interface");
  if (interface == context.parameters.end() || interface->second.empty()) {
    return make_error("missing parameter interface");
  }
  // IFNAMSIZ - 1 characters, no '/' or whitespace (the kernel's own rule).
  if (interface->second.size() > 15 ||
      interface->second.find_first_of("/ \t\n:") != std::string::npos) {
    return make_error("parameter interface: not an interface name: \"{}\"", interface->second);
  }
  config.interface = interface->second;

  config.lifetime_seconds = kDefaultLifetimeSeconds;
  if (const auto lifetime = context.parameters.find("lifetime");
      lifetime != context.parameters.end()) {
    const std::string& text = lifetime->second;
    const auto [end, ec] =
        std::from_chars(text.data(), text.data() + text.size(), config.lifetime_seconds);
    if (ec != std::errc() || end != text.data() + text.size() || config.lifetime_seconds < 1 ||
        config.lifetime_seconds > kMaxLifetimeSeconds) {
      return make_error("parameter lifetime: not a number of seconds from 1 to {}: \"{}\"",
                        kMaxLifetimeSeconds, text);
    }
  }
  return config;
}

Status IpResource::hold_address(const CallContext& context) {
  auto config = parse(context);
  if (!config) return config.error();
  auto route = RouteSocket::open();
  if (!route) return make_error("{}: {}", config->describe(), route.error().describe());
  auto link = route->link(config->interface);
  if (!link) return make_error("{}: {}", config->describe(), link.error().message);
  return hold(*config, *route, link->index, context);
}

Status IpResource::hold(const Config& config, RouteSocket& route, int ifindex,
                        const CallContext& context) {
  if (!context.fencing_deadline || context.clock == nullptr) {
    return make_error("{}: no fencing deadline", config.describe());
  }
  // Read both as late as possible: an agent resumed after SIGSTOP must not
  // put back an address past its deadline.
  const Clock::TimePoint deadline = context.fencing_deadline();
  const Clock::TimePoint now = context.clock->now();
  if (now >= deadline) return make_error("{}: fencing deadline passed", config.describe());
  // Whole seconds, rounded down, so the kernel drops the address no later
  // than the deadline's second (the lifetime is a backstop; the agent's own
  // fencing comes first).
  const int64_t seconds_left =
      std::chrono::duration_cast<std::chrono::seconds>(deadline - now).count();
  const auto lifetime = static_cast<uint32_t>(
      std::clamp<int64_t>(seconds_left, 1, static_cast<int64_t>(config.lifetime_seconds)));
  const unsigned flags = config.address.ipv6 ? IFA_F_NODAD : 0;
  if (Status added = route.replace_address(ifindex, config.address, lifetime, lifetime, flags);
      !added) {
    return make_error("{}: {}", config.describe(), added.error().message);
  }
  return ok_status();
}

CallResult IpResource::online(const CallContext& context) {
  stop_announcing();
  auto config = parse(context);
  if (!config) return failure(config.error().message);
  const std::string what = config->describe();
  auto route = RouteSocket::open();
  if (!route) return failure(fmt::format("{}: {}", what, route.error().describe()));
  auto link = route->link(config->interface);
  if (!link) return failure(fmt::format("{}: {}", what, link.error().message));
  if (Status held = hold(*config, *route, link->index, context); !held) {
    return failure(held.error().message);
  }
  auto present = route->find_address(link->index, config->address);
  if (!present) return failure(fmt::format("{}: {}", what, present.error().message));
  if (!present->has_value()) return failure(fmt::format("{}: address missing after add", what));

  CallResult result = success();
  auto announcer = Announcer::create(executor_, config->address, config->interface, *link);
  if (!announcer) {
    result.output.push_back(announcer.error().message);
  } else {
    // A failed first send is not fatal: the repeats follow, and the address
    // serves once neighbours ask for it.
    if (Status sent = (*announcer)->send_once(); !sent) {
      result.output.push_back(sent.error().message);
    }
    (*announcer)->start_repeats(kAnnouncementRepeats, kAnnouncementInterval);
    announcer_ = std::move(*announcer);
  }
  for (const std::string& line : result.output) {
    logger("resources")->warn("announcement failed resource={} {}", context.resource, line);
  }
  logger("resources")
      ->info("address online resource={} address={} interface={}", context.resource,
             config->address.to_string(), config->interface);
  return result;
}

// LooksAlive and IsAlive both: an address has no deeper check than being on
// an interface whose link is up.
CallResult IpResource::check(const CallContext& context) {
  auto config = parse(context);
  if (!config) return failure(config.error().message);
  const std::string what = config->describe();
  auto route = RouteSocket::open();
  if (!route) return failure(fmt::format("{}: {}", what, route.error().describe()));
  auto link = route->link(config->interface);
  if (!link) return failure(fmt::format("{}: {}", what, link.error().message));
  auto present = route->find_address(link->index, config->address);
  if (!present) return failure(fmt::format("{}: {}", what, present.error().message));

  std::string problem;
  if (!present->has_value()) {
    problem = "address missing";
  } else if (!link->admin_up) {
    problem = "link down: administratively down";
  } else if (!link->carrier) {
    problem = "link down: no carrier";
  } else if (!link->oper_up) {
    problem = fmt::format("link down: operstate {}", link->operstate);
  }
  CallResult result = problem.empty() ? success() : failure(fmt::format("{}: {}", what, problem));
  // Renew the lifetime while the address is there (about once per
  // LooksAlive); a missing address is reported, not silently put back.
  if (present->has_value()) {
    if (Status held = hold(*config, *route, link->index, context); !held) {
      result.output.push_back(held.error().message);
    }
  }
  return result;
}

CallResult IpResource::remove(const CallContext& context) {
  stop_announcing();
  auto config = parse(context);
  if (!config) return failure(config.error().message);
  const std::string what = config->describe();
  auto route = RouteSocket::open();
  if (!route) return failure(fmt::format("{}: {}", what, route.error().describe()));
  auto link = route->link(config->interface);
  if (!link) {
    // The interface is gone, and the address with it.
    if (link.error().code == kNoSuchInterface) return success();
    return failure(fmt::format("{}: {}", what, link.error().message));
  }
  if (Status deleted = route->delete_address(link->index, config->address); !deleted) {
    return failure(fmt::format("{}: {}", what, deleted.error().message));
  }
  logger("resources")
      ->info("address offline resource={} address={} interface={}", context.resource,
             config->address.to_string(), config->interface);
  return success();
}

void IpResource::renewed(Clock::TimePoint /*deadline*/) {
  // Every renewal refreshes the lifetime: the kernel's whole seconds are
  // coarse next to a TTL of a few seconds, and a refresh only at the
  // once-a-second LooksAlive could come just after the address expired.
  // hold_address() reads the new deadline itself, right before netlink.
  if (!held_) return;
  if (Status held = hold_address(*held_); !held) {
    logger("resources")->warn("refreshing address failed: {}", held.error().describe());
  }
}

void IpResource::stop_announcing() {
  if (announcer_) announcer_->stop();
  announcer_.reset();
}

boost::asio::awaitable<CallResult> IpResource::call(cluster::Verb verb,
                                                    const CallContext& context) {
  switch (verb) {
    case cluster::Verb::kOpen:
    case cluster::Verb::kClose:
      co_return success();
    case cluster::Verb::kOnline: {
      CallResult result = online(context);
      if (result.ok) held_ = context;
      co_return result;
    }
    case cluster::Verb::kLooksAlive:
    case cluster::Verb::kIsAlive:
      co_return check(context);
    case cluster::Verb::kOffline:
    case cluster::Verb::kTerminate:
      held_.reset();
      co_return remove(context);
  }
  co_return failure("unknown verb");
}

}  // namespace clusweb::resources
