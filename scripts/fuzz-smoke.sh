#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz preset: clang-14, ASan + UBSan) and fuzzes the request path
# for FUZZ_SECONDS (default 60), starting from the seed corpus in fuzz/corpus/request. CI runs
# this. Exits non-zero when the build fails or the fuzzer finds a crash, leak or timeout; the
# reproducer is kept in FUZZ_ARTIFACTS (default build/fuzz/artifacts) and its path printed.
# The seed corpus is never modified: new inputs go to a temporary copy.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"
artifacts="${FUZZ_ARTIFACTS:-build/fuzz/artifacts}"
binary=build/fuzz/fuzz/fuzz_request
seeds=fuzz/corpus/request

build_start=$(date +%s)
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz --target fuzz_request
echo "fuzz-smoke: build took $(($(date +%s) - build_start)) s"

work="$(mktemp -d "${TMPDIR:-/tmp}/clusweb-fuzz-smoke.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$work/tmp" "$artifacts"
cp "$seeds"/* "$work/corpus/"
before="$(find "$artifacts" -type f | sort)"

# The target creates its content tree under TMPDIR; a crash skips its clean-up, the trap does not.
status=0
TMPDIR="$work/tmp" \
  ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}" \
  UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
  "$binary" -max_total_time="$seconds" -max_len=4096 -timeout=10 -dict=fuzz/request.dict \
  -print_final_stats=1 -artifact_prefix="$artifacts/" "$work/corpus" "$seeds" || status=$?

if [ "$status" -ne 0 ]; then
  echo "fuzz-smoke: fuzz_request failed with status $status" >&2
  new="$(comm -13 <(echo "$before") <(find "$artifacts" -type f | sort))"
  for reproducer in $new; do
    echo "fuzz-smoke: reproducer: $reproducer" >&2
    echo "fuzz-smoke: reproduce with: $binary $reproducer" >&2
  done
  exit 1
fi
echo "fuzz-smoke: no crash in ${seconds} s ($(find "$work/corpus" -type f | wc -l) inputs in corpus)"
