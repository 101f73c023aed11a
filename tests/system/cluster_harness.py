"""Helpers of the cluster system tests: a real etcd on loopback and real `clusweb agent`s.

- `Etcd` starts one etcd member (Debian's etcd-server) on free loopback ports with its data in
  a temporary folder, fast heartbeats as in the store's tests, and removes everything on stop.
- `Agent` runs `clusweb agent --store etcd://...` with its own run and state folders, talks to
  its API on `<run dir>/agent.sock`, and can be stopped (SIGTERM), killed (SIGKILL), frozen
  (SIGSTOP) and thawed.
- `marker_script` writes a script resource that records, in one shared journal, when each node
  starts and stops "serving" a group, so tests can check that no two nodes ever overlapped.
"""

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from harness import (BIN, START_TIMEOUT, STOP_TIMEOUT, Abort, UnixHTTPConnection, dedent,
                     free_ports, read_text, wait_for, write_file)

ETCD = "/usr/bin/etcd"


def etcd_member_argv(name, data_dir, client_url, peer_url, initial_cluster):
    """The command line of one etcd member with the store tests' settings: heartbeat 50 ms,
    election 500 ms (ARCHITECTURE.md), logs on stderr."""
    return [ETCD, "--name", name, "--data-dir", data_dir,
            "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
            "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
            "--initial-cluster", initial_cluster, "--initial-cluster-state", "new",
            "--heartbeat-interval", "50", "--election-timeout", "500",
            "--logger", "zap", "--log-outputs", "stderr"]


class Etcd:
    """One etcd member on loopback, for the duration of a test."""

    def __init__(self):
        base = "/dev/shm" if os.path.isdir("/dev/shm") else None
        self.dir = tempfile.mkdtemp(prefix="clusweb-etcd-", dir=base)
        self.proc = None
        self.client_port = None

    def start(self):
        for _ in range(5):
            self.client_port, peer_port = free_ports(2)
            client = "http://127.0.0.1:%d" % self.client_port
            peer = "http://127.0.0.1:%d" % peer_port
            with open(os.path.join(self.dir, "etcd.log"), "ab") as log:
                self.proc = subprocess.Popen(
                    etcd_member_argv("m0", os.path.join(self.dir, "data"), client, peer,
                                     "m0=" + peer),
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True)
            try:
                wait_for(self._healthy, START_TIMEOUT, "etcd to serve")
                return self
            except Exception:  # noqa: BLE001 - a port taken meanwhile: try other ports
                self.stop()
                shutil.rmtree(os.path.join(self.dir, "data"), ignore_errors=True)
        raise AssertionError("etcd did not start:\n" + self.log_text())

    def _healthy(self):
        if self.proc.poll() is not None:
            raise Abort("etcd exited with %s" % self.proc.returncode)
        result = subprocess.run(
            ["etcdctl", "--endpoints", self.endpoint, "--command-timeout=1s", "endpoint",
             "health"], capture_output=True, check=False)
        return result.returncode == 0

    @property
    def endpoint(self):
        return "127.0.0.1:%d" % self.client_port

    def get_prefix(self, prefix):
        """{key: value} of every key under `prefix` (through etcdctl)."""
        result = subprocess.run(
            ["etcdctl", "--endpoints", self.endpoint, "get", "--prefix", prefix, "-w", "json"],
            capture_output=True, check=True)
        data = json.loads(result.stdout or b"{}")
        return {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv.get("value", "")).decode()
                for kv in data.get("kvs", [])}

    def log_text(self):
        return read_text(os.path.join(self.dir, "etcd.log"))[-4000:]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Agent:
    """One `clusweb agent` node."""

    def __init__(self, node, etcd, folder, ttl="2s", extra_args=()):
        self.node = node
        self.etcd = etcd
        self.dir = os.path.join(folder, node)
        self.run_dir = os.path.join(self.dir, "run")
        self.state_dir = os.path.join(self.dir, "state")
        for path in (self.run_dir, self.state_dir):
            os.makedirs(path, exist_ok=True)
        self.socket_path = os.path.join(self.run_dir, "agent.sock")
        self.log_path = os.path.join(self.dir, "agent.log")
        self.ttl = ttl
        self.extra_args = list(extra_args)
        self.proc = None

    def command(self):
        """The agent's command line."""
        return [BIN, "agent", "--store", "etcd://" + self.etcd.endpoint, "--node", self.node,
                "--run-dir", self.run_dir, "--state-dir", self.state_dir, "--ttl", self.ttl,
                "--log-level", "debug", *self.extra_args]

    def spawn(self, argv, **kwargs):
        """Starts `argv` (a subclass may run it elsewhere, e.g. in a namespace)."""
        return subprocess.Popen(argv, **kwargs)

    def start(self):
        with open(self.log_path, "ab") as log:
            self.proc = self.spawn(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)

        def joined():
            if self.proc.poll() is not None:
                raise Abort("agent %s exited with %s:\n%s"
                            % (self.node, self.proc.returncode, self.log()[-4000:]))
            return self.cluster().get("joined")
        wait_for(joined, START_TIMEOUT, "agent %s to join" % self.node)
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        return read_text(self.log_path)

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM: a graceful leave. Returns the exit status."""
        if not self.running():
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("agent %s did not stop within %.0f s of SIGTERM:\n%s"
                                 % (self.node, timeout, self.log()[-4000:]))

    def kill(self):
        if self.running():
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def freeze(self):
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def request(self, method, path, body=None, timeout=10.0):
        conn = UnixHTTPConnection(self.socket_path, timeout=timeout)
        try:
            payload = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=payload,
                         headers={"Content-Type": "application/json"} if payload else {})
            response = conn.getresponse()
            text = response.read().decode("utf-8", "replace")
        finally:
            conn.close()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text

    def api(self, method, path, body=None):
        status, data = self.request(method, path, body)
        if status != 200:
            raise AssertionError("%s %s on %s answered %d: %s"
                                 % (method, path, self.node, status, data))
        return data

    def cluster(self):
        return self.api("GET", "/v1/cluster")

    def group(self, name):
        for group in self.cluster()["groups"]:
            if group["name"] == name:
                return group
        return None

    def cleanup(self):
        with contextlib.suppress(Exception):
            self.kill()


def marker_script(folder):
    """A script resource that records serving intervals in `folder`/journal.

    online: writes `folder`/serving/<node> (the fencing token) and appends
    "start <node> <token> <monotonic ns>" to the journal; offline/terminate remove it and append
    "stop ..."; looksalive/isalive: the file exists and holds our token. The journal is appended
    with O_APPEND lines, so the order of lines is the order of events on this machine."""
    path = os.path.join(folder, "marker.sh")
    os.makedirs(os.path.join(folder, "serving"), exist_ok=True)
    write_file(path, dedent("""\
        #!/bin/sh
        # A script resource for tests: "serving" = the file serving/<group>.<node> exists.
        dir=%s
        mark="$dir/serving/$CLUSWEB_GROUP.$CLUSWEB_NODE"
        now() { cut -d' ' -f1 /proc/uptime; }
        case "$1" in
          online)
            echo "$CLUSWEB_FENCING_TOKEN" > "$mark"
            echo "start $CLUSWEB_GROUP $CLUSWEB_NODE $CLUSWEB_FENCING_TOKEN $(now)" >> "$dir/journal"
            echo "serving $CLUSWEB_GROUP on $CLUSWEB_NODE" ;;
          offline|terminate)
            if [ -e "$mark" ]; then
              rm -f "$mark"
              echo "stop $CLUSWEB_GROUP $CLUSWEB_NODE $CLUSWEB_FENCING_TOKEN $(now)" >> "$dir/journal"
            fi ;;
          looksalive|isalive)
            # A file broken.<node> makes the resource fail its checks on that node.
            [ -e "$dir/broken.$CLUSWEB_NODE" ] && { echo "broken on $CLUSWEB_NODE"; exit 1; }
            [ -e "$mark" ] || exit 1 ;;
        esac
        exit 0
        """) % folder, mode=0o755)
    return path


def read_journal(folder):
    """[(kind, group, node, token, seconds)] in order."""
    entries = []
    try:
        with open(os.path.join(folder, "journal")) as f:
            for line in f:
                kind, group, node, token, at = line.split()
                entries.append((kind, group, node, int(token or 0), float(at)))
    except OSError:
        pass
    return entries


def overlaps(entries, group):
    """Pairs of serving intervals of `group` on different nodes that overlap."""
    open_since = {}
    found = []
    for kind, g, node, _token, at in entries:
        if g != group:
            continue
        if kind == "start":
            for other, since in open_since.items():
                if other != node:
                    found.append((other, node, since, at))
            open_since[node] = at
        else:
            open_since.pop(node, None)
    return found


def script_group(name, script, preferred=()):
    spec = {"name": name, "resources": [
        {"name": "app", "type": "script", "parameters": {"path": script}}]}
    if preferred:
        spec["preferredOwners"] = list(preferred)
    return spec


class LoopbackClusterTest(unittest.TestCase):
    """Agents on loopback around one etcd member: a folder of the test's (`dir`, kept with
    CLUSWEB_KEEP=1), the etcd, and `start_agents()`; everything is stopped afterwards."""

    ttl = 2.0
    prefix = "clusweb-cluster-"

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix=self.prefix)
        self.etcd = Etcd().start()
        self.addCleanup(self.etcd.cleanup)
        self.agents = {}

    def tearDown(self):
        for agent in self.agents.values():
            agent.cleanup()
        if not os.environ.get("CLUSWEB_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def start_agents(self, *names):
        for name in names:
            self.agents[name] = Agent(name, self.etcd, self.dir, ttl="%ds" % self.ttl)
            self.agents[name].start()
        return [self.agents[name] for name in names]
