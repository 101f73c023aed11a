#!/usr/bin/env bash
# Installs every Debian 12 package clusweb needs to build, test and benchmark.
# Run as root. Package names are exact; Boost comes from the 1.81 packages
# (libboost-dev is 1.74 and conflicts with them).
set -euo pipefail

packages=(
  # toolchain
  g++ cmake ninja-build pkg-config git
  clang-14 libclang-rt-14-dev
  clang-format-14 clang-tidy-14
  # libraries
  libboost1.81-dev
  libssl-dev
  libsodium-dev
  libyaml-cpp-dev
  nlohmann-json3-dev
  libcli11-dev
  libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev
  # the coordination store: etcd v3 over gRPC
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  # floating addresses: netlink
  libnl-3-dev libnl-route-3-dev
  # ocf resource agents' meta-data
  libpugixml-dev
  # system tests
  curl python3 openssl iproute2 procps e2fsprogs kmod
  resource-agents
  etcd-server etcd-client
  # benchmarks
  nginx-light wrk util-linux keepalived
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: run as root (apt-get needs it)" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all ${#packages[@]} packages present"
fi
