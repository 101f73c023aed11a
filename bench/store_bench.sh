#!/usr/bin/env bash
# Builds the release preset and runs store_bench: the coordination store's put,
# put-to-watch and keepalive latencies, compare-and-swap throughput and gRPC
# calls per operation, for MemoryStore and for EtcdStore on 1- and 3-member
# etcd clusters it starts on 127.0.0.1 (data on tmpfs), with gRPC's
# synchronous stub as the peer.
#
# Environment: BUILD=0 uses the existing build; arguments go to store_bench
# (--ops N, --seconds S, --backends memory,memory-fsync,etcd-1,etcd-3).
# Run as root (the etcd harness mounts a tmpfs when /dev/shm is not one).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-1}
[[ $BUILD == 0 || $BUILD == 1 ]] || { echo "store_bench: BUILD must be 0 or 1" >&2; exit 1; }
command -v etcd >/dev/null || { echo "store_bench: etcd not found (scripts/install-deps.sh installs etcd-server)" >&2; exit 1; }

if ((BUILD)); then
  echo "store_bench: building the release preset" >&2
  (cd "$repo" && cmake --preset release >/dev/null && cmake --build --preset release --target store_bench)
fi
echo "host: $(nproc) CPUs, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg), $(etcd --version | head -n1)"
exec "$repo/build/release/bench/store_bench" "$@"
