#include "web/control_channel.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace clusweb::web {

Result<std::pair<UniqueFd, UniqueFd>> ControlChannel::make_pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
    return errno_error("socketpair", "control channel");
  }
  for (int fd : fds) {
    int size = static_cast<int>(kMaxMessageBytes) + 65536;
    // Root may exceed the system's default maximum; others get what they can.
    if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) != 0) {
      ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    }
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0) {
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    }
  }
  return std::make_pair(UniqueFd(fds[0]), UniqueFd(fds[1]));
}

ControlChannel::ControlChannel(boost::asio::io_context& io, UniqueFd fd)
    : socket_(io, fd.release()), buffer_(kMaxMessageBytes) {
  boost::system::error_code ignored;
  socket_.non_blocking(true, ignored);
}

Status ControlChannel::send(std::string_view json, const std::vector<int>& fds) {
  if (json.size() > kMaxMessageBytes) {
    return make_error("control message of {} bytes is over the limit of {}", json.size(),
                      kMaxMessageBytes);
  }
  if (fds.size() > kMaxFds) return make_error("too many descriptors in one control message");
  iovec iov{const_cast<char*>(json.data()), json.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
  if (!fds.empty()) {
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* header = CMSG_FIRSTHDR(&msg);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(header), fds.data(), sizeof(int) * fds.size());
  }
  // The socket is non-blocking for the reader; a full buffer here means the
  // peer is stuck, so wait for room rather than drop a message.
  while (true) {
    ssize_t sent = ::sendmsg(socket_.native_handle(), &msg, MSG_NOSIGNAL);
    if (sent >= 0) return {};
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      boost::system::error_code ec;
      socket_.wait(boost::asio::posix::stream_descriptor::wait_write, ec);
      if (ec) return Error{ec.message(), "control channel", ec.value()};
      continue;
    }
    return errno_error("sendmsg", "control channel");
  }
}

void ControlChannel::start(std::function<void(ControlMessage)> on_message,
                           std::function<void(const Error&)> on_closed) {
  on_message_ = std::move(on_message);
  on_closed_ = std::move(on_closed);
  wait();
}

void ControlChannel::close() {
  boost::system::error_code ignored;
  socket_.close(ignored);
}

void ControlChannel::wait() {
  socket_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                     [this, alive = std::weak_ptr<int>(alive_)](boost::system::error_code ec) {
                       if (alive.expired()) return;
                       if (ec) {
                         if (on_closed_) on_closed_(Error{ec.message(), "control channel", 0});
                         return;
                       }
                       read_ready();
                     });
}

void ControlChannel::read_ready() {
  while (true) {
    iovec iov{buffer_.data(), buffer_.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t got = ::recvmsg(socket_.native_handle(), &msg, MSG_CMSG_CLOEXEC);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && errno == EAGAIN) break;
    if (got <= 0) {
      Error error = got == 0 ? Error{"peer closed the control channel", "control channel", 0}
                             : errno_error("recvmsg", "control channel");
      if (on_closed_) on_closed_(error);
      return;
    }
    ControlMessage message;
    message.json.assign(buffer_.data(), static_cast<std::size_t>(got));
    for (cmsghdr* header = CMSG_FIRSTHDR(&msg); header != nullptr;
         header = CMSG_NXTHDR(&msg, header)) {
      if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
      std::size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      const auto* data = reinterpret_cast<const unsigned char*>(CMSG_DATA(header));
      for (std::size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, data + i * sizeof(int), sizeof fd);
        message.fds.emplace_back(fd);
      }
    }
    if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
      if (on_closed_) on_closed_(Error{"control message truncated", "control channel", 0});
      return;
    }
    on_message_(std::move(message));
  }
  wait();
}

}  // namespace clusweb::web
