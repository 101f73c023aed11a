#include "config/shared_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "base/testing/crashing_file_system.h"
#include "config/manifest_loader.h"

namespace clusweb::config {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class SharedConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = fs::temp_directory_path() / "shared_config_test.XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    fs::create_directories(dir_ / "www" / "shop");
    fs::create_directories(dir_ / "www" / "local");
    std::ofstream(dir_ / "worker.py") << "#!/bin/sh\n";
    fs::permissions(dir_ / "worker.py", fs::perms::owner_all);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Manifests as `clusweb apply` would have resolved them on the administrator's machine.
  WebConfig load(const std::string& yaml, const std::string& file = "/admin/shop.yaml") {
    auto config = load_web_config({{file, yaml}}, LoadOptions{.check_filesystem = false});
    EXPECT_TRUE(config.ok()) << config.error().describe();
    return config.ok() ? std::move(config).value() : WebConfig{};
  }

  // The shop site on its pool, content under this test's folder.
  SharedConfig shop(std::int64_t revision = 42) {
    SharedConfig shared;
    shared.revision = revision;
    shared.config = load(fmt::format(R"(kind: Site
name: shop
physicalPath: {0}/www/shop
bindings: [http://*:8080/shop.example.com]
applications: [{{path: /api, pool: shop-api}}]
---
kind: ApplicationPool
name: shop-api
command: [{0}/worker.py]
workingDirectory: {0}
)",
                                     dir_.string()));
    return shared;
  }

  // This node's own manifests: its WebServer settings and a site of its own.
  WebConfig local() {
    return load(fmt::format(R"(kind: WebServer
threads: 3
---
kind: Site
name: local
physicalPath: {}/www/local
bindings: [http://127.0.0.1:9090]
)",
                            dir_.string()),
                "/etc/clusweb/web.yaml");
  }

  fs::path dir_;
};

TEST_F(SharedConfigTest, EncodingRoundTripsSitesPoolsAndRevision) {
  const SharedConfig original = shop(42);
  auto decoded = decode_shared_config(encode_shared_config(original), "cache");
  ASSERT_TRUE(decoded.ok()) << decoded.error().describe();
  EXPECT_EQ(decoded->revision, 42);
  ASSERT_EQ(decoded->config.sites.size(), 1U);
  EXPECT_EQ(decoded->config.sites.at("shop"), original.config.sites.at("shop"));
  EXPECT_EQ(decoded->config.pools.at("shop-api"), original.config.pools.at("shop-api"));
  // The origin of each object stays known, for messages on every node.
  EXPECT_EQ(decoded->config.sites.at("shop").where.describe(), "/admin/shop.yaml:1");
}

TEST_F(SharedConfigTest, DecodingRefusesWhatIsNotASharedConfiguration) {
  EXPECT_THAT(decode_shared_config("[]", "cache").error().describe(), HasSubstr("cache"));
  EXPECT_THAT(decode_shared_config(R"({"sites": []})", "cache").error().message,
              HasSubstr("revision"));
  EXPECT_THAT(decode_shared_config(R"({"revision": 3, "server": {}})", "cache").error().message,
              HasSubstr("server"));
  // A site naming a pool the shared configuration does not have.
  SharedConfig dangling = shop(5);
  dangling.config.pools.clear();
  auto refused = decode_shared_config(encode_shared_config(dangling), "cache");
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.error().message, HasSubstr("revision 5"));
  EXPECT_THAT(refused.error().message, HasSubstr("shop-api"));
}

TEST_F(SharedConfigTest, TheCacheIsWrittenAtomicallyAndReadBack) {
  const fs::path path = dir_ / "shared-config";
  auto absent = read_shared_config_cache(os_file_system(), path);
  ASSERT_TRUE(absent.ok());
  EXPECT_FALSE(absent->has_value());

  ASSERT_TRUE(write_shared_config_cache(os_file_system(), path, shop(7)).ok());
  auto read = read_shared_config_cache(os_file_system(), path);
  ASSERT_TRUE(read.ok()) << read.error().describe();
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ((*read)->revision, 7);
  EXPECT_EQ((fs::status(path).permissions() & fs::perms::all),
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                fs::perms::others_read);

  // A crash at any step of the next write leaves revision 7 or revision 8, whole.
  for (int step = 1; step <= 5; ++step) {
    testing::CrashingFileSystem crashing(os_file_system());
    crashing.crash_at(step);
    EXPECT_FALSE(write_shared_config_cache(crashing, path, shop(8)).ok());
    auto after = read_shared_config_cache(os_file_system(), path);
    ASSERT_TRUE(after.ok()) << "step " << step << ": " << after.error().describe();
    ASSERT_TRUE(after->has_value());
    EXPECT_TRUE((*after)->revision == 7 || (*after)->revision == 8) << "step " << step;
    ASSERT_TRUE(write_shared_config_cache(os_file_system(), path, shop(7)).ok());
  }

  // A damaged cache is an error naming the file, never an empty configuration.
  std::string text;
  {
    std::ifstream in(path);
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  text[text.size() - 3] ^= 1;
  std::ofstream(path, std::ios::trunc) << text;
  auto damaged = read_shared_config_cache(os_file_system(), path);
  ASSERT_FALSE(damaged.ok());
  EXPECT_THAT(damaged.error().describe(), HasSubstr(path.string()));
}

TEST_F(SharedConfigTest, MergeAddsTheSharedObjectsToTheNodesOwn) {
  auto merged = merge_shared_config(local(), shop());
  ASSERT_TRUE(merged.ok()) << merged.error().describe();
  EXPECT_EQ(merged->server.threads, 3);  // the node's own settings
  EXPECT_EQ(merged->sites.size(), 2U);
  EXPECT_TRUE(merged->sites.contains("local"));
  EXPECT_TRUE(merged->sites.contains("shop"));
  EXPECT_TRUE(merged->pools.contains("shop-api"));
}

TEST_F(SharedConfigTest, MergeRefusesANameDefinedTwice) {
  WebConfig mine = local();
  Site copy = shop().config.sites.at("shop");
  copy.where = SourceLocation{"/etc/clusweb/web.yaml", 9};
  copy.bindings.front().host = "other.example.com";
  mine.sites.emplace("shop", copy);
  auto merged = merge_shared_config(mine, shop(42));
  ASSERT_FALSE(merged.ok());
  EXPECT_THAT(merged.error().message,
              StartsWith("/admin/shop.yaml:1 (shared configuration revision 42): Site \"shop\": "
                         "also defined by this node, at /etc/clusweb/web.yaml:9"));
}

TEST_F(SharedConfigTest, MergeNamesEveryPathMissingOnThisNode) {
  fs::remove_all(dir_ / "www" / "shop");
  fs::remove(dir_ / "worker.py");
  auto merged = merge_shared_config(local(), shop(42));
  ASSERT_FALSE(merged.ok());
  EXPECT_THAT(merged.error().message,
              HasSubstr("Site \"shop\": physicalPath: directory \"" + (dir_ / "www/shop").string() +
                        "\" does not exist on this node"));
  EXPECT_THAT(merged.error().message,
              HasSubstr("ApplicationPool \"shop-api\": command: file \"" +
                        (dir_ / "worker.py").string() + "\" does not exist on this node"));
  EXPECT_EQ(merged.error().where, "/admin/shop.yaml:1 (shared configuration revision 42)");
  // Without the filesystem checks (text from the wire) the same merge passes.
  EXPECT_TRUE(merge_shared_config(local(), shop(42), /*check_filesystem=*/false).ok());
}

TEST_F(SharedConfigTest, MergeChecksCrossReferencesOverTheWhole) {
  WebConfig mine = local();
  // The node's own site claims the shared site's listener and host.
  mine.sites.at("local").bindings.front() = shop().config.sites.at("shop").bindings.front();
  auto merged = merge_shared_config(mine, shop(42));
  ASSERT_FALSE(merged.ok());
  EXPECT_THAT(merged.error().message, StartsWith("with shared configuration revision 42: "));
  EXPECT_THAT(merged.error().message, HasSubstr("shop.example.com"));
}

}  // namespace
}  // namespace clusweb::config
