// Measures the coordination store as the cluster agent uses it, per backend:
// put latency, put-to-watch-event latency, lease keepalive round trip,
// compare-and-swap transactions per second, and gRPC calls per operation.
// Backends: MemoryStore (in memory, and persisted with fsync), EtcdStore on a
// 1-member and a 3-member etcd started here on 127.0.0.1. The peer is gRPC's
// own synchronous C++ stub sending the same Put to the same etcd: the ratio
// of put latencies shows what EtcdStore's asynchronous layer costs.
//
//   store_bench [--ops N] [--seconds S] [--backends memory,memory-fsync,etcd-1,etcd-3]

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "base/clock.h"
#include "etcdpb/rpc.grpc.pb.h"
#include "store/etcd/etcd_store.h"
#include "store/etcd/testing/etcd_cluster.h"
#include "store/etcd/testing/run_until_done.h"
#include "store/memory_store.h"

namespace {

namespace asio = boost::asio;
namespace store = clusweb::store;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct Settings {
  int ops = 2000;
  int seconds = 3;
  std::vector<std::string> backends{"memory", "memory-fsync", "etcd-1", "etcd-3"};
};

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "store_bench: %s\n", message.c_str());
  std::exit(1);
}

template <class T>
T must(clusweb::Result<T> result, const char* what) {
  if (!result) die(std::string(what) + ": " + result.error().describe());
  return std::move(result).value();
}
void must(const clusweb::Status& status, const char* what) {
  if (!status) die(std::string(what) + ": " + status.error().describe());
}

struct Latencies {
  std::vector<double> ms;
  void add(Clock::duration d) {
    ms.push_back(std::chrono::duration<double, std::milli>(d).count());
  }
  double percentile(double p) {
    if (ms.empty()) return 0;
    std::sort(ms.begin(), ms.end());
    auto index = static_cast<std::size_t>(p / 100.0 * static_cast<double>(ms.size() - 1) + 0.5);
    return ms[std::min(index, ms.size() - 1)];
  }
};

struct Report {
  std::string backend;
  double put_p50 = 0, put_p99 = 0;
  double watch_p50 = 0, watch_p99 = 0;
  double keepalive_p50 = 0, keepalive_p99 = 0;
  double txn_per_second = 0;
  // gRPC calls per operation (etcd only).
  double calls_per_put = -1, calls_per_keepalive = -1, calls_per_txn = -1;
};

// The measurements, on one backend; `calls` reads its gRPC call counter.
asio::awaitable<void> measure(store::Store& client, std::function<store::Store&()> another,
                              const Settings& settings, Report& report,
                              std::function<std::uint64_t()> calls) {
  const std::string prefix = "/bench/" + report.backend + "/";
  auto executor = co_await asio::this_coro::executor;

  std::fprintf(stderr, "  %s: %d puts\n", report.backend.c_str(), settings.ops);
  Latencies put;
  std::uint64_t calls_before = calls();
  for (int i = 0; i < settings.ops; ++i) {
    auto start = Clock::now();
    must(co_await client.put(store::Put(prefix + "put/" + std::to_string(i % 100), "value")),
         "put");
    put.add(Clock::now() - start);
  }
  if (calls() != 0) {
    report.calls_per_put = static_cast<double>(calls() - calls_before) / settings.ops;
  }
  report.put_p50 = put.percentile(50);
  report.put_p99 = put.percentile(99);

  std::fprintf(stderr, "  %s: %d puts seen through a watch\n", report.backend.c_str(),
               settings.ops / 2);
  Latencies watched;
  {
    auto watch =
        must(co_await client.watch(store::WatchOptions(prefix + "watched/", true)), "watch");
    for (int i = 0; i < settings.ops / 2; ++i) {
      std::string key = prefix + "watched/" + std::to_string(i);
      auto start = Clock::now();
      must(co_await client.put(store::Put(key, "v")), "put");
      bool seen = false;
      while (!seen) {
        auto batch = must(co_await watch->next(), "watch next");
        for (const auto& event : batch.events) seen = seen || event.kv.key == key;
      }
      watched.add(Clock::now() - start);
    }
    watch->cancel();
  }
  report.watch_p50 = watched.percentile(50);
  report.watch_p99 = watched.percentile(99);

  std::fprintf(stderr, "  %s: %d keepalives\n", report.backend.c_str(), settings.ops / 2);
  Latencies keepalive;
  auto lease = must(co_await client.grant(10s), "grant");
  calls_before = calls();
  for (int i = 0; i < settings.ops / 2; ++i) {
    auto start = Clock::now();
    must(co_await client.keepalive(lease.id), "keepalive");
    keepalive.add(Clock::now() - start);
  }
  if (calls() != 0) {
    report.calls_per_keepalive = static_cast<double>(calls() - calls_before) / (settings.ops / 2);
  }
  must(co_await client.revoke(lease.id), "revoke");
  report.keepalive_p50 = keepalive.percentile(50);
  report.keepalive_p99 = keepalive.percentile(99);

  // Compare-and-swap from 16 clients at once, each on its own key.
  constexpr int kClients = 16;
  std::fprintf(stderr, "  %s: compare-and-swap from %d clients for %d s\n", report.backend.c_str(),
               kClients, settings.seconds);
  std::uint64_t committed = 0;
  std::uint64_t txns = 0;
  int running = kClients;
  asio::steady_timer all_done(executor, asio::steady_timer::time_point::max());
  const auto end = Clock::now() + std::chrono::seconds(settings.seconds);
  calls_before = calls();
  for (int c = 0; c < kClients; ++c) {
    store::Store& contender = another();
    asio::co_spawn(
        executor,
        [](store::Store& s, std::string key, Clock::time_point until, std::uint64_t& ok,
           std::uint64_t& total, int& left, asio::steady_timer& done) -> asio::awaitable<void> {
          store::Revision seen = 0;
          while (Clock::now() < until) {
            store::Txn txn({store::Compare::mod_revision_is(key, store::Compare::Op::kEqual, seen)},
                           {store::Put(key, "x")}, {store::Range(key)});
            auto result = must(co_await s.txn(std::move(txn)), "txn");
            ++total;
            if (result.succeeded) {
              ++ok;
              seen = result.revision;
            } else {
              const auto& read = std::get<store::RangeResult>(result.results.front());
              seen = read.kvs.empty() ? 0 : read.kvs.front().mod_revision;
            }
          }
          if (--left == 0) done.cancel();
        }(contender, prefix + "cas/" + std::to_string(c), end, committed, txns, running, all_done),
        asio::detached);
  }
  co_await all_done.async_wait(asio::as_tuple(asio::use_awaitable));
  if (calls() != 0 && txns > 0) {
    report.calls_per_txn = static_cast<double>(calls() - calls_before) / static_cast<double>(txns);
  }
  report.txn_per_second = static_cast<double>(committed) / settings.seconds;
}

// The peer: gRPC's synchronous stub, one Put at a time, as etcd's own tools do.
Latencies grpc_stub_puts(const std::string& endpoint, int ops) {
  auto channel = grpc::CreateChannel(endpoint, grpc::InsecureChannelCredentials());
  auto kv = etcdserverpb::KV::NewStub(channel);
  Latencies put;
  for (int i = 0; i < ops; ++i) {
    etcdserverpb::PutRequest request;
    request.set_key("/bench/peer/put/" + std::to_string(i % 100));
    request.set_value("value");
    etcdserverpb::PutResponse response;
    grpc::ClientContext context;
    context.AddMetadata("hasleader", "true");
    context.set_deadline(std::chrono::system_clock::now() + 2s);
    auto start = Clock::now();
    auto status = kv->Put(&context, request, &response);
    if (!status.ok()) die("grpc stub put: " + status.error_message());
    put.add(Clock::now() - start);
  }
  return put;
}

void print(const Report& r) {
  std::printf("%-13s put p50 %6.3f ms  p99 %6.3f ms\n", r.backend.c_str(), r.put_p50, r.put_p99);
  std::printf("%-13s put-to-watch-event p50 %6.3f ms  p99 %6.3f ms\n", r.backend.c_str(),
              r.watch_p50, r.watch_p99);
  std::printf("%-13s keepalive round trip p50 %6.3f ms  p99 %6.3f ms\n", r.backend.c_str(),
              r.keepalive_p50, r.keepalive_p99);
  std::printf("%-13s compare-and-swap txn/s %8.0f (16 clients)\n", r.backend.c_str(),
              r.txn_per_second);
  if (r.calls_per_put >= 0) {
    std::printf("%-13s grpc calls per put %.2f, per keepalive %.2f, per txn %.2f\n",
                r.backend.c_str(), r.calls_per_put, r.calls_per_keepalive, r.calls_per_txn);
  }
  std::fflush(stdout);
}

Settings parse(int argc, char** argv) {
  Settings settings;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) die(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--ops") {
      settings.ops = std::stoi(value());
      if (settings.ops < 10) die("--ops must be at least 10");
    } else if (arg == "--seconds") {
      settings.seconds = std::stoi(value());
      if (settings.seconds < 1) die("--seconds must be at least 1");
    } else if (arg == "--backends") {
      settings.backends.clear();
      std::stringstream list(value());
      for (std::string name; std::getline(list, name, ',');) {
        if (name != "memory" && name != "memory-fsync" && name != "etcd-1" && name != "etcd-3") {
          die("unknown backend '" + name + "' (memory, memory-fsync, etcd-1, etcd-3)");
        }
        settings.backends.push_back(name);
      }
    } else {
      die("unknown argument '" + arg + "' (--ops N, --seconds S, --backends LIST)");
    }
  }
  return settings;
}

}  // namespace

int main(int argc, char** argv) {
  const Settings settings = parse(argc, argv);
  clusweb::SystemClock clock;
  std::printf("store_bench: %d sequential operations per latency, %d s of transactions\n",
              settings.ops, settings.seconds);
  for (const auto& backend : settings.backends) {
    Report report;
    report.backend = backend;
    asio::io_context io;
    std::fprintf(stderr, "%s\n", backend.c_str());
    if (backend == "memory" || backend == "memory-fsync") {
      store::MemoryStoreOptions options;
      std::filesystem::path dir;
      if (backend == "memory-fsync") {
        char pattern[] = "/var/tmp/store-bench.XXXXXX";
        if (::mkdtemp(pattern) == nullptr) die("mkdtemp failed");
        dir = pattern;
        options.state_file = dir / "store.state";
      }
      auto memory = must(store::MemoryStore::open(io.get_executor(), clock, options), "open");
      std::vector<std::unique_ptr<store::Store>> clients;
      clusweb::store::testing::run_until_done(
          io, measure(
                  *memory,
                  [&]() -> store::Store& {
                    clients.push_back(memory->client());
                    return *clients.back();
                  },
                  settings, report, [] { return std::uint64_t{0}; }));
      clients.clear();
      memory.reset();
      if (!dir.empty()) std::filesystem::remove_all(dir);
      print(report);
      continue;
    }
    clusweb::store::testing::EtcdClusterOptions cluster_options;
    cluster_options.members = backend == "etcd-3" ? 3 : 1;
    std::fprintf(stderr, "  starting %zu etcd member(s)\n", cluster_options.members);
    auto cluster = must(clusweb::store::testing::EtcdCluster::start(cluster_options), "etcd");
    store::EtcdOptions options;
    // The leader first, as an agent that found it would.
    auto leader = must(cluster->leader(), "etcd leader");
    options.endpoints.push_back(cluster->endpoint(leader));
    for (std::size_t m = 0; m < cluster->size(); ++m) {
      if (m != leader) options.endpoints.push_back(cluster->endpoint(m));
    }
    {
      auto etcd = must(store::EtcdStore::create(io.get_executor(), options), "etcd store");
      std::vector<std::unique_ptr<store::EtcdStore>> clients;
      store::EtcdStore* main_client = etcd.get();
      clusweb::store::testing::run_until_done(
          io, measure(
                  *etcd,
                  [&]() -> store::Store& {
                    clients.push_back(
                        must(store::EtcdStore::create(io.get_executor(), options), "etcd store"));
                    return *clients.back();
                  },
                  settings, report,
                  [&] {
                    std::uint64_t total = main_client->calls_made();
                    for (const auto& c : clients) total += c->calls_made();
                    return total;
                  }));
    }
    print(report);
    std::fprintf(stderr, "  peer: %d puts through gRPC's synchronous stub\n", settings.ops);
    auto peer = grpc_stub_puts(options.endpoints.front(), settings.ops);
    const double peer_p50 = peer.percentile(50);
    const double peer_p99 = peer.percentile(99);
    std::printf("%-13s peer grpc-sync-stub put p50 %6.3f ms  p99 %6.3f ms\n", backend.c_str(),
                peer_p50, peer_p99);
    std::printf("ratio EtcdStore/grpc-sync-stub put-latency %s %.2f (p99 %.2f; lower is better)\n",
                backend.c_str(), report.put_p50 / peer_p50, report.put_p99 / peer_p99);
    std::fflush(stdout);
  }
  return 0;
}
