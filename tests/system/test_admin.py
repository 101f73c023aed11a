"""The admin API on the unix socket and the CLI on top of it: list, show, start, stop, recycle,
the event stream and the counters."""

import json
import os
import stat
import subprocess
import threading
import unittest

from harness import (BIN, ECHO_WORKER, RawConnection, ServiceTestCase, free_ports, http_request,
                     wait_for)


class AdminTest(ServiceTestCase):
    @classmethod
    def configure(cls, web):
        (cls.port,) = free_ports(1)
        one = web.site_folder("one", {"index.html": "site one\n"})
        two = web.site_folder("two", {"index.html": "site two\n"})
        three = web.site_folder("three", {"index.html": "site three\n"})
        four = web.site_folder("four", {"index.html": "site four\n"})
        worker = web.worker(ECHO_WORKER)
        web.write_manifest("web.yaml", f"""
            kind: Site
            name: one
            physicalPath: {one}
            bindings: [http://127.0.0.1:{cls.port}/one.test]
            applications: [{{path: /app, pool: p1}}]
            ---
            kind: Site
            name: two
            physicalPath: {two}
            bindings: [http://127.0.0.1:{cls.port}/two.test]
            ---
            kind: Site
            name: three
            physicalPath: {three}
            bindings: [http://127.0.0.1:{cls.port}/three.test]
            ---
            kind: Site
            name: four
            physicalPath: {four}
            bindings: [http://127.0.0.1:{cls.port}/four.test]
            autoStart: false
            ---
            kind: ApplicationPool
            name: p1
            command: [{worker}]
            ---
            kind: ApplicationPool
            name: p2
            command: [{worker}]
            ---
            kind: ApplicationPool
            name: p3
            command: [{worker}]
            """)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for pool in ("p1", "p2", "p3"):
            cls.web.wait_pool(pool)

    def get(self, site, path="/"):
        return http_request(self.port, path, host=site + ".test")

    def clusweb(self, *args, check=True):
        return self.web.cli(*args, "--run-dir", self.web.run_dir, check=check)

    # ---- the API ----

    def test_socket_mode(self):
        mode = os.stat(self.web.socket_path).st_mode
        self.assertTrue(stat.S_ISSOCK(mode))
        self.assertEqual(stat.S_IMODE(mode), 0o660)

    def test_status(self):
        status = self.web.status()
        self.assertEqual(status["pid"], self.web.pid)
        self.assertGreater(status["frontendPid"], 0)
        self.assertNotEqual(status["frontendPid"], self.web.pid)
        self.assertGreaterEqual(status["generation"], 1)
        self.assertEqual((status["sites"], status["pools"]), (4, 3))
        self.assertRegex(status["startedAt"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

    def test_list_and_show_sites(self):
        sites = self.web.sites()
        self.assertEqual(set(sites), {"one", "two", "three", "four"})
        one = self.web.site("one")
        self.assertEqual(one["name"], "one")
        self.assertEqual(one["state"], "Started")
        self.assertEqual(one["bindings"], ["http://127.0.0.1:%d/one.test" % self.port])
        self.assertEqual(one["applications"], [{"path": "/app", "pool": "p1"}])
        for key in ("requests", "responses", "bytesSent", "activeConnections"):
            self.assertIn(key, one["counters"])

    def test_list_and_show_pools(self):
        pools = self.web.pools()
        self.assertEqual(set(pools), {"p1", "p2", "p3"})
        p1 = self.web.pool("p1")
        self.assertEqual((p1["name"], p1["state"], p1["processes"]), ("p1", "Started", 1))
        (worker,) = p1["workers"]
        self.assertTrue(worker["ready"])
        self.assertTrue(os.path.exists("/proc/%d" % worker["pid"]))

    def test_unknown_names_and_endpoints(self):
        for method, path, status in (("GET", "/v1/sites/nope", 404),
                                     ("POST", "/v1/sites/nope/stop", 404),
                                     ("GET", "/v1/pools/nope", 404),
                                     ("POST", "/v1/pools/nope/start", 404),
                                     ("GET", "/v1/nothing", 404),
                                     ("POST", "/v1/pools/p1/explode", 404)):
            with self.subTest(path=path):
                code, body = self.web.admin(method, path)
                self.assertEqual(code, status)
                self.assertIn("error", body)

    def test_site_stop_closes_connections_and_answers_503(self):
        with RawConnection(self.port) as conn:
            response = conn.exchange("GET", "/", host="two.test")
            self.assertEqual((response.status, response.body), (200, b"site two\n"))
            stopped = self.web.api("POST", "/v1/sites/two/stop")
            try:
                self.assertEqual(stopped["state"], "Stopped")
                self.assertTrue(conn.closed_by_server(),
                                "the keep-alive connection of a stopped site stays open")
                response, _ = self.get("two")
                self.assertEqual(response.status, 503)
                self.assertEqual(response.getheader("X-Clusweb-Reason"), "SiteStopped")
                # The other sites on the listener go on.
                response, body = self.get("one")
                self.assertEqual((response.status, body), (200, b"site one\n"))
            finally:
                started = self.web.api("POST", "/v1/sites/two/start")
        self.assertEqual(started["state"], "Started")
        wait_for(lambda: self.get("two")[0].status == 200, message="site two to serve again")

    def test_site_without_auto_start(self):
        site = self.web.site("four")
        self.assertEqual((site["state"], site["autoStart"]), ("Stopped", False))
        response, _ = self.get("four")
        self.assertEqual(response.status, 503)
        self.assertEqual(response.getheader("X-Clusweb-Reason"), "SiteStopped")
        self.web.api("POST", "/v1/sites/four/start")
        self.addCleanup(lambda: self.web.api("POST", "/v1/sites/four/stop"))
        wait_for(lambda: self.get("four")[0].status == 200, message="site four to serve")

    def test_pool_stop_start_recycle_api(self):
        old = self.web.worker_pids("p2")
        self.assertEqual(self.web.api("POST", "/v1/pools/p2/stop")["name"], "p2")
        self.web.wait_pool("p2", "Stopped")
        code, body = self.web.admin("POST", "/v1/pools/p2/recycle")
        self.assertEqual(code, 409, body)  # a stopped pool cannot be recycled
        self.web.api("POST", "/v1/pools/p2/start")
        started = self.web.wait_pool("p2")
        middle = [w["pid"] for w in started["workers"]]
        self.assertNotEqual(middle, old)
        self.web.api("POST", "/v1/pools/p2/recycle")
        wait_for(lambda: self.web.pool("p2")["state"] == "Started"
                 and self.web.worker_pids("p2") not in ([], middle),
                 message="recycled workers in p2")

    # ---- the CLI ----

    def test_cli_site_list_and_show(self):
        table = self.clusweb("site", "list").stdout
        self.assertIn("NAME", table)
        for name in ("one", "two", "three"):
            self.assertIn(name, table)
        listed = json.loads(self.clusweb("site", "list", "-o", "json").stdout)
        self.assertEqual({s["name"] for s in listed["sites"]}, {"one", "two", "three", "four"})
        shown = json.loads(self.clusweb("site", "show", "one", "-o", "json").stdout)
        self.assertEqual((shown["name"], shown["state"]), ("one", "Started"))
        text = self.clusweb("site", "show", "one").stdout
        self.assertIn("one.test", text)
        # --socket instead of --run-dir.
        by_socket = self.web.cli("site", "show", "one", "-o", "json", "--socket",
                                 self.web.socket_path)
        self.assertEqual(json.loads(by_socket.stdout)["name"], "one")

    def test_cli_site_stop_and_start(self):
        self.clusweb("site", "stop", "three")
        try:
            shown = json.loads(self.clusweb("site", "show", "three", "-o", "json").stdout)
            self.assertEqual(shown["state"], "Stopped")
            response, _ = self.get("three")
            self.assertEqual(response.status, 503)
        finally:
            self.clusweb("site", "start", "three")
        self.assertEqual(self.web.site("three")["state"], "Started")
        response, _ = self.get("three")
        self.assertEqual(response.status, 200)

    def test_cli_pool_commands(self):
        listed = json.loads(self.clusweb("pool", "list", "-o", "json").stdout)
        self.assertEqual({p["name"] for p in listed["pools"]}, {"p1", "p2", "p3"})
        table = self.clusweb("pool", "list").stdout
        self.assertIn("p3", table)
        shown = json.loads(self.clusweb("pool", "show", "p3", "-o", "json").stdout)
        self.assertEqual(shown["name"], "p3")
        old = [w["pid"] for w in shown["workers"]]
        self.clusweb("pool", "stop", "p3")
        self.web.wait_pool("p3", "Stopped")
        self.clusweb("pool", "start", "p3")
        started = self.web.wait_pool("p3")
        self.assertNotEqual([w["pid"] for w in started["workers"]], old)
        old = [w["pid"] for w in started["workers"]]
        self.clusweb("pool", "recycle", "p3", "-o", "json")
        wait_for(lambda: self.web.pool("p3")["state"] == "Started"
                 and self.web.worker_pids("p3") not in ([], old),
                 message="recycled workers in p3")

    def test_cli_errors(self):
        done = self.clusweb("site", "show", "nope", check=False)
        self.assertNotEqual(done.returncode, 0)
        self.assertIn("nope", done.stderr)
        done = self.web.cli("site", "list", "--run-dir", self.web.path("no-such-dir"),
                            check=False)
        self.assertNotEqual(done.returncode, 0)
        self.assertTrue(done.stderr.strip())

    def test_cli_reload(self):
        generation = self.web.generation()
        out = self.clusweb("web", "reload", "-o", "json").stdout
        self.assertEqual(json.loads(out)["generation"], generation + 1)

    # ---- events ----

    def test_event_stream(self):
        stream = self.web.events()
        try:
            self.assertEqual(stream.content_type, "application/x-ndjson")
            self.web.api("POST", "/v1/sites/three/stop")
            self.web.api("POST", "/v1/sites/three/start")
            stream.wait_for(lambda e: e.get("type") == "site" and e.get("name") == "three"
                            and e.get("state") == "Stopped", message="site three Stopped")
            stream.wait_for(lambda e: e.get("type") == "site" and e.get("name") == "three"
                            and e.get("state") == "Started", message="site three Started")
            self.web.api("POST", "/v1/pools/p1/stop")
            stream.wait_for(lambda e: e.get("type") == "pool" and e.get("name") == "p1"
                            and e.get("state") == "Stopped", message="pool p1 Stopped")
            self.web.api("POST", "/v1/pools/p1/start")
            stream.wait_for(lambda e: e.get("type") == "pool" and e.get("name") == "p1"
                            and e.get("state") == "Started", message="pool p1 Started")
            events = stream.snapshot()
            seqs = [e["seq"] for e in events]
            self.assertEqual(seqs, sorted(seqs))
            for event in events:
                self.assertIn("time", event)
                self.assertIn("message", event)
        finally:
            stream.close()
            self.web.wait_pool("p1")

    def test_cli_events(self):
        follower = subprocess.Popen(
            [BIN, "web", "events", "-o", "json", "--run-dir", self.web.run_dir],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = []
        reader = threading.Thread(target=lambda: lines.extend(iter(follower.stdout.readline, "")),
                                  daemon=True)
        reader.start()
        try:
            # The follower subscribes asynchronously: repeat the change until it is seen.
            def seen():
                self.web.api("POST", "/v1/sites/three/stop")
                self.web.api("POST", "/v1/sites/three/start")
                return any('"three"' in line for line in lines)
            wait_for(seen, message="`clusweb web events` to print a site event")
            for line in lines:
                json.loads(line)
        finally:
            follower.terminate()
            follower.wait(10)
            reader.join(5)
            follower.stdout.close()
            follower.stderr.close()

    # ---- counters ----

    def test_counters_increase(self):
        before = self.web.site("one")["counters"]
        pool_before = self.web.pool("p1")["counters"]
        for _ in range(3):
            self.assertEqual(self.get("one")[0].status, 200)
        self.assertEqual(self.get("one", "/missing")[0].status, 404)
        self.assertEqual(self.get("one", "/app/x")[0].status, 200)
        after = self.web.site("one")["counters"]
        self.assertEqual(after["requests"], before["requests"] + 5)
        self.assertEqual(after["responses"]["2xx"], before["responses"]["2xx"] + 4)
        self.assertEqual(after["responses"]["4xx"], before["responses"]["4xx"] + 1)
        self.assertGreater(after["bytesSent"], before["bytesSent"] + 3 * len("site one\n") - 1)
        self.assertEqual(self.web.pool("p1")["counters"]["requests"],
                         pool_before["requests"] + 1)

    def test_active_connections_counter(self):
        with RawConnection(self.port) as a, RawConnection(self.port) as b:
            self.assertEqual(a.exchange("GET", "/", host="one.test").status, 200)
            self.assertEqual(b.exchange("GET", "/", host="one.test").status, 200)
            wait_for(lambda: self.web.site("one")["counters"]["activeConnections"] >= 2,
                     timeout=5, message="activeConnections to count two open connections")
        wait_for(lambda: self.web.site("one")["counters"]["activeConnections"] == 0,
                 timeout=5, message="activeConnections back to 0")


if __name__ == "__main__":
    unittest.main()
