#include "http/router.h"

#include <gtest/gtest.h>

namespace clusweb::http {
namespace {

config::Binding binding(std::string address, uint16_t port, std::string host = "") {
  config::Binding b;
  b.address = std::move(address);
  b.port = port;
  b.host = std::move(host);
  return b;
}

config::WebConfig sample() {
  config::WebConfig c;
  auto add = [&](std::string name, std::vector<config::Binding> bindings,
                 std::vector<config::Application> apps = {}) {
    config::Site s;
    s.name = name;
    s.bindings = std::move(bindings);
    s.applications = std::move(apps);
    c.sites.emplace(name, std::move(s));
  };
  add("a-catchall", {binding("*", 80)});
  add("b-exact", {binding("*", 80, "www.example.com")});
  add("c-wild", {binding("*", 80, "*.example.com")});
  add("d-deeper", {binding("*", 80, "*.shop.example.com")},
      {{"/api/v2", "pool2", {}}, {"/api", "pool1", {}}});
  add("e-other-port", {binding("127.0.0.1", 8080)});
  return c;
}

TEST(RouterTest, ExactBeatsWildcardBeatsCatchAll) {
  auto config = sample();
  Router router(config);
  int l80 = router.listener_index("http://*:80");
  ASSERT_GE(l80, 0);
  auto name = [&](int site) { return router.sites()[site]->name; };
  EXPECT_EQ(name(router.route(l80, "www.example.com")), "b-exact");
  EXPECT_EQ(name(router.route(l80, "WWW.Example.COM.:80")), "b-exact");
  EXPECT_EQ(name(router.route(l80, "img.example.com")), "c-wild");
  EXPECT_EQ(name(router.route(l80, "a.shop.example.com")), "d-deeper");
  EXPECT_EQ(name(router.route(l80, "example.com")), "a-catchall");
  EXPECT_EQ(name(router.route(l80, "")), "a-catchall");
}

TEST(RouterTest, ListenersAreSeparate) {
  auto config = sample();
  Router router(config);
  int l8080 = router.listener_index("http://127.0.0.1:8080");
  ASSERT_GE(l8080, 0);
  EXPECT_EQ(router.sites()[router.route(l8080, "www.example.com")]->name, "e-other-port");
  EXPECT_EQ(router.route(99, "x"), Router::kNoSite);
  EXPECT_EQ(router.listener_index("http://127.0.0.1:9"), -1);
}

TEST(RouterTest, NoCatchAllMeansNoSite) {
  config::WebConfig c;
  config::Site s;
  s.name = "only";
  s.bindings = {binding("127.0.0.1", 81, "only.example")};
  c.sites.emplace("only", s);
  Router router(c);
  EXPECT_EQ(router.route(0, "other.example"), Router::kNoSite);
  EXPECT_EQ(router.route(0, "only.example"), 0);
}

TEST(RouterTest, ApplicationLongestPrefixOnSegmentBoundary) {
  auto config = sample();
  Router router(config);
  int site = router.site_index("d-deeper");
  ASSERT_GE(site, 0);
  EXPECT_EQ(router.application(site, "/api/v2/x")->pool, "pool2");
  EXPECT_EQ(router.application(site, "/api/v2")->pool, "pool2");
  EXPECT_EQ(router.application(site, "/api/v3")->pool, "pool1");
  EXPECT_EQ(router.application(site, "/api")->pool, "pool1");
  EXPECT_EQ(router.application(site, "/apiary"), nullptr);
  EXPECT_EQ(router.application(site, "/"), nullptr);
}

TEST(NormalizeHostTest, StripsPortAndDot) {
  EXPECT_EQ(normalize_host("Example.COM:8080"), "example.com");
  EXPECT_EQ(normalize_host("[::1]:8443"), "[::1]");
  EXPECT_EQ(normalize_host("host."), "host");
  EXPECT_EQ(normalize_host(""), "");
}

}  // namespace
}  // namespace clusweb::http
