"""Configuration: `--check`, reload by SIGHUP and by the admin API, refused reloads leave the old
configuration serving, unaffected sites keep their connections."""

import os
import signal
import socket
import subprocess
import tempfile
import unittest

from harness import (BIN, EXAMPLE_WORKER, RawConnection, ServiceTestCase, dedent, free_ports,
                     http_request, write_file)


def check(*paths):
    args = [BIN, "web", "--check"]
    for path in paths:
        args += ["-f", path]
    return subprocess.run(args, capture_output=True, text=True, timeout=30)


class CheckTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="clusweb-check-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", self.dir]))
        os.makedirs(os.path.join(self.dir, "site"))
        with open(EXAMPLE_WORKER, "rb") as f:
            write_file(os.path.join(self.dir, "worker.py"), f.read(), 0o755)

    def write(self, name, text):
        return write_file(os.path.join(self.dir, name), dedent(text))

    def test_valid_configuration(self):
        path = self.write("web.yaml", """
            kind: WebServer
            threads: 2
            ---
            kind: Site
            name: shop
            physicalPath: ./site
            bindings: [http://127.0.0.1:8080, "http://*:8080/www.example.com"]
            applications: [{path: /api, pool: api}]
            ---
            kind: ApplicationPool
            name: api
            command: [./worker.py]
            processes: 2
            """)
        done = check(path)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout.strip(), "configuration ok: 1 site(s), 1 pool(s)")

    def test_every_problem_with_file_line_and_field(self):
        path = self.write("web.yaml", """
            kind: Site
            name: shop
            physicalPath: ./site
            bindings:
              - http://localhost:80
            colour: blue
            ---
            kind: ApplicationPool
            name: api
            command: [./worker.py]
            procesess: 2
            """)
        done = check(path)
        self.assertEqual(done.returncode, 1)
        self.assertNotIn("configuration ok", done.stdout)
        lines = done.stderr.strip().splitlines()
        self.assertEqual(len(lines), 3, done.stderr)
        binding, colour, typo = lines
        for line in lines:
            # The location starts the line, once.
            self.assertEqual(line.count(path), 1, line)
        self.assertTrue(binding.startswith("%s:5: " % path), binding)
        self.assertIn('Site "shop"', binding)
        self.assertIn('field "bindings[0]"', binding)
        self.assertIn("localhost", binding)
        self.assertTrue(colour.startswith("%s:6: " % path), colour)
        self.assertIn('field "colour": unknown field', colour)
        self.assertTrue(typo.startswith("%s:11: " % path), typo)
        self.assertIn('ApplicationPool "api"', typo)
        self.assertIn('field "procesess"', typo)
        self.assertIn('did you mean "processes"', typo)

    def test_problems_across_files_and_references(self):
        sites = self.write("sites.yaml", """
            kind: Site
            name: shop
            physicalPath: ./no-such-folder
            bindings: [http://127.0.0.1:8080]
            applications: [{path: /api, pool: missing}]
            """)
        pools = self.write("pools.yaml", """
            kind: ApplicationPool
            name: api
            command: [./worker.py]
            processes: 0
            """)
        done = check(sites, pools)
        self.assertEqual(done.returncode, 1)
        text = done.stderr
        self.assertIn("%s:3: " % sites, text)
        self.assertIn('field "physicalPath"', text)
        self.assertIn('"missing"', text)
        self.assertIn("%s:4: " % pools, text)
        self.assertIn('field "processes"', text)
        # Ordered by file as given, then line.
        self.assertLess(text.index(sites), text.index(pools))

    def test_yaml_syntax_error(self):
        path = self.write("broken.yaml", """
            kind: Site
            name: shop
            bindings: [http://127.0.0.1:8080
            """)
        done = check(path)
        self.assertEqual(done.returncode, 1)
        self.assertRegex(done.stderr.strip(), "^%s:\\d+: invalid YAML" % path)

    def test_folder(self):
        self.write("a.yaml", """
            kind: Site
            name: a
            physicalPath: ./site
            bindings: [http://127.0.0.1:8081]
            """)
        self.write("b.yml", """
            kind: Site
            name: b
            physicalPath: ./site
            bindings: [http://127.0.0.1:8082]
            """)
        self.write(".hidden.yaml", "this is: [not valid\n")
        self.write("notes.txt", "not a manifest\n")
        done = check(self.dir)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("2 site(s)", done.stdout)

    def test_conflicting_bindings(self):
        path = self.write("web.yaml", """
            kind: Site
            name: a
            physicalPath: ./site
            bindings: [http://127.0.0.1:8080]
            ---
            kind: Site
            name: b
            physicalPath: ./site
            bindings: [http://127.0.0.1:8080]
            """)
        done = check(path)
        self.assertEqual(done.returncode, 1)
        self.assertIn(path + ":", done.stderr)


class ReloadTest(ServiceTestCase):
    @classmethod
    def configure(cls, web):
        cls.port, cls.busy_port = free_ports(2)
        cls.root_a = web.site_folder("a", {"index.html": "site a\n", "page.html": "a page\n"})
        cls.root_b = web.site_folder("b", {"index.html": "site b\n", "other.html": "b other\n"})
        cls.root_c = web.site_folder("c", {"index.html": "site c\n"})
        web.write_manifest("web.yaml", cls.baseline())

    @classmethod
    def baseline(cls, b_default="index.html", extra=""):
        return f"""
            kind: Site
            name: a
            physicalPath: {cls.root_a}
            bindings: [http://127.0.0.1:{cls.port}/a.test]
            ---
            kind: Site
            name: b
            physicalPath: {cls.root_b}
            bindings: [http://127.0.0.1:{cls.port}/b.test]
            defaultDocuments: [{b_default}]
            """ + extra

    def setUp(self):
        self.generation = self.web.generation()

    def tearDown(self):
        self.web.write_manifest("web.yaml", self.baseline())
        for name in os.listdir(self.web.config_dir):
            if name != "web.yaml":
                self.web.remove_manifest(name)
        status, body = self.web.reload()
        self.assertEqual(status, 200, body)

    def get(self, site, path="/"):
        return http_request(self.port, path, host=site + ".test")

    def test_reload_by_sighup(self):
        self.web.write_manifest("web.yaml", self.baseline(b_default="other.html"))
        self.web.signal(signal.SIGHUP)
        self.web.wait_reloaded(self.generation)
        response, body = self.get("b")
        self.assertEqual((response.status, body), (200, b"b other\n"))

    def test_reload_by_admin_api_adds_a_site(self):
        self.web.write_manifest("c.yaml", f"""
            kind: Site
            name: c
            physicalPath: {self.root_c}
            bindings: [http://127.0.0.1:{self.port}/c.test]
            """)
        status, body = self.web.reload()
        self.assertEqual(status, 200, body)
        self.assertEqual(body["generation"], self.generation + 1)
        self.assertEqual((body["sites"], body["pools"]), (3, 0))
        self.assertEqual(self.web.generation(), self.generation + 1)
        self.assertIn("c", self.web.sites())
        response, data = self.get("c")
        self.assertEqual((response.status, data), (200, b"site c\n"))

    def test_reload_removes_a_site(self):
        self.web.write_manifest("web.yaml", dedent(f"""
            kind: Site
            name: a
            physicalPath: {self.root_a}
            bindings: [http://127.0.0.1:{self.port}/a.test]
            """))
        status, body = self.web.reload()
        self.assertEqual(status, 200, body)
        self.assertNotIn("b", self.web.sites())
        response, _ = self.get("b")
        self.assertEqual(response.status, 400)  # no site is bound to b.test any more

    def assertOldConfigServes(self):
        self.assertEqual(self.web.generation(), self.generation)
        self.assertEqual(set(self.web.sites()), {"a", "b"})
        for site in ("a", "b"):
            response, body = self.get(site)
            self.assertEqual((response.status, body), (200, ("site %s\n" % site).encode()))

    def test_bad_reload_by_api_keeps_old_config(self):
        path = self.web.write_manifest("web.yaml", self.baseline() + "colour: blue\n")
        status, body = self.web.reload()
        self.assertEqual(status, 400)
        self.assertIn("error", body)
        self.assertIn('field "colour"', body["error"])
        self.assertTrue(body["error"].startswith(path + ":"), body["error"])
        self.assertEqual(body["error"].count(path), 1, body["error"])
        self.assertOldConfigServes()

    def test_bad_reload_by_sighup_keeps_old_config(self):
        stream = self.web.events()
        try:
            self.web.write_manifest("web.yaml", "kind: Site\nname: [broken\n")
            self.web.signal(signal.SIGHUP)
            stream.wait_for(lambda e: e.get("type") == "reload" and e.get("state") == "Failed",
                            message="a failed reload")
        finally:
            stream.close()
        self.assertIn("reload refused", self.web.log())
        self.assertOldConfigServes()

    def test_reload_that_cannot_bind_keeps_old_config(self):
        # Valid on paper, but the port is taken: refused as a whole.
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", self.busy_port))
            holder.listen(1)
            self.web.write_manifest("c.yaml", f"""
                kind: Site
                name: c
                physicalPath: {self.root_c}
                bindings: [http://127.0.0.1:{self.busy_port}]
                """)
            status, body = self.web.reload()
        self.assertEqual(status, 400, body)
        self.assertIn(str(self.busy_port), body["error"])
        self.assertOldConfigServes()
        self.assertNotIn("c", self.web.sites())

    def test_reload_with_unreadable_certificate_keeps_old_config(self):
        self.web.write_manifest("c.yaml", f"""
            kind: Site
            name: c
            physicalPath: {self.root_c}
            bindings:
              - url: https://127.0.0.1:{self.busy_port}/c.test
                certificate: {self.web.path("no-such.crt")}
                key: {self.web.path("no-such.key")}
            """)
        status, body = self.web.reload()
        self.assertEqual(status, 400, body)
        self.assertOldConfigServes()

    def test_unchanged_site_keeps_keep_alive_connection(self):
        with RawConnection(self.port) as conn:
            response = conn.exchange("GET", "/", host="a.test")
            self.assertEqual((response.status, response.body), (200, b"site a\n"))
            local = conn.local_port()
            self.web.write_manifest("web.yaml", self.baseline(b_default="other.html"))
            status, body = self.web.reload()
            self.assertEqual(status, 200, body)
            # Site b changed...
            response, data = self.get("b")
            self.assertEqual((response.status, data), (200, b"b other\n"))
            # ...site a did not: its connection is still open and served.
            self.assertTrue(conn.still_open(), "site a's connection was closed by the reload")
            response = conn.exchange("GET", "/page.html", host="a.test")
            self.assertEqual((response.status, response.body), (200, b"a page\n"))
            self.assertEqual(conn.local_port(), local)

    def test_reload_keeps_front_end(self):
        frontend = self.web.frontend_pid()
        self.web.write_manifest("web.yaml", self.baseline(b_default="other.html"))
        self.assertEqual(self.web.reload()[0], 200)
        self.assertEqual(self.web.frontend_pid(), frontend)


if __name__ == "__main__":
    unittest.main()
