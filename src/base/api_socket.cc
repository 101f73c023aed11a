#include "base/api_socket.h"

#include <fmt/format.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

namespace clusweb {

using local = boost::asio::local::stream_protocol;

Status listen_api_socket(local::acceptor& acceptor, const std::string& path,
                         std::string_view what) {
  ::unlink(path.c_str());
  boost::system::error_code ec;
  acceptor.open(local(), ec);
  if (!ec) acceptor.bind(local::endpoint(path), ec);
  if (!ec) acceptor.listen(64, ec);
  if (ec) return Error{fmt::format("{}: {}", what, ec.message()), path, ec.value()};
  gid_t group = ::getegid();
  if (struct group* clusweb_group = ::getgrnam("clusweb")) group = clusweb_group->gr_gid;
  if (::chown(path.c_str(), ::geteuid(), group) != 0 || ::chmod(path.c_str(), 0660) != 0) {
    return errno_error("chmod", path);
  }
  return {};
}

void close_api_socket(local::acceptor& acceptor, const std::string& path) {
  if (!acceptor.is_open()) return;
  boost::system::error_code ignored;
  acceptor.close(ignored);
  if (!path.empty()) ::unlink(path.c_str());
}

ApiTarget parse_api_target(std::string_view target) {
  ApiTarget out;
  std::string_view path = target;
  if (auto question = target.find('?'); question != std::string_view::npos) {
    path = target.substr(0, question);
    std::string_view rest = target.substr(question + 1);
    while (!rest.empty()) {
      const auto amp = rest.find('&');
      const std::string_view pair = rest.substr(0, amp);
      const auto eq = pair.find('=');
      if (!pair.empty()) {
        out.query[std::string(pair.substr(0, eq))] =
            eq == std::string_view::npos ? "" : std::string(pair.substr(eq + 1));
      }
      if (amp == std::string_view::npos) break;
      rest = rest.substr(amp + 1);
    }
  }
  std::size_t start = 0;
  while (start <= path.size()) {
    const auto slash = path.find('/', start);
    const auto piece = path.substr(start, slash == std::string_view::npos ? slash : slash - start);
    if (!piece.empty()) out.parts.emplace_back(piece);
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

}  // namespace clusweb
