#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz preset: clang-14, ASan + UBSan) and fuzzes each for
# FUZZ_SECONDS (default 60): fuzz_request (the request path) from fuzz/corpus/request and
# fuzz_manifest (the manifest loader) from fuzz/corpus/manifest. CI runs this. Exits non-zero
# when the build fails or a fuzzer finds a crash, leak, hang or runaway memory; the reproducer
# is kept in FUZZ_ARTIFACTS (default build/fuzz/artifacts) and its path printed.
# The seed corpora are never modified: new inputs go to a temporary copy.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"
artifacts="${FUZZ_ARTIFACTS:-build/fuzz/artifacts}"

build_start=$(date +%s)
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz --target fuzz_request fuzz_manifest
echo "fuzz-smoke: build took $(($(date +%s) - build_start)) s"

work="$(mktemp -d "${TMPDIR:-/tmp}/clusweb-fuzz-smoke.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$artifacts"

# fuzz NAME SEEDS [libFuzzer options...]
fuzz() {
  local name=$1 seeds=$2
  shift 2
  local binary=build/fuzz/fuzz/fuzz_$name
  mkdir -p "$work/$name/corpus" "$work/$name/tmp"
  cp "$seeds"/* "$work/$name/corpus/"
  local before status=0
  before="$(find "$artifacts" -type f | sort)"
  # The request target creates its content tree under TMPDIR; a crash skips its clean-up, the
  # trap does not.
  TMPDIR="$work/$name/tmp" \
    ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}" \
    UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
    "$binary" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 "$@" \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$work/$name/corpus" "$seeds" ||
    status=$?
  if [ "$status" -ne 0 ]; then
    echo "fuzz-smoke: fuzz_$name failed with status $status" >&2
    local new reproducer
    new="$(comm -13 <(echo "$before") <(find "$artifacts" -type f | sort))"
    for reproducer in $new; do
      echo "fuzz-smoke: reproducer: $reproducer" >&2
      echo "fuzz-smoke: reproduce with: $binary $reproducer" >&2
    done
    exit 1
  fi
  echo "fuzz-smoke: fuzz_$name: no crash in ${seconds} s" \
    "($(find "$work/$name/corpus" -type f | wc -l) inputs in corpus)"
}

fuzz request fuzz/corpus/request -dict=fuzz/request.dict
fuzz manifest fuzz/corpus/manifest
