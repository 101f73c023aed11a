#pragma once

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <string_view>

#include "config/web_config.h"

namespace clusweb::http {

// The verdict on a parsed request head: status 0 = acceptable, else the
// status to answer (the connection is closed after it) and why.
struct HeadVerdict {
  int status = 0;
  std::string_view reason;
};

// Rejects request-smuggling shapes and heads over the limits, after Beast has
// parsed the head and before any body byte is read:
// - HTTP/1.1 without exactly one Host header;
// - Transfer-Encoding other than a single final "chunked" (501), or with
//   HTTP/1.0, or together with Content-Length;
// - more than one Content-Length field;
// - more header fields than limits.max_headers (431);
// - a declared body over limits.max_body_bytes (413);
// - a request-target that is neither origin-form, absolute-form nor "*" (OPTIONS).
HeadVerdict check_request_head(const boost::beast::http::request_header<>& head,
                               const config::Limits& limits);

// The parts of a request-target. For absolute-form ("http://h/p?q") the
// authority is returned too; it replaces the Host header for routing.
struct TargetParts {
  std::string_view path;  // "/..." (still percent-encoded); "*" for OPTIONS *
  std::string_view query;
  std::string_view authority;
};
TargetParts split_target(std::string_view target);

}  // namespace clusweb::http
