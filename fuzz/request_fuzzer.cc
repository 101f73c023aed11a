// libFuzzer target for the request path without sockets or coroutines: the bytes of one client
// connection go through Beast's request parser (with the server's limits), check_request_head,
// split_target, the Router, resolve_request_path and the StaticFileHandler, request after
// pipelined request, as HttpServer's session loop would take them. Invariants that must hold for
// any input end the run with __builtin_trap, so libFuzzer records the input.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/parser.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/testing/manual_clock.h"
#include "base/unique_fd.h"
#include "config/web_config.h"
#include "http/mime_types.h"
#include "http/path_resolver.h"
#include "http/request_checks.h"
#include "http/router.h"
#include "http/static_file.h"

// Says which invariant broke before trapping: the line alone is enough to find it here.
#define FUZZ_CHECK(condition)                                                                     \
  do {                                                                                            \
    if (!(condition)) {                                                                           \
      std::fprintf(stderr, "request_fuzzer.cc:%d: invariant failed: %s\n", __LINE__, #condition); \
      __builtin_trap();                                                                           \
    }                                                                                             \
  } while (false)

namespace clusweb::fuzz {
namespace {

namespace bhttp = boost::beast::http;
namespace fs = std::filesystem;

using Parser = bhttp::request_parser<bhttp::buffer_body>;

// One connection carries at most this many requests here; more adds little but time.
constexpr int kMaxRequests = 4;
// Every file in the content tree gets this mtime, so ETags and Last-Modified (and therefore the
// conditional-request paths an input takes) are the same in every run.
constexpr std::int64_t kFixedMtime = 1'700'000'000;
constexpr std::string_view kSecret = "OUTSIDE-SECRET: never served\n";
// A file name that is markup; a directory listing must show it escaped.
constexpr std::string_view kMarkupName = "<img src=x onerror=alert(1)>&'\".txt";

[[noreturn]] void fatal_setup(const std::string& what) {
  std::fprintf(stderr, "request_fuzzer: setup failed: %s\n", what.c_str());
  std::abort();
}

// ---- Content tree ----

// A temporary directory holding a site root with traps around it: symlinks that lead out of the
// root (relative, absolute, to a directory), ones that stay inside, a symlink loop, a FIFO, a
// hidden file, an empty file, a file named in markup, a directory without an index, a file large
// enough to be served from its fd, and a sibling directory "outside" with a secret that must
// never be served. Removed at exit.
class ContentTree {
 public:
  ContentTree() {
    std::error_code ec;
    std::string pattern = (fs::temp_directory_path(ec) / "clusweb-fuzz-XXXXXX").string();
    if (ec || ::mkdtemp(pattern.data()) == nullptr) fatal_setup("mkdtemp " + pattern);
    base_ = pattern;
    root_ = base_ / "root";
    fs::path outside = base_ / "outside";
    for (const fs::path& dir : {root_, outside, root_ / "docs", root_ / "docs" / "nested",
                                root_ / "api", root_ / "downloads"}) {
      if (!fs::create_directory(dir, ec)) fatal_setup("mkdir " + dir.string());
    }
    write(outside / "secret.txt", std::string(kSecret));
    write(root_ / "index.html", "<h1>root index</h1>\n");
    write(root_ / "a.txt", "alpha\n");
    write(root_ / "sp ace%25.txt", "a name that needs encoding\n");
    write(root_ / ".hidden", "hidden from listings\n");
    write(root_ / "docs" / "readme.md", "# docs readme\n");
    write(root_ / "docs" / std::string(kMarkupName), "markup\n");
    write(root_ / "empty.txt", "");
    write(root_ / "api" / "source.txt", "the api pool's own file\n");
    write(root_ / "downloads" / "index.htm", "<p>downloads</p>\n");
    std::string big(http::OpenFile::kInMemoryLimit + 4096, '\0');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
    write(root_ / "big.bin", big);
    link("a.txt", root_ / "alias.txt");
    link("../outside/secret.txt", root_ / "leak.txt");
    link(outside / "secret.txt", root_ / "absolute.txt");
    link("../outside", root_ / "outdir");
    link("docs", root_ / "docs-alias");
    link("loop", root_ / "loop");
    if (::mkfifo((root_ / "pipe").c_str(), 0600) != 0) fatal_setup("mkfifo");

    // Setting a time changes no other entry's, so the order does not matter.
    const timespec times[2] = {{kFixedMtime, 0}, {kFixedMtime, 0}};
    for (auto it = fs::recursive_directory_iterator(base_, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (::utimensat(AT_FDCWD, it->path().c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
        fatal_setup("utimensat " + it->path().string());
      }
    }
    if (ec) fatal_setup("walking " + base_.string());

    // What may be served: every regular file beneath the root, by identity and by contents.
    for (auto it = fs::recursive_directory_iterator(root_, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      struct stat st {};
      if (::lstat(it->path().c_str(), &st) != 0) fatal_setup("lstat " + it->path().string());
      if (!S_ISREG(st.st_mode)) continue;
      inside_files_.emplace(static_cast<std::uint64_t>(st.st_dev),
                            static_cast<std::uint64_t>(st.st_ino));
      inside_contents_.insert(read(it->path()));
    }
    if (ec) fatal_setup("walking " + root_.string());
  }

  ~ContentTree() {
    std::error_code ignored;
    fs::remove_all(base_, ignored);
  }

  ContentTree(const ContentTree&) = delete;
  ContentTree& operator=(const ContentTree&) = delete;

  const fs::path& root() const { return root_; }

  // Whether `file` is one of the regular files beneath the root.
  bool inside(const http::OpenFile& file) const {
    if (file.in_memory()) return inside_contents_.count(file.contents) != 0;
    struct stat st {};
    if (::fstat(file.fd.get(), &st) != 0) return false;
    return inside_files_.count(
               {static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)}) != 0;
  }

 private:
  static void write(const fs::path& path, const std::string& contents) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd || ::write(fd.get(), contents.data(), contents.size()) !=
                   static_cast<ssize_t>(contents.size())) {
      fatal_setup("write " + path.string());
    }
  }

  static std::string read(const fs::path& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) fatal_setup("open " + path.string());
    std::string contents;
    char chunk[4096];
    ssize_t n;
    while ((n = ::read(fd.get(), chunk, sizeof chunk)) > 0) {
      contents.append(chunk, static_cast<std::size_t>(n));
    }
    if (n < 0) fatal_setup("read " + path.string());
    return contents;
  }

  static void link(const fs::path& target, const fs::path& at) {
    std::error_code ec;
    fs::create_symlink(target, at, ec);
    if (ec) fatal_setup("symlink " + at.string());
  }

  fs::path base_;
  fs::path root_;
  std::set<std::pair<std::uint64_t, std::uint64_t>> inside_files_;  // (st_dev, st_ino)
  std::set<std::string> inside_contents_;
};

// ---- Configuration ----

config::Binding binding(config::Scheme scheme, std::string address, std::uint16_t port,
                        std::string host) {
  config::Binding b;
  b.scheme = scheme;
  b.address = std::move(address);
  b.port = port;
  b.host = std::move(host);
  return b;
}

// Five sites over three listeners: on "http://*:80" an exact host, two nested wildcards and a
// catch-all; "https://127.0.0.1:8443" has only exact hosts (so kNoSite happens);
// "http://127.0.0.1:8080" has a catch-all. Applications are listed longest path first, as the
// loader sorts them. Limits are small so that max_len-sized inputs reach them.
config::WebConfig make_config(const std::string& root) {
  using config::Scheme;
  config::WebConfig c;
  c.server.limits.max_header_bytes = 2048;
  c.server.limits.max_headers = 16;
  c.server.limits.max_body_bytes = 1024;
  for (const char* pool : {"api", "api-v2", "shop", "everything"}) {
    c.pools[pool].name = pool;
    c.pools[pool].command = {"/bin/true"};
  }
  auto add = [&](std::string name, std::vector<config::Binding> bindings,
                 std::vector<config::Application> applications) -> config::Site& {
    config::Site& site = c.sites[name];
    site.name = std::move(name);
    site.root = root;
    site.bindings = std::move(bindings);
    site.applications = std::move(applications);
    return site;
  };
  config::Site& fallback =
      add("a-fallback", {binding(Scheme::kHttp, "*", 80, "")},
          {{"/api/v2", "api-v2", {}}, {"/downloads", "", {}}, {"/api", "api", {}}});
  fallback.directory_browsing = true;
  fallback.mime_types = {{"md", "text/markdown; charset=utf-8"}};
  config::Site& exact = add("b-exact",
                            {binding(Scheme::kHttp, "*", 80, "www.example.com"),
                             binding(Scheme::kHttps, "127.0.0.1", 8443, "www.example.com")},
                            {{"/shop", "shop", {}}});
  exact.default_documents = {"index.html"};
  add("c-wildcard", {binding(Scheme::kHttp, "*", 80, "*.example.com")}, {{"/", "everything", {}}});
  config::Site& deeper = add("d-deeper",
                             {binding(Scheme::kHttp, "*", 80, "*.static.example.com"),
                              binding(Scheme::kHttp, "127.0.0.1", 8080, "")},
                             {});
  deeper.default_documents = {};
  deeper.directory_browsing = true;
  add("e-secure", {binding(Scheme::kHttps, "127.0.0.1", 8443, "secure.example.com")},
      {{"/docs", "", {}}});
  return c;
}

// What every input shares, built once: the content tree, the configuration, the router and,
// per site (in router order), the open root and MIME table the server would hold.
class Fixture {
 public:
  struct SiteFiles {
    UniqueFd root_fd;
    std::string cache_key;
    http::MimeTypes mime;
  };

  Fixture() : config_(make_config(tree_.root().string())), router_(config_) {
    for (const config::Site* site : router_.sites()) {
      UniqueFd fd(::open(site->root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
      if (!fd) fatal_setup("open root " + site->root);
      sites_.push_back(SiteFiles{std::move(fd), site->name + "\n" + site->root,
                                 http::MimeTypes(site->mime_types)});
    }
    for (const std::string& key : router_.listener_keys()) {
      bool catch_all = false;
      for (const config::Site* site : router_.sites()) {
        for (const config::Binding& b : site->bindings) {
          catch_all = catch_all || (b.listener_key() == key && b.host.empty());
        }
      }
      has_catch_all_.push_back(catch_all);
    }
    serving_listener_ = router_.listener_index("http://*:80");
    if (serving_listener_ < 0) fatal_setup("no listener http://*:80");
  }

  const ContentTree& tree() const { return tree_; }
  const config::Limits& limits() const { return config_.server.limits; }
  const http::Router& router() const { return router_; }
  const SiteFiles& site_files(int site) const { return sites_[static_cast<std::size_t>(site)]; }
  bool has_catch_all(int listener) const { return has_catch_all_[listener]; }
  // The listener the fuzzed connection arrived on; the others are only routed for coverage.
  int serving_listener() const { return serving_listener_; }

 private:
  ContentTree tree_;
  config::WebConfig config_;
  http::Router router_;  // points into config_
  std::vector<SiteFiles> sites_;
  std::vector<bool> has_catch_all_;
  int serving_listener_ = -1;
};

const Fixture& fixture() {
  static const Fixture instance;
  return instance;
}

// ---- Parsing ----

bool within(std::string_view part, std::string_view whole) {
  if (part.empty()) return true;
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

// Feeds `input` to the parser up to the end of the head and drops what it used. False when the
// head is malformed or over header_limit (the server answers 400/431 and closes) or incomplete
// (the server waits, times out and closes).
bool read_head(Parser& parser, std::string_view& input) {
  while (!parser.is_header_done()) {
    if (input.empty()) {
      if (parser.got_some()) {
        boost::system::error_code ec;
        parser.put_eof(ec);
        FUZZ_CHECK(ec);  // end of input never completes a head
      }
      return false;
    }
    boost::system::error_code ec;
    std::size_t used = parser.put(boost::asio::buffer(input.data(), input.size()), ec);
    FUZZ_CHECK(used <= input.size());
    input.remove_prefix(used);
    if (ec == bhttp::error::need_more) {
      // The whole remaining input was offered: more can only come from the peer.
      input = {};
      continue;
    }
    if (ec) return false;
    FUZZ_CHECK(used > 0);
  }
  return true;
}

// Reads and drops the body, as the server does before answering from static content (a pool
// gets the same bytes streamed). False when the body is malformed, over body_limit or
// incomplete; the connection then closes.
bool read_body(Parser& parser, std::string_view& input) {
  char scratch[256];
  parser.eager(true);
  while (!parser.is_done()) {
    if (input.empty()) return false;
    parser.get().body().data = scratch;
    parser.get().body().size = sizeof scratch;
    boost::system::error_code ec;
    std::size_t used = parser.put(boost::asio::buffer(input.data(), input.size()), ec);
    FUZZ_CHECK(used <= input.size());
    input.remove_prefix(used);
    if (ec == bhttp::error::need_buffer) continue;  // scratch is full; it is reset above
    if (ec == bhttp::error::need_more) {
      input = {};
      continue;
    }
    if (ec) return false;
    FUZZ_CHECK(used > 0 || parser.is_done());
  }
  return true;
}

// ---- Checks on one request ----

struct FieldCounts {
  int content_length = 0;
  int transfer_encoding = 0;
};

FieldCounts count_fields(const bhttp::request_header<>& head) {
  FieldCounts counts;
  for (const auto& field : head) {
    if (field.name() == bhttp::field::content_length) ++counts.content_length;
    if (field.name() == bhttp::field::transfer_encoding) ++counts.transfer_encoding;
  }
  return counts;
}

// Once check_request_head accepts a head, Beast's idea of where the body ends must be the one
// the checks reasoned about; a disagreement is a request-smuggling hole.
void check_framing(const Parser& parser, const http::HeadVerdict& verdict,
                   const config::Limits& limits) {
  FUZZ_CHECK(verdict.status == 0 || verdict.status == 400 || verdict.status == 413 ||
             verdict.status == 431 || verdict.status == 501);
  FUZZ_CHECK(verdict.status == 0 || !verdict.reason.empty());
  if (verdict.status != 0) return;
  const auto& head = parser.get().base();
  FieldCounts counts = count_fields(head);
  FUZZ_CHECK(counts.content_length <= 1);
  FUZZ_CHECK(counts.content_length == 0 || counts.transfer_encoding == 0);
  if (counts.transfer_encoding > 0) {
    FUZZ_CHECK(parser.chunked());
    FUZZ_CHECK(!parser.content_length());
  } else if (counts.content_length == 1) {
    std::string_view text = head[bhttp::field::content_length];
    std::uint64_t declared = 0;
    for (char c : text) declared = declared * 10 + static_cast<std::uint64_t>(c - '0');
    FUZZ_CHECK(!parser.chunked());
    FUZZ_CHECK(parser.content_length() && *parser.content_length() == declared);
    FUZZ_CHECK(declared <= limits.max_body_bytes);
  } else {
    FUZZ_CHECK(!parser.chunked());
    FUZZ_CHECK(parser.is_done());  // a request without framing has no body
  }
}

void check_target(std::string_view target, const http::TargetParts& parts) {
  FUZZ_CHECK(within(parts.path, target) || parts.path == "/");
  FUZZ_CHECK(within(parts.query, target));
  FUZZ_CHECK(within(parts.authority, target));
  FUZZ_CHECK(parts.path == "*" || parts.path.starts_with('/'));
  FUZZ_CHECK(parts.path.find('?') == std::string_view::npos);
}

// The application `router` picked for `path` in `site` is the longest one whose path is a
// prefix of `path` on a segment boundary, or the site's "/" application.
void check_application(const http::Router& router, int site, std::string_view path,
                       const config::Application* app) {
  auto matches = [&](const config::Application& candidate) {
    if (candidate.path == "/") return true;
    if (!path.starts_with(candidate.path)) return false;
    return path.size() == candidate.path.size() || path[candidate.path.size()] == '/' ||
           path[candidate.path.size()] == '?';
  };
  const auto& applications = router.sites()[static_cast<std::size_t>(site)]->applications;
  if (app == nullptr) {
    for (const auto& candidate : applications) FUZZ_CHECK(!matches(candidate));
    return;
  }
  FUZZ_CHECK(app >= applications.data() && app < applications.data() + applications.size());
  FUZZ_CHECK(matches(*app));
  for (const auto& candidate : applications) {
    FUZZ_CHECK(!matches(candidate) || candidate.path.size() <= app->path.size());
  }
}

void check_host(std::string_view host) {
  std::string normalized = http::normalize_host(host);
  FUZZ_CHECK(normalized.size() <= host.size());
  for (char c : normalized) FUZZ_CHECK(!(c >= 'A' && c <= 'Z'));
}

// resolve_request_path's contract, and that percent_encode_path is its inverse.
http::ResolvedPath check_resolved_path(std::string_view path) {
  http::ResolvedPath resolved = http::resolve_request_path(path);
  if (resolved.verdict != http::PathVerdict::kOk) {
    FUZZ_CHECK(resolved.relative.empty());
    return resolved;
  }
  const std::string& relative = resolved.relative;
  FUZZ_CHECK(!relative.starts_with('/'));
  FUZZ_CHECK(!relative.ends_with('/'));
  FUZZ_CHECK(relative.find('\0') == std::string::npos);
  FUZZ_CHECK(relative.find('\\') == std::string::npos);
  FUZZ_CHECK(relative.find("//") == std::string::npos);
  FUZZ_CHECK(!relative.empty() || resolved.trailing_slash);
  std::size_t start = 0;
  while (start < relative.size()) {
    std::size_t end = std::min(relative.find('/', start), relative.size());
    std::string_view segment(relative.data() + start, end - start);
    FUZZ_CHECK(segment != ".." && segment != "." && !segment.empty());
    start = end + 1;
  }

  std::string encoded = http::percent_encode_path(relative);
  for (std::size_t i = 0; i < encoded.size(); ++i) {
    auto c = static_cast<unsigned char>(encoded[i]);
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    FUZZ_CHECK(unreserved || c == '/' || (c == '%' && i + 2 < encoded.size()));
  }
  http::ResolvedPath again = http::resolve_request_path("/" + encoded);
  FUZZ_CHECK(again.verdict == http::PathVerdict::kOk);
  FUZZ_CHECK(again.relative == relative);
  FUZZ_CHECK(again.trailing_slash == relative.empty());
  if (!relative.empty()) {
    http::ResolvedPath directory = http::resolve_request_path("/" + encoded + "/");
    FUZZ_CHECK(directory.verdict == http::PathVerdict::kOk && directory.relative == relative &&
               directory.trailing_slash);
  }
  return resolved;
}

bool has_header(const http::StaticResponse& response, std::string_view name) {
  for (const auto& [key, value] : response.headers) {
    if (key == name) return true;
  }
  return false;
}

void check_static_response(const Fixture& fx, const http::StaticRequest& request,
                           const http::ResolvedPath& resolved,
                           const http::StaticResponse& response) {
  const int status = response.status;
  FUZZ_CHECK(status == 200 || status == 206 || status == 301 || status == 304 || status == 400 ||
             status == 403 || status == 404 || status == 405 || status == 416);
  bool is_head = request.method == "HEAD";
  if (!is_head && request.method != "GET") {
    FUZZ_CHECK(status == 405 && has_header(response, "Allow"));
    return;
  }
  if (resolved.verdict == http::PathVerdict::kBadRequest) FUZZ_CHECK(status == 400);
  if (resolved.verdict == http::PathVerdict::kForbidden) FUZZ_CHECK(status == 403);
  if (is_head || status == 304) FUZZ_CHECK(!response.send_body);

  // Header values go out verbatim: no byte may end the line or the head.
  for (const auto& [name, value] : response.headers) {
    FUZZ_CHECK(!name.empty());
    FUZZ_CHECK(value.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos);
    if (name == "Location") {
      // Never protocol-relative ("//evil.example") nor a path outside our own.
      FUZZ_CHECK(value.starts_with('/'));
      FUZZ_CHECK(value.size() < 2 || (value[1] != '/' && value[1] != '\\'));
    }
  }
  if (status == 301) FUZZ_CHECK(has_header(response, "Location"));
  if (status == 304) FUZZ_CHECK(!response.file && response.body.empty());

  if (response.file) {
    FUZZ_CHECK(status == 200 || status == 206);
    FUZZ_CHECK(fx.tree().inside(*response.file));
    const std::uint64_t size = response.file->size;
    FUZZ_CHECK(response.offset <= size && response.length <= size - response.offset);
    if (status == 200) FUZZ_CHECK(response.offset == 0 && response.length == size);
    if (status == 206) FUZZ_CHECK(response.length >= 1 && has_header(response, "Content-Range"));
  } else {
    FUZZ_CHECK(status != 206);
  }
  FUZZ_CHECK(response.body.find(kSecret) == std::string::npos);
  FUZZ_CHECK(response.body.find("<img") == std::string::npos);
}

bool same_answer(const http::StaticResponse& a, const http::StaticResponse& b) {
  return a.status == b.status && a.headers == b.headers && a.body == b.body &&
         a.offset == b.offset && a.length == b.length && (a.file == nullptr) == (b.file == nullptr);
}

// Serves a static request the way the server does, then again from the handler's cache, then
// again after the cache entries aged past revalidation: the tree does not change, so neither
// may the answer.
void serve_static(const Fixture& fx, http::StaticFileHandler& files, testing::ManualClock& clock,
                  int site, const bhttp::request_header<>& head, const http::TargetParts& parts) {
  const Fixture::SiteFiles& site_files = fx.site_files(site);
  const config::Site& config_site = *fx.router().sites()[static_cast<std::size_t>(site)];
  http::StaticSite static_site{site_files.root_fd.get(), site_files.cache_key,
                               &config_site.default_documents, config_site.directory_browsing,
                               &site_files.mime};
  http::StaticRequest request{head.method_string(),
                              parts.path,
                              parts.query,
                              head[bhttp::field::if_none_match],
                              head[bhttp::field::if_modified_since],
                              head[bhttp::field::range],
                              head[bhttp::field::if_range]};
  http::ResolvedPath resolved =
      parts.path == "*" ? http::ResolvedPath{} : check_resolved_path(parts.path);

  http::StaticResponse first = files.serve(static_site, request);
  check_static_response(fx, request, resolved, first);
  http::StaticResponse cached = files.serve(static_site, request);
  FUZZ_CHECK(same_answer(first, cached));
  clock.advance(std::chrono::seconds(2));
  http::StaticResponse revalidated = files.serve(static_site, request);
  FUZZ_CHECK(same_answer(first, revalidated));
}

// Runs the server's decisions for one request whose head and body have been read. Returns
// whether the connection stays open for the next one.
bool route_and_serve(const Fixture& fx, http::StaticFileHandler& files, testing::ManualClock& clock,
                     const Parser& parser) {
  const auto& head = parser.get().base();
  http::TargetParts parts = http::split_target(head.target());
  check_target(head.target(), parts);
  std::string_view host =
      parts.authority.empty() ? std::string_view(head[bhttp::field::host]) : parts.authority;
  check_host(host);

  const http::Router& router = fx.router();
  const int listeners = static_cast<int>(router.listener_keys().size());
  const int sites = static_cast<int>(router.sites().size());
  FUZZ_CHECK(router.route(-1, host) == http::Router::kNoSite);
  FUZZ_CHECK(router.route(listeners, host) == http::Router::kNoSite);
  FUZZ_CHECK(router.application(http::Router::kNoSite, parts.path) == nullptr);
  int serving_site = http::Router::kNoSite;
  for (int listener = 0; listener < listeners; ++listener) {
    int site = router.route(listener, host);
    FUZZ_CHECK(site >= http::Router::kNoSite && site < sites);
    FUZZ_CHECK(site != http::Router::kNoSite || !fx.has_catch_all(listener));
    if (site != http::Router::kNoSite) {
      check_application(router, site, parts.path, router.application(site, parts.path));
    }
    if (listener == fx.serving_listener()) serving_site = site;
  }
  if (serving_site == http::Router::kNoSite) return false;

  auto match = router.match_application(serving_site, parts.path);
  const config::Application* app = match.application;
  bool to_pool = app != nullptr && !app->pool.empty();
  if (!to_pool && parts.path != "*") {
    // A path served from the site root must not name a file that, spelled canonically, belongs
    // to a pool's application ("/%61pi/x", "//api/x", "/./api/x" versus "/api").
    http::ResolvedPath resolved = http::resolve_request_path(parts.path);
    if (resolved.verdict == http::PathVerdict::kOk) {
      const config::Application* canonical =
          router.application(serving_site, "/" + resolved.relative);
      FUZZ_CHECK(canonical == nullptr || canonical->pool.empty());
    }
  }
  if (!to_pool) serve_static(fx, files, clock, serving_site, head, parts);
  return parser.get().keep_alive();
}

}  // namespace
}  // namespace clusweb::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace clusweb;
  const fuzz::Fixture& fx = fuzz::fixture();
  std::string_view input(reinterpret_cast<const char*>(data), size);

  // A fresh clock and cache per input keep runs independent of the inputs before; a small cache
  // makes pipelined requests evict each other.
  testing::ManualClock clock;
  http::StaticFileHandler files(clock, std::chrono::seconds(1), 4);
  for (int i = 0; i < fuzz::kMaxRequests && !input.empty(); ++i) {
    fuzz::Parser parser;
    parser.header_limit(static_cast<std::uint32_t>(fx.limits().max_header_bytes));
    parser.body_limit(fx.limits().max_body_bytes);
    if (!fuzz::read_head(parser, input)) break;
    http::HeadVerdict verdict = http::check_request_head(parser.get().base(), fx.limits());
    fuzz::check_framing(parser, verdict, fx.limits());
    if (verdict.status != 0) break;
    if (!fuzz::read_body(parser, input)) break;
    if (!fuzz::route_and_serve(fx, files, clock, parser)) break;
  }
  return 0;
}
