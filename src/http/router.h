#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "config/web_config.h"
#include "http/path_resolver.h"

namespace clusweb::http {

// Routing of a request to a site and application: listener -> exact host ->
// wildcard host (longest suffix) -> catch-all -> longest application path
// prefix. Pure and immutable once built; safe to share between threads.
class Router {
 public:
  static constexpr int kNoSite = -1;

  // `listener_keys` gives each listener its index (Binding::listener_key()).
  // Sites are numbered in the order of `config.sites` (std::map order).
  explicit Router(const config::WebConfig& config);

  // The index of the listener with this key, or -1.
  int listener_index(std::string_view listener_key) const;
  const std::vector<std::string>& listener_keys() const { return listener_keys_; }

  // The site for a request that arrived on `listener` with this Host header
  // value (port and trailing dot ignored, case-insensitive), or kNoSite.
  int route(int listener, std::string_view host_header) const;

  // The application of `site` whose path is the longest prefix of `path` on a
  // segment boundary, or nullptr for the site's static content.
  const config::Application* application(int site, std::string_view path) const;

  // What a raw (percent-encoded) request path leads to: the path is decoded
  // and normalized exactly as static content would look it up
  // (resolve_request_path), so "//api/x", "/%61pi/x" and "/./api/x" all
  // belong to the application at "/api". `verdict` is not kOk for a path
  // that must be refused outright; "*" (OPTIONS *) matches no application.
  struct ApplicationMatch {
    PathVerdict verdict = PathVerdict::kOk;
    const config::Application* application = nullptr;
  };
  ApplicationMatch match_application(int site, std::string_view raw_path) const;

  const std::vector<const config::Site*>& sites() const { return sites_; }
  int site_index(std::string_view name) const;

 private:
  struct ListenerRoutes {
    std::map<std::string, int, std::less<>> exact;       // host -> site
    std::vector<std::pair<std::string, int>> wildcards;  // ".suffix" -> site, longest first
    int catch_all = kNoSite;
  };

  std::vector<std::string> listener_keys_;
  std::vector<ListenerRoutes> listeners_;
  std::vector<const config::Site*> sites_;
};

// Lowercases a Host header value and strips the port and a trailing dot:
// "WWW.Example.com.:8080" -> "www.example.com", "[::1]:80" -> "[::1]".
std::string normalize_host(std::string_view host_header);

}  // namespace clusweb::http
