"""Limits against hostile clients: head and body sizes, header count, smuggling shapes, the
header-read and idle timeouts, the connection cap."""

import time
import unittest

from harness import (ECHO_WORKER, RawConnection, ServiceTestCase, free_ports, http_request,
                     raw_exchange, raw_response_or_close, wait_for)

MAX_HEADER_BYTES = 2048
MAX_HEADERS = 20
MAX_BODY = 1024


class LimitsTest(ServiceTestCase):
    @classmethod
    def configure(cls, web):
        (cls.port,) = free_ports(1)
        root = web.site_folder("site", {"index.html": "ok\n"})
        worker = web.worker(ECHO_WORKER)
        web.write_manifest("web.yaml", f"""
            kind: WebServer
            limits:
              maxHeaderBytes: 2KiB
              maxHeaders: {MAX_HEADERS}
              maxBodyBytes: {MAX_BODY}
              headerTimeout: 1s
              idleTimeout: 2s
            ---
            kind: Site
            name: site
            physicalPath: {root}
            bindings: [http://127.0.0.1:{cls.port}]
            applications: [{{path: /app, pool: app}}]
            ---
            kind: ApplicationPool
            name: app
            command: [{worker}]
            """)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.web.wait_pool("app")

    def send(self, data):
        return raw_exchange(self.port, data)

    def assertServedAfterwards(self):
        response, body = http_request(self.port, "/")
        self.assertEqual((response.status, body), (200, b"ok\n"))

    # ---- heads ----

    def test_head_too_large_is_431(self):
        big = "a" * (MAX_HEADER_BYTES + 100)
        response = self.send(("GET / HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n" % big).encode())
        self.assertEqual(response.status, 431)
        self.assertServedAfterwards()

    def test_head_just_below_limit_is_served(self):
        filler = "a" * (MAX_HEADER_BYTES - 200)
        response = self.send(("GET / HTTP/1.1\r\nHost: x\r\nX-Fill: %s\r\n\r\n" % filler).encode())
        self.assertEqual(response.status, 200)

    def test_too_many_headers_is_431(self):
        headers = "".join("X-H%d: v\r\n" % i for i in range(MAX_HEADERS + 5))
        response = self.send(("GET / HTTP/1.1\r\nHost: x\r\n%s\r\n" % headers).encode())
        self.assertEqual(response.status, 431)
        headers = "".join("X-H%d: v\r\n" % i for i in range(MAX_HEADERS - 2))
        response = self.send(("GET / HTTP/1.1\r\nHost: x\r\n%s\r\n" % headers).encode())
        self.assertEqual(response.status, 200)

    def test_too_many_headers_to_application_is_431(self):
        headers = "".join("X-H%d: v\r\n" % i for i in range(MAX_HEADERS + 5))
        response = self.send(("GET /app/x HTTP/1.1\r\nHost: x\r\n%s\r\n" % headers).encode())
        self.assertEqual(response.status, 431)

    # ---- bodies ----

    def test_body_over_limit_is_413(self):
        for path in ("/app/echo", "/"):
            with self.subTest(path=path):
                response = raw_response_or_close(
                    self.port, b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                    % (path.encode(), MAX_BODY + 1) + b"x" * (MAX_BODY + 1))
                self.assertIsNotNone(response, "closed without a response")
                self.assertEqual(response.status, 413)

    def test_body_at_limit_is_accepted(self):
        body = b"y" * MAX_BODY
        response, data = http_request(self.port, "/app/echo", method="POST", body=body)
        self.assertEqual((response.status, data), (200, body))

    def test_chunked_body_over_limit_is_413(self):
        chunk = b"z" * 600
        request = (b"POST /app/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   + (b"%x\r\n%s\r\n" % (len(chunk), chunk)) * 2 + b"0\r\n\r\n")
        response = raw_response_or_close(self.port, request)
        self.assertIsNotNone(response, "a chunked body over maxBodyBytes: closed, no response")
        self.assertEqual(response.status, 413)

    def test_chunked_body_over_limit_to_static_is_413(self):
        chunk = b"z" * 600
        request = (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   + (b"%x\r\n%s\r\n" % (len(chunk), chunk)) * 2 + b"0\r\n\r\n")
        response = raw_response_or_close(self.port, request)
        self.assertIsNotNone(response, "a chunked body over maxBodyBytes: closed, no response")
        self.assertEqual(response.status, 413)

    # ---- smuggling shapes ----

    def test_content_length_and_transfer_encoding_is_400(self):
        response = raw_response_or_close(
            self.port, b"POST /app/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertIsNotNone(response)
        self.assertEqual(response.status, 400)

    def test_two_content_lengths_is_400(self):
        response = raw_response_or_close(
            self.port, b"POST /app/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
            b"Content-Length: 5\r\n\r\nabcde")
        self.assertIsNotNone(response)
        self.assertEqual(response.status, 400)

    def test_layered_transfer_encoding_is_501(self):
        response = raw_response_or_close(
            self.port, b"POST /app/echo HTTP/1.1\r\nHost: x\r\n"
            b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n")
        self.assertIsNotNone(response)
        self.assertEqual(response.status, 501)

    def test_transfer_encoding_in_http10_is_400(self):
        response = raw_response_or_close(
            self.port, b"POST /app/echo HTTP/1.0\r\nHost: x\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        self.assertIsNotNone(response)
        self.assertEqual(response.status, 400)

    def test_refused_request_closes_the_connection(self):
        with RawConnection(self.port) as conn:
            conn.send(b"POST /app/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                      b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(conn.read_response().status, 400)
            self.assertTrue(conn.closed_by_server(), "the smuggled request could be read")

    # ---- timeouts ----

    def test_header_timeout_disconnects_slow_client_while_others_are_served(self):
        with RawConnection(self.port) as slow:
            started = time.monotonic()
            slow.send(b"GET / HTTP/1.1\r\nHost: x\r\n")  # half a head, never finished
            response, body = http_request(self.port, "/")
            self.assertEqual((response.status, body), (200, b"ok\n"))
            self.assertTrue(slow.closed_by_server(timeout=5), "the slow client stays connected")
            elapsed = time.monotonic() - started
        self.assertGreater(elapsed, 0.7)
        self.assertLess(elapsed, 4.0)

    def test_header_timeout_counts_the_whole_head(self):
        # Dribbling a byte at a time does not extend the deadline.
        with RawConnection(self.port) as slow:
            started = time.monotonic()
            head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 200
            closed = False
            for byte in head:
                try:
                    slow.send(bytes([byte]))
                except OSError:
                    closed = True
                    break
                if not slow.still_open(wait=0.05):
                    closed = True
                    break
                if time.monotonic() - started > 5:
                    break
            self.assertTrue(closed or slow.closed_by_server(timeout=1),
                            "a dribbling client stays connected")
            self.assertLess(time.monotonic() - started, 4.0)

    def test_header_timeout_applies_to_later_requests(self):
        # After a first request, a half-sent second head is cut off too (within the idle or
        # header timeout, whichever the server applies).
        with RawConnection(self.port) as conn:
            self.assertEqual(conn.exchange("GET", "/", host="x").status, 200)
            started = time.monotonic()
            conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
            self.assertTrue(conn.closed_by_server(timeout=6))
            self.assertLess(time.monotonic() - started, 4.0)

    def test_worker_slower_than_idle_timeout_gets_504(self):
        with RawConnection(self.port) as conn:
            started = time.monotonic()
            conn.send(b"GET /app/slow?ms=6000 HTTP/1.1\r\nHost: x\r\n\r\n")
            response = conn.read_response()
            elapsed = time.monotonic() - started
        self.assertEqual(response.status, 504)
        self.assertGreater(elapsed, 1.5)
        self.assertLess(elapsed, 4.5)
        # The pool goes on serving.
        response, body = http_request(self.port, "/app/echo")
        self.assertEqual(response.status, 200)

    def test_idle_keep_alive_connection_is_closed(self):
        with RawConnection(self.port) as conn:
            self.assertEqual(conn.exchange("GET", "/", host="x").status, 200)
            started = time.monotonic()
            self.assertTrue(conn.closed_by_server(timeout=8))
            elapsed = time.monotonic() - started
        self.assertGreater(elapsed, 1.5)
        self.assertLess(elapsed, 5.0)


class MaxConnectionsTest(ServiceTestCase):
    @classmethod
    def configure(cls, web):
        (cls.port,) = free_ports(1)
        root = web.site_folder("site", {"index.html": "ok\n"})
        web.write_manifest("web.yaml", f"""
            kind: WebServer
            limits:
              maxConnections: 3
            ---
            kind: Site
            name: site
            physicalPath: {root}
            bindings: [http://127.0.0.1:{cls.port}]
            """)

    def test_connections_over_the_cap_are_refused(self):
        held = [RawConnection(self.port) for _ in range(3)]
        try:
            for conn in held:
                self.assertEqual(conn.exchange("GET", "/", host="x").status, 200)
            extra = RawConnection(self.port)
            try:
                extra.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertTrue(extra.closed_by_server(timeout=5),
                                "a fourth connection was served")
                self.assertFalse(extra.buffer.startswith(b"HTTP/1.1 200"))
            finally:
                extra.close()
            # The held ones still work.
            self.assertEqual(held[0].exchange("GET", "/", host="x").status, 200)
            held.pop().close()

            def served():
                with RawConnection(self.port) as conn:
                    return conn.exchange("GET", "/", host="x").status == 200
            wait_for(served, message="a new connection to be served once one closed")
        finally:
            for conn in held:
                conn.close()


if __name__ == "__main__":
    unittest.main()
