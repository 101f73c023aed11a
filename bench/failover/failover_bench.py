#!/usr/bin/env python3
"""Failover of a web site behind a floating address: clusweb against keepalived with nginx.

Both systems run on the same testbed (tests/system/netns_harness.py): three nodes n1..n3, each
a network namespace plugged into one bridge, and a client namespace. Every node serves a page
that names the node, so the client knows who answered.

- clusweb: `clusweb agent` + `clusweb web` on every node (each in a mount namespace with a
  private /run), etcd as three members in namespaces of their own at heartbeat 50 ms /
  election 500 ms, TTL 2 s; the group is an `ip` resource and a `website` resource with a
  pool (tests/system/netns_cluster.py).
- keepalived: keepalived (VRRP only) + nginx on every node, priorities 150/100/50, n1 master;
  "keepalived" at its defaults (VRRPv2, advert_int 1), "keepalived-fast" tuned (VRRPv3,
  advert_int 0.1).

Measured per system:
- failover: SIGKILL of every process of the owning node, then the time until the client's
  first 2xx answer from another node (the client asks every 20 ms, each time on a new
  connection); TRIALS trials, the killed node restarted and settled between trials;
- partition, twice: the owner's link is cut (the node sees its carrier drop), then the owner
  is isolated by the switch (its link stays up), each for CUT_SECONDS, then healed; probes
  inside every node namespace show whether two nodes served the address at the same time,
  and the client's probes how long the address was unreachable in the HEAL_WINDOW seconds
  after the heal;
- clusweb only: a graceful `group move`, and an in-place restart of a killed pool worker.

Every time comes from CLOCK_MONOTONIC, which all namespaces share. Traffic stays inside the
namespaces the benchmark creates. Run as root through bench/failover_vs_keepalived.sh.
"""

import collections
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
os.environ.setdefault("CLUSWEB_BIN", os.path.join(REPO, "build", "release", "app", "clusweb",
                                                  "clusweb"))
sys.path.insert(0, os.path.join(REPO, "tests", "system"))
sys.path.insert(0, os.path.join(REPO, "bench"))

from harness import dedent, wait_for, write_file  # noqa: E402
from netns_cluster import NODES, TTL, NetnsCluster  # noqa: E402
from netns_harness import Network  # noqa: E402
from nginx_peer import write_nginx_conf  # noqa: E402

PROBE = os.path.join(HERE, "probe.py")
TRIALS = int(os.environ.get("TRIALS", "5"))
CUT_SECONDS = float(os.environ.get("CUT_SECONDS", "8"))
HEAL_WINDOW = float(os.environ.get("HEAL_WINDOW", "10"))
ANSWER_TIMEOUT = 30.0  # longest wait for a takeover before the trial counts as failed
PORT = 8080

Sample = collections.namedtuple("Sample", "start end status body")


def say(text):
    print(text, flush=True)


def ok(sample):
    return 200 <= sample.status < 300


class Probe:
    """probe.py running in one namespace; its samples as they come."""

    def __init__(self, net, namespace, address, path="/", interval_ms=20):
        self.namespace = namespace
        self.proc = net.popen(namespace, [sys.executable, PROBE, address, str(PORT), path,
                                          str(interval_ms)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                              start_new_session=True)
        self.samples = []
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            start, end, status, body = line.split()
            with self.lock:
                self.samples.append(Sample(float(start), float(end), int(status), body))

    def since(self, moment):
        with self.lock:
            return [s for s in self.samples if s.start >= moment]

    def first(self, moment, condition):
        return next((s for s in self.since(moment) if condition(s)), None)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.reader.join(5)


def serving_runs(samples, node):
    """[start, end] of each run of consecutive answers a node's own probe got from itself."""
    runs, current = [], None
    for sample in samples:
        if ok(sample) and sample.body == node:
            if current is None:
                current = [sample.start, sample.end]
            current[1] = sample.end
        elif current is not None:
            runs.append(current)
            current = None
    if current is not None:
        runs.append(current)
    return runs


def overlap_seconds(runs_by_node):
    """How long two nodes served the address at the same time, summed over pairs of nodes."""
    total = 0.0
    nodes = list(runs_by_node)
    for i, a in enumerate(nodes):
        for b in nodes[i + 1:]:
            for a0, a1 in runs_by_node[a]:
                for b0, b1 in runs_by_node[b]:
                    total += max(0.0, min(a1, b1) - max(a0, b0))
    return total


def unreachable(samples, since, until):
    """(longest, total) seconds without an answer among the client's samples started in
    [since, until): a run of failed samples lasts from its first start to the next answer."""
    longest = total = 0.0
    failing_since = None
    for sample in samples:
        if sample.start < since or sample.start >= until:
            continue
        if not ok(sample):
            if failing_since is None:
                failing_since = sample.start
        elif failing_since is not None:
            longest = max(longest, sample.start - failing_since)
            total += sample.start - failing_since
            failing_since = None
    if failing_since is not None:
        longest = max(longest, until - failing_since)
        total += until - failing_since
    return longest, total


class System:
    """What both testbeds offer the trials."""

    name = ""
    net = None
    vip = ""

    def owner(self):
        raise NotImplementedError

    def kill_node(self, node):
        raise NotImplementedError

    def restart_node(self, node):
        raise NotImplementedError

    def cleanup(self):
        raise NotImplementedError


class Clusweb(System):
    name = "clusweb"

    def __init__(self):
        self.cluster = NetnsCluster(ttl=TTL, subnet=77, max_crashes=1000)

    def start(self):
        self.cluster.start()
        self.net, self.vip = self.cluster.net, self.cluster.vip
        return self

    def owner(self):
        return self.cluster.owner()

    def kill_node(self, node):
        self.cluster.agents[node].kill_node()

    def restart_node(self, node):
        agent = self.cluster.agents[node]
        agent.start()
        wait_for(lambda: {n["name"] for n in agent.cluster()["nodes"] if n["up"]} == set(NODES),
                 ANSWER_TIMEOUT, "%s to rejoin" % node)

    def settle(self, owner):
        wait_for(lambda: self.cluster.agents[owner].group("shop")["state"] == "Online",
                 ANSWER_TIMEOUT, "the group Online on %s" % owner)

    def cleanup(self):
        self.cluster.cleanup()


class Keepalived(System):
    """keepalived (VRRP) and nginx on every node; n1 has the highest priority."""

    PRIORITY = {"n1": 150, "n2": 100, "n3": 50}

    def __init__(self, fast):
        self.fast = fast
        self.name = "keepalived-fast" if fast else "keepalived"
        self.dir = None
        self.procs = {}

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="clusweb-keepalived-")
        os.chmod(self.dir, 0o755)
        self.net = Network(NODES, subnet=78)
        self.vip = self.net.address(50)
        for node in NODES:
            folder = os.path.join(self.dir, node)
            os.makedirs(os.path.join(folder, "site"))
            os.makedirs(os.path.join(folder, "temp"))
            for path in (folder, os.path.join(folder, "site")):
                os.chmod(path, 0o755)
            write_file(os.path.join(folder, "site", "index.html"), node + "\n")
            write_nginx_conf(os.path.join(folder, "nginx.conf"), folder, """\
                server {
                    listen %d;
                    location / { root %s/site; }
                }
                """ % (PORT, folder))
            write_file(os.path.join(folder, "keepalived.conf"), dedent("""\
                global_defs {{
                    router_id {node}
                    {version}
                }}
                vrrp_instance shop {{
                    state {state}
                    interface eth0
                    virtual_router_id 50
                    priority {priority}
                    advert_int {advert}
                    virtual_ipaddress {{
                        {vip}/24 dev eth0
                    }}
                }}
                """).format(node=node, version="vrrp_version 3" if self.fast else "",
                            state="MASTER" if node == "n1" else "BACKUP",
                            priority=self.PRIORITY[node], advert="0.1" if self.fast else "1",
                            vip=self.vip))
            self.restart_node(node, wait=False)
        wait_for(lambda: self.answer() == "n1", ANSWER_TIMEOUT, "n1 to serve the address")
        return self

    def answer(self):
        result = self.net.run("client", ["curl", "-sf", "-m", "0.5",
                                         "http://%s:%d/" % (self.vip, PORT)], check=False)
        return result.stdout.strip() if result.returncode == 0 else None

    def owner(self):
        holders = [n for n in NODES if self.net.has_address(n, self.vip)]
        return holders[0] if len(holders) == 1 else None

    def kill_node(self, node):
        pids = subprocess.run(["ip", "netns", "pids", self.net.ns(node)], capture_output=True,
                              text=True, check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
        for proc in self.procs.pop(node, []):
            proc.wait()

    def restart_node(self, node, wait=True):
        folder = os.path.join(self.dir, node)
        # Pid files left by killed daemons: keepalived refuses to start when one names a
        # running process (the pid may have been reused).
        for name in ("keepalived.pid", "vrrp.pid", "nginx.pid"):
            try:
                os.unlink(os.path.join(folder, name))
            except FileNotFoundError:
                pass
        with open(os.path.join(folder, "nginx.log"), "ab") as log:
            nginx = self.net.popen(node, ["/usr/sbin/nginx", "-c",
                                          os.path.join(folder, "nginx.conf"), "-g",
                                          "daemon off;"],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        with open(os.path.join(folder, "keepalived.log"), "ab") as log:
            keepalived = self.net.popen(node, [
                "keepalived", "--dont-fork", "--log-console", "--log-detail", "--vrrp",
                "--no-syslog", "--use-file", os.path.join(folder, "keepalived.conf"),
                "--pid", os.path.join(folder, "keepalived.pid"),
                "--vrrp_pid", os.path.join(folder, "vrrp.pid")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        self.procs[node] = [nginx, keepalived]
        if wait:
            # The restarted master takes the address back (preemption, keepalived's default).
            expected = "n1" if node == "n1" else None
            wait_for(lambda: self.answer() == expected if expected else self.answer(),
                     ANSWER_TIMEOUT, "the address to be served again")

    def settle(self, owner):
        wait_for(lambda: self.owner() == owner and self.answer() == owner, ANSWER_TIMEOUT,
                 "%s alone holding the address" % owner)

    def cleanup(self):
        for node in list(self.procs):
            self.kill_node(node)
        if self.net:
            self.net.cleanup()
        if self.dir and not os.environ.get("KEEP"):
            subprocess.run(["rm", "-rf", self.dir], check=False)


def failover_trials(system):
    """TRIALS times: SIGKILL of every process of the owner; seconds to the first 2xx answer
    from another node."""
    times = []
    client = Probe(system.net, "client", system.vip)
    try:
        for trial in range(1, TRIALS + 1):
            owner = wait_for(system.owner, ANSWER_TIMEOUT, "an owner")
            system.settle(owner)
            killed = time.monotonic()
            system.kill_node(owner)
            answer = wait_for(lambda o=owner: client.first(
                killed, lambda s: ok(s) and s.body not in ("-", o)), ANSWER_TIMEOUT,
                "an answer from another node than " + owner)
            took = answer.end - killed
            times.append(took)
            say("  %-16s trial %d: %s killed, %s answered after %.2f s"
                % (system.name, trial, owner, answer.body, took))
            system.restart_node(owner)
    finally:
        client.stop()
    return times


PARTITIONS = {
    # name: (how, undo, what it is)
    "cut": ("cut", "heal", "link cut (the node sees its carrier drop)"),
    "isolate": ("isolate", "rejoin", "isolated by the switch (every link stays up)"),
}


def partition_trial(system, kind):
    """Partitions the owner for CUT_SECONDS, ends it, watches HEAL_WINDOW seconds more."""
    how, undo, _ = PARTITIONS[kind]
    owner = wait_for(system.owner, ANSWER_TIMEOUT, "an owner")
    system.settle(owner)
    client = Probe(system.net, "client", system.vip)
    nodes = {node: Probe(system.net, node, system.vip) for node in NODES}
    try:
        # Every probe answered once before the partition starts.
        for probe in [client, *nodes.values()]:
            wait_for(lambda p=probe: p.since(0.0), ANSWER_TIMEOUT,
                     "the probe in %s to report" % probe.namespace)
        cut = time.monotonic()
        getattr(system.net, how)(owner)
        taken = wait_for(lambda: client.first(cut, lambda s: ok(s) and s.body != owner),
                         ANSWER_TIMEOUT, "another node to answer")
        time.sleep(max(0.0, cut + CUT_SECONDS - time.monotonic()))
        healed = time.monotonic()
        getattr(system.net, undo)(owner)
        time.sleep(HEAL_WINDOW)
    finally:
        for probe in [client, *nodes.values()]:
            probe.stop()
    runs = {node: serving_runs(probe.since(0.0), node) for node, probe in nodes.items()}
    overlap = overlap_seconds(runs)
    longest, total = unreachable(client.since(healed), healed, healed + HEAL_WINDOW)
    answered_by = sorted({s.body for s in client.since(healed + HEAL_WINDOW - 1.0) if ok(s)})
    result = {"takeover": taken.end - cut, "overlap": overlap, "blackout": longest,
              "blackout_total": total, "after": ",".join(answered_by) or "nobody"}
    say("  %-16s %s %s for %.0f s: %s answered after %.2f s; two nodes serving for %.2f s; "
        "after the heal unreachable %.2f s (longest), %.2f s (total), then served by %s"
        % (system.name, owner, kind, CUT_SECONDS, taken.body, result["takeover"], overlap,
           longest, total, result["after"]))
    return result


def move_trials(system):
    """clusweb: graceful moves between nodes; seconds from the request to the first answer
    from the new node, and failed client requests meanwhile."""
    times, failures = [], 0
    client = Probe(system.net, "client", system.vip)
    try:
        for trial in range(1, TRIALS + 1):
            owner = system.owner()
            system.settle(owner)
            target = NODES[(NODES.index(owner) + 1) % len(NODES)]
            agent = system.cluster.agents[owner]
            asked = time.monotonic()
            agent.api("POST", "/v1/groups/shop/move", {"node": target})
            answer = wait_for(lambda t=target: client.first(asked, lambda s: ok(s) and
                                                             s.body == t),
                              ANSWER_TIMEOUT, "an answer from " + target)
            failed = [s for s in client.since(asked) if s.start < answer.start and not ok(s)]
            failures += len(failed)
            times.append(answer.end - asked)
            say("  clusweb          move %d: %s -> %s, answered after %.2f s, %d failed requests"
                % (trial, owner, target, times[-1], len(failed)))
    finally:
        client.stop()
    return times, failures


def worker_restart_trials(system):
    """clusweb: SIGKILL of the pool worker; seconds to the first 2xx from a new worker."""
    times = []
    client = Probe(system.net, "client", system.vip, path="/app/", interval_ms=10)
    try:
        for trial in range(1, TRIALS + 1):
            owner = system.owner()
            system.settle(owner)
            before = wait_for(lambda: client.first(time.monotonic() - 0.2, ok), ANSWER_TIMEOUT,
                              "the pool to answer")
            pid = int(before.body.split("_")[0][len("pid="):])
            killed = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            answer = wait_for(lambda: client.first(killed, lambda s: ok(s) and
                                                   s.body != before.body),
                              ANSWER_TIMEOUT, "a new worker to answer")
            times.append(answer.end - killed)
            say("  clusweb          worker %d on %s: %s killed, a new worker answered after %.3f s"
                % (trial, owner, pid, times[-1]))
    finally:
        client.stop()
    return times


def describe(times):
    return "median %.2f s, range %.2f-%.2f s, %d trials" % (
        statistics.median(times), min(times), max(times), len(times))


def main():
    if os.geteuid() != 0:
        sys.exit("failover_bench: run as root (it creates network namespaces)")
    # SIGTERM ends the run like Ctrl-C: through the clean-ups (namespaces, processes).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("failover_bench: terminated"))
    systems = [("clusweb", Clusweb), ("keepalived", lambda: Keepalived(False)),
               ("keepalived-fast", lambda: Keepalived(True))]
    only = os.environ.get("ONLY", "").split()
    failovers, partitions = {}, {}
    moves = workers = None
    for name, make in systems:
        if only and name not in only:
            continue
        say("%s: starting the testbed" % name)
        system = make()
        try:
            system.start()
            failovers[name] = failover_trials(system)
            for kind in PARTITIONS:
                partitions[(name, kind)] = partition_trial(system, kind)
            if name == "clusweb":
                moves = move_trials(system)
                workers = worker_restart_trials(system)
        finally:
            system.cleanup()

    say("")
    say("failover: SIGKILL of every process of the owning node -> first 2xx from another node")
    for name, times in failovers.items():
        say("  %-16s %s" % (name, describe(times)))
    for kind, (_, _, what) in PARTITIONS.items():
        say("partition: the owner %s for %.0f s, then healed (%.0f s watched after the heal)"
            % (what, CUT_SECONDS, HEAL_WINDOW))
        for (name, k), p in partitions.items():
            if k != kind:
                continue
            say("  %-16s takeover %.2f s; served by two nodes at once: %s (%.2f s); "
                "unreachable after the heal: %.2f s; then served by %s"
                % (name, p["takeover"], "yes" if p["overlap"] > 0 else "no", p["overlap"],
                   p["blackout"], p["after"]))
    if moves:
        say("clusweb graceful move: %s; %d failed requests" % (describe(moves[0]), moves[1]))
    if workers:
        say("clusweb pool worker restart in place: median %.3f s, range %.3f-%.3f s, %d trials"
            % (statistics.median(workers), min(workers), max(workers), len(workers)))
    for name, times in failovers.items():
        say("median %s %.2f" % (name, statistics.median(times)))
    if "clusweb" in failovers and "keepalived" in failovers:
        say("ratio keepalived/clusweb %.2f" % (statistics.median(failovers["keepalived"]) /
                                               statistics.median(failovers["clusweb"])))


if __name__ == "__main__":
    main()
