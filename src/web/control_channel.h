#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace clusweb::web {

// One message between the web master and its front end: a JSON text and the
// descriptors that travel with it (SCM_RIGHTS).
struct ControlMessage {
  std::string json;
  std::vector<UniqueFd> fds;
};

// A SOCK_SEQPACKET socketpair end: message boundaries are kept by the kernel,
// descriptors ride along. Sending is synchronous (the peer is local and its
// buffer large); receiving is asynchronous on an io_context. Not thread-safe.
class ControlChannel {
 public:
  static constexpr std::size_t kMaxMessageBytes = 8u << 20;
  static constexpr std::size_t kMaxFds = 250;

  // Creates a connected pair; the second end is meant for a child process.
  static Result<std::pair<UniqueFd, UniqueFd>> make_pair();

  ControlChannel(boost::asio::io_context& io, UniqueFd fd);

  Status send(std::string_view json, const std::vector<int>& fds = {});
  // Calls `on_message` for every message until the peer closes or an error
  // occurs, then `on_closed` once.
  void start(std::function<void(ControlMessage)> on_message,
             std::function<void(const Error&)> on_closed);
  void close();

 private:
  void wait();
  void read_ready();

  boost::asio::posix::stream_descriptor socket_;
  std::function<void(ControlMessage)> on_message_;
  std::function<void(const Error&)> on_closed_;
  std::vector<char> buffer_;
  // Expires with the channel: a wait still pending when the channel is
  // destroyed completes later and must not touch it.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace clusweb::web
