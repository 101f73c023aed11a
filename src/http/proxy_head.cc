#include "http/proxy_head.h"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <charconv>
#include <vector>

#include "http/status.h"

namespace clusweb::http {

namespace bhttp = boost::beast::http;
using boost::beast::iequals;

namespace {

enum class Forwarding { kNone, kFor, kProto, kHost };

// Beast has no enumerators for the X-Forwarded-* fields: they arrive as
// field::unknown and are told apart by name.
Forwarding forwarding_field(std::string_view name) {
  constexpr std::string_view kPrefix = "x-forwarded-";
  if (name.size() <= kPrefix.size() || !iequals(name.substr(0, kPrefix.size()), kPrefix)) {
    return Forwarding::kNone;
  }
  auto rest = name.substr(kPrefix.size());
  if (iequals(rest, "for")) return Forwarding::kFor;
  if (iequals(rest, "proto")) return Forwarding::kProto;
  if (iequals(rest, "host")) return Forwarding::kHost;
  return Forwarding::kNone;
}

// The fields a Connection field names ("keep-alive, X-Hop"), parsed once
// per head rather than once per field. Holds views into `connection`.
class ConnectionNames {
 public:
  explicit ConnectionNames(std::string_view connection) {
    for (auto token : bhttp::token_list(connection)) names_.emplace_back(token);
  }
  bool contains(std::string_view name) const {
    for (auto listed : names_) {
      if (iequals(listed, name)) return true;
    }
    return false;
  }

 private:
  std::vector<std::string_view> names_;
};

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += ": ";
  out += value;
  out += "\r\n";
}

void append_number(std::string& out, unsigned value) {
  char text[16];
  auto [end, ec] = std::to_chars(text, text + sizeof text, value);
  out.append(text, end);
}

}  // namespace

bool is_hop_by_hop(bhttp::field name) {
  switch (name) {
    case bhttp::field::connection:
    case bhttp::field::keep_alive:
    case bhttp::field::proxy_connection:
    case bhttp::field::te:
    case bhttp::field::trailer:
    case bhttp::field::upgrade:
    case bhttp::field::proxy_authenticate:
    case bhttp::field::proxy_authorization:
      return true;
    default:
      return false;
  }
}

void append_upstream_request_head(std::string& out, const bhttp::request_header<>& head,
                                  const ForwardedBy& by) {
  out += head.method_string();
  out += ' ';
  out += head.target();
  out += " HTTP/1.1\r\n";
  const ConnectionNames connection(head[bhttp::field::connection]);
  std::string forwarded_for;
  for (const auto& field : head) {
    const auto name = field.name();
    if (is_hop_by_hop(name) || name == bhttp::field::expect) continue;
    const std::string_view name_text = field.name_string();
    if (name == bhttp::field::unknown) {
      switch (forwarding_field(name_text)) {
        case Forwarding::kFor:
          // Several fields form one list, in order.
          if (!forwarded_for.empty()) forwarded_for += ", ";
          forwarded_for += field.value();
          continue;
        case Forwarding::kProto:
        case Forwarding::kHost:
          continue;
        case Forwarding::kNone:
          break;
      }
    }
    if (connection.contains(name_text)) continue;
    append_field(out, name_text, field.value());
  }
  out += "X-Forwarded-For: ";
  if (!forwarded_for.empty()) {
    out += forwarded_for;
    out += ", ";
  }
  out += by.remote;
  out += "\r\nX-Forwarded-Proto: ";
  out += by.tls ? "https" : "http";
  out += "\r\nX-Forwarded-Host: ";
  out += by.host;
  out += "\r\n\r\n";
}

RelayPlan plan_relay(bool chunked_from_worker, bool has_length, bool bodiless, int client_version,
                     bool client_keep_alive) {
  if (bodiless) return {Framing::kNone, client_keep_alive};
  if (has_length && !chunked_from_worker) return {Framing::kLength, client_keep_alive};
  // Chunked or close-delimited from the worker: an HTTP/1.1 client gets it
  // chunked; an HTTP/1.0 client cannot read chunks and gets it delimited by
  // closing.
  if (client_version >= 11) return {Framing::kChunked, client_keep_alive};
  return {Framing::kClose, false};
}

void append_client_response_head(std::string& out, const bhttp::response_header<>& head,
                                 const RelayPlan& plan, int client_version, std::string_view date) {
  const unsigned status = head.result_int();
  out += "HTTP/1.1 ";
  append_number(out, status);
  out += ' ';
  std::string_view reason = head.reason();
  out += reason.empty() ? reason_phrase(static_cast<int>(status)) : reason;
  out += "\r\nServer: clusweb\r\nDate: ";
  out += date;
  out += "\r\n";
  const ConnectionNames connection(head[bhttp::field::connection]);
  // Codings other than chunked (rare: "gzip, chunked") stay on the body the
  // parser hands over and must still be declared.
  std::string codings;
  for (const auto& field : head) {
    const auto name = field.name();
    if (is_hop_by_hop(name)) continue;
    switch (name) {
      case bhttp::field::server:
      case bhttp::field::date:
        continue;
      case bhttp::field::transfer_encoding:
        for (auto coding : bhttp::token_list(field.value())) {
          if (iequals(coding, "chunked")) continue;
          if (!codings.empty()) codings += ", ";
          codings += coding;
        }
        continue;
      case bhttp::field::content_length:
        // Kept for bodiless answers too: a HEAD response states the length
        // the GET would have.
        if (plan.framing != Framing::kLength && plan.framing != Framing::kNone) continue;
        break;
      default:
        break;
    }
    const std::string_view name_text = field.name_string();
    if (connection.contains(name_text)) continue;
    append_field(out, name_text, field.value());
  }
  if (plan.framing == Framing::kChunked) {
    out += "Transfer-Encoding: ";
    if (!codings.empty()) {
      out += codings;
      out += ", ";
    }
    out += "chunked\r\n";
  } else if (plan.framing == Framing::kClose && !codings.empty()) {
    append_field(out, "Transfer-Encoding", codings);
  }
  if (!plan.keep_alive) {
    out += "Connection: close\r\n";
  } else if (client_version < 11) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
}

}  // namespace clusweb::http
