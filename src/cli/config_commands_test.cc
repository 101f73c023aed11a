#include "cli/config_commands.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "config/manifest_loader.h"
#include "config/web_config_json.h"

namespace clusweb::cli {
namespace {

TEST(FormatConfigChangesTest, ShowsEachObjectAndItsFields) {
  const Json changes = Json::parse(R"([
      {"kind": "site", "name": "shop", "change": "changed",
       "fields": [{"path": "physicalPath", "before": "/srv/a", "after": "/srv/b"},
                  {"path": "bindings[1].url", "before": null, "after": "http://*:8081"},
                  {"path": "mimeTypes..x", "before": "text/x", "after": null}]},
      {"kind": "pool", "name": "api", "change": "created",
       "fields": [{"path": "processes", "before": null, "after": 2}]},
      {"kind": "pool", "name": "old", "change": "removed",
       "fields": [{"path": "command", "before": ["/bin/old"], "after": null}]}])");
  EXPECT_EQ(format_config_changes(&changes),
            "site/shop: changed\n"
            "    physicalPath: \"/srv/a\" -> \"/srv/b\"\n"
            "    + bindings[1].url: \"http://*:8081\"\n"
            "    - mimeTypes..x: \"text/x\"\n"
            "pool/api: created\n"
            "    + processes: 2\n"
            "pool/old: removed\n"
            "    - command: [\"/bin/old\"]\n");
  const Json empty = Json::array();
  EXPECT_EQ(format_config_changes(&empty), "no change\n");
  EXPECT_EQ(format_config_changes(nullptr), "no change\n");
}

TEST(FormatConfigHistoryTest, ListsRevisionsNewestFirstAndWhereTheHistoryEnds) {
  Result<std::string> text = format_config_history(R"j({
      "revisions": [{"revision": 12, "summary": "site/shop changed", "changes": []},
                    {"revision": 9, "changes": null}],
      "end": "revision 8 is no longer in the store's history (compacted)"})j");
  ASSERT_TRUE(text.ok()) << text.error().describe();
  EXPECT_EQ(*text,
            "REVISION   CHANGES\n"
            "12         site/shop changed\n"
            "9          (the revision before is not in the store's history)\n"
            "history ends at: revision 8 is no longer in the store's history (compacted)\n");
  EXPECT_EQ(*format_config_history(R"({"revisions": [], "end": "the first revision"})"),
            "no shared configuration yet\n");
  EXPECT_FALSE(format_config_history("[]").ok());
}

TEST(FormatConfigManifestsTest, PrintsManifestsThatLoadBackToTheSameObjects) {
  auto original = config::load_web_config({{"/admin/shop.yaml", R"(kind: Site
name: shop
physicalPath: /srv/shop
bindings:
  - http://*:8080/shop.example.com
  - url: https://*:8443/shop.example.com
    certificate: /etc/tls/shop.crt
    key: /etc/tls/shop.key
applications: [{path: /api, pool: api}]
mimeTypes: {weird: "text/x-weird; charset=\"utf-8\""}
---
kind: ApplicationPool
name: api
command: [/srv/api/worker, "--name=it's \"quoted\""]
workingDirectory: /srv/api
environment: {MODE: production}
processes: 3
)"}},
                                          config::LoadOptions{.check_filesystem = false});
  ASSERT_TRUE(original.ok()) << original.error().describe();
  Json stored = Json::parse(config::to_json(*original));
  stored.erase("server");
  stored["revision"] = 7;
  Result<std::string> text = format_config_manifests(stored.dump());
  ASSERT_TRUE(text.ok()) << text.error().describe();
  EXPECT_NE(text->find("# shared configuration, revision 7\n"), std::string::npos) << *text;
  EXPECT_NE(text->find("# from /admin/shop.yaml:1\nkind: Site\nname: \"shop\"\n"),
            std::string::npos)
      << *text;
  auto again = config::load_web_config({{"/tmp/got.yaml", *text}},
                                       config::LoadOptions{.check_filesystem = false});
  ASSERT_TRUE(again.ok()) << again.error().describe() << "\n" << *text;
  EXPECT_EQ(again->sites, original->sites);
  EXPECT_EQ(again->pools, original->pools);
}

TEST(ConfigObjectsTest, SortsSitesFromPoolsAndRefusesOtherForms) {
  Result<Json> objects = config_objects({"site/shop", "pool/api", "site/blog"});
  ASSERT_TRUE(objects.ok());
  EXPECT_EQ(*objects, Json::parse(R"({"sites": ["shop", "blog"], "pools": ["api"]})"));
  for (const char* bad : {"shop", "group/web", "site/", "/shop"}) {
    Result<Json> refused = config_objects({bad});
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_NE(refused.error().message.find("site/NAME or pool/NAME"), std::string::npos);
  }
}

}  // namespace
}  // namespace clusweb::cli
