# bench_lib.sh -- shared steps of the benchmark scripts (sourced): their own
# PostgreSQL and Kafka from the test harness, a 4-partition topic `bench`
# filled by kcat with N generated presences, and figures helpers.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${PI_BINARY:-$root/build/release/cmd/presence-ingest/presence-ingest}
GEN=${PI_GEN:-$root/build/release/tests/pi-gen}
SUPPORT=$root/tests/support
WORK=$(mktemp -d /tmp/bench.XXXXXX)

[ -x "$BIN" ] && [ -x "$GEN" ] || {
  echo "build the release preset first (missing $BIN or $GEN)" >&2
  exit 2
}
bench_cleanup() {
  bash "$SUPPORT/kafka.sh" stop "$WORK/kafka" >/dev/null 2>&1 || true
  bash "$SUPPORT/pg.sh" stop "$WORK/pg" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap bench_cleanup EXIT

now() { date +%s.%N; }
rate() { awk -v n="$1" -v s="$2" -v e="$3" 'BEGIN { printf "%.0f", n / (e - s) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# bench_start N [PI-GEN ARGS…]: services up, topic `bench` (4 partitions)
# holding N messages (pi-gen N ARGS…), also in $WORK/in.txt. With
# BENCH_HISTORY=H (H > 0), pi-gen makes H + N messages instead (pass a
# COUNT of H + N), the first H go to $WORK/history.txt (the past of the same
# fleet, for the caller to load) and the rest to the topic.
bench_start() {
  bash "$SUPPORT/pg.sh" start "$WORK/pg" >/dev/null
  bash "$SUPPORT/kafka.sh" start "$WORK/kafka" >/dev/null
  PG_ADMIN=$(cat "$WORK/pg/conninfo")
  BROKERS=$(cat "$WORK/kafka/brokers")
  bash "$SUPPORT/kafka.sh" topic "$WORK/kafka" bench 4 >/dev/null
  if [ "${BENCH_HISTORY:-0}" -gt 0 ]; then
    "$GEN" "$@" >"$WORK/all.txt"
    head -n "$BENCH_HISTORY" "$WORK/all.txt" >"$WORK/history.txt"
    tail -n +"$((BENCH_HISTORY + 1))" "$WORK/all.txt" >"$WORK/in.txt"
    rm "$WORK/all.txt"
  else
    "$GEN" "$@" >"$WORK/in.txt"
  fi
  kcat -P -b "$BROKERS" -t bench -X sticky.partitioning.linger.ms=0 -l "$WORK/in.txt"
}

newdb() {
  psql "$PG_ADMIN" -XAtq -c "create database $1" >/dev/null
  "$BIN" migrate --pg "$PG_ADMIN dbname=$1" >/dev/null
}
