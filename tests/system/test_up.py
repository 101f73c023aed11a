"""`clusweb up`: one machine, the embedded store, the agent and the web service. Its sites and
pools take the cluster's path: they become the shared configuration in the embedded store,
which the agent brings to the node's cache and the web service, so `clusweb config ...` and
`clusweb apply -f` work as on a cluster, and the manifests are the whole truth at each start."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import unittest

from harness import (BIN, START_TIMEOUT, STOP_TIMEOUT, WAIT_TIMEOUT, dedent, free_port,
                     http_request, read_text, wait_for, write_file)


class UpTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="clusweb-up-")
        os.chmod(self.dir, 0o755)
        self.run_dir = os.path.join(self.dir, "run")
        self.state_dir = os.path.join(self.dir, "state")
        self.port = free_port()
        for name in ("one", "two"):
            os.makedirs(os.path.join(self.dir, "www", name))
            write_file(os.path.join(self.dir, "www", name, "index.html"), name + "\n")
            os.chmod(os.path.join(self.dir, "www", name), 0o755)
        os.chmod(os.path.join(self.dir, "www"), 0o755)
        self.manifest = self.site_manifest("up.yaml", "one")
        self.proc = None
        self.addCleanup(self.cleanup)

    def site_manifest(self, name, folder, whole=True):
        """The site on `folder`; `whole`: with the node's settings and the group, as `up`
        takes them (`apply` takes the site alone)."""
        text = "kind: WebServer\nthreads: 1\n---\n" if whole else ""
        text += dedent("""\
            kind: Site
            name: shop
            physicalPath: www/%s
            bindings: [http://127.0.0.1:%d]
            """ % (folder, self.port))
        if whole:
            text += dedent("""\
                ---
                kind: Group
                name: shop
                resources:
                  - {name: site, type: website, parameters: {site: shop}}
                """)
        return write_file(os.path.join(self.dir, name), text)

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def up(self, manifest):
        self.log = os.path.join(self.dir, "up.log")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [BIN, "up", "-f", manifest, "--run-dir", self.run_dir, "--state-dir",
                 self.state_dir], stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.proc.wait(STOP_TIMEOUT), 0, read_text(self.log)[-3000:])

    def page(self):
        try:
            response, body = http_request(self.port, timeout=2.0)
        except OSError:
            return None
        return body.decode().strip() if response.status == 200 else None

    def clusweb(self, *args):
        return subprocess.run([BIN, *args, "--run-dir", self.run_dir], capture_output=True,
                              text=True, check=False)

    def test_the_manifests_become_the_shared_configuration_and_apply_changes_it(self):
        self.up(self.manifest)
        wait_for(lambda: self.page() == "one", START_TIMEOUT, "the site to serve")
        # The web service starts from the cache `up` wrote; the agent reports it after.
        def reported():
            status = json.loads(self.clusweb("config", "status", "-o", "json").stdout)
            served = status["nodes"] and status["nodes"][0]["revision"] == status["revision"]
            return status if served else None
        status = wait_for(reported, WAIT_TIMEOUT, "the node to report what it serves")
        self.assertEqual(status["sites"], ["shop"])
        group = json.loads(self.clusweb("cluster", "status", "-o", "json").stdout)["groups"][0]
        self.assertEqual((group["name"], group["state"]), ("shop", "Online"))
        # The node's own settings stay in a manifest of the node's.
        server = read_text(os.path.join(self.state_dir, "web-server.yaml"))
        self.assertIn("kind: WebServer\n", server)
        self.assertIn("threads: 1\n", server)

        # A change applied as on a cluster is served, and is a revision of the history.
        applied = self.clusweb("apply", "-f", self.site_manifest("two.yaml", "two", False))
        self.assertEqual(applied.returncode, 0, applied.stderr)
        wait_for(lambda: self.page() == "two", WAIT_TIMEOUT, "the applied change to serve")
        history = json.loads(self.clusweb("config", "history", "-o", "json").stdout)
        self.assertEqual([r["summary"] for r in history["revisions"]],
                         ["site/shop changed", "site/shop created"])

        # At the next start the manifests are the whole truth again.
        self.stop()
        self.up(self.manifest)
        wait_for(lambda: self.page() == "one", START_TIMEOUT, "the manifests' site again")
        history = json.loads(self.clusweb("config", "history", "-o", "json").stdout)
        # The embedded store keeps the latest state across a restart, not its history.
        self.assertEqual(history["revisions"][0]["summary"], "site/shop changed", history)
        self.assertIn("compacted", history["end"])
        self.stop()

    def test_a_bad_manifest_stops_up_before_anything_starts(self):
        bad = write_file(os.path.join(self.dir, "bad.yaml"), dedent("""\
            kind: Site
            name: shop
            physicalPath: www/missing
            bindings: [http://127.0.0.1:%d]
            """ % self.port))
        self.up(bad)
        self.assertEqual(self.proc.wait(WAIT_TIMEOUT), 2)
        self.assertIn("%s:3" % bad, read_text(self.log))
        self.assertFalse(os.path.exists(os.path.join(self.run_dir, "agent.sock")))


if __name__ == "__main__":
    unittest.main()
