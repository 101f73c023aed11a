#include "http/request_checks.h"

#include <boost/beast/core/string.hpp>

namespace clusweb::http {

namespace bhttp = boost::beast::http;

TargetParts split_target(std::string_view target) {
  TargetParts parts;
  if (target.starts_with("http://") || target.starts_with("https://")) {
    auto rest = target.substr(target.find("//") + 2);
    auto slash = rest.find_first_of("/?");
    parts.authority = rest.substr(0, slash);
    target = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
    if (target.front() == '?') {
      parts.path = "/";
      parts.query = target.substr(1);
      return parts;
    }
  }
  auto q = target.find('?');
  parts.path = target.substr(0, q);
  if (q != std::string_view::npos) parts.query = target.substr(q + 1);
  return parts;
}

HeadVerdict check_request_head(const bhttp::request_header<>& head, const config::Limits& limits) {
  int fields = 0;
  int hosts = 0;
  int lengths = 0;
  int encodings = 0;
  for (const auto& field : head) {
    ++fields;
    switch (field.name()) {
      case bhttp::field::host:
        ++hosts;
        break;
      case bhttp::field::content_length:
        ++lengths;
        break;
      case bhttp::field::transfer_encoding:
        ++encodings;
        break;
      default:
        break;
    }
  }
  if (fields > limits.max_headers) return {431, "too many header fields"};
  if (head.version() == 11 && hosts != 1) return {400, "HTTP/1.1 needs exactly one Host field"};
  if (hosts > 1) return {400, "more than one Host field"};
  if (lengths > 1) return {400, "more than one Content-Length field"};
  if (encodings > 0) {
    if (head.version() < 11) return {400, "Transfer-Encoding in an HTTP/1.0 request"};
    if (lengths > 0) return {400, "both Transfer-Encoding and Content-Length"};
    if (encodings > 1) return {501, "several Transfer-Encoding fields"};
    auto te = head[bhttp::field::transfer_encoding];
    // Only a lone "chunked" is accepted: anything layered under it would have
    // to be understood identically by every hop.
    while (!te.empty() && (te.back() == ' ' || te.back() == '\t')) te.remove_suffix(1);
    while (!te.empty() && (te.front() == ' ' || te.front() == '\t')) te.remove_prefix(1);
    if (!boost::beast::iequals(te, "chunked")) return {501, "unsupported Transfer-Encoding"};
  }
  if (lengths == 1) {
    auto text = head[bhttp::field::content_length];
    std::uint64_t value = 0;
    for (char c : text) {
      if (c < '0' || c > '9') return {400, "bad Content-Length"};
      if (value > (UINT64_MAX - 9) / 10) return {413, "body too large"};
      value = value * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (text.empty()) return {400, "bad Content-Length"};
    if (value > limits.max_body_bytes) return {413, "body too large"};
  }
  auto target = head.target();
  if (target == "*") {
    if (head.method() != bhttp::verb::options) return {400, "bad request-target"};
  } else if (!target.starts_with("/") && !target.starts_with("http://") &&
             !target.starts_with("https://")) {
    return {400, "bad request-target"};
  }
  for (char c : target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return {400, "bad request-target"};
  }
  return {};
}

}  // namespace clusweb::http
