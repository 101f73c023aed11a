"""scripts/demo.sh, as README shows it: three node namespaces, a three-member etcd, a group with
a floating address; the client reaches the site, the serving node is killed, the client reaches
the site from another node; nothing is left behind."""

import os
import re
import subprocess
import unittest

from harness import BIN, SRC


def namespaces():
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in listed.splitlines() if line.strip()}


def demo_processes():
    """The pids of processes that talk to the demo's network (etcd members and agents name
    their 10.78.0.x addresses on their command lines)."""
    found = subprocess.run(["pgrep", "-f", r"10\.78\.0\."], capture_output=True, text=True)
    return set(found.stdout.split())


class DemoTest(unittest.TestCase):
    def test_the_demo_shows_a_failover_and_cleans_up(self):
        before_ns = namespaces()
        self.assertEqual(demo_processes(), set(), "something else uses the demo's network")
        env = dict(os.environ, CLUSWEB_BIN=BIN)
        demo = subprocess.run(["bash", os.path.join(SRC, "scripts", "demo.sh")], env=env,
                              capture_output=True, text=True, timeout=120)
        self.assertEqual(demo.returncode, 0, demo.stdout + demo.stderr)
        out = demo.stdout
        self.assertRegex(out, r'group "shop": Online on n1 \(floating address 10\.78\.0\.50/24')
        self.assertRegex(out, r"client: GET http://10\.78\.0\.50:8080/ -> answered by n1\n")
        self.assertIn("killing node n1", out)
        moved = re.search(r"-> answered by (n[23]), ([0-9.]+) s after the kill", out)
        self.assertIsNotNone(moved, out)
        self.assertRegex(out, r"\n +%s +acquired +ownership taken over" % moved.group(1))
        self.assertRegex(out, r"nodes up: n2, n3\n")
        self.assertTrue(out.rstrip().endswith("done"), out)
        # Everything it created is gone.
        self.assertEqual(namespaces() - before_ns, set())
        self.assertEqual(demo_processes(), set())


if __name__ == "__main__":
    unittest.main()
