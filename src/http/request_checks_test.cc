#include "http/request_checks.h"

#include <gtest/gtest.h>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>

namespace clusweb::http {
namespace {

namespace bhttp = boost::beast::http;

// Parses a raw head with Beast, then applies our checks. Returns -1 when
// Beast itself refuses the bytes.
int verdict(std::string_view raw, config::Limits limits = {}) {
  bhttp::request_parser<bhttp::empty_body> parser;
  parser.eager(false);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(raw.data(), raw.size()), ec);
  if (ec && ec != bhttp::error::need_more) return -1;
  if (!parser.is_header_done()) return -2;
  return check_request_head(parser.get().base(), limits).status;
}

TEST(RequestChecksTest, AcceptsOrdinaryRequests) {
  EXPECT_EQ(verdict("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
  EXPECT_EQ(verdict("GET / HTTP/1.0\r\n\r\n"), 0);
  EXPECT_EQ(verdict("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"), 0);
  EXPECT_EQ(verdict("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"), 0);
  EXPECT_EQ(verdict("GET http://a/b?c HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
  EXPECT_EQ(verdict("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
}

// Rejected either by Beast's parser (-1, answered 400 by the server) or by us.
bool rejected(int v) { return v == -1 || v >= 400; }

TEST(RequestChecksTest, RejectsSmugglingShapes) {
  EXPECT_TRUE(
      rejected(verdict("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n")));
  EXPECT_EQ(verdict("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 501);
  EXPECT_EQ(verdict("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
  EXPECT_TRUE(rejected(
      verdict("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n")));
  EXPECT_TRUE(rejected(
      verdict("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n")));
}

TEST(RequestChecksTest, HostRules) {
  EXPECT_EQ(verdict("GET / HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(verdict("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
}

TEST(RequestChecksTest, Limits) {
  config::Limits limits;
  limits.max_headers = 3;
  limits.max_body_bytes = 10;
  EXPECT_EQ(verdict("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits), 431);
  EXPECT_EQ(verdict("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n", limits), 413);
  EXPECT_NE(verdict("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                    limits),
            0);
}

TEST(RequestChecksTest, BadTargets) {
  EXPECT_EQ(verdict("GET * HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(verdict("GET x HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
}

TEST(SplitTargetTest, Forms) {
  auto p = split_target("/a/b?x=1");
  EXPECT_EQ(p.path, "/a/b");
  EXPECT_EQ(p.query, "x=1");
  EXPECT_EQ(p.authority, "");
  p = split_target("http://Example.com:8080/p?q");
  EXPECT_EQ(p.authority, "Example.com:8080");
  EXPECT_EQ(p.path, "/p");
  EXPECT_EQ(p.query, "q");
  p = split_target("http://example.com");
  EXPECT_EQ(p.path, "/");
  p = split_target("http://example.com?z");
  EXPECT_EQ(p.path, "/");
  EXPECT_EQ(p.query, "z");
}

}  // namespace
}  // namespace clusweb::http
