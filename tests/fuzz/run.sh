#!/usr/bin/env bash
# run.sh -- build the fuzz preset and fuzz the decoder, the --config file
# parser and load's line reader for SECONDS in all; non-zero on crash, leak
# or UB
#
# Usage: bash tests/fuzz/run.sh [SECONDS]   (default 60; CI runs 60)
# The time is split: half to the decoder (the most exposed: every Kafka
# message), a quarter to each of the others (at least 1 s each).
# New inputs go to a scratch copy of each seed corpus, never into the tree.
# A failing input is kept in build/fuzz/artifacts/<target>/ and its path
# printed; replay it with: build/fuzz/tests/fuzz/<target> <that file>
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
cmake --build --preset fuzz --target fuzz_decode fuzz_config fuzz_lines >/dev/null

# UBSan recovers by default: make any report fatal so that it fails the run.
export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# fuzz TARGET CORPUS SECONDS [libFuzzer options…]
fuzz() {
    local target=$1 corpus=$2 t=$3
    shift 3
    local artifacts=build/fuzz/artifacts/$target log status
    mkdir -p "$artifacts" "$scratch/$target"
    cp "tests/fuzz/corpus/$corpus"/* "$scratch/$target"/
    log=$artifacts/$target.log
    set +e
    "build/fuzz/tests/fuzz/$target" "$scratch/$target" \
        -max_total_time="$t" \
        -detect_leaks=1 \
        -timeout=10 \
        -rss_limit_mb=2048 \
        -artifact_prefix="$artifacts/" \
        -print_final_stats=1 "$@" >"$log" 2>&1
    status=$?
    set -e
    grep -E "INITED|DONE|Done [0-9]+ runs|stat::number_of_executed_units" "$log" || true
    if [ "$status" -ne 0 ]; then
        tail -n 60 "$log" >&2
        echo "$target FAILED (exit $status); full log: $log" >&2
        return 1
    fi
    echo "$target passed: $t s without crash, leak or undefined behaviour"
}

quarter=$((secs / 4 > 0 ? secs / 4 : 1))
half=$((secs - 2 * quarter > 0 ? secs - 2 * quarter : 1))
failed=0
fuzz fuzz_decode decode "$half" -max_len=8192 -dict=tests/fuzz/decode.dict || failed=1
fuzz fuzz_config config "$quarter" -max_len=4096 -dict=tests/fuzz/config.dict || failed=1
fuzz fuzz_lines lines "$quarter" -max_len=512 || failed=1
exit "$failed"
