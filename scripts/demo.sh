#!/usr/bin/env bash
# A three-node clusweb cluster on this machine, shown at work: network namespaces for three
# nodes and a client, a three-member etcd, an agent and a web service on every node, a group
# with a floating address and the example site; the client reaches the site, the serving node
# is killed, the client reaches the site again from another node. Everything is removed at the
# end. Run as root after building (CLUSWEB_BIN overrides the binary).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export CLUSWEB_BIN="${CLUSWEB_BIN:-$root/build/release/app/clusweb/clusweb}"
exec python3 "$root/tests/system/demo.py" "$@"
