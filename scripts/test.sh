#!/usr/bin/env bash
# Builds clusweb, checks formatting and clang-tidy, and runs every test: unit
# and system tests (ctest) in the regular build, again under AddressSanitizer + UndefinedBehaviorSanitizer,
# and a short libFuzzer run. Run as root (system tests bind ports, switch
# users and start daemons). Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s (%s)\n' "$1" "$(date +%H:%M:%S)"; }

step "build (ci preset: -O2, -Werror)"
cmake --preset ci >/dev/null
cmake --build --preset ci

step "lint (clang-format, clang-tidy)"
scripts/lint.sh build/ci

step "tests (ci preset)"
ctest --preset ci --output-on-failure --timeout 600 -j 2

step "build (asan+ubsan preset)"
cmake --preset asan >/dev/null
cmake --build --preset asan

step "tests (asan+ubsan preset)"
# The cluster simulation runs 1000 schedules in the ci build; 50 here.
CLUSWEB_SIMULATION_SCHEDULES_PER_BATCH=5 \
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --preset asan --output-on-failure --timeout 900 -j 2

if [ -x scripts/fuzz-smoke.sh ]; then
  step "fuzz smoke run"
  FUZZ_SECONDS="${FUZZ_SECONDS:-30}" scripts/fuzz-smoke.sh
fi

step "all tests passed"
