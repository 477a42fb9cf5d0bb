#!/usr/bin/env bash
# run.sh -- build the fuzz preset and fuzz the decoder for SECONDS; non-zero on crash, leak or UB
#
# Usage: bash tests/fuzz/run.sh [SECONDS]   (default 60; CI runs 60)
# New inputs go to a scratch copy of the seed corpus, never into the tree.
# A failing input is kept in build/fuzz/artifacts/ and its path printed;
# replay it with: build/fuzz/tests/fuzz/fuzz_decode <that file>
set -euo pipefail

secs=${1:-60}
case $secs in
'' | *[!0-9]*)
    echo "usage: $0 [SECONDS]" >&2
    exit 2
    ;;
esac

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz --target fuzz_decode >/dev/null

fuzzer=build/fuzz/tests/fuzz/fuzz_decode
artifacts=build/fuzz/artifacts
mkdir -p "$artifacts"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp tests/fuzz/corpus/decode/* "$scratch"/

# UBSan recovers by default: make any report fatal so that it fails the run.
export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1

log=$artifacts/fuzz_decode.log
set +e
"$fuzzer" "$scratch" \
    -max_total_time="$secs" \
    -detect_leaks=1 \
    -timeout=10 \
    -rss_limit_mb=2048 \
    -max_len=8192 \
    -dict=tests/fuzz/decode.dict \
    -artifact_prefix="$artifacts/" \
    -print_final_stats=1 >"$log" 2>&1
status=$?
set -e

grep -E "INITED|DONE|Done [0-9]+ runs|stat::number_of_executed_units" "$log" || true
if [ "$status" -ne 0 ]; then
    tail -n 60 "$log" >&2
    echo "fuzz_decode FAILED (exit $status); full log: $log" >&2
    exit 1
fi
echo "fuzz_decode passed: $secs s without crash, leak or undefined behaviour"
