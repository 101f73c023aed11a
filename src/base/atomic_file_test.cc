#include "base/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "base/testing/crashing_file_system.h"

namespace clusweb {
namespace {

class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/atomic-file-test.XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    path_ = dir_ / "state";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string raw() {
    std::ifstream in(path_, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  void overwrite(const std::string& data) {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out << data;
  }

  std::filesystem::path dir_;
  std::filesystem::path path_;
};

TEST_F(AtomicFileTest, Crc32MatchesTheStandardCheckValue) {
  EXPECT_EQ(crc32("123456789"), 0xCBF43926u);
  EXPECT_EQ(crc32(""), 0u);
}

TEST_F(AtomicFileTest, RoundTripsAnyBytes) {
  std::string payload("a\0b\nc\xff", 6);
  ASSERT_TRUE(write_file_atomically(os_file_system(), path_, payload));
  auto read = read_file_checked(os_file_system(), path_);
  ASSERT_TRUE(read) << read.error().describe();
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ(**read, payload);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "state.tmp"));
}

TEST_F(AtomicFileTest, ReplaceFileWritesExactlyTheContentsWithTheMode) {
  overwrite("old contents that are longer");
  ASSERT_TRUE(replace_file(os_file_system(), path_, "-----BEGIN X-----\n", 0600));
  EXPECT_EQ(raw(), "-----BEGIN X-----\n");
  struct stat status {};
  ASSERT_EQ(::stat(path_.c_str(), &status), 0);
  EXPECT_EQ(status.st_mode & 0777, 0600U);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "state.tmp"));
}

TEST_F(AtomicFileTest, MissingFileIsNoState) {
  auto read = read_file_checked(os_file_system(), path_);
  ASSERT_TRUE(read);
  EXPECT_FALSE(read->has_value());
}

TEST_F(AtomicFileTest, DamageIsReportedNotTakenAsEmpty) {
  ASSERT_TRUE(write_file_atomically(os_file_system(), path_, "the payload"));
  std::string good = raw();

  std::string flipped = good;
  flipped.back() ^= 1;
  overwrite(flipped);
  auto read = read_file_checked(os_file_system(), path_);
  ASSERT_FALSE(read);
  EXPECT_NE(read.error().describe().find("checksum mismatch"), std::string::npos);
  EXPECT_NE(read.error().describe().find(path_.string()), std::string::npos);

  overwrite(good.substr(0, good.size() - 3));
  read = read_file_checked(os_file_system(), path_);
  ASSERT_FALSE(read);
  EXPECT_NE(read.error().describe().find("bytes of payload"), std::string::npos);

  overwrite("something else\n");
  EXPECT_FALSE(read_file_checked(os_file_system(), path_));
}

TEST_F(AtomicFileTest, ACrashAtAnyStepLeavesTheOldOrTheNewContents) {
  testing::CrashingFileSystem fs(os_file_system());
  ASSERT_TRUE(write_file_atomically(fs, path_, "old contents"));
  const int steps = fs.steps();
  ASSERT_EQ(steps, 5);  // create, write, sync, rename, sync the directory
  for (int crash = 1; crash <= steps; ++crash) {
    SCOPED_TRACE(crash);
    ASSERT_TRUE(write_file_atomically(os_file_system(), path_, "old contents"));
    fs.crash_at(crash);
    EXPECT_FALSE(write_file_atomically(fs, path_, "new contents, longer than the old"));
    EXPECT_TRUE(fs.crashed());
    auto read = read_file_checked(os_file_system(), path_);
    ASSERT_TRUE(read) << read.error().describe();
    ASSERT_TRUE(read->has_value());
    if (crash <= 4) {  // up to the rename, which the crash prevents
      EXPECT_EQ(**read, "old contents");
    } else {
      EXPECT_EQ(**read, "new contents, longer than the old");
    }
    // A later save succeeds over whatever the crash left behind.
    fs.crash_at(0);
    ASSERT_TRUE(write_file_atomically(fs, path_, "after"));
    EXPECT_EQ(**read_file_checked(os_file_system(), path_), "after");
  }
}

}  // namespace
}  // namespace clusweb
