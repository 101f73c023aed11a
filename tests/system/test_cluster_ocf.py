"""OCF resource agents and mounts in the cluster: real agents, real failovers.

Two setups:

- `OcfErrorClassesTest`: three `clusweb agent`s on loopback and one etcd (cluster_harness),
  and a test agent of our own, `clustest:recorder`, under an OCF root in the test's folder
  (passed with the parameter `ocfRoot`). It records the environment of every call and fails
  as files in its folder tell it to: a `start` that hangs, exit 1 from `monitor`, exit 5 from
  `start` on one node, exit 6 from `start`. The tests check what the cluster does with each
  class of error (docs/configuration.md, "Resources": the exit-code table) and that every call
  sees the OCF 1.1 environment (REFERENCE.md, "OCF Resource Agent API 1.1").
- `OcfNamespacesTest`: three nodes in network namespaces (netns_cluster's pieces), each agent
  in a mount namespace of its own with a private /run, a three-member etcd, a client. Debian's
  `heartbeat:Dummy` (state file in the node's private /run/resource-agents),
  `heartbeat:IPaddr2` (a floating address, watched by AddressMonitor) and
  `heartbeat:Filesystem` and the built-in `mount` with an ext4 image on a loop device: a mount
  on one node is invisible to the others, and the content follows the group.

A node "dies" as a machine does (`power_off`): every process of it is killed and its network
namespace deleted, so its interface and any address on it vanish with it. An OCF agent cannot
fence itself, so killing processes alone would leave IPaddr2's address on a live interface.
"""

import contextlib
import os
import shutil
import subprocess
import tempfile
import unittest

from cluster_harness import LoopbackClusterTest
from harness import (BIN, WAIT_TIMEOUT, assert_holds, dedent, read_text, wait_for,
                     write_file)
from netns_cluster import NODES, AddressMonitor, NetnsEtcd, NodeAgent
from netns_harness import Network, sh

TTL = 2.0
FAST = {"looksAliveInterval": "1s", "isAliveInterval": "2s", "restartDelay": "100ms"}
HEARTBEAT = "/usr/lib/ocf/resource.d/heartbeat"


def duration_ms(text):
    """"1s" -> 1000, "100ms" -> 100: the durations this file writes."""
    return int(text[:-2]) if text.endswith("ms") else int(text[:-1]) * 1000


# The PATH the agent gives OCF agents (resources/ocf_agent.cc).
AGENT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

RECORDER = dedent("""\
    #!/bin/sh
    # clustest:recorder, an OCF 1.1 agent for the system tests. State and orders are files
    # in $OCF_RESKEY_dir; every call but meta-data (which gets no instance parameters, so no
    # dir) records its OCF_*/HA_* environment there.
    dir="$OCF_RESKEY_dir"
    node="$OCF_RESKEY_CRM_meta_on_node"
    action="$1"
    tag="$action${OCF_CHECK_LEVEL:+.$OCF_CHECK_LEVEL}"
    if [ "$action" != meta-data ]; then
      env | grep -E '^(OCF_|HA_)' | sort > "$dir/env.$node.$tag.tmp"
      mv "$dir/env.$node.$tag.tmp" "$dir/env.$node.$tag"
      echo "$tag $node" >> "$dir/journal"
    fi
    running="$dir/running.$node"
    case "$action" in
      meta-data)
        cat <<'XML'
    <?xml version="1.0"?>
    <!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
    <resource-agent name="recorder" version="1.0">
    <version>1.1</version>
    <shortdesc lang="en">records its calls</shortdesc>
    <parameters>
    <parameter name="dir" required="1"><content type="string"/></parameter>
    <parameter name="failOn"><content type="string"/></parameter>
    </parameters>
    <actions>
    <action name="start" timeout="20s"/><action name="stop" timeout="20s"/>
    <action name="monitor" timeout="20s" interval="10s"/>
    <action name="meta-data" timeout="5s"/><action name="validate-all" timeout="5s"/>
    </actions>
    </resource-agent>
    XML
        exit 0 ;;
      validate-all) exit 0 ;;
      start)
        if [ -e "$dir/hang-start.$node" ]; then
          # Hangs once, deaf to SIGTERM, with a child in its process group.
          rm -f "$dir/hang-start.$node"
          trap '' TERM
          sleep 600 &
          echo "$$ $! $(cut -d' ' -f1 /proc/uptime)" > "$dir/hung.tmp"
          mv "$dir/hung.tmp" "$dir/hung"
          wait
          exit 0
        fi
        if [ -e "$dir/misconfigured" ]; then
          echo "ocf-exit-reason:the test says it is misconfigured" >&2
          exit 6
        fi
        if [ "$node" = "$OCF_RESKEY_failOn" ] && [ -e "$dir/not-installed" ]; then
          echo "ocf-exit-reason:not installed on $node" >&2
          exit 5
        fi
        rm -f "$dir/monitor-exit.$node"
        touch "$running"
        exit 0 ;;
      stop)
        rm -f "$running"
        exit 0 ;;
      monitor)
        [ -e "$dir/monitor-exit.$node" ] && exit "$(cat "$dir/monitor-exit.$node")"
        [ -e "$running" ] && exit 0
        exit 7 ;;
    esac
    exit 3
    """)


def uptime():
    with open("/proc/uptime") as f:
        return float(f.read().split()[0])


def group_gone(pgid):
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


# ---------------------------------------------------------------------------------------------
# Loopback agents, the test agent: error classes and the environment


class OcfErrorClassesTest(LoopbackClusterTest):
    ttl = TTL
    prefix = "clusweb-ocf-"

    def setUp(self):
        super().setUp()
        self.ocf_root = os.path.join(self.dir, "ocf")
        write_file(os.path.join(self.ocf_root, "resource.d", "clustest", "recorder"), RECORDER,
                   mode=0o755)
        self.state = os.path.join(self.dir, "recorder")
        os.makedirs(self.state)

    def create(self, via, group, preferred, policy=None, **parameters):
        parameters = {"agent": "clustest:recorder", "ocfRoot": self.ocf_root,
                      "dir": self.state, **parameters}
        spec = {"name": group, "preferredOwners": list(preferred), "resources": [
            {"name": "rec", "type": "ocf", "parameters": parameters,
             "policy": dict(FAST, **(policy or {}))}]}
        via.api("POST", "/v1/groups/" + group, {"spec": spec})

    def touch(self, name, content=""):
        write_file(os.path.join(self.state, name), content)

    def wait_online(self, via, group, on=None, not_on=None, timeout=WAIT_TIMEOUT):
        def online():
            status = via.group(group)
            if not status or status["state"] != "Online" or not status["owner"]:
                return None
            if (on and status["owner"] != on) or (not_on and status["owner"] == not_on):
                return None
            return status
        return wait_for(online, timeout, "group %s Online%s" % (group, " on " + on if on else ""))

    def events(self, via, group):
        return [(e["node"], e["what"], e["why"]) for e in
                via.api("GET", "/v1/events?after=0&limit=1000")["events"]
                if e.get("group") == group]

    def journal(self):
        with open(os.path.join(self.state, "journal")) as f:
            return [tuple(line.split()) for line in f]

    def cli(self, via, *args):
        return subprocess.run([BIN, *args, "--run-dir", via.run_dir], capture_output=True,
                              text=True, timeout=60)

    def logs(self):
        return "\n".join("--- %s ---\n%s" % (a.node, a.log()[-3000:])
                         for a in self.agents.values())

    # -----------------------------------------------------------------------------------------

    def test_a_hung_start_is_killed_at_the_pending_timeout_with_its_process_group(self):
        n1, n2 = self.start_agents("n1", "n2")
        self.touch("hang-start.n1")
        self.create(n1, "hang", ["n1", "n2"], policy={"pendingTimeout": "3s"})
        def hung():
            with open(os.path.join(self.state, "hung")) as f:
                return f.read().split()
        line = wait_for(hung, WAIT_TIMEOUT, "the start to hang")
        shell, child, began = int(line[0]), int(line[1]), float(line[2])
        pgid = os.getpgid(shell)
        # Each call runs in a process group of its own, the child in it too.
        self.assertEqual(pgid, shell)
        self.assertEqual(os.getpgid(child), pgid)
        self.assertNotEqual(pgid, os.getpgid(n1.proc.pid))
        # Deaf to SIGTERM: only SIGKILL, after the timeout, ends it, and all of its group.
        assert_holds(lambda: not group_gone(pgid), 2.5, "the hung start running until the "
                     "timeout")
        wait_for(lambda: group_gone(pgid), WAIT_TIMEOUT, "the hung start's process group to go")
        ended = uptime()
        self.assertGreaterEqual(ended - began, 3.0)
        # The timeout is a soft error: restarted in place (the agent starts at once now).
        status = self.wait_online(n2, "hang", on="n1")
        self.assertEqual(status["resources"][0]["restarts"], 1, status)
        events = self.events(n2, "hang")
        self.assertIn(("n1", "failed", "online did not finish within 3s"), events)
        self.assertIn(("n1", "offline", "restarting in place (1 of 3 within 15m)"), events)
        self.assertNotIn(("start", "n2"), self.journal())

    def test_exit_1_from_monitor_restarts_the_resource_in_place(self):
        n1, n2 = self.start_agents("n1", "n2")
        self.create(n1, "soft", ["n1", "n2"])
        self.wait_online(n2, "soft", on="n1")
        # Kept Online by its monitors (quick and thorough).
        wait_for(lambda: {("monitor.0", "n1"), ("monitor.10", "n1")} <= set(self.journal()),
                 WAIT_TIMEOUT, "both monitors to run")
        self.touch("monitor-exit.n1", "1\n")   # until the next start
        status = wait_for(lambda: (lambda s: s if s["resources"][0]["restarts"] == 1
                                   and s["state"] == "Online" else None)(n2.group("soft")),
                          WAIT_TIMEOUT, "a restart in place")
        self.assertEqual(status["owner"], "n1")
        calls = self.journal()
        self.assertIn(("stop", "n1"), calls)
        self.assertEqual(calls[-1][1], "n1")
        self.assertNotIn(("start", "n2"), calls)
        assert_holds(lambda: n2.group("soft")["owner"] == "n1"
                     and n2.group("soft")["state"] == "Online", 1.5, "the group staying on n1")
        events = self.events(n2, "soft")
        self.assertTrue([e for e in events if e[0] == "n1"
                         and e[2].startswith("restarting in place")], events)
        self.assertNotIn(("n1", "failed-over"), [e[:2] for e in events])

    def test_exit_5_from_start_moves_the_group_at_once_and_bans_the_node(self):
        n1, n2 = self.start_agents("n1", "n2")
        self.touch("not-installed")
        self.create(n1, "hard", ["n1", "n2"], failOn="n1")
        status = self.wait_online(n1, "hard", on="n2")
        self.assertEqual(status["resources"][0]["restarts"], 0, status)
        starts = [c for c in self.journal() if c[0] == "start"]
        self.assertEqual(starts, [("start", "n1"), ("start", "n2")], self.journal())
        events = self.events(n1, "hard")
        self.assertFalse([e for e in events if e[2].startswith("restarting in place")], events)
        # n2 leaves: the only node left is n1, where the group had a hard error: it stays off.
        self.assertEqual(n2.stop(), 0, n2.log()[-3000:])
        reason = wait_for(lambda: (lambda s: s["reason"] if "hard error" in s["reason"]
                                   and not s["owner"] else None)(n1.group("hard")),
                          WAIT_TIMEOUT, "the group held off n1 by its hard error")
        self.assertIn("n1 had a hard error with it (`clusweb group online` clears)", reason)
        assert_holds(lambda: not n1.group("hard")["owner"], 2.0, "the group staying off n1")
        self.assertEqual([c for c in self.journal() if c[0] == "start"], starts)
        # Fixed, and cleared by `group online`: it runs on n1.
        os.unlink(os.path.join(self.state, "not-installed"))
        done = self.cli(n1, "group", "online", "hard")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.wait_online(n1, "hard", on="n1")

    def test_exit_6_from_start_stops_the_group_on_every_node_until_group_online(self):
        n1, n2, n3 = self.start_agents("n1", "n2", "n3")
        self.touch("misconfigured")
        self.create(n1, "fatal", ["n1", "n2", "n3"])

        def stopped_everywhere():
            status = n3.group("fatal")
            return (status if "stopped on every node" in status["reason"] and not
                    status["owner"] and status["state"] in ("Offline", "Failed") else None)
        status = wait_for(stopped_everywhere, WAIT_TIMEOUT, "the group stopped everywhere")
        self.assertIn("misconfigured on n1", status["reason"])
        self.assertIn("`clusweb group online fatal` clears this", status["reason"])
        assert_holds(lambda: stopped_everywhere() is not None, 2.0, "the group staying stopped")
        self.assertEqual([c for c in self.journal() if c[0] == "start"], [("start", "n1")])
        self.assertEqual({a.node: a.group("fatal")["state"] for a in (n1, n2, n3)},
                         {n: status["state"] for n in ("n1", "n2", "n3")})
        os.unlink(os.path.join(self.state, "misconfigured"))
        done = self.cli(n2, "group", "online", "fatal")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.wait_online(n3, "fatal")

    def test_apply_takes_the_agents_timeouts_unless_the_manifest_sets_them(self):
        n1, = self.start_agents("n1")
        manifest = write_file(os.path.join(self.dir, "groups.yaml"), dedent("""\
            kind: Group
            name: adv
            resources:
              - name: rec
                type: ocf
                parameters: {agent: "clustest:recorder", ocfRoot: %s, dir: %s}
                policy: {probeTimeout: 9s}
              - name: elsewhere
                type: ocf
                parameters: {agent: "clustest:absent", ocfRoot: %s}
            """ % (self.ocf_root, self.state, self.ocf_root)))
        done = self.cli(n1, "apply", "-f", manifest)
        self.assertEqual(done.returncode, 0, done.stderr)
        # The agent missing on this machine keeps the built-in values, and the command says so.
        self.assertIn("warning: resource elsewhere: ocf agent %s/resource.d/clustest/absent"
                      % self.ocf_root, done.stderr)
        resources = n1.api("GET", "/v1/groups/adv")["spec"]["resources"]
        rec, elsewhere = resources[0]["policy"], resources[1]["policy"]
        # The recorder advertises start and stop 20 s, validate-all and meta-data 5 s each,
        # monitor 20 s every 10 s; the first Online runs meta-data, validate-all and start.
        self.assertEqual((rec["pendingTimeout"], rec["looksAliveInterval"],
                          rec["isAliveInterval"], rec["probeTimeout"]),
                         ("30s", "10s", "10s", "9s"))
        self.assertEqual((elsewhere["pendingTimeout"], elsewhere["looksAliveInterval"]),
                         ("3m", "1s"))

    def test_every_call_gets_the_ocf_1_1_environment(self):
        n1, n2 = self.start_agents("n1", "n2")
        self.create(n1, "env", ["n1"], policy={"pendingTimeout": "7s", "probeTimeout": "4s"},
                    failOn="nowhere", isAliveDepth="20")
        self.wait_online(n2, "env", on="n1")
        wait_for(lambda: all(os.path.exists(os.path.join(self.state, "env.n1." + tag))
                             for tag in ("monitor.0", "monitor.20")), WAIT_TIMEOUT,
                 "quick and thorough monitors")
        n1.api("POST", "/v1/groups/env/move", {"node": "n2"})
        self.wait_online(n1, "env", on="n2")

        def env(node, tag):
            with open(os.path.join(self.state, "env.%s.%s" % (node, tag))) as f:
                return dict(line.rstrip("\n").split("=", 1) for line in f)

        def expected(action, timeout_ms, level=None, node="n1", interval_ms=0):
            want = {
                "OCF_ROOT": self.ocf_root,
                "OCF_FUNCTIONS_DIR": self.ocf_root + "/lib/heartbeat",
                "OCF_RA_VERSION_MAJOR": "1", "OCF_RA_VERSION_MINOR": "1",
                "OCF_RESOURCE_INSTANCE": "rec", "OCF_RESOURCE_TYPE": "recorder",
                "OCF_RESOURCE_PROVIDER": "clustest",
                "OCF_RESKEY_dir": self.state, "OCF_RESKEY_failOn": "nowhere",
                "OCF_RESKEY_CRM_meta_name": action,
                "OCF_RESKEY_CRM_meta_timeout": str(timeout_ms),
                "OCF_RESKEY_CRM_meta_interval": str(interval_ms),
                "OCF_RESKEY_CRM_meta_on_node": node,
                "HA_RSCTMP": "/run/resource-agents"}
            if level is not None:
                want["OCF_CHECK_LEVEL"] = str(level)
            return want
        problems = []
        # The first Online reads meta-data, runs validate-all, then start, all within one
        # pendingTimeout: each step is told the time left of it (resources/README.md, "The
        # steps of one call share its timeout"), so start gets a little less than 7000 ms.
        left = {}
        for node in ("n1", "n2"):
            for tag in ("validate-all", "start"):
                left[node, tag] = int(env(node, tag)["OCF_RESKEY_CRM_meta_timeout"])
                self.assertLessEqual(left[node, tag], 7000, (node, tag))
                self.assertGreater(left[node, tag], 6000, (node, tag))
            self.assertLessEqual(left[node, "start"], left[node, "validate-all"])
        # The polls are recurring monitors: their interval (the policy's looksAliveInterval and
        # isAliveInterval, in ms) tells them from a one-off probe (interval 0).
        looks, thorough = (duration_ms(FAST[k]) for k in ("looksAliveInterval",
                                                            "isAliveInterval"))
        for node, tag, action, timeout, level, interval in (
                ("n1", "validate-all", "validate-all", left["n1", "validate-all"], None, 0),
                ("n1", "start", "start", left["n1", "start"], None, 0),
                ("n1", "monitor.0", "monitor", 4000, 0, looks),
                ("n1", "monitor.20", "monitor", 4000, 20, thorough),
                ("n1", "stop", "stop", 7000, None, 0),
                ("n2", "start", "start", left["n2", "start"], None, 0)):
            got, want = env(node, tag), expected(action, timeout, level, node, interval)
            if got != want:
                problems.append("%s %s: %s" % (node, tag, {
                    k: (got.get(k), want.get(k)) for k in set(got) | set(want)
                    if got.get(k) != want.get(k)}))
        self.assertEqual(problems, [])
        # ocfRoot, agent and isAliveDepth are the resource's own, not the agent's parameters.
        self.assertFalse({"OCF_RESKEY_ocfRoot", "OCF_RESKEY_agent",
                          "OCF_RESKEY_isAliveDepth"} & set(env("n1", "start")))


# ---------------------------------------------------------------------------------------------
# Namespaces: Dummy, IPaddr2, Filesystem and mount on real nodes


class _NetView:
    """What AddressMonitor reads: a node whose namespace is gone (powered off) holds nothing."""

    def __init__(self, net):
        self.net = net

    def has_address(self, name, address):
        if not os.path.exists("/run/netns/" + self.net.ns(name)):
            return False
        return self.net.has_address(name, address)


class OcfNamespacesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="clusweb-ocfns-")
        os.chmod(cls.dir, 0o755)
        cls.addClassCleanup(cls._cleanup_class)
        cls.loops = []
        cls.net = cls.etcd = None
        cls.agents = {}
        cls.mount_point = os.path.join(cls.dir, "disk")
        os.makedirs(cls.mount_point)
        os.chmod(cls.mount_point, 0o755)
        # A shared disk: one ext4 image on a loop device.
        image = os.path.join(cls.dir, "disk.img")
        with open(image, "wb") as f:
            f.truncate(16 << 20)
        sh("mkfs.ext4", "-q", "-F", image)
        cls.loops.append(sh("losetup", "--find", "--show", image).stdout.strip())
        cls.device = cls.loops[0]
        cls.ocf_root = cls._filesystem_root()
        cls.net = Network(NODES, subnet=79, extra_hosts=NetnsEtcd.MEMBERS)
        cls.vip, cls.disk_vip = cls.net.address(50), cls.net.address(51)
        cls.etcd = NetnsEtcd(cls.net).start()
        for node in NODES:
            cls.agents[node] = NodeAgent(cls.net, node, cls.etcd, cls.dir, cls.vip, TTL)
            cls.agents[node].start()

    @classmethod
    def _filesystem_root(cls):
        """The OCF root for heartbeat:Filesystem. Its validate-all insists on `modprobe`
        (check_binary), which this machine lacks (no kmod): then the agent runs unchanged from
        an OCF root of the test's, through a wrapper that adds a folder with a `modprobe` stub
        to PATH (ext4 is built in; the stub is never needed to mount)."""
        if shutil.which("modprobe", path=AGENT_PATH):
            return "/usr/lib/ocf"
        root = os.path.join(cls.dir, "ocf")
        stub = os.path.join(cls.dir, "bin")
        write_file(os.path.join(stub, "modprobe"), "#!/bin/sh\nexit 0\n", mode=0o755)
        os.makedirs(os.path.join(root, "resource.d", "heartbeat"))
        os.symlink("/usr/lib/ocf/lib", os.path.join(root, "lib"))
        write_file(os.path.join(root, "resource.d", "heartbeat", "Filesystem"),
                   "#!/bin/sh\nPATH=\"$PATH:%s\" exec %s/Filesystem \"$@\"\n"
                   % (stub, HEARTBEAT), mode=0o755)
        return root

    @classmethod
    def _cleanup_class(cls):
        for agent in cls.agents.values():
            with contextlib.suppress(Exception):
                agent.kill_node()
        if cls.etcd:
            cls.etcd.cleanup()
        if cls.net:
            cls.net.cleanup()
        for loop in cls.loops:
            sh("losetup", "-d", loop, check=False)
        if not os.environ.get("CLUSWEB_KEEP"):
            shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        self.groups = []
        self.monitors = []

    def tearDown(self):
        for monitor in self.monitors:
            monitor.stop()
        # Powered-off nodes come back; the test's groups are deleted (offline everywhere).
        for node in NODES:
            if not self.agents[node].running():
                self.power_on(node)
        via = self.agents["n1"]
        for group in self.groups:
            with contextlib.suppress(Exception):
                via.api("POST", "/v1/groups/%s/delete" % group)
        wait_for(lambda: not any(g["name"] in self.groups for g in via.cluster()["groups"]),
                 WAIT_TIMEOUT, "the test's groups to be deleted")
        wait_for(lambda: not any(self.mounted(n) for n in NODES), WAIT_TIMEOUT,
                 "the disk to be unmounted everywhere")

    # -----------------------------------------------------------------------------------------

    def create(self, name, resources, preferred=("n1", "n2", "n3")):
        self.groups.append(name)
        self.agents["n1"].api("POST", "/v1/groups/" + name, {"spec": {
            "name": name, "preferredOwners": list(preferred), "resources": resources}})

    def ocf(self, name, agent, policy=None, depends=(), **parameters):
        return {"name": name, "type": "ocf", "dependsOn": [[d] for d in depends],
                "parameters": dict(agent=agent, **parameters),
                "policy": dict(FAST, **(policy or {}))}

    def status(self, group, via=None):
        agent = via or next(a for a in self.agents.values() if a.running())
        return agent.group(group)

    def wait_online(self, group, on=None, not_on=None, timeout=WAIT_TIMEOUT):
        def online():
            status = self.status(group)
            if not status or status["state"] != "Online" or not status["owner"]:
                return None
            if (on and status["owner"] != on) or (not_on and status["owner"] == not_on):
                return None
            return status
        try:
            return wait_for(online, timeout, "group %s Online%s"
                            % (group, " on " + on if on else ""))
        except AssertionError as error:
            raise AssertionError("%s\nstatus: %s\n%s" % (error, self.status(group),
                                                         self.logs())) from None

    def in_node(self, node, path):
        """`path` as node's agent sees it (its mount namespace, its private /run)."""
        return "/proc/%d/root%s" % (self.agents[node].proc.pid, path)

    def mounted(self, node):
        """The source of what node has mounted at the mount point, or None."""
        agent = self.agents[node]
        if not agent.running():
            return None
        with open("/proc/%d/mountinfo" % agent.proc.pid) as f:
            for line in f:
                fields = line.split()
                if fields[4] == self.mount_point:
                    return fields[fields.index("-") + 2]
        return None

    def mounts(self):
        return {node: self.mounted(node) for node in NODES}

    def ask(self, url):
        result = self.net.run("client", ["curl", "-sf", "-m", "1", url], check=False)
        return result.stdout.strip() if result.returncode == 0 else None

    def address_monitor(self, vip):
        monitor = AddressMonitor(_NetView(self.net), vip)
        monitor.start()
        self.monitors.append(monitor)
        return monitor

    def power_off(self, node):
        """The machine dies: every process killed, its network namespace (interface and
        addresses) gone with the last of them, its mount namespace too."""
        self.agents[node].kill_node()
        sh("ip", "netns", "del", self.net.ns(node))

    def power_on(self, node):
        """The machine comes back: its namespace and cable as netns_harness builds them, and
        its agent, which joins once its old lease has ended."""
        net, ns = self.net, self.net.ns(node)
        if not os.path.exists("/run/netns/" + ns):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            port = net.ports[node]
            sh("ip", "-n", net.ns("switch"), "link", "add", port, "type", "veth", "peer",
               "name", "eth0", "netns", ns)
            sh("ip", "-n", net.ns("switch"), "link", "set", port, "master", "br0", "up")
            sh("ip", "-n", ns, "addr", "add", net.ip_of(node) + "/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
        self.agents[node].start()
        wait_for(lambda: {n["name"] for n in self.agents["n1" if node != "n1" else "n2"]
                          .cluster()["nodes"] if n["up"]} == set(NODES), WAIT_TIMEOUT,
                 "%s to rejoin" % node)

    def logs(self):
        return "\n".join("--- %s ---\n%s" % (a.node, a.log()[-3000:])
                         for a in self.agents.values())

    # -----------------------------------------------------------------------------------------

    def test_dummy_starts_is_monitored_moves_and_fails_over(self):
        self.create("dummy", [self.ocf("beat", "heartbeat:Dummy")])
        state = "/run/resource-agents/Dummy-beat.state"

        def holders():
            return [n for n in NODES if self.agents[n].running()
                    and os.path.exists(self.in_node(n, state))]
        self.wait_online("dummy", on="n1")
        self.assertEqual(holders(), ["n1"])
        # Monitored every second (and thoroughly every two): it stays Online, no restart.
        assert_holds(lambda: self.status("dummy")["state"] == "Online", 3.0, "Dummy Online")
        self.assertEqual(self.status("dummy")["resources"][0]["restarts"], 0)

        self.agents["n2"].api("POST", "/v1/groups/dummy/move", {"node": "n2"})
        self.wait_online("dummy", on="n2")
        self.assertEqual(holders(), ["n2"])

        self.power_off("n2")
        status = self.wait_online("dummy", not_on="n2", timeout=WAIT_TIMEOUT + 2 * TTL)
        self.assertEqual(status["owner"], "n1")   # the first preferred owner left
        self.assertEqual(holders(), ["n1"])

    def test_ipaddr2_moves_with_its_owner_and_is_never_on_two_nodes(self):
        monitor = self.address_monitor(self.vip)
        self.create("addr", [self.ocf("vip", "heartbeat:IPaddr2", ip=self.vip,
                                      cidr_netmask="24", nic="eth0")])
        self.wait_online("addr", on="n1")
        wait_for(lambda: monitor.holders and monitor.holders[-1][1] == ["n1"], WAIT_TIMEOUT,
                 "the address on n1")
        # The client reaches it: every node's web service serves the (unclustered) site
        # "shop" on VIP:8080 and answers with the node's name.
        self.assertEqual(wait_for(lambda: self.ask("http://%s:8080/" % self.vip), WAIT_TIMEOUT,
                                  "an answer on the address"), "n1")

        self.power_off("n1")
        status = self.wait_online("addr", not_on="n1", timeout=WAIT_TIMEOUT + 2 * TTL)
        who = status["owner"]
        wait_for(lambda: monitor.holders[-1][1] == [who], WAIT_TIMEOUT,
                 "the address on " + who)
        self.assertEqual(wait_for(lambda: self.ask("http://%s:8080/" % self.vip), WAIT_TIMEOUT,
                                  "an answer from " + who), who)
        self.assertEqual(monitor.doubles, [])
        self.assertEqual([h for _, h in monitor.holders if h], [["n1"], [who]],
                         monitor.holders)

    def test_filesystem_moves_the_disk_and_its_content(self):
        self.create("fs", [self.ocf("data", "heartbeat:Filesystem", device=self.device,
                                    directory=self.mount_point, fstype="ext4",
                                    ocfRoot=self.ocf_root)])
        self.wait_online("fs", on="n1")
        self.assertEqual(self.mounts(), {"n1": self.device, "n2": None, "n3": None})
        # Written on n1, invisible from the others (their mount point is the empty folder).
        write_file(self.in_node("n1", self.mount_point + "/note.txt"), "written on n1\n")
        self.assertFalse(os.path.exists(self.in_node("n2", self.mount_point + "/note.txt")))
        self.assertFalse(os.path.exists(os.path.join(self.mount_point, "note.txt")))

        self.agents["n3"].api("POST", "/v1/groups/fs/move", {"node": "n3"})
        self.wait_online("fs", on="n3")
        self.assertEqual(self.mounts(), {"n1": None, "n2": None, "n3": self.device})
        with open(self.in_node("n3", self.mount_point + "/note.txt")) as f:
            self.assertEqual(f.read(), "written on n1\n")

    def test_a_mount_group_fails_over_with_its_content(self):
        # The address, the disk, and a Dummy that keeps its state file on the disk.
        self.create("disk", [
            {"name": "vip", "type": "ip",
             "parameters": {"address": self.disk_vip + "/24", "interface": "eth0"}},
            {"name": "fs", "type": "mount", "policy": FAST,
             "parameters": {"device": self.device, "directory": self.mount_point,
                            "fstype": "ext4", "writeCheck": "true"}},
            self.ocf("app", "heartbeat:Dummy", depends=("vip", "fs"),
                     state=self.mount_point + "/app.state")])
        self.wait_online("disk", on="n1")
        self.assertEqual(self.mounts(), {"n1": self.device, "n2": None, "n3": None})
        self.assertTrue(os.path.exists(self.in_node("n1", self.mount_point + "/app.state")))
        self.assertFalse(os.path.exists(os.path.join(self.mount_point, "app.state")))
        self.assertTrue(self.net.has_address("n1", self.disk_vip))
        write_file(self.in_node("n1", self.mount_point + "/page.txt"), "from the disk\n")

        self.power_off("n1")
        status = self.wait_online("disk", not_on="n1", timeout=WAIT_TIMEOUT + 2 * TTL)
        who = status["owner"]
        self.assertEqual({n: m for n, m in self.mounts().items() if n != "n1"},
                         {n: (self.device if n == who else None) for n in NODES if n != "n1"})
        self.assertTrue(self.net.has_address(who, self.disk_vip))
        with open(self.in_node(who, self.mount_point + "/page.txt")) as f:
            self.assertEqual(f.read(), "from the disk\n")
        # Dummy's state is on the disk: the new owner's start wrote it there, under its mount.
        self.assertTrue(os.path.exists(self.in_node(who, self.mount_point + "/app.state")))
        # The thorough check writes its status file on the disk, from the new owner.
        wait_for(lambda: who in read_text(self.in_node(who, self.mount_point
                                                        + "/.clusweb-status")),
                 WAIT_TIMEOUT, "the status file written by " + who)

    def apply_shared(self, text):
        manifest = write_file(os.path.join(self.dir, "shared.yaml"), dedent(text))
        done = subprocess.run([BIN, "apply", "-f", manifest, "--run-dir",
                               self.agents["n1"].run_dir], capture_output=True, text=True,
                              check=False)
        self.assertEqual(done.returncode, 0, done.stderr)

    def test_a_website_on_a_mount_fails_over_with_its_content(self):
        # The site's content is the disk: every node knows the site, only the owner of the
        # group has the disk mounted and the site started (it opens its folder at the start,
        # so it serves the disk, not the empty folder underneath).
        self.apply_shared("""\
            kind: Site
            name: disk
            physicalPath: %s
            bindings: [http://%s:8081]
            """ % (self.mount_point, self.disk_vip))

        def delete_site():
            subprocess.run([BIN, "config", "delete", "site/disk", "--run-dir",
                            self.agents["n1"].run_dir], capture_output=True, check=False)
        self.addCleanup(delete_site)
        self.create("web", [
            {"name": "vip", "type": "ip",
             "parameters": {"address": self.disk_vip + "/24", "interface": "eth0"}},
            {"name": "fs", "type": "mount", "policy": FAST,
             "parameters": {"device": self.device, "directory": self.mount_point,
                            "fstype": "ext4", "killGrace": "1s"}},
            {"name": "site", "type": "website", "dependsOn": [["vip"], ["fs"]],
             "parameters": {"site": "disk"}}])
        self.wait_online("web", on="n1")
        write_file(self.in_node("n1", self.mount_point + "/page.txt"), "from the disk\n")
        url = "http://%s:8081/page.txt" % self.disk_vip
        self.assertEqual(wait_for(lambda: self.ask(url), WAIT_TIMEOUT, "the page"),
                         "from the disk")

        # A graceful move: the site stops (and lets go of its folder) before the disk is
        # unmounted, so no process of the web service is taken for a holder of the disk.
        self.agents["n1"].api("POST", "/v1/groups/web/move", {"node": "n2"})
        self.wait_online("web", on="n2")
        self.assertEqual(self.mounts(), {"n1": None, "n2": self.device, "n3": None})
        self.assertEqual(wait_for(lambda: self.ask(url), WAIT_TIMEOUT, "the page from n2"),
                         "from the disk")
        self.assertNotIn("killing mount holder", self.agents["n1"].log())

        # The owner dies: the next node mounts the disk and serves its content.
        self.power_off("n2")
        who = self.wait_online("web", not_on="n2", timeout=WAIT_TIMEOUT + 2 * TTL)["owner"]
        self.assertEqual(self.mounted(who), self.device)
        self.assertEqual(wait_for(lambda: self.ask(url), WAIT_TIMEOUT, "the page from " + who),
                         "from the disk")


if __name__ == "__main__":
    unittest.main()
