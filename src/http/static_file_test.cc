#include "http/static_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "base/testing/manual_clock.h"

namespace clusweb::http {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// 1994-11-06 08:49:37 UTC, the example date of RFC 9110.
constexpr std::int64_t kMtime = 784111777;
constexpr std::string_view kMtimeText = "Sun, 06 Nov 1994 08:49:37 GMT";

std::optional<std::string> header(const StaticResponse& response, std::string_view name) {
  for (const auto& [key, value] : response.headers) {
    if (key == name) return value;
  }
  return std::nullopt;
}

// The bytes the transport would send (ignoring send_body).
std::string body_of(const StaticResponse& response) {
  if (!response.file) return response.body;
  const OpenFile& file = *response.file;
  if (file.in_memory()) return file.contents.substr(response.offset, response.length);
  std::string out(response.length, '\0');
  ssize_t n = ::pread(file.fd.get(), out.data(), out.size(), static_cast<off_t>(response.offset));
  out.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
  return out;
}

class StaticFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "clusweb-static-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    base_ = pattern;
    root_ = base_ / "root";
    std::filesystem::create_directories(root_);
    std::filesystem::create_directories(base_ / "outside");
    root_fd_ = UniqueFd(::open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(root_fd_.valid());
    site_.root_fd = root_fd_.get();
    site_.cache_key = "site-a";
    site_.default_documents = &default_documents_;
    site_.directory_browsing = false;
    site_.mime = &mime_;
  }

  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(base_, ignored);
  }

  // Writes root/<relative> with `text` and mtime kMtime (or `mtime`).
  void write(const std::string& relative, const std::string& text, std::int64_t mtime = kMtime) {
    std::filesystem::path path = root_ / relative;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
    set_mtime(relative, mtime);
  }

  void set_mtime(const std::string& relative, std::int64_t mtime, long nsec = 0) {
    timespec times[2] = {{mtime, nsec}, {mtime, nsec}};
    ASSERT_EQ(::utimensat(AT_FDCWD, (root_ / relative).c_str(), times, 0), 0);
  }

  void mkdir(const std::string& relative) { std::filesystem::create_directories(root_ / relative); }

  StaticResponse get(std::string_view path, StaticRequest request = {}) {
    if (request.method.empty()) request.method = "GET";
    request.path = path;
    return handler_.serve(site_, request);
  }

  static StaticRequest with_range(std::string_view range, std::string_view if_range = {}) {
    StaticRequest request;
    request.range = range;
    request.if_range = if_range;
    return request;
  }

  std::filesystem::path base_;
  std::filesystem::path root_;
  UniqueFd root_fd_;
  std::vector<std::string> default_documents_{"index.html", "index.htm"};
  MimeTypes mime_;
  StaticSite site_;
  testing::ManualClock clock_;
  StaticFileHandler handler_{clock_};
};

// ---- Methods, paths, errors ----

TEST_F(StaticFileTest, OnlyGetAndHeadAreAllowed) {
  write("a.txt", "hello");
  for (std::string_view method : {"POST", "PUT", "DELETE", "OPTIONS", "get", "TRACE"}) {
    StaticRequest request;
    request.method = method;
    StaticResponse response = get("/a.txt", request);
    EXPECT_EQ(response.status, 405) << method;
    EXPECT_EQ(header(response, "Allow"), "GET, HEAD") << method;
    EXPECT_FALSE(response.file);
  }
}

TEST_F(StaticFileTest, ServesFileWithValidators) {
  write("hello.txt", "hello world");
  StaticResponse response = get("/hello.txt");
  EXPECT_EQ(response.status, 200);
  EXPECT_TRUE(response.send_body);
  ASSERT_TRUE(response.file);
  EXPECT_EQ(response.offset, 0u);
  EXPECT_EQ(response.length, 11u);
  EXPECT_EQ(body_of(response), "hello world");
  EXPECT_EQ(header(response, "Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(header(response, "ETag"), fmt::format("\"{:x}-{:x}\"", kMtime, 11));
  EXPECT_EQ(header(response, "Last-Modified"), std::string(kMtimeText));
  EXPECT_EQ(header(response, "Accept-Ranges"), "bytes");
  EXPECT_FALSE(header(response, "Content-Length"));
  EXPECT_FALSE(header(response, "Date"));
}

TEST_F(StaticFileTest, HeadHasTheSameHeadersAndNoBody) {
  write("page.html", "<p>hi</p>");
  StaticResponse got = get("/page.html");
  StaticRequest request;
  request.method = "HEAD";
  StaticResponse head = get("/page.html", request);
  EXPECT_EQ(head.status, 200);
  EXPECT_FALSE(head.send_body);
  EXPECT_EQ(head.headers, got.headers);
  EXPECT_EQ(head.length, got.length);  // the transport's Content-Length
}

TEST_F(StaticFileTest, MissingFileIs404WithHtmlPage) {
  StaticResponse response = get("/nope.txt");
  EXPECT_EQ(response.status, 404);
  EXPECT_FALSE(response.file);
  EXPECT_EQ(header(response, "Content-Type"), "text/html; charset=utf-8");
  EXPECT_THAT(response.body, HasSubstr("404 Not Found"));
  EXPECT_TRUE(response.send_body);

  StaticRequest head;
  head.method = "HEAD";
  StaticResponse head_response = get("/nope.txt", head);
  EXPECT_EQ(head_response.status, 404);
  EXPECT_FALSE(head_response.send_body);
}

TEST_F(StaticFileTest, FileWithTrailingSlashIs404) {
  write("a.txt", "x");
  EXPECT_EQ(get("/a.txt/").status, 404);
  EXPECT_EQ(get("/a.txt/more").status, 404);
}

TEST_F(StaticFileTest, BadPathsAre400And403) {
  write("a.txt", "x");
  EXPECT_EQ(get("/%zz").status, 400);
  EXPECT_EQ(get("/a%00.txt").status, 400);
  EXPECT_EQ(get("a.txt").status, 400);
  EXPECT_EQ(get("/../outside/x").status, 403);
  EXPECT_EQ(get("/%2e%2e/outside/x").status, 403);
  EXPECT_EQ(get("/..%2foutside").status, 403);
  EXPECT_EQ(get("/a\\b").status, 403);
}

TEST_F(StaticFileTest, SymlinkLeavingTheRootIs403) {
  std::ofstream(base_ / "outside" / "secret.txt") << "secret";
  std::filesystem::create_symlink(base_ / "outside" / "secret.txt", root_ / "abs");
  std::filesystem::create_symlink("../outside/secret.txt", root_ / "rel");
  std::filesystem::create_symlink("../outside", root_ / "dir");
  EXPECT_EQ(get("/abs").status, 403);
  EXPECT_EQ(get("/rel").status, 403);
  EXPECT_EQ(get("/dir/secret.txt").status, 403);
  EXPECT_EQ(get("/dir/").status, 403);
}

TEST_F(StaticFileTest, SymlinkInsideTheRootIsServed) {
  write("real/data.json", "{}");
  std::filesystem::create_symlink("real/data.json", root_ / "alias.json");
  StaticResponse response = get("/alias.json");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(body_of(response), "{}");
  EXPECT_EQ(header(response, "Content-Type"), "application/json");
}

TEST_F(StaticFileTest, FifoIs403) {
  ASSERT_EQ(::mkfifo((root_ / "pipe").c_str(), 0600), 0);
  EXPECT_EQ(get("/pipe").status, 403);
}

TEST_F(StaticFileTest, PercentEncodedNamesAreDecoded) {
  write("my file.txt", "spaced");
  StaticResponse response = get("/my%20file.txt");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(body_of(response), "spaced");
}

// ---- Directories ----

TEST_F(StaticFileTest, DirectoryWithoutSlashRedirects) {
  mkdir("docs");
  StaticResponse response = get("/docs");
  EXPECT_EQ(response.status, 301);
  EXPECT_EQ(header(response, "Location"), "/docs/");
  EXPECT_FALSE(response.file);
  EXPECT_THAT(response.body, HasSubstr("/docs/"));
}

TEST_F(StaticFileTest, RedirectKeepsTheQuery) {
  mkdir("docs");
  StaticRequest request;
  request.query = "a=1&b=2";
  EXPECT_EQ(header(get("/docs", request), "Location"), "/docs/?a=1&b=2");
  request.query = "x=\r\nSet-Cookie: y";
  EXPECT_EQ(header(get("/docs", request), "Location"), "/docs/?x=%0D%0ASet-Cookie:%20y");
}

TEST_F(StaticFileTest, RedirectIsBuiltFromTheNormalizedPath) {
  mkdir("evil.example");
  mkdir("my dir/sub");
  EXPECT_EQ(header(get("//evil.example"), "Location"), "/evil.example/");
  EXPECT_EQ(header(get("/my%20dir//./sub"), "Location"), "/my%20dir/sub/");
}

TEST_F(StaticFileTest, DirectoryServesFirstExistingDefaultDocument) {
  write("docs/index.htm", "second");
  StaticResponse response = get("/docs/");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(body_of(response), "second");
  EXPECT_EQ(header(response, "Content-Type"), "text/html; charset=utf-8");

  write("docs/index.html", "first");
  EXPECT_EQ(body_of(get("/docs/")), "first");
}

TEST_F(StaticFileTest, RootServesDefaultDocument) {
  write("index.html", "home");
  EXPECT_EQ(body_of(get("/")), "home");
}

TEST_F(StaticFileTest, DefaultDocumentThatIsADirectoryIsSkipped) {
  mkdir("docs/index.html");
  write("docs/index.htm", "real");
  EXPECT_EQ(body_of(get("/docs/")), "real");
}

TEST_F(StaticFileTest, DirectoryWithoutDefaultDocumentIs403WhenBrowsingIsOff) {
  write("docs/a.txt", "x");
  EXPECT_EQ(get("/docs/").status, 403);
  site_.default_documents = nullptr;
  write("index.html", "home");
  EXPECT_EQ(get("/").status, 403);
}

TEST_F(StaticFileTest, DirectoryListingWhenBrowsingIsOn) {
  site_.directory_browsing = true;
  write("pub/b.txt", "b");
  write("pub/<script>&.txt", "x");
  write("pub/.hidden", "h");
  write("pub/javascript:alert(1)", "j");
  mkdir("pub/z");
  mkdir("pub/a dir");
  mkdir("pub/.git");
  StaticResponse response = get("/pub/");
  EXPECT_EQ(response.status, 200);
  EXPECT_FALSE(response.file);
  EXPECT_EQ(header(response, "Content-Type"), "text/html; charset=utf-8");
  const std::string& html = response.body;
  EXPECT_THAT(html, HasSubstr("Index of /pub/"));
  EXPECT_THAT(html, HasSubstr("<a href=\"../\">../</a>"));
  EXPECT_THAT(html, HasSubstr("<a href=\"a%20dir/\">a dir/</a>"));
  EXPECT_THAT(html, HasSubstr("<a href=\"z/\">z/</a>"));
  EXPECT_THAT(html, HasSubstr("<a href=\"%3Cscript%3E%26.txt\">&lt;script&gt;&amp;.txt</a>"));
  EXPECT_THAT(html, HasSubstr("<a href=\"javascript%3Aalert%281%29\">"));
  EXPECT_THAT(html, HasSubstr("<a href=\"b.txt\">b.txt</a>"));
  EXPECT_THAT(html, Not(HasSubstr("hidden")));
  EXPECT_THAT(html, Not(HasSubstr(".git")));
  EXPECT_THAT(html, Not(HasSubstr("<script>")));
  // Directories first, each group sorted by name.
  std::size_t a_dir = html.find("a dir/");
  std::size_t z_dir = html.find("z/");
  std::size_t script = html.find("&lt;script");
  std::size_t b_file = html.find(">b.txt");
  std::size_t js = html.find(">javascript");
  EXPECT_LT(a_dir, z_dir);
  EXPECT_LT(z_dir, script);
  EXPECT_LT(script, b_file);
  EXPECT_LT(b_file, js);
}

TEST_F(StaticFileTest, RootListingHasNoParentLink) {
  site_.directory_browsing = true;
  write("a.txt", "a");
  StaticResponse response = get("/");
  EXPECT_EQ(response.status, 200);
  EXPECT_THAT(response.body, HasSubstr("Index of /<"));
  EXPECT_THAT(response.body, Not(HasSubstr("../")));
  EXPECT_THAT(response.body, HasSubstr("a.txt"));
}

TEST_F(StaticFileTest, DefaultDocumentWinsOverListing) {
  site_.directory_browsing = true;
  write("index.html", "home");
  EXPECT_EQ(body_of(get("/")), "home");
}

TEST_F(StaticFileTest, HeadListingKeepsBodyForLengthButDoesNotSendIt) {
  site_.directory_browsing = true;
  write("a.txt", "a");
  StaticRequest request;
  request.method = "HEAD";
  StaticResponse response = get("/", request);
  EXPECT_EQ(response.status, 200);
  EXPECT_FALSE(response.send_body);
  EXPECT_FALSE(response.body.empty());
}

// ---- Conditional requests ----

TEST_F(StaticFileTest, IfNoneMatchGives304) {
  write("a.txt", "hello");
  std::string etag = *header(get("/a.txt"), "ETag");
  for (const std::string& value : {etag, std::string("*"), "\"other\", " + etag, "W/" + etag,
                                   "\"x\",W/\"y\" ,  " + etag + " ", "\"a,b\", " + etag}) {
    StaticRequest request;
    request.if_none_match = value;
    StaticResponse response = get("/a.txt", request);
    EXPECT_EQ(response.status, 304) << value;
    EXPECT_FALSE(response.send_body);
    EXPECT_FALSE(response.file);
    EXPECT_EQ(header(response, "ETag"), etag);
    EXPECT_EQ(header(response, "Last-Modified"), std::string(kMtimeText));
    EXPECT_FALSE(header(response, "Content-Type"));
  }
}

TEST_F(StaticFileTest, IfNoneMatchMismatchGives200) {
  write("a.txt", "hello");
  std::string etag = *header(get("/a.txt"), "ETag");
  for (const std::string& value :
       {std::string("\"other\""), etag.substr(1), "garbage " + etag, std::string("\"a\", \"b\"")}) {
    StaticRequest request;
    request.if_none_match = value;
    EXPECT_EQ(get("/a.txt", request).status, 200) << value;
  }
}

TEST_F(StaticFileTest, IfModifiedSince) {
  write("a.txt", "hello");
  auto status_for = [&](std::string_view since) {
    StaticRequest request;
    request.if_modified_since = since;
    return get("/a.txt", request).status;
  };
  EXPECT_EQ(status_for(kMtimeText), 304);
  EXPECT_EQ(status_for("Sun, 06 Nov 1994 08:49:38 GMT"), 304);
  EXPECT_EQ(status_for("Thu, 01 Jan 2037 00:00:00 GMT"), 304);
  EXPECT_EQ(status_for("Sun, 06 Nov 1994 08:49:36 GMT"), 200);
  EXPECT_EQ(status_for("Sat, 05 Nov 1994 08:49:37 GMT"), 200);
  // Unparsable dates are ignored.
  EXPECT_EQ(status_for("yesterday"), 200);
  EXPECT_EQ(status_for("Sunday, 06-Nov-94 08:49:37 GMT"), 200);
  EXPECT_EQ(status_for("Sun, 31 Feb 2030 08:49:37 GMT"), 200);
  EXPECT_EQ(status_for("Sun, 06 Nov 2030 25:49:37 GMT"), 200);
  EXPECT_EQ(status_for("Sun, 06 Nov 2030 08:49:37 UTC"), 200);
}

TEST_F(StaticFileTest, IfNoneMatchTakesPrecedenceOverIfModifiedSince) {
  write("a.txt", "hello");
  std::string etag = *header(get("/a.txt"), "ETag");
  StaticRequest request;
  request.if_none_match = "\"stale\"";
  request.if_modified_since = "Thu, 01 Jan 2037 00:00:00 GMT";
  EXPECT_EQ(get("/a.txt", request).status, 200);
  request.if_none_match = etag;
  request.if_modified_since = "Thu, 01 Jan 1970 00:00:00 GMT";
  EXPECT_EQ(get("/a.txt", request).status, 304);
}

TEST_F(StaticFileTest, ConditionalBeatsRange) {
  write("a.txt", "hello");
  StaticRequest request = with_range("bytes=0-1");
  request.if_none_match = "*";
  EXPECT_EQ(get("/a.txt", request).status, 304);
}

// ---- Ranges ----

TEST_F(StaticFileTest, SingleRanges) {
  write("digits.txt", "0123456789");
  struct Case {
    std::string_view range;
    std::string_view content_range;
    std::string_view body;
  };
  for (const Case& c :
       {Case{"bytes=0-0", "bytes 0-0/10", "0"}, Case{"bytes=2-4", "bytes 2-4/10", "234"},
        Case{"bytes=7-", "bytes 7-9/10", "789"}, Case{"bytes=-3", "bytes 7-9/10", "789"},
        Case{"bytes=-1000", "bytes 0-9/10", "0123456789"},
        Case{"bytes=3-1000", "bytes 3-9/10", "3456789"}, Case{"bytes=9-9", "bytes 9-9/10", "9"},
        Case{"bytes=0-99999999999999999999999", "bytes 0-9/10", "0123456789"},
        Case{"BYTES=1-2", "bytes 1-2/10", "12"}, Case{" bytes=1-2 ", "bytes 1-2/10", "12"},
        Case{"bytes=1-2,", "bytes 1-2/10", "12"}, Case{"bytes=, 1-2", "bytes 1-2/10", "12"}}) {
    StaticResponse response = get("/digits.txt", with_range(c.range));
    EXPECT_EQ(response.status, 206) << c.range;
    EXPECT_EQ(header(response, "Content-Range"), std::string(c.content_range)) << c.range;
    EXPECT_EQ(body_of(response), c.body) << c.range;
    EXPECT_EQ(response.length, c.body.size()) << c.range;
    EXPECT_EQ(header(response, "Accept-Ranges"), "bytes");
    EXPECT_TRUE(response.send_body);
  }
}

TEST_F(StaticFileTest, UnsatisfiableRangesAre416) {
  write("digits.txt", "0123456789");
  for (std::string_view range :
       {"bytes=-0", "bytes=10-", "bytes=10-20", "bytes=99999999999999999999999-"}) {
    StaticResponse response = get("/digits.txt", with_range(range));
    EXPECT_EQ(response.status, 416) << range;
    EXPECT_EQ(header(response, "Content-Range"), "bytes */10") << range;
    EXPECT_FALSE(response.file);
    EXPECT_THAT(response.body, HasSubstr("416"));
  }
}

TEST_F(StaticFileTest, InvalidOrMultipleRangesAreIgnored) {
  write("digits.txt", "0123456789");
  for (std::string_view range :
       {"bytes=5-2", "bytes=0-1,3-4", "bytes=0-1, -2", "items=0-1", "bytes=abc", "bytes=1",
        "bytes=", "bytes=--1", "bytes=1-2-3", "bytes=-", "bytes 0-1", "bytes=0x1-2"}) {
    StaticResponse response = get("/digits.txt", with_range(range));
    EXPECT_EQ(response.status, 200) << range;
    EXPECT_FALSE(header(response, "Content-Range")) << range;
    EXPECT_EQ(body_of(response), "0123456789") << range;
  }
}

TEST_F(StaticFileTest, EmptyFile) {
  write("empty.txt", "");
  StaticResponse response = get("/empty.txt");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.length, 0u);
  EXPECT_EQ(body_of(response), "");
  EXPECT_EQ(header(response, "ETag"), fmt::format("\"{:x}-0\"", kMtime));
  for (std::string_view range : {"bytes=0-0", "bytes=0-", "bytes=-5", "bytes=-0"}) {
    StaticResponse ranged = get("/empty.txt", with_range(range));
    EXPECT_EQ(ranged.status, 416) << range;
    EXPECT_EQ(header(ranged, "Content-Range"), "bytes */0") << range;
  }
}

TEST_F(StaticFileTest, IfRangeHonoursTheRangeOnlyWhenItMatches) {
  write("digits.txt", "0123456789");
  std::string etag = *header(get("/digits.txt"), "ETag");
  EXPECT_EQ(get("/digits.txt", with_range("bytes=0-1", etag)).status, 206);
  EXPECT_EQ(get("/digits.txt", with_range("bytes=0-1", kMtimeText)).status, 206);
  EXPECT_EQ(get("/digits.txt", with_range("bytes=0-1", "\"other\"")).status, 200);
  EXPECT_EQ(get("/digits.txt", with_range("bytes=0-1", "W/" + etag)).status, 200);
  EXPECT_EQ(get("/digits.txt", with_range("bytes=0-1", "Sat, 05 Nov 1994 08:49:37 GMT")).status,
            200);
  EXPECT_EQ(get("/digits.txt", with_range("bytes=0-1", "nonsense")).status, 200);
  // A failed If-Range also drops an unsatisfiable range: the whole file is sent.
  EXPECT_EQ(get("/digits.txt", with_range("bytes=50-", "\"other\"")).status, 200);
}

TEST_F(StaticFileTest, HeadWithRange) {
  write("digits.txt", "0123456789");
  StaticRequest request = with_range("bytes=2-3");
  request.method = "HEAD";
  StaticResponse response = get("/digits.txt", request);
  EXPECT_EQ(response.status, 206);
  EXPECT_FALSE(response.send_body);
  EXPECT_EQ(response.length, 2u);
  EXPECT_EQ(header(response, "Content-Range"), "bytes 2-3/10");
}

TEST_F(StaticFileTest, LargeFileKeepsItsDescriptor) {
  std::string big(OpenFile::kInMemoryLimit + 1000, 'x');
  big[66000] = 'Y';
  write("big.bin", big);
  StaticResponse response = get("/big.bin");
  EXPECT_EQ(response.status, 200);
  ASSERT_TRUE(response.file);
  EXPECT_FALSE(response.file->in_memory());
  EXPECT_TRUE(response.file->contents.empty());
  EXPECT_TRUE(response.file->fd.valid());
  EXPECT_EQ(response.length, big.size());
  EXPECT_EQ(header(response, "Content-Type"), "application/octet-stream");

  StaticResponse ranged = get("/big.bin", with_range("bytes=65999-66001"));
  EXPECT_EQ(ranged.status, 206);
  EXPECT_EQ(body_of(ranged), "xYx");
}

TEST_F(StaticFileTest, SmallFileIsHeldInMemoryWithoutDescriptor) {
  std::string exact(OpenFile::kInMemoryLimit, 'z');
  write("exact.bin", exact);
  StaticResponse response = get("/exact.bin");
  ASSERT_TRUE(response.file);
  EXPECT_TRUE(response.file->in_memory());
  EXPECT_FALSE(response.file->fd.valid());
  EXPECT_EQ(response.file->contents, exact);
}

// ---- Cache ----

TEST_F(StaticFileTest, CacheSharesOneOpenFile) {
  write("a.txt", "hello");
  StaticResponse first = get("/a.txt");
  StaticResponse second = get("/a.txt");
  EXPECT_EQ(first.file.get(), second.file.get());
  EXPECT_EQ(handler_.cached_entries(), 1u);
}

TEST_F(StaticFileTest, ChangedFileIsSeenAfterRevalidationInterval) {
  write("a.txt", "version one");
  StaticResponse before = get("/a.txt");
  write("a.txt", "v2", kMtime + 5);
  // Within the interval the cached entry is used without looking at the disk.
  clock_.advance(std::chrono::milliseconds(999));
  EXPECT_EQ(body_of(get("/a.txt")), "version one");
  clock_.advance(std::chrono::milliseconds(1));
  StaticResponse after = get("/a.txt");
  EXPECT_EQ(body_of(after), "v2");
  EXPECT_NE(header(after, "ETag"), header(before, "ETag"));
  // The earlier response still holds its own snapshot.
  EXPECT_EQ(body_of(before), "version one");
}

TEST_F(StaticFileTest, SameSizeChangeIsSeenByMtime) {
  write("a.txt", "aaaa");
  StaticResponse before = get("/a.txt");
  write("a.txt", "bbbb");
  set_mtime("a.txt", kMtime, 500);  // only the nanoseconds differ
  clock_.advance(std::chrono::seconds(1));
  StaticResponse after = get("/a.txt");
  EXPECT_NE(before.file.get(), after.file.get());
  EXPECT_EQ(body_of(after), "bbbb");
}

TEST_F(StaticFileTest, ReplacedFileIsSeenByInode) {
  write("a.txt", "aaaa");
  StaticResponse before = get("/a.txt");
  write("new.txt", "bbbb");  // same size and mtime
  std::filesystem::rename(root_ / "new.txt", root_ / "a.txt");
  clock_.advance(std::chrono::seconds(1));
  StaticResponse after = get("/a.txt");
  EXPECT_NE(before.file.get(), after.file.get());
  EXPECT_EQ(body_of(after), "bbbb");
}

TEST_F(StaticFileTest, UnchangedFileKeepsItsEntryAfterRevalidation) {
  write("a.txt", "aaaa");
  StaticResponse before = get("/a.txt");
  clock_.advance(std::chrono::seconds(5));
  EXPECT_EQ(get("/a.txt").file.get(), before.file.get());
}

TEST_F(StaticFileTest, VanishedFileBecomes404AfterRevalidation) {
  write("a.txt", "aaaa");
  EXPECT_EQ(get("/a.txt").status, 200);
  std::filesystem::remove(root_ / "a.txt");
  EXPECT_EQ(get("/a.txt").status, 200);  // still cached
  clock_.advance(std::chrono::seconds(1));
  EXPECT_EQ(get("/a.txt").status, 404);
  EXPECT_EQ(handler_.cached_entries(), 0u);
}

TEST_F(StaticFileTest, DirectoryReplacedBySymlinkOutsideIsRefused) {
  write("d/secret.txt", "inside");
  std::ofstream(base_ / "outside" / "secret.txt") << "outside";
  EXPECT_EQ(body_of(get("/d/secret.txt")), "inside");
  std::filesystem::remove_all(root_ / "d");
  std::filesystem::create_symlink("../outside", root_ / "d");
  clock_.advance(std::chrono::seconds(1));
  EXPECT_EQ(get("/d/secret.txt").status, 403);
}

TEST_F(StaticFileTest, ZeroIntervalRevalidatesEveryTime) {
  StaticFileHandler handler(clock_, std::chrono::milliseconds(0));
  write("a.txt", "one");
  StaticRequest request;
  request.method = "GET";
  request.path = "/a.txt";
  EXPECT_EQ(body_of(handler.serve(site_, request)), "one");
  write("a.txt", "three", kMtime + 1);
  EXPECT_EQ(body_of(handler.serve(site_, request)), "three");
}

TEST_F(StaticFileTest, EvictsLeastRecentlyUsed) {
  StaticFileHandler handler(clock_, std::chrono::seconds(1), 2);
  write("a.txt", "a");
  write("b.txt", "b");
  write("c.txt", "c");
  auto serve = [&](std::string_view path) {
    StaticRequest request;
    request.method = "GET";
    request.path = path;
    return handler.serve(site_, request);
  };
  StaticResponse a = serve("/a.txt");
  StaticResponse b = serve("/b.txt");
  EXPECT_EQ(serve("/a.txt").file.get(), a.file.get());  // a is now the most recent
  serve("/c.txt");
  EXPECT_EQ(handler.cached_entries(), 2u);
  EXPECT_EQ(serve("/a.txt").file.get(), a.file.get());
  EXPECT_NE(serve("/b.txt").file.get(), b.file.get());  // b was evicted and re-opened
  EXPECT_EQ(handler.cached_entries(), 2u);
}

TEST_F(StaticFileTest, ZeroEntriesMeansNoCaching) {
  StaticFileHandler handler(clock_, std::chrono::seconds(1), 0);
  write("a.txt", "a");
  StaticRequest request;
  request.method = "GET";
  request.path = "/a.txt";
  StaticResponse first = handler.serve(site_, request);
  StaticResponse second = handler.serve(site_, request);
  EXPECT_EQ(first.status, 200);
  EXPECT_NE(first.file.get(), second.file.get());
  EXPECT_EQ(handler.cached_entries(), 0u);
}

TEST_F(StaticFileTest, ClearDropsEveryEntry) {
  write("a.txt", "a");
  StaticResponse before = get("/a.txt");
  handler_.clear();
  EXPECT_EQ(handler_.cached_entries(), 0u);
  EXPECT_NE(get("/a.txt").file.get(), before.file.get());
}

TEST_F(StaticFileTest, CacheKeySeparatesSites) {
  write("a.css", "x");
  MimeTypes custom(std::map<std::string, std::string>{{"css", "text/x-custom"}});
  StaticResponse first = get("/a.css");
  site_.cache_key = "site-b";
  site_.mime = &custom;
  StaticResponse second = get("/a.css");
  EXPECT_NE(first.file.get(), second.file.get());
  EXPECT_EQ(header(first, "Content-Type"), "text/css; charset=utf-8");
  EXPECT_EQ(header(second, "Content-Type"), "text/x-custom");
}

TEST_F(StaticFileTest, NewDefaultDocumentIsFoundWithoutWaiting) {
  write("docs/index.htm", "htm");
  EXPECT_EQ(body_of(get("/docs/")), "htm");
  write("docs/index.html", "html");
  EXPECT_EQ(body_of(get("/docs/")), "html");
}

}  // namespace
}  // namespace clusweb::http
