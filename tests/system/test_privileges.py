"""Privileges: a root master that binds, an unprivileged front end that inherits the listeners,
pool workers as their pool's user; reloads that add or remove listeners or replace the front
end without dropping connections."""

import os
import pwd
import socket
import subprocess
import unittest

from harness import (ECHO_WORKER, RawConnection, ServiceTestCase, children_of, free_ports,
                     http_request, listening_tcp_sockets, proc_status,
                     process_start_time, socket_inodes, wait_for)

NOBODY = pwd.getpwnam("nobody")


def listening_ports(pid):
    """inode -> port of the TCP listening sockets `pid` holds."""
    listening = listening_tcp_sockets()
    return {inode: listening[inode] for inode in socket_inodes(pid) if inode in listening}


class PrivilegesTest(ServiceTestCase):
    @classmethod
    def configure(cls, web):
        cls.port, cls.second_port = free_ports(2)
        cls.root = web.site_folder("site", {"index.html": "site\n"})
        cls.worker = web.worker(ECHO_WORKER)
        cls.write_config(web, [cls.port])

    @classmethod
    def write_config(cls, web, ports, threads=1):
        bindings = ", ".join("http://127.0.0.1:%d" % port for port in ports)
        web.write_manifest("web.yaml", f"""
            kind: WebServer
            user: nobody
            threads: {threads}
            ---
            kind: Site
            name: site
            physicalPath: {cls.root}
            bindings: [{bindings}]
            applications: [{{path: /app, pool: app}}]
            ---
            kind: ApplicationPool
            name: app
            command: [{cls.worker}]
            user: nobody
            """)

    def restore(self):
        self.write_config(self.web, [self.port])
        status, body = self.web.reload()
        self.assertEqual(status, 200, body)
        # The front end lets go of removed listeners asynchronously; start the next test after.
        wait_for(lambda: self.second_port not in listening_ports(self.web.frontend_pid()).values(),
                 message="the front end to close the removed listener")

    def test_front_end_is_unprivileged(self):
        frontend = proc_status(self.web.frontend_pid())
        self.assertEqual(frontend["Uid"].split(), [str(NOBODY.pw_uid)] * 4)
        self.assertEqual(frontend["Gid"].split(), [str(NOBODY.pw_gid)] * 4)
        self.assertEqual(int(frontend["CapEff"], 16), 0)
        self.assertEqual(int(frontend["CapPrm"], 16), 0)
        self.assertEqual(int(frontend["CapAmb"], 16), 0)
        self.assertEqual(frontend["NoNewPrivs"], "1")
        groups = set(frontend["Groups"].split())
        self.assertNotIn("0", groups)

    def test_master_is_root_and_parent_of_front_end(self):
        master = proc_status(self.web.pid)
        self.assertEqual(master["Uid"].split()[0], "0")
        self.assertEqual(int(proc_status(self.web.frontend_pid())["PPid"]), self.web.pid)

    def test_listeners_are_inherited(self):
        frontend = listening_ports(self.web.frontend_pid())
        master = listening_ports(self.web.pid)
        self.assertIn(self.port, frontend.values())
        # Every listening socket of the front end is one the master opened (the same socket,
        # passed over), so the front end bound nothing itself.
        self.assertLessEqual(set(frontend), set(master),
                             "front end listeners %r, master %r" % (frontend, master))

    def test_admin_socket_refuses_unprivileged_users(self):
        # A process running as nobody (the front end's and workers' user) cannot use the
        # admin API.
        probe = ("import socket, sys\n"
                 "s = socket.socket(socket.AF_UNIX)\n"
                 "try:\n"
                 "    s.connect(sys.argv[1])\n"
                 "except PermissionError:\n"
                 "    sys.exit(0)\n"
                 "sys.exit(1)\n")

        def become_nobody():
            os.setgroups([])
            os.setgid(NOBODY.pw_gid)
            os.setuid(NOBODY.pw_uid)
        done = subprocess.run(["/usr/bin/python3", "-c", probe, self.web.socket_path],
                              preexec_fn=become_nobody, timeout=30)
        self.assertEqual(done.returncode, 0, "nobody could connect to the admin socket")

    def test_workers_run_as_pool_user(self):
        pool = self.web.wait_pool("app")
        for worker in pool["workers"]:
            status = proc_status(worker["pid"])
            self.assertEqual(status["Uid"].split()[0], str(NOBODY.pw_uid))
            self.assertEqual(int(status["CapEff"], 16), 0)
            self.assertEqual(status["NoNewPrivs"], "1")
            self.assertIn(worker["pid"], children_of(self.web.pid))
        response, _ = http_request(self.port, "/app/x")
        self.assertEqual(response.status, 200)

    def test_reload_adds_listener_without_dropping_connections(self):
        self.addCleanup(self.restore)
        frontend_pid = self.web.frontend_pid()
        with RawConnection(self.port) as old:
            self.assertEqual(old.exchange("GET", "/", host="x").status, 200)
            self.write_config(self.web, [self.port, self.second_port])
            status, body = self.web.reload()
            self.assertEqual(status, 200, body)
            wait_for(lambda: http_request(self.second_port, "/")[0].status == 200,
                     message="the new listener to serve")
            # The connection on the old listener lives on and is served.
            self.assertTrue(old.still_open())
            response = old.exchange("GET", "/", host="x")
            self.assertEqual((response.status, response.body), (200, b"site\n"))
        self.assertEqual(self.web.frontend_pid(), frontend_pid)
        frontend = listening_ports(frontend_pid)
        self.assertIn(self.second_port, frontend.values())
        self.assertLessEqual(set(frontend), set(listening_ports(self.web.pid)))

    def test_reload_removes_listener(self):
        self.addCleanup(self.restore)
        self.write_config(self.web, [self.port, self.second_port])
        self.assertEqual(self.web.reload()[0], 200)
        wait_for(lambda: http_request(self.second_port, "/")[0].status == 200,
                 message="the second listener to serve")
        self.write_config(self.web, [self.port])
        self.assertEqual(self.web.reload()[0], 200)

        def closed():
            try:
                socket.create_connection(("127.0.0.1", self.second_port), timeout=2).close()
            except ConnectionRefusedError:
                return True
            return False
        wait_for(closed, message="the removed listener to refuse connections")
        self.assertNotIn(self.second_port, listening_ports(self.web.pid).values())
        self.assertNotIn(self.second_port, listening_ports(self.web.frontend_pid()).values())

    def test_listener_removed_and_added_back_at_once(self):
        # Removing a listener and adding it back by the next reload, before the front end has
        # applied the first one, must not fail for "address in use".
        self.addCleanup(self.restore)
        for _ in range(20):
            self.write_config(self.web, [self.port, self.second_port])
            status, body = self.web.reload()
            self.assertEqual(status, 200, body)
            self.write_config(self.web, [self.port])
            status, body = self.web.reload()
            self.assertEqual(status, 200, body)
        self.write_config(self.web, [self.port, self.second_port])
        status, body = self.web.reload()
        self.assertEqual(status, 200, body)
        wait_for(lambda: http_request(self.second_port, "/")[0].status == 200,
                 message="the re-added listener to serve")

    def test_new_front_end_for_new_threads_drains_the_old_one(self):
        self.addCleanup(self.restore)
        old_pid = self.web.frontend_pid()
        old_started = process_start_time(old_pid)
        with RawConnection(self.port) as conn:
            self.assertEqual(conn.exchange("GET", "/", host="x").status, 200)
            self.write_config(self.web, [self.port], threads=2)
            status, body = self.web.reload()
            self.assertEqual(status, 200, body)
            new_pid = wait_for(lambda: self.web.frontend_pid() != old_pid
                               and self.web.frontend_pid(), message="a new front end")
            # New connections are served by the new front end, as nobody.
            wait_for(lambda: http_request(self.port, "/")[0].status == 200,
                     message="the new front end to serve")
            self.assertEqual(proc_status(new_pid)["Uid"].split()[0], str(NOBODY.pw_uid))
            # The old one finishes: its idle connection is closed, and it exits.
            self.assertTrue(conn.closed_by_server(), "the old front end kept its connection")
        wait_for(lambda: process_start_time(old_pid) != old_started,
                 message="the old front end to exit")


if __name__ == "__main__":
    unittest.main()
