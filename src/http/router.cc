#include "http/router.h"

#include <algorithm>

namespace clusweb::http {

std::string normalize_host(std::string_view host) {
  std::string_view name = host;
  if (!name.empty() && name.front() == '[') {
    auto close = name.find(']');
    name = close == std::string_view::npos ? name : name.substr(0, close + 1);
  } else if (auto colon = name.rfind(':'); colon != std::string_view::npos) {
    name = name.substr(0, colon);
  }
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  std::string out(name);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

Router::Router(const config::WebConfig& config) {
  for (const auto& [name, site] : config.sites) {
    int index = static_cast<int>(sites_.size());
    sites_.push_back(&site);
    for (const auto& binding : site.bindings) {
      std::string key = binding.listener_key();
      int listener = listener_index(key);
      if (listener < 0) {
        listener = static_cast<int>(listener_keys_.size());
        listener_keys_.push_back(key);
        listeners_.emplace_back();
      }
      auto& routes = listeners_[listener];
      if (binding.host.empty()) {
        routes.catch_all = index;
      } else if (binding.host.starts_with("*.")) {
        routes.wildcards.emplace_back(binding.host.substr(1), index);
      } else {
        routes.exact.emplace(binding.host, index);
      }
    }
  }
  for (auto& routes : listeners_) {
    std::stable_sort(routes.wildcards.begin(), routes.wildcards.end(),
                     [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  }
}

int Router::listener_index(std::string_view listener_key) const {
  for (std::size_t i = 0; i < listener_keys_.size(); ++i) {
    if (listener_keys_[i] == listener_key) return static_cast<int>(i);
  }
  return -1;
}

int Router::site_index(std::string_view name) const {
  for (std::size_t i = 0; i < sites_.size(); ++i) {
    if (sites_[i]->name == name) return static_cast<int>(i);
  }
  return kNoSite;
}

int Router::route(int listener, std::string_view host_header) const {
  if (listener < 0 || listener >= static_cast<int>(listeners_.size())) return kNoSite;
  const auto& routes = listeners_[listener];
  if (!routes.exact.empty() || !routes.wildcards.empty()) {
    std::string host = normalize_host(host_header);
    if (auto it = routes.exact.find(host); it != routes.exact.end()) return it->second;
    for (const auto& [suffix, site] : routes.wildcards) {
      // "*.example.com" matches "a.example.com" but not "example.com".
      if (host.size() > suffix.size() && host.ends_with(suffix)) return site;
    }
  }
  return routes.catch_all;
}

Router::ApplicationMatch Router::match_application(int site, std::string_view raw_path) const {
  if (raw_path == "*") return {};
  ResolvedPath resolved = resolve_request_path(raw_path);
  if (resolved.verdict != PathVerdict::kOk) return {resolved.verdict, nullptr};
  std::string normalized;
  normalized.reserve(resolved.relative.size() + 1);
  normalized.push_back('/');
  normalized.append(resolved.relative);
  return {PathVerdict::kOk, application(site, normalized)};
}

const config::Application* Router::application(int site, std::string_view path) const {
  if (site < 0 || site >= static_cast<int>(sites_.size())) return nullptr;
  // Applications are sorted longest path first by the loader.
  for (const auto& app : sites_[site]->applications) {
    if (app.path == "/") return &app;
    if (path.starts_with(app.path) &&
        (path.size() == app.path.size() || path[app.path.size()] == '/' ||
         path[app.path.size()] == '?')) {
      return &app;
    }
  }
  return nullptr;
}

}  // namespace clusweb::http
