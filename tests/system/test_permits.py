"""Serving permits: a clustered site serves only while the cluster agent's permit (a deadline on
CLOCK_BOOTTIME) is live. Sites named by --clustered-sites do not start by themselves, `site
start` is refused without a permit, and when a permit runs out or is revoked the front end
closes the site's connections and aborts its responses in flight, on its own, even while the
master is frozen."""

import os
import re
import signal
import socket
import time
import unittest

from harness import (ECHO_WORKER, WAIT_TIMEOUT, RawConnection, ServiceTestCase, free_ports,
                     http_request, wait_for, write_file)

BIG_FILE_BYTES = 64 << 20
# Long enough that nothing the tests do before they shorten it comes near the end.
LONG_PERMIT_MS = 60_000


def boottime_ms():
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * 1000)


class SlowReader:
    """A GET whose body is read only when the test says so: the client's tiny receive buffer
    makes the server wait with most of a large response still to send."""

    def __init__(self, port, host, path):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        self.sock.settimeout(10.0)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path, host)).encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError("connection closed before the response head")
            data += chunk
        head, _, self.body = data.partition(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1])
        match = re.search(rb"\r\ncontent-length: *(\d+)", head, re.IGNORECASE)
        self.length = int(match.group(1)) if match else None

    def read_some(self, at_least):
        while len(self.body) < at_least:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError("connection closed after %d body bytes" % len(self.body))
            self.body += chunk

    def read_to_end(self, timeout=WAIT_TIMEOUT):
        """Reads until the server closes; False when it keeps the connection open (the whole
        body arrived and it waits for the next request)."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.sock.settimeout(max(0.05, deadline - time.monotonic()))
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    return True
                self.body += chunk
        except socket.timeout:
            return False
        except OSError:
            return True
        return False

    def close(self):
        self.sock.close()


class PermitTest(ServiceTestCase):
    @classmethod
    def configure(cls, web):
        (cls.port,) = free_ports(1)
        sites = {}
        for name in ("shop", "cart", "blog", "news", "idle", "plain", "late"):
            sites[name] = web.site_folder(name, {"index.html": "%s\n" % name})
        with open(os.path.join(sites["shop"], "big.bin"), "wb") as f:
            f.truncate(BIG_FILE_BYTES)
        os.chmod(os.path.join(sites["shop"], "big.bin"), 0o644)
        worker = web.worker(ECHO_WORKER)
        documents = []
        for name, root in sites.items():
            documents.append(f"""
                kind: Site
                name: {name}
                physicalPath: {root}
                bindings: [http://127.0.0.1:{cls.port}/{name}.test]
                applications: [{{path: /app, pool: echo}}]
                """)
        documents.append(f"""
                kind: ApplicationPool
                name: echo
                command: [{worker}]
                shutdownTimeLimit: 5s
                """)
        manifest = "---".join(documents)
        web.write_manifest("web.yaml", manifest)
        cls.clustered_file = web.path("clustered-sites")
        cls.clustered_text = ("# sites of the cluster's groups\n"
                              "shop\n"
                              "   cart   # trailing comment\n"
                              "\n"
                              "blog\n"
                              "nosuchsite\n"
                              "news\n"
                              "idle\n")
        write_file(cls.clustered_file, cls.clustered_text)
        web.extra_args = ["--clustered-sites", cls.clustered_file]

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.web.wait_pool("echo")

    # ---- helpers ----

    def get(self, site, path="/"):
        return http_request(self.port, path, host=site + ".test")

    def permit(self, site, deadline):
        return self.web.admin("POST", "/v1/permits/" + site, {"deadlineBoottimeMs": deadline})

    def grant(self, site, milliseconds):
        """Grants a permit ending `milliseconds` from now; returns its deadline."""
        deadline = boottime_ms() + milliseconds
        status, body = self.permit(site, deadline)
        self.assertEqual(status, 200, body)
        self.assertEqual((body["site"], body["clustered"]), (site, True))
        self.assertGreater(body["permitRemainingMs"], 0)
        self.assertLessEqual(body["permitRemainingMs"], milliseconds)
        return deadline

    def start(self, site):
        self.assertEqual(self.web.api("POST", "/v1/sites/%s/start" % site)["state"], "Started")
        wait_for(lambda: self.get(site)[0].status == 200, message="site %s to serve" % site)

    def assert_refused(self, site):
        response, _ = self.get(site)
        self.assertEqual(response.status, 503)
        self.assertIn(response.getheader("X-Clusweb-Reason"), ("SiteStopped", "NoServingPermit"))

    def assert_plain_serves(self):
        response, body = self.get("plain")
        self.assertEqual((response.status, body), (200, b"plain\n"))

    # ---- start-up and refusals ----

    def test_clustered_sites_do_not_start_by_themselves(self):
        for name in ("shop", "cart", "blog", "news", "idle"):
            site = self.web.site(name)
            self.assertTrue(site["autoStart"], name)
            self.assertTrue(site["clustered"], name)
        idle = self.web.site("idle")
        self.assertEqual((idle["state"], idle["permitRemainingMs"]), ("Stopped", None))
        self.assert_refused("idle")
        plain = self.web.site("plain")
        self.assertEqual((plain["state"], plain["clustered"], plain["permitRemainingMs"]),
                         ("Started", False, None))
        self.assert_plain_serves()
        listed = {s["name"]: s["clustered"] for s in self.web.api("GET", "/v1/sites")["sites"]}
        self.assertEqual(listed["idle"], True)
        self.assertEqual(listed["plain"], False)
        # The name that is no site is reported with its file and line, and did no harm.
        self.assertIn('%s:6: site "nosuchsite" is not in the configuration' % self.clustered_file,
                      self.web.log())
        shown = self.web.cli("site", "show", "idle", "--run-dir", self.web.run_dir).stdout
        self.assertRegex(shown, r"clustered: +yes\n")
        self.assertRegex(shown, r"permit: +none\n")

    def test_start_is_refused_without_a_permit(self):
        status, body = self.web.admin("POST", "/v1/sites/idle/start")
        self.assertEqual(status, 409, body)
        self.assertIn('site "idle" is clustered', body["error"])
        self.assertIn("serving permit", body["error"])
        done = self.web.cli("site", "start", "idle", "--run-dir", self.web.run_dir, check=False)
        self.assertEqual(done.returncode, 1)
        self.assertIn("serving permit", done.stderr)
        self.assertEqual(self.web.site("idle")["state"], "Stopped")
        self.assert_refused("idle")

    def test_bad_permit_requests(self):
        status, body = self.permit("nosuchsite", boottime_ms() + 1000)
        self.assertEqual(status, 404, body)
        self.assertIn("nosuchsite", body["error"])
        for payload, words in ((b"not json", "not JSON"),
                               (b"{}", '"deadlineBoottimeMs" is missing'),
                               (b'{"deadlineBoottimeMs": "soon"}', "whole number"),
                               (b'{"deadlineBoottimeMs": -5}', "must not be negative"),
                               (b'{"deadlineMs": 5}', '"deadlineMs" is unknown')):
            with self.subTest(payload=payload):
                status, body = self.web.admin("POST", "/v1/permits/idle", payload)
                self.assertEqual(status, 400, body)
                self.assertIn(words, body["error"])
        status, body = self.web.admin("GET", "/v1/permits/idle")
        self.assertEqual(status, 405, body)
        # None of that gave idle a permit.
        self.assertIsNone(self.web.site("idle")["permitRemainingMs"])

    # ---- expiry ----

    def test_expiry_closes_connections_and_aborts_responses(self):
        events = self.web.events()
        self.addCleanup(events.close)
        self.grant("shop", LONG_PERMIT_MS)
        self.start("shop")
        with RawConnection(self.port) as idle, RawConnection(self.port) as plain, \
                RawConnection(self.port) as streaming:
            self.assertEqual(idle.exchange("GET", "/", host="shop.test").status, 200)
            self.assertEqual(plain.exchange("GET", "/", host="plain.test").status, 200)
            # A proxied response in flight: 400 chunks 50 ms apart (20 s).
            streaming.request("GET", "/app/stream?chunks=400&size=1000&ms=50", host="shop.test")
            streaming.read_line()  # the status line: the response has begun
            download = SlowReader(self.port, "shop.test", "/big.bin")
            self.addCleanup(download.close)
            self.assertEqual((download.status, download.length), (200, BIG_FILE_BYTES))
            download.read_some(65536)

            # Now the permit ends in 2 s (a renewal may shorten it, too).
            deadline = self.grant("shop", 2000)

            self.assertTrue(idle.closed_by_server(), "the idle keep-alive connection stays open")
            self.assertGreaterEqual(boottime_ms(), deadline, "closed before the deadline")
            self.assertTrue(streaming.closed_by_server(),
                            "the proxied response went on after the deadline")
            self.assertFalse(streaming.buffer.endswith(b"0\r\n\r\n"))
            self.assertTrue(download.read_to_end(), "the large download went on")
            self.assertLess(len(download.body), BIG_FILE_BYTES)
            self.assert_refused("shop")

            site = wait_for(lambda: (lambda s: s if s["state"] == "Stopped" else None)(
                self.web.site("shop")), message="shop to be Stopped")
            self.assertEqual((site["reason"], site["clustered"], site["permitRemainingMs"]),
                             ("serving permit expired", True, 0))
            events.wait_for(lambda e: e.get("type") == "site" and e.get("name") == "shop"
                            and e.get("state") == "Stopped"
                            and e.get("reason") == "serving permit expired",
                            message="shop Stopped (serving permit expired)")
            events.wait_for(lambda e: e.get("type") == "permit" and e.get("name") == "shop"
                            and e.get("state") == "Expired", message="permit of shop Expired")

            # The site that is not clustered kept its connection and serves on.
            self.assertEqual(plain.exchange("GET", "/", host="plain.test").status, 200)
            self.assert_plain_serves()
        # A late renewal does not restart the site: the agent starts it again.
        self.grant("shop", LONG_PERMIT_MS)
        self.assertEqual(self.web.site("shop")["state"], "Stopped")
        self.assert_refused("shop")
        self.permit("shop", 0)

    def test_frontend_enforces_the_deadline_while_the_master_is_frozen(self):
        self.grant("cart", LONG_PERMIT_MS)
        self.start("cart")
        with RawConnection(self.port) as idle:
            self.assertEqual(idle.exchange("GET", "/", host="cart.test").status, 200)
            deadline = self.grant("cart", 2000)
            os.kill(self.web.pid, signal.SIGSTOP)
            try:
                self.assertTrue(idle.closed_by_server(),
                                "the front end kept serving a lapsed permit")
                self.assertGreaterEqual(boottime_ms(), deadline)
                response, _ = self.get("cart")
                self.assertEqual(response.status, 503)
                self.assertEqual(response.getheader("X-Clusweb-Reason"), "NoServingPermit")
            finally:
                os.kill(self.web.pid, signal.SIGCONT)
        site = wait_for(lambda: (lambda s: s if s["state"] == "Stopped" else None)(
            self.web.site("cart")), message="cart to be Stopped")
        self.assertEqual(site["reason"], "serving permit expired")

    # ---- renewal and revocation ----

    def test_renewals_keep_serving_and_revocation_stops_at_once(self):
        self.grant("blog", 3000)
        self.start("blog")
        events = self.web.events()
        self.addCleanup(events.close)
        with RawConnection(self.port) as conn:
            # Ten renewals, 0.5 s apart, each 3 s ahead: the permit never runs out.
            for _ in range(10):
                self.assertEqual(conn.exchange("GET", "/", host="blog.test").status, 200)
                time.sleep(0.5)
                self.grant("blog", 3000)
            self.assertEqual(conn.exchange("GET", "/", host="blog.test").status, 200)
            site = self.web.site("blog")
            self.assertEqual(site["state"], "Started")
            self.assertGreater(site["permitRemainingMs"], 0)
            shown = self.web.cli("site", "show", "blog", "--run-dir", self.web.run_dir).stdout
            self.assertRegex(shown, r"permit: +\d+ ms left\n")

            status, body = self.permit("blog", 0)
            self.assertEqual(status, 200, body)
            self.assertEqual(body, {"site": "blog", "clustered": True, "permitRemainingMs": 0})
            # At once: the answer comes when the front end no longer serves the site.
            self.assertTrue(conn.closed_by_server(timeout=2.0),
                            "the connection outlived the revoked permit")
        self.assert_refused("blog")
        site = self.web.site("blog")
        self.assertEqual((site["state"], site["reason"], site["permitRemainingMs"]),
                         ("Stopped", "serving permit revoked", 0))
        shown = self.web.cli("site", "show", "blog", "--run-dir", self.web.run_dir).stdout
        self.assertRegex(shown, r"reason: +serving permit revoked\n")
        self.assertRegex(shown, r"permit: +expired or revoked\n")
        events.wait_for(lambda e: e.get("type") == "permit" and e.get("name") == "blog"
                        and e.get("state") == "Revoked", message="permit of blog Revoked")
        events.wait_for(lambda e: e.get("type") == "site" and e.get("name") == "blog"
                        and e.get("state") == "Stopped", message="blog Stopped")
        stopped = [e for e in events.snapshot()
                   if e.get("type") == "site" and e.get("name") == "blog"
                   and e.get("state") == "Stopped"]
        self.assertEqual([e.get("reason") for e in stopped], ["serving permit revoked"])

    # ---- reload ----

    def test_reload_keeps_the_permit_and_rereads_the_file(self):
        self.grant("news", LONG_PERMIT_MS)
        self.start("news")
        self.assertEqual(self.web.site("late")["state"], "Started")
        self.addCleanup(lambda: write_file(self.clustered_file, self.clustered_text))
        with RawConnection(self.port) as conn:
            self.assertEqual(conn.exchange("GET", "/", host="news.test").status, 200)

            # `late` joins the list while it runs: it stops, having no permit.
            write_file(self.clustered_file, self.clustered_text + "late\n")
            generation = self.web.generation()
            self.web.signal(signal.SIGHUP)
            self.web.wait_reloaded(generation)
            late = self.web.site("late")
            self.assertEqual((late["state"], late["clustered"], late["reason"]),
                             ("Stopped", True, "clustered without a serving permit"))
            self.assert_refused("late")

            # An unreadable file keeps the previous list and does not fail the reload.
            os.unlink(self.clustered_file)
            os.mkdir(self.clustered_file)
            try:
                status, body = self.web.reload()
                self.assertEqual(status, 200, body)
            finally:
                os.rmdir(self.clustered_file)
            self.assertIn("cannot read the clustered sites", self.web.log())
            self.assertTrue(self.web.site("late")["clustered"])

            # Through all of it news kept its permit, its state and its connection.
            write_file(self.clustered_file, self.clustered_text)
            status, body = self.web.reload()
            self.assertEqual(status, 200, body)
            news = self.web.site("news")
            self.assertEqual((news["state"], news["clustered"]), ("Started", True))
            self.assertGreater(news["permitRemainingMs"], 0)
            self.assertEqual(conn.exchange("GET", "/", host="news.test").status, 200)
            response, body = self.get("news")
            self.assertEqual((response.status, body), (200, b"news\n"))
        # Off the list again, `late` is no longer clustered (it never had a permit).
        late = self.web.site("late")
        self.assertEqual((late["state"], late["clustered"]), ("Stopped", False))
        self.permit("news", 0)
        self.assertEqual(self.web.site("news")["state"], "Stopped")


if __name__ == "__main__":
    unittest.main()
