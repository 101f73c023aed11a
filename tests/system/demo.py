"""`scripts/demo.sh`: a three-node cluster on this machine, shown at work.

It builds three node namespaces, a client namespace and a three-member etcd (netns_cluster.py,
the same testbed as the namespace tests), starts an agent with its web service on every node,
creates the group "shop" (a floating address and a site whose page names the node serving it,
with an application pool), shows the
client reaching the site, kills the node that serves it and shows the client reaching the site
again from another node. Everything it created is removed at the end, also after an error or
Ctrl-C. Root only; traffic stays inside the namespaces it created.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import BIN, WAIT_TIMEOUT, wait_for  # noqa: E402
from netns_cluster import NODES, TTL, NetnsCluster  # noqa: E402

STARTED = time.monotonic()


def say(text):
    print("[%5.1fs] %s" % (time.monotonic() - STARTED, text), flush=True)


def main():
    if os.geteuid() != 0:
        print("demo: run as root (it creates network namespaces)", file=sys.stderr)
        return 2
    if not os.access(BIN, os.X_OK):
        print("demo: no clusweb binary at %s (build it, or set CLUSWEB_BIN)" % BIN,
              file=sys.stderr)
        return 2
    print("clusweb demo: three nodes on this machine, one site behind a floating address")
    # Its own subnet, so it can run beside the namespace tests' networks.
    cluster = NetnsCluster(ttl=TTL, subnet=78)
    try:
        say("starting: namespaces for %s, a client and a switch; etcd as 3 members; an agent "
            "and a web service on every node" % ", ".join(NODES))
        cluster.start()
        net, vip = cluster.net, cluster.vip
        say("nodes %s; etcd %s" % (", ".join("%s %s" % (n, net.ip_of(n)) for n in NODES),
                                   cluster.etcd.endpoint))
        n2 = cluster.agents["n2"]

        def online():
            # The site answers before its owner's report of it has reached every node.
            seen = n2.group("shop")
            return seen if seen and seen["state"] == "Online" else None
        status = wait_for(online, WAIT_TIMEOUT, 'group "shop" reported Online')
        say('group "shop": %s on %s (floating address %s/24, website "shop", pool '
            '"shop-pool")' % (status["state"], status["owner"], vip))
        who = cluster.ask()
        say("client: GET http://%s:8080/ -> answered by %s" % (vip, who))

        owner = status["owner"]
        before = max([e["seq"] for e in n2.api("GET", "/v1/events?after=0&limit=1000")["events"]]
                     or [0])
        say("killing node %s: every process in it (agent, web service, workers)" % owner)
        killed_at = time.monotonic()
        cluster.agents[owner].kill_node()
        failed = 0
        deadline = killed_at + WAIT_TIMEOUT + 2 * TTL
        while True:
            answer = cluster.ask(timeout=0.2)
            if answer and answer != owner:
                break
            failed += 1
            if time.monotonic() > deadline:
                raise RuntimeError("no other node answered within %.0f s"
                                   % (deadline - killed_at))
            time.sleep(0.05)
        took = time.monotonic() - killed_at
        say("client: GET http://%s:8080/ -> answered by %s, %.1f s after the kill "
            "(%d requests failed meanwhile)" % (vip, answer, took, failed))
        via = cluster.agents[answer]
        say("what the cluster did (its event log):")
        events = via.api("GET", "/v1/events?after=%d&limit=1000" % before)["events"]
        for event in events:
            if event.get("group") == "shop" and not event.get("resource"):
                print("          %-3s %-9s %s" % (event["node"], event["what"], event["why"]))
        nodes = {n["name"]: n["up"] for n in via.cluster()["nodes"]}
        say("nodes up: %s" % ", ".join(sorted(n for n, up in nodes.items() if up)))
        return 0
    finally:
        say("cleaning up: agents, etcd, namespaces")
        cluster.cleanup()
        say("done")


if __name__ == "__main__":
    sys.exit(main())
