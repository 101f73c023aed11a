/*
 * bench_responder: a minimal, fast HTTP/1.1 upstream for proxy benchmarks.
 *
 * Every request gets the same 20-byte answer, so a proxy benchmark measures
 * the proxy in front of it, not the application. Single-threaded epoll loop,
 * non-blocking sockets, keep-alive and pipelining (all complete requests in a
 * read are answered in one write, in order).
 *
 * Listening socket, first match wins:
 *   LISTEN_FDS=1 and LISTEN_PID=<our pid>  socket activation, fd 3
 *   --unix PATH                            unix stream socket, mode 0666
 *   --tcp PORT                             TCP on 127.0.0.1:PORT
 *   PORT=<port> in the environment         TCP on 127.0.0.1:PORT
 *
 * Request handling: the head ends at CRLFCRLF; a Content-Length body is read
 * and discarded; any Transfer-Encoding (chunked bodies) gets 400 and a close;
 * "Connection: close" (or HTTP/1.0 without keep-alive) closes after the answer.
 * SIGTERM or SIGINT ends the process with status 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

enum {
  kActivationFd = 3,
  kInputCapacity = 16 * 1024, /* largest request head accepted */
  kMaxEvents = 256,
};

static const char kBody[] = "hello from upstream\n";

static const char kOkKeepAlive[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 20\r\n"
    "\r\n";
/* HTTP/1.0 clients that asked for keep-alive must be told it is granted. */
static const char kOkKeepAlive10[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 20\r\n"
    "Connection: keep-alive\r\n"
    "\r\n";
static const char kOkClose[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 20\r\n"
    "Connection: close\r\n"
    "\r\n";
static const char kBadRequest[] =
    "HTTP/1.1 400 Bad Request\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 12\r\n"
    "Connection: close\r\n"
    "\r\n"
    "bad request\n";

struct connection {
  int fd;
  bool close_after_write; /* a final answer is queued; read nothing more */
  bool waiting_for_output; /* epoll watches EPOLLOUT instead of EPOLLIN */
  uint64_t body_left;      /* bytes of the current request body still to skip */
  size_t in_len;
  char in[kInputCapacity];
  char* out;
  size_t out_len;
  size_t out_sent;
  size_t out_capacity;
};

/* What the head of one request asks for. */
struct request_head {
  bool bad;       /* malformed, or a body framing we do not support */
  bool close;     /* answer, then close the connection */
  bool http10_keep_alive;
  bool head_only; /* HEAD: no body in the answer */
  uint64_t content_length;
};

static void die(const char* what) {
  fprintf(stderr, "bench_responder: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void usage(void) {
  fprintf(stderr,
          "usage: bench_responder [--unix PATH | --tcp PORT]\n"
          "  without options: socket activation (LISTEN_FDS=1, LISTEN_PID) or PORT=<port>\n");
  exit(2);
}

static void set_nonblocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) die("fcntl O_NONBLOCK");
}

/* Parses a decimal port 1..65535; returns 0 when the text is not one. */
static uint16_t parse_port(const char* text) {
  char* end = NULL;
  errno = 0;
  long value = strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || value < 1 || value > 65535) return 0;
  return (uint16_t)value;
}

/* The activation fd when LISTEN_FDS=1 is addressed to this process, else -1.
 * The variables are removed so that children we might start do not inherit them. */
static int activation_fd(void) {
  const char* fds = getenv("LISTEN_FDS");
  const char* pid = getenv("LISTEN_PID");
  if (fds == NULL || pid == NULL) return -1;
  char* end = NULL;
  long listen_pid = strtol(pid, &end, 10);
  if (*end != '\0' || listen_pid != (long)getpid()) return -1;
  if (strcmp(fds, "1") != 0) {
    fprintf(stderr, "bench_responder: LISTEN_FDS=%s, expected 1\n", fds);
    exit(2);
  }
  unsetenv("LISTEN_FDS");
  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDNAMES");
  if (fcntl(kActivationFd, F_SETFD, FD_CLOEXEC) < 0) die("activation fd 3");
  return kActivationFd;
}

static int listen_unix(const char* path) {
  struct sockaddr_un address;
  memset(&address, 0, sizeof address);
  address.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof address.sun_path) {
    fprintf(stderr, "bench_responder: unix socket path too long: %s\n", path);
    exit(2);
  }
  strcpy(address.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  if (unlink(path) < 0 && errno != ENOENT) die("unlink stale socket");
  if (bind(fd, (struct sockaddr*)&address, sizeof address) < 0) die("bind unix");
  /* Proxies often run as another user (nginx workers run as nobody). */
  if (chmod(path, 0666) < 0) die("chmod socket");
  if (listen(fd, SOMAXCONN) < 0) die("listen");
  return fd;
}

static int listen_tcp(uint16_t port) {
  struct sockaddr_in address;
  memset(&address, 0, sizeof address);
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) die("SO_REUSEADDR");
  if (bind(fd, (struct sockaddr*)&address, sizeof address) < 0) die("bind 127.0.0.1");
  if (listen(fd, SOMAXCONN) < 0) die("listen");
  return fd;
}

/* Case-insensitive search for a token in a comma-separated header value. */
static bool has_token(const char* value, size_t length, const char* token) {
  size_t token_length = strlen(token);
  size_t i = 0;
  while (i < length) {
    while (i < length && (value[i] == ' ' || value[i] == '\t' || value[i] == ',')) i++;
    size_t start = i;
    while (i < length && value[i] != ',') i++;
    size_t end = i;
    while (end > start && (value[end - 1] == ' ' || value[end - 1] == '\t')) end--;
    if (end - start == token_length && strncasecmp(value + start, token, token_length) == 0) {
      return true;
    }
  }
  return false;
}

static bool header_is(const char* name, size_t length, const char* expected) {
  return length == strlen(expected) && strncasecmp(name, expected, length) == 0;
}

/* Parses a request head: `head` spans the request line and the header lines,
 * each ending in CRLF (the final empty line excluded). */
static struct request_head parse_head(const char* head, size_t length) {
  struct request_head result = {0};
  const char* end = head + length;
  const char* line_end = memmem(head, length, "\r\n", 2);
  if (line_end == NULL) line_end = end;

  /* Request line: METHOD SP TARGET SP HTTP/1.x */
  const char* method_end = memchr(head, ' ', (size_t)(line_end - head));
  if (method_end == NULL || line_end - head < 8 ||
      memcmp(line_end - 8, "HTTP/1.", 7) != 0) {
    result.bad = true;
    return result;
  }
  result.head_only = (method_end - head == 4 && memcmp(head, "HEAD", 4) == 0);
  bool http10 = (line_end[-1] == '0');
  bool keep_alive_token = false;
  bool seen_length = false;

  const char* line = line_end + 2;
  while (line < end) {
    const char* next = memmem(line, (size_t)(end - line), "\r\n", 2);
    if (next == NULL) next = end;
    const char* colon = memchr(line, ':', (size_t)(next - line));
    if (colon == NULL) {
      result.bad = true;
      return result;
    }
    const char* value = colon + 1;
    while (value < next && (*value == ' ' || *value == '\t')) value++;
    size_t name_length = (size_t)(colon - line);
    size_t value_length = (size_t)(next - value);

    if (header_is(line, name_length, "content-length")) {
      uint64_t parsed = 0;
      size_t digits = 0;
      while (digits < value_length && value[digits] >= '0' && value[digits] <= '9') {
        if (parsed > (UINT64_MAX - 9) / 10) {
          result.bad = true;
          return result;
        }
        parsed = parsed * 10 + (uint64_t)(value[digits] - '0');
        digits++;
      }
      size_t rest = digits;
      while (rest < value_length && (value[rest] == ' ' || value[rest] == '\t')) rest++;
      if (digits == 0 || rest != value_length || (seen_length && parsed != result.content_length)) {
        result.bad = true;
        return result;
      }
      seen_length = true;
      result.content_length = parsed;
    } else if (header_is(line, name_length, "transfer-encoding")) {
      /* Chunked request bodies are not supported: refuse rather than misframe. */
      result.bad = true;
      return result;
    } else if (header_is(line, name_length, "connection")) {
      if (has_token(value, value_length, "close")) result.close = true;
      if (has_token(value, value_length, "keep-alive")) keep_alive_token = true;
    }
    line = next + 2;
  }
  if (http10) {
    if (keep_alive_token && !result.close) {
      result.http10_keep_alive = true;
    } else {
      result.close = true;
    }
  }
  return result;
}

static void append_output(struct connection* c, const char* data, size_t length) {
  if (c->out_len + length > c->out_capacity) {
    size_t capacity = c->out_capacity ? c->out_capacity : 4096;
    while (capacity < c->out_len + length) capacity *= 2;
    char* grown = realloc(c->out, capacity);
    if (grown == NULL) die("realloc");
    c->out = grown;
    c->out_capacity = capacity;
  }
  memcpy(c->out + c->out_len, data, length);
  c->out_len += length;
}

static void queue_answer(struct connection* c, const struct request_head* request) {
  if (request->bad) {
    append_output(c, kBadRequest, sizeof kBadRequest - 1);
    c->close_after_write = true;
    return;
  }
  if (request->close) {
    append_output(c, kOkClose, sizeof kOkClose - 1);
    c->close_after_write = true;
  } else if (request->http10_keep_alive) {
    append_output(c, kOkKeepAlive10, sizeof kOkKeepAlive10 - 1);
  } else {
    append_output(c, kOkKeepAlive, sizeof kOkKeepAlive - 1);
  }
  if (!request->head_only) append_output(c, kBody, sizeof kBody - 1);
}

/* Answers every complete request in the input buffer; keeps a partial one. */
static void process_input(struct connection* c) {
  size_t position = 0;
  while (position < c->in_len && !c->close_after_write) {
    if (c->body_left > 0) {
      size_t available = c->in_len - position;
      size_t skip = c->body_left < available ? (size_t)c->body_left : available;
      position += skip;
      c->body_left -= skip;
      continue;
    }
    const char* start = c->in + position;
    size_t available = c->in_len - position;
    const char* head_end = memmem(start, available, "\r\n\r\n", 4);
    if (head_end == NULL) {
      if (available == sizeof c->in) {
        struct request_head too_large = {.bad = true};
        queue_answer(c, &too_large);
      }
      break;
    }
    /* Include the CRLF of the last header line, exclude the empty line. */
    struct request_head request = parse_head(start, (size_t)(head_end - start) + 2);
    queue_answer(c, &request);
    position += (size_t)(head_end - start) + 4;
    c->body_left = request.content_length;
  }
  if (c->close_after_write) {
    c->in_len = 0;
    return;
  }
  memmove(c->in, c->in + position, c->in_len - position);
  c->in_len -= position;
}

static void close_connection(struct connection* c) {
  close(c->fd);
  free(c->out);
  free(c);
}

static void watch(int epoll_fd, struct connection* c, bool for_output) {
  struct epoll_event event = {.events = for_output ? EPOLLOUT : EPOLLIN, .data.ptr = c};
  if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c->fd, &event) < 0) die("epoll_ctl MOD");
  c->waiting_for_output = for_output;
}

/* Sends queued output. Returns false when the connection is finished. */
static bool flush_output(int epoll_fd, struct connection* c) {
  while (c->out_sent < c->out_len) {
    ssize_t n = send(c->fd, c->out + c->out_sent, c->out_len - c->out_sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        /* Stop reading until the peer drains what it asked for. */
        if (!c->waiting_for_output) watch(epoll_fd, c, true);
        return true;
      }
      return false;
    }
    c->out_sent += (size_t)n;
  }
  c->out_len = 0;
  c->out_sent = 0;
  if (c->close_after_write) return false;
  if (c->waiting_for_output) watch(epoll_fd, c, false);
  return true;
}

/* Reads what is available and answers it. Returns false when finished. */
static bool on_readable(int epoll_fd, struct connection* c) {
  for (;;) {
    ssize_t n = recv(c->fd, c->in + c->in_len, sizeof c->in - c->in_len, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
    if (n == 0) return false;
    c->in_len += (size_t)n;
    break;
  }
  process_input(c);
  return flush_output(epoll_fd, c);
}

static void accept_all(int epoll_fd, int listen_fd, bool tcp) {
  for (;;) {
    int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        fprintf(stderr, "bench_responder: accept: %s\n", strerror(errno));
        return;
      }
      die("accept4");
    }
    if (tcp) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    struct connection* c = calloc(1, sizeof *c);
    if (c == NULL) die("calloc");
    c->fd = fd;
    struct epoll_event event = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) < 0) die("epoll_ctl ADD");
  }
}

int main(int argc, char** argv) {
  const char* unix_path = NULL;
  uint16_t tcp_port = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--unix") == 0 && i + 1 < argc) {
      unix_path = argv[++i];
    } else if (strcmp(argv[i], "--tcp") == 0 && i + 1 < argc) {
      tcp_port = parse_port(argv[++i]);
      if (tcp_port == 0) usage();
    } else {
      usage();
    }
  }
  if (unix_path != NULL && tcp_port != 0) usage();

  int listen_fd = activation_fd();
  const char* created_path = NULL; /* removed again at exit */
  if (listen_fd < 0) {
    if (unix_path != NULL) {
      listen_fd = listen_unix(unix_path);
      created_path = unix_path;
    } else if (tcp_port != 0) {
      listen_fd = listen_tcp(tcp_port);
    } else if (getenv("PORT") != NULL && parse_port(getenv("PORT")) != 0) {
      listen_fd = listen_tcp(parse_port(getenv("PORT")));
    } else {
      usage();
    }
  }
  set_nonblocking(listen_fd);

  struct sockaddr_storage local;
  socklen_t local_length = sizeof local;
  if (getsockname(listen_fd, (struct sockaddr*)&local, &local_length) < 0) die("getsockname");
  bool tcp = local.ss_family == AF_INET || local.ss_family == AF_INET6;

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  if (sigprocmask(SIG_BLOCK, &stop_signals, NULL) < 0) die("sigprocmask");
  int signal_fd = signalfd(-1, &stop_signals, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signal_fd < 0) die("signalfd");

  int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) die("epoll_create1");
  /* The listening and signal fds are told apart by pointer identity. */
  static int listen_tag;
  static int signal_tag;
  struct epoll_event event = {.events = EPOLLIN, .data.ptr = &listen_tag};
  if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &event) < 0) die("epoll_ctl listen");
  event.data.ptr = &signal_tag;
  if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, signal_fd, &event) < 0) die("epoll_ctl signal");

  struct epoll_event events[kMaxEvents];
  for (;;) {
    int ready = epoll_wait(epoll_fd, events, kMaxEvents, -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < ready; i++) {
      void* tag = events[i].data.ptr;
      if (tag == &signal_tag) {
        if (created_path != NULL) unlink(created_path);
        return 0;
      }
      if (tag == &listen_tag) {
        accept_all(epoll_fd, listen_fd, tcp);
        continue;
      }
      struct connection* c = tag;
      bool alive;
      if (events[i].events & (EPOLLERR | EPOLLHUP)) {
        alive = false;
      } else if (c->waiting_for_output) {
        alive = flush_output(epoll_fd, c);
      } else {
        alive = on_readable(epoll_fd, c);
      }
      if (!alive) close_connection(c);
    }
  }
}
