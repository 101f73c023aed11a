#!/usr/bin/env python3
"""A small HTTP application for a clusweb application pool.

It serves on the listening socket it was handed by socket activation
(LISTEN_FDS=1 and LISTEN_PID = our pid: fd 3, unix or TCP), otherwise it binds
127.0.0.1:$PORT. Every path answers with a short text naming the worker pid,
pool and node and echoing the method, path and X-Forwarded-* headers.

  /slow?ms=N   answer after N milliseconds
  /crash       exit at once with status 3 (tests of worker replacement)

HTTP/1.1 keep-alive, one thread per connection. On SIGTERM it stops accepting,
finishes the requests in flight, closes idle connections and exits 0.
"""

import http.server
import os
import signal
import socket
import sys
import threading
import time
import urllib.parse

LISTEN_FDS_START = 3


class Connections:
    """Which connections exist and which are inside a request, for draining."""

    def __init__(self):
        self.lock = threading.Lock()
        self.open = set()
        self.busy = set()
        self.stopping = False

    def add(self, handler):
        with self.lock:
            self.open.add(handler)
            late = self.stopping
        if late:
            handler.connection.shutdown(socket.SHUT_RD)

    def remove(self, handler):
        with self.lock:
            self.open.discard(handler)
            self.busy.discard(handler)

    def begin_request(self, handler):
        with self.lock:
            self.busy.add(handler)

    def end_request(self, handler):
        with self.lock:
            self.busy.discard(handler)
            return self.stopping

    def close_idle(self):
        """Stops new requests; wakes connections waiting for their next one."""
        with self.lock:
            self.stopping = True
            idle = [h for h in self.open if h not in self.busy]
        for handler in idle:
            try:
                handler.connection.shutdown(socket.SHUT_RD)
            except OSError:
                pass


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "clusweb-example-worker/1"

    def setup(self):
        super().setup()
        self.server.connections.add(self)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.connections.remove(self)

    def parse_request(self):
        # The request line has arrived: from here on this connection is busy.
        self.server.connections.begin_request(self)
        return super().parse_request()

    def handle_one_request(self):
        try:
            super().handle_one_request()
        finally:
            if self.server.connections.end_request(self):
                self.close_connection = True

    def address_string(self):
        # Unix sockets have no peer address tuple.
        if isinstance(self.client_address, tuple) and self.client_address:
            return str(self.client_address[0])
        return "unix"

    def log_message(self, format, *args):
        sys.stderr.write("worker pid=%d %s %s\n" % (os.getpid(), self.address_string(), format % args))

    def answer(self):
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length > 0:
            self.rfile.read(length)
        if url.path == "/crash":
            sys.stderr.write("worker pid=%d crashing on request\n" % os.getpid())
            sys.stderr.flush()
            os._exit(3)
        if url.path == "/slow":
            query = urllib.parse.parse_qs(url.query)
            try:
                time.sleep(max(0, int(query.get("ms", ["0"])[0])) / 1000.0)
            except ValueError:
                pass
        lines = [
            "worker pid=%d pool=%s node=%s"
            % (os.getpid(), os.environ.get("CLUSWEB_POOL", ""), os.environ.get("CLUSWEB_NODE", "")),
            "method=%s path=%s" % (self.command, self.path),
        ]
        for name, value in self.headers.items():
            if name.lower().startswith("x-forwarded-"):
                lines.append("%s=%s" % (name.lower(), value))
        body = ("\n".join(lines) + "\n").encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection or self.server.connections.stopping:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = answer


class Server(http.server.ThreadingHTTPServer):
    # Join the connection threads on close, so in-flight requests finish.
    daemon_threads = False
    block_on_close = True

    def __init__(self, listening_socket):
        super().__init__(("127.0.0.1", 0), Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = listening_socket
        self.address_family = listening_socket.family
        self.connections = Connections()


def listening_socket():
    if os.environ.get("LISTEN_FDS") == "1" and os.environ.get("LISTEN_PID") == str(os.getpid()):
        for name in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
            os.environ.pop(name, None)
        sock = socket.socket(fileno=LISTEN_FDS_START)
        sock.set_inheritable(False)
        return sock
    port = int(os.environ.get("PORT", "8000"))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    return sock


def main():
    server = Server(listening_socket())
    sys.stderr.write("worker pid=%d listening on %s\n" % (os.getpid(), server.socket.getsockname() or "unix"))

    def on_sigterm(signum, frame):
        # shutdown() waits for serve_forever(), which runs on this thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGINT, on_sigterm)
    server.serve_forever(poll_interval=0.1)
    server.connections.close_idle()
    server.server_close()


if __name__ == "__main__":
    main()
