"""A small network of namespaces for multi-host cluster tests.

    net = Network(nodes=["n1", "n2", "n3"])   # creates everything, names prefixed cw<pid>-
    net.run("n1", ["ip", "addr"])             # a command inside node n1's namespace
    net.cut("n2") / net.heal("n2")            # unplug / plug n2's cable
    net.isolate("n2") / net.rejoin("n2")      # the switch drops n2's frames; links stay up
    net.cleanup()                             # deletes every namespace it created

Layout: a "switch" namespace with a bridge; every node, the client and any extra host (etcd
members) get a namespace with one interface `eth0` whose peer is a port of the bridge.
Addresses are 10.<subnet>.0.0/24: the switch itself holds .1, extra hosts .2, .3, ..., nodes
.11, .12, ..., the client .100. Traffic stays inside these namespaces.
"""

import contextlib
import os
import subprocess


def sh(*argv, check=True):
    return subprocess.run(list(argv), check=check, capture_output=True, text=True)


class Network:
    def __init__(self, nodes, subnet=None, extra_hosts=()):
        self.prefix = "cw%d-" % os.getpid()
        self.subnet = subnet if subnet is not None else 77
        self.nodes = list(nodes)
        # More hosts on the switch (e.g. etcd members), at .2, .3, ...
        self.extra_hosts = list(extra_hosts)
        self.namespaces = []
        self.addresses = {}
        try:
            self._build()
        except BaseException:
            self.cleanup()
            raise

    def ns(self, name):
        return self.prefix + name

    def ip_of(self, name):
        return self.addresses[name]

    def address(self, last):
        return "10.%d.0.%d" % (self.subnet, last)

    def _add_namespace(self, name):
        sh("ip", "netns", "add", self.ns(name))
        self.namespaces.append(self.ns(name))
        sh("ip", "-n", self.ns(name), "link", "set", "lo", "up")

    def _build(self):
        self._add_namespace("switch")
        sw = self.ns("switch")
        sh("ip", "-n", sw, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", sw, "addr", "add", self.address(1) + "/24", "dev", "br0")
        sh("ip", "-n", sw, "link", "set", "br0", "up")
        self.addresses["switch"] = self.address(1)
        hosts = ([(name, 11 + i) for i, name in enumerate(self.nodes)] + [("client", 100)] +
                 [(name, 2 + i) for i, name in enumerate(self.extra_hosts)])
        for index, (name, last) in enumerate(hosts):
            self._add_namespace(name)
            port = "p%d" % index
            # Created in the switch namespace, then one end moved into the host's namespace.
            sh("ip", "-n", sw, "link", "add", port, "type", "veth", "peer", "name", "eth0",
               "netns", self.ns(name))
            sh("ip", "-n", sw, "link", "set", port, "master", "br0", "up")
            sh("ip", "-n", self.ns(name), "addr", "add", self.address(last) + "/24", "dev",
               "eth0")
            sh("ip", "-n", self.ns(name), "link", "set", "eth0", "up")
            self.addresses[name] = self.address(last)
        self.ports = {name: "p%d" % index for index, (name, _) in enumerate(hosts)}

    def run(self, name, argv, check=True, **kwargs):
        return subprocess.run(["ip", "netns", "exec", self.ns(name), *argv], check=check,
                              capture_output=True, text=True, **kwargs)

    def popen(self, name, argv, **kwargs):
        return subprocess.Popen(["ip", "netns", "exec", self.ns(name), *argv], **kwargs)

    def cut(self, name):
        """Unplugs `name` from the switch (the node keeps its link up: only the far end is
        down, as with a broken switch port)."""
        sh("ip", "-n", self.ns("switch"), "link", "set", self.ports[name], "down")

    def heal(self, name):
        sh("ip", "-n", self.ns("switch"), "link", "set", self.ports[name], "up")

    def isolate(self, name):
        """The switch stops forwarding `name`'s frames, both ways, while every link stays up
        (carrier and all): a partition the node cannot see locally."""
        self._port_state(name, "0")  # disabled

    def rejoin(self, name):
        self._port_state(name, "3")  # forwarding

    def _port_state(self, name, state):
        sh("ip", "netns", "exec", self.ns("switch"), "bridge", "link", "set", "dev",
           self.ports[name], "state", state)

    def has_address(self, name, address):
        out = sh("ip", "-n", self.ns(name), "-o", "addr", "show", "dev", "eth0").stdout
        return (" %s/" % address) in out

    def cleanup(self):
        for namespace in reversed(self.namespaces):
            with contextlib.suppress(Exception):
                # Anything still running in it is killed first, by pid.
                pids = sh("ip", "netns", "pids", namespace, check=False).stdout.split()
                for pid in pids:
                    with contextlib.suppress(OSError):
                        os.kill(int(pid), 9)
                sh("ip", "netns", "del", namespace, check=False)
        self.namespaces = []
