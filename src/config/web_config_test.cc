#include "config/web_config.h"

#include <gtest/gtest.h>

namespace clusweb::config {
namespace {

Binding make_binding(Scheme scheme, std::string address, uint16_t port, std::string host) {
  Binding binding;
  binding.scheme = scheme;
  binding.address = std::move(address);
  binding.port = port;
  binding.host = std::move(host);
  return binding;
}

TEST(SourceLocationTest, DescribesFileAndLine) {
  EXPECT_EQ((SourceLocation{"sites.yaml", 12}).describe(), "sites.yaml:12");
  EXPECT_EQ((SourceLocation{"sites.yaml", 0}).describe(), "sites.yaml");
}

TEST(BindingTest, UrlAndListenerKeyForIpv4) {
  const Binding binding = make_binding(Scheme::kHttps, "127.0.0.1", 8443, "www.example.com");
  EXPECT_EQ(binding.url(), "https://127.0.0.1:8443/www.example.com");
  EXPECT_EQ(binding.listener_key(), "https://127.0.0.1:8443");
}

TEST(BindingTest, Ipv6InBrackets) {
  const Binding binding = make_binding(Scheme::kHttp, "::1", 8080, "");
  EXPECT_EQ(binding.url(), "http://[::1]:8080");
  EXPECT_EQ(binding.listener_key(), "http://[::1]:8080");
}

TEST(BindingTest, WildcardAddressAndHost) {
  const Binding binding = make_binding(Scheme::kHttp, "*", 80, "*.example.com");
  EXPECT_EQ(binding.url(), "http://*:80/*.example.com");
  EXPECT_EQ(binding.listener_key(), "http://*:80");
}

Site make_site() {
  Site site;
  site.name = "shop";
  site.root = "/srv/shop";
  Binding binding = make_binding(Scheme::kHttps, "*", 443, "shop.example.com");
  binding.certificate = "/etc/tls/shop.crt";
  binding.key = "/etc/tls/shop.key";
  binding.where = {"sites.yaml", 5};
  site.bindings.push_back(binding);
  site.applications.push_back(Application{"/api", "shop-api", {"sites.yaml", 9}});
  site.mime_types["wasm"] = "application/wasm";
  site.access_log = "/var/log/shop.log";
  site.where = {"sites.yaml", 1};
  return site;
}

TEST(SiteTest, EqualityIgnoresLocations) {
  const Site a = make_site();
  Site b = make_site();
  b.where = {"other.yaml", 40};
  b.bindings[0].where = {"other.yaml", 44};
  b.applications[0].where = {"other.yaml", 48};
  EXPECT_TRUE(a == b);
}

TEST(SiteTest, EqualityComparesEveryOtherField) {
  const Site base = make_site();
  const std::vector<void (*)(Site&)> changes = {
      [](Site& s) { s.name = "other"; },
      [](Site& s) { s.root = "/srv/other"; },
      [](Site& s) { s.bindings[0].port = 8443; },
      [](Site& s) { s.bindings[0].scheme = Scheme::kHttp; },
      [](Site& s) { s.bindings[0].address = "127.0.0.1"; },
      [](Site& s) { s.bindings[0].host = ""; },
      [](Site& s) { s.bindings[0].certificate = "/other.crt"; },
      [](Site& s) { s.bindings[0].key = "/other.key"; },
      [](Site& s) { s.bindings.push_back(s.bindings[0]); },
      [](Site& s) { s.applications[0].path = "/v2"; },
      [](Site& s) { s.applications[0].pool = "other"; },
      [](Site& s) { s.applications.clear(); },
      [](Site& s) { s.auto_start = false; },
      [](Site& s) { s.default_documents = {"home.html"}; },
      [](Site& s) { s.directory_browsing = true; },
      [](Site& s) { s.access_log = ""; },
      [](Site& s) { s.mime_types["md"] = "text/markdown"; },
  };
  for (std::size_t i = 0; i < changes.size(); ++i) {
    Site changed = make_site();
    changes[i](changed);
    EXPECT_FALSE(base == changed) << "change " << i;
  }
}

ApplicationPool make_pool() {
  ApplicationPool pool;
  pool.name = "shop-api";
  pool.command = {"/srv/shop/worker", "--flag"};
  pool.working_directory = "/srv/shop";
  pool.environment["MODE"] = "production";
  pool.where = {"pools.yaml", 3};
  return pool;
}

TEST(ApplicationPoolTest, EqualityIgnoresLocation) {
  ApplicationPool b = make_pool();
  b.where = {"elsewhere.yaml", 99};
  EXPECT_TRUE(make_pool() == b);
}

TEST(ApplicationPoolTest, EqualityComparesEveryOtherField) {
  const ApplicationPool base = make_pool();
  const std::vector<void (*)(ApplicationPool&)> changes = {
      [](ApplicationPool& p) { p.name = "other"; },
      [](ApplicationPool& p) { p.command.push_back("-v"); },
      [](ApplicationPool& p) { p.working_directory = "/tmp"; },
      [](ApplicationPool& p) { p.environment["MODE"] = "test"; },
      [](ApplicationPool& p) { p.user = "www-data"; },
      [](ApplicationPool& p) { p.processes = 2; },
      [](ApplicationPool& p) { p.socket = SocketMode::kPort; },
      [](ApplicationPool& p) { p.auto_start = false; },
      [](ApplicationPool& p) { p.startup_time_limit = std::chrono::seconds(5); },
      [](ApplicationPool& p) { p.shutdown_time_limit = std::chrono::seconds(5); },
      [](ApplicationPool& p) { p.rapid_fail_protection = false; },
      [](ApplicationPool& p) { p.rapid_fail_max_crashes = 9; },
      [](ApplicationPool& p) { p.rapid_fail_interval = std::chrono::minutes(1); },
      [](ApplicationPool& p) { p.queue_length = 10; },
  };
  for (std::size_t i = 0; i < changes.size(); ++i) {
    ApplicationPool changed = make_pool();
    changes[i](changed);
    EXPECT_FALSE(base == changed) << "change " << i;
  }
}

}  // namespace
}  // namespace clusweb::config
