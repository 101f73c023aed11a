"""Access logs: combined format, written by the front end, reopened on SIGUSR1 for rotation."""

import os
import re
import signal
import unittest
import uuid

from harness import ServiceTestCase, free_ports, http_request, wait_for

COMBINED = re.compile(
    r'^(?P<remote>\S+) - - \[(?P<time>\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] '
    r'"(?P<request>(?:[^"\\]|\\.)*)" (?P<status>\d{3}) (?P<bytes>\d+|-) '
    r'"(?P<referer>(?:[^"\\]|\\.)*)" "(?P<agent>(?:[^"\\]|\\.)*)"$')

INDEX = "logged site\n"


class AccessLogTest(ServiceTestCase):
    @classmethod
    def configure(cls, web):
        cls.port, cls.quiet_port = free_ports(2)
        root = web.site_folder("logged", {"index.html": INDEX})
        quiet = web.site_folder("quiet", {"index.html": "quiet\n"})
        cls.log_path = web.path("logs", "logged.access.log")
        web.write_manifest("web.yaml", f"""
            kind: Site
            name: logged
            physicalPath: {root}
            bindings: [http://127.0.0.1:{cls.port}]
            accessLog: {cls.log_path}
            ---
            kind: Site
            name: quiet
            physicalPath: {quiet}
            bindings: [http://127.0.0.1:{cls.quiet_port}]
            """)

    def read_log(self, path=None):
        try:
            with open(path or self.log_path, encoding="utf-8") as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def logged(self, marker, path=None):
        """The log line whose request contains `marker`, once it is written."""
        def find():
            lines = [line for line in self.read_log(path) if marker in line]
            return lines[0] if lines else None
        return wait_for(find, message="a log line for %s in %s" % (marker, path or self.log_path))

    def test_combined_format(self):
        marker = uuid.uuid4().hex
        response, body = http_request(self.port, "/index.html?m=" + marker, headers={
            "Referer": "http://ref.example/page", "User-Agent": "system-test/1.0"})
        self.assertEqual(response.status, 200)
        line = self.logged(marker)
        match = COMBINED.match(line)
        self.assertIsNotNone(match, "not in combined format: %r" % line)
        self.assertEqual(match["remote"], "127.0.0.1")
        self.assertEqual(match["request"], "GET /index.html?m=%s HTTP/1.1" % marker)
        self.assertEqual(match["status"], "200")
        self.assertEqual(int(match["bytes"]), len(body))
        self.assertEqual(match["referer"], "http://ref.example/page")
        self.assertEqual(match["agent"], "system-test/1.0")

    def test_errors_and_missing_fields(self):
        marker = uuid.uuid4().hex
        http_request(self.port, "/missing-" + marker, headers={"User-Agent": ""})
        match = COMBINED.match(self.logged(marker))
        self.assertIsNotNone(match)
        self.assertEqual(match["status"], "404")
        self.assertEqual(match["referer"], "-")

    def test_quotes_are_escaped(self):
        marker = uuid.uuid4().hex
        http_request(self.port, "/?" + marker, headers={"User-Agent": 'evil" "agent'})
        line = self.logged(marker)
        match = COMBINED.match(line)
        self.assertIsNotNone(match, line)
        self.assertEqual(match["agent"], 'evil\\" \\"agent')

    def test_site_without_access_log_writes_none(self):
        marker = uuid.uuid4().hex
        response, _ = http_request(self.quiet_port, "/?" + marker)
        self.assertEqual(response.status, 200)
        # The logged site's line written after this one proves the writer has caught up.
        after = uuid.uuid4().hex
        http_request(self.port, "/?" + after)
        self.logged(after)
        for folder, _, files in os.walk(self.web.dir):
            for name in files:
                if name.endswith(".log") and "access" in name:
                    path = os.path.join(folder, name)
                    with open(path, encoding="utf-8", errors="replace") as f:
                        self.assertNotIn(marker, f.read(), path)

    def test_reopen_on_sigusr1(self):
        before = uuid.uuid4().hex
        http_request(self.port, "/?" + before)
        self.logged(before)
        rotated = self.log_path + ".1"
        os.rename(self.log_path, rotated)
        self.addCleanup(lambda: os.path.exists(rotated) and os.unlink(rotated))
        # Until the reopen, lines still go to the renamed file.
        moved = uuid.uuid4().hex
        http_request(self.port, "/?" + moved)
        self.logged(moved, rotated)

        self.web.signal(signal.SIGUSR1)
        wait_for(lambda: os.path.exists(self.log_path), message="a new access log file")
        # The reopen reaches the front end asynchronously: keep asking until a line lands in
        # the new file; the lines that landed in the old one are fine.
        def in_new_file():
            marker = uuid.uuid4().hex
            http_request(self.port, "/?" + marker)
            return self.logged_either(marker) == self.log_path
        wait_for(in_new_file, message="requests to be logged in the new file")
        after = uuid.uuid4().hex
        http_request(self.port, "/?" + after)
        self.logged(after)
        self.assertFalse(any(after in line for line in self.read_log(rotated)))
        self.assertTrue(any(before in line for line in self.read_log(rotated)))

    def logged_either(self, marker):
        """Which of the current and rotated files got the line for `marker`."""
        def find():
            for path in (self.log_path, self.log_path + ".1"):
                if any(marker in line for line in self.read_log(path)):
                    return path
            return None
        return wait_for(find, message="a log line for %s" % marker)


if __name__ == "__main__":
    unittest.main()
