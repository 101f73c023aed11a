"""The failover cluster with real agents on one real etcd: ownership, moves, node loss.

Groups here hold one script resource (cluster_harness.marker_script) that records when each
node starts and stops serving, so the tests check the safety rule directly: never two nodes at
once. Network-level behaviour (floating addresses, partitions) is in test_cluster_netns.py.
"""

import json
import os
import signal
import subprocess
import threading
import time
import unittest

from cluster_harness import (Agent, LoopbackClusterTest, marker_script, overlaps, read_journal,
                             script_group)
from harness import (BIN, WAIT_TIMEOUT, EventStream, assert_holds, dedent, free_port,
                     http_request, wait_for, write_file)

TTL = 2.0


class ClusterTest(LoopbackClusterTest):
    ttl = TTL

    def setUp(self):
        super().setUp()
        self.script = marker_script(os.path.join(self.dir, "marker"))

    def journal(self):
        return read_journal(os.path.join(self.dir, "marker"))

    def wait_online(self, via, group, on=None, not_on=None, timeout=WAIT_TIMEOUT):
        def online():
            status = via.group(group)
            if not status or status["state"] != "Online" or not status["owner"]:
                return None
            if on and status["owner"] != on:
                return None
            if not_on and status["owner"] == not_on:
                return None
            return status
        return wait_for(online, timeout, "group %s Online%s" % (group, " on " + on if on else ""))

    def events(self, via):
        return via.api("GET", "/v1/events?after=0&limit=1000")["events"]

    def wait_events(self, via, group, *needed):
        """The group's events once every (node, what) in `needed` is among them: each node
        appends its own events after the fact, so a state seen elsewhere may come first."""
        def found():
            events = [e for e in self.events(via) if e.get("group") == group]
            seen = {(e["node"], e["what"]) for e in events}
            return events if all(n in seen for n in needed) else None
        return wait_for(found, WAIT_TIMEOUT, "events %s of group %s" % (needed, group))

    def logs(self):
        return "\n".join("--- %s ---\n%s" % (a.node, a.log()[-3000:]) for a in self.agents.values())

    # -----------------------------------------------------------------------------------------

    def test_a_group_runs_on_its_preferred_node_and_moves_gracefully(self):
        n1, n2, n3 = self.start_agents("n1", "n2", "n3")
        created = n1.api("POST", "/v1/groups/web",
                         {"spec": script_group("web", self.script, ["n2", "n1"]), "revision": 0})
        self.assertGreater(created["revision"], 0)
        status = self.wait_online(n3, "web", on="n2")
        self.assertEqual(status["resources"][0]["state"], "Online")
        # Creating it again with revision 0 is refused: it exists.
        code, body = n1.request("POST", "/v1/groups/web",
                                {"spec": script_group("web", self.script), "revision": 0})
        self.assertEqual(code, 409, body)

        moved = n1.api("POST", "/v1/groups/web/move", {"node": "n3"})
        self.assertEqual(moved["from"], "n2")
        self.wait_online(n1, "web", on="n3")
        journal = [e for e in self.journal() if e[1] == "web"]
        self.assertEqual([(e[0], e[2]) for e in journal],
                         [("start", "n2"), ("stop", "n2"), ("start", "n3")], journal)
        self.assertEqual(overlaps(journal, "web"), [])
        # The new ownership has a larger fencing token.
        self.assertGreater(journal[2][3], journal[0][3])
        # The owner records "online" in the event log after it publishes its status.
        expected = {("n2", "acquired"), ("n2", "released"), ("n3", "acquired"), ("n3", "online")}

        def whats():
            return {(e["node"], e["what"]) for e in self.events(n1) if e.get("group") == "web"}
        wait_for(lambda: expected <= whats(), WAIT_TIMEOUT, "events of the move")

        # Offline and online again by request.
        n2.api("POST", "/v1/groups/web/offline")
        wait_for(lambda: n2.group("web")["state"] == "Offline" and not n2.group("web")["owner"],
                 WAIT_TIMEOUT, "group web Offline")
        self.assertEqual(self.journal()[-1][0], "stop")
        n2.api("POST", "/v1/groups/web/online")
        self.wait_online(n2, "web")

    def test_a_killed_owner_is_replaced_after_the_ttl(self):
        n1, n2, n3 = self.start_agents("n1", "n2", "n3")
        n1.api("POST", "/v1/groups/app", {"spec": script_group("app", self.script, ["n1"])})
        self.wait_online(n2, "app", on="n1")
        with open("/proc/uptime") as uptime:
            killed_at = float(uptime.read().split()[0])
        n1.kill()
        status = self.wait_online(n2, "app", not_on="n1", timeout=WAIT_TIMEOUT + 2 * TTL)
        starts = [e for e in self.journal() if e[0] == "start" and e[2] == status["owner"]]
        self.assertTrue(starts, self.journal())
        # A script cannot stop serving by itself when its node dies: the new owner waits out
        # one TTL after the old lease expired. The lease ran from the last keepalive, at most
        # one renewal interval (TTL/3) before the kill, so the start comes no earlier than
        # TTL - TTL/3 + TTL after it.
        self.assertGreaterEqual(starts[-1][4] - killed_at, 2 * TTL - TTL / 3 - 0.1,
                                self.journal())
        events = self.wait_events(n2, "app", (status["owner"], "acquired"))
        acquired = [e for e in events if e["what"] == "acquired" and e["node"] == status["owner"]]
        self.assertTrue(acquired and "expired" in acquired[-1]["why"], events)

    def test_a_stopped_agent_hands_its_groups_over(self):
        n1, n2 = self.start_agents("n1", "n2")
        n2.api("POST", "/v1/groups/shop", {"spec": script_group("shop", self.script, ["n1"])})
        self.wait_online(n2, "shop", on="n1")
        self.assertEqual(n1.stop(), 0, n1.log()[-3000:])
        self.wait_online(n2, "shop", on="n2")
        journal = [e for e in self.journal() if e[1] == "shop"]
        self.assertEqual([(e[0], e[2]) for e in journal],
                         [("start", "n1"), ("stop", "n1"), ("start", "n2")], journal)
        self.assertEqual(overlaps(journal, "shop"), [])
        nodes = {n["name"]: n["up"] for n in n2.cluster()["nodes"]}
        self.assertEqual(nodes, {"n2": True})
        # A planned stop hands over by a graceful release: no lease expiry, no TTL wait.
        events = self.wait_events(n2, "shop", ("n1", "released"), ("n2", "acquired"))
        acquired = [e for e in events if e["what"] == "acquired" and e["node"] == "n2"]
        self.assertEqual([e["why"] for e in acquired],
                         ["ownership taken after a graceful release"], events)

    def cli(self, via, *args):
        return subprocess.run([BIN, *args, "--run-dir", via.run_dir], capture_output=True,
                              text=True, timeout=120)

    def test_drain_moves_every_group_away_gracefully_and_pause_keeps_them(self):
        n1, n2, n3 = self.start_agents("n1", "n2", "n3")
        for name in ("shop", "blog"):
            n2.api("POST", "/v1/groups/" + name,
                   {"spec": script_group(name, self.script, ["n1", "n2"])})
        for name in ("shop", "blog"):
            self.wait_online(n2, name, on="n1")

        drained = self.cli(n2, "node", "drain", "n1", "--timeout", "60s")
        self.assertEqual(drained.returncode, 0, drained.stderr + self.logs())
        lines = drained.stdout.splitlines()
        self.assertEqual(lines[0], "draining n1: 2 groups to move (blog, shop)", lines)
        self.assertEqual(sorted(lines[1:3]),
                         ['group "blog": Online on n2', 'group "shop": Online on n2'], lines)
        self.assertEqual(lines[3], "node n1 is drained: it owns no group and takes none until "
                                   "`clusweb node resume n1`", lines)
        for name in ("shop", "blog"):
            journal = [e for e in self.journal() if e[1] == name]
            self.assertEqual([(e[0], e[2]) for e in journal],
                             [("start", "n1"), ("stop", "n1"), ("start", "n2")], journal)
            self.assertEqual(overlaps(journal, name), [])
            events = self.wait_events(n3, name, ("n1", "released"), ("n2", "acquired"))
            acquired = [e for e in events if e["what"] == "acquired" and e["node"] == "n2"]
            self.assertEqual([e["why"] for e in acquired],
                             ["ownership taken after a graceful release"], events)
        node = {n["name"]: n for n in n3.cluster()["nodes"]}["n1"]
        self.assertEqual((node["up"], node["paused"], node["draining"], node["groups"]),
                         (True, True, True, 0), node)
        # The live view shows it at a glance, with the last events below.
        watch = self.cli(n3, "cluster", "status", "--watch", "--frames", "2", "--interval",
                         "100ms")
        self.assertEqual(watch.returncode, 0, watch.stderr)
        self.assertRegex(watch.stdout, r"\nn1 +up, drained +0\n")
        self.assertIn("\nLAST EVENTS\n", watch.stdout)

        # Nothing new goes to a drained node, though it is the first preferred owner.
        n2.api("POST", "/v1/groups/wiki", {"spec": script_group("wiki", self.script, ["n1"])})
        status = self.wait_online(n2, "wiki")
        self.assertNotEqual(status["owner"], "n1")

        # Pause: n2 keeps its groups, and takes no new ones.
        paused = self.cli(n1, "node", "pause", "n2")
        self.assertEqual(paused.returncode, 0, paused.stderr)
        self.assertEqual(paused.stdout, "node n2 paused: it keeps its groups and takes no new "
                                        "ones\n")
        n1.api("POST", "/v1/groups/mail", {"spec": script_group("mail", self.script, ["n2"])})
        self.assertEqual(self.wait_online(n1, "mail")["owner"], "n3")
        for name in ("shop", "blog"):
            self.assertEqual(n1.group(name)["owner"], "n2")

        # Resume: n1 takes groups again (failback is off, so nothing moves back by itself).
        resumed = self.cli(n3, "node", "resume", "n1", "-o", "json")
        self.assertEqual(resumed.returncode, 0, resumed.stderr)
        self.assertEqual(json.loads(resumed.stdout), {"node": "n1"})
        node = {n["name"]: n for n in n3.cluster()["nodes"]}["n1"]
        self.assertEqual((node["paused"], node["draining"]), (False, False), node)
        n1.api("POST", "/v1/groups/news", {"spec": script_group("news", self.script, ["n1"])})
        self.wait_online(n1, "news", on="n1")
        self.assertEqual(n1.group("shop")["owner"], "n2")

        # A node nobody knows is refused, not silently paused.
        unknown = self.cli(n1, "node", "pause", "n9")
        self.assertEqual(unknown.returncode, 1)
        self.assertIn('node "n9" is not up and not paused', unknown.stderr)

    def test_a_frozen_agent_fences_itself_when_it_wakes(self):
        n1, n2 = self.start_agents("n1", "n2")
        n1.api("POST", "/v1/groups/api", {"spec": script_group("api", self.script, ["n1"])})
        self.wait_online(n2, "api", on="n1")
        n1.freeze()
        try:
            self.wait_online(n2, "api", on="n2", timeout=WAIT_TIMEOUT + 2 * TTL)
        finally:
            n1.thaw()
        # Woken past its deadline, n1 terminates what it ran and joins again with a new lease.
        wait_for(lambda: any(e[0] == "stop" and e[2] == "n1" for e in self.journal()),
                 WAIT_TIMEOUT, "n1 to stop serving after waking")
        wait_for(lambda: {n["name"] for n in n2.cluster()["nodes"] if n["up"]} == {"n1", "n2"},
                 WAIT_TIMEOUT, "n1 to rejoin")
        self.assertIn("fenc", n1.log())
        self.assertEqual(n2.group("api")["owner"], "n2")
        # A script resource cannot stop by itself while its agent is frozen (that needs the
        # watchdog): it is stopped when the agent wakes, and n2 keeps the group.
        journal = [e for e in self.journal() if e[1] == "api"]
        starts = [e for e in journal if e[0] == "start"]
        self.assertEqual(starts[-1][2], "n2", journal)
        self.assertGreater(starts[-1][3], starts[0][3], journal)
        self.assertEqual(journal[-1][:3], ("stop", "api", "n1"), journal)

    def test_a_failing_resource_restarts_in_place_then_fails_over(self):
        n1, n2 = self.start_agents("n1", "n2")
        spec = script_group("svc", self.script, ["n1", "n2"])
        spec["resources"][0]["policy"] = {"restartThreshold": 2, "restartDelay": "100ms"}
        n1.api("POST", "/v1/groups/svc", {"spec": spec})
        self.wait_online(n2, "svc", on="n1")
        with open(os.path.join(self.dir, "marker", "broken.n1"), "w"):
            pass
        status = self.wait_online(n2, "svc", on="n2", timeout=WAIT_TIMEOUT * 2)
        self.assertEqual(status["resources"][0]["state"], "Online")
        # n1's events are appended in order: once its "failed-over" is there, so is the rest.
        events = [(e["node"], e["what"], e["why"]) for e in
                  self.wait_events(n2, "svc", ("n1", "failed-over"), ("n2", "acquired"))]
        restarts = [e for e in events if e[0] == "n1" and e[2].startswith("restarting in place")]
        # Restarted in place up to the threshold first, then failed over (and counted).
        self.assertEqual(len(restarts), 2, events)
        whats = [(node, what) for node, what, _ in events]
        self.assertIn(("n1", "failed-over"), whats)
        # Each node appends its own events: n2's "acquired" may precede n1's record of the
        # release it followed, but not n1's restarts.
        self.assertIn(("n2", "acquired"), whats[events.index(restarts[-1]) + 1:])
        # The check's own output names the cause in the event log.
        self.assertIn(("n1", "output", "broken on n1"), events)
        journal = [e for e in self.journal() if e[1] == "svc"]
        self.assertEqual(overlaps(journal, "svc"), [])

    def test_an_unmanaged_group_is_watched_not_acted_on_until_managed_again(self):
        n1, n2 = self.start_agents("n1", "n2")
        spec = script_group("svc", self.script, ["n1", "n2"])
        spec["resources"][0]["policy"] = {"looksAliveInterval": "200ms",
                                          "isAliveInterval": "500ms", "restartDelay": "100ms"}
        n1.api("POST", "/v1/groups/svc", {"spec": spec})
        status = self.wait_online(n2, "svc", on="n1")
        mark = os.path.join(self.dir, "marker", "serving", "svc.n1")
        token = str(status["token"])

        # Through the owner's agent: its own events (the request, then what it does) are in order.
        done = self.cli(n1, "group", "unmanage", "svc")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn('group "svc" is unmanaged', done.stdout)

        def resource_state(state):
            def check():
                status = n2.group("svc")
                resource = status["resources"][0] if status else None
                if resource and resource["state"] == state and resource["unmanaged"]:
                    return status
                return None
            return wait_for(check, WAIT_TIMEOUT, "svc's resource %s (unmanaged)" % state)

        # The service dies: seen and shown, but neither restarted nor failed over.
        os.unlink(mark)
        status = resource_state("Failed")
        self.assertEqual(status["owner"], "n1")
        self.assertIn("isalive failed", status["resources"][0]["lastError"])
        time.sleep(1.5)  # many polls: none of them may act
        self.assertFalse(os.path.exists(mark))
        self.assertEqual(n2.group("svc")["owner"], "n1")
        moved = self.cli(n2, "group", "move", "svc")
        self.assertNotEqual(moved.returncode, 0)
        self.assertIn("is unmanaged", moved.stderr)
        shown = self.cli(n2, "cluster", "status")
        self.assertRegex(shown.stdout, r"\nsvc +Failed \(unmanaged\) +n1 ")

        # Repaired by hand: Online again without the cluster starting anything.
        with open(mark, "w") as f:
            f.write(token + "\n")
        resource_state("Online")

        # It dies again, and once managed the cluster recovers it as any failure: in place.
        os.unlink(mark)
        resource_state("Failed")
        done = self.cli(n1, "group", "manage", "svc")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("managed by the cluster again", done.stdout)
        status = self.wait_online(n2, "svc", on="n1")
        self.assertFalse(status["resources"][0]["unmanaged"])
        self.assertTrue(os.path.exists(mark))
        events = [(e["node"], e["what"], e["why"]) for e in
                  self.wait_events(n2, "svc", ("n1", "unmanaged"), ("n1", "managed"))]
        managed_at = [i for i, e in enumerate(events) if e[1] == "managed"][0]
        restarts = [i for i, e in enumerate(events) if e[2].startswith("restarting in place")]
        self.assertTrue(any(e[2].endswith("(unmanaged: left as it is)")
                            for e in events[:managed_at]), events)
        self.assertTrue(restarts and all(i > managed_at for i in restarts), events)
        starts = [e for e in self.journal() if e[0] == "start" and e[1] == "svc"]
        self.assertEqual([e[2] for e in starts], ["n1", "n1"])

    def test_the_event_log_streams_past_and_new_events(self):
        (n1,) = self.start_agents("n1")
        stream = EventStream(n1.socket_path, "/v1/events?follow=1&after=0")
        self.addCleanup(stream.close)
        # What happened before the stream opened comes first ...
        stream.wait_for(lambda e: e["what"] == "joined" and e["node"] == "n1")
        # ... then what happens while it is open, in sequence order.
        n1.api("POST", "/v1/groups/feed", {"spec": script_group("feed", self.script)})
        stream.wait_for(lambda e: e["group"] == "feed" and e["what"] == "online")
        sequences = [e["seq"] for e in stream.snapshot()]
        self.assertEqual(sequences, sorted(set(sequences)))
        self.assertEqual(sequences[0], 1)

    def test_bad_groups_are_refused_with_a_reason(self):
        (n1,) = self.start_agents("n1")
        spec = script_group("bad", self.script)
        spec["resources"][0]["dependsOn"] = [["nothing"]]
        code, body = n1.request("POST", "/v1/groups/bad", {"spec": spec})
        self.assertEqual(code, 400)
        self.assertIn("nothing", body["error"])
        code, body = n1.request("POST", "/v1/apply",
                                {"groups": [script_group("ok", self.script), spec]})
        self.assertEqual(code, 400)
        # All or nothing: the valid group was not written either.
        self.assertEqual(n1.cluster()["groups"], [])
        code, body = n1.request("GET", "/v1/groups/missing")
        self.assertEqual(code, 404)


    def test_sites_and_pools_are_applied_to_the_shared_configuration(self):
        (n1,) = self.start_agents("n1")
        content = os.path.join(self.dir, "www")
        os.makedirs(content)
        manifest = write_file(os.path.join(self.dir, "shop.yaml"), dedent("""\
            kind: Site
            name: shop
            physicalPath: www
            bindings: [http://*:8080/shop.example.com]
            applications: [{path: /api, pool: shop-api}]
            ---
            kind: ApplicationPool
            name: shop-api
            command: [/bin/cat]
            ---
            kind: Group
            name: shop
            resources:
              - {name: site, type: website, parameters: {site: shop}}
            """))

        def apply(*args):
            return subprocess.run([BIN, "apply", "--run-dir", n1.run_dir, *args],
                                  capture_output=True, text=True, check=False)
        dry = apply("-f", manifest, "--dry-run", "-o", "json")
        self.assertEqual(dry.returncode, 0, dry.stderr)
        self.assertEqual(sorted(json.loads(dry.stdout)["created"]),
                         ["pool/shop-api", "shop", "site/shop"])
        self.assertEqual(self.etcd.get_prefix("/clusweb/default/config/"), {})

        done = apply("-f", manifest)
        self.assertEqual(done.returncode, 0, done.stderr)
        stored = json.loads(self.etcd.get_prefix("/clusweb/default/config/")
                            ["/clusweb/default/config/web"])
        # Resolved where it was applied: absolute paths, the origin kept for messages.
        self.assertEqual(stored["sites"][0]["physicalPath"], content)
        self.assertEqual(stored["sites"][0]["where"], {"file": manifest, "line": 1})
        self.assertEqual(stored["pools"][0]["name"], "shop-api")
        again = apply("-f", manifest, "-o", "json")
        self.assertEqual(sorted(json.loads(again.stdout)["unchanged"]),
                         ["pool/shop-api", "shop", "site/shop"])

        # A site naming a pool nobody defines: refused, nothing written.
        broken = write_file(os.path.join(self.dir, "broken.yaml"), dedent("""\
            kind: Site
            name: blog
            physicalPath: www
            bindings: [http://*:8080/blog.example.com]
            applications: [{path: /, pool: nowhere}]
            """))
        refused = apply("-f", broken)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("nowhere", refused.stderr)
        self.assertIn("nothing was applied", refused.stderr)
        # A node's own settings are not shared.
        server = write_file(os.path.join(self.dir, "server.yaml"), "kind: WebServer\nthreads: 2\n")
        refused = apply("-f", server)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("%s:1: kind WebServer holds one node's own settings" % server, refused.stderr)
        after = json.loads(self.etcd.get_prefix("/clusweb/default/config/")
                           ["/clusweb/default/config/web"])
        self.assertEqual(after, stored)
        events = self.wait_events(n1, "", ("n1", "config-changed"))
        self.assertIn("site/shop", [e for e in events if e["what"] == "config-changed"][0]["why"])


    def test_the_shared_configuration_can_be_read_compared_traced_and_pruned(self):
        (n1,) = self.start_agents("n1")
        for name in ("a", "b"):
            os.makedirs(os.path.join(self.dir, "www", name))

        def clusweb(*args):
            return subprocess.run([BIN, *args, "--run-dir", n1.run_dir], capture_output=True,
                                  text=True, check=False)

        def manifest(name, folder, mode):
            return write_file(os.path.join(self.dir, name), dedent("""\
                kind: Site
                name: shop
                physicalPath: www/%s
                bindings: [http://*:8080/shop.example.com]
                applications: [{path: /api, pool: api}]
                ---
                kind: ApplicationPool
                name: api
                command: [/bin/cat]
                environment: {MODE: %s}
                """ % (folder, mode)))
        first, second = manifest("one.yaml", "a", "test"), manifest("two.yaml", "b", "live")
        self.assertEqual(clusweb("apply", "-f", first).returncode, 0)
        # What applying the second file would change, field by field; nothing is written.
        diff = clusweb("config", "diff", "-f", second)
        self.assertEqual(diff.returncode, 0, diff.stderr)
        self.assertIn('site/shop: changed\n    physicalPath: "%s/www/a" -> "%s/www/b"'
                      % (self.dir, self.dir), diff.stdout)
        self.assertIn('pool/api: changed\n    environment.MODE: "test" -> "live"', diff.stdout)
        self.assertEqual(clusweb("config", "history", "-o", "json").returncode, 0)
        self.assertEqual(len(json.loads(clusweb("config", "history", "-o", "json").stdout)
                             ["revisions"]), 1)
        self.assertEqual(clusweb("apply", "-f", second).returncode, 0)

        history = json.loads(clusweb("config", "history", "-o", "json").stdout)
        newest, oldest = history["revisions"]
        self.assertEqual(newest["summary"], "site/shop changed, pool/api changed")
        self.assertEqual(oldest["summary"], "site/shop created, pool/api created")
        self.assertEqual(history["end"], "the first revision")
        back = json.loads(clusweb("config", "diff", "--from", str(oldest["revision"]),
                                  "-o", "json").stdout)
        self.assertEqual(sorted((c["kind"], c["name"], c["change"]) for c in back["changes"]),
                         [("pool", "api", "changed"), ("site", "shop", "changed")])

        # `config get` prints manifests that apply back unchanged, and the old revision too.
        got = clusweb("config", "get")
        self.assertEqual(got.returncode, 0, got.stderr)
        self.assertIn("# from %s:1\nkind: Site\nname: \"shop\"" % second, got.stdout)
        again = clusweb("apply", "-f", write_file(os.path.join(self.dir, "got.yaml"),
                                                  got.stdout), "-o", "json")
        self.assertEqual(sorted(json.loads(again.stdout)["unchanged"]), ["pool/api", "site/shop"])
        old = json.loads(clusweb("config", "get", "--revision", str(oldest["revision"]),
                                 "-o", "json").stdout)
        self.assertEqual(old["sites"][0]["physicalPath"], os.path.join(self.dir, "www", "a"))

        # Deleting: a pool a remaining site uses, or a site a group serves, is refused.
        refused = clusweb("config", "delete", "pool/api")
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn('no ApplicationPool named "api"', refused.stderr)
        self.assertIn("nothing was deleted", refused.stderr)
        n1.api("POST", "/v1/groups/shop", {"spec": {"resources": [
            {"name": "site", "type": "website", "parameters": {"site": "shop"}}]}})
        refused = clusweb("config", "delete", "site/shop", "pool/api")
        self.assertIn('group "shop" serves site "shop"', refused.stderr)
        n1.api("POST", "/v1/groups/shop/delete")
        before = self.etcd.get_prefix("/clusweb/default/config/")
        dry = clusweb("config", "delete", "site/shop", "pool/api", "--dry-run")
        self.assertEqual(dry.returncode, 0, dry.stderr)
        self.assertIn("site/shop: removed", dry.stdout)
        self.assertEqual(self.etcd.get_prefix("/clusweb/default/config/"), before)
        done = clusweb("config", "delete", "site/shop", "pool/api")
        self.assertEqual(done.returncode, 0, done.stderr)
        stored = json.loads(self.etcd.get_prefix("/clusweb/default/config/")
                            ["/clusweb/default/config/web"])
        self.assertEqual((stored["sites"], stored["pools"]), ([], []))
        self.assertEqual(json.loads(clusweb("config", "history", "-o", "json").stdout)
                         ["revisions"][0]["summary"], "site/shop removed, pool/api removed")

class AgentRestartTest(LoopbackClusterTest):
    """An agent restarted while its lease lives adopts what it runs: no failover, no restart
    of what still runs. TTL 4 s leaves a killed agent time to come back under its lease."""

    ttl = 4.0

    def children(self, pid):
        try:
            with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
                return {int(p) for p in f.read().split()}
        except OSError:
            return set()

    def web_pid(self, agent):
        for pid in self.children(agent.proc.pid):
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                if f.read().split(b"\0")[1:2] == [b"web"]:
                    return pid
        return None

    def test_a_restarted_agent_adopts_its_groups_under_its_lease(self):
        script = marker_script(os.path.join(self.dir, "marker"))
        port = free_port()
        content = os.path.join(self.dir, "www")
        os.makedirs(content)
        write_file(os.path.join(content, "index.html"), "shop\n")
        for path in (self.dir, content):
            os.chmod(path, 0o755)
        server = write_file(os.path.join(self.dir, "server.yaml"), "kind: WebServer\nthreads: 1\n")
        self.agents["n1"] = Agent("n1", self.etcd, self.dir, ttl="%ds" % self.ttl,
                                  extra_args=["--web-config", server])
        n1 = self.agents["n1"].start()
        (n2,) = self.start_agents("n2")
        site = write_file(os.path.join(self.dir, "shop.yaml"), dedent("""\
            kind: Site
            name: shop
            physicalPath: www
            bindings: [http://127.0.0.1:%d]
            """ % port))
        applied = subprocess.run([BIN, "apply", "--run-dir", n1.run_dir, "-f", site],
                                 capture_output=True, text=True, check=False)
        self.assertEqual(applied.returncode, 0, applied.stderr)
        n1.api("POST", "/v1/groups/shop", {"spec": {"preferredOwners": ["n1"], "resources": [
            {"name": "app", "type": "script", "parameters": {"path": script}},
            {"name": "site", "type": "website", "parameters": {"site": "shop"},
             "dependsOn": [["app"]]}]}})

        def page():
            try:
                response, body = http_request(port, timeout=2.0)
            except OSError as error:
                return repr(error)
            return body.decode().strip() if response.status == 200 else response.status

        def online_on_n1():
            status = n2.group("shop")
            return status if status and status["state"] == "Online" and \
                status["owner"] == "n1" else None
        first = wait_for(online_on_n1, WAIT_TIMEOUT, "group shop Online on n1")
        wait_for(lambda: page() == "shop", WAIT_TIMEOUT, "the site to serve")
        agent_pid, web = n1.proc.pid, self.web_pid(n1)
        self.assertIsNotNone(web)

        # In place (SIGUSR2, an upgrade): the process runs the agent's executable anew; the
        # web service serves on throughout, every request answered.
        failures = []
        stop = threading.Event()

        def probe():
            while not stop.is_set():
                got = page()
                if got != "shop":
                    failures.append(got)
                time.sleep(0.02)
        prober = threading.Thread(target=probe)
        prober.start()
        try:
            n1.proc.send_signal(signal.SIGUSR2)

            def resumed(count):
                def check():
                    events = [e for e in n2.api("GET", "/v1/events?after=0&limit=1000")["events"]
                              if e["node"] == "n1" and e["what"] == "resumed"]
                    return events if len(events) >= count else None
                return check
            events = wait_for(resumed(1), WAIT_TIMEOUT, "n1 to resume its lease")
            self.assertIn("adopting shop", events[0]["why"])
            wait_for(lambda: n1.cluster().get("joined"), WAIT_TIMEOUT, "n1's API again")
            # A lease that had not been renewed would end within a TTL: the group stays on
            # n1 under the same ownership. (While its resources are probed again on adoption
            # the group shows Pending.)
            def still_owned_by_n1():
                status = n2.group("shop")
                return status is not None and status["owner"] == "n1" and \
                    status["token"] == first["token"]
            assert_holds(still_owned_by_n1, self.ttl, "group shop owned by n1 as before")
            wait_for(online_on_n1, WAIT_TIMEOUT, "group shop Online on n1 after the restart")
        finally:
            stop.set()
            prober.join()
        self.assertEqual(failures, [], n1.log()[-3000:])
        self.assertEqual(n1.proc.pid, agent_pid)
        self.assertTrue(n1.running())
        self.assertEqual(self.web_pid(n1), web)
        after = online_on_n1()
        self.assertIsNotNone(after, n2.group("shop"))
        self.assertEqual(after["token"], first["token"])
        journal = [e for e in read_journal(os.path.join(self.dir, "marker")) if e[1] == "shop"]
        self.assertEqual([(e[0], e[2]) for e in journal], [("start", "n1")], journal)

        # Killed and started again within the TTL: the lease still lives, so the group stays;
        # the script still runs and is adopted, the web service (which ends with its agent)
        # is started again and the site brought online again, on the same ownership.
        n1.kill()
        n1.start()
        wait_for(resumed(2), WAIT_TIMEOUT, "n1 to resume its lease again")
        wait_for(lambda: page() == "shop", WAIT_TIMEOUT, "the site to serve again")
        again = wait_for(online_on_n1, WAIT_TIMEOUT, "group shop Online on n1 again")
        self.assertEqual(again["token"], first["token"])
        journal = [e for e in read_journal(os.path.join(self.dir, "marker")) if e[1] == "shop"]
        self.assertEqual([(e[0], e[2]) for e in journal], [("start", "n1")], journal)
        whats = [(e["node"], e["what"]) for e in n2.api("GET", "/v1/events?after=0&limit=1000")
                 ["events"] if e["group"] == "shop" and e["resource"] == ""]
        self.assertEqual([w for w in whats if w[1] in ("acquired", "released", "failed-over")],
                         [("n1", "acquired")], whats)

        # A graceful stop leaves for good: the next start joins with a new lease.
        self.assertEqual(n1.stop(), 0, n1.log()[-3000:])
        self.assertFalse(os.path.exists(os.path.join(n1.state_dir, "lease")))


if __name__ == "__main__":
    unittest.main()
