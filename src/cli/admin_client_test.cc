#include "cli/admin_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "cli/testing/fake_admin_server.h"
#include "cli/testing/routes.h"

namespace clusweb::cli {
namespace {

using ::testing::ElementsAre;
using testing::FakeAdminServer;
using ::testing::HasSubstr;
using testing::json_reply;
using Reply = FakeAdminServer::Reply;

FakeAdminServer::Handler answer(const Reply& reply) {
  return [reply](const FakeAdminServer::Request&) { return reply; };
}

Reply chunked_reply(std::vector<std::string> chunks, Reply::End end = Reply::End::kLastChunk) {
  Reply reply;
  reply.chunks = std::move(chunks);
  reply.end = end;
  return reply;
}

// Collects the lines of a stream; stops after `limit` lines when one is given.
struct LineCollector {
  std::vector<std::string> lines;
  std::size_t limit = 0;

  std::function<bool(std::string_view)> callback() {
    return [this](std::string_view line) {
      lines.emplace_back(line);
      return limit == 0 || lines.size() < limit;
    };
  }
};

TEST(AdminClientTest, GetSendsTheTargetAndReturnsStatusAndBody) {
  FakeAdminServer server(answer(json_reply(200, R"({"generation":3})")));
  AdminClient client(server.socket_path());

  Result<AdminResponse> response = client.get("/v1/status");

  ASSERT_TRUE(response.ok()) << response.error().describe();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, R"({"generation":3})");
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].method, "GET");
  EXPECT_EQ(server.requests()[0].target, "/v1/status");
  EXPECT_EQ(server.requests()[0].body, "");
}

TEST(AdminClientTest, PostSendsTheBodyAsJson) {
  FakeAdminServer server(answer(json_reply(200, R"({"name":"shop"})")));
  AdminClient client(server.socket_path());

  Result<AdminResponse> response = client.post("/v1/sites/shop/start", R"({"force":true})");

  ASSERT_TRUE(response.ok()) << response.error().describe();
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].method, "POST");
  EXPECT_EQ(server.requests()[0].target, "/v1/sites/shop/start");
  EXPECT_EQ(server.requests()[0].body, R"({"force":true})");
  EXPECT_EQ(server.requests()[0].content_type, "application/json");
}

TEST(AdminClientTest, PostWithoutBodySendsAnEmptyBody) {
  FakeAdminServer server(answer(json_reply(200, "{}")));
  AdminClient client(server.socket_path());

  ASSERT_TRUE(client.post("/v1/reload").ok());
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].method, "POST");
  EXPECT_EQ(server.requests()[0].body, "");
}

TEST(AdminClientTest, ErrorStatusIsAnAnswerNotAnError) {
  FakeAdminServer server(answer(json_reply(404, R"({"error":"no site named \"nope\""})")));
  AdminClient client(server.socket_path());

  Result<AdminResponse> response = client.get("/v1/sites/nope");

  ASSERT_TRUE(response.ok()) << response.error().describe();
  EXPECT_EQ(response->status, 404);
  EXPECT_EQ(server_error_message(*response), "no site named \"nope\"");
}

TEST(AdminClientTest, EachCallUsesItsOwnConnection) {
  FakeAdminServer server(answer(json_reply(200, "{}")));
  AdminClient client(server.socket_path());

  ASSERT_TRUE(client.get("/v1/sites").ok());
  ASSERT_TRUE(client.get("/v1/pools").ok());

  ASSERT_EQ(server.requests().size(), 2u);
  EXPECT_EQ(server.requests()[1].target, "/v1/pools");
}

TEST(AdminClientTest, MissingSocketSaysTheServiceIsNotRunning) {
  FakeAdminServer server(answer(json_reply(200, "{}")));
  const std::string missing = server.directory() + "/absent.sock";
  AdminClient client(missing);

  Result<AdminResponse> response = client.get("/v1/status");

  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.error().message,
            "cannot reach the web service at " + missing +
                " (No such file or directory); is \"clusweb web\" running?");
  EXPECT_EQ(response.error().sys_errno, ENOENT);
  EXPECT_TRUE(server.requests().empty());
}

TEST(AdminClientTest, MessagesNameTheServiceGiven) {
  FakeAdminServer server(answer(json_reply(200, "{}")));
  const std::string missing = server.directory() + "/absent.sock";
  AdminClient client(missing, kClusterAgent);

  Result<AdminResponse> response = client.get("/v1/cluster");
  Status streamed = client.stream("/v1/events", [](std::string_view) { return true; });

  const std::string expected = "cannot reach the cluster agent at " + missing +
                               " (No such file or directory); is \"clusweb agent\" running?";
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.error().message, expected);
  ASSERT_FALSE(streamed.ok());
  EXPECT_EQ(streamed.error().message, expected);
}

TEST(AdminClientTest, SocketWithoutListenerIsRefused) {
  FakeAdminServer server(answer(json_reply(200, "{}")));
  const std::string stale = server.directory() + "/stale.sock";
  // A bound but never listening socket leaves a file nobody answers on.
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, stale.c_str(), sizeof(address.sun_path) - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ::close(fd);
  AdminClient client(stale);

  Result<AdminResponse> response = client.get("/v1/status");

  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.error().sys_errno, ECONNREFUSED);
  EXPECT_THAT(response.error().message, HasSubstr("(Connection refused)"));
}

TEST(AdminClientTest, OverlongSocketPathIsAnError) {
  AdminClient client("/tmp/" + std::string(200, 'x') + "/web.sock");

  Result<AdminResponse> response = client.get("/v1/status");

  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.error().sys_errno, ENAMETOOLONG);
  EXPECT_THAT(response.error().message, HasSubstr("cannot reach the web service at /tmp/xxx"));
}

TEST(AdminClientTest, ServerThatNeverAnswersTimesOut) {
  Reply silent;
  silent.no_reply = true;
  FakeAdminServer server(answer(silent));
  AdminClient client(server.socket_path(), kWebService, std::chrono::milliseconds(100));

  Result<AdminResponse> response = client.get("/v1/status");

  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.error().sys_errno, ETIMEDOUT);
  EXPECT_EQ(response.error().message,
            "the web service at " + server.socket_path() + " did not answer within 0.1 s");
}

TEST(AdminClientTest, MalformedReplyIsAProtocolError) {
  Reply garbage;
  garbage.raw = "hello there\r\n\r\n";
  FakeAdminServer server(answer(garbage));
  AdminClient client(server.socket_path());

  Result<AdminResponse> response = client.get("/v1/status");

  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.error().sys_errno, EPROTO);
  EXPECT_THAT(response.error().message, HasSubstr("sent a malformed reply"));
}

TEST(AdminClientTest, ConnectionClosedBeforeTheReplyIsAnError) {
  Reply truncated;
  truncated.raw = "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"gen";
  FakeAdminServer server(answer(truncated));
  AdminClient client(server.socket_path());

  Result<AdminResponse> response = client.get("/v1/status");

  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.error().sys_errno, ECONNRESET);
  EXPECT_THAT(response.error().message, HasSubstr("closed the connection"));
}

TEST(AdminClientTest, StreamDeliversLinesSplitAcrossChunks) {
  FakeAdminServer server(
      answer(chunked_reply({"{\"seq\":1}\n{\"se", "q\":2}\r\n", "\n{\"seq\":3}\n"})));
  AdminClient client(server.socket_path());
  LineCollector collector;

  Status status = client.stream("/v1/events", collector.callback());

  ASSERT_TRUE(status.ok()) << status.error().describe();
  EXPECT_THAT(collector.lines, ElementsAre(R"({"seq":1})", R"({"seq":2})", R"({"seq":3})"));
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].method, "GET");
  EXPECT_EQ(server.requests()[0].target, "/v1/events");
}

TEST(AdminClientTest, StreamStopsWhenTheCallbackSaysSo) {
  FakeAdminServer server(answer(
      chunked_reply({"{\"seq\":1}\n{\"seq\":2}\n{\"seq\":3}\n"}, Reply::End::kWaitForClient)));
  AdminClient client(server.socket_path());
  LineCollector collector;
  collector.limit = 2;

  Status status = client.stream("/v1/events", collector.callback());

  ASSERT_TRUE(status.ok()) << status.error().describe();
  EXPECT_THAT(collector.lines, ElementsAre(R"({"seq":1})", R"({"seq":2})"));
}

TEST(AdminClientTest, StreamWaitsForLinesThatArriveInLaterChunks) {
  FakeAdminServer server(
      answer(chunked_reply({"{\"seq\":1}\n", "{\"seq\":2}\n"}, Reply::End::kWaitForClient)));
  AdminClient client(server.socket_path());
  LineCollector collector;
  collector.limit = 2;

  Status status = client.stream("/v1/events", collector.callback());

  ASSERT_TRUE(status.ok()) << status.error().describe();
  EXPECT_THAT(collector.lines, ElementsAre(R"({"seq":1})", R"({"seq":2})"));
}

TEST(AdminClientTest, StreamEndsWhenTheServerCloses) {
  FakeAdminServer server(
      answer(chunked_reply({"{\"seq\":1}\n", "{\"seq\":2}"}, Reply::End::kClose)));
  AdminClient client(server.socket_path());
  LineCollector collector;

  Status status = client.stream("/v1/events", collector.callback());

  ASSERT_TRUE(status.ok()) << status.error().describe();
  EXPECT_THAT(collector.lines, ElementsAre(R"({"seq":1})", R"({"seq":2})"));
}

TEST(AdminClientTest, StreamReadsABodyWithContentLengthToo) {
  FakeAdminServer server(answer(json_reply(200, "{\"seq\":1}\n{\"seq\":2}\n")));
  AdminClient client(server.socket_path());
  LineCollector collector;

  Status status = client.stream("/v1/events", collector.callback());

  ASSERT_TRUE(status.ok()) << status.error().describe();
  EXPECT_THAT(collector.lines, ElementsAre(R"({"seq":1})", R"({"seq":2})"));
}

TEST(AdminClientTest, StreamRefusalCarriesTheServerMessage) {
  FakeAdminServer server(answer(json_reply(503, R"({"error":"the service is shutting down"})")));
  AdminClient client(server.socket_path());
  LineCollector collector;

  Status status = client.stream("/v1/events", collector.callback());

  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().message, "the service is shutting down");
  EXPECT_EQ(status.error().sys_errno, 0);
  EXPECT_TRUE(collector.lines.empty());
}

TEST(AdminClientTest, StreamConnectFailureIsAnUnreachableError) {
  AdminClient client("/nonexistent/clusweb/web.sock");
  LineCollector collector;

  Status status = client.stream("/v1/events", collector.callback());

  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().sys_errno, ENOENT);
  EXPECT_THAT(status.error().message, HasSubstr("is \"clusweb web\" running?"));
}

TEST(ServerErrorMessageTest, UsesTheErrorMember) {
  EXPECT_EQ(server_error_message({409, R"({"error":"site \"shop\" has no serving permit"})"}),
            "site \"shop\" has no serving permit");
}

TEST(ServerErrorMessageTest, KeepsMultiLineMessages) {
  EXPECT_EQ(server_error_message({400, R"({"error":"sites.yaml:12: bad\nsites.yaml:14: worse"})"}),
            "sites.yaml:12: bad\nsites.yaml:14: worse");
}

TEST(ServerErrorMessageTest, FallsBackToTheStatusAndText) {
  EXPECT_EQ(server_error_message({502, "Bad Gateway\n"}),
            "the web service answered 502: Bad Gateway");
  EXPECT_EQ(server_error_message({500, ""}), "the web service answered 500");
  EXPECT_EQ(server_error_message({500, R"({"message":"x"})"}), "the web service answered 500");
  EXPECT_EQ(server_error_message({503, ""}, kClusterAgent), "the cluster agent answered 503");
}

}  // namespace
}  // namespace clusweb::cli
