#!/usr/bin/env python3
"""A pool worker for the system tests: it reports what reached it.

Listens like examples/pool/worker.py (socket activation on fd 3, else 127.0.0.1:$PORT) and
answers HTTP/1.1 with keep-alive:

The last path segment selects the behaviour (/app/echo is "echo"):

  /echo            the request body back, with X-Body-Length, X-Body-Sha256 and X-Body-Chunked
                   (Content-Length or chunked request bodies)
  /headers         the request line and headers as JSON
  /env             the environment, working directory, pid and uid as JSON
  /closedelimited  a body without length or chunking, ended by closing the connection
  /stream?chunks=N&size=M[&ms=D]   a chunked response of N chunks of M bytes ('a'..), D ms apart
  /slow?ms=N       answers after N milliseconds
  /crash           exits at once with status 3
  anything else    "pid=PID pool=POOL"
On SIGTERM it stops accepting, closes idle connections, finishes the requests in flight and
exits 0.
"""

import hashlib
import http.server
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.parse


class Connections:
    """Open connections and those inside a request, so SIGTERM can drain."""

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

    def begin(self, handler):
        with self.lock:
            self.busy.add(handler)

    def end(self, handler):
        with self.lock:
            self.busy.discard(handler)
            return self.stopping

    def close_idle(self):
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
    server_version = "clusweb-echo-worker/1"

    def setup(self):
        super().setup()
        self.server.connections.add(self)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.connections.remove(self)

    def parse_request(self):
        self.server.connections.begin(self)
        return super().parse_request()

    def handle_one_request(self):
        try:
            super().handle_one_request()
        finally:
            if self.server.connections.end(self):
                self.close_connection = True

    def log_message(self, format, *args):
        sys.stderr.write("echo-worker pid=%d %s\n" % (os.getpid(), format % args))

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                line = self.rfile.readline()
                if not line:
                    raise ConnectionError("eof in chunked body")
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts), True
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return (self.rfile.read(length) if length else b""), False

    def send_body(self, body, content_type="text/plain; charset=utf-8", extra=()):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def answer(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        # The last path segment chooses the behaviour, whatever prefix the application has.
        name = url.path.rsplit("/", 1)[-1]
        body, chunked = self.read_body()
        if name == "crash":
            os._exit(3)
        if name == "slow":
            time.sleep(int(query.get("ms", ["0"])[0]) / 1000.0)
        if name == "echo":
            self.send_body(body, "application/octet-stream", [
                ("X-Body-Length", str(len(body))),
                ("X-Body-Sha256", hashlib.sha256(body).hexdigest()),
                ("X-Body-Chunked", "yes" if chunked else "no"),
                ("X-Worker-Pid", str(os.getpid()))])
            return
        if name == "headers":
            data = {"method": self.command, "path": self.path,
                    "headers": [[k, v] for k, v in self.headers.items()], "pid": os.getpid()}
            self.send_body(json.dumps(data).encode(), "application/json")
            return
        if name == "env":
            data = {"environ": dict(os.environ), "cwd": os.getcwd(), "pid": os.getpid(),
                    "uid": os.getuid()}
            self.send_body(json.dumps(data).encode(), "application/json")
            return
        if name == "closedelimited":
            # No length, no chunking: the body ends when the connection closes.
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"until the end of the connection\n")
            self.close_connection = True
            return
        if name == "stream":
            chunks = int(query.get("chunks", ["3"])[0])
            size = int(query.get("size", ["10"])[0])
            pause = int(query.get("ms", ["0"])[0]) / 1000.0
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(chunks):
                piece = bytes([ord("a") + i % 26]) * size
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
                if pause:
                    time.sleep(pause)
            self.wfile.write(b"0\r\n\r\n")
            return
        text = "pid=%d pool=%s\n" % (os.getpid(), os.environ.get("CLUSWEB_POOL", ""))
        self.send_body(text.encode(), extra=[("X-Worker-Pid", str(os.getpid()))])

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = answer


class Server(http.server.ThreadingHTTPServer):
    # Join the connection threads on close, so requests in flight finish.
    daemon_threads = False
    block_on_close = True

    def __init__(self, listening):
        super().__init__(("127.0.0.1", 0), Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = listening
        self.address_family = listening.family
        self.connections = Connections()


def listening_socket():
    if os.environ.get("LISTEN_FDS") == "1" and os.environ.get("LISTEN_PID") == str(os.getpid()):
        return socket.socket(fileno=3)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", int(os.environ["PORT"])))
    sock.listen(128)
    return sock


def main():
    server = Server(listening_socket())
    signal.signal(signal.SIGTERM,
                  lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    server.serve_forever(poll_interval=0.05)
    server.connections.close_idle()
    server.server_close()


if __name__ == "__main__":
    main()
