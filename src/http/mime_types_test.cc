#include "http/mime_types.h"

#include <gtest/gtest.h>

namespace clusweb::http {
namespace {

TEST(MimeTypesTest, KnowsCommonWebTypes) {
  MimeTypes types;
  EXPECT_EQ(types.lookup("index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(types.lookup("index.htm"), "text/html; charset=utf-8");
  EXPECT_EQ(types.lookup("site.css"), "text/css; charset=utf-8");
  EXPECT_EQ(types.lookup("app.js"), "text/javascript; charset=utf-8");
  EXPECT_EQ(types.lookup("module.mjs"), "text/javascript; charset=utf-8");
  EXPECT_EQ(types.lookup("data.json"), "application/json");
  EXPECT_EQ(types.lookup("notes.txt"), "text/plain; charset=utf-8");
  EXPECT_EQ(types.lookup("feed.xml"), "application/xml");
  EXPECT_EQ(types.lookup("logo.svg"), "image/svg+xml");
  EXPECT_EQ(types.lookup("a.png"), "image/png");
  EXPECT_EQ(types.lookup("a.jpg"), "image/jpeg");
  EXPECT_EQ(types.lookup("a.jpeg"), "image/jpeg");
  EXPECT_EQ(types.lookup("a.gif"), "image/gif");
  EXPECT_EQ(types.lookup("a.webp"), "image/webp");
  EXPECT_EQ(types.lookup("favicon.ico"), "image/vnd.microsoft.icon");
  EXPECT_EQ(types.lookup("app.wasm"), "application/wasm");
  EXPECT_EQ(types.lookup("doc.pdf"), "application/pdf");
  EXPECT_EQ(types.lookup("a.zip"), "application/zip");
  EXPECT_EQ(types.lookup("a.gz"), "application/gzip");
  EXPECT_EQ(types.lookup("f.woff"), "font/woff");
  EXPECT_EQ(types.lookup("f.woff2"), "font/woff2");
  EXPECT_EQ(types.lookup("f.ttf"), "font/ttf");
  EXPECT_EQ(types.lookup("v.mp4"), "video/mp4");
  EXPECT_EQ(types.lookup("v.webm"), "video/webm");
  EXPECT_EQ(types.lookup("s.mp3"), "audio/mpeg");
  EXPECT_EQ(types.lookup("t.csv"), "text/csv; charset=utf-8");
  EXPECT_EQ(types.lookup("README.md"), "text/markdown; charset=utf-8");
}

TEST(MimeTypesTest, ExtensionIsCaseInsensitive) {
  MimeTypes types;
  EXPECT_EQ(types.lookup("INDEX.HTML"), "text/html; charset=utf-8");
  EXPECT_EQ(types.lookup("Photo.JpG"), "image/jpeg");
}

TEST(MimeTypesTest, UsesTheLastExtensionOfTheLastPathSegment) {
  MimeTypes types;
  EXPECT_EQ(types.lookup("archive.tar.gz"), "application/gzip");
  EXPECT_EQ(types.lookup("static/css/site.css"), "text/css; charset=utf-8");
  EXPECT_EQ(types.lookup("dir.html/file"), MimeTypes::kDefaultType);
}

TEST(MimeTypesTest, UnknownOrMissingExtensionIsOctetStream) {
  MimeTypes types;
  EXPECT_EQ(types.lookup("binary.xyz"), "application/octet-stream");
  EXPECT_EQ(types.lookup("Makefile"), "application/octet-stream");
  EXPECT_EQ(types.lookup("trailing."), "application/octet-stream");
  EXPECT_EQ(types.lookup(".html"), "application/octet-stream");  // a dot-file, no extension
  EXPECT_EQ(types.lookup(""), "application/octet-stream");
}

TEST(MimeTypesTest, OverridesReplaceAndExtend) {
  MimeTypes types({{"html", "text/html"},
                   {"apk", "application/vnd.android.package-archive"},
                   {"LOG", "text/x-log"},
                   {".dat", "application/x-data"},
                   {"", "ignored/empty"}});
  EXPECT_EQ(types.lookup("index.html"), "text/html");
  EXPECT_EQ(types.lookup("app.APK"), "application/vnd.android.package-archive");
  EXPECT_EQ(types.lookup("server.log"), "text/x-log");
  EXPECT_EQ(types.lookup("x.dat"), "application/x-data");
  EXPECT_EQ(types.lookup("trailing."), "application/octet-stream");
  EXPECT_EQ(types.lookup("style.css"), "text/css; charset=utf-8");
}

TEST(MimeTypesTest, OverridesDoNotLeakIntoOtherInstances) {
  MimeTypes custom(std::map<std::string, std::string>{{"css", "text/x-custom"}});
  MimeTypes plain;
  EXPECT_EQ(custom.lookup("a.css"), "text/x-custom");
  EXPECT_EQ(plain.lookup("a.css"), "text/css; charset=utf-8");
}

}  // namespace
}  // namespace clusweb::http
