"""The service's life cycle: graceful stop on SIGTERM and SIGINT (requests in flight finish,
pools stop, nothing is left), a front end that dies is replaced."""

import os
import signal
import threading
import time
import unittest

from harness import (BIN, EXAMPLE_WORKER, RawConnection, ServiceTestCase, WebService, free_ports,
                     http_request, process_start_time, wait_for)


def configure(web, port):
    root = web.site_folder("site", {"index.html": "site\n"})
    worker = web.worker(EXAMPLE_WORKER)
    web.write_manifest("web.yaml", f"""
        kind: Site
        name: site
        physicalPath: {root}
        bindings: [http://127.0.0.1:{port}]
        applications: [{{path: /app, pool: app}}]
        ---
        kind: ApplicationPool
        name: app
        command: [{worker}]
        processes: 2
        """)


class StopTest(unittest.TestCase):
    def setUp(self):
        if not os.path.exists(BIN) or os.geteuid() != 0:
            self.skipTest("needs root and the clusweb binary")
        (self.port,) = free_ports(1)
        self.web = WebService(self.id().rsplit(".", 1)[-1])
        self.addCleanup(self.web.cleanup)
        self.addCleanup(lambda: self.web.stop(check=False))
        configure(self.web, self.port)
        self.web.start()
        self.web.warm_pool("app", self.port, "/app/x")
        self.pool = self.web.pool("app")

    def stop_by(self, signum, timeout=8.0):
        """Sends `signum` and waits for the master to exit; returns the seconds it took."""
        started = time.monotonic()
        self.web.signal(signum)
        self.web.proc.wait(timeout)
        return time.monotonic() - started

    def assertAllGone(self, pids):
        wait_for(lambda: all(process_start_time(pid) is None for pid in pids),
                 message="every process of the service to exit")

    def test_sigterm_when_idle_is_prompt_and_complete(self):
        pids = [self.web.pid, self.web.frontend_pid()] + [w["pid"] for w in self.pool["workers"]]
        elapsed = self.stop_by(signal.SIGTERM)
        self.assertLess(elapsed, 5.0)
        self.assertEqual(self.web.proc.returncode, 0)
        self.assertAllGone(pids)
        self.assertFalse(os.path.exists(self.web.socket_path), "the admin socket is left behind")
        self.web.stop()

    def test_sigint_stops_too(self):
        pids = [self.web.pid, self.web.frontend_pid()] + [w["pid"] for w in self.pool["workers"]]
        self.stop_by(signal.SIGINT)
        self.assertEqual(self.web.proc.returncode, 0)
        self.assertAllGone(pids)
        self.web.stop()

    def test_request_in_flight_finishes(self):
        result = {}

        def slow():
            result["response"] = http_request(self.port, "/app/slow?ms=1500")

        before = self.web.pool("app")["counters"]["requests"]
        thread = threading.Thread(target=slow)
        thread.start()
        wait_for(lambda: self.web.pool("app")["counters"]["requests"] > before,
                 message="the slow request to reach the pool")
        with RawConnection(self.port) as idle:
            self.assertEqual(idle.exchange("GET", "/", host="x").status, 200)
            self.web.signal(signal.SIGTERM)
            # Idle connections are closed at once; the busy one is answered.
            self.assertTrue(idle.closed_by_server(timeout=5))
        thread.join(15)
        response, body = result["response"]
        self.assertEqual(response.status, 200)
        self.web.proc.wait(15)
        self.assertEqual(self.web.proc.returncode, 0)
        self.web.stop()


class SecondInstanceTest(ServiceTestCase):
    """A port one service listens on is not shared with another service: a second instance with
    the same binding must fail to start rather than split the traffic with the first."""

    @classmethod
    def configure(cls, web):
        (cls.port,) = free_ports(1)
        configure(web, cls.port)

    def test_second_instance_on_the_same_port_refuses_to_start(self):
        second = WebService("second")
        self.addCleanup(second.cleanup)
        configure(second, self.port)
        try:
            second.start()
        except AssertionError as error:
            self.assertIn(str(self.port), str(error))
            self.assertIn("in use", str(error))
        else:
            second.stop(check=False)
            self.fail("a second service started on port %d, which the first one serves"
                      % self.port)
        response, _ = http_request(self.port, "/")
        self.assertEqual(response.status, 200)


class FrontendRestartTest(ServiceTestCase):
    @classmethod
    def configure(cls, web):
        (cls.port,) = free_ports(1)
        configure(web, cls.port)

    def test_dead_front_end_is_replaced(self):
        old = self.web.frontend_pid()
        os.kill(old, signal.SIGKILL)
        new = wait_for(lambda: self.web.frontend_pid() not in (0, old) and self.web.frontend_pid(),
                       message="a new front end")
        self.assertNotEqual(new, old)
        self.web.wait_frontend_listening()
        response, body = http_request(self.port, "/")
        self.assertEqual((response.status, body), (200, b"site\n"))
        response, _ = http_request(self.port, "/app/x")
        self.assertEqual(response.status, 200)
        # The workers were not disturbed.
        self.assertEqual(self.web.pool("app")["state"], "Started")


if __name__ == "__main__":
    unittest.main()
