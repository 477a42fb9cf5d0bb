#!/usr/bin/env bash
# bench_run.sh -- `presence-ingest run` draining a pre-filled topic, against
# `load` of the same messages from a file (the writer's ceiling), in one run.
#
#   bash tests/bench/bench_run.sh [MESSAGES] [ROUNDS]     (defaults 1000000, 3)
#
# Starts its own PostgreSQL and Kafka with the test harness, fills a
# 4-partition topic with kcat, then per round: `load` FILE into an empty
# database, and `run` draining the topic into another empty database (a new
# consumer group each round). Prints msgs/s for both, the ratio, and the
# peak RSS of `run` (VmHWM), then the medians. Build first:
#   cmake --preset release && cmake --build --preset release
set -euo pipefail

N=${1:-1000000}
ROUNDS=${2:-3}
root=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${PI_BINARY:-$root/build/release/cmd/presence-ingest/presence-ingest}
GEN=${PI_GEN:-$root/build/release/tests/pi-gen}
SUPPORT=$root/tests/support
WORK=$(mktemp -d /tmp/bench_run.XXXXXX)

[ -x "$BIN" ] && [ -x "$GEN" ] || {
  echo "build the release preset first (missing $BIN or $GEN)" >&2
  exit 2
}
cleanup() {
  [ -n "${RUN_PID:-}" ] && kill -9 "$RUN_PID" 2>/dev/null || true
  bash "$SUPPORT/kafka.sh" stop "$WORK/kafka" >/dev/null 2>&1 || true
  bash "$SUPPORT/pg.sh" stop "$WORK/pg" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

now() { date +%s.%N; }
rate() { awk -v n="$1" -v s="$2" -v e="$3" 'BEGIN { printf "%.0f", n / (e - s) }'; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

bash "$SUPPORT/pg.sh" start "$WORK/pg" >/dev/null
bash "$SUPPORT/kafka.sh" start "$WORK/kafka" >/dev/null
PG_ADMIN=$(cat "$WORK/pg/conninfo")
BROKERS=$(cat "$WORK/kafka/brokers")
bash "$SUPPORT/kafka.sh" topic "$WORK/kafka" bench 4 >/dev/null
"$GEN" "$N" >"$WORK/in.txt"
kcat -P -b "$BROKERS" -t bench -X sticky.partitioning.linger.ms=0 -l "$WORK/in.txt"
echo "messages=$N bytes=$(stat -c %s "$WORK/in.txt") partitions=4 rounds=$ROUNDS"

newdb() {
  psql "$PG_ADMIN" -XAtq -c "create database $1" >/dev/null
  "$BIN" migrate --pg "$PG_ADMIN dbname=$1" >/dev/null
}

for r in $(seq "$ROUNDS"); do
  newdb "load_$r"
  s=$(now)
  "$BIN" load --pg "$PG_ADMIN dbname=load_$r" "$WORK/in.txt" >/dev/null
  e=$(now)
  load_rate=$(rate "$N" "$s" "$e")

  newdb "run_$r"
  PG="$PG_ADMIN dbname=run_$r"
  s=$(now)
  "$BIN" run --brokers "$BROKERS" --topic bench --group "bench_$r" --pg "$PG" \
    --stats-interval-ms 0 --log-level warn 2>"$WORK/run_$r.log" &
  RUN_PID=$!
  hwm=0
  while [ "$(psql "$PG" -XAtq -c 'select coalesce(sum(next_offset), 0) from ingest_offsets')" != "$N" ]; do
    kill -0 "$RUN_PID" || { cat "$WORK/run_$r.log"; exit 1; }
    h=$(awk '/VmHWM/ { print $2 }' "/proc/$RUN_PID/status")
    [ "${h:-0}" -gt "$hwm" ] && hwm=$h
    sleep 0.05
  done
  e=$(now)
  h=$(awk '/VmHWM/ { print $2 }' "/proc/$RUN_PID/status")
  [ "${h:-0}" -gt "$hwm" ] && hwm=$h
  kill -TERM "$RUN_PID"
  wait "$RUN_PID"
  RUN_PID=
  run_rate=$(rate "$N" "$s" "$e")
  rows=$(psql "$PG" -XAtq -c 'select count(*) from presences')
  [ "$rows" = "$N" ] || { echo "run stored $rows of $N" >&2; exit 1; }
  echo "round $r: load ${load_rate} msgs/s, run ${run_rate} msgs/s," \
    "ratio $(awk -v a="$run_rate" -v b="$load_rate" 'BEGIN { printf "%.2f", a / b }')," \
    "run peak RSS $((hwm / 1024)) MiB"
  echo "$load_rate" >>"$WORK/load"
  echo "$run_rate" >>"$WORK/run"
  echo "$hwm" >>"$WORK/hwm"
  psql "$PG_ADMIN" -XAtq -c "drop database load_$r" -c "drop database run_$r" >/dev/null
done
L=$(median <"$WORK/load")
R=$(median <"$WORK/run")
echo "median: load ${L} msgs/s, run ${R} msgs/s, run/load $(awk -v a="$R" -v b="$L" 'BEGIN { printf "%.2f", a / b }')," \
  "run peak RSS $(( $(sort -n "$WORK/hwm" | tail -n 1) / 1024 )) MiB (max)"
