#include "pool/worker_socket.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace clusweb::pool {

Result<UniqueFd> listen_unix(const std::string& path, int backlog, std::optional<gid_t> group) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(address.sun_path)) {
    return Error{"socket path is empty or too long for a unix socket", path, ENAMETOOLONG};
  }
  std::memcpy(address.sun_path, path.data(), path.size());

  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return errno_error("socket", path);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return errno_error("unlink", path);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    return errno_error("bind", path);
  }
  // Connecting needs write permission on the file: owner and group only.
  if (::chmod(path.c_str(), 0660) != 0) return errno_error("chmod", path);
  if (group && ::chown(path.c_str(), static_cast<uid_t>(-1), *group) != 0) {
    return errno_error("chown", path);
  }
  if (::listen(fd.get(), backlog) != 0) return errno_error("listen", path);
  return fd;
}

Result<std::uint16_t> pick_free_loopback_port() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return errno_error("socket", "127.0.0.1:0");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    return errno_error("bind", "127.0.0.1:0");
  }
  socklen_t length = sizeof(address);
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return errno_error("getsockname", "127.0.0.1:0");
  }
  return static_cast<std::uint16_t>(ntohs(address.sin_port));
}

}  // namespace clusweb::pool
