#include "resources/ip_resource.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/icmp6.h>
#include <netpacket/packet.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <regex>
#include <string>

#include "base/testing/manual_clock.h"
#include "base/unique_fd.h"

namespace clusweb::resources {
namespace {

using cluster::Verb;
using namespace std::chrono_literals;

int run_command(const std::string& command) { return std::system(command.c_str()); }

std::string command_output(const std::string& command) {
  std::string output;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return output;
  std::array<char, 512> buffer{};
  while (fgets(buffer.data(), buffer.size(), pipe) != nullptr) output += buffer.data();
  pclose(pipe);
  return output;
}

// Each test gets its own network namespace with a veth pair va <-> vb, both
// up, and runs the resource inside it: the test thread enters the namespace
// with setns() and leaves it in TearDown, which also deletes the namespace.
class IpResourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root for network namespaces";
    if (run_command("ip netns list >/dev/null 2>&1") != 0) GTEST_SKIP() << "no `ip netns`";
    static int counter = 0;
    namespace_ = "cwip-" + std::to_string(getpid()) + "-" + std::to_string(++counter);
    ASSERT_EQ(run_command("ip netns add " + namespace_), 0);
    created_ = true;
    ASSERT_EQ(ip("link add va type veth peer name vb"), 0);
    ASSERT_EQ(ip("link set dev va up"), 0);
    ASSERT_EQ(ip("link set dev vb up"), 0);

    original_ = UniqueFd(open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(original_.valid());
    const UniqueFd target(open(("/run/netns/" + namespace_).c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(target.valid());
    ASSERT_EQ(setns(target.get(), CLONE_NEWNET), 0) << std::strerror(errno);
    entered_ = true;

    resource_ = std::make_unique<IpResource>(io_.get_executor());
    context_.resource = "vip";
    context_.group = "web";
    context_.node = "n1";
    context_.clock = &clock_;
    context_.fencing_deadline = [this] { return deadline_; };
    context_.parameters = {{"address", "10.77.0.10/24"}, {"interface", "va"}, {"lifetime", "10"}};
  }

  void TearDown() override {
    resource_.reset();
    io_.restart();
    io_.poll();
    if (entered_) {
      EXPECT_EQ(setns(original_.get(), CLONE_NEWNET), 0) << std::strerror(errno);
    }
    if (created_) {
      EXPECT_EQ(run_command("ip netns del " + namespace_), 0);
    }
  }

  int ip(const std::string& arguments) {
    return run_command("ip -n " + namespace_ + " " + arguments);
  }

  std::string addresses() { return command_output("ip -n " + namespace_ + " -o addr show dev va"); }

  // The `ip -o addr` line of `address`, or "" when it is not on va.
  std::string address_line(const std::string& address) {
    const std::string all = addresses();
    size_t start = 0;
    while (start < all.size()) {
      size_t end = all.find('\n', start);
      if (end == std::string::npos) end = all.size();
      std::string line = all.substr(start, end - start);
      if (line.find(" " + address + " ") != std::string::npos) return line;
      start = end + 1;
    }
    return "";
  }

  static std::optional<int> valid_lifetime(const std::string& line) {
    std::smatch match;
    if (!std::regex_search(line, match, std::regex("valid_lft ([0-9]+)sec"))) return std::nullopt;
    return std::stoi(match[1]);
  }

  CallResult call(Verb verb) {
    std::optional<CallResult> result;
    boost::asio::co_spawn(
        io_, resource_->call(verb, context_),
        [&result](const std::exception_ptr&, CallResult done) { result = std::move(done); });
    io_.restart();
    while (!result && io_.run_one() > 0) {
    }
    return result.value_or(CallResult{false, false, "call did not finish", {}});
  }

  // A socket on vb that sees what va sends.
  static UniqueFd capture(uint16_t protocol) {
    UniqueFd fd(socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(protocol)));
    if (!fd) return fd;
    sockaddr_ll address{};
    address.sll_family = AF_PACKET;
    address.sll_protocol = htons(protocol);
    address.sll_ifindex = static_cast<int>(if_nametoindex("vb"));
    if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
      return UniqueFd();
    }
    return fd;
  }

  // Counts the captured packets for which `match` is true, without waiting.
  template <class Match>
  static int count_packets(int fd, Match match) {
    int count = 0;
    std::array<uint8_t, 2048> packet{};
    for (;;) {
      const ssize_t size = recv(fd, packet.data(), packet.size(), MSG_DONTWAIT);
      if (size < 0) break;
      if (match(packet.data(), static_cast<size_t>(size))) ++count;
    }
    return count;
  }

  static bool is_gratuitous_arp_for(const uint8_t* data, size_t size, const char* address) {
    std::array<uint8_t, 4> ip{};
    inet_pton(AF_INET, address, ip.data());
    constexpr size_t kSenderIp = 8 + 6, kTargetIp = 8 + 6 + 4 + 6;
    if (size < kTargetIp + 4) return false;
    arphdr header{};
    std::memcpy(&header, data, sizeof header);
    return ntohs(header.ar_op) == ARPOP_REQUEST &&
           std::memcmp(data + kSenderIp, ip.data(), 4) == 0 &&
           std::memcmp(data + kTargetIp, ip.data(), 4) == 0;
  }

  static bool is_advertisement_for(const uint8_t* data, size_t size, const char* address) {
    std::array<uint8_t, 16> ip{};
    inet_pton(AF_INET6, address, ip.data());
    constexpr size_t kIpv6Header = 40;
    if (size < kIpv6Header + sizeof(nd_neighbor_advert) || data[6] != IPPROTO_ICMPV6 ||
        data[7] != 255) {
      return false;
    }
    nd_neighbor_advert advert{};
    std::memcpy(&advert, data + kIpv6Header, sizeof advert);
    return advert.nd_na_type == ND_NEIGHBOR_ADVERT &&
           (advert.nd_na_flags_reserved & ND_NA_FLAG_OVERRIDE) != 0 &&
           std::memcmp(&advert.nd_na_target, ip.data(), ip.size()) == 0;
  }

  std::string namespace_;
  bool created_ = false;
  bool entered_ = false;
  UniqueFd original_;
  clusweb::testing::ManualClock clock_;
  Clock::TimePoint deadline_ = clock_.now() + 30s;
  boost::asio::io_context io_;
  std::unique_ptr<IpResource> resource_;
  CallContext context_;
};

TEST_F(IpResourceTest, OnlineAddsAddressWithFiniteLifetime) {
  const CallResult online = call(Verb::kOnline);
  ASSERT_TRUE(online.ok) << online.detail;
  const std::string line = address_line("10.77.0.10/24");
  ASSERT_FALSE(line.empty()) << addresses();
  const auto lifetime = valid_lifetime(line);
  ASSERT_TRUE(lifetime.has_value()) << line;
  EXPECT_LE(*lifetime, 10);
  EXPECT_GE(*lifetime, 9);

  const CallResult looks = call(Verb::kLooksAlive);
  EXPECT_TRUE(looks.ok) << looks.detail;
  const CallResult is = call(Verb::kIsAlive);
  EXPECT_TRUE(is.ok) << is.detail;
}

TEST_F(IpResourceTest, LifetimeEndsByTheDeadline) {
  deadline_ = clock_.now() + 3700ms;
  ASSERT_TRUE(call(Verb::kOnline).ok);
  const auto lifetime = valid_lifetime(address_line("10.77.0.10/24"));
  ASSERT_TRUE(lifetime.has_value()) << addresses();
  EXPECT_LE(*lifetime, 3);
  EXPECT_GE(*lifetime, 2);
}

TEST_F(IpResourceTest, Ipv6AddressIsAddedWithoutDad) {
  context_.parameters["address"] = "fd00::10/64";
  const CallResult online = call(Verb::kOnline);
  ASSERT_TRUE(online.ok) << online.detail;
  const std::string line = address_line("fd00::10/64");
  ASSERT_FALSE(line.empty()) << addresses();
  EXPECT_NE(line.find("nodad"), std::string::npos) << line;
  EXPECT_EQ(line.find("tentative"), std::string::npos) << line;
  const auto lifetime = valid_lifetime(line);
  ASSERT_TRUE(lifetime.has_value()) << line;
  EXPECT_LE(*lifetime, 10);
  const CallResult looks = call(Verb::kLooksAlive);
  EXPECT_TRUE(looks.ok) << looks.detail;
}

TEST_F(IpResourceTest, LooksAliveFailsWhenTheAddressIsDeleted) {
  ASSERT_TRUE(call(Verb::kOnline).ok);
  ASSERT_EQ(ip("addr del 10.77.0.10/24 dev va"), 0);
  const CallResult looks = call(Verb::kLooksAlive);
  EXPECT_FALSE(looks.ok);
  EXPECT_NE(looks.detail.find("address missing"), std::string::npos) << looks.detail;
  EXPECT_NE(looks.detail.find("10.77.0.10/24 on va"), std::string::npos) << looks.detail;
  const CallResult is = call(Verb::kIsAlive);
  EXPECT_FALSE(is.ok);
  // A failed check reports the loss; it does not quietly put the address back.
  EXPECT_EQ(address_line("10.77.0.10/24"), "");
}

TEST_F(IpResourceTest, LooksAliveFailsWhenTheCarrierIsLost) {
  ASSERT_TRUE(call(Verb::kOnline).ok);
  ASSERT_EQ(ip("link set dev vb down"), 0);
  const CallResult looks = call(Verb::kLooksAlive);
  EXPECT_FALSE(looks.ok);
  EXPECT_NE(looks.detail.find("link down: no carrier"), std::string::npos) << looks.detail;
  EXPECT_NE(looks.detail.find("on va"), std::string::npos) << looks.detail;
}

TEST_F(IpResourceTest, LooksAliveFailsWhenTheLinkIsAdministrativelyDown) {
  ASSERT_TRUE(call(Verb::kOnline).ok);
  ASSERT_EQ(ip("link set dev va down"), 0);
  const CallResult looks = call(Verb::kLooksAlive);
  EXPECT_FALSE(looks.ok);
  EXPECT_NE(looks.detail.find("link down"), std::string::npos) << looks.detail;
}

TEST_F(IpResourceTest, RefreshRecreatesADeletedAddress) {
  ASSERT_TRUE(call(Verb::kOnline).ok);
  ASSERT_EQ(ip("addr del 10.77.0.10/24 dev va"), 0);
  ASSERT_EQ(address_line("10.77.0.10/24"), "");
  const Status held = resource_->hold_address(context_);
  ASSERT_TRUE(held.ok()) << held.error().describe();
  EXPECT_NE(address_line("10.77.0.10/24"), "") << addresses();
}

TEST_F(IpResourceTest, LooksAliveRenewsTheLifetime) {
  deadline_ = clock_.now() + 2500ms;
  ASSERT_TRUE(call(Verb::kOnline).ok);
  EXPECT_LE(valid_lifetime(address_line("10.77.0.10/24")).value_or(99), 2);
  deadline_ = clock_.now() + 30s;  // the agent renewed its lease
  ASSERT_TRUE(call(Verb::kLooksAlive).ok);
  EXPECT_GE(valid_lifetime(address_line("10.77.0.10/24")).value_or(0), 9) << addresses();
}

TEST_F(IpResourceTest, HoldIsRefusedAfterTheDeadline) {
  deadline_ = clock_.now() - 1s;
  const CallResult online = call(Verb::kOnline);
  EXPECT_FALSE(online.ok);
  EXPECT_NE(online.detail.find("fencing deadline passed"), std::string::npos) << online.detail;
  EXPECT_EQ(address_line("10.77.0.10/24"), "");
  const Status held = resource_->hold_address(context_);
  ASSERT_FALSE(held.ok());
  EXPECT_NE(held.error().message.find("fencing deadline passed"), std::string::npos);
  EXPECT_EQ(address_line("10.77.0.10/24"), "");
}

TEST_F(IpResourceTest, RefreshIsRefusedOnceTheDeadlineHasPassed) {
  ASSERT_TRUE(call(Verb::kOnline).ok);
  ASSERT_EQ(ip("addr del 10.77.0.10/24 dev va"), 0);
  clock_.advance(31s);  // past the deadline: an agent resumed after SIGSTOP
  const Status held = resource_->hold_address(context_);
  ASSERT_FALSE(held.ok());
  EXPECT_NE(held.error().message.find("fencing deadline passed"), std::string::npos);
  EXPECT_EQ(address_line("10.77.0.10/24"), "");
}

TEST_F(IpResourceTest, OfflineRemovesTheAddressAndIsIdempotent) {
  ASSERT_TRUE(call(Verb::kOnline).ok);
  const CallResult offline = call(Verb::kOffline);
  EXPECT_TRUE(offline.ok) << offline.detail;
  EXPECT_EQ(address_line("10.77.0.10/24"), "");
  const CallResult again = call(Verb::kOffline);
  EXPECT_TRUE(again.ok) << again.detail;
  const CallResult terminate = call(Verb::kTerminate);
  EXPECT_TRUE(terminate.ok) << terminate.detail;
  EXPECT_FALSE(call(Verb::kLooksAlive).ok);
}

TEST_F(IpResourceTest, MissingParametersAreReported) {
  context_.parameters.erase("address");
  const CallResult online = call(Verb::kOnline);
  EXPECT_FALSE(online.ok);
  EXPECT_NE(online.detail.find("address"), std::string::npos) << online.detail;
  context_.parameters["address"] = "10.77.0.10/40";
  EXPECT_FALSE(call(Verb::kOnline).ok);
  context_.parameters["address"] = "10.77.0.10/24";
  context_.parameters["interface"] = "nosuch0";
  const CallResult no_interface = call(Verb::kOnline);
  EXPECT_FALSE(no_interface.ok);
  EXPECT_NE(no_interface.detail.find("no such interface"), std::string::npos)
      << no_interface.detail;
  EXPECT_TRUE(call(Verb::kTerminate).ok);  // the interface's absence is the address's absence
  EXPECT_TRUE(call(Verb::kOpen).ok);
  EXPECT_TRUE(call(Verb::kClose).ok);
}

TEST_F(IpResourceTest, GratuitousArpIsRepeated) {
  const UniqueFd arp = capture(ETH_P_ARP);
  ASSERT_TRUE(arp.valid()) << std::strerror(errno);
  ASSERT_TRUE(call(Verb::kOnline).ok);
  io_.restart();
  io_.run_for(650ms);  // the first at once, then every 200 ms
  const int count = count_packets(arp.get(), [](const uint8_t* data, size_t size) {
    return is_gratuitous_arp_for(data, size, "10.77.0.10");
  });
  EXPECT_GE(count, 3);
}

TEST_F(IpResourceTest, NeighbourAdvertisementIsRepeated) {
  context_.parameters["address"] = "fd00::10/64";
  const UniqueFd ipv6 = capture(ETH_P_IPV6);
  ASSERT_TRUE(ipv6.valid()) << std::strerror(errno);
  const CallResult online = call(Verb::kOnline);
  ASSERT_TRUE(online.ok) << online.detail;
  EXPECT_TRUE(online.output.empty()) << online.output.front();
  io_.restart();
  io_.run_for(650ms);
  const int count = count_packets(ipv6.get(), [](const uint8_t* data, size_t size) {
    return is_advertisement_for(data, size, "fd00::10");
  });
  EXPECT_GE(count, 3);
}

TEST_F(IpResourceTest, OfflineStopsTheAnnouncements) {
  const UniqueFd arp = capture(ETH_P_ARP);
  ASSERT_TRUE(arp.valid()) << std::strerror(errno);
  ASSERT_TRUE(call(Verb::kOnline).ok);
  ASSERT_TRUE(call(Verb::kOffline).ok);
  auto is_ours = [](const uint8_t* data, size_t size) {
    return is_gratuitous_arp_for(data, size, "10.77.0.10");
  };
  EXPECT_EQ(count_packets(arp.get(), is_ours), 1);  // the one sent at once
  io_.restart();
  io_.run_for(450ms);
  EXPECT_EQ(count_packets(arp.get(), is_ours), 0);
}

}  // namespace
}  // namespace clusweb::resources
