#!/usr/bin/env bash
# Failover of a site behind a floating address: clusweb against keepalived
# (VRRP) with nginx, on the same testbed of network namespaces, in one run.
#
# For each system: SIGKILL of every process of the owning node, then the time
# to the first 2xx answer at the floating address from another node (TRIALS
# trials); the owner's link cut, then the owner isolated by the switch (link
# up), each for CUT_SECONDS: were two nodes serving at once, and how long was
# the address unreachable after the heal. For clusweb also a graceful move and
# an in-place restart of a killed pool worker. bench/README.md has the setup.
#
# Environment:
#   TRIALS=5        failover trials per system (and moves, worker restarts)
#   CUT_SECONDS=8   how long each partition lasts
#   HEAL_WINDOW=10  seconds watched after each heal
#   ONLY=           space-separated subset of: clusweb keepalived keepalived-fast
#   BUILD=1         0 = use the clusweb binary already in build/release
#   CLUSWEB=        path of another clusweb binary to measure
#
# Run as root: it creates network namespaces (names cw<pid>-*) and removes
# them at the end. Traffic stays inside them.
set -euo pipefail

TRIALS=${TRIALS:-5}
CUT_SECONDS=${CUT_SECONDS:-8}
HEAL_WINDOW=${HEAL_WINDOW:-10}
ONLY=${ONLY:-}
BUILD=${BUILD:-1}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
clusweb_bin=${CLUSWEB:-$repo/build/release/app/clusweb/clusweb}

fail() {
  echo "failover_vs_keepalived: $*" >&2
  exit 1
}

[[ $TRIALS =~ ^[1-9][0-9]*$ ]] || fail "TRIALS must be a positive integer, got '$TRIALS'"
[[ $CUT_SECONDS =~ ^[1-9][0-9]*$ ]] || fail "CUT_SECONDS must be a positive integer, got '$CUT_SECONDS'"
[[ $HEAL_WINDOW =~ ^[1-9][0-9]*$ ]] || fail "HEAL_WINDOW must be a positive integer, got '$HEAL_WINDOW'"
[[ $BUILD == 0 || $BUILD == 1 ]] || fail "BUILD must be 0 or 1, got '$BUILD'"
for system in $ONLY; do
  [[ $system == clusweb || $system == keepalived || $system == keepalived-fast ]] ||
    fail "ONLY: unknown system '$system' (clusweb, keepalived, keepalived-fast)"
done
[[ $(id -u) == 0 ]] || fail "run as root (it creates network namespaces)"
for tool in ip bridge curl python3 etcd etcdctl unshare; do
  command -v "$tool" >/dev/null || fail "$tool not found (scripts/install-deps.sh installs it)"
done
if [[ -z $ONLY || $ONLY == *keepalived* ]]; then
  command -v keepalived >/dev/null || fail "keepalived not found (package keepalived)"
  [[ -x /usr/sbin/nginx ]] || fail "/usr/sbin/nginx not found (package nginx-light)"
fi

if [[ $BUILD == 1 && -z ${CLUSWEB:-} ]]; then
  echo "failover_vs_keepalived: building the release binary"
  cmake --preset release >/dev/null
  cmake --build --preset release --target clusweb -j2 >/dev/null
fi
[[ -x $clusweb_bin ]] || fail "$clusweb_bin not found (BUILD=1 builds it)"

export TRIALS CUT_SECONDS HEAL_WINDOW ONLY
export CLUSWEB_BIN=$clusweb_bin
exec python3 "$repo/bench/failover/failover_bench.py"
