"""Shared helpers of the clusweb system tests (Python 3 standard library only).

The tests run the real `clusweb web` binary, as root, on loopback ports chosen at run time:

- `WebService` writes manifests into a private temporary folder, starts the service with its own
  run and state folders, waits until the admin API answers and the front end runs, and on stop
  checks that every process it started (master, front ends, pool workers) is gone.
- `RawConnection` sends exact bytes and reads one response at a time, for malformed requests
  and for watching whether the server keeps or closes a connection.
- `http_request` / `keep_alive` use http.client; `tls_connect` / `https_request` speak TLS with
  SNI; `make_certificate` creates a self-signed certificate for one host name.

Environment: CLUSWEB_BIN (the clusweb binary; default: build/debug of the source tree) and CLUSWEB_SRC
(the source tree; default: two folders above this file).
"""

import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unittest

SRC = os.environ.get("CLUSWEB_SRC") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("CLUSWEB_BIN") or os.path.join(SRC, "build", "debug", "app", "clusweb",
                                                    "clusweb")
EXAMPLE_WORKER = os.path.join(SRC, "examples", "pool", "worker.py")
ECHO_WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "echo_worker.py")

# Bounds for waiting on conditions; generous because the machine is shared and the binary may
# be a debug or sanitizer build.
START_TIMEOUT = 20.0
WAIT_TIMEOUT = 15.0
STOP_TIMEOUT = 25.0
POLL_INTERVAL = 0.02


class Timeout(AssertionError):
    pass


class Abort(AssertionError):
    """Raised by a wait_for condition that can never become true: stops the wait at once."""


def wait_for(condition, timeout=WAIT_TIMEOUT, message="condition", interval=POLL_INTERVAL):
    """Calls `condition` until it returns a true value, which is returned; fails after `timeout`.

    Exceptions from `condition` count as "not yet"; the last one is named in the failure."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except Abort:
            raise
        except Exception as error:  # noqa: BLE001 - any failure means "not yet"
            last_error = error
        if time.monotonic() >= deadline:
            detail = " (last error: %r)" % (last_error,) if last_error is not None else ""
            raise Timeout("timed out after %.1f s waiting for %s%s" % (timeout, message, detail))
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------
# Ports, files, certificates


def assert_holds(condition, seconds, message="condition", interval=POLL_INTERVAL):
    """Checks `condition` repeatedly for `seconds` and fails at the first false value: for
    things that must *not* happen (a failback, an address coming back)."""
    deadline = time.monotonic() + seconds
    while True:
        if not condition():
            raise AssertionError("%s stopped holding" % message)
        if time.monotonic() >= deadline:
            return
        time.sleep(interval)


def free_port():
    """A TCP port free on every IPv4 and IPv6 address at the moment of the call."""
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind(("::", 0))
        return s.getsockname()[1]


def free_ports(count):
    """`count` distinct free ports (held open together while picking)."""
    held = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            s.bind(("::", 0))
            held.append(s)
        return [s.getsockname()[1] for s in held]
    finally:
        for s in held:
            s.close()


def read_text(path):
    """The file's text (undecodable bytes replaced), or "" when it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def write_file(path, content, mode=0o644):
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    data = content.encode("utf-8") if isinstance(content, str) else content
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    return path


def make_certificate(folder, name):
    """A self-signed certificate for DNS name `name`: returns (certificate path, key path)."""
    cert = os.path.join(folder, name + ".crt")
    key = os.path.join(folder, name + ".key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=" + name, "-addext", "subjectAltName=DNS:" + name,
         "-keyout", key, "-out", cert],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.chmod(cert, 0o644)
    os.chmod(key, 0o600)
    return cert, key


def dedent(text):
    return textwrap.dedent(text).lstrip("\n")


# ---------------------------------------------------------------------------------------------
# Processes


def process_start_time(pid):
    """The start time (clock ticks since boot) of `pid`, or None when it does not exist."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[19])


def process_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()[0]


def proc_status(pid):
    """/proc/PID/status as a dict of field -> text."""
    fields = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            name, _, value = line.partition(":")
            fields[name] = value.strip()
    return fields


def children_of(pid):
    """Every descendant of `pid` (from /proc)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        parents.setdefault(int(stat[stat.rindex(")") + 2:].split()[1]), []).append(int(entry))
    found = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def socket_inodes(pid):
    """Inodes of the sockets `pid` holds open."""
    inodes = set()
    folder = "/proc/%d/fd" % pid
    for fd in os.listdir(folder):
        try:
            target = os.readlink(os.path.join(folder, fd))
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]", target)
        if m:
            inodes.add(int(m.group(1)))
    return inodes


def listening_tcp_sockets():
    """inode -> local port of every TCP socket in LISTEN state (IPv4 and IPv6)."""
    result = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] != "0A":  # TCP_LISTEN
                continue
            port = int(parts[1].rsplit(":", 1)[1], 16)
            result[int(parts[9])] = port
    return result


# ---------------------------------------------------------------------------------------------
# HTTP over a unix socket (the admin API)


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=10.0):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


class EventStream:
    """GET `target` (default /v1/events): a background reader collecting the NDJSON events as
    they arrive (the web service's event stream, or the agent's with ?follow=1)."""

    def __init__(self, socket_path, target="/v1/events"):
        self.events = []
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(10.0)
        self._sock.connect(socket_path)
        self._sock.sendall(b"GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % target.encode())
        self._file = self._sock.makefile("rb")
        status = self._file.readline()
        if b" 200 " not in status:
            raise AssertionError("GET %s answered %r" % (target, status))
        self.headers = {}
        while True:
            line = self._file.readline().strip()
            if not line:
                break
            name, _, value = line.decode("latin-1").partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.content_type = self.headers.get("content-type")
        if "chunked" not in self.headers.get("transfer-encoding", ""):
            raise AssertionError("the event stream is not chunked: %r" % self.headers)
        self._sock.settimeout(None)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        pending = b""
        try:
            while True:
                size_line = self._file.readline()
                if not size_line:
                    return
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    return
                pending += self._file.read(size)
                self._file.readline()  # the CRLF after the chunk
                while b"\n" in pending:
                    line, _, pending = pending.partition(b"\n")
                    if line.strip():
                        with self._lock:
                            self.events.append(json.loads(line))
        except Exception:  # noqa: BLE001 - closed under us, or the service went away
            return

    def snapshot(self):
        with self._lock:
            return list(self.events)

    def wait_for(self, predicate, timeout=WAIT_TIMEOUT, message="an event"):
        return wait_for(lambda: [e for e in self.snapshot() if predicate(e)], timeout,
                        message + " in the event stream")

    def close(self):
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)
        with contextlib.suppress(OSError):
            self._file.close()
            self._sock.close()


# ---------------------------------------------------------------------------------------------
# The web service


class WebService:
    """One `clusweb web` with its own folders.

        web = WebService()
        root = web.site_folder("shop", {"index.html": "hi"})
        web.write_manifest("web.yaml", "...")      # or several files
        web.start()                                # or: with web: ...
        ...
        web.stop()                                 # asserts nothing it started is left
    """

    def __init__(self, name="web"):
        self.dir = tempfile.mkdtemp(prefix="clusweb-%s-" % name)
        os.chmod(self.dir, 0o755)
        self.config_dir = os.path.join(self.dir, "config")
        self.run_dir = os.path.join(self.dir, "run")
        self.state_dir = os.path.join(self.dir, "state")
        for folder in (self.config_dir, self.run_dir, self.state_dir):
            os.makedirs(folder, mode=0o755, exist_ok=True)
            os.chmod(folder, 0o755)
        self.log_path = os.path.join(self.dir, "clusweb-web.log")
        self.socket_path = os.path.join(self.run_dir, "web.sock")
        # More arguments for `clusweb web` (e.g. --clustered-sites FILE), set before start().
        self.extra_args = []
        self.proc = None
        self._log_file = None
        # pid -> start time, for every process seen as ours (so a reused pid is not blamed).
        self._tracked = {}
        self._stopped = False

    # ---- files ----

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def site_folder(self, name, files=None):
        """A content folder under the service's folder, with `files` (relative path -> text)."""
        root = self.path("sites", name)
        os.makedirs(root, mode=0o755, exist_ok=True)
        os.chmod(root, 0o755)
        os.chmod(os.path.dirname(root), 0o755)
        for relative, content in (files or {}).items():
            write_file(os.path.join(root, relative), content)
        return root

    def worker(self, source=EXAMPLE_WORKER, name=None):
        """A copy of a worker program in the service's folder, executable by anyone."""
        target = self.path("bin", name or os.path.basename(source))
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        shutil.copyfile(source, target)
        os.chmod(target, 0o755)
        return target

    def certificate(self, name):
        folder = self.path("tls")
        os.makedirs(folder, mode=0o755, exist_ok=True)
        return make_certificate(folder, name)

    def write_manifest(self, name, text):
        """Writes config/NAME; the service reads the whole config folder."""
        return write_file(os.path.join(self.config_dir, name), dedent(text))

    def remove_manifest(self, name):
        os.unlink(os.path.join(self.config_dir, name))

    # ---- life cycle ----

    def start(self, log_level="debug"):
        self._log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [BIN, "web", "-f", self.config_dir, "--run-dir", self.run_dir, "--state-dir",
             self.state_dir, "--log-level", log_level, *self.extra_args],
            stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=subprocess.STDOUT,
            start_new_session=True)
        self._track(self.proc.pid)
        try:
            def ready():
                if self.proc.poll() is not None:
                    raise Abort("clusweb web exited with %s during start:\n%s"
                                % (self.proc.returncode, self.log()))
                if not os.path.exists(self.socket_path):
                    return False
                return self.status().get("frontendPid", 0) > 0
            wait_for(ready, START_TIMEOUT, "the admin API and the front end")
            self.wait_frontend_listening()
        except BaseException:
            self.stop(check=False)
            raise
        return self

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop(check=exc[0] is None)
        return False

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signum):
        os.kill(self.proc.pid, signum)

    def log(self):
        return read_text(self.log_path)

    def pool_log(self, pool):
        return read_text(os.path.join(self.state_dir, "logs", "pool-%s.log" % pool))

    def listening_ports(self, pid):
        """Ports of the TCP listening sockets `pid` holds open."""
        listening = listening_tcp_sockets()
        return {listening[inode] for inode in socket_inodes(pid) if inode in listening}

    def wait_frontend_listening(self, timeout=START_TIMEOUT):
        """Waits until the front end holds every listener the master opened: it has applied its
        configuration and accepts connections itself (connections made earlier wait in the
        kernel's queue, so this matters only to tests that look at processes)."""
        def taken_over():
            frontend = self.frontend_pid()
            return frontend > 0 and self.listening_ports(self.pid) <= self.listening_ports(
                frontend)
        wait_for(taken_over, timeout, "the front end to hold every listener of the master")

    def _track(self, pid):
        if pid and pid > 0 and pid not in self._tracked:
            started = process_start_time(pid)
            if started is not None:
                self._tracked[pid] = started

    def _track_descendants(self):
        if self.running():
            for child in children_of(self.proc.pid):
                self._track(child)

    def stop(self, check=True, timeout=STOP_TIMEOUT):
        """SIGTERM, then SIGKILL after `timeout`; asserts (when `check`) that the service exited
        by itself and that no process it started is left."""
        if self.proc is None or self._stopped:
            return
        self._stopped = True
        problems = []
        with contextlib.suppress(Exception):
            self.status()
            self.pools()
        self._track_descendants()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                problems.append("clusweb web did not stop within %.0f s of SIGTERM" % timeout)
                self.proc.kill()
                self.proc.wait()
        if self.proc.returncode != 0:
            problems.append("clusweb web exited with status %s" % self.proc.returncode)

        def leftovers():
            return [pid for pid, started in self._tracked.items()
                    if pid != self.proc.pid and process_start_time(pid) == started
                    and process_state(pid) not in (None, "Z", "X")]
        try:
            wait_for(lambda: not leftovers(), 10.0, "the processes of the service to exit")
        except Timeout:
            left = leftovers()
            problems.append("processes left running after stop: %s" % ", ".join(
                "%d (%s)" % (pid, _cmdline(pid)) for pid in left))
            for pid in left:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        if self._log_file:
            self._log_file.close()
        if check and problems:
            raise AssertionError("; ".join(problems) + "\n(files kept in %s)\n--- service log "
                                 "(tail) ---\n%s" % (self.dir, self.log()[-6000:]))

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    # ---- admin API ----

    def admin(self, method, path, body=None, timeout=10.0):
        """(status, parsed JSON or raw text) of one admin API request."""
        conn = UnixHTTPConnection(self.socket_path, timeout=timeout)
        try:
            headers = {}
            if body is not None:
                body = json.dumps(body).encode() if not isinstance(body, bytes) else body
                headers["Content-Type"] = "application/json"
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            text = response.read().decode("utf-8", "replace")
        finally:
            conn.close()
        try:
            data = json.loads(text)
        except ValueError:
            data = text
        self._note(data)
        return response.status, data

    def _note(self, data):
        # Remember every process the API names, so stop() can check they are gone.
        if not isinstance(data, dict):
            return
        self._track(data.get("frontendPid", 0))
        pools = data.get("pools") if isinstance(data.get("pools"), list) else [data]
        for pool in pools:
            if isinstance(pool, dict):
                for worker in pool.get("workers", []) or []:
                    if isinstance(worker, dict):
                        self._track(worker.get("pid", 0))

    def api(self, method, path, body=None):
        status, data = self.admin(method, path, body)
        if status != 200:
            raise AssertionError("%s %s answered %d: %s" % (method, path, status, data))
        return data

    def status(self):
        return self.api("GET", "/v1/status")

    def frontend_pid(self):
        return self.status()["frontendPid"]

    def generation(self):
        return self.status()["generation"]

    def sites(self):
        return {s["name"]: s for s in self.api("GET", "/v1/sites")["sites"]}

    def site(self, name):
        return self.api("GET", "/v1/sites/" + name)

    def pools(self):
        return {p["name"]: p for p in self.api("GET", "/v1/pools")["pools"]}

    def pool(self, name):
        return self.api("GET", "/v1/pools/" + name)

    def reload(self):
        """POST /v1/reload: (status, body)."""
        return self.admin("POST", "/v1/reload")

    def events(self):
        return EventStream(self.socket_path)

    def wait_pool(self, name, state="Started", workers=None, timeout=WAIT_TIMEOUT):
        """Waits until pool `name` is in `state` with `workers` ready workers (default: all of
        its processes when Started); returns its status."""
        def ready():
            pool = self.pool(name)
            if pool["state"] != state:
                return None
            want = workers
            if want is None:
                want = pool["processes"] if state == "Started" else 0
            live = [w for w in pool["workers"] if w["ready"]]
            return pool if len(live) == want else None
        return wait_for(ready, timeout, "pool %s to be %s" % (name, state))

    def warm_pool(self, name, port, path, host="localhost", timeout=WAIT_TIMEOUT):
        """Waits until every worker of pool `name` has answered a request through `path` (the
        answer names its pid: X-Worker-Pid, or "pid=N" in the body). In activation mode a pool
        is Started before its workers finish starting up; tests that signal workers need them
        past that point."""
        pids = {w["pid"] for w in self.wait_pool(name, timeout=timeout)["workers"]}
        answered = set()

        def all_answered():
            response, body = http_request(port, path, host=host)
            pid = response.getheader("X-Worker-Pid")
            if pid is None:
                m = re.search(rb"pid=(\d+)", body)
                pid = m.group(1) if m else None
            if response.status == 200 and pid is not None:
                answered.add(int(pid))
            return pids <= answered
        wait_for(all_answered, timeout, "every worker of pool %s to answer" % name,
                 interval=0)
        return pids

    def worker_pids(self, pool):
        return sorted(w["pid"] for w in self.pool(pool)["workers"])

    def wait_reloaded(self, previous_generation, timeout=WAIT_TIMEOUT):
        """Waits until the front end serves a generation newer than `previous_generation`."""
        return wait_for(lambda: self.status().get("appliedGeneration", 0) > previous_generation,
                        timeout, "the front end to apply a generation past %d"
                        % previous_generation)

    def cli(self, *args, check=True, timeout=30):
        """Runs `clusweb ARGS...`; returns the CompletedProcess (text)."""
        done = subprocess.run([BIN, *args], stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError("clusweb %s exited %d\nstdout: %s\nstderr: %s"
                                 % (" ".join(args), done.returncode, done.stdout, done.stderr))
        return done


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return "?"


# ---------------------------------------------------------------------------------------------
# Raw HTTP


class Response:
    def __init__(self, status, reason, headers, body, version):
        self.status = status
        self.reason = reason
        self.header_list = headers  # [(name, value)] as received
        self.headers = {}
        for name, value in headers:
            self.headers.setdefault(name.lower(), value)
        self.body = body
        self.version = version

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return "<Response %d %s %r>" % (self.status, self.headers, self.body[:200])


class ConnectionClosed(Exception):
    pass


class RawConnection:
    """A plain TCP (or TLS) connection: send exact bytes, read responses one at a time."""

    def __init__(self, port, address="127.0.0.1", timeout=10.0, tls_context=None,
                 server_hostname=None):
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.create_connection((address, port), timeout=timeout)
        if family == socket.AF_INET:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls_context is not None:
            sock = tls_context.wrap_socket(sock, server_hostname=server_hostname)
        self.sock = sock
        self.buffer = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.close()

    def local_port(self):
        return self.sock.getsockname()[1]

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def request(self, method, target, host="localhost", headers=(), body=b""):
        """Sends one well-formed request (Content-Length added for a body)."""
        lines = ["%s %s HTTP/1.1" % (method, target)]
        if host is not None:
            lines.append("Host: " + host)
        for name, value in (headers.items() if isinstance(headers, dict) else headers):
            lines.append("%s: %s" % (name, value))
        if body:
            if isinstance(body, str):
                body = body.encode()
            lines.append("Content-Length: %d" % len(body))
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))

    def fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionClosed("the server closed the connection")
        self.buffer += chunk

    def read_line(self):
        while b"\r\n" not in self.buffer:
            self.fill()
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def read_exact(self, n):
        while len(self.buffer) < n:
            self.fill()
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def read_response(self, head_request=False):
        """Reads one response; 1xx interim responses are skipped."""
        while True:
            status_line = self.read_line().decode("latin-1")
            m = re.match(r"HTTP/(\d\.\d) (\d{3}) ?(.*)", status_line)
            if not m:
                raise AssertionError("bad status line %r" % status_line)
            headers = []
            while True:
                line = self.read_line().decode("latin-1")
                if not line:
                    break
                name, _, value = line.partition(":")
                headers.append((name.strip(), value.strip()))
            status = int(m.group(2))
            if 100 <= status < 200:
                continue
            break
        lookup = {n.lower(): v for n, v in headers}
        body = b""
        if head_request or status in (204, 304):
            pass
        elif "chunked" in lookup.get("transfer-encoding", "").lower():
            while True:
                size = int(self.read_line().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.read_line():
                        pass  # trailers
                    break
                body += self.read_exact(size)
                self.read_exact(2)
        elif "content-length" in lookup:
            body = self.read_exact(int(lookup["content-length"]))
        else:
            try:
                while True:
                    self.fill()
            except ConnectionClosed:
                pass
            body, self.buffer = self.buffer, b""
        return Response(status, m.group(3), headers, body, m.group(1))

    def exchange(self, method, target, host="localhost", headers=(), body=b""):
        self.request(method, target, host, headers, body)
        return self.read_response(head_request=(method == "HEAD"))

    def closed_by_server(self, timeout=WAIT_TIMEOUT):
        """True when the server closes the connection within `timeout` (EOF or reset)."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.sock.settimeout(left)
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buffer += chunk
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            return True
        except OSError:
            return True

    def still_open(self, wait=0.2):
        """True when nothing (no EOF) arrives within `wait` seconds."""
        self.sock.settimeout(wait)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return True
        except OSError:
            return False
        finally:
            self.sock.settimeout(10.0)
        if not chunk:
            return False
        self.buffer += chunk
        return True


def raw_exchange(port, data, address="127.0.0.1", head_request=False, timeout=10.0):
    """Sends `data` on a new connection and reads one response."""
    with RawConnection(port, address, timeout) as conn:
        conn.send(data)
        return conn.read_response(head_request=head_request)


def raw_response_or_close(port, data, address="127.0.0.1", timeout=10.0):
    """Sends `data`; returns the response, or None when the server closes without one."""
    with RawConnection(port, address, timeout) as conn:
        conn.send(data)
        try:
            return conn.read_response()
        except (ConnectionClosed, ConnectionResetError):
            return None


def http_request(port, path="/", host=None, method="GET", headers=None, body=None,
                 address="127.0.0.1", timeout=10.0):
    """One request on a new http.client connection; returns (response, body bytes)."""
    conn = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        all_headers = dict(headers or {})
        if host is not None:
            all_headers["Host"] = host
        conn.request(method, path, body=body, headers=all_headers)
        response = conn.getresponse()
        data = response.read()
        return response, data
    finally:
        conn.close()


def keep_alive(port, address="127.0.0.1", timeout=10.0):
    """An http.client connection reused across requests (keep-alive)."""
    return http.client.HTTPConnection(address, port, timeout=timeout)


# ---------------------------------------------------------------------------------------------
# TLS


def tls_context(*trusted_certificates):
    """A client context that trusts exactly the given self-signed certificates (no host name
    check: tests look at which certificate came back)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    for cert in trusted_certificates:
        context.load_verify_locations(cafile=cert)
    return context


def peer_common_name(tls_socket):
    for rdn in tls_socket.getpeercert().get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return None


def tls_connect(port, server_hostname, context, address="127.0.0.1", timeout=10.0):
    """A RawConnection over TLS with SNI `server_hostname`."""
    return RawConnection(port, address, timeout, tls_context=context,
                         server_hostname=server_hostname)


def https_request(port, server_hostname, context, path="/", host=None, address="127.0.0.1"):
    """(response, peer certificate CN) of one GET over TLS."""
    with tls_connect(port, server_hostname, context, address) as conn:
        response = conn.exchange("GET", path, host=host or server_hostname,
                                 headers={"Connection": "close"})
        return response, peer_common_name(conn.sock)


# ---------------------------------------------------------------------------------------------
# Test base


class ServiceTestCase(unittest.TestCase):
    """A TestCase class sharing one WebService: subclasses implement `configure(web)` (write
    manifests and files, keep what tests need on `cls`); the service starts before the first
    test and stops, with its leftover check, after the last."""

    web = None

    @classmethod
    def configure(cls, web):
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not os.path.exists(BIN):
            raise unittest.SkipTest("no clusweb binary at %s (set CLUSWEB_BIN)" % BIN)
        if os.geteuid() != 0:
            raise unittest.SkipTest("system tests run as root")
        cls.web = WebService(cls.__name__)
        try:
            cls.configure(cls.web)
            cls.web.start()
        except BaseException:
            cls.web.stop(check=False)
            print("--- service log ---\n" + cls.web.log()[-6000:], file=sys.stderr)
            cls.web.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.web is not None:
                cls.web.stop(check=True)  # on failure the folder stays for a look
                cls.web.cleanup()
        finally:
            super().tearDownClass()
