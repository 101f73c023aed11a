#include "http/path_resolver.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace clusweb::http {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

ResolvedPath verdict_only(PathVerdict verdict) { return ResolvedPath{verdict, {}, false}; }

int open_flags(bool directory) {
  if (directory) return O_RDONLY | O_CLOEXEC | O_DIRECTORY;
  return O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
}

Error open_error(std::string_view call, std::string_view relative, int err) {
  return errno_error(call, relative.empty() ? std::string_view(".") : relative, err);
}

}  // namespace

ResolvedPath resolve_request_path(std::string_view target_path) {
  if (target_path.empty() || target_path.front() != '/') {
    return verdict_only(PathVerdict::kBadRequest);
  }

  // Decode first and judge the decoded bytes, so every spelling of ".", ".." and "/" is seen
  // in its final form. Decoding once only: "%252e" stays the literal name "%2e".
  std::string decoded;
  decoded.reserve(target_path.size());
  for (std::size_t i = 0; i < target_path.size(); ++i) {
    char c = target_path[i];
    if (c == '%') {
      if (i + 2 >= target_path.size()) return verdict_only(PathVerdict::kBadRequest);
      int high = hex_value(target_path[i + 1]);
      int low = hex_value(target_path[i + 2]);
      if (high < 0 || low < 0) return verdict_only(PathVerdict::kBadRequest);
      c = static_cast<char>(high * 16 + low);
      i += 2;
    }
    if (c == '\0') return verdict_only(PathVerdict::kBadRequest);
    decoded.push_back(c);
  }
  // A backslash is a separator to some filesystems and clients; never a name here.
  if (decoded.find('\\') != std::string::npos) return verdict_only(PathVerdict::kForbidden);

  ResolvedPath out{PathVerdict::kOk, {}, false};
  out.relative.reserve(decoded.size());
  bool names_directory = true;
  std::size_t start = 0;
  while (start <= decoded.size()) {
    std::size_t end = decoded.find('/', start);
    if (end == std::string::npos) end = decoded.size();
    std::string_view segment(decoded.data() + start, end - start);
    start = end + 1;
    if (segment.empty() || segment == ".") {
      names_directory = true;
      continue;
    }
    // Even a ".." that would stay inside the root is refused: legitimate links never need it,
    // and refusing it outright leaves nothing to get wrong.
    if (segment == "..") return verdict_only(PathVerdict::kForbidden);
    if (!out.relative.empty()) out.relative.push_back('/');
    out.relative.append(segment);
    names_directory = false;
  }
  out.trailing_slash = names_directory;
  return out;
}

std::string percent_encode_path(std::string_view decoded) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(decoded.size());
  for (char c : decoded) {
    auto byte = static_cast<unsigned char>(c);
    if (is_unreserved(byte) || c == '/') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0xF]);
    }
  }
  return out;
}

Result<UniqueFd> open_beneath(int root_fd, std::string_view relative, bool directory) {
  std::string path = relative.empty() ? std::string(".") : std::string(relative);
  open_how how{};
  how.flags = static_cast<std::uint64_t>(open_flags(directory));
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  // EAGAIN means the kernel saw a concurrent rename or mount and could not prove the lookup
  // stayed beneath the root; it asks for a retry. Bounded so an attacker churning renames
  // cannot hold us here.
  constexpr int kAttempts = 8;
  int err = 0;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    long fd = ::syscall(SYS_openat2, root_fd, path.c_str(), &how, sizeof(how));
    if (fd >= 0) return UniqueFd(static_cast<int>(fd));
    err = errno;
    if (err != EINTR && err != EAGAIN) break;
  }
  // Kernels before 5.6 say ENOSYS; some container seccomp profiles answer EPERM for syscalls
  // they do not know. Our flags give EPERM no other meaning, and the walk is stricter anyway.
  if (err == ENOSYS || err == EPERM) return open_beneath_by_walk(root_fd, relative, directory);
  return open_error("openat2", relative, err);
}

Result<UniqueFd> open_beneath_by_walk(int root_fd, std::string_view relative, bool directory) {
  if (!relative.empty() && relative.front() == '/') return open_error("open", relative, EXDEV);

  UniqueFd current;  // the directory reached so far; invalid = still the root
  std::string last = ".";
  std::size_t start = 0;
  while (start <= relative.size()) {
    std::size_t end = relative.find('/', start);
    if (end == std::string_view::npos) end = relative.size();
    std::string_view component = relative.substr(start, end - start);
    start = end + 1;
    if (component.empty() || component == ".") continue;
    if (component == "..") return open_error("open", relative, EXDEV);
    if (last != ".") {
      // Step into the previous component. O_PATH|O_NOFOLLOW opens a symlink as itself rather
      // than following it, and fstat of that fd tells us what we really hold.
      int dir_fd = current ? current.get() : root_fd;
      int fd = ::openat(dir_fd, last.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) return open_error("openat", relative, errno);
      UniqueFd next(fd);
      struct stat st {};
      if (::fstat(next.get(), &st) != 0) return open_error("fstat", relative, errno);
      if (S_ISLNK(st.st_mode)) return open_error("openat", relative, ELOOP);
      if (!S_ISDIR(st.st_mode)) return open_error("openat", relative, ENOTDIR);
      current = std::move(next);
    }
    last.assign(component);
  }
  int dir_fd = current ? current.get() : root_fd;
  int fd;
  do {
    fd = ::openat(dir_fd, last.c_str(), open_flags(directory) | O_NOFOLLOW);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return open_error("openat", relative, errno);
  return UniqueFd(fd);
}

}  // namespace clusweb::http
