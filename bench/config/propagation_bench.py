#!/usr/bin/env python3
"""How fast a change of a web configuration shared by every node reaches all of them: clusweb's
`clusweb apply` against the common Linux way, a push script that copies nginx's configuration
file to every node and reloads each nginx.

The testbed is the one of the system tests and of bench/failover/failover_bench.py
(tests/system/netns_cluster.py): three nodes n1..n3, each a network namespace plugged into one
bridge, a client namespace, etcd as three members in namespaces of their own (heartbeat 50 ms,
election 500 ms); every node runs `clusweb agent --web-config` with its `clusweb web`. Each
node namespace also runs an nginx of its own (nginx-light, `worker_processes 1`, access log
off). Both systems serve the same folders www/rev0 .. www/rev<CHANGES>, whose index.html
reads "rev<i>".

Change i, per system:
- clusweb: the manifest is edited (a `kind: Site` "portal" on http://*:8081 whose
  physicalPath is www/rev<i>), then `clusweb apply -f` runs through n1's agent. The agent
  writes the shared configuration to etcd; every agent follows it, writes its node's cache and
  reloads its web service.
- nginx-push: the site's file is edited (a `server` on port 8082 whose root is www/rev<i>),
  then, node after node as a push script does, `cp` into that node's conf.d/ and
  `nginx -s reload` (which returns once it has signalled the master; the master starts new
  workers and lets the old ones finish).

The clock starts just before the first command and stops when the client has got "rev<i>"
from every node at the node's own address: prober.py, in the client namespace, asks every
node every PROBE_INTERVAL_MS on a new connection and reports each change of answer; a node's
time is the end of its first answer with the new content. Also recorded, up to the system's
next change: when every node served the new content "for good" (its last change of answer to
it: an nginx node alternates between its old and new worker for a moment), whether any node
answered with an error or went back to other content after the new, and when the commands
returned ("command returned"). Before its next change a system settles: every agent reports
the store's newest revision served without a problem; every nginx master has one worker and
no old one shutting down.

The two systems alternate change by change, which one goes first alternating too, so a drift
of the machine hits both alike; the idle system's prober pauses. The first apply and the
nginx start (rev0) are not measured. Every time comes from CLOCK_MONOTONIC, which all
namespaces share; traffic stays inside the namespaces the benchmark creates. Run as root
through bench/config_propagation.sh.
"""

import collections
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
os.environ.setdefault("CLUSWEB_BIN", os.path.join(REPO, "build", "release", "app", "clusweb",
                                                  "clusweb"))
sys.path.insert(0, os.path.join(REPO, "tests", "system"))
sys.path.insert(0, os.path.join(REPO, "bench"))

from harness import BIN, Abort, Timeout, children_of, dedent, wait_for, write_file  # noqa: E402
from netns_cluster import NODES, NetnsCluster  # noqa: E402
from nginx_peer import write_nginx_conf  # noqa: E402

PROBER = os.path.join(HERE, "prober.py")
NGINX = "/usr/sbin/nginx"
CHANGES = int(os.environ.get("CHANGES", "100"))
ONLY = os.environ.get("ONLY", "").split()
SYSTEMS = ["clusweb", "nginx-push"]
TARGET_P99_MS = 100.0
PROBE_INTERVAL_MS = 2
CHANGE_TIMEOUT = 30.0  # longest wait for a change to reach every node before the run fails
SITE_PORT = 8081  # clusweb's shared site, as in tests/system/test_cluster_netns.py
NGINX_PORT = 8082

Answer = collections.namedtuple("Answer", "start end status body")
# One measured change: when its command started and returned, and when each node first served
# its content ({node: seconds}), all CLOCK_MONOTONIC.
Change = collections.namedtuple("Change", "rev started returned arrived")
# What followed a change: error and back are booleans, for_good milliseconds.
Aftermath = collections.namedtuple("Aftermath", "error back for_good")


def say(text):
    print(text, flush=True)


def content(rev):
    return "rev%d" % rev


def ms(seconds):
    return seconds * 1000.0


class Prober:
    """prober.py in the client namespace, asking every node's own address on one port; the
    answers it reports, by node, as they come."""

    def __init__(self, net, port):
        self.node_at = {net.ip_of(node): node for node in NODES}
        self.proc = net.popen("client", [sys.executable, PROBER, str(port),
                                         str(PROBE_INTERVAL_MS), *self.node_at],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
        self.answers = {node: [] for node in NODES}
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            address, start, end, status, body = line.split()
            with self.lock:
                self.answers[self.node_at[address]].append(
                    Answer(float(start), float(end), int(status), body))

    def _tell(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def pause(self):
        self._tell("pause")

    def resume(self):
        self._tell("resume")

    def between(self, node, since, until=math.inf):
        """The node's changes of answer whose attempt ended in [since, until)."""
        with self.lock:
            return [a for a in self.answers[node] if since <= a.end < until]

    def arrivals(self, body, since):
        """{node: end of its first answer `body` since `since`} once every node gave it, else
        None."""
        if self.proc.poll() is not None:
            raise Abort("the prober exited with %s" % self.proc.returncode)
        found = {}
        for node in NODES:
            first = next((a for a in self.between(node, since)
                          if a.status == 200 and a.body == body), None)
            if first is None:
                return None
            found[node] = first.end
        return found

    def last(self):
        with self.lock:
            return ", ".join("%s %s" % (node, "%d %s" % answers[-1][2:] if answers else "nothing")
                             for node, answers in self.answers.items())

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.reader.join(5)


class Clusweb:
    """The shared site "portal" on port 8081, changed with `clusweb apply` through n1."""

    name = "clusweb"
    port = SITE_PORT

    def __init__(self, cluster):
        self.agent = cluster.agents["n1"]
        self.manifest = os.path.join(cluster.dir, "shared.yaml")

    def start(self):
        self.edit(0)
        self.push()

    def edit(self, rev):
        write_file(self.manifest, dedent("""\
            kind: Site
            name: portal
            physicalPath: www/%s
            bindings: [http://*:%d]
            """) % (content(rev), SITE_PORT))

    def push(self):
        done = subprocess.run([BIN, "apply", "-f", self.manifest, "--run-dir",
                               self.agent.run_dir], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError("clusweb apply failed (%d): %s" % (done.returncode, done.stderr))

    def settled(self):
        """Every node reports the store's newest revision served, without a problem."""
        config = self.agent.api("GET", "/v1/config")
        nodes = config["nodes"]
        return len(nodes) == len(NODES) and all(
            n["revision"] == n["latest"] == config["revision"] and not n["problem"]
            for n in nodes)

    def stop(self):
        """Nothing of its own: the cluster's clean-up stops the agents and web services."""


class NginxPush:
    """An nginx in every node namespace on port 8082, each with the site's file in its own
    conf.d/; a change copies the edited file to every node and reloads each nginx."""

    name = "nginx-push"
    port = NGINX_PORT

    def __init__(self, net, folder, www):
        self.net, self.www = net, www
        self.dir = os.path.join(folder, "nginx")
        self.edited = os.path.join(self.dir, "site.conf")  # what the push script copies
        self.masters = {}

    def folder(self, node):
        return os.path.join(self.dir, node)

    def conf(self, node):
        return os.path.join(self.folder(node), "nginx.conf")

    def site_conf(self, node):
        return os.path.join(self.folder(node), "conf.d", "site.conf")

    def start(self):
        self.edit(0)
        for node in NODES:
            folder = self.folder(node)
            os.makedirs(os.path.join(folder, "conf.d"))
            os.makedirs(os.path.join(folder, "temp"))
            shutil.copyfile(self.edited, self.site_conf(node))
            write_nginx_conf(self.conf(node), folder, "include %s/conf.d/*.conf;\n" % folder)
            with open(os.path.join(folder, "nginx.log"), "ab") as log:
                self.masters[node] = self.net.popen(
                    node, [NGINX, "-c", self.conf(node), "-g", "daemon off;"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True)

    def edit(self, rev):
        write_file(self.edited, dedent("""\
            server {
                listen %d;
                location / { root %s; }
            }
            """) % (NGINX_PORT, os.path.join(self.www, content(rev))))

    def push(self):
        for node in NODES:
            subprocess.run(["cp", self.edited, self.site_conf(node)], check=True)
            done = subprocess.run([NGINX, "-c", self.conf(node), "-s", "reload"],
                                  capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError("nginx -s reload on %s failed (%d): %s"
                                   % (node, done.returncode, done.stderr))

    def settled(self):
        """Every master runs one worker, and no old one is still shutting down."""
        for node, master in self.masters.items():
            if master.poll() is not None:
                raise Abort("nginx on %s exited with %s" % (node, master.returncode))
            titles = []
            for pid in children_of(master.pid):
                try:
                    with open("/proc/%d/cmdline" % pid, "rb") as f:
                        titles.append(f.read().decode(errors="replace"))
                except OSError:
                    return False  # a worker just exited
            if len(titles) != 1 or "shutting down" in titles[0]:
                return False
        return True

    def stop(self):
        """SIGTERM to each master's process group (nginx and its workers), SIGKILL after 5 s."""
        for master in self.masters.values():
            try:
                os.killpg(master.pid, signal.SIGTERM)
                master.wait(5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
            try:
                os.killpg(master.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            master.wait()


def make_content(folder):
    """www/rev0 .. www/rev<CHANGES>, each with an index.html that names it."""
    www = os.path.join(folder, "www")
    for rev in range(CHANGES + 1):
        write_file(os.path.join(www, content(rev), "index.html"), content(rev) + "\n")
    for path in [www] + [os.path.join(www, content(rev)) for rev in range(CHANGES + 1)]:
        os.chmod(path, 0o755)
    return www


def wait_served(system, prober, rev, since):
    """Waits until every node serves `rev`, then until the system settles; the arrivals."""
    try:
        arrived = wait_for(lambda: prober.arrivals(content(rev), since), CHANGE_TIMEOUT,
                           "every node to serve %s" % content(rev))
        wait_for(system.settled, CHANGE_TIMEOUT, "the system to settle")
    except Timeout as error:
        raise Timeout("%s: %s; last answers: %s" % (system.name, error, prober.last())) from None
    return arrived


def change(system, prober, rev):
    """One measured change, from editing the configuration to the system settled after it."""
    system.edit(rev)
    prober.resume()
    started = time.monotonic()
    system.push()
    returned = time.monotonic()
    arrived = wait_served(system, prober, rev, started)
    prober.pause()
    return Change(rev, started, returned, arrived)


def aftermath(prober, changes):
    """What followed each change until the system's next one: whether some node answered with
    an error, whether some node answered with anything but the new content after serving it,
    and the milliseconds until every node served the new content for good (its last change of
    answer to it)."""
    found = []
    for i, one in enumerate(changes):
        until = changes[i + 1].started if i + 1 < len(changes) else math.inf
        answers = [(node, a) for node in NODES
                   for a in prober.between(node, one.started, until)]
        new = (200, content(one.rev))
        error = any(a.status != 200 for _, a in answers)
        back = any(a.end > one.arrived[node] and (a.status, a.body) != new for node, a in answers)
        for_good = max(a.end for _, a in answers if (a.status, a.body) == new)
        found.append(Aftermath(error, back, ms(for_good - one.started)))
    return found


def percentile(values, p):
    """The p-th percentile, interpolated between the nearest ranks (the value itself when
    there is one)."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def propagation(changes):
    """Milliseconds from each change's start until the last node served it."""
    return [ms(max(c.arrived.values()) - c.started) for c in changes]


def describe(values):
    return "p50 %6.1f  p99 %6.1f  min %6.1f  max %6.1f" % (
        percentile(values, 50), percentile(values, 99), min(values), max(values))


def report(results, aftermaths):
    say("")
    say("results: milliseconds from issuing a change until every node serves it, %d changes "
        "each" % CHANGES)
    for name, changes in results.items():
        after = aftermaths[name]
        say("  %-10s every node        %s" % (name, describe(propagation(changes))))
        say("  %-10s  for good         %s" % ("", describe([a.for_good for a in after])))
        say("  %-10s command returned  %s" % ("", describe([ms(c.returned - c.started)
                                                           for c in changes])))
        say("  %-10s changes with an error answer: %d; with a node back to other content "
            "after the new: %d" % ("", sum(a.error for a in after), sum(a.back for a in after)))
    if "clusweb" in results:
        values = propagation(results["clusweb"])
        p99 = percentile(values, 99)
        say("p50 config propagation %.1f" % percentile(values, 50))
        say("p99 config propagation %.1f" % p99)
        say("min config propagation %.1f" % min(values))
        say("max config propagation %.1f" % max(values))
        say("count config propagation %d" % len(values))
        say("target p99 <= %.0f ms: %s" % (TARGET_P99_MS, "met" if p99 <= TARGET_P99_MS
                                            else "not met"))
    if "nginx-push" in results:
        values = propagation(results["nginx-push"])
        say("p50 nginx-push propagation %.1f" % percentile(values, 50))
        say("p99 nginx-push propagation %.1f" % percentile(values, 99))
    if len(results) == 2:
        ours, peer = propagation(results["clusweb"]), propagation(results["nginx-push"])
        for p in (50, 99):
            say("ratio nginx-push/clusweb p%d %.2f" % (p, percentile(peer, p) /
                                                       percentile(ours, p)))


def run(cluster, names, probers, systems):
    """Starts the systems on the running cluster, measures CHANGES changes of each; their
    Changes by system."""
    www = make_content(cluster.dir)
    for name in names:
        system = Clusweb(cluster) if name == "clusweb" else NginxPush(cluster.net, cluster.dir,
                                                                      www)
        systems[name] = system
        probers[name] = Prober(cluster.net, system.port)
        system.start()
        wait_served(system, probers[name], 0, 0.0)
        probers[name].pause()
    results = {name: [] for name in names}
    for rev in range(1, CHANGES + 1):
        for name in names if rev % 2 else reversed(names):
            one = change(systems[name], probers[name], rev)
            results[name].append(one)
            say("  change %3d %-10s command %6.1f ms, every node %6.1f ms (%s)" % (
                rev, name, ms(one.returned - one.started), ms(max(one.arrived.values()) -
                                                                one.started),
                ", ".join("%s %.1f" % (node, ms(at - one.started))
                          for node, at in sorted(one.arrived.items()))))
    return results


def main():
    if os.geteuid() != 0:
        sys.exit("propagation_bench: run as root (it creates network namespaces)")
    # SIGTERM ends the run like Ctrl-C: through the clean-ups (namespaces, processes).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("propagation_bench: terminated"))
    names = [name for name in SYSTEMS if not ONLY or name in ONLY]
    say("clusweb binary: %s" % BIN)
    say("host: %d CPUs, load average %s" % (os.cpu_count(), " ".join(
        "%.2f" % load for load in os.getloadavg())))
    if os.getloadavg()[0] > 0.5:
        say("warning: the machine is busy (1-minute load > 0.5): times are longer and noisier")
    say("starting the testbed: 3 nodes, etcd, a client; %s; %d changes each"
        % (" and ".join(names), CHANGES))
    say("each node's own address asked every %d ms, on a new connection each time"
        % PROBE_INTERVAL_MS)
    cluster = NetnsCluster(subnet=79)
    probers, systems = {}, {}
    try:
        cluster.start()
        # The address monitor (the failover tests' witness of two owners) runs `ip` on every
        # node every 10 ms: load that has nothing to do with configuration changes.
        cluster.monitor.stop()
        results = run(cluster, names, probers, systems)
        aftermaths = {name: aftermath(probers[name], results[name]) for name in names}
    finally:
        # Cleaning up is not to be cut short by a second Ctrl-C or a SIGTERM.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for prober in probers.values():
            prober.stop()
        for system in systems.values():
            system.stop()
        cluster.cleanup()
    report(results, aftermaths)


if __name__ == "__main__":
    main()
