#include "http/static_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <limits>
#include <optional>

#include "http/path_resolver.h"
#include "http/status.h"

namespace clusweb::http {
namespace {

constexpr std::string_view kHtmlType = "text/html; charset=utf-8";

int status_for_errno(int err) {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
    case ENAMETOOLONG:
      return 404;
    case EXDEV:
    case ELOOP:
    case EACCES:
    case EPERM:
      return 403;
    default:
      return 500;
  }
}

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

StaticResponse error_response(int status, bool is_head) {
  StaticResponse response;
  response.status = status;
  response.headers.emplace_back("Content-Type", kHtmlType);
  std::string title = fmt::format("{} {}", status, reason_phrase(status));
  response.body = fmt::format(
      "<!DOCTYPE html>\n<html><head><title>{0}</title></head><body><h1>{0}</h1></body></html>\n",
      title);
  response.send_body = !is_head;
  return response;
}

// The query goes back out in a Location header as the client sent it, except for bytes that
// could break the header or the URL: controls, space, DEL, non-ASCII and '#'.
std::string sanitize_query(std::string_view query) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(query.size());
  for (char c : query) {
    auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte >= 0x7F || c == '#') {
      out.push_back('%');
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0xF]);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string_view trim_whitespace(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// ---- HTTP dates (IMF-fixdate only: "Sun, 06 Nov 1994 08:49:37 GMT") ----

constexpr std::string_view kDayNames[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::string_view kMonthNames[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

std::string format_http_date(std::int64_t unix_seconds) {
  // Keep the year within the four digits the format has.
  constexpr std::int64_t kLast = 253402300799;  // 9999-12-31 23:59:59
  unix_seconds = std::clamp<std::int64_t>(unix_seconds, 0, kLast);
  std::chrono::sys_seconds time{std::chrono::seconds{unix_seconds}};
  std::chrono::sys_days midnight = std::chrono::floor<std::chrono::days>(time);
  std::chrono::year_month_day date{midnight};
  std::chrono::hh_mm_ss since_midnight{time - midnight};
  return fmt::format("{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
                     kDayNames[std::chrono::weekday{midnight}.c_encoding()],
                     static_cast<unsigned>(date.day()),
                     kMonthNames[static_cast<unsigned>(date.month()) - 1],
                     static_cast<int>(date.year()), since_midnight.hours().count(),
                     since_midnight.minutes().count(), since_midnight.seconds().count());
}

std::optional<int> fixed_digits(std::string_view text) {
  int value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

template <std::size_t N>
std::optional<unsigned> name_index(const std::string_view (&names)[N], std::string_view name) {
  for (std::size_t i = 0; i < N; ++i) {
    if (names[i] == name) return static_cast<unsigned>(i);
  }
  return std::nullopt;
}

// Unix seconds, or nothing when `text` is not an IMF-fixdate (the obsolete RFC 850 and asctime
// forms are not accepted; the callers then ignore the header, which is always safe).
std::optional<std::int64_t> parse_http_date(std::string_view text) {
  text = trim_whitespace(text);
  if (text.size() != 29 || text[3] != ',' || text[4] != ' ' || text[7] != ' ' || text[11] != ' ' ||
      text[16] != ' ' || text[19] != ':' || text[22] != ':' || text[25] != ' ' ||
      text.substr(26) != "GMT") {
    return std::nullopt;
  }
  auto day_number = fixed_digits(text.substr(5, 2));
  auto month_index = name_index(kMonthNames, text.substr(8, 3));
  auto year_number = fixed_digits(text.substr(12, 4));
  auto hour = fixed_digits(text.substr(17, 2));
  auto minute = fixed_digits(text.substr(20, 2));
  auto second = fixed_digits(text.substr(23, 2));
  if (!name_index(kDayNames, text.substr(0, 3)) || !day_number || !month_index || !year_number ||
      !hour || !minute || !second || *hour > 23 || *minute > 59 || *second > 60) {
    return std::nullopt;
  }
  std::chrono::year_month_day date{std::chrono::year{*year_number},
                                   std::chrono::month{*month_index + 1},
                                   std::chrono::day{static_cast<unsigned>(*day_number)}};
  if (!date.ok()) return std::nullopt;
  std::chrono::sys_seconds time = std::chrono::sys_days{date} + std::chrono::hours{*hour} +
                                  std::chrono::minutes{*minute} + std::chrono::seconds{*second};
  return time.time_since_epoch().count();
}

// ---- Validators ----

// If-None-Match: "*" or a list of entity-tags, compared weakly (W/ ignored on both sides).
// A malformed list matches nothing from the bad element on.
bool if_none_match_matches(std::string_view header, std::string_view etag) {
  header = trim_whitespace(header);
  if (header == "*") return true;
  if (etag.substr(0, 2) == "W/") etag.remove_prefix(2);
  while (true) {
    while (!header.empty() &&
           (header.front() == ',' || header.front() == ' ' || header.front() == '\t')) {
      header.remove_prefix(1);
    }
    if (header.empty()) return false;
    if (header.substr(0, 2) == "W/") header.remove_prefix(2);
    if (header.empty() || header.front() != '"') return false;
    std::size_t close = header.find('"', 1);
    if (close == std::string_view::npos) return false;
    if (header.substr(0, close + 1) == etag) return true;
    header.remove_prefix(close + 1);
  }
}

bool not_modified(const StaticRequest& request, const OpenFile& file) {
  // RFC 9110 §13.2.2: If-None-Match, when present, decides alone.
  if (!request.if_none_match.empty()) {
    return if_none_match_matches(request.if_none_match, file.etag);
  }
  if (!request.if_modified_since.empty()) {
    if (auto since = parse_http_date(request.if_modified_since)) return file.mtime_sec <= *since;
  }
  return false;
}

// If-Range compares strongly: our (strong) ETag exactly, or the exact Last-Modified second.
// A weak tag or an unparsable value never matches, so the whole file is sent.
bool if_range_allows(std::string_view header, const OpenFile& file) {
  header = trim_whitespace(header);
  if (header.empty()) return true;
  if (header.front() == '"') return header == file.etag;
  if (header.substr(0, 2) == "W/") return false;
  auto date = parse_http_date(header);
  return date && *date == file.mtime_sec;
}

// ---- Range ----

enum class RangeOutcome { kIgnore, kSatisfiable, kUnsatisfiable };

struct ByteRange {
  std::uint64_t first = 0;
  std::uint64_t last = 0;  // inclusive
};

// Decimal digits, saturating at the maximum: a huge position still means "past the end".
std::optional<std::uint64_t> parse_position(std::string_view digits) {
  if (digits.empty()) return std::nullopt;
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    auto digit = static_cast<std::uint64_t>(c - '0');
    value = value > (kMax - digit) / 10 ? kMax : value * 10 + digit;
  }
  return value;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; };
    return lower(x) == lower(y);
  });
}

// RFC 9110 §14. Only a single range is served. A request for several is answered with the
// whole file (200), which §14.2 permits: we do not generate multipart/byteranges, and one
// full response is cheaper and safer than many overlapping parts. Syntactically invalid
// ranges (including last < first, as in "bytes=5-2") are likewise ignored.
RangeOutcome parse_range(std::string_view header, std::uint64_t size, ByteRange& out) {
  header = trim_whitespace(header);
  std::size_t equals = header.find('=');
  if (equals == std::string_view::npos ||
      !equals_ignoring_case(header.substr(0, equals), "bytes")) {
    return RangeOutcome::kIgnore;
  }
  std::string_view set = header.substr(equals + 1);
  std::string_view spec;
  int specs = 0;
  while (!set.empty()) {
    std::size_t comma = set.find(',');
    std::string_view element = trim_whitespace(set.substr(0, comma));
    set = comma == std::string_view::npos ? std::string_view() : set.substr(comma + 1);
    if (element.empty()) continue;  // empty list elements are allowed and mean nothing
    spec = element;
    ++specs;
  }
  if (specs != 1) return RangeOutcome::kIgnore;

  std::size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return RangeOutcome::kIgnore;
  std::string_view first_text = spec.substr(0, dash);
  std::string_view last_text = spec.substr(dash + 1);

  if (first_text.empty()) {  // "-n": the last n bytes
    auto suffix = parse_position(last_text);
    if (!suffix) return RangeOutcome::kIgnore;
    if (*suffix == 0 || size == 0) return RangeOutcome::kUnsatisfiable;
    out.first = *suffix >= size ? 0 : size - *suffix;
    out.last = size - 1;
    return RangeOutcome::kSatisfiable;
  }
  auto first = parse_position(first_text);
  if (!first) return RangeOutcome::kIgnore;
  std::uint64_t last = std::numeric_limits<std::uint64_t>::max();
  if (!last_text.empty()) {
    auto parsed = parse_position(last_text);
    if (!parsed || *parsed < *first) return RangeOutcome::kIgnore;
    last = *parsed;
  }
  if (*first >= size) return RangeOutcome::kUnsatisfiable;
  out.first = *first;
  out.last = std::min(last, size - 1);
  return RangeOutcome::kSatisfiable;
}

// ---- Directory listing ----

struct DirCloser {
  void operator()(DIR* dir) const { ::closedir(dir); }
};

struct ListingItem {
  std::string name;
  bool directory = false;
};

StaticResponse directory_listing(int root_fd, const std::string& relative, bool is_head) {
  auto fd = open_beneath(root_fd, relative, /*directory=*/true);
  if (!fd) return error_response(status_for_errno(fd.error().sys_errno), is_head);
  std::unique_ptr<DIR, DirCloser> dir(::fdopendir(fd->get()));
  if (!dir) return error_response(500, is_head);
  fd->release();  // the DIR owns it now

  std::vector<ListingItem> items;
  while (const dirent* entry = ::readdir(dir.get())) {
    std::string_view name = entry->d_name;
    if (name.empty() || name.front() == '.') continue;  // ".", ".." and hidden files
    bool directory = entry->d_type == DT_DIR;
    if (entry->d_type == DT_UNKNOWN) {
      struct stat st {};
      directory = ::fstatat(::dirfd(dir.get()), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                  S_ISDIR(st.st_mode);
    }
    items.push_back(ListingItem{std::string(name), directory});
  }
  std::sort(items.begin(), items.end(), [](const ListingItem& a, const ListingItem& b) {
    if (a.directory != b.directory) return a.directory;
    return a.name < b.name;
  });

  std::string shown = html_escape(relative.empty() ? "/" : "/" + relative + "/");
  std::string body = fmt::format(
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of {0}</title></head>"
      "<body>\n<h1>Index of {0}</h1>\n<ul>\n",
      shown);
  if (!relative.empty()) body += "<li><a href=\"../\">../</a></li>\n";
  for (const ListingItem& item : items) {
    // The href is fully percent-encoded (only unreserved bytes stay), so it cannot end the
    // attribute or be read as a scheme ("javascript:"); the text is HTML-escaped.
    std::string_view slash = item.directory ? "/" : "";
    body += fmt::format("<li><a href=\"{}{}\">{}{}</a></li>\n", percent_encode_path(item.name),
                        slash, html_escape(item.name), slash);
  }
  body += "</ul>\n</body></html>\n";

  StaticResponse response;
  response.headers.emplace_back("Content-Type", kHtmlType);
  response.body = std::move(body);
  response.send_body = !is_head;
  return response;
}

StaticResponse redirect_to_directory(const StaticRequest& request, const std::string& relative,
                                     bool is_head) {
  // Built from the normalized path, never the raw one: "//evil.example" must not become a
  // protocol-relative Location.
  std::string location = "/" + percent_encode_path(relative) + "/";
  if (!request.query.empty()) {
    location += '?';
    location += sanitize_query(request.query);
  }
  StaticResponse response;
  response.status = 301;
  response.headers.emplace_back("Location", location);
  response.headers.emplace_back("Content-Type", kHtmlType);
  response.body = fmt::format(
      "<!DOCTYPE html>\n<html><head><title>301 Moved Permanently</title></head><body>"
      "<a href=\"{}\">Moved here</a></body></html>\n",
      html_escape(location));
  response.send_body = !is_head;
  return response;
}

}  // namespace

StaticFileHandler::StaticFileHandler(const Clock& clock, std::chrono::milliseconds revalidate_after,
                                     std::size_t max_entries)
    : clock_(clock), revalidate_after_(revalidate_after), max_entries_(max_entries) {}

StaticResponse StaticFileHandler::serve(const StaticSite& site, const StaticRequest& request) {
  bool is_head = request.method == "HEAD";
  if (!is_head && request.method != "GET") {
    StaticResponse response = error_response(405, false);
    response.headers.emplace_back("Allow", "GET, HEAD");
    return response;
  }
  ResolvedPath resolved = resolve_request_path(request.path);
  if (resolved.verdict == PathVerdict::kBadRequest) return error_response(400, is_head);
  if (resolved.verdict == PathVerdict::kForbidden) return error_response(403, is_head);

  Found found = find(site, resolved.relative);
  if (found.sys_errno != 0) return error_response(status_for_errno(found.sys_errno), is_head);
  if (found.kind == Kind::kDirectory) {
    return serve_directory(site, request, resolved.relative, resolved.trailing_slash);
  }
  // "/file.txt/" names a directory that is not one.
  if (resolved.trailing_slash) return error_response(404, is_head);
  return serve_file(request, std::move(found.file));
}

StaticResponse StaticFileHandler::serve_directory(const StaticSite& site,
                                                  const StaticRequest& request,
                                                  const std::string& relative,
                                                  bool trailing_slash) {
  bool is_head = request.method == "HEAD";
  // Without the slash, relative links in the directory's index would resolve one level up.
  if (!trailing_slash) return redirect_to_directory(request, relative, is_head);
  if (site.default_documents != nullptr) {
    for (const std::string& document : *site.default_documents) {
      if (document.empty()) continue;
      std::string candidate = relative;
      if (!candidate.empty()) candidate += '/';
      candidate += document;
      Found found = find(site, candidate);
      if (found.sys_errno == 0 && found.kind == Kind::kRegular) {
        return serve_file(request, std::move(found.file));
      }
    }
  }
  if (site.directory_browsing) return directory_listing(site.root_fd, relative, is_head);
  return error_response(403, is_head);
}

StaticResponse StaticFileHandler::serve_file(const StaticRequest& request,
                                             std::shared_ptr<const OpenFile> file) {
  bool is_head = request.method == "HEAD";
  const OpenFile& opened = *file;
  if (not_modified(request, opened)) {
    StaticResponse response;
    response.status = 304;
    response.headers.emplace_back("ETag", opened.etag);
    response.headers.emplace_back("Last-Modified", opened.last_modified);
    response.send_body = false;
    return response;
  }

  StaticResponse response;
  response.headers.emplace_back("Content-Type", opened.content_type);
  response.headers.emplace_back("ETag", opened.etag);
  response.headers.emplace_back("Last-Modified", opened.last_modified);
  response.headers.emplace_back("Accept-Ranges", "bytes");
  response.length = opened.size;
  if (!request.range.empty() && if_range_allows(request.if_range, opened)) {
    ByteRange range;
    switch (parse_range(request.range, opened.size, range)) {
      case RangeOutcome::kIgnore:
        break;
      case RangeOutcome::kUnsatisfiable: {
        StaticResponse refused = error_response(416, is_head);
        refused.headers.emplace_back("Content-Range", fmt::format("bytes */{}", opened.size));
        return refused;
      }
      case RangeOutcome::kSatisfiable:
        response.status = 206;
        response.headers.emplace_back(
            "Content-Range", fmt::format("bytes {}-{}/{}", range.first, range.last, opened.size));
        response.offset = range.first;
        response.length = range.last - range.first + 1;
        break;
    }
  }
  response.file = std::move(file);
  response.send_body = !is_head;
  return response;
}

StaticFileHandler::Found StaticFileHandler::find(const StaticSite& site,
                                                 const std::string& relative) {
  key_scratch_.assign(site.cache_key);
  key_scratch_.push_back('\0');
  key_scratch_.append(relative);
  Clock::TimePoint now = clock_.now();
  if (auto indexed = index_.find(key_scratch_); indexed != index_.end()) {
    auto entry = indexed->second;
    bool fresh = now - entry->validated_at < revalidate_after_;
    if (fresh || still_valid(site, relative, *entry)) {
      if (!fresh) entry->validated_at = now;
      entries_.splice(entries_.begin(), entries_, entry);
      return Found{0, entry->kind, entry->file};
    }
    erase(entry);
  }
  Identity identity;
  Found found = open_uncached(site, relative, identity);
  if (found.sys_errno == 0 && max_entries_ > 0) {
    insert(Entry{key_scratch_, found.kind, identity, found.file, now});
  }
  return found;
}

StaticFileHandler::Found StaticFileHandler::open_uncached(const StaticSite& site,
                                                          const std::string& relative,
                                                          Identity& identity) {
  auto failure = [](int err) { return Found{err, Kind::kRegular, nullptr}; };
  auto fd = open_beneath(site.root_fd, relative);
  if (!fd) return failure(fd.error().sys_errno != 0 ? fd.error().sys_errno : EIO);
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0) return failure(errno);
  identity = Identity{
      static_cast<std::uint64_t>(st.st_dev),           static_cast<std::uint64_t>(st.st_ino),
      static_cast<std::uint32_t>(st.st_mode & S_IFMT), static_cast<std::int64_t>(st.st_mtim.tv_sec),
      static_cast<std::int64_t>(st.st_mtim.tv_nsec),   static_cast<std::int64_t>(st.st_size)};
  if (S_ISDIR(st.st_mode)) return Found{0, Kind::kDirectory, nullptr};
  // FIFOs, devices and sockets are never served.
  if (!S_ISREG(st.st_mode)) return failure(EACCES);

  auto file = std::make_shared<OpenFile>();
  file->size = static_cast<std::uint64_t>(st.st_size);
  file->mtime_sec = identity.mtime_sec;
  if (file->in_memory()) {
    file->contents.resize(file->size);
    std::size_t done = 0;
    while (done < file->contents.size()) {
      ssize_t n = ::pread(fd->get(), file->contents.data() + done, file->contents.size() - done,
                          static_cast<off_t>(done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return failure(errno);
      if (n == 0) break;  // shrank since fstat; the next revalidation notices the new size
      done += static_cast<std::size_t>(n);
    }
    file->contents.resize(done);
    file->size = done;
  } else {
    file->fd = std::move(*fd);
  }
  file->etag = fmt::format("\"{:x}-{:x}\"", file->mtime_sec, file->size);
  file->last_modified = format_http_date(file->mtime_sec);
  file->content_type = std::string(site.mime->lookup(relative));
  return Found{0, Kind::kRegular, std::move(file)};
}

bool StaticFileHandler::still_valid(const StaticSite& site, const std::string& relative,
                                    const Entry& entry) {
  // fstatat follows symlinks, even ones leading out of the root; that is harmless here because
  // the result is only compared: a path that now resolves to anything but the very file we
  // opened safely is re-opened through open_beneath.
  struct stat st {};
  int rc = relative.empty() ? ::fstatat(site.root_fd, "", &st, AT_EMPTY_PATH)
                            : ::fstatat(site.root_fd, relative.c_str(), &st, 0);
  if (rc != 0) return false;
  const Identity& was = entry.identity;
  if (static_cast<std::uint64_t>(st.st_dev) != was.device ||
      static_cast<std::uint64_t>(st.st_ino) != was.inode ||
      static_cast<std::uint32_t>(st.st_mode & S_IFMT) != was.type) {
    return false;
  }
  // A directory's mtime moves whenever an entry changes; only its identity matters.
  if (entry.kind == Kind::kDirectory) return true;
  return st.st_mtim.tv_sec == was.mtime_sec && st.st_mtim.tv_nsec == was.mtime_nsec &&
         st.st_size == was.size;
}

void StaticFileHandler::insert(Entry entry) {
  while (entries_.size() >= max_entries_) erase(std::prev(entries_.end()));
  entries_.push_front(std::move(entry));
  index_.emplace(entries_.front().key, entries_.begin());
}

void StaticFileHandler::erase(std::list<Entry>::iterator it) {
  index_.erase(it->key);
  entries_.erase(it);
}

void StaticFileHandler::clear() {
  index_.clear();
  entries_.clear();
}

}  // namespace clusweb::http
