#include "http/mime_types.h"

#include <algorithm>
#include <utility>

namespace clusweb::http {
namespace {

struct BuiltInType {
  std::string_view extension;
  std::string_view type;
};

// JSON, XML and SVG get no charset parameter: their encoding is defined by their own specs
// (RFC 8259, the XML declaration), and text/* is where a missing charset does harm.
constexpr BuiltInType kBuiltInTypes[] = {
    // Documents and code.
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"xhtml", "application/xhtml+xml"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"map", "application/json"},
    {"json", "application/json"},
    {"jsonld", "application/ld+json"},
    {"webmanifest", "application/manifest+json"},
    {"txt", "text/plain; charset=utf-8"},
    {"text", "text/plain; charset=utf-8"},
    {"log", "text/plain; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
    {"markdown", "text/markdown; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"tsv", "text/tab-separated-values; charset=utf-8"},
    {"ics", "text/calendar; charset=utf-8"},
    {"vtt", "text/vtt; charset=utf-8"},
    {"yaml", "application/yaml"},
    {"yml", "application/yaml"},
    {"xml", "application/xml"},
    {"xsl", "application/xml"},
    {"rss", "application/rss+xml"},
    {"atom", "application/atom+xml"},
    {"wasm", "application/wasm"},
    {"pdf", "application/pdf"},
    {"rtf", "application/rtf"},
    // Images.
    {"svg", "image/svg+xml"},
    {"svgz", "image/svg+xml"},
    {"png", "image/png"},
    {"apng", "image/apng"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"avif", "image/avif"},
    {"bmp", "image/bmp"},
    {"tif", "image/tiff"},
    {"tiff", "image/tiff"},
    {"ico", "image/vnd.microsoft.icon"},
    // Fonts.
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"ttf", "font/ttf"},
    {"otf", "font/otf"},
    {"eot", "application/vnd.ms-fontobject"},
    // Audio and video.
    {"mp3", "audio/mpeg"},
    {"m4a", "audio/mp4"},
    {"aac", "audio/aac"},
    {"oga", "audio/ogg"},
    {"ogg", "audio/ogg"},
    {"opus", "audio/ogg"},
    {"wav", "audio/wav"},
    {"flac", "audio/flac"},
    {"mp4", "video/mp4"},
    {"m4v", "video/mp4"},
    {"webm", "video/webm"},
    {"ogv", "video/ogg"},
    {"mov", "video/quicktime"},
    {"mpeg", "video/mpeg"},
    {"mpg", "video/mpeg"},
    {"avi", "video/x-msvideo"},
    // Archives.
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
    {"tgz", "application/gzip"},
    {"bz2", "application/x-bzip2"},
    {"xz", "application/x-xz"},
    {"zst", "application/zstd"},
    {"tar", "application/x-tar"},
    {"7z", "application/x-7z-compressed"},
};

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

bool MimeTypes::CaseInsensitiveLess::operator()(std::string_view a, std::string_view b) const {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return static_cast<unsigned char>(ascii_lower(x)) < static_cast<unsigned char>(ascii_lower(y));
  });
}

MimeTypes::MimeTypes() {
  for (const BuiltInType& entry : kBuiltInTypes) {
    types_.emplace(std::string(entry.extension), std::string(entry.type));
  }
}

MimeTypes::MimeTypes(const std::map<std::string, std::string>& overrides) : MimeTypes() {
  for (const auto& [extension, type] : overrides) {
    std::string_view key = extension;
    if (!key.empty() && key.front() == '.') key.remove_prefix(1);
    if (key.empty()) continue;
    types_.insert_or_assign(std::string(key), type);
  }
}

std::string_view MimeTypes::lookup(std::string_view filename) const {
  std::size_t slash = filename.rfind('/');
  std::string_view name = slash == std::string_view::npos ? filename : filename.substr(slash + 1);
  std::size_t dot = name.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return kDefaultType;
  auto it = types_.find(name.substr(dot + 1));
  if (it == types_.end()) return kDefaultType;
  return it->second;
}

}  // namespace clusweb::http
