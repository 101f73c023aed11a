#!/usr/bin/env bash
# How fast a change of the web configuration shared by every node reaches all of them:
# clusweb's `clusweb apply` (the shared configuration in etcd, followed by every agent)
# against a push script that copies nginx's site file to every node and runs
# `nginx -s reload` on each, on one testbed of network namespaces, change by change
# alternating. Per change: the time from issuing it until the client gets the new page from
# every node's own address. bench/README.md has the setup.
#
# Environment:
#   CHANGES=100   changes per system
#   ONLY=         one of: clusweb nginx-push (measure that one alone, no ratios)
#   BUILD=1       0 = use the clusweb binary already in build/release
#   CLUSWEB=      path of another clusweb binary to measure
#
# Run as root: it creates network namespaces (names cw<pid>-*) and removes them at the end.
# Traffic stays inside them.
set -euo pipefail

CHANGES=${CHANGES:-100}
ONLY=${ONLY:-}
BUILD=${BUILD:-1}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
clusweb_bin=${CLUSWEB:-$repo/build/release/app/clusweb/clusweb}

fail() {
  echo "config_propagation: $*" >&2
  exit 1
}

[[ $CHANGES =~ ^[1-9][0-9]*$ ]] || fail "CHANGES must be a positive integer, got '$CHANGES'"
[[ $BUILD == 0 || $BUILD == 1 ]] || fail "BUILD must be 0 or 1, got '$BUILD'"
for system in $ONLY; do
  [[ $system == clusweb || $system == nginx-push ]] ||
    fail "ONLY: unknown system '$system' (clusweb, nginx-push)"
done
[[ $(id -u) == 0 ]] || fail "run as root (it creates network namespaces)"
for tool in ip curl python3 etcd etcdctl unshare cp; do
  command -v "$tool" >/dev/null || fail "$tool not found (scripts/install-deps.sh installs it)"
done
[[ -x /usr/sbin/nginx ]] || fail "/usr/sbin/nginx not found (package nginx-light)"

if [[ $BUILD == 1 && -z ${CLUSWEB:-} ]]; then
  echo "config_propagation: building the release binary"
  cmake --preset release >/dev/null
  cmake --build --preset release --target clusweb -j2 >/dev/null
fi
[[ -x $clusweb_bin ]] || fail "$clusweb_bin not found (BUILD=1 builds it)"

export CHANGES ONLY
export CLUSWEB_BIN=$clusweb_bin
exec python3 "$repo/bench/config/propagation_bench.py"
