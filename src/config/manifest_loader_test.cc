#include "config/manifest_loader.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "config/testing/manifest_lines.h"

namespace clusweb::config {
namespace {

namespace fs = std::filesystem;
using clusweb::config::testing::line_of;
using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pair;
using ::testing::StartsWith;

// ---------------------------------------------------------------------------------------------
// Units and binding URLs.

TEST(ParseDurationTest, AcceptsUnitsAndBareSeconds) {
  const std::pair<std::string_view, long long> cases[] = {
      {"250ms", 250},           {"90s", 90'000},   {"20m", 1'200'000}, {"1h", 3'600'000},
      {"1h30m", 5'400'000},     {"90", 90'000},    {"0", 0},           {"0s", 0},
      {"1h2m3s4ms", 3'723'004}, {"1m30s", 90'000},
  };
  for (const auto& [text, expected] : cases) {
    auto duration = parse_duration(text);
    ASSERT_TRUE(duration.ok()) << text << ": " << duration.error().message;
    EXPECT_EQ(duration->count(), expected) << text;
  }
}

TEST(ParseDurationTest, RejectsMalformedText) {
  for (std::string_view text : {"", "s", "5x", "1.5s", "-1s", "1m1h", "1s1s", " 5s", "5 s", "5S",
                                "99999999999999999999", "9999999999999999h", "1h30"}) {
    auto duration = parse_duration(text);
    EXPECT_FALSE(duration.ok()) << "accepted \"" << text << "\"";
    if (!duration.ok()) {
      EXPECT_THAT(duration.error().message, HasSubstr("invalid duration"));
    }
  }
}

TEST(FormatDurationTest, ShortestExactFormReadsBack) {
  const std::pair<long long, std::string_view> cases[] = {
      {0, "0s"},         {250, "250ms"},       {1'000, "1s"},          {1'500, "1s500ms"},
      {90'000, "1m30s"}, {5'400'000, "1h30m"}, {86'400'001, "24h1ms"},
  };
  for (const auto& [count, text] : cases) {
    EXPECT_EQ(format_duration(milliseconds(count)), text);
    auto back = parse_duration(text);
    ASSERT_TRUE(back.ok()) << text;
    EXPECT_EQ(back->count(), count);
  }
}

TEST(ParseSizeTest, AcceptsBinaryAndDecimalUnits) {
  const std::pair<std::string_view, std::uint64_t> cases[] = {
      {"512", 512},
      {"512B", 512},
      {"16KiB", 16 * 1024},
      {"32MiB", 32ull << 20},
      {"1GiB", 1ull << 30},
      {"2TiB", 2ull << 40},
      {"16KB", 16'000},
      {"3MB", 3'000'000},
      {"1GB", 1'000'000'000},
      {"1TB", 1'000'000'000'000},
      {"16 KiB", 16 * 1024},
      {"16kib", 16 * 1024},
      {"0", 0},
  };
  for (const auto& [text, expected] : cases) {
    auto size = parse_size(text);
    ASSERT_TRUE(size.ok()) << text << ": " << size.error().message;
    EXPECT_EQ(*size, expected) << text;
  }
}

TEST(ParseSizeTest, RejectsMalformedText) {
  for (std::string_view text : {"", "KiB", "-1", "1.5MiB", "16K", "16 XB", "16KiBs",
                                "99999999999999999999", "20000000TiB", " 16KiB"}) {
    auto size = parse_size(text);
    EXPECT_FALSE(size.ok()) << "accepted \"" << text << "\"";
    if (!size.ok()) {
      EXPECT_THAT(size.error().message, HasSubstr("invalid size"));
    }
  }
}

TEST(ParseBindingUrlTest, Ipv4WithHost) {
  auto binding = parse_binding_url("https://127.0.0.1:8443/WWW.Example.com");
  ASSERT_TRUE(binding.ok()) << binding.error().message;
  EXPECT_EQ(binding->scheme, Scheme::kHttps);
  EXPECT_EQ(binding->address, "127.0.0.1");
  EXPECT_EQ(binding->port, 8443);
  EXPECT_EQ(binding->host, "www.example.com");
  EXPECT_EQ(binding->url(), "https://127.0.0.1:8443/www.example.com");
}

TEST(ParseBindingUrlTest, Ipv6IsStoredCanonicalWithoutBrackets) {
  auto binding = parse_binding_url("http://[0:0::0001]:8080");
  ASSERT_TRUE(binding.ok()) << binding.error().message;
  EXPECT_EQ(binding->scheme, Scheme::kHttp);
  EXPECT_EQ(binding->address, "::1");
  EXPECT_EQ(binding->port, 8080);
  EXPECT_EQ(binding->host, "");
  EXPECT_EQ(binding->url(), "http://[::1]:8080");
}

TEST(ParseBindingUrlTest, WildcardAddressAndWildcardHost) {
  auto binding = parse_binding_url("HTTP://*:80/*.Example.com");
  ASSERT_TRUE(binding.ok()) << binding.error().message;
  EXPECT_EQ(binding->address, "*");
  EXPECT_EQ(binding->port, 80);
  EXPECT_EQ(binding->host, "*.example.com");
}

TEST(ParseBindingUrlTest, TrailingSlashMeansAnyHost) {
  auto binding = parse_binding_url("http://10.0.0.1:65535/");
  ASSERT_TRUE(binding.ok()) << binding.error().message;
  EXPECT_EQ(binding->port, 65535);
  EXPECT_EQ(binding->host, "");
  EXPECT_EQ(binding->certificate, "");
  EXPECT_EQ(binding->where.line, 0);
}

TEST(ParseBindingUrlTest, RejectsBadForms) {
  const std::pair<std::string, std::string_view> cases[] = {
      {"127.0.0.1:80", "missing scheme"},
      {"ftp://1.2.3.4:80", "http or https"},
      {"http://1.2.3.4", "port is required"},
      {"http://1.2.3.4:", "port is required"},
      {"http://1.2.3.4:0", "from 1 to 65535"},
      {"http://1.2.3.4:65536", "from 1 to 65535"},
      {"http://1.2.3.4:8o", "from 1 to 65535"},
      {"http://1.2.3.4:+80", "from 1 to 65535"},
      {"http://user@1.2.3.4:80", "user information"},
      {"http://1.2.3.4:80/?q=1", "query"},
      {"http://1.2.3.4:80/a.com#x", "query or fragment"},
      {"http://1.2.3.4:80/a.com/path", "path after the host"},
      {"http://::1:80", "in brackets"},
      {"http://[::1]", "port is required"},
      {"http://[::1]80", "port is required"},
      {"http://[::1:80", "unterminated"},
      {"http://[1.2.3.4]:80", "not an IPv6 address"},
      {"http://localhost:80", "IPv4 address"},
      {"http://:80", "address is required"},
      {"http://1.2.3:80", "IPv4 address"},
      {"http://1.2.3.4:80/*", "not a host name"},
      {"http://1.2.3.4:80/a.*.com", "not a host name"},
      {"http://1.2.3.4:80/-a.com", "not a host name"},
      {"http://1.2.3.4:80/a_b.com", "not a host name"},
      {"http://1.2.3.4:80/example.com.", "not a host name"},
      {"http://1.2.3.4:80/" + std::string(64, 'a') + ".com", "not a host name"},
      {"", "missing scheme"},
  };
  for (const auto& [url, why] : cases) {
    auto binding = parse_binding_url(url);
    ASSERT_FALSE(binding.ok()) << "accepted \"" << url << "\"";
    EXPECT_THAT(binding.error().message, HasSubstr(why)) << url;
    EXPECT_THAT(binding.error().message, StartsWith("invalid binding")) << url;
  }
}

TEST(ParseBindingUrlTest, AcceptsLongestLabels) {
  const std::string host = std::string(63, 'a') + ".example.com";
  auto binding = parse_binding_url("http://*:80/" + host);
  ASSERT_TRUE(binding.ok()) << binding.error().message;
  EXPECT_EQ(binding->host, host);
}

// ---------------------------------------------------------------------------------------------
// Loading manifests from a temporary directory.

class ManifestLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "clusweb-config-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    fs::create_directories(root_ / "site");
    write("tls/secure.crt", "certificate");
    write("tls/secure.key", "key");
    write("worker.py", "#!/bin/sh\n", 0755);
  }
  void TearDown() override {
    std::error_code error;
    fs::remove_all(root_, error);
  }

  std::string path(std::string_view relative) const { return (root_ / relative).string(); }

  std::string write(std::string_view relative, std::string_view text, mode_t mode = 0644) {
    const fs::path file = root_ / relative;
    fs::create_directories(file.parent_path());
    std::ofstream(file) << text;
    ::chmod(file.c_str(), mode);
    return file.string();
  }

  // Writes `yaml` as web.yaml in the temporary directory and loads it.
  Result<WebConfig> load(std::string_view yaml, LoadOptions options = {}) {
    write("web.yaml", yaml);
    return load_web_config_files({path("web.yaml")}, options);
  }

  // Expects a failed load whose message has the line
  // "<web.yaml>:<line of needle>: <problem>".
  void expect_problem(const Result<WebConfig>& result, std::string_view yaml,
                      std::string_view needle, std::string_view problem) {
    ASSERT_FALSE(result.ok()) << "loaded without problems";
    const std::string expected =
        fmt::format("{}:{}: {}", path("web.yaml"), line_of(yaml, needle), problem);
    EXPECT_THAT(result.error().message, HasSubstr(expected));
  }

  fs::path root_;
};

constexpr std::string_view kFullExample = R"(kind: WebServer
user: www-data
threads: 4
limits:
  maxHeaderBytes: 8KiB
  maxHeaders: 50
  maxBodyBytes: 1MB
  headerTimeout: 5s
  idleTimeout: 2m
  maxConnections: 500
---
kind: Site
name: example
physicalPath: ./site
autoStart: false
bindings:
  - http://127.0.0.1:8080
  - http://*:8080/WWW.Example.com
  - url: https://[::1]:8443/secure.example.com
    certificate: ./tls/secure.crt
    key: tls/secure.key
defaultDocuments: [home.html]
directoryBrowsing: true
accessLog: ./logs/example.access.log
mimeTypes: {WASM: application/wasm, md: "text/markdown; charset=utf-8"}
applications:
  - path: /api
    pool: example-pool
  - path: /api/v2/
    pool: example-pool
---
kind: ApplicationPool
name: example-pool
command: [./worker.py, --flag, "two words"]
workingDirectory: site
environment: {KEY: value, NUMBER: 5}
user: www-data
processes: 3
socket: port
autoStart: false
startupTimeLimit: 30s
shutdownTimeLimit: 1m30s
rapidFailProtection: {enabled: false, maxCrashes: 3, interval: 10m}
queueLength: 200
)";

TEST_F(ManifestLoaderTest, ParsesEveryField) {
  auto config = load(kFullExample);
  ASSERT_TRUE(config.ok()) << config.error().describe();
  const std::string file = path("web.yaml");

  const ServerSettings& server = config->server;
  EXPECT_EQ(server.user, "www-data");
  EXPECT_EQ(server.threads, 4);
  EXPECT_EQ(server.limits.max_header_bytes, 8u * 1024);
  EXPECT_EQ(server.limits.max_headers, 50);
  EXPECT_EQ(server.limits.max_body_bytes, 1'000'000u);
  EXPECT_EQ(server.limits.header_timeout, milliseconds(5'000));
  EXPECT_EQ(server.limits.idle_timeout, milliseconds(120'000));
  EXPECT_EQ(server.limits.max_connections, 500);
  EXPECT_EQ(server.where.describe(), file + ":1");

  ASSERT_EQ(config->sites.size(), 1u);
  const Site& site = config->sites.at("example");
  EXPECT_EQ(site.name, "example");
  EXPECT_EQ(site.root, path("site"));
  EXPECT_FALSE(site.auto_start);
  ASSERT_EQ(site.bindings.size(), 3u);
  EXPECT_EQ(site.bindings[0].url(), "http://127.0.0.1:8080");
  EXPECT_EQ(site.bindings[0].where.line, line_of(kFullExample, "- http://127.0.0.1:8080"));
  EXPECT_EQ(site.bindings[0].certificate, "");
  EXPECT_EQ(site.bindings[1].url(), "http://*:8080/www.example.com");
  EXPECT_EQ(site.bindings[2].scheme, Scheme::kHttps);
  EXPECT_EQ(site.bindings[2].address, "::1");
  EXPECT_EQ(site.bindings[2].port, 8443);
  EXPECT_EQ(site.bindings[2].host, "secure.example.com");
  EXPECT_EQ(site.bindings[2].certificate, path("tls/secure.crt"));
  EXPECT_EQ(site.bindings[2].key, path("tls/secure.key"));
  EXPECT_EQ(site.bindings[2].where.line, line_of(kFullExample, "- url: https"));
  EXPECT_EQ(site.bindings[2].where.file, file);
  EXPECT_THAT(site.default_documents, ElementsAre("home.html"));
  EXPECT_TRUE(site.directory_browsing);
  EXPECT_EQ(site.access_log, path("logs/example.access.log"));
  EXPECT_THAT(site.mime_types, ElementsAre(Pair("md", "text/markdown; charset=utf-8"),
                                           Pair("wasm", "application/wasm")));
  ASSERT_EQ(site.applications.size(), 2u);
  // Longest path first; trailing slash removed.
  EXPECT_EQ(site.applications[0].path, "/api/v2");
  EXPECT_EQ(site.applications[0].pool, "example-pool");
  EXPECT_EQ(site.applications[0].where.line, line_of(kFullExample, "- path: /api/v2/"));
  EXPECT_EQ(site.applications[1].path, "/api");
  EXPECT_EQ(site.where.line, line_of(kFullExample, "kind: Site"));

  ASSERT_EQ(config->pools.size(), 1u);
  const ApplicationPool& pool = config->pools.at("example-pool");
  EXPECT_EQ(pool.name, "example-pool");
  EXPECT_THAT(pool.command, ElementsAre(path("worker.py"), "--flag", "two words"));
  EXPECT_EQ(pool.working_directory, path("site"));
  EXPECT_THAT(pool.environment, ElementsAre(Pair("KEY", "value"), Pair("NUMBER", "5")));
  EXPECT_EQ(pool.user, "www-data");
  EXPECT_EQ(pool.processes, 3);
  EXPECT_EQ(pool.socket, SocketMode::kPort);
  EXPECT_FALSE(pool.auto_start);
  EXPECT_EQ(pool.startup_time_limit, milliseconds(30'000));
  EXPECT_EQ(pool.shutdown_time_limit, milliseconds(90'000));
  EXPECT_FALSE(pool.rapid_fail_protection);
  EXPECT_EQ(pool.rapid_fail_max_crashes, 3);
  EXPECT_EQ(pool.rapid_fail_interval, milliseconds(600'000));
  EXPECT_EQ(pool.queue_length, 200);
  EXPECT_EQ(pool.where.line, line_of(kFullExample, "kind: ApplicationPool"));
}

TEST_F(ManifestLoaderTest, AppliesDefaults) {
  auto config = load(R"(
kind: Site
name: plain
physicalPath: site
bindings: [http://127.0.0.1:8080]
---
kind: ApplicationPool
name: plain-pool
command: worker
)");
  ASSERT_TRUE(config.ok()) << config.error().describe();

  const ServerSettings defaults;
  EXPECT_EQ(config->server.user, "nobody");
  EXPECT_EQ(config->server.threads, 1);
  EXPECT_EQ(config->server.limits.max_header_bytes, 16u * 1024);
  EXPECT_EQ(config->server.limits.max_headers, 100);
  EXPECT_EQ(config->server.limits.max_body_bytes, 32ull << 20);
  EXPECT_EQ(config->server.limits.header_timeout, milliseconds(10'000));
  EXPECT_EQ(config->server.limits.idle_timeout, milliseconds(60'000));
  EXPECT_EQ(config->server.limits.max_connections, 10'000);
  EXPECT_EQ(config->server.where.line, 0);

  const Site& site = config->sites.at("plain");
  EXPECT_TRUE(site.auto_start);
  EXPECT_THAT(site.default_documents, ElementsAre("index.html", "index.htm", "default.htm"));
  EXPECT_FALSE(site.directory_browsing);
  EXPECT_EQ(site.access_log, "");
  EXPECT_TRUE(site.mime_types.empty());
  EXPECT_TRUE(site.applications.empty());
  EXPECT_EQ(site.where.line, 2);

  const ApplicationPool& pool = config->pools.at("plain-pool");
  EXPECT_THAT(pool.command, ElementsAre("worker"));  // bare name: left for PATH lookup
  EXPECT_EQ(pool.working_directory, root_.string());
  EXPECT_TRUE(pool.environment.empty());
  EXPECT_EQ(pool.user, "");
  EXPECT_EQ(pool.processes, 1);
  EXPECT_EQ(pool.socket, SocketMode::kActivation);
  EXPECT_TRUE(pool.auto_start);
  EXPECT_EQ(pool.startup_time_limit, milliseconds(90'000));
  EXPECT_EQ(pool.shutdown_time_limit, milliseconds(90'000));
  EXPECT_TRUE(pool.rapid_fail_protection);
  EXPECT_EQ(pool.rapid_fail_max_crashes, 5);
  EXPECT_EQ(pool.rapid_fail_interval, milliseconds(300'000));
  EXPECT_EQ(pool.queue_length, 1000);
}

TEST_F(ManifestLoaderTest, ResolvesRelativePathsAgainstTheManifestFolder) {
  fs::create_directories(root_ / "conf");
  fs::create_directories(root_ / "www" / "docs");
  write("bin/worker", "#!/bin/sh\n", 0755);
  const std::string manifest = write("conf/web.yaml", R"(
kind: Site
name: docs
physicalPath: ../www/./docs/
accessLog: /var/log/docs.log
bindings:
  - url: https://*:8443
    certificate: ../tls/secure.crt
    key: ../tls/../tls/secure.key
---
kind: ApplicationPool
name: docs-pool
command: ../bin/worker --port 1
workingDirectory: ../www
)");
  auto config = load_web_config_files({manifest});
  ASSERT_TRUE(config.ok()) << config.error().describe();
  const Site& site = config->sites.at("docs");
  EXPECT_EQ(site.root, path("www/docs"));
  EXPECT_EQ(site.access_log, "/var/log/docs.log");
  EXPECT_EQ(site.bindings[0].certificate, path("tls/secure.crt"));
  EXPECT_EQ(site.bindings[0].key, path("tls/secure.key"));
  const ApplicationPool& pool = config->pools.at("docs-pool");
  EXPECT_THAT(pool.command, ElementsAre(path("bin/worker"), "--port", "1"));
  EXPECT_EQ(pool.working_directory, path("www"));
}

TEST_F(ManifestLoaderTest, AccessLogOffAndEmptyDocuments) {
  auto config = load(R"(# only a comment
---
kind: Site
name: quiet
physicalPath: site
accessLog: "off"
bindings: [http://127.0.0.1:8080]
---
)");
  ASSERT_TRUE(config.ok()) << config.error().describe();
  EXPECT_EQ(config->sites.at("quiet").access_log, "");
}

TEST_F(ManifestLoaderTest, NormalizesAndSortsApplications) {
  auto config = load(R"(
kind: Site
name: apps
physicalPath: site
bindings: [http://127.0.0.1:8080]
applications:
  - {path: /, pool: p}
  - {path: //shop///cart/, pool: p}
  - {path: /shop, pool: p}
  - {path: /api, pool: p}
---
kind: ApplicationPool
name: p
command: [worker]
)");
  ASSERT_TRUE(config.ok()) << config.error().describe();
  const auto& applications = config->sites.at("apps").applications;
  ASSERT_EQ(applications.size(), 4u);
  EXPECT_EQ(applications[0].path, "/shop/cart");
  EXPECT_EQ(applications[1].path, "/shop");
  EXPECT_EQ(applications[2].path, "/api");
  EXPECT_EQ(applications[3].path, "/");
}

TEST_F(ManifestLoaderTest, AllowsSharedListenersWithDistinctHostsAndWildcardAddresses) {
  auto config = load(R"(
kind: Site
name: a
physicalPath: site
bindings: [http://*:8080/a.example.com, http://127.0.0.1:8080]
---
kind: Site
name: b
physicalPath: site
bindings: [http://*:8080/b.example.com, http://*:8080, http://*:8080/*.example.com]
)");
  EXPECT_TRUE(config.ok()) << config.error().describe();
}

// ---------------------------------------------------------------------------------------------
// Problems, each at its exact line.

TEST_F(ManifestLoaderTest, UnknownKind) {
  const std::string_view yaml = "name: a\nkind: site\n---\nkind: Cluster\n";
  auto result = load(yaml);
  expect_problem(result, yaml, "kind: site",
                 "document: field \"kind\": unknown kind \"site\" (did you mean \"Site\"?)");
  expect_problem(result, yaml, "kind: Cluster",
                 "document: field \"kind\": unknown kind \"Cluster\" (expected one of: Site, "
                 "ApplicationPool, WebServer, Group)");
}

TEST_F(ManifestLoaderTest, SkipsGroupDocuments) {
  // A site and the cluster group that runs it in one file; the group is not checked here,
  // not even its fields.
  auto config = load(R"(kind: Site
name: shop
physicalPath: site
bindings: [http://127.0.0.1:8080]
---
kind: Group
name: shop
colour: red
resources:
  - {name: site, type: website, parameters: {site: shop}}
)");
  ASSERT_TRUE(config.ok()) << config.error().describe();
  EXPECT_EQ(config->sites.size(), 1u);
  EXPECT_TRUE(config->pools.empty());
}

TEST_F(ManifestLoaderTest, MissingKindAndNonMapDocument) {
  const std::string_view yaml = "\nname: a\n---\n- just\n- a list\n";
  auto result = load(yaml);
  expect_problem(result, yaml, "name: a", "document: field \"kind\": missing required field");
  expect_problem(result, yaml, "- just", "document: must be a map with a \"kind\" field");
}

TEST_F(ManifestLoaderTest, UnknownFieldsAreErrors) {
  const std::string_view yaml = R"(kind: Site
name: a
phisicalPath: site
colour: red
bindings: [http://127.0.0.1:8080]
)";
  auto result = load(yaml);
  expect_problem(result, yaml, "phisicalPath",
                 "Site \"a\": field \"phisicalPath\": unknown field (did you mean "
                 "\"physicalPath\"?)");
  expect_problem(result, yaml, "colour",
                 "Site \"a\": field \"colour\": unknown field (expected one of: name, "
                 "physicalPath, autoStart, bindings, defaultDocuments, directoryBrowsing, "
                 "accessLog, mimeTypes, applications)");
  expect_problem(result, yaml, "kind: Site",
                 "Site \"a\": field \"physicalPath\": missing required field");
}

TEST_F(ManifestLoaderTest, UnknownNestedFields) {
  const std::string_view yaml = R"(kind: WebServer
limits:
  maxHeaderByte: 1KiB
---
kind: ApplicationPool
name: p
command: [worker]
rapidFailProtection: {enabled: true, maxCrash: 3}
)";
  auto result = load(yaml);
  expect_problem(result, yaml, "maxHeaderByte",
                 "WebServer: field \"limits.maxHeaderByte\": unknown field (did you mean "
                 "\"maxHeaderBytes\"?)");
  expect_problem(result, yaml, "rapidFailProtection",
                 "ApplicationPool \"p\": field \"rapidFailProtection.maxCrash\": unknown field "
                 "(did you mean \"maxCrashes\"?)");
}

TEST_F(ManifestLoaderTest, DuplicateField) {
  const std::string_view yaml = R"(kind: Site
name: a
physicalPath: site
bindings: [http://127.0.0.1:8080]
autoStart: true
autoStart: false
)";
  expect_problem(load(yaml), yaml, "autoStart: false",
                 "Site \"a\": field \"autoStart\": duplicate field, first set at line 5");
}

TEST_F(ManifestLoaderTest, MissingRequiredFields) {
  const std::string_view yaml = R"(
kind: Site
name: a
physicalPath: site
bindings:
  - certificate: x
---
kind: ApplicationPool
name: p
)";
  auto result = load(yaml);
  expect_problem(result, yaml, "- certificate",
                 "Site \"a\": field \"bindings[0].url\": missing required field");
  expect_problem(result, yaml, "kind: ApplicationPool",
                 "ApplicationPool \"p\": field \"command\": missing required field");
  const std::string_view unnamed = "kind: Site\nphysicalPath: site\nbindings: [http://*:1]\n";
  expect_problem(load(unnamed), unnamed, "kind: Site",
                 "Site: field \"name\": missing required field");
}

TEST_F(ManifestLoaderTest, WrongTypes) {
  const std::string_view yaml = R"(kind: WebServer
user: [a]
threads: "4"
limits: 5
---
kind: Site
name: a
physicalPath: {x: 1}
autoStart: yes
directoryBrowsing: 1
bindings: http://127.0.0.1:8080
defaultDocuments: index.html
mimeTypes: [wasm]
applications: {path: /}
---
kind: ApplicationPool
name: p
command: {program: x}
processes: two
environment: [A]
)";
  auto result = load(yaml);
  expect_problem(result, yaml, "user: [a]", "WebServer: field \"user\": must be a string");
  expect_problem(result, yaml, "threads: \"4\"",
                 "WebServer: field \"threads\": must be an integer");
  expect_problem(result, yaml, "limits: 5", "WebServer: field \"limits\": must be a map");
  expect_problem(result, yaml, "physicalPath: {x: 1}",
                 "Site \"a\": field \"physicalPath\": must be a string");
  expect_problem(result, yaml, "autoStart: yes",
                 "Site \"a\": field \"autoStart\": must be true or false");
  expect_problem(result, yaml, "directoryBrowsing: 1",
                 "Site \"a\": field \"directoryBrowsing\": must be true or false");
  expect_problem(result, yaml, "bindings: http",
                 "Site \"a\": field \"bindings\": must be a list of bindings");
  expect_problem(result, yaml, "defaultDocuments: index.html",
                 "Site \"a\": field \"defaultDocuments\": must be a list of strings");
  expect_problem(result, yaml, "mimeTypes: [wasm]",
                 "Site \"a\": field \"mimeTypes\": must be a map of strings");
  expect_problem(result, yaml, "applications: {path: /}",
                 "Site \"a\": field \"applications\": must be a list of applications");
  expect_problem(result, yaml, "command: {program: x}",
                 "ApplicationPool \"p\": field \"command\": must be a list of strings or a string");
  expect_problem(result, yaml, "processes: two",
                 "ApplicationPool \"p\": field \"processes\": must be an integer");
  expect_problem(result, yaml, "environment: [A]",
                 "ApplicationPool \"p\": field \"environment\": must be a map of strings");
}

TEST_F(ManifestLoaderTest, ValuesOutOfRange) {
  const std::string_view yaml = R"(kind: WebServer
user: ""
threads: 257
limits:
  maxHeaderBytes: 100
  maxHeaders: 0
  maxConnections: 2000000
  headerTimeout: 0s
  idleTimeout: 5 minutes
  maxBodyBytes: 5XB
---
kind: ApplicationPool
name: p
command: [worker]
processes: 65
queueLength: 0
socket: tcp
startupTimeLimit: soon
rapidFailProtection:
  maxCrashes: 0
  enabled: maybe
environment: {"A=B": c}
)";
  auto result = load(yaml);
  expect_problem(result, yaml, "user: \"\"", "WebServer: field \"user\": must not be empty");
  expect_problem(result, yaml, "threads: 257",
                 "WebServer: field \"threads\": must be between 1 and 256");
  expect_problem(result, yaml, "maxHeaderBytes: 100",
                 "WebServer: field \"limits.maxHeaderBytes\": must be between 1KiB and 1MiB");
  expect_problem(result, yaml, "maxHeaders: 0",
                 "WebServer: field \"limits.maxHeaders\": must be between 1 and 10000");
  expect_problem(result, yaml, "maxConnections: 2000000",
                 "WebServer: field \"limits.maxConnections\": must be between 1 and 1000000");
  expect_problem(result, yaml, "headerTimeout: 0s",
                 "WebServer: field \"limits.headerTimeout\": must be greater than 0");
  expect_problem(result, yaml, "idleTimeout: 5 minutes",
                 "WebServer: field \"limits.idleTimeout\": invalid duration \"5 minutes\"");
  expect_problem(result, yaml, "maxBodyBytes: 5XB",
                 "WebServer: field \"limits.maxBodyBytes\": invalid size \"5XB\"");
  expect_problem(result, yaml, "processes: 65",
                 "ApplicationPool \"p\": field \"processes\": must be between 1 and 64");
  expect_problem(result, yaml, "queueLength: 0",
                 "ApplicationPool \"p\": field \"queueLength\": must be between 1 and 65535");
  expect_problem(result, yaml, "socket: tcp",
                 "ApplicationPool \"p\": field \"socket\": must be \"activation\" or \"port\"");
  expect_problem(result, yaml, "startupTimeLimit: soon",
                 "ApplicationPool \"p\": field \"startupTimeLimit\": invalid duration \"soon\"");
  expect_problem(result, yaml, "maxCrashes: 0",
                 "ApplicationPool \"p\": field \"rapidFailProtection.maxCrashes\": must be "
                 "between 1 and 10000");
  expect_problem(result, yaml, "enabled: maybe",
                 "ApplicationPool \"p\": field \"rapidFailProtection.enabled\": must be true or "
                 "false");
  expect_problem(result, yaml, "environment:",
                 "ApplicationPool \"p\": field \"environment.A=B\": environment variable names");
}

TEST_F(ManifestLoaderTest, SecretEnvironmentNamesFilesResolvedAgainstTheManifest) {
  write("secrets/db-password", "hunter22\n", 0600);
  auto loaded = load(R"(kind: ApplicationPool
name: p
command: [worker.py]
environment: {MODE: production}
secretEnvironment: {DB_PASSWORD: secrets/db-password}
)");
  ASSERT_TRUE(loaded.ok()) << loaded.error().describe();
  const ApplicationPool& pool = loaded->pools.at("p");
  EXPECT_THAT(pool.secret_environment,
              ElementsAre(Pair("DB_PASSWORD", path("secrets/db-password"))));
  EXPECT_THAT(pool.environment, ElementsAre(Pair("MODE", "production")));

  const std::string_view bad = R"(kind: ApplicationPool
name: p
command: [worker.py]
secretEnvironment: {MISSING: secrets/none, "A=B": secrets/db-password}
)";
  auto refused = load(bad);
  expect_problem(refused, bad, "secretEnvironment:",
                 "ApplicationPool \"p\": field \"secretEnvironment.MISSING\": file");
  expect_problem(refused, bad, "secretEnvironment:",
                 "ApplicationPool \"p\": field \"secretEnvironment.A=B\": environment variable "
                 "names");
  const std::string_view twice = R"(kind: ApplicationPool
name: p
command: [worker.py]
environment: {TWICE: a}
secretEnvironment: {TWICE: secrets/db-password}
)";
  expect_problem(load(twice), twice, "kind: ApplicationPool",
                 "ApplicationPool \"p\": field \"secretEnvironment.TWICE\": is also set "
                 "elsewhere in the pool");
}

TEST_F(ManifestLoaderTest, BadSiteValues) {
  const std::string_view yaml = R"(kind: Site
name: "bad name!"
physicalPath: site
bindings:
  - http://127.0.0.1:8080
  - http://localhost:8080
  - {url: "http://*:8081", certificate: tls/secure.crt}
  - https://*:8443
  - {url: "https://*:8444", certificate: tls/secure.crt}
  - []
defaultDocuments: [index.html, ../secret]
mimeTypes: {.wasm: application/wasm, md: markdown}
applications:
  - {path: api, pool: p}
  - {path: /a/../b, pool: p}
  - {path: /ok, pool: "bad pool"}
accessLog: ""
---
kind: Site
name: empty
physicalPath: site
bindings: []
)";
  auto result = load(yaml);
  expect_problem(result, yaml, "name: \"bad name!\"",
                 "Site \"bad name!\": field \"name\": must be 1 to 64 letters, digits, '.', '_' "
                 "or '-'");
  expect_problem(result, yaml, "- http://localhost:8080",
                 "Site \"bad name!\": field \"bindings[1]\": invalid binding "
                 "\"http://localhost:8080\"");
  expect_problem(result, yaml, "- {url: \"http://*:8081\"",
                 "Site \"bad name!\": field \"bindings[2]\": certificate and key apply only to "
                 "https bindings");
  expect_problem(result, yaml, "- https://*:8443",
                 "Site \"bad name!\": field \"bindings[3]\": an https binding needs a "
                 "certificate and a key");
  expect_problem(result, yaml, "- {url: \"https://*:8444\"",
                 "Site \"bad name!\": field \"bindings[4]\": an https binding needs a key");
  expect_problem(result, yaml, "- []",
                 "Site \"bad name!\": field \"bindings[5]\": must be a binding URL or a map");
  expect_problem(result, yaml, "defaultDocuments:",
                 "Site \"bad name!\": field \"defaultDocuments[1]\": must be a plain file name");
  expect_problem(result, yaml, "mimeTypes:",
                 "Site \"bad name!\": field \"mimeTypes..wasm\": must be a file extension without "
                 "the dot");
  expect_problem(result, yaml,
                 "mimeTypes:", "Site \"bad name!\": field \"mimeTypes.md\": must be a media type");
  expect_problem(result, yaml, "{path: api",
                 "Site \"bad name!\": field \"applications[0].path\": must start with \"/\"");
  expect_problem(result, yaml, "{path: /a/../b",
                 "Site \"bad name!\": field \"applications[1].path\": must not contain \".\" or "
                 "\"..\" segments");
  expect_problem(result, yaml, "{path: /ok",
                 "Site \"bad name!\": field \"applications[2].pool\": must be 1 to 64 letters");
  expect_problem(result, yaml, "accessLog: \"\"",
                 "Site \"bad name!\": field \"accessLog\": must not be empty");
  expect_problem(result, yaml, "bindings: []",
                 "Site \"empty\": field \"bindings\": at least one binding is required");
}

TEST_F(ManifestLoaderTest, CommandMustNameAProgram) {
  const std::string_view yaml = R"(kind: ApplicationPool
name: p
command: "   "
---
kind: ApplicationPool
name: q
command: []
)";
  auto result = load(yaml);
  expect_problem(result, yaml, "command: \"   \"",
                 "ApplicationPool \"p\": field \"command\": must name a program");
  expect_problem(result, yaml, "command: []",
                 "ApplicationPool \"q\": field \"command\": must name a program");
}

TEST_F(ManifestLoaderTest, DuplicateNamesAcrossFiles) {
  const std::string first = write("a.yaml", R"(kind: Site
name: shop
physicalPath: site
bindings: [http://127.0.0.1:8080]
---
kind: ApplicationPool
name: pool
command: worker
---
kind: WebServer
threads: 2
)");
  const std::string second_text = R"(kind: ApplicationPool
name: pool
command: worker
---
kind: Site
name: shop
physicalPath: site
bindings: [http://127.0.0.1:9090]
---
kind: WebServer
threads: 3
)";
  const std::string second = write("b.yaml", second_text);
  auto result = load_web_config_files({first, second});
  ASSERT_FALSE(result.ok());
  const std::string& message = result.error().message;
  EXPECT_THAT(message, HasSubstr(fmt::format(
                           "{}:1: ApplicationPool \"pool\": field \"name\": duplicate application "
                           "pool name, first defined at {}:6",
                           second, first)));
  EXPECT_THAT(message, HasSubstr(fmt::format(
                           "{}:5: Site \"shop\": field \"name\": duplicate site name, first "
                           "defined at {}:1",
                           second, first)));
  EXPECT_THAT(message, HasSubstr(fmt::format(
                           "{}:10: WebServer: only one WebServer document is allowed; the first "
                           "is at {}:10",
                           second, first)));
}

TEST_F(ManifestLoaderTest, ApplicationPoolMustExist) {
  const std::string_view yaml = R"(kind: Site
name: a
physicalPath: site
bindings: [http://127.0.0.1:8080]
applications:
  - path: /api
    pool: missing-pool
)";
  expect_problem(load(yaml), yaml, "- path: /api",
                 "Site \"a\": field \"applications[0].pool\": no ApplicationPool named "
                 "\"missing-pool\" exists");
}

TEST_F(ManifestLoaderTest, DuplicateApplicationPaths) {
  const std::string_view yaml = R"(kind: Site
name: a
physicalPath: site
bindings: [http://127.0.0.1:8080]
applications:
  - {path: /api, pool: p}
  - {path: /api/, pool: p}
---
kind: ApplicationPool
name: p
command: worker
)";
  const std::string file = path("web.yaml");
  expect_problem(load(yaml), yaml, "{path: /api/",
                 fmt::format("Site \"a\": field \"applications[1].path\": duplicate application "
                             "path \"/api\", also at {}:{}",
                             file, line_of(yaml, "{path: /api,")));
}

TEST_F(ManifestLoaderTest, TwoSitesClaimingTheSameListenerAndHost) {
  const std::string_view yaml = R"(kind: Site
name: first
physicalPath: site
bindings:
  - http://127.0.0.1:8080/www.example.com
---
kind: Site
name: second
physicalPath: site
bindings:
  - http://127.0.0.1:8080/WWW.example.com
  - http://127.0.0.1:9090
  - http://127.0.0.1:9090
)";
  const std::string file = path("web.yaml");
  auto result = load(yaml);
  expect_problem(result, yaml, "- http://127.0.0.1:8080/WWW",
                 fmt::format("Site \"second\": field \"bindings[0]\": "
                             "\"http://127.0.0.1:8080/www.example.com\" is already claimed by "
                             "site \"first\" at {}:{}",
                             file, line_of(yaml, "- http://127.0.0.1:8080/www")));
  EXPECT_THAT(result.error().message,
              HasSubstr(fmt::format("{}:13: Site \"second\": field \"bindings[2]\": duplicate "
                                    "binding \"http://127.0.0.1:9090\", also at {}:12",
                                    file, file)));
}

TEST_F(ManifestLoaderTest, OnePortServesOneScheme) {
  const std::string_view yaml = R"(kind: Site
name: plain
physicalPath: site
bindings:
  - http://127.0.0.1:8443
  - http://*:9000
---
kind: Site
name: secure
physicalPath: site
bindings:
  - url: https://127.0.0.1:8443/secure.example.com
    certificate: tls/secure.crt
    key: tls/secure.key
  - url: https://10.1.2.3:9000
    certificate: tls/secure.crt
    key: tls/secure.key
)";
  const std::string file = path("web.yaml");
  auto result = load(yaml);
  expect_problem(result, yaml, "- url: https://127.0.0.1:8443",
                 fmt::format("Site \"secure\": field \"bindings[0]\": port 8443 is used with "
                             "https here (\"https://127.0.0.1:8443/secure.example.com\") and "
                             "with http by site \"plain\" at {}:5 (\"http://127.0.0.1:8443\")",
                             file));
  expect_problem(result, yaml, "- url: https://10.1.2.3:9000",
                 "Site \"secure\": field \"bindings[1]\": port 9000 is used with https here");
}

TEST_F(ManifestLoaderTest, FilesystemChecks) {
  write("not-a-dir", "x");
  write("script.sh", "#!/bin/sh\n", 0644);
  const std::string_view yaml = R"(kind: Site
name: a
physicalPath: missing-dir
bindings:
  - url: https://*:8443
    certificate: tls/missing.crt
    key: tls
---
kind: Site
name: b
physicalPath: not-a-dir
bindings: [http://*:80]
---
kind: ApplicationPool
name: p
command: [./script.sh]
workingDirectory: nowhere
---
kind: ApplicationPool
name: q
command: bin/absent --flag
)";
  auto result = load(yaml);
  expect_problem(result, yaml, "physicalPath: missing-dir",
                 fmt::format("Site \"a\": field \"physicalPath\": directory \"{}\" does not exist",
                             path("missing-dir")));
  expect_problem(result, yaml, "certificate: tls/missing.crt",
                 fmt::format("Site \"a\": field \"bindings[0].certificate\": file \"{}\" does not "
                             "exist",
                             path("tls/missing.crt")));
  expect_problem(result, yaml, "key: tls",
                 fmt::format("Site \"a\": field \"bindings[0].key\": \"{}\" is not a regular file",
                             path("tls")));
  expect_problem(result, yaml, "physicalPath: not-a-dir",
                 fmt::format("Site \"b\": field \"physicalPath\": \"{}\" is not a directory",
                             path("not-a-dir")));
  expect_problem(result, yaml, "command: [./script.sh]",
                 fmt::format("ApplicationPool \"p\": field \"command\": file \"{}\" is not "
                             "executable",
                             path("script.sh")));
  expect_problem(result, yaml, "workingDirectory: nowhere",
                 fmt::format("ApplicationPool \"p\": field \"workingDirectory\": directory \"{}\" "
                             "does not exist",
                             path("nowhere")));
  expect_problem(result, yaml, "command: bin/absent",
                 fmt::format("ApplicationPool \"q\": field \"command\": file \"{}\" does not exist",
                             path("bin/absent")));

  // Text that came over the wire is not checked against this machine's files.
  auto unchecked = load(yaml, LoadOptions{.check_filesystem = false});
  ASSERT_TRUE(unchecked.ok()) << unchecked.error().describe();
  EXPECT_EQ(unchecked->sites.at("a").root, path("missing-dir"));
  EXPECT_EQ(unchecked->pools.at("q").command.front(), path("bin/absent"));
}

TEST_F(ManifestLoaderTest, UnreadableCertificate) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads any file";
  write("tls/locked.key", "key", 0000);
  const std::string_view yaml = R"(kind: Site
name: a
physicalPath: site
bindings:
  - url: https://*:8443
    certificate: tls/secure.crt
    key: tls/locked.key
)";
  expect_problem(load(yaml), yaml, "key: tls/locked.key",
                 fmt::format("Site \"a\": field \"bindings[0].key\": file \"{}\" is not readable",
                             path("tls/locked.key")));
}

TEST_F(ManifestLoaderTest, YamlSyntaxErrorHasFileAndLine) {
  const std::string_view yaml = "kind: Site\nname: a\nbindings: [http://*:80\nphysicalPath: x\n";
  auto result = load(yaml);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.error().message, StartsWith(path("web.yaml") + ":"));
  EXPECT_THAT(result.error().message, HasSubstr("invalid YAML"));
  EXPECT_THAT(result.error().where, StartsWith(path("web.yaml") + ":"));

  const std::string_view indented = "kind: Site\nname: a\n  physicalPath: x\n";
  auto bad_indent = load(indented);
  ASSERT_FALSE(bad_indent.ok());
  EXPECT_THAT(bad_indent.error().message,
              StartsWith(fmt::format("{}:3: invalid YAML: ", path("web.yaml"))));
}

// yaml-cpp 0.7 alone would start empty documents at the ',' forever, until
// memory ran out.
TEST_F(ManifestLoaderTest, AStrayCommaIsAnErrorAtItsLine) {
  for (const auto& [yaml, line] :
       std::vector<std::pair<std::string_view, int>>{{",kind: Site\n,kind: Site\n", 1},
                                                     {",", 1},
                                                     {"kind: Site\nname: a\n---\n- a\n,b\n", 5}}) {
    auto result = load(yaml);
    ASSERT_FALSE(result.ok()) << yaml;
    EXPECT_THAT(result.error().message,
                StartsWith(fmt::format("{}:{}: invalid YAML: ',' outside a [ ] or {{ }} list",
                                       path("web.yaml"), line)))
        << yaml;
  }
}

TEST_F(ManifestLoaderTest, SyntaxErrorDoesNotHideOtherFilesProblems) {
  const std::string broken = write("a.yaml", "kind: [\n");
  const std::string other = write("b.yaml", R"(kind: Site
name: s
physicalPath: site
bindings: [http://*:80]
threads: 2
applications: [{path: /x, pool: in-the-broken-file}]
)");
  auto result = load_web_config_files({broken, other});
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.error().message, HasSubstr(broken + ":"));
  EXPECT_THAT(result.error().message,
              HasSubstr(other + ":5: Site \"s\": field \"threads\": unknown field"));
  // The pool may be in the broken file: no guess about it.
  EXPECT_THAT(result.error().message, Not(HasSubstr("in-the-broken-file")));
}

TEST_F(ManifestLoaderTest, ReportsAllProblemsInFileAndLineOrder) {
  const std::string first = write("a.yaml", R"(kind: ApplicationPool
name: p
command: worker
processes: 0
)");
  const std::string second_text = R"(kind: Site
name: s
physicalPath: site
bindings: [http://*:80]
applications: [{path: /x, pool: nope}]
autoStart: sometimes
)";
  const std::string second = write("b.yaml", second_text);
  auto result = load_web_config_files({second, first});
  ASSERT_FALSE(result.ok());
  const std::string expected = fmt::format(
      "{0}:5: Site \"s\": field \"applications[0].pool\": no ApplicationPool named "
      "\"nope\" exists\n"
      "{0}:6: Site \"s\": field \"autoStart\": must be true or false\n"
      "{1}:4: ApplicationPool \"p\": field \"processes\": must be between 1 and 64",
      second, first);
  EXPECT_EQ(result.error().message, expected);
  EXPECT_EQ(result.error().where, second + ":5");
}

// ---------------------------------------------------------------------------------------------
// Reading files and directories.

TEST_F(ManifestLoaderTest, ReadsDirectoriesInNameOrder) {
  write("conf/b.yaml", "# b\n");
  write("conf/a.yml", "# a\n");
  write("conf/c.txt", "not a manifest");
  write("conf/.hidden.yaml", "# hidden");
  fs::create_directories(root_ / "conf" / "d.yaml");
  write("single.conf", "# explicit file");
  auto manifests = read_manifests({path("conf"), path("single.conf")});
  ASSERT_TRUE(manifests.ok()) << manifests.error().describe();
  ASSERT_EQ(manifests->size(), 3u);
  EXPECT_EQ((*manifests)[0].path, path("conf/a.yml"));
  EXPECT_EQ((*manifests)[0].text, "# a\n");
  EXPECT_EQ((*manifests)[1].path, path("conf/b.yaml"));
  EXPECT_EQ((*manifests)[2].path, path("single.conf"));
}

TEST_F(ManifestLoaderTest, ReadErrorsNameThePath) {
  auto manifests = read_manifests({path("absent.yaml")});
  ASSERT_FALSE(manifests.ok());
  EXPECT_EQ(manifests.error().where, path("absent.yaml"));
  EXPECT_EQ(manifests.error().sys_errno, ENOENT);

  auto config = load_web_config_files({path("absent-dir")});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().where, path("absent-dir"));
}

TEST_F(ManifestLoaderTest, LoadsADirectoryOfManifests) {
  write("conf/10-pool.yaml", "kind: ApplicationPool\nname: p\ncommand: [worker]\n");
  write("conf/20-site.yaml", R"(kind: Site
name: s
physicalPath: ../site
bindings: [http://*:80]
applications: [{path: /app, pool: p}]
)");
  auto config = load_web_config_files({path("conf")});
  ASSERT_TRUE(config.ok()) << config.error().describe();
  EXPECT_EQ(config->sites.at("s").root, path("site"));
  EXPECT_EQ(config->sites.at("s").where.describe(), path("conf/20-site.yaml") + ":1");
  EXPECT_EQ(config->pools.at("p").working_directory, path("conf"));
}

TEST(LoadWebConfigTest, TextFromTheWireResolvesAgainstItsPath) {
  const std::vector<ManifestText> manifests = {
      {"/etc/clusweb/sites/shop.yaml",
       "kind: Site\nname: shop\nphysicalPath: ../www/shop\nbindings: [http://*:80]\n"}};
  auto config = load_web_config(manifests, LoadOptions{.check_filesystem = false});
  ASSERT_TRUE(config.ok()) << config.error().describe();
  EXPECT_EQ(config->sites.at("shop").root, "/etc/clusweb/www/shop");
  EXPECT_EQ(config->sites.at("shop").where.describe(), "/etc/clusweb/sites/shop.yaml:1");
}

TEST(LoadWebConfigTest, EmptySetIsAnEmptyConfig) {
  auto config = load_web_config({});
  ASSERT_TRUE(config.ok());
  EXPECT_TRUE(config->sites.empty());
  EXPECT_TRUE(config->pools.empty());
  EXPECT_EQ(config->server.user, "nobody");
}

// ---------------------------------------------------------------------------------------------
// validate_web_config on models built in code.

WebConfig valid_model() {
  WebConfig config;
  Site site;
  site.name = "s";
  site.root = "/srv/s";
  site.where = {"built", 1};
  auto binding = parse_binding_url("http://*:80");
  site.bindings.push_back(*binding);
  site.applications.push_back(Application{"/app", "p", {"built", 2}});
  config.sites.emplace("s", site);
  ApplicationPool pool;
  pool.name = "p";
  pool.command = {"worker"};
  pool.working_directory = "/srv/s";
  config.pools.emplace("p", pool);
  return config;
}

TEST(ValidateWebConfigTest, AcceptsAValidModel) {
  EXPECT_TRUE(validate_web_config(valid_model()).ok());
  EXPECT_TRUE(validate_web_config(WebConfig{}).ok());
}

TEST(ValidateWebConfigTest, ReportsModelProblems) {
  WebConfig config = valid_model();
  Site& site = config.sites.at("s");
  site.root = "relative";
  site.applications[0].path = "/app/";
  site.applications[0].pool = "absent";
  site.bindings[0].address = "0:0::1";
  site.bindings[0].scheme = Scheme::kHttps;
  config.pools.at("p").processes = 0;
  config.pools.at("p").working_directory = "";
  config.server.threads = 0;
  auto status = validate_web_config(config);
  ASSERT_FALSE(status.ok());
  const std::string& message = status.error().message;
  EXPECT_THAT(message, HasSubstr("WebServer: field \"threads\": must be between 1 and 256"));
  EXPECT_THAT(message, HasSubstr("built:1: Site \"s\": field \"physicalPath\": must be an "
                                 "absolute path"));
  EXPECT_THAT(message, HasSubstr("built:2: Site \"s\": field \"applications[0].path\": must be "
                                 "normalized (\"/app\")"));
  EXPECT_THAT(message, HasSubstr("built:2: Site \"s\": field \"applications[0].pool\": no "
                                 "ApplicationPool named \"absent\" exists"));
  EXPECT_THAT(message, HasSubstr("field \"bindings[0]\": \"https://[0:0::1]:80\" is not in "
                                 "canonical form (\"https://[::1]:80\")"));
  EXPECT_THAT(message, HasSubstr("field \"bindings[0]\": an https binding needs a certificate "
                                 "and a key"));
  EXPECT_THAT(message, HasSubstr("ApplicationPool \"p\": field \"processes\": must be between 1 "
                                 "and 64"));
  EXPECT_THAT(message, HasSubstr("ApplicationPool \"p\": field \"workingDirectory\": must be an "
                                 "absolute path"));
}

TEST(ValidateWebConfigTest, NamesMustMatchKeys) {
  WebConfig config = valid_model();
  Site renamed = config.sites.at("s");
  renamed.name = "t";
  config.sites.clear();
  config.sites.emplace("s", renamed);
  auto status = validate_web_config(config);
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.error().message,
              HasSubstr("Site \"t\": field \"name\": does not match its key \"s\""));
}

}  // namespace
}  // namespace clusweb::config
