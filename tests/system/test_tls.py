"""HTTPS bindings: TLS with SNI, one certificate per host name on a shared port."""

import hashlib
import json
import os
import ssl
import time
import unittest

from harness import (ECHO_WORKER, RawConnection, ServiceTestCase, free_ports, http_request,
                     https_request, tls_connect, tls_context, write_file)

BIG = bytes(range(256)) * 1024  # 256 KiB: many TLS records


class TlsTest(ServiceTestCase):
    @classmethod
    def configure(cls, web):
        cls.tls_port, cls.plain_port, cls.single_port = free_ports(3)
        cls.cert_a, key_a = web.certificate("a.example.com")
        cls.cert_b, key_b = web.certificate("b.example.com")
        cls.cert_c, key_c = web.certificate("c.example.com")
        root_a = web.site_folder("a", {"index.html": "site a\n"})
        write_file(os.path.join(root_a, "big.bin"), BIG)
        root_b = web.site_folder("b", {"index.html": "site b\n"})
        root_c = web.site_folder("c", {"index.html": "site c\n"})
        worker = web.worker(ECHO_WORKER)
        web.write_manifest("web.yaml", f"""
            kind: WebServer
            limits: {{headerTimeout: 1s}}
            ---
            kind: Site
            name: a
            physicalPath: {root_a}
            bindings:
              - url: https://127.0.0.1:{cls.tls_port}/a.example.com
                certificate: {cls.cert_a}
                key: {key_a}
              - http://127.0.0.1:{cls.plain_port}/a.example.com
            applications: [{{path: /app, pool: app}}]
            ---
            kind: Site
            name: b
            physicalPath: {root_b}
            bindings:
              - url: https://127.0.0.1:{cls.tls_port}/b.example.com
                certificate: {cls.cert_b}
                key: {key_b}
            ---
            kind: Site
            name: c
            physicalPath: {root_c}
            bindings:
              - url: https://127.0.0.1:{cls.single_port}
                certificate: {cls.cert_c}
                key: {key_c}
            ---
            kind: ApplicationPool
            name: app
            command: [{worker}]
            """)

    def setUp(self):
        self.context = tls_context(self.cert_a, self.cert_b, self.cert_c)

    def test_sni_selects_certificate_and_site(self):
        response, cn = https_request(self.tls_port, "a.example.com", self.context)
        self.assertEqual((cn, response.status, response.body), ("a.example.com", 200, b"site a\n"))
        response, cn = https_request(self.tls_port, "b.example.com", self.context)
        self.assertEqual((cn, response.status, response.body), ("b.example.com", 200, b"site b\n"))

    def test_certificate_verifies_for_its_host_name(self):
        strict = ssl.create_default_context(cafile=self.cert_b)  # checks the host name too
        with tls_connect(self.tls_port, "b.example.com", strict) as conn:
            response = conn.exchange("GET", "/", host="b.example.com")
            self.assertEqual((response.status, response.body), (200, b"site b\n"))

    def test_binding_without_host_serves_any_sni(self):
        for name in ("c.example.com", "whatever.test"):
            response, cn = https_request(self.single_port, name, self.context)
            self.assertEqual((cn, response.status, response.body),
                             ("c.example.com", 200, b"site c\n"))

    def test_keep_alive_over_tls(self):
        with tls_connect(self.tls_port, "a.example.com", self.context) as conn:
            for _ in range(3):
                response = conn.exchange("GET", "/", host="a.example.com")
                self.assertEqual((response.status, response.body), (200, b"site a\n"))

    def test_large_file_over_tls(self):
        with tls_connect(self.tls_port, "a.example.com", self.context) as conn:
            response = conn.exchange("GET", "/big.bin", host="a.example.com")
            self.assertEqual(response.status, 200)
            self.assertEqual(hashlib.sha256(response.body).digest(), hashlib.sha256(BIG).digest())
            response = conn.exchange("GET", "/big.bin", host="a.example.com",
                                     headers={"Range": "bytes=1000-99999"})
            self.assertEqual((response.status, response.body), (206, BIG[1000:100000]))

    def test_proxied_request_says_https(self):
        self.web.wait_pool("app")
        with tls_connect(self.tls_port, "a.example.com", self.context) as conn:
            response = conn.exchange("GET", "/app/headers", host="a.example.com")
            self.assertEqual(response.status, 200)
            headers = {k.lower(): v for k, v in json.loads(response.body)["headers"]}
        self.assertEqual(headers["x-forwarded-proto"], "https")
        self.assertEqual(headers["x-forwarded-host"], "a.example.com")
        response, body = http_request(self.plain_port, "/app/headers", host="a.example.com")
        headers = {k.lower(): v for k, v in json.loads(body)["headers"]}
        self.assertEqual(headers["x-forwarded-proto"], "http")

    def test_stalled_handshake_is_cut_off(self):
        # A client that connects and never starts the handshake is disconnected at the
        # header timeout (1 s here).
        with RawConnection(self.tls_port) as conn:
            started = time.monotonic()
            self.assertTrue(conn.closed_by_server(timeout=6), "a silent TLS client stays")
            self.assertLess(time.monotonic() - started, 4.0)

    def test_plain_http_on_tls_port_is_not_served(self):
        # A client speaking plain HTTP to the TLS port gets no HTTP response.
        response = None
        try:
            response, _ = http_request(self.tls_port, "/", host="a.example.com", timeout=5)
        except Exception:  # noqa: BLE001 - a closed or garbled connection is the point
            pass
        self.assertTrue(response is None or response.status >= 400, response)


if __name__ == "__main__":
    unittest.main()
