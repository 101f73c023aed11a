"""Secrets of the shared configuration: the cluster's data key (wrapped with an administrator
password in the store, one root-only copy per node), TLS private keys sealed with it on their
way through the store, written to root-only files on the node that serves them, and the whole
configuration exported and imported into a fresh cluster. A scan of everything clusweb and etcd
wrote finds no private key and no password in plaintext."""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

from cluster_harness import Agent, Etcd
from harness import (BIN, ECHO_WORKER, WAIT_TIMEOUT, dedent, free_port, https_request,
                     make_certificate, tls_context, wait_for, write_file)

PASSWORD = "correct horse battery staple"
DB_PASSWORD = "s3cr3t-db-passw0rd-7f1e"


def read_bytes(path):
    with open(path, "rb") as data:
        return data.read()
HOST = "secure.example.com"


class SecretsTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="clusweb-secrets-")
        os.chmod(self.dir, 0o755)
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.etcd = Etcd().start()
        self.addCleanup(self.etcd.cleanup)
        self.port = free_port()
        node_manifest = write_file(os.path.join(self.dir, "node.yaml"),
                                   "kind: WebServer\nthreads: 1\n")
        self.n1 = Agent("n1", self.etcd, self.dir, extra_args=["--web-config", node_manifest])
        self.addCleanup(self.n1.cleanup)
        self.n1.start()
        self.password = write_file(os.path.join(self.dir, "password"), PASSWORD + "\n", 0o600)
        self.wrong = write_file(os.path.join(self.dir, "wrong"), "not the password\n", 0o600)
        www = os.path.join(self.dir, "www")
        os.makedirs(www)
        write_file(os.path.join(www, "index.html"), "secure\n")
        os.chmod(www, 0o755)
        self.cert, self.key = make_certificate(self.dir, HOST)
        worker = os.path.join(self.dir, "echo_worker.py")
        shutil.copyfile(ECHO_WORKER, worker)
        os.chmod(worker, 0o755)
        self.db_password = write_file(os.path.join(self.dir, "db-password"),
                                      DB_PASSWORD + "\n", 0o600)
        self.manifest = write_file(os.path.join(self.dir, "secure.yaml"), dedent("""\
            kind: Site
            name: secure
            physicalPath: www
            bindings:
              - url: https://127.0.0.1:%d/%s
                certificate: %s.crt
                key: %s.key
            applications: [{path: /app, pool: api}]
            ---
            kind: ApplicationPool
            name: api
            command: [./echo_worker.py]
            secretEnvironment: {DB_PASSWORD: db-password}
            """ % (self.port, HOST, HOST, HOST)))

    def clusweb(self, agent, *args, state=True):
        argv = [BIN, *args, "--run-dir", agent.run_dir]
        if state:
            argv += ["--state-dir", agent.state_dir]
        return subprocess.run(argv, capture_output=True, text=True, check=False)

    def secure_page(self, path="/"):
        try:
            response, name = https_request(self.port, HOST, tls_context(self.cert), path)
        except OSError:
            return None
        return (response.status, response.text().strip(), name)

    def key_lines(self):
        """The private key's base64 lines: any one of them found somewhere is a leak."""
        with open(self.key) as key:
            return [line.strip() for line in key if line.strip() and "-----" not in line]

    def assert_no_plaintext(self, label, data):
        if isinstance(data, str):
            data = data.encode()
        for line in self.key_lines():
            self.assertNotIn(line.encode(), data, "a line of the private key in %s" % label)
        self.assertNotIn(PASSWORD.encode(), data, "the password in %s" % label)
        self.assertNotIn(DB_PASSWORD.encode(), data, "the pool's secret in %s" % label)

    def test_tls_keys_travel_sealed_and_are_served(self):
        # Without a data key an https site cannot be applied; nothing is written.
        refused = self.clusweb(self.n1, "apply", "-f", self.manifest)
        self.assertEqual(refused.returncode, 2, refused.stderr)
        self.assertIn("clusweb config join-key", refused.stderr)
        self.assertEqual(self.etcd.get_prefix("/clusweb/default/config/"), {})

        created = self.clusweb(self.n1, "config", "init-key", "--password-file", self.password,
                               "--kdf", "interactive", "-o", "json")
        self.assertEqual(created.returncode, 0, created.stderr)
        key_file = os.path.join(self.n1.state_dir, "data.key")
        self.assertEqual(os.stat(key_file).st_mode & 0o777, 0o600)
        again = self.clusweb(self.n1, "config", "init-key", "--password-file", self.password)
        self.assertNotEqual(again.returncode, 0)
        self.assertIn("already has a data key", again.stderr)

        applied = self.clusweb(self.n1, "apply", "-f", self.manifest)
        self.assertEqual(applied.returncode, 0, applied.stderr)
        wait_for(lambda: self.secure_page() == (200, "secure", HOST), WAIT_TIMEOUT,
                 "the https site to serve with its certificate")
        # The pool's worker gets its secret variable, read from the node's root-only file.
        def worker_environment():
            page = self.secure_page("/app/env")
            return json.loads(page[1])["environ"] if page and page[0] == 200 else None
        env = wait_for(worker_environment, WAIT_TIMEOUT, "the pool's worker to answer")
        self.assertEqual(env["DB_PASSWORD"], DB_PASSWORD)
        # Applying the same files again is no change: sealing is deterministic.
        same = self.clusweb(self.n1, "apply", "-f", self.manifest, "-o", "json")
        self.assertEqual(sorted(json.loads(same.stdout)["unchanged"]),
                         ["pool/api", "site/secure"], same.stdout)

        # The node holds the secrets in a root-only folder, nowhere else.
        tls_dir = os.path.join(self.n1.state_dir, "secrets")
        self.assertEqual(os.stat(tls_dir).st_mode & 0o777, 0o700)
        for name in os.listdir(tls_dir):
            self.assertEqual(os.stat(os.path.join(tls_dir, name)).st_mode & 0o777, 0o600, name)

        # A wrong password unwraps nothing and changes nothing.
        before = read_bytes(key_file)
        wrong = self.clusweb(self.n1, "config", "join-key", "--password-file", self.wrong)
        self.assertNotEqual(wrong.returncode, 0)
        self.assertIn("wrong password", wrong.stderr)
        self.assertEqual(read_bytes(key_file), before)
        joined = self.clusweb(self.n1, "config", "join-key", "--password-file", self.password)
        self.assertEqual(joined.returncode, 0, joined.stderr)

        # The scan: etcd's files, the node's cache and logs, and what the CLI shows.
        outputs = [self.clusweb(self.n1, *args, state=False).stdout for args in (
            ("config", "get"), ("config", "get", "-o", "json"), ("config", "history", "-o", "json"),
            ("events",))]
        exported = os.path.join(self.dir, "export.json")
        done = self.clusweb(self.n1, "config", "export", "--password-file", self.password,
                            "-f", exported, state=False)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("sealed:v1:", outputs[1])
        for index, output in enumerate(outputs):
            self.assert_no_plaintext("CLI output %d" % index, output)
        scanned = 0
        for folder in (self.etcd.dir, self.n1.state_dir, self.n1.run_dir, self.n1.dir):
            for root, dirs, files in os.walk(folder):
                dirs[:] = [d for d in dirs if os.path.join(root, d) != tls_dir]
                for name in files:
                    path = os.path.join(root, name)
                    if not os.path.isfile(path) or path in (self.key, self.password,
                                                            self.db_password):
                        continue
                    with open(path, "rb") as data:
                        self.assert_no_plaintext(path, data.read())
                    scanned += 1
        self.assertGreater(scanned, 5)

    def test_an_export_imports_into_a_fresh_cluster_with_its_key(self):
        self.assertEqual(self.clusweb(self.n1, "config", "init-key", "--password-file",
                                      self.password, "--kdf", "interactive").returncode, 0)
        applied = self.clusweb(self.n1, "apply", "-f", self.manifest)
        self.assertEqual(applied.returncode, 0, applied.stderr)
        # The agent checks every sealed value's key id against the cluster's key before it
        # writes anything: one sealed with another key, or not a sealed value at all, is refused.
        web = self.n1.api("GET", "/v1/config/web")
        site = next(s for s in web["sites"] if any("keySealed" in b for b in s["bindings"]))
        binding = next(b for b in site["bindings"] if "keySealed" in b)
        version, key_id, data = binding["keySealed"].split(":", 3)[1:]
        # Another key's id: the same form ("k" and hex digits), other digits.
        other_id = key_id[0] + "".join("0" if c != "0" else "1" for c in key_id[1:])
        revision = self.n1.api("GET", "/v1/config")["revision"]
        for sealed, expected in (
                ("sealed:%s:%s:%s" % (version, other_id, data),
                 "is sealed with data key %s, not the cluster's (%s)" % (other_id, key_id)),
                ("sealed:v1:nope:AAAA", "its key: not a sealed value (bad key id)")):
            binding["keySealed"] = sealed
            code, body = self.n1.request("POST", "/v1/apply", {
                "groups": [], "web": {"sites": web["sites"], "pools": web["pools"]}})
            self.assertGreaterEqual(code, 400, body)
            self.assertIn(expected, json.dumps(body))
        self.assertEqual(self.n1.api("GET", "/v1/config")["revision"], revision)
        exported = os.path.join(self.dir, "export.json")
        wrong = self.clusweb(self.n1, "config", "export", "--password-file", self.wrong, "-f",
                             exported, state=False)
        self.assertNotEqual(wrong.returncode, 0)
        self.assertIn("wrong password", wrong.stderr)
        self.assertFalse(os.path.exists(exported))
        done = self.clusweb(self.n1, "config", "export", "--password-file", self.password,
                            "-f", exported, state=False)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(os.stat(exported).st_mode & 0o777, 0o600)
        self.assert_no_plaintext("the export", read_bytes(exported))
        # The same JSON on standard output, so `export > FILE` imports too.
        printed = self.clusweb(self.n1, "config", "export", "--password-file", self.password,
                               state=False)
        self.assertEqual(json.loads(printed.stdout), json.loads(read_bytes(exported)))

        # A fresh cluster (another name in the same etcd), its agent without a web service.
        fresh = Agent("m1", self.etcd, self.dir, extra_args=["--cluster", "fresh"])
        self.addCleanup(fresh.cleanup)
        fresh.start()
        refused = self.clusweb(fresh, "config", "import", exported, "--password-file",
                               self.wrong, "--kdf", "interactive")
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("wrong password", refused.stderr)
        self.assertIn("nothing was imported", refused.stderr)
        self.assertEqual(self.etcd.get_prefix("/clusweb/fresh/config/"), {})
        self.assertEqual(self.etcd.get_prefix("/clusweb/fresh/secrets/"), {})

        imported = self.clusweb(fresh, "config", "import", exported, "--password-file",
                                self.password, "--kdf", "interactive")
        self.assertEqual(imported.returncode, 0, imported.stderr)
        self.assertIn("site/secure: created", imported.stdout)

        def objects(agent):
            got = json.loads(self.clusweb(agent, "config", "get", "-o", "json",
                                          state=False).stdout)
            return got["sites"], got["pools"]
        self.assertEqual(objects(fresh), objects(self.n1))
        ids = [json.loads(self.clusweb(agent, "config", "join-key", "--password-file",
                                       self.password, "-o", "json").stdout)["keyId"]
               for agent in (self.n1, fresh)]
        self.assertEqual(ids[0], ids[1])
        # Importing the same export again changes nothing: the fresh cluster's key is its key.
        again = self.clusweb(fresh, "config", "import", exported, "--password-file",
                             self.password, "--kdf", "interactive")
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertIn("no change", again.stdout)


if __name__ == "__main__":
    unittest.main()
