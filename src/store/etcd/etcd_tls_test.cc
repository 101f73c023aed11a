// EtcdStore against a member that demands TLS with a client certificate and
// has user/password authentication on.

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include "store/etcd/etcd_store.h"
#include "store/etcd/testing/etcd_cluster.h"
#include "store/etcd/testing/run_until_done.h"

namespace clusweb::store {
namespace {

using namespace std::chrono_literals;
using testing::EtcdCluster;
using testing::run_until_done;

TEST(EtcdTlsTest, ClientCertificateAndPasswordAuthentication) {
  testing::EtcdClusterOptions cluster_options;
  cluster_options.tls = true;
  auto cluster = EtcdCluster::start(cluster_options);
  ASSERT_TRUE(cluster) << cluster.error().describe();
  const auto& files = *(*cluster)->tls();
  auto added = (*cluster)->etcdctl({"user", "add", "root:secret"});
  ASSERT_TRUE(added) << added.error().describe();
  auto enabled = (*cluster)->etcdctl({"auth", "enable"});
  ASSERT_TRUE(enabled) << enabled.error().describe();

  boost::asio::io_context io;
  EtcdOptions options;
  options.endpoints = (*cluster)->endpoints();
  options.tls = EtcdTls{files.ca_file, files.cert_file, files.key_file};
  options.credentials = EtcdCredentials{"root", "secret"};
  EtcdStore store(io.get_executor(), options);

  auto put = run_until_done(io, store.put(Put("/secure/k", "v")));
  ASSERT_TRUE(put) << put.error().describe();
  auto read = run_until_done(io, get(store, "/secure/k"));
  ASSERT_TRUE(read) << read.error().describe();
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ((*read)->value, "v");
  auto lease = run_until_done(io, store.grant(5s));
  ASSERT_TRUE(lease) << lease.error().describe();
  auto renewed = run_until_done(io, store.keepalive(lease->id));
  ASSERT_TRUE(renewed) << renewed.error().describe();
  WatchOptions watch_options("/secure/", true);
  watch_options.start_revision = put->revision;
  auto watch = run_until_done(io, store.watch(watch_options));
  ASSERT_TRUE(watch) << watch.error().describe();
  auto batch = run_until_done(io, (*watch)->next());
  ASSERT_TRUE(batch) << batch.error().describe();
  EXPECT_EQ(batch->events.at(0).kv.key, "/secure/k");
  // One authentication, then the token rides along.
  EXPECT_EQ(store.calls_made(), 6u);

  // Turning auth off and on drops every token: the store authenticates again.
  (*watch)->cancel();
  auto disabled = (*cluster)->etcdctl({"--user=root:secret", "auth", "disable"});
  ASSERT_TRUE(disabled) << disabled.error().describe();
  enabled = (*cluster)->etcdctl({"auth", "enable"});
  ASSERT_TRUE(enabled) << enabled.error().describe();
  auto again = run_until_done(io, get(store, "/secure/k"));
  ASSERT_TRUE(again) << again.error().describe();
  EXPECT_EQ(store.calls_made(), 6u + 3u);  // refused, authenticate, repeat

  options.credentials = EtcdCredentials{"root", "wrong"};
  EtcdStore wrong_password(io.get_executor(), options);
  auto refused = run_until_done(io, wrong_password.range(Range("/secure/k")));
  ASSERT_FALSE(refused);
  EXPECT_EQ(code_of(refused.error()), Code::kPermissionDenied) << refused.error().describe();

  options.credentials.reset();
  EtcdStore anonymous(io.get_executor(), options);
  auto denied = run_until_done(io, anonymous.range(Range("/secure/k")));
  ASSERT_FALSE(denied);
  EXPECT_EQ(code_of(denied.error()), Code::kPermissionDenied) << denied.error().describe();

  options.tls.reset();
  options.credentials = EtcdCredentials{"root", "secret"};
  EtcdStore plaintext(io.get_executor(), options);
  auto unreachable = run_until_done(io, plaintext.range(Range("/secure/k")));
  ASSERT_FALSE(unreachable);
  EXPECT_EQ(code_of(unreachable.error()), Code::kUnavailable) << unreachable.error().describe();
}

}  // namespace
}  // namespace clusweb::store
