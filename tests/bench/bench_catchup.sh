#!/usr/bin/env bash
# bench_catchup.sh -- the rollup catch-up's share of PostgreSQL's CPU on
# the hot path (issue 22): `run` drains a pre-filled topic (bench_lib.sh:
# N pi-gen presences, 4 partitions) into an empty database twice per round,
# with the catch-up on (--rollup-interval-ms 1000, the default) and off (0),
# alternating which goes first; the CPU of the whole PostgreSQL cluster
# (postmaster, its live children, and the children it reaped) is read
# before and after each drain, and after a final `SELECT
# presence_rollup_refresh()` that folds what is left. The catch-up's share
# is (on - off) / on, with the final fold counted in both: the work done
# beside the writers plus what was left, against the writers alone plus
# all of it done at once. Medians of ROUNDS. Arguments after ROUNDS go to
# pi-gen: its default shape gives almost every presence an asset of its own
# (the rollup's worst case: each event makes an asset's rows); `--shape
# fleet --assets 20000` is a fleet whose assets connect and disconnect over
# and over, as a live deployment's do. With BENCH_HISTORY=H, the fleet's
# first H presences (pi-gen makes H + MESSAGES) are its past: loaded with
# `load` and folded once into a template database that every drain starts
# from, so that the drains measure the catch-up of a fleet the rollup
# already knows (day 365's steady state) rather than its first fold.
#
#   [BENCH_HISTORY=H] bash tests/bench/bench_catchup.sh [MESSAGES] [ROUNDS]
#                                     [PI-GEN ARGS…]       (1000000 3)
N=${1:-1000000}
ROUNDS=${2:-3}
shift $(($# < 2 ? $# : 2))
source "$(dirname "$0")/bench_lib.sh"
BIN=${PI_BINARY:-$BIN}
trap '[ -n "${RUN_PID:-}" ] && kill -9 "$RUN_PID" 2>/dev/null; bench_cleanup' EXIT
bench_start "$((N + ${BENCH_HISTORY:-0}))" "$@"
N=$(wc -l <"$WORK/in.txt")
TEMPLATE=
if [ "${BENCH_HISTORY:-0}" -gt 0 ]; then
  newdb history
  "$BIN" load --pg "$PG_ADMIN dbname=history" --log-level warn <"$WORK/history.txt" >/dev/null
  psql "$PG_ADMIN dbname=history" -XAtq -c 'select presence_rollup_refresh()' -c 'vacuum analyze' >/dev/null
  TEMPLATE=history
fi
echo "messages=$N history=${BENCH_HISTORY:-0} pi-gen: ${*:-default shape} rounds=$ROUNDS commit=$(git -C "$root" rev-parse --short HEAD) $(nproc) cpus"
PGPID=$(head -1 "$WORK/pg/pid" 2>/dev/null || cat "$WORK/pg/pid")
hz=$(getconf CLK_TCK)
# pg_cpu: seconds of CPU of the cluster so far.
pg_cpu() {
  local t=0 p
  t=$(sed 's/.*) //' "/proc/$PGPID/stat" | awk '{ print $12 + $13 + $14 + $15 }')
  for p in $(pgrep -P "$PGPID"); do
    [ -r "/proc/$p/stat" ] || continue
    t=$((t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }')))
  done
  awk -v t="$t" -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }'
}
# drain NAME INTERVAL: sets DRAIN (cluster CPU s during the drain), FOLD
# (during the final catch-up) and LEFT (statements pending at the end).
drain() {
  local name=$1 iv=$2 c0 c1 c2
  if [ -n "$TEMPLATE" ]; then
    psql "$PG_ADMIN" -XAtq -c "create database $name template $TEMPLATE" >/dev/null
  else
    newdb "$name"
  fi
  PG="$PG_ADMIN dbname=$name"
  c0=$(pg_cpu)
  "$BIN" run --brokers "$BROKERS" --topic bench --group "$name" --pg "$PG" \
    --stats-interval-ms 0 --log-level warn --http-listen off \
    --rollup-interval-ms "$iv" 2>"$WORK/$name.log" &
  RUN_PID=$!
  while [ "$(psql "$PG" -XAtq -c "select coalesce(sum(next_offset), 0) from ingest_offsets where topic = 'bench'")" != "$N" ]; do
    kill -0 "$RUN_PID" || { cat "$WORK/$name.log"; exit 1; }
    sleep 0.2
  done
  kill -TERM "$RUN_PID"
  wait "$RUN_PID"
  RUN_PID=
  # Its backends gone and reaped by the postmaster (their CPU moves from
  # the live children to its cutime/cstime; in between it is in neither).
  while [ "$(psql "$PG_ADMIN" -XAtq -c "select count(*) from pg_stat_activity where datname = '$name'")" != 0 ]; do
    sleep 0.2
  done
  sleep 1
  c1=$(pg_cpu)
  LEFT=$(psql "$PG" -XAtq -c 'select count(*) from presence_dirty')
  psql "$PG" -XAtq -c 'select presence_rollup_refresh()' >/dev/null
  sleep 1
  c2=$(pg_cpu)
  DRAIN=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')
  FOLD=$(awk -v a="$c1" -v b="$c2" 'BEGIN { printf "%.2f", b - a }')
  psql "$PG_ADMIN" -XAtq -c "drop database $name" >/dev/null
}
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then
    drain "on_$r" 1000; on_d=$DRAIN on_f=$FOLD on_left=$LEFT
    drain "off_$r" 0; off_d=$DRAIN off_f=$FOLD
  else
    drain "off_$r" 0; off_d=$DRAIN off_f=$FOLD
    drain "on_$r" 1000; on_d=$DRAIN on_f=$FOLD on_left=$LEFT
  fi
  on=$(awk -v a="$on_d" -v b="$on_f" 'BEGIN { print a + b }')
  share=$(awk -v on="$on" -v off="$off_d" 'BEGIN { printf "%.3f", (on - off) / on }')
  echo "round $r: PostgreSQL CPU, catch-up on: ${on_d} s drain + ${on_f} s final fold (${on_left} statements left);" \
    "off: ${off_d} s drain (+ ${off_f} s to fold it all afterwards); catch-up share $share;" \
    "per million: on $(awk -v c="$on" -v n="$N" 'BEGIN{printf "%.1f", c * 1e6 / n}') s, off $(awk -v c="$off_d" -v n="$N" 'BEGIN{printf "%.1f", c * 1e6 / n}') s"
  echo "$share" >>"$WORK/share"
done
echo "median catch-up share of PostgreSQL CPU: $(median <"$WORK/share")"
