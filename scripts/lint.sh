#!/usr/bin/env bash
# Checks every C++ file against .clang-format and the library sources (not the
# tests) against the curated checks in .clang-tidy. Needs a configured build
# directory with compile_commands.json (default: build/ci).
#
#   scripts/lint.sh [BUILD_DIR]
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$repo/build/ci}
cd "$repo"

[[ -f $build/compile_commands.json ]] ||
  { echo "lint: $build/compile_commands.json not found (configure the build first)" >&2; exit 1; }

mapfile -t all < <(git ls-files '*.cc' '*.h')
echo "lint: clang-format on ${#all[@]} files"
clang-format-14 --dry-run --Werror "${all[@]}"

# Generated code (protobuf) is not ours; tests are formatted but not tidied.
mapfile -t sources < <(git ls-files 'src/*.cc' 'app/*.cc' | grep -v '_test\.cc$')
echo "lint: clang-tidy on ${#sources[@]} sources"
run-clang-tidy-14 -quiet -p "$build" -j "$(nproc)" -extra-arg=-Wno-unknown-warning-option \
  -header-filter="$repo/src/.*" "${sources[@]/#/$repo/}" >"$build/clang-tidy.log" 2>&1 || {
  grep -E "(warning|error):" "$build/clang-tidy.log" | sort -u >&2
  echo "lint: clang-tidy found problems (full output: $build/clang-tidy.log)" >&2
  exit 1
}
echo "lint: clean"
