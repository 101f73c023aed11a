"""The web service with a shared configuration cache (`clusweb web --shared-config FILE`).

The cache is written here as the agent writes it (base/atomic_file.h: a header with the
payload's length and CRC-32, then the JSON of config/shared_config.h). The service merges it
with its own manifests at start and on every reload; a revision that does not merge on this
node leaves the previous one serving and says why.
"""

import json
import os
import unittest
import zlib

from harness import BIN, WAIT_TIMEOUT, WebService, free_ports, http_request, wait_for


def write_cache(path, revision, sites, pools=()):
    payload = json.dumps({"revision": revision, "sites": list(sites),
                          "pools": list(pools)}).encode()
    header = b"clusweb-file 1 %d %08x\n" % (len(payload), zlib.crc32(payload))
    temporary = path + ".tmp"
    with open(temporary, "wb") as out:
        out.write(header + payload)
    os.chmod(temporary, 0o644)
    os.rename(temporary, path)


def shared_site(root, port, name="shop"):
    return {"name": name, "physicalPath": root,
            "bindings": [{"url": "http://127.0.0.1:%d" % port,
                          "where": {"file": "/admin/shop.yaml", "line": 3}}],
            "where": {"file": "/admin/shop.yaml", "line": 1}}


class SharedConfigTest(unittest.TestCase):
    def setUp(self):
        if not os.path.exists(BIN) or os.geteuid() != 0:
            self.skipTest("needs root and the clusweb binary")
        self.local_port, self.shop_port = free_ports(2)
        self.web = WebService(self.id().rsplit(".", 1)[-1])
        self.addCleanup(self.web.cleanup)
        self.addCleanup(lambda: self.web.stop(check=False))
        local = self.web.site_folder("local", {"index.html": "local\n"})
        self.web.write_manifest("web.yaml", """
            kind: Site
            name: local
            physicalPath: %s
            bindings: [http://127.0.0.1:%d]
            """ % (local, self.local_port))
        self.cache = self.web.path("state", "shared-config")
        self.web.extra_args = ["--shared-config", self.cache]
        self.roots = {}
        for revision in (1, 2):
            self.roots[revision] = self.web.site_folder("shop%d" % revision,
                                                        {"index.html": "rev %d\n" % revision})

    def shop(self):
        """The body of the shared site's page, or None."""
        try:
            response, body = http_request(self.shop_port, "/", timeout=2.0)
        except OSError:
            return None
        return body.decode().strip() if response.status == 200 else None

    def local(self):
        return http_request(self.local_port, "/")[1]

    def shared(self):
        return self.web.status()["sharedConfig"]

    def test_revisions_are_served_and_one_that_fails_here_keeps_the_previous(self):
        # No cache yet: the node's own sites only.
        self.web.start()
        self.assertEqual(self.shared(), {"revision": 0, "problem": ""})
        self.assertEqual(self.local(), b"local\n")

        write_cache(self.cache, 1, [shared_site(self.roots[1], self.shop_port)])
        code, body = self.web.reload()
        self.assertEqual(code, 200, body)
        self.assertEqual(body["sharedConfig"]["revision"], 1)
        wait_for(lambda: self.shop() == "rev 1", WAIT_TIMEOUT, "revision 1 served")

        write_cache(self.cache, 2, [shared_site(self.roots[2], self.shop_port)])
        self.assertEqual(self.web.reload()[0], 200)
        wait_for(lambda: self.shop() == "rev 2", WAIT_TIMEOUT, "revision 2 served")

        # Revision 3 names a content folder this node does not have: not applied, and said so.
        write_cache(self.cache, 3, [shared_site(self.web.path("nowhere"), self.shop_port)])
        code, body = self.web.reload()
        self.assertEqual(code, 200, body)
        self.assertEqual(body["sharedConfig"]["revision"], 2)
        problem = body["sharedConfig"]["problem"]
        self.assertIn("revision 3", problem)
        self.assertIn("/admin/shop.yaml:1 (shared configuration revision 3): Site \"shop\": "
                      "physicalPath: directory \"%s\" does not exist on this node"
                      % self.web.path("nowhere"), problem)
        self.assertEqual(self.shop(), "rev 2")

        # A damaged cache is not taken as empty: revision 2 keeps serving.
        with open(self.cache, "r+b") as damaged:
            damaged.seek(-3, os.SEEK_END)
            damaged.write(b"X")
        code, body = self.web.reload()
        self.assertEqual(body["sharedConfig"]["revision"], 2)
        self.assertIn(self.cache, body["sharedConfig"]["problem"])
        self.assertEqual(self.shop(), "rev 2")
        self.assertEqual(self.local(), b"local\n")

    def test_a_restarted_node_serves_from_its_cache(self):
        write_cache(self.cache, 7, [shared_site(self.roots[2], self.shop_port)])
        self.web.start()
        self.assertEqual(self.shared(), {"revision": 7, "problem": ""})
        wait_for(lambda: self.shop() == "rev 2", WAIT_TIMEOUT, "the cached revision served")

    def test_a_name_the_node_defines_itself_is_refused(self):
        write_cache(self.cache, 4, [shared_site(self.roots[1], self.shop_port, name="local")])
        self.web.start()
        shared = self.shared()
        self.assertEqual(shared["revision"], 0)
        self.assertIn("Site \"local\": also defined by this node, at %s:"
                      % os.path.join(self.web.config_dir, "web.yaml"), shared["problem"])
        self.assertEqual(self.local(), b"local\n")


if __name__ == "__main__":
    unittest.main()
