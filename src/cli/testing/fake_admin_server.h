#pragma once

// A stand-in for the web service's admin API or the agent's API, for tests of the CLI: a
// synchronous Beast server on a unix socket (`<temp dir>/web.sock` unless another name is
// given) that answers each connection with the reply its handler returns and records the
// requests. One connection at a time, one request each.

#include <stdlib.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <filesystem>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace clusweb::cli::testing {

class FakeAdminServer {
 public:
  struct Request {
    std::string method;
    std::string target;
    std::string body;
    std::string content_type;
  };

  struct Reply {
    enum class End {
      kLastChunk,      // a chunked reply ends with the last chunk, then the server closes
      kClose,          // the server closes without the last chunk
      kWaitForClient,  // the server keeps the connection until the client closes it
    };

    int status = 200;
    std::string body;                 // sent with Content-Length unless `chunks` is set
    std::vector<std::string> chunks;  // when set: a chunked body, one chunk per element
    End end = End::kLastChunk;
    std::string raw;        // when set: these bytes instead of an HTTP reply
    bool no_reply = false;  // read the request, then wait until the client gives up
  };

  using Handler = std::function<Reply(const Request&)>;

  explicit FakeAdminServer(Handler handler, const std::string& socket_name = "web.sock")
      : handler_(std::move(handler)) {
    std::string pattern = (std::filesystem::temp_directory_path() / "clusweb-cli-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    directory_ = pattern;
    socket_path_ = directory_ + "/" + socket_name;
    acceptor_.open();
    acceptor_.bind(Protocol::endpoint(socket_path_));
    acceptor_.listen();
    thread_ = std::thread([this] { serve(); });
  }

  ~FakeAdminServer() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    // Wake the blocking accept with a connection of our own.
    Protocol::socket waker(io_);
    boost::system::error_code ignored;
    waker.connect(Protocol::endpoint(socket_path_), ignored);
    thread_.join();
    std::filesystem::remove_all(directory_, ignored);
  }

  FakeAdminServer(const FakeAdminServer&) = delete;
  FakeAdminServer& operator=(const FakeAdminServer&) = delete;

  const std::string& socket_path() const { return socket_path_; }
  const std::string& directory() const { return directory_; }

  std::vector<Request> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  using Protocol = boost::asio::local::stream_protocol;

  void serve() {
    for (;;) {
      Protocol::socket socket(io_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      {
        std::lock_guard lock(mutex_);
        if (stopping_) return;
      }
      if (!ec) answer(socket);
    }
  }

  void answer(Protocol::socket& socket) {
    namespace http = boost::beast::http;
    boost::system::error_code ec;
    boost::beast::flat_buffer buffer;
    http::request<http::string_body> request;
    http::read(socket, buffer, request, ec);
    if (ec) return;
    Request seen{std::string(request.method_string()), std::string(request.target()),
                 request.body(), std::string(request[http::field::content_type])};
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(seen);
    }
    Reply reply = handler_(seen);

    if (reply.no_reply) {
      wait_for_close(socket);
      return;
    }
    if (!reply.raw.empty()) {
      boost::asio::write(socket, boost::asio::buffer(reply.raw), ec);
      return;
    }
    if (reply.chunks.empty()) {
      http::response<http::string_body> response{static_cast<http::status>(reply.status), 11};
      response.set(http::field::content_type, "application/json");
      response.body() = reply.body;
      response.prepare_payload();
      http::write(socket, response, ec);
      return;
    }

    http::response<http::empty_body> response{static_cast<http::status>(reply.status), 11};
    response.set(http::field::content_type, "application/x-ndjson");
    response.chunked(true);
    http::response_serializer<http::empty_body> serializer{response};
    http::write_header(socket, serializer, ec);
    for (const std::string& chunk : reply.chunks) {
      if (ec) return;
      boost::asio::write(socket, http::make_chunk(boost::asio::buffer(chunk)), ec);
    }
    if (ec) return;
    switch (reply.end) {
      case Reply::End::kLastChunk:
        boost::asio::write(socket, http::make_chunk_last(), ec);
        break;
      case Reply::End::kClose:
        break;
      case Reply::End::kWaitForClient:
        wait_for_close(socket);
        break;
    }
  }

  // Blocks until the client closes its end (or the connection fails).
  static void wait_for_close(Protocol::socket& socket) {
    char byte;
    boost::system::error_code ec;
    while (!ec) socket.read_some(boost::asio::buffer(&byte, 1), ec);
  }

  Handler handler_;
  std::string directory_;
  std::string socket_path_;
  boost::asio::io_context io_;
  Protocol::acceptor acceptor_{io_};
  mutable std::mutex mutex_;
  std::vector<Request> requests_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace clusweb::cli::testing
