#include "config/shared_config_diff.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "config/manifest_loader.h"

namespace clusweb::config {
namespace {

using Type = ObjectChange::Type;

WebConfig load(const std::string& yaml, const std::string& file = "/admin/shop.yaml") {
  auto config = load_web_config({{file, yaml}}, LoadOptions{.check_filesystem = false});
  EXPECT_TRUE(config.ok()) << config.error().describe();
  return config.ok() ? std::move(config).value() : WebConfig{};
}

constexpr const char* kShop = R"(kind: Site
name: shop
physicalPath: /srv/shop
bindings: [http://*:8080/shop.example.com]
applications: [{path: /api, pool: api}]
---
kind: ApplicationPool
name: api
command: [/srv/api/worker, --fast]
workingDirectory: /srv/api
environment: {MODE: production}
)";

TEST(SharedConfigDiffTest, TheSameObjectsFromAnotherFileAreNoChange) {
  EXPECT_TRUE(diff_web_objects(load(kShop), load(kShop, "/elsewhere/copy.yaml")).empty());
}

TEST(SharedConfigDiffTest, AChangedObjectListsOnlyTheFieldsThatDiffer) {
  std::string changed = kShop;
  changed.replace(changed.find("/srv/shop"), 9, "/srv/shop2");
  changed.replace(changed.find("production"), 10, "staging");
  auto changes = diff_web_objects(load(kShop), load(changed));
  ASSERT_EQ(changes.size(), 2U);
  EXPECT_EQ(changes[0].kind, "site");
  EXPECT_EQ(changes[0].name, "shop");
  EXPECT_EQ(changes[0].type, Type::kChanged);
  ASSERT_EQ(changes[0].fields.size(), 1U);
  EXPECT_EQ(changes[0].fields[0].path, "physicalPath");
  EXPECT_EQ(changes[0].fields[0].before, "\"/srv/shop\"");
  EXPECT_EQ(changes[0].fields[0].after, "\"/srv/shop2\"");
  EXPECT_EQ(changes[1].kind, "pool");
  ASSERT_EQ(changes[1].fields.size(), 1U);
  EXPECT_EQ(changes[1].fields[0].path, "environment.MODE");
  EXPECT_EQ(changes[1].fields[0].after, "\"staging\"");
}

TEST(SharedConfigDiffTest, ListsOfObjectsCompareByPositionAndListsOfValuesAsAWhole) {
  std::string more = kShop;
  more.replace(more.find("[http://*:8080/shop.example.com]"), 32,
               "[http://*:8080/shop.example.com, http://*:8081]");
  more.replace(more.find("--fast"), 6, "--slow");
  auto changes = diff_web_objects(load(kShop), load(more));
  ASSERT_EQ(changes.size(), 2U);
  ASSERT_EQ(changes[0].fields.size(), 1U);
  EXPECT_EQ(changes[0].fields[0].path, "bindings[1].url");
  EXPECT_EQ(changes[0].fields[0].before, "");
  EXPECT_EQ(changes[0].fields[0].after, "\"http://*:8081\"");
  ASSERT_EQ(changes[1].fields.size(), 1U);
  EXPECT_EQ(changes[1].fields[0].path, "command");
  EXPECT_EQ(changes[1].fields[0].after, R"(["/srv/api/worker","--slow"])");
}

TEST(SharedConfigDiffTest, CreatedAndRemovedObjectsListTheirFieldsWithoutEmptyDefaults) {
  const std::string blog = R"(
---
kind: Site
name: blog
physicalPath: /srv/blog
bindings: [http://*:8080/blog.example.com]
)";
  auto changes = diff_web_objects(load(kShop), load(std::string(kShop) + blog));
  ASSERT_EQ(changes.size(), 1U);
  EXPECT_EQ(changes[0].type, Type::kCreated);
  EXPECT_EQ(changes[0].name, "blog");
  std::vector<std::string> paths;
  for (const FieldChange& field : changes[0].fields) {
    paths.push_back(field.path);
    EXPECT_EQ(field.before, "");
    EXPECT_NE(field.after, "\"\"");
  }
  EXPECT_THAT(paths, ::testing::Contains("physicalPath"));
  EXPECT_THAT(paths, ::testing::Contains("bindings[0].url"));
  EXPECT_THAT(paths, ::testing::Not(::testing::Contains("accessLog")));

  auto removed = diff_web_objects(load(std::string(kShop) + blog), load(kShop));
  ASSERT_EQ(removed.size(), 1U);
  EXPECT_EQ(removed[0].type, Type::kRemoved);
  EXPECT_EQ(removed[0].fields.size(), changes[0].fields.size());
}

TEST(SharedConfigDiffTest, TheJsonFormHoldsValuesAndNullForAbsentSides) {
  std::string changed = kShop;
  changed.replace(changed.find("/srv/shop"), 9, "/srv/shop2");
  auto json = nlohmann::json::parse(diff_to_json(diff_web_objects(load(kShop), load(changed))));
  ASSERT_EQ(json.size(), 1U);
  EXPECT_EQ(json[0]["change"], "changed");
  EXPECT_EQ(json[0]["fields"][0]["before"], "/srv/shop");
  EXPECT_EQ(json[0]["fields"][0]["after"], "/srv/shop2");
  auto created = nlohmann::json::parse(diff_to_json(diff_web_objects(WebConfig{}, load(kShop))));
  EXPECT_EQ(created[0]["change"], "created");
  EXPECT_TRUE(created[0]["fields"][0]["before"].is_null());
}

}  // namespace
}  // namespace clusweb::config
