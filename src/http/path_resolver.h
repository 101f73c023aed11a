#pragma once

#include <string>
#include <string_view>

#include "base/result.h"
#include "base/unique_fd.h"

namespace clusweb::http {

// Turning a request path into a file beneath a site root, with no way out of the root: not by
// "..", not by encoded forms of it, not by symlinks. Plain C++ and syscalls, so a fuzzer can
// drive it.

enum class PathVerdict { kOk, kBadRequest, kForbidden };

struct ResolvedPath {
  PathVerdict verdict = PathVerdict::kBadRequest;
  // Decoded, relative to the site root, segments joined by single '/', no leading or trailing
  // '/'; "" is the root itself. Empty unless verdict is kOk.
  std::string relative;
  // The request named a directory explicitly: the path ended in '/' (or "/.").
  bool trailing_slash = false;
};

// `target_path` is the request-target's path part (no query), still percent-encoded, and must
// start with '/'. Decodes %XX exactly once; a malformed escape, %00 or a raw NUL is
// kBadRequest. After decoding, a backslash or any ".." segment is kForbidden (so %2e%2e, %2E.,
// ..%2f and friends are caught); empty and "." segments are dropped.
ResolvedPath resolve_request_path(std::string_view target_path);

// Percent-encodes every byte except RFC 3986 unreserved characters (A-Z a-z 0-9 - . _ ~) and
// '/': the inverse of the decoding above, for Location headers and links.
std::string percent_encode_path(std::string_view decoded);

// Opens `relative` beneath the directory `root_fd` (an O_PATH fd is fine) so that no "..",
// absolute path or symlink can lead outside the root: openat2 with RESOLVE_BENEATH |
// RESOLVE_NO_MAGICLINKS (symlinks that stay inside the root are followed). Where openat2 is
// unavailable (ENOSYS, or EPERM from an old seccomp filter) falls back to
// open_beneath_by_walk, which is stricter. "" opens the root itself.
//
// Files are opened O_RDONLY|O_CLOEXEC|O_NOCTTY|O_NONBLOCK: a FIFO or terminal under the root
// can neither block the caller nor become its controlling tty (O_NONBLOCK means nothing for
// regular files); the caller checks the file type with fstat. `directory` opens
// O_RDONLY|O_CLOEXEC|O_DIRECTORY instead. On failure the Error's sys_errno says why:
// ENOENT/ENOTDIR = not there (404), EXDEV/ELOOP/EACCES = refused (403).
Result<UniqueFd> open_beneath(int root_fd, std::string_view relative, bool directory = false);

// The fallback of open_beneath, public for tests: walks `relative` one component at a time with
// O_NOFOLLOW, so every symlink is refused (ELOOP), even one that would stay inside the root.
// ".." or a leading '/' fails with EXDEV.
Result<UniqueFd> open_beneath_by_walk(int root_fd, std::string_view relative,
                                      bool directory = false);

}  // namespace clusweb::http
