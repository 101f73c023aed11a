#include "http/proxy_head.h"

#include <gtest/gtest.h>

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>

namespace clusweb::http {
namespace {

namespace bhttp = boost::beast::http;

template <bool isRequest>
bhttp::header<isRequest> parse_head(std::string_view raw) {
  bhttp::parser<isRequest, bhttp::empty_body> parser;
  parser.eager(false);
  if constexpr (!isRequest) parser.skip(true);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(raw.data(), raw.size()), ec);
  EXPECT_TRUE(parser.is_header_done()) << ec.message();
  return parser.release().base();
}

std::string upstream_head(std::string_view raw, ForwardedBy by = {"192.0.2.7", false, "a.test"}) {
  std::string out;
  append_upstream_request_head(out, parse_head<true>(raw), by);
  return out;
}

TEST(ProxyHeadTest, ForwardsFieldsAndAddsForwarding) {
  EXPECT_EQ(upstream_head("GET /app/x?y=1 HTTP/1.1\r\nHost: a.test\r\nAccept: */*\r\n\r\n"),
            "GET /app/x?y=1 HTTP/1.1\r\nHost: a.test\r\nAccept: */*\r\n"
            "X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: a.test\r\n\r\n");
}

TEST(ProxyHeadTest, SpeaksHttp11UpstreamForAnHttp10Client) {
  EXPECT_EQ(
      upstream_head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", {"::1", true, "b.test"}),
      "GET / HTTP/1.1\r\nX-Forwarded-For: ::1\r\nX-Forwarded-Proto: https\r\n"
      "X-Forwarded-Host: b.test\r\n\r\n");
}

TEST(ProxyHeadTest, DropsHopByHopFieldsAndThoseConnectionNames) {
  std::string head = upstream_head(
      "POST /p HTTP/1.1\r\nHost: a.test\r\nConnection: keep-alive, X-Secret\r\n"
      "Keep-Alive: timeout=5\r\nTE: trailers\r\nUpgrade: websocket\r\n"
      "Proxy-Authorization: Basic eA==\r\nX-Secret: 1\r\nExpect: 100-continue\r\n"
      "Content-Length: 3\r\nX-Kept: yes\r\n\r\n");
  EXPECT_EQ(head,
            "POST /p HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\nX-Kept: yes\r\n"
            "X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: a.test\r\n\r\n");
}

TEST(ProxyHeadTest, KeepsChunkedFraming) {
  std::string head =
      upstream_head("PUT /p HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n");
  EXPECT_NE(head.find("\r\nTransfer-Encoding: chunked\r\n"), std::string::npos) << head;
}

TEST(ProxyHeadTest, AppendsToTheClientsForwardedForListAndReplacesTheRest) {
  std::string head = upstream_head(
      "GET / HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-For: 10.0.0.1\r\n"
      "x-forwarded-proto: https\r\nX-Forwarded-For: 10.0.0.2, 10.0.0.3\r\n"
      "X-Forwarded-Host: evil.test\r\nX-Forwarded-Port: 81\r\n\r\n");
  EXPECT_EQ(head,
            "GET / HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-Port: 81\r\n"
            "X-Forwarded-For: 10.0.0.1, 10.0.0.2, 10.0.0.3, 192.0.2.7\r\n"
            "X-Forwarded-Proto: http\r\nX-Forwarded-Host: a.test\r\n\r\n");
}

TEST(ProxyHeadTest, PlansFramingForEachShapeOfResponse) {
  // (chunked, has_length, bodiless, client_version, keep_alive)
  auto plan = plan_relay(false, true, false, 11, true);
  EXPECT_EQ(plan.framing, Framing::kLength);
  EXPECT_TRUE(plan.keep_alive);
  plan = plan_relay(true, false, false, 11, true);
  EXPECT_EQ(plan.framing, Framing::kChunked);
  EXPECT_TRUE(plan.keep_alive);
  plan = plan_relay(false, false, false, 11, true);  // close-delimited from the worker
  EXPECT_EQ(plan.framing, Framing::kChunked);
  EXPECT_TRUE(plan.keep_alive);
  plan = plan_relay(true, false, false, 10, true);
  EXPECT_EQ(plan.framing, Framing::kClose);
  EXPECT_FALSE(plan.keep_alive);
  plan = plan_relay(false, false, false, 10, true);
  EXPECT_EQ(plan.framing, Framing::kClose);
  EXPECT_FALSE(plan.keep_alive);
  plan = plan_relay(false, true, false, 10, true);
  EXPECT_EQ(plan.framing, Framing::kLength);
  EXPECT_TRUE(plan.keep_alive);
  plan = plan_relay(true, false, true, 10, true);
  EXPECT_EQ(plan.framing, Framing::kNone);
  EXPECT_TRUE(plan.keep_alive);
  plan = plan_relay(false, true, false, 11, false);
  EXPECT_FALSE(plan.keep_alive);
}

std::string client_head(std::string_view raw, RelayPlan plan, int client_version = 11) {
  std::string out;
  append_client_response_head(out, parse_head<false>(raw), plan, client_version,
                              "Wed, 25 Nov 2026 16:00:00 GMT");
  return out;
}

TEST(ProxyHeadTest, ResponseHeadReplacesServerAndDate) {
  EXPECT_EQ(client_head("HTTP/1.1 200 OK\r\nServer: gunicorn\r\nDate: x\r\n"
                        "Content-Type: text/plain\r\nContent-Length: 5\r\n\r\n",
                        {Framing::kLength, true}),
            "HTTP/1.1 200 OK\r\nServer: clusweb\r\nDate: Wed, 25 Nov 2026 16:00:00 GMT\r\n"
            "Content-Type: text/plain\r\nContent-Length: 5\r\n\r\n");
}

TEST(ProxyHeadTest, ResponseHeadKeepsTheWorkersReasonOrSuppliesOne) {
  EXPECT_EQ(client_head("HTTP/1.1 404 Nope\r\nContent-Length: 0\r\n\r\n", {Framing::kLength, true})
                .substr(0, 23),
            "HTTP/1.1 404 Nope\r\nServ");
  EXPECT_EQ(client_head("HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", {Framing::kLength, true})
                .substr(0, 28),
            "HTTP/1.1 404 Not Found\r\nServ");
}

TEST(ProxyHeadTest, ResponseHeadRechunksAndKeepsOtherCodings) {
  std::string head = client_head(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close, X-Hop\r\n"
      "X-Hop: 1\r\nKeep-Alive: timeout=5\r\n\r\n",
      {Framing::kChunked, true});
  EXPECT_EQ(head,
            "HTTP/1.1 200 OK\r\nServer: clusweb\r\nDate: Wed, 25 Nov 2026 16:00:00 GMT\r\n"
            "Transfer-Encoding: gzip, chunked\r\n\r\n");
}

TEST(ProxyHeadTest, ResponseHeadForAnHttp10Client) {
  EXPECT_EQ(client_head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                        {Framing::kClose, false}, 10),
            "HTTP/1.1 200 OK\r\nServer: clusweb\r\nDate: Wed, 25 Nov 2026 16:00:00 GMT\r\n"
            "Connection: close\r\n\r\n");
  EXPECT_EQ(
      client_head("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", {Framing::kLength, true}, 10),
      "HTTP/1.1 200 OK\r\nServer: clusweb\r\nDate: Wed, 25 Nov 2026 16:00:00 GMT\r\n"
      "Content-Length: 2\r\nConnection: keep-alive\r\n\r\n");
}

TEST(ProxyHeadTest, ResponseHeadDropsTheLengthOfARechunkedBodyButNotOfAHeadAnswer) {
  EXPECT_EQ(client_head("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", {Framing::kNone, true}),
            "HTTP/1.1 200 OK\r\nServer: clusweb\r\nDate: Wed, 25 Nov 2026 16:00:00 GMT\r\n"
            "Content-Length: 9\r\n\r\n");
  std::string head =
      client_head("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", {Framing::kChunked, true});
  EXPECT_EQ(head.find("Content-Length"), std::string::npos) << head;
}

}  // namespace
}  // namespace clusweb::http
