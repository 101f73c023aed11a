#include "pool/worker_socket.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

namespace clusweb::pool {
namespace {

class WorkerSocketTest : public ::testing::Test {
 protected:
  WorkerSocketTest() {
    std::string pattern = (std::filesystem::temp_directory_path() / "clusweb-sock-XXXXXX").string();
    dir_ = ::mkdtemp(pattern.data());
  }
  ~WorkerSocketTest() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  std::string dir_;
};

TEST_F(WorkerSocketTest, ListensOnAUnixSocketWithGroupMode) {
  std::string path = dir_ + "/shop-0-1.sock";
  ASSERT_EQ(::close(::creat(path.c_str(), 0600)), 0);  // a stale file is replaced
  auto fd = listen_unix(path, 16, ::getgid());
  ASSERT_TRUE(fd.ok()) << fd.error().describe();
  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_TRUE(S_ISSOCK(info.st_mode));
  EXPECT_EQ(info.st_mode & 0777, 0660u);
  EXPECT_EQ(info.st_gid, ::getgid());

  // The kernel queues a connection before anyone accepts.
  int client = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.c_str(), path.size());
  EXPECT_EQ(::connect(client, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ::close(client);
}

TEST_F(WorkerSocketTest, RejectsPathsTooLongForSunPath) {
  auto fd = listen_unix(dir_ + "/" + std::string(200, 'x'), 16, std::nullopt);
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.error().sys_errno, ENAMETOOLONG);
}

TEST(PickFreeLoopbackPortTest, ReturnsABindablePort) {
  auto port = pick_free_loopback_port();
  ASSERT_TRUE(port.ok()) << port.error().describe();
  EXPECT_GT(*port, 0);
}

}  // namespace
}  // namespace clusweb::pool
