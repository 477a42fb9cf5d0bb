#!/usr/bin/env bash
# bench_writers.sh -- `--writers 2` against `--writers 1`, for `load` and for
# `run`, in one run.
#
#   bash tests/bench/bench_writers.sh [MESSAGES] [ROUNDS]   (defaults 1000000, 3)
#
# Starts its own PostgreSQL and Kafka with the test harness, fills a
# 4-partition topic with kcat (also kept as a file), then per round, each
# into an empty database: `load` FILE with --writers 1 and with --writers 2,
# and `run` draining the topic (a new consumer group each time) with
# --writers 1 and with --writers 2; the order of the two alternates from
# round to round. Prints msgs/s of each, the ratios 2/1, and the load
# average before and after (the machine may be shared), then the medians.
# Build first:
#   cmake --preset release && cmake --build --preset release
N=${1:-1000000}
ROUNDS=${2:-3}
source "$(dirname "$0")/bench_lib.sh"
trap '[ -n "${RUN_PID:-}" ] && kill -9 "$RUN_PID" 2>/dev/null; bench_cleanup' EXIT
bench_start "$N"
echo "messages=$N partitions=4 rounds=$ROUNDS nproc=$(nproc) load average $(cut -d' ' -f1-3 /proc/loadavg)"

# pg_cpu: CPU seconds PostgreSQL has used so far: the postmaster's own and
# its reaped children's (user + system). A backend counts once it has ended
# and been reaped: read after the database is dropped (which waits for its
# sessions) and a moment.
pg_cpu() {
  sed 's/.*) //' "/proc/$(cat "$WORK/pg/pid")/stat" |
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($12 + $13 + $14 + $15) / hz }'
}

# load_into NAME WRITERS: sets RATE and PGCPU (PostgreSQL's CPU seconds).
load_into() {
  local s e c
  newdb "$1"
  c=$(pg_cpu)
  s=$(now)
  "$BIN" load --pg "$PG_ADMIN dbname=$1" --writers "$2" "$WORK/in.txt" \
    >"$WORK/$1.out" 2>"$WORK/$1.log"
  e=$(now)
  grep -q "stored=$N " "$WORK/$1.out" || { cat "$WORK/$1.out"; exit 1; }
  RATE=$(rate "$N" "$s" "$e")
  psql "$PG_ADMIN" -XAtq -c "drop database $1 with (force)" >/dev/null
  sleep 0.5
  PGCPU=$(awk -v a="$(pg_cpu)" -v b="$c" 'BEGIN { printf "%.1f", a - b }')
}

# drain NAME WRITERS: `run` drains the topic into a new database and group
# NAME; sets RATE, PGCPU and CPU (the `run` process's CPU seconds).
drain() {
  local s e c pg="$PG_ADMIN dbname=$1"
  newdb "$1"
  c=$(pg_cpu)
  s=$(now)
  "$BIN" run --brokers "$BROKERS" --topic bench --group "$1" --pg "$pg" \
    --writers "$2" --stats-interval-ms 0 --log-level warn --http-listen off \
    2>"$WORK/$1.log" &
  RUN_PID=$!
  while [ "$(psql "$pg" -XAtq -c 'select coalesce(sum(next_offset), 0) from ingest_offsets')" != "$N" ]; do
    kill -0 "$RUN_PID" || { cat "$WORK/$1.log"; exit 1; }
    sleep 0.05
  done
  e=$(now)
  CPU=$(sed 's/.*) //' "/proc/$RUN_PID/stat" |
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($12 + $13) / hz }')
  kill -TERM "$RUN_PID"
  wait "$RUN_PID"
  RUN_PID=
  [ "$(psql "$pg" -XAtq -c 'select count(*) from presences')" = "$N" ] ||
    { echo "run stored fewer than $N" >&2; exit 1; }
  RATE=$(rate "$N" "$s" "$e")
  psql "$PG_ADMIN" -XAtq -c "drop database $1 with (force)" >/dev/null
  sleep 0.5
  PGCPU=$(awk -v a="$(pg_cpu)" -v b="$c" 'BEGIN { printf "%.1f", a - b }')
}

for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then order="1 2"; else order="2 1"; fi
  for w in $order; do
    load_into "l${w}_$r" "$w"; eval "load$w=\$RATE lpg$w=\$PGCPU"
  done
  for w in $order; do
    drain "r${w}_$r" "$w"; eval "run$w=\$RATE rpg$w=\$PGCPU rcpu$w=\$CPU"
  done
  echo "round $r: load --writers 1 ${load1} msgs/s, --writers 2 ${load2} msgs/s," \
    "ratio $(ratio "$load2" "$load1"); run --writers 1 ${run1} msgs/s," \
    "--writers 2 ${run2} msgs/s, ratio $(ratio "$run2" "$run1");" \
    "load average $(cut -d' ' -f1 /proc/loadavg)"
  echo "round $r: CPU seconds: PostgreSQL during load ${lpg1} / ${lpg2}, during" \
    "run ${rpg1} / ${rpg2}; the run process ${rcpu1} / ${rcpu2} (writers 1 / 2)"
  echo "$load1" >>"$WORK/load1"; echo "$load2" >>"$WORK/load2"
  echo "$run1" >>"$WORK/run1"; echo "$run2" >>"$WORK/run2"
  ratio "$load2" "$load1" >>"$WORK/load_ratio"; echo >>"$WORK/load_ratio"
  ratio "$run2" "$run1" >>"$WORK/run_ratio"; echo >>"$WORK/run_ratio"
done
L1=$(median <"$WORK/load1"); L2=$(median <"$WORK/load2")
R1=$(median <"$WORK/run1"); R2=$(median <"$WORK/run2")
echo "median: load --writers 1 ${L1}, --writers 2 ${L2} msgs/s: ratio of medians" \
  "$(ratio "$L2" "$L1"), median per-round ratio $(grep . "$WORK/load_ratio" | median)"
echo "median: run --writers 1 ${R1}, --writers 2 ${R2} msgs/s: ratio of medians" \
  "$(ratio "$R2" "$R1"), median per-round ratio $(grep . "$WORK/run_ratio" | median)"
echo "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
