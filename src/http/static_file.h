#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/unique_fd.h"
#include "http/mime_types.h"

namespace clusweb::http {

// What to answer for a static-content request, decided without sockets: method, path safety,
// default documents, directory listings, validators, conditional requests and ranges. The
// transport turns a StaticResponse into bytes.

struct StaticRequest {
  std::string_view method;  // "GET" and "HEAD" are served; anything else is 405
  std::string_view path;    // request-target path, still percent-encoded, no query
  std::string_view query;   // without '?'; kept for directory redirects
  // Header values; empty when absent.
  std::string_view if_none_match;
  std::string_view if_modified_since;
  std::string_view range;
  std::string_view if_range;
};

struct StaticSite {
  int root_fd = -1;            // O_PATH|O_DIRECTORY fd of the site root
  std::string_view cache_key;  // identifies root and MIME table, e.g. site name + root path
  const std::vector<std::string>* default_documents = nullptr;  // tried in order; may be null
  bool directory_browsing = false;
  const MimeTypes* mime = nullptr;  // required
};

// An open regular file, shared by the cache and in-flight responses; immutable once built.
// Files up to kInMemoryLimit are read whole into `contents` and their fd is closed at once (so
// a full cache does not pin thousands of descriptors); larger files keep `fd` open while any
// reference lives. Several responses may share the fd: read it only at explicit offsets
// (pread, sendfile with an offset pointer), never through the file position.
struct OpenFile {
  static constexpr std::uint64_t kInMemoryLimit = std::uint64_t{64} * 1024;

  UniqueFd fd;  // valid only when !in_memory()
  std::uint64_t size = 0;
  std::int64_t mtime_sec = 0;
  std::string etag;           // strong: "<mtime hex>-<size hex>" with the quotes
  std::string last_modified;  // IMF-fixdate
  std::string content_type;
  std::string contents;  // the whole file when in_memory()

  bool in_memory() const { return size <= kInMemoryLimit; }
};

struct StaticResponse {
  int status = 200;
  // Content-Type, ETag, Last-Modified, Accept-Ranges, Content-Range, Location, Allow.
  // Never Date, Server, Connection or Content-Length: the transport adds those, with
  // Content-Length = `length` when `file` is set, else body.size() — except for 304, which
  // carries neither Content-Length nor body.
  std::vector<std::pair<std::string, std::string>> headers;
  // The body is bytes [offset, offset + length) of this file (from file->contents when
  // file->in_memory(), else from file->fd) ...
  std::shared_ptr<const OpenFile> file;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  // ... or, when !file, this in-memory body (error pages, listings, redirects).
  std::string body;
  bool send_body = true;  // false for HEAD and 304; the headers stay those of GET
};

// Serves static requests for any number of sites through one cache of open files, keyed by
// (site.cache_key, relative path). A cached entry older than `revalidate_after` on `clock` is
// checked with fstatat before use and re-opened when its inode, mtime or size changed or it
// vanished. At most `max_entries` entries (0 = no caching); the least recently used go first.
// One per serving thread: not thread-safe. `clock` must outlive the handler.
class StaticFileHandler {
 public:
  explicit StaticFileHandler(const Clock& clock,
                             std::chrono::milliseconds revalidate_after = std::chrono::seconds(1),
                             std::size_t max_entries = 10000);

  StaticResponse serve(const StaticSite& site, const StaticRequest& request);

  // Drops every cached entry, e.g. after a configuration reload. In-flight responses keep
  // their files.
  void clear();

  std::size_t cached_entries() const { return entries_.size(); }

 private:
  enum class Kind { kRegular, kDirectory };

  // What a cached path was when opened, to notice that it changed since.
  struct Identity {
    std::uint64_t device = 0;
    std::uint64_t inode = 0;
    std::uint32_t type = 0;  // S_IFMT bits
    std::int64_t mtime_sec = 0;
    std::int64_t mtime_nsec = 0;
    std::int64_t size = 0;
  };

  struct Entry {
    std::string key;
    Kind kind = Kind::kRegular;
    Identity identity;
    std::shared_ptr<const OpenFile> file;  // null for directories
    Clock::TimePoint validated_at;
  };

  // The outcome of looking a path up: sys_errno != 0 when it could not be opened or is neither
  // a regular file nor a directory (then EACCES).
  struct Found {
    int sys_errno = 0;
    Kind kind = Kind::kRegular;
    std::shared_ptr<const OpenFile> file;
  };

  Found find(const StaticSite& site, const std::string& relative);
  Found open_uncached(const StaticSite& site, const std::string& relative, Identity& identity);
  static bool still_valid(const StaticSite& site, const std::string& relative, const Entry& entry);
  void insert(Entry entry);
  void erase(std::list<Entry>::iterator it);

  StaticResponse serve_directory(const StaticSite& site, const StaticRequest& request,
                                 const std::string& relative, bool trailing_slash);
  StaticResponse serve_file(const StaticRequest& request, std::shared_ptr<const OpenFile> file);

  const Clock& clock_;
  std::chrono::milliseconds revalidate_after_;
  std::size_t max_entries_;
  std::list<Entry> entries_;  // most recently used first
  // Keys are views of Entry::key inside entries_, whose nodes never move.
  std::unordered_map<std::string_view, std::list<Entry>::iterator> index_;
  std::string key_scratch_;  // reused to build lookup keys without allocating
};

}  // namespace clusweb::http
