#include "config/web_config_json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config/manifest_loader.h"

namespace clusweb::config {
namespace {

using ::testing::HasSubstr;

// A configuration using every field with non-default values, as text from the wire.
WebConfig full_config() {
  const std::vector<ManifestText> manifests = {
      {"/etc/clusweb/web.yaml", R"(kind: WebServer
user: www-data
threads: 8
limits:
  maxHeaderBytes: 32KiB
  maxHeaders: 64
  maxBodyBytes: 20000000000
  headerTimeout: 2500ms
  idleTimeout: 1h30m
  maxConnections: 777
---
kind: ApplicationPool
name: api
command: [./bin/api, --listen, "a b"]
workingDirectory: /srv/api
environment: {MODE: production, EMPTY: "", GREETING: "héllo wörld"}
user: api
processes: 4
socket: port
autoStart: false
startupTimeLimit: 12s
shutdownTimeLimit: 1m1s
rapidFailProtection: {enabled: false, maxCrashes: 9, interval: 2m}
queueLength: 321
)"},
      {"/etc/clusweb/sites/shop.yaml", R"(
kind: Site
name: shop
physicalPath: ../www/shop
autoStart: false
bindings:
  - http://*:8080/shop.example.com
  - url: https://[2001:db8::1]:8443/*.shop.example.com
    certificate: /etc/tls/shop.crt
    key: /etc/tls/shop.key
defaultDocuments: []
directoryBrowsing: true
accessLog: /var/log/shop.log
mimeTypes: {wasm: application/wasm, md: "text/markdown; charset=utf-8"}
applications:
  - {path: /api, pool: api}
  - {path: /api/admin, pool: api}
---
kind: Site
name: static
physicalPath: /srv/static
bindings: [http://127.0.0.1:8080]
)"},
  };
  auto config = load_web_config(manifests, LoadOptions{.check_filesystem = false});
  EXPECT_TRUE(config.ok()) << config.error().describe();
  return config.ok() ? std::move(config).value() : WebConfig{};
}

void expect_same_location(const SourceLocation& a, const SourceLocation& b) {
  EXPECT_EQ(a.file, b.file);
  EXPECT_EQ(a.line, b.line);
}

// Field-by-field equality, locations included.
void expect_same(const WebConfig& a, const WebConfig& b) {
  EXPECT_EQ(a.server.user, b.server.user);
  EXPECT_EQ(a.server.threads, b.server.threads);
  EXPECT_EQ(a.server.limits.max_header_bytes, b.server.limits.max_header_bytes);
  EXPECT_EQ(a.server.limits.max_headers, b.server.limits.max_headers);
  EXPECT_EQ(a.server.limits.max_body_bytes, b.server.limits.max_body_bytes);
  EXPECT_EQ(a.server.limits.header_timeout, b.server.limits.header_timeout);
  EXPECT_EQ(a.server.limits.idle_timeout, b.server.limits.idle_timeout);
  EXPECT_EQ(a.server.limits.max_connections, b.server.limits.max_connections);
  expect_same_location(a.server.where, b.server.where);

  ASSERT_EQ(a.sites.size(), b.sites.size());
  for (const auto& [name, site] : a.sites) {
    ASSERT_TRUE(b.sites.contains(name)) << name;
    const Site& other = b.sites.at(name);
    EXPECT_TRUE(site == other) << name;
    expect_same_location(site.where, other.where);
    ASSERT_EQ(site.bindings.size(), other.bindings.size());
    for (std::size_t i = 0; i < site.bindings.size(); ++i) {
      expect_same_location(site.bindings[i].where, other.bindings[i].where);
    }
    ASSERT_EQ(site.applications.size(), other.applications.size());
    for (std::size_t i = 0; i < site.applications.size(); ++i) {
      expect_same_location(site.applications[i].where, other.applications[i].where);
    }
  }
  ASSERT_EQ(a.pools.size(), b.pools.size());
  for (const auto& [name, pool] : a.pools) {
    ASSERT_TRUE(b.pools.contains(name)) << name;
    EXPECT_TRUE(pool == b.pools.at(name)) << name;
    expect_same_location(pool.where, b.pools.at(name).where);
  }
}

TEST(WebConfigJsonTest, RoundTripKeepsEveryField) {
  const WebConfig original = full_config();
  ASSERT_EQ(original.sites.size(), 2u);
  const std::string text = to_json(original);
  auto decoded = web_config_from_json(text);
  ASSERT_TRUE(decoded.ok()) << decoded.error().describe();
  expect_same(original, *decoded);
  EXPECT_EQ(to_json(*decoded), text);
}

// The shared configuration's form of an https binding: the chain inline, the key sealed.
TEST(WebConfigJsonTest, InlineTlsMaterialRoundTripsAndIsChecked) {
  auto site = [](const std::string& binding) {
    return R"({"sites": [{"name": "s", "physicalPath": "/srv/s", "bindings": [)" + binding + "]}]}";
  };
  const std::string inline_binding =
      R"({"url": "https://*:443/s.example.com", "certificatePem": "-----BEGIN CERTIFICATE-----\nMIIB\n",
          "keySealed": "sealed:v1:k0123456789abcdef:AAAA"})";
  auto decoded = web_config_from_json(site(inline_binding));
  ASSERT_TRUE(decoded.ok()) << decoded.error().describe();
  const Binding& binding = decoded->sites.at("s").bindings.at(0);
  EXPECT_EQ(binding.certificate_pem, "-----BEGIN CERTIFICATE-----\nMIIB\n");
  EXPECT_EQ(binding.key_sealed, "sealed:v1:k0123456789abcdef:AAAA");
  EXPECT_TRUE(binding.inline_material());
  auto again = web_config_from_json(to_json(*decoded));
  ASSERT_TRUE(again.ok()) << again.error().describe();
  EXPECT_TRUE(again->sites.at("s") == decoded->sites.at("s"));
  // A plain binding does not grow the inline fields.
  EXPECT_EQ(to_json(full_config()).find("keySealed"), std::string::npos);

  for (const auto& [binding_text, problem] : std::vector<std::pair<std::string, std::string>>{
           {R"({"url": "https://*:443/s.example.com", "certificatePem": "-----BEGIN X-----",
                "keySealed": "plain text key"})",
            "keySealed\": is not a sealed value"},
           {R"({"url": "https://*:443/s.example.com", "certificatePem": "no pem",
                "keySealed": "sealed:v1:k:AAAA"})",
            "certificatePem\": is not PEM text"},
           {R"({"url": "https://*:443/s.example.com", "certificate": "/etc/c.pem",
                "certificatePem": "-----BEGIN X-----", "keySealed": "sealed:v1:k:AAAA"})",
            "either a certificate file or inline PEM"},
           {R"({"url": "http://*:80", "keySealed": "sealed:v1:k:AAAA"})",
            "apply only to https bindings"}}) {
    auto refused = web_config_from_json(site(binding_text));
    ASSERT_FALSE(refused.ok()) << binding_text;
    EXPECT_THAT(refused.error().describe(), HasSubstr(problem));
  }
}

TEST(WebConfigJsonTest, RoundTripOfDefaults) {
  const WebConfig original;
  auto decoded = web_config_from_json(to_json(original));
  ASSERT_TRUE(decoded.ok()) << decoded.error().describe();
  expect_same(original, *decoded);
}

TEST(WebConfigJsonTest, UsesCamelCaseNamesReadableDurationsAndByteCounts) {
  const auto json = nlohmann::json::parse(to_json(full_config()));
  EXPECT_EQ(json["server"]["limits"]["idleTimeout"], "1h30m");
  EXPECT_EQ(json["server"]["limits"]["headerTimeout"], "2s500ms");
  EXPECT_EQ(json["server"]["limits"]["maxBodyBytes"], 20000000000ull);
  EXPECT_EQ(json["server"]["where"]["file"], "/etc/clusweb/web.yaml");
  EXPECT_EQ(json["server"]["where"]["line"], 1);
  const auto& shop = json["sites"][0];
  EXPECT_EQ(shop["name"], "shop");
  EXPECT_EQ(shop["physicalPath"], "/etc/clusweb/www/shop");
  EXPECT_EQ(shop["bindings"][1]["url"], "https://[2001:db8::1]:8443/*.shop.example.com");
  EXPECT_EQ(shop["bindings"][1]["where"]["line"], 8);
  EXPECT_EQ(shop["applications"][0]["path"], "/api/admin");
  const auto& pool = json["pools"][0];
  EXPECT_EQ(pool["command"][0], "/etc/clusweb/bin/api");
  EXPECT_EQ(pool["socket"], "port");
  EXPECT_EQ(pool["rapidFailProtection"]["interval"], "2m");
}

TEST(WebConfigJsonTest, AbsentFieldsTakeDefaults) {
  auto decoded = web_config_from_json(R"({"pools": [{"name": "p", "command": ["w"],
      "workingDirectory": "/srv"}]})");
  ASSERT_TRUE(decoded.ok()) << decoded.error().describe();
  EXPECT_EQ(decoded->server.user, "nobody");
  const ApplicationPool& pool = decoded->pools.at("p");
  EXPECT_EQ(pool.processes, 1);
  EXPECT_EQ(pool.queue_length, 1000);
  EXPECT_EQ(pool.startup_time_limit, std::chrono::seconds(90));
}

TEST(WebConfigJsonTest, RejectsMalformedJson) {
  auto decoded = web_config_from_json("{\"server\": ");
  ASSERT_FALSE(decoded.ok());
  EXPECT_THAT(decoded.error().message, HasSubstr("invalid configuration JSON"));
  EXPECT_FALSE(web_config_from_json("[]").ok());
  EXPECT_FALSE(web_config_from_json("").ok());
}

TEST(WebConfigJsonTest, ReportsEveryMistypedOrUnknownField) {
  auto decoded = web_config_from_json(R"({
    "server": {"threads": "4", "limits": {"idleTimeout": 60}},
    "sites": [{"name": "s", "physicalPath": "/srv", "colour": "red",
               "bindings": [{"url": "http://localhost:80"}], "autoStart": "yes"}],
    "pools": [{"name": "p", "command": "w", "processes": 1e3, "socket": "tcp"}],
    "extra": 1
  })");
  ASSERT_FALSE(decoded.ok());
  const std::string& message = decoded.error().message;
  EXPECT_THAT(message, HasSubstr("field \"server.threads\": must be an integer"));
  EXPECT_THAT(message, HasSubstr("field \"server.limits.idleTimeout\": must be a duration"));
  EXPECT_THAT(message, HasSubstr("field \"sites[0].colour\": unknown field"));
  EXPECT_THAT(message, HasSubstr("field \"sites[0].bindings[0].url\": invalid binding"));
  EXPECT_THAT(message, HasSubstr("field \"sites[0].autoStart\": must be true or false"));
  EXPECT_THAT(message, HasSubstr("field \"pools[0].command\": must be an array"));
  EXPECT_THAT(message, HasSubstr("field \"pools[0].processes\": must be an integer"));
  EXPECT_THAT(message, HasSubstr("field \"pools[0].socket\": must be \"activation\" or \"port\""));
  EXPECT_THAT(message, HasSubstr("field \"extra\": unknown field"));
}

TEST(WebConfigJsonTest, RejectsOutOfRangeIntegers) {
  auto decoded = web_config_from_json(R"({"server": {"threads": 99999999999}})");
  ASSERT_FALSE(decoded.ok());
  EXPECT_THAT(decoded.error().message, HasSubstr("field \"server.threads\": is out of range"));
  auto negative = web_config_from_json(R"({"server": {"limits": {"maxBodyBytes": -1}}})");
  ASSERT_FALSE(negative.ok());
  EXPECT_THAT(negative.error().message,
              HasSubstr("field \"server.limits.maxBodyBytes\": is out of range"));
}

TEST(WebConfigJsonTest, RejectsDuplicateNames) {
  auto decoded = web_config_from_json(R"({"pools": [
      {"name": "p", "command": ["w"], "workingDirectory": "/srv"},
      {"name": "p", "command": ["w"], "workingDirectory": "/srv"}]})");
  ASSERT_FALSE(decoded.ok());
  EXPECT_THAT(decoded.error().message,
              HasSubstr("field \"pools[1].name\": duplicate pool name \"p\""));
}

TEST(WebConfigJsonTest, ValidatesTheDecodedModel) {
  WebConfig config = full_config();
  config.pools.clear();  // the shop's applications now name a missing pool
  auto decoded = web_config_from_json(to_json(config));
  ASSERT_FALSE(decoded.ok());
  EXPECT_THAT(decoded.error().message,
              HasSubstr("/etc/clusweb/sites/shop.yaml:17: Site \"shop\": field "
                        "\"applications[0].pool\": no ApplicationPool named \"api\" exists"));
}

}  // namespace
}  // namespace clusweb::config
