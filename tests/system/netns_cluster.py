"""Three cluster nodes, each a network namespace, for the system tests and the benchmarks.

Every node runs `clusweb agent` with its own `clusweb web` inside its network namespace and a
mount namespace with a private /run; etcd runs as three members, each in a namespace of its
own; a client namespace sends the requests. `NetnsCluster` builds all of it and creates the
group "shop": an `ip` resource (10.<subnet>.0.50/24 on eth0) and a `website` resource
depending on it. Each node's copy of the site says which node it is (`/` answers the node's
name), and its `/app/` application runs on the pool shop-pool, one echo worker whose default
answer names its pid.

`AddressMonitor` samples every node's eth0 continuously and records any moment at which two
nodes held the floating address.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from cluster_harness import Agent, etcd_member_argv
from harness import ECHO_WORKER, WAIT_TIMEOUT, dedent, wait_for, write_file
from netns_harness import Network

TTL = 2.0
NODES = ["n1", "n2", "n3"]


class NetnsEtcd:
    """A three-member etcd, each member in a namespace of its own (e1, e2, e3) on the switch,
    at etcd's usual ports (every namespace has its own)."""

    MEMBERS = ["e1", "e2", "e3"]

    def __init__(self, net):
        self.net = net
        base = "/dev/shm" if os.path.isdir("/dev/shm") else None
        self.dir = tempfile.mkdtemp(prefix="clusweb-etcd-", dir=base)
        self.procs = {}

    def url(self, member, port):
        return "http://%s:%d" % (self.net.ip_of(member), port)

    def start(self):
        initial = ",".join("%s=%s" % (m, self.url(m, 2380)) for m in self.MEMBERS)
        for member in self.MEMBERS:
            argv = etcd_member_argv(member, os.path.join(self.dir, member),
                                    self.url(member, 2379), self.url(member, 2380), initial)
            with open(os.path.join(self.dir, member + ".log"), "ab") as log:
                self.procs[member] = self.net.popen(
                    member, argv, stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(self.settled, WAIT_TIMEOUT, "every etcd member to follow one leader")
        return self

    @property
    def endpoint(self):
        return ",".join("%s:2379" % self.net.ip_of(m) for m in self.MEMBERS)

    def statuses(self):
        """{member: (its id, the leader it follows)} of the members that answer."""
        found = {}
        for member in self.MEMBERS:
            if self.procs[member].poll() is not None:
                continue
            result = self.net.run(member, ["etcdctl", "--endpoints", self.url(member, 2379),
                                           "--command-timeout=1s", "endpoint", "status", "-w",
                                           "json"], check=False)
            if result.returncode == 0:
                status = json.loads(result.stdout)[0]["Status"]
                found[member] = (status["header"]["member_id"], status["leader"])
        return found

    def leader(self):
        """The member that leads, or None."""
        for member, (own, leader) in self.statuses().items():
            if own == leader:
                return member
        return None

    def settled(self):
        """Every running member answers and follows the same, running leader."""
        statuses = self.statuses()
        running = [m for m in self.MEMBERS if self.procs[m].poll() is None]
        leaders = {leader for _, leader in statuses.values()}
        return (len(statuses) == len(running) and len(leaders) == 1 and 0 not in leaders
                and self.leader() is not None)

    def kill(self, member):
        self.procs[member].kill()
        self.procs[member].wait()

    def cleanup(self):
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class NodeAgent(Agent):
    """An agent (and its web service) inside a node's network namespace, and in a mount
    namespace of its own with a private /run: the agent and its web service use the default
    /run/clusweb, which is this node's run folder bound there, as on a real machine."""

    PRIVATE_RUN = ("mount -t tmpfs -o mode=0755 tmpfs /run && mkdir -p /run/clusweb && "
                   "mount --bind \"$0\" /run/clusweb && exec \"$@\"")

    def __init__(self, net, node, etcd, folder, vip, ttl, max_crashes=1):
        super().__init__(node, etcd, folder, ttl="%gs" % ttl)
        self.net = net
        site = os.path.join(self.dir, "site")
        os.makedirs(site, exist_ok=True)
        write_file(os.path.join(site, "index.html"), node + "\n")
        worker = os.path.join(self.dir, "echo_worker.py")
        shutil.copyfile(ECHO_WORKER, worker)
        os.chmod(worker, 0o755)
        for path in (folder, self.dir, site):
            os.chmod(path, 0o755)
        self.web_config = write_file(os.path.join(self.dir, "web.yaml"), dedent("""\
            kind: Site
            name: shop
            physicalPath: %s
            bindings:
              - http://%s:8080
            applications:
              - path: /app
                pool: shop-pool
            ---
            kind: ApplicationPool
            name: shop-pool
            command: [%s]
            autoStart: false
            rapidFailProtection: {maxCrashes: %d, interval: 5m}
            """ % (site, vip, worker, max_crashes)))
        self.extra_args = ["--web-config", self.web_config]

    def command(self):
        argv = super().command()
        at = argv.index("--run-dir")
        del argv[at:at + 2]  # the default /run/clusweb, bound to self.run_dir
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                self.PRIVATE_RUN, self.run_dir, *argv]

    def spawn(self, argv, **kwargs):
        return self.net.popen(self.node, argv, **kwargs)

    def kill_node(self):
        """SIGKILL every process of the node (agent, web service, front end, workers)."""
        pids = subprocess.run(["ip", "netns", "pids", self.net.ns(self.node)],
                              capture_output=True, text=True, check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
        if self.proc:
            self.proc.wait()


class AddressMonitor(threading.Thread):
    def __init__(self, net, vip):
        super().__init__(daemon=True)
        self.net, self.vip = net, vip
        self.doubles = []
        self.holders = []
        self.stopping = False

    def run(self):
        # Nodes are read one after the other, so one pass alone could show an address on the
        # old owner (read first) and on the new one (read later) after a clean handover. A
        # sample therefore reads every node forward and then backward: a node seen in both
        # reads held the address over the whole sample, so two such nodes truly overlapped.
        while not self.stopping:
            try:
                forward = {n: self.net.has_address(n, self.vip) for n in NODES}
                backward = {n: self.net.has_address(n, self.vip) for n in reversed(NODES)}
            except Exception:  # noqa: BLE001 - a namespace being deleted at the end
                time.sleep(0.02)
                continue
            both = [n for n in NODES if forward[n] and backward[n]]
            if len(both) > 1:
                self.doubles.append((time.monotonic(), both))
            holders = [n for n in NODES if backward[n]]
            if not self.holders or self.holders[-1][1] != holders:
                self.holders.append((time.monotonic(), holders))
            time.sleep(0.01)

    def stop(self):
        self.stopping = True
        self.join(5)


def site_group(vip, site_policy=None):
    """The group of every test: the floating address, then the site with its pool."""
    site = {"name": "site", "type": "website", "dependsOn": [["vip"]],
            "parameters": {"site": "shop", "pool": "shop-pool"}}
    if site_policy:
        site["policy"] = site_policy
    return {"name": "shop", "preferredOwners": list(NODES), "resources": [
        {"name": "vip", "type": "ip", "parameters": {"address": vip + "/24", "interface": "eth0"}},
        site]}


class NetnsCluster:
    """The namespaces, etcd, three agents and the group "shop" online on n1."""

    def __init__(self, ttl=TTL, subnet=77, site_policy=None, max_crashes=1):
        """`max_crashes`: the pool's rapid-fail protection (more crashes within 5 minutes
        stop it)."""
        self.ttl, self.subnet, self.site_policy = ttl, subnet, site_policy
        self.max_crashes = max_crashes
        self.dir = tempfile.mkdtemp(prefix="clusweb-netns-")
        os.chmod(self.dir, 0o755)
        self.net = self.etcd = self.monitor = None
        self.agents = {}

    def start(self):
        self.net = Network(NODES, subnet=self.subnet, extra_hosts=NetnsEtcd.MEMBERS)
        self.vip = self.net.address(50)
        self.etcd = NetnsEtcd(self.net).start()
        for node in NODES:
            self.agents[node] = NodeAgent(self.net, node, self.etcd, self.dir, self.vip,
                                          self.ttl, self.max_crashes)
            self.agents[node].start()
        self.agents["n1"].api("POST", "/v1/groups/shop",
                              {"spec": site_group(self.vip, self.site_policy)})
        self.monitor = AddressMonitor(self.net, self.vip)
        self.monitor.start()
        self.wait_answer("n1")
        wait_for(lambda: self.monitor.holders and self.monitor.holders[-1][1] == ["n1"],
                 WAIT_TIMEOUT, "the monitor to see the address on n1")
        return self

    def cleanup(self, keep_files=False):
        if self.monitor:
            self.monitor.stop()
        for agent in self.agents.values():
            agent.kill_node()
        if self.etcd:
            self.etcd.cleanup()
        if self.net:
            self.net.cleanup()
        if not keep_files:
            shutil.rmtree(self.dir, ignore_errors=True)

    def ask(self, path="/", timeout=0.5):
        """The body of http://VIP:8080<path> as the client gets it within `timeout`, or None
        (an error status, such as a 503 from a node whose permit lapsed, is not an answer)."""
        result = self.net.run("client", ["curl", "-sf", "-m", str(timeout),
                                         "http://%s:8080%s" % (self.vip, path)], check=False)
        return (result.stdout.strip() or None) if result.returncode == 0 else None

    def wait_answer(self, node=None, not_node=None, timeout=WAIT_TIMEOUT):
        """Waits for `/` to be answered by `node` (or by any node but `not_node`); its name."""
        def answered():
            who = self.ask()
            if who is None or (node and who != node) or (not_node and who == not_node):
                return None
            return who
        return wait_for(answered, timeout, "an answer from %s" % (node or "another node"))

    def owner(self, via=None):
        agent = via or next(a for a in self.agents.values() if a.proc.poll() is None)
        return agent.group("shop")["owner"]

    def worker_pid(self):
        """The pid of the pool worker that answers /app/ now, or None."""
        answer = self.ask("/app/")
        if not answer or not answer.startswith("pid="):
            return None
        return int(answer.split()[0][len("pid="):])
