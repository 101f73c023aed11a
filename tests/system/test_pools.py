"""Application pools: socket activation and port modes, the proxy (forwarding headers, streamed
bodies), worker replacement, stop/start, recycling, rapid-fail protection, web gardens, the
bounded queue."""

import hashlib
import json
import os
import signal
import threading
import time
import unittest

from harness import (ECHO_WORKER, EXAMPLE_WORKER, RawConnection, ServiceTestCase, free_ports,
                     http_request, keep_alive, process_start_time, raw_exchange, wait_for)


class PoolsTest(ServiceTestCase):
    @classmethod
    def configure(cls, web):
        (cls.port,) = free_ports(1)
        root = web.site_folder("site", {"index.html": "static\n"})
        example = web.worker(EXAMPLE_WORKER)
        echo = web.worker(ECHO_WORKER)
        apps = ["act", "port", "echo", "garden", "victim", "crashy", "ctl", "recycle", "failing",
                "queue", "lazy", "env", "noport", "stubborn"]
        applications = ", ".join("{path: /%s, pool: %s}" % (name, name) for name in apps)
        web.write_manifest("site.yaml", f"""
            kind: Site
            name: site
            physicalPath: {root}
            bindings: [http://127.0.0.1:{cls.port}]
            applications: [{applications}]
            """)
        web.write_manifest("pools.yaml", f"""
            kind: ApplicationPool
            name: act
            command: [{example}]
            socket: activation
            ---
            kind: ApplicationPool
            name: port
            command: [{example}]
            socket: port
            ---
            kind: ApplicationPool
            name: echo
            command: [{echo}]
            ---
            kind: ApplicationPool
            name: garden
            command: [{echo}]
            processes: 2
            ---
            kind: ApplicationPool
            name: victim
            command: [{echo}]
            ---
            kind: ApplicationPool
            name: crashy
            command: [{echo}]
            ---
            kind: ApplicationPool
            name: ctl
            command: [{echo}]
            ---
            kind: ApplicationPool
            name: recycle
            command: [{echo}]
            processes: 2
            ---
            kind: ApplicationPool
            name: failing
            command: [/bin/sh, -c, "exit 1"]
            rapidFailProtection: {{enabled: true, maxCrashes: 2, interval: 1m}}
            ---
            kind: ApplicationPool
            name: queue
            command: [{echo}]
            queueLength: 1
            ---
            kind: ApplicationPool
            name: lazy
            command: [{echo}]
            autoStart: false
            ---
            kind: ApplicationPool
            name: noport
            command: [/bin/sleep, "1000"]
            socket: port
            startupTimeLimit: 500ms
            rapidFailProtection: {{maxCrashes: 1, interval: 1m}}
            ---
            kind: ApplicationPool
            name: stubborn
            command: [/bin/sh, -c, "trap '' TERM; while :; do sleep 1; done"]
            shutdownTimeLimit: 1s
            """)
        cls.write_env_pool(web, "first")

    @classmethod
    def write_env_pool(cls, web, greeting):
        web.write_manifest("env.yaml", f"""
            kind: ApplicationPool
            name: env
            command: [{web.path("bin", "echo_worker.py")}]
            workingDirectory: {web.path("sites")}
            environment: {{GREETING: {greeting}, NUMBER: 5}}
            """)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for name in ("act", "port", "echo", "garden", "victim", "crashy", "ctl", "recycle",
                     "queue", "env"):
            cls.web.warm_pool(name, cls.port, "/%s/x" % name, host="site.test")

    def get(self, path, **kwargs):
        kwargs.setdefault("host", "site.test")
        return http_request(self.port, path, **kwargs)

    def forwarded(self, body):
        lines = body.decode().splitlines()
        return dict(line.split("=", 1) for line in lines if line.startswith("x-forwarded-"))

    # ---- the two socket modes, with the example worker ----

    def test_activation_mode(self):
        pool = self.web.pool("act")
        self.assertTrue(pool["workers"][0]["endpoint"].startswith("unix:"), pool)
        response, body = self.get("/act/hello?x=1")
        self.assertEqual(response.status, 200)
        text = body.decode()
        self.assertIn("worker pid=%d pool=act" % pool["workers"][0]["pid"], text)
        self.assertIn("method=GET path=/act/hello?x=1", text)

    def test_port_mode(self):
        pool = self.web.pool("port")
        self.assertTrue(pool["workers"][0]["endpoint"].startswith("tcp:127.0.0.1:"), pool)
        response, body = self.get("/port/x")
        self.assertEqual(response.status, 200)
        self.assertIn("worker pid=%d pool=port" % pool["workers"][0]["pid"], body.decode())

    def test_forwarded_headers(self):
        response, body = self.get("/act/", host="shop.example.com:8080")
        self.assertEqual(response.status, 200)
        self.assertEqual(self.forwarded(body), {
            "x-forwarded-for": "127.0.0.1",
            "x-forwarded-proto": "http",
            "x-forwarded-host": "shop.example.com:8080",
        })
        # An incoming X-Forwarded-For is kept and the client appended.
        response, body = self.get("/act/", headers={"X-Forwarded-For": "203.0.113.7"})
        self.assertEqual(self.forwarded(body)["x-forwarded-for"], "203.0.113.7, 127.0.0.1")

    def test_hop_by_hop_headers_not_forwarded(self):
        response, body = self.get("/echo/headers", headers={
            "Connection": "keep-alive, X-Private", "X-Private": "secret", "X-Public": "ok",
            "Keep-Alive": "timeout=5"})
        self.assertEqual(response.status, 200)
        names = {k.lower(): v for k, v in json.loads(body)["headers"]}
        self.assertEqual(names.get("x-public"), "ok")
        self.assertNotIn("x-private", names)
        self.assertNotIn("keep-alive", names)

    # ---- bodies ----

    def test_post_body_streamed_and_echoed(self):
        body = os.urandom(1024 * 1024 + 3)
        response, data = self.get("/echo/echo", method="POST", body=body,
                                  headers={"Content-Type": "application/octet-stream"})
        self.assertEqual(response.status, 200)
        self.assertEqual(response.getheader("X-Body-Length"), str(len(body)))
        self.assertEqual(response.getheader("X-Body-Sha256"), hashlib.sha256(body).hexdigest())
        self.assertEqual(data, body)

    def test_chunked_request_body(self):
        pieces = [b"first piece,", os.urandom(70000), b"", b"last"]
        pieces = [p for p in pieces if p]
        whole = b"".join(pieces)
        with RawConnection(self.port) as conn:
            conn.send(b"POST /echo/echo HTTP/1.1\r\nHost: site.test\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n")
            for piece in pieces:
                conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
            conn.send(b"0\r\n\r\n")
            response = conn.read_response()
            self.assertEqual(response.status, 200)
            self.assertEqual(response.header("X-Body-Length"), str(len(whole)))
            self.assertEqual(response.body, whole)
            # The connection is still usable afterwards.
            again = conn.exchange("GET", "/echo/x", host="site.test")
            self.assertEqual(again.status, 200)

    def test_expect_100_continue(self):
        body = b"x" * 5000
        with RawConnection(self.port) as conn:
            conn.send(b"POST /echo/echo HTTP/1.1\r\nHost: site.test\r\nExpect: 100-continue\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body))
            interim = conn.read_line()
            self.assertEqual(interim, b"HTTP/1.1 100 Continue")
            self.assertEqual(conn.read_line(), b"")
            conn.send(body)
            response = conn.read_response()
            self.assertEqual((response.status, response.body), (200, body))

    def test_chunked_response_streamed(self):
        response, data = self.get("/echo/stream?chunks=50&size=3000")
        self.assertEqual(response.status, 200)
        expected = b"".join(bytes([ord("a") + i % 26]) * 3000 for i in range(50))
        self.assertEqual(data, expected)

    def test_chunked_response_to_http10_client(self):
        with RawConnection(self.port) as conn:
            conn.send(b"GET /echo/stream?chunks=3&size=10 HTTP/1.0\r\nHost: site.test\r\n\r\n")
            response = conn.read_response()
            self.assertEqual(response.status, 200)
            self.assertNotIn("chunked", response.header("Transfer-Encoding", ""))
            self.assertEqual(response.body, b"a" * 10 + b"b" * 10 + b"c" * 10)

    def test_response_is_streamed_not_buffered(self):
        with RawConnection(self.port) as conn:
            started = time.monotonic()
            conn.send(b"GET /echo/stream?chunks=3&size=10&ms=800 HTTP/1.1\r\nHost: site.test\r\n"
                      b"\r\n")
            while b"aaaaaaaaaa" not in conn.buffer:
                conn.fill()
            first = time.monotonic() - started
            response = conn.read_response()
            total = time.monotonic() - started
        self.assertEqual(response.body, b"a" * 10 + b"b" * 10 + b"c" * 10)
        # The worker pauses 0.8 s after each chunk: the first must arrive well before the end.
        self.assertLess(first, total - 1.0, "first chunk after %.2f s of %.2f s" % (first, total))

    def test_close_delimited_response(self):
        with RawConnection(self.port) as conn:
            response = conn.exchange("GET", "/echo/closedelimited", host="site.test")
            self.assertEqual((response.status, response.body),
                             (200, b"until the end of the connection\n"))
            # Re-framed for the client, so its connection stays usable.
            again = conn.exchange("GET", "/echo/x", host="site.test")
            self.assertEqual(again.status, 200)
        response = raw_exchange(self.port, b"GET /echo/closedelimited HTTP/1.0\r\n"
                                b"Host: site.test\r\n\r\n")
        self.assertEqual((response.status, response.body),
                         (200, b"until the end of the connection\n"))

    def test_head_through_proxy(self):
        with RawConnection(self.port) as conn:
            response = conn.exchange("HEAD", "/echo/x", host="site.test")
            self.assertEqual((response.status, response.body), (200, b""))
            again = conn.exchange("GET", "/echo/x", host="site.test")
            self.assertEqual(again.status, 200)
            self.assertTrue(again.body.startswith(b"pid="))

    # ---- worker failures ----

    def test_killed_worker_is_replaced(self):
        before = self.web.pool("victim")
        (old_pid,) = [w["pid"] for w in before["workers"]]
        os.kill(old_pid, signal.SIGKILL)

        def replaced():
            pool = self.web.pool("victim")
            pids = [w["pid"] for w in pool["workers"]]
            return pool if pool["state"] == "Started" and pids and old_pid not in pids else None
        after = wait_for(replaced, message="a new worker in pool victim")
        self.assertGreater(after["counters"]["workerFailures"],
                           before["counters"]["workerFailures"])
        (new_pid,) = [w["pid"] for w in after["workers"]]
        response, _ = self.get("/victim/x")
        self.assertEqual(response.status, 200)
        self.assertEqual(response.getheader("X-Worker-Pid"), str(new_pid))

    def test_worker_crash_during_request_is_an_error_then_replaced(self):
        (old_pid,) = self.web.worker_pids("crashy")
        response, _ = self.get("/crashy/crash")
        # 502 when the worker died under the request; 503 NoWorker when the proxy retried a
        # request sent on a reused connection and found no worker left.
        self.assertIn(response.status, (502, 503))
        wait_for(lambda: self.web.pool("crashy")["state"] == "Started"
                 and self.web.worker_pids("crashy") not in ([], [old_pid]),
                 message="the crashed worker to be replaced")
        response, _ = self.get("/crashy/x")
        self.assertEqual(response.status, 200)

    # ---- administration ----

    def test_stopped_pool_is_503_disabled_then_started_again(self):
        self.web.api("POST", "/v1/pools/ctl/stop")
        pool = self.web.wait_pool("ctl", "Stopped")
        self.assertEqual(pool["reason"], "Disabled")
        response, _ = self.get("/ctl/x")
        self.assertEqual(response.status, 503)
        self.assertEqual(response.getheader("X-Clusweb-Reason"), "Disabled")

        self.web.api("POST", "/v1/pools/ctl/start")
        self.web.wait_pool("ctl")
        wait_for(lambda: self.get("/ctl/x")[0].status == 200, message="/ctl to answer 200")

    def test_recycle_replaces_workers_without_failed_requests(self):
        results = []
        stop = threading.Event()

        def load():
            conn = keep_alive(self.port)
            while not stop.is_set():
                try:
                    conn.request("GET", "/recycle/x", headers={"Host": "site.test"})
                    response = conn.getresponse()
                    response.read()
                    results.append((response.status, response.getheader("X-Worker-Pid")))
                except Exception as error:  # noqa: BLE001 - every failure is recorded
                    results.append(("error", repr(error)))
                    conn.close()
                    conn = keep_alive(self.port)
            conn.close()

        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            wait_for(lambda: len(results) >= 20, message="requests before the recycle")
            for _ in range(3):
                old = set(self.web.worker_pids("recycle"))
                self.assertEqual(len(old), 2)
                self.web.api("POST", "/v1/pools/recycle/recycle")

                def recycled():
                    pool = self.web.pool("recycle")
                    pids = {w["pid"] for w in pool["workers"]}
                    return pool["state"] == "Started" and len(pids) == 2 and not pids & old \
                        and pids
                new = wait_for(recycled, message="two new workers in pool recycle")
                # Both new workers serve, and the old ones drain and exit.
                wait_for(lambda: {str(p) for p in new} <= {p for s, p in results if s == 200},
                         message="requests served by each new worker")
                wait_for(lambda: all(process_start_time(pid) is None for pid in old),
                         message="the old workers to exit")
            count = len(results)
            wait_for(lambda: len(results) >= count + 20, message="requests after the recycle")
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        failed = [r for r in results if r[0] != 200]
        self.assertEqual(failed, [], "%d of %d requests failed" % (len(failed), len(results)))

    def test_rapid_fail_protection_stops_pool(self):
        pool = self.web.wait_pool("failing", "Stopped")
        self.assertEqual(pool["reason"], "AppOffline")
        self.assertGreaterEqual(pool["counters"]["workerFailures"], 3)
        response, _ = self.get("/failing/x")
        self.assertEqual(response.status, 503)
        self.assertEqual(response.getheader("X-Clusweb-Reason"), "AppOffline")
        # Stopped means stopped: no further attempts.
        starts = pool["counters"]["workerStarts"]
        time.sleep(0.5)  # a window in which a restart would happen (restart delay 100 ms)
        self.assertEqual(self.web.pool("failing")["counters"]["workerStarts"], starts)

    def test_startup_time_limit(self):
        # A port-mode worker that never listens is killed at the startup limit; two such
        # failures trip rapid-fail protection (maxCrashes 1).
        pool = self.web.wait_pool("noport", "Stopped")
        self.assertEqual(pool["reason"], "AppOffline")
        self.assertGreaterEqual(pool["counters"]["workerFailures"], 2)
        self.assertEqual(self.get("/noport/x")[0].status, 503)
        self.assertIn("startup time limit", self.web.log())

    def test_shutdown_time_limit(self):
        pool = self.web.wait_pool("stubborn")
        (pid,) = [w["pid"] for w in pool["workers"]]
        started = time.monotonic()
        self.web.api("POST", "/v1/pools/stubborn/stop")
        self.web.wait_pool("stubborn", "Stopped")
        elapsed = time.monotonic() - started
        self.assertGreater(elapsed, 0.8, "stopped before the shutdown time limit")
        self.assertLess(elapsed, 8)
        self.assertIsNone(process_start_time(pid))

    # ---- configuration of workers ----

    def test_environment_and_working_directory(self):
        response, body = self.get("/env/env")
        self.assertEqual(response.status, 200)
        data = json.loads(body)
        self.assertEqual(data["environ"]["GREETING"], "first")
        self.assertEqual(data["environ"]["NUMBER"], "5")
        self.assertEqual(data["environ"]["CLUSWEB_POOL"], "env")
        self.assertEqual(data["environ"]["CLUSWEB_WORKER_SLOT"], "0")
        self.assertEqual(data["cwd"], self.web.path("sites"))

    def test_reload_with_changed_pool_replaces_its_workers(self):
        old = self.web.worker_pids("env")
        others = self.web.worker_pids("echo")
        self.write_env_pool(self.web, "second")
        self.addCleanup(lambda: (self.write_env_pool(self.web, "first"), self.web.reload()))
        status, body = self.web.reload()
        self.assertEqual(status, 200, body)

        def new_environment():
            response, body = self.get("/env/env")
            return response.status == 200 and json.loads(body)["environ"]["GREETING"] == "second"
        wait_for(new_environment, message="workers with the new environment")
        self.assertNotEqual(self.web.worker_pids("env"), old)
        # Pools whose configuration did not change keep their workers.
        self.assertEqual(self.web.worker_pids("echo"), others)

    def test_pool_without_auto_start(self):
        pool = self.web.pool("lazy")
        self.assertEqual((pool["state"], pool["reason"], pool["workers"]),
                         ("Stopped", "Disabled", []))
        response, _ = self.get("/lazy/x")
        self.assertEqual(response.status, 503)
        self.assertEqual(response.getheader("X-Clusweb-Reason"), "Disabled")
        self.web.api("POST", "/v1/pools/lazy/start")
        self.addCleanup(lambda: self.web.api("POST", "/v1/pools/lazy/stop"))
        self.web.wait_pool("lazy")
        wait_for(lambda: self.get("/lazy/x")[0].status == 200, message="/lazy to answer 200")

    # ---- web garden and queue ----

    def test_web_garden_uses_every_worker(self):
        pids = set(self.web.worker_pids("garden"))
        self.assertEqual(len(pids), 2)
        seen = set()
        for _ in range(10):
            response, _ = self.get("/garden/x")
            self.assertEqual(response.status, 200)
            seen.add(int(response.getheader("X-Worker-Pid")))
        conn = keep_alive(self.port)
        try:
            for _ in range(10):
                conn.request("GET", "/garden/x", headers={"Host": "site.test"})
                response = conn.getresponse()
                response.read()
                seen.add(int(response.getheader("X-Worker-Pid")))
        finally:
            conn.close()
        self.assertEqual(seen, pids)

    def test_queue_full_is_503(self):
        before = self.web.pool("queue")["counters"]
        slow = {}

        def slow_request():
            slow["response"] = self.get("/queue/slow?ms=2000")

        thread = threading.Thread(target=slow_request)
        thread.start()
        try:
            wait_for(lambda: self.web.pool("queue")["counters"]["requests"] > before["requests"],
                     message="the slow request to reach the pool")
            response, _ = self.get("/queue/x")
            self.assertEqual(response.status, 503)
            self.assertEqual(response.getheader("X-Clusweb-Reason"), "QueueFull")
        finally:
            thread.join(30)
        self.assertEqual(slow["response"][0].status, 200)
        self.assertGreater(self.web.pool("queue")["counters"]["queueFull"], before["queueFull"])
        response, _ = self.get("/queue/x")
        self.assertEqual(response.status, 200)


if __name__ == "__main__":
    unittest.main()
