// EtcdStore passes the store conformance suite against one single-member
// etcd, started on first use and shared by every test of the process (each
// test works under its own prefix).

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "store/etcd/etcd_store.h"
#include "store/etcd/testing/etcd_cluster.h"
#include "store/testing/conformance.h"

namespace clusweb::store {
namespace {

class EtcdBackend {
 public:
  std::unique_ptr<Store> connect(boost::asio::any_io_executor executor) {
    EtcdOptions options;
    if (EtcdCluster* shared = cluster()) {
      options.endpoints = shared->endpoints();
    } else {
      ADD_FAILURE() << "no etcd for the conformance suite";
      options.endpoints = {"127.0.0.1:1"};  // nothing listens: every call fails
    }
    return std::make_unique<EtcdStore>(std::move(executor), std::move(options));
  }

  // Lease time is the server's: wait for real.
  boost::asio::awaitable<void> pass_time(std::chrono::milliseconds duration) {
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, duration);
    co_await timer.async_wait(boost::asio::use_awaitable);
  }

  // The members run with --election-timeout 500: etcd's minimum TTL is 1 s.
  std::chrono::seconds lease_ttl() { return std::chrono::seconds(1); }

  std::string prefix() {
    static int counter = 0;
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    return fmt::format("/conformance/{}/{}/", test != nullptr ? test->name() : "none", ++counter);
  }

 private:
  using EtcdCluster = testing::EtcdCluster;

  // Started on first use; killed when the process exits.
  static EtcdCluster* cluster() {
    static std::unique_ptr<EtcdCluster> shared = [] {
      auto started = EtcdCluster::start();
      if (!started) {
        ADD_FAILURE() << started.error().describe();
        return std::unique_ptr<EtcdCluster>();
      }
      return std::move(*started);
    }();
    return shared.get();
  }
};

}  // namespace

namespace testing {
INSTANTIATE_TYPED_TEST_SUITE_P(Etcd, StoreConformance, EtcdBackend);
}  // namespace testing

}  // namespace clusweb::store
