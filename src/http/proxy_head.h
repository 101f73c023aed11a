#pragma once

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <string>
#include <string_view>

namespace clusweb::http {

// The heads the proxy writes on each hop, built as text in one pass over the
// parsed fields (no intermediate message is modified or serialized).

// True for fields that describe one hop and are never forwarded: Connection,
// Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade, Proxy-Authenticate,
// Proxy-Authorization.
bool is_hop_by_hop(boost::beast::http::field name);

// Who the request came from, for the X-Forwarded-* fields.
struct ForwardedBy {
  std::string_view remote;  // client address
  bool tls = false;         // X-Forwarded-Proto https or http
  std::string_view host;    // the host the request was routed by
};

// Appends the head of the request sent to a pool worker: the request line in
// HTTP/1.1; the client's fields except hop-by-hop ones, fields the client's
// Connection field names, Expect and X-Forwarded-*; then X-Forwarded-For
// (the client's list followed by `by.remote`), X-Forwarded-Proto and
// X-Forwarded-Host. Content-Length and Transfer-Encoding pass unchanged, so
// the body keeps its framing.
void append_upstream_request_head(std::string& out,
                                  const boost::beast::http::request_header<>& head,
                                  const ForwardedBy& by);

// How a relayed response body is delimited towards the client.
enum class Framing {
  kNone,     // no body (HEAD, 1xx, 204, 304)
  kLength,   // Content-Length, relayed as is
  kChunked,  // chunked towards the client
  kClose,    // delimited by closing the connection (HTTP/1.0 clients)
};

struct RelayPlan {
  Framing framing = Framing::kNone;
  bool keep_alive = true;  // the client connection stays open afterwards
};

// Decides the framing of a worker's response for a client speaking HTTP/1.x
// with `client_version` (10 or 11): the worker sent it chunked, with a
// Content-Length, or (neither) delimited by closing. `bodiless` is true for
// HEAD requests and for statuses that never carry a body.
RelayPlan plan_relay(bool chunked_from_worker, bool has_length, bool bodiless, int client_version,
                     bool client_keep_alive);

// Appends the response head for the client: status line in HTTP/1.1 with the
// worker's reason phrase; the worker's fields except hop-by-hop ones, Server,
// Date and the framing fields; then Server: clusweb, `date`, the framing
// fields `plan` asks for and the Connection field the client needs.
void append_client_response_head(std::string& out,
                                 const boost::beast::http::response_header<>& head,
                                 const RelayPlan& plan, int client_version, std::string_view date);

}  // namespace clusweb::http
