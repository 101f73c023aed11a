#include "http/path_resolver.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace clusweb::http {
namespace {

using ::testing::AnyOf;

ResolvedPath ok(std::string relative, bool trailing_slash) {
  return ResolvedPath{PathVerdict::kOk, std::move(relative), trailing_slash};
}

MATCHER_P(Resolves, expected, "") {
  return arg.verdict == expected.verdict && arg.relative == expected.relative &&
         arg.trailing_slash == expected.trailing_slash;
}

MATCHER_P(HasVerdict, verdict, "") { return arg.verdict == verdict; }

TEST(ResolveRequestPathTest, PlainPaths) {
  EXPECT_THAT(resolve_request_path("/"), Resolves(ok("", true)));
  EXPECT_THAT(resolve_request_path("/index.html"), Resolves(ok("index.html", false)));
  EXPECT_THAT(resolve_request_path("/a/b/c.txt"), Resolves(ok("a/b/c.txt", false)));
  EXPECT_THAT(resolve_request_path("/a/b/"), Resolves(ok("a/b", true)));
}

TEST(ResolveRequestPathTest, CollapsesEmptyAndDotSegments) {
  EXPECT_THAT(resolve_request_path("//a///b"), Resolves(ok("a/b", false)));
  EXPECT_THAT(resolve_request_path("/./a/./b"), Resolves(ok("a/b", false)));
  EXPECT_THAT(resolve_request_path("/a/."), Resolves(ok("a", true)));
  EXPECT_THAT(resolve_request_path("/."), Resolves(ok("", true)));
  EXPECT_THAT(resolve_request_path("/a//"), Resolves(ok("a", true)));
  EXPECT_THAT(resolve_request_path("/%2e/a"), Resolves(ok("a", false)));
}

TEST(ResolveRequestPathTest, DecodesOnce) {
  EXPECT_THAT(resolve_request_path("/a%20b"), Resolves(ok("a b", false)));
  EXPECT_THAT(resolve_request_path("/%41%62c"), Resolves(ok("Abc", false)));
  EXPECT_THAT(resolve_request_path("/a%2Fb%2f"), Resolves(ok("a/b", true)));
  EXPECT_THAT(resolve_request_path("/%C3%A9t%C3%A9"), Resolves(ok("\xC3\xA9t\xC3\xA9", false)));
  // Double encoding is a literal name, not a second decoding.
  EXPECT_THAT(resolve_request_path("/%252e%252e/x"), Resolves(ok("%2e%2e/x", false)));
  EXPECT_THAT(resolve_request_path("/a+b"), Resolves(ok("a+b", false)));
}

TEST(ResolveRequestPathTest, DotsThatAreNames) {
  EXPECT_THAT(resolve_request_path("/..."), Resolves(ok("...", false)));
  EXPECT_THAT(resolve_request_path("/..a/a.."), Resolves(ok("..a/a..", false)));
  EXPECT_THAT(resolve_request_path("/.well-known/x"), Resolves(ok(".well-known/x", false)));
}

TEST(ResolveRequestPathTest, MalformedIsBadRequest) {
  for (std::string path :
       {"", "a", "index.html", "*", "/%", "/%4", "/a%", "/%zz", "/%G0", "/%0g", "/%%41"}) {
    EXPECT_THAT(resolve_request_path(path), HasVerdict(PathVerdict::kBadRequest)) << path;
  }
}

TEST(ResolveRequestPathTest, NulIsBadRequest) {
  EXPECT_THAT(resolve_request_path("/a%00b"), HasVerdict(PathVerdict::kBadRequest));
  EXPECT_THAT(resolve_request_path("/%00"), HasVerdict(PathVerdict::kBadRequest));
  EXPECT_THAT(resolve_request_path(std::string_view("/a\0b", 4)),
              HasVerdict(PathVerdict::kBadRequest));
}

TEST(ResolveRequestPathTest, TraversalIsForbiddenInEveryEncoding) {
  for (std::string path : {"/..", "/../", "/../etc/passwd", "/a/..", "/a/../b", "/a/b/../../..",
                           "/%2e%2e", "/%2E%2E/x", "/%2e./x", "/.%2E/x", "/..%2f", "/..%2Fetc",
                           "/a%2f..%2fb", "/a/%2e%2e%2f%2e%2e/x", "//..//x", "/./../x"}) {
    EXPECT_THAT(resolve_request_path(path), HasVerdict(PathVerdict::kForbidden)) << path;
  }
}

TEST(ResolveRequestPathTest, BackslashIsForbidden) {
  for (std::string path : {"/a\\b", "/%5c", "/%5C..%5Cx", "/..\\x", "/x%5c"}) {
    EXPECT_THAT(resolve_request_path(path), HasVerdict(PathVerdict::kForbidden)) << path;
  }
}

TEST(PercentEncodePathTest, KeepsUnreservedAndSlash) {
  EXPECT_EQ(percent_encode_path("a/b-c_d.e~f/09"), "a/b-c_d.e~f/09");
  EXPECT_EQ(percent_encode_path("a b"), "a%20b");
  EXPECT_EQ(percent_encode_path("<x>\"&'?#%:"), "%3Cx%3E%22%26%27%3F%23%25%3A");
  EXPECT_EQ(percent_encode_path("\xC3\xA9"), "%C3%A9");
  EXPECT_EQ(resolve_request_path("/" + percent_encode_path("odd name?#%.txt")).relative,
            "odd name?#%.txt");
}

// A tree in a fresh temporary directory:
//   root/file.txt, root/sub/inner.txt, root/fifo,
//   root/link_inside -> sub/inner.txt, root/link_abs_out -> <tmp>/outside/secret.txt,
//   root/link_rel_out -> ../outside/secret.txt, root/dir_out -> ../outside,
//   outside/secret.txt
class OpenBeneathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "clusweb-path-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    base_ = pattern;
    root_ = base_ / "root";
    std::filesystem::path outside = base_ / "outside";
    std::filesystem::create_directories(root_ / "sub");
    std::filesystem::create_directories(outside);
    write(root_ / "file.txt", "hello");
    write(root_ / "sub" / "inner.txt", "inner");
    write(outside / "secret.txt", "secret");
    std::filesystem::create_symlink("sub/inner.txt", root_ / "link_inside");
    std::filesystem::create_symlink(outside / "secret.txt", root_ / "link_abs_out");
    std::filesystem::create_symlink("../outside/secret.txt", root_ / "link_rel_out");
    std::filesystem::create_symlink("../outside", root_ / "dir_out");
    ASSERT_EQ(::mkfifo((root_ / "fifo").c_str(), 0600), 0);
    root_fd_ = UniqueFd(::open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(root_fd_.valid());
  }

  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(base_, ignored);
  }

  static void write(const std::filesystem::path& path, const std::string& text) {
    std::ofstream(path) << text;
  }

  static std::string read_all(const UniqueFd& fd) {
    std::string out;
    char buffer[256];
    ssize_t n;
    while ((n = ::read(fd.get(), buffer, sizeof(buffer))) > 0) out.append(buffer, n);
    return out;
  }

  static bool is_directory(const UniqueFd& fd) {
    struct stat st {};
    return ::fstat(fd.get(), &st) == 0 && S_ISDIR(st.st_mode);
  }

  std::filesystem::path base_;
  std::filesystem::path root_;
  UniqueFd root_fd_;
};

TEST_F(OpenBeneathTest, OpensFilesInsideTheRoot) {
  auto file = open_beneath(root_fd_.get(), "file.txt");
  ASSERT_TRUE(file.ok()) << file.error().describe();
  EXPECT_EQ(read_all(*file), "hello");
  auto inner = open_beneath(root_fd_.get(), "sub/inner.txt");
  ASSERT_TRUE(inner.ok());
  EXPECT_EQ(read_all(*inner), "inner");
}

TEST_F(OpenBeneathTest, EmptyPathOpensTheRoot) {
  auto root = open_beneath(root_fd_.get(), "", /*directory=*/true);
  ASSERT_TRUE(root.ok()) << root.error().describe();
  EXPECT_TRUE(is_directory(*root));
}

TEST_F(OpenBeneathTest, FollowsSymlinkThatStaysInside) {
  auto file = open_beneath(root_fd_.get(), "link_inside");
  ASSERT_TRUE(file.ok()) << file.error().describe();
  EXPECT_EQ(read_all(*file), "inner");
}

TEST_F(OpenBeneathTest, RefusesSymlinksLeadingOutside) {
  for (std::string path : {"link_abs_out", "link_rel_out", "dir_out/secret.txt"}) {
    auto file = open_beneath(root_fd_.get(), path);
    ASSERT_FALSE(file.ok()) << path;
    EXPECT_THAT(file.error().sys_errno, AnyOf(EXDEV, ELOOP)) << path;
  }
}

TEST_F(OpenBeneathTest, RefusesDotDotAndAbsolutePaths) {
  for (const std::string& path :
       {std::string("../outside/secret.txt"), std::string("sub/../../outside/secret.txt"),
        (base_ / "outside" / "secret.txt").string()}) {
    auto file = open_beneath(root_fd_.get(), path);
    ASSERT_FALSE(file.ok()) << path;
    EXPECT_EQ(file.error().sys_errno, EXDEV) << path;
  }
}

TEST_F(OpenBeneathTest, ReportsMissingAndNotDirectory) {
  auto missing = open_beneath(root_fd_.get(), "nope.txt");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().sys_errno, ENOENT);
  auto through_file = open_beneath(root_fd_.get(), "file.txt/x");
  ASSERT_FALSE(through_file.ok());
  EXPECT_EQ(through_file.error().sys_errno, ENOTDIR);
  auto file_as_directory = open_beneath(root_fd_.get(), "file.txt", /*directory=*/true);
  ASSERT_FALSE(file_as_directory.ok());
  EXPECT_EQ(file_as_directory.error().sys_errno, ENOTDIR);
}

TEST_F(OpenBeneathTest, OpensDirectories) {
  auto sub = open_beneath(root_fd_.get(), "sub", /*directory=*/true);
  ASSERT_TRUE(sub.ok());
  EXPECT_TRUE(is_directory(*sub));
}

TEST_F(OpenBeneathTest, FifoDoesNotBlock) {
  // With no writer, a blocking open would hang here forever.
  auto fifo = open_beneath(root_fd_.get(), "fifo");
  ASSERT_TRUE(fifo.ok()) << fifo.error().describe();
  struct stat st {};
  ASSERT_EQ(::fstat(fifo->get(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
}

TEST_F(OpenBeneathTest, WalkOpensPlainPaths) {
  auto file = open_beneath_by_walk(root_fd_.get(), "sub/inner.txt");
  ASSERT_TRUE(file.ok()) << file.error().describe();
  EXPECT_EQ(read_all(*file), "inner");
  auto root = open_beneath_by_walk(root_fd_.get(), "", /*directory=*/true);
  ASSERT_TRUE(root.ok());
  EXPECT_TRUE(is_directory(*root));
  auto sub = open_beneath_by_walk(root_fd_.get(), "./sub//", /*directory=*/true);
  ASSERT_TRUE(sub.ok());
  EXPECT_TRUE(is_directory(*sub));
  auto fifo = open_beneath_by_walk(root_fd_.get(), "fifo");
  EXPECT_TRUE(fifo.ok());
}

TEST_F(OpenBeneathTest, WalkRefusesEverySymlink) {
  for (std::string path : {"link_inside", "link_abs_out", "link_rel_out", "dir_out/secret.txt"}) {
    auto file = open_beneath_by_walk(root_fd_.get(), path);
    ASSERT_FALSE(file.ok()) << path;
    EXPECT_EQ(file.error().sys_errno, ELOOP) << path;
  }
  auto as_directory = open_beneath_by_walk(root_fd_.get(), "dir_out", /*directory=*/true);
  ASSERT_FALSE(as_directory.ok());
  EXPECT_THAT(as_directory.error().sys_errno, AnyOf(ELOOP, ENOTDIR));
}

TEST_F(OpenBeneathTest, WalkRefusesDotDotAndAbsolutePaths) {
  for (std::string path : {"..", "../outside/secret.txt", "sub/../file.txt", "/etc/passwd"}) {
    auto file = open_beneath_by_walk(root_fd_.get(), path);
    ASSERT_FALSE(file.ok()) << path;
    EXPECT_EQ(file.error().sys_errno, EXDEV) << path;
  }
}

TEST_F(OpenBeneathTest, WalkReportsMissingAndNotDirectory) {
  auto missing = open_beneath_by_walk(root_fd_.get(), "sub/nope.txt");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().sys_errno, ENOENT);
  auto missing_parent = open_beneath_by_walk(root_fd_.get(), "nope/x.txt");
  ASSERT_FALSE(missing_parent.ok());
  EXPECT_EQ(missing_parent.error().sys_errno, ENOENT);
  auto through_file = open_beneath_by_walk(root_fd_.get(), "file.txt/x");
  ASSERT_FALSE(through_file.ok());
  EXPECT_EQ(through_file.error().sys_errno, ENOTDIR);
  auto file_as_directory = open_beneath_by_walk(root_fd_.get(), "file.txt", /*directory=*/true);
  ASSERT_FALSE(file_as_directory.ok());
  EXPECT_EQ(file_as_directory.error().sys_errno, ENOTDIR);
}

}  // namespace
}  // namespace clusweb::http
