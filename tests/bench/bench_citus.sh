#!/usr/bin/env bash
# bench_citus.sh -- a Citus cluster (coordinator + two workers, 4 shards:
# migrations/citus/citus.sql's default) against a single server on the same
# machine, same data, same run (issue 26). All four servers are
# tests/support pg.sh servers with fsync and synchronous_commit turned on
# (two-phase commits flush WAL on every worker they touch).
#
#   bash tests/bench/bench_citus.sh [ROWS] [RUNS] [BATCH]
#                                   (defaults 100000 3 5000)
#
# Prints, per target, the median of RUNS `load`s of the same fleet file
# into a fresh database (new rows), then of loading it again (all
# duplicates), and the ratio to the single server; then, from one
# instrumented load into the cluster (citus.log_remote_commands), the
# statements the coordinator sent to the workers per batch by kind (the
# round trips, the PREPAREs = two-phase commits), and per node the CPU
# seconds per 100 000 rows (postmaster + exited backends, /proc).
set -euo pipefail
ROWS=${1:-100000}
RUNS=${2:-3}
BATCH=${3:-5000}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${PI_BINARY:-$root/build/release/cmd/presence-ingest/presence-ingest}
[ -x "$BIN" ] || BIN=$root/build/dev/cmd/presence-ingest/presence-ingest
GEN=${PI_GEN:-$root/build/release/tests/pi-gen}
[ -x "$GEN" ] || GEN=$root/build/dev/tests/pi-gen
bash "$root/tests/support/citus.sh" available || exit 77
WORK=$(mktemp -d /tmp/bench_citus.XXXXXX)
cleanup() {
  bash "$root/tests/support/citus.sh" stop "$WORK/citus" >/dev/null 2>&1 || true
  bash "$root/tests/support/pg.sh" stop "$WORK/pg" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
bash "$root/tests/support/pg.sh" start "$WORK/pg" >/dev/null 2>&1
bash "$root/tests/support/citus.sh" start "$WORK/citus" >/dev/null 2>&1
NODES=(pg citus/coordinator citus/worker1 citus/worker2)
for n in "${NODES[@]}"; do
  psql "$(cat "$WORK/$n/conninfo")" -XAtq -c "alter system set fsync = on" \
    -c "alter system set synchronous_commit = on" -c "select pg_reload_conf()" >/dev/null
done
SINGLE=$(cat "$WORK/pg/conninfo")

"$GEN" "$ROWS" --shape fleet --assets $((ROWS / 50)) --days 30 --seed 3 >"$WORK/fleet.jsonl"
rows=$(wc -l <"$WORK/fleet.jsonl")
echo "data: $rows presences of $((ROWS / 50)) assets over 30 days (pi-gen --shape fleet), batches of $BATCH"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo); fsync and synchronous_commit on"

newdb() { # single|citus NAME: a migrated database; prints its conninfo
  local ci
  if [ "$1" = single ]; then
    psql "$SINGLE" -XAtq -c "create database $2"
    ci="$SINGLE dbname=$2"
  else
    ci=$(bash "$root/tests/support/citus.sh" createdb "$WORK/citus" "$2" 2>/dev/null)
  fi
  "$BIN" migrate --pg "$ci" >/dev/null 2>&1
  echo "$ci"
}
rate() { # CONNINFO: rows/s of one load of the file
  local t0 t1
  t0=$(date +%s.%N)
  "$BIN" load --pg "$1" --batch-size "$BATCH" "$WORK/fleet.jsonl" >/dev/null 2>>"$WORK/load.err"
  t1=$(date +%s.%N)
  echo "$rows / ($t1 - $t0)" | bc -l
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A NEW DUP
for r in $(seq "$RUNS"); do
  for target in single citus; do # alternate: the same noise for both
    ci=$(newdb "$target" "b_${target}_$r")
    rate "$ci" >>"$WORK/new.$target"
    rate "$ci" >>"$WORK/dup.$target"
  done
done
for target in single citus; do
  NEW[$target]=$(median <"$WORK/new.$target")
  DUP[$target]=$(median <"$WORK/dup.$target")
done
printf '%-8s %14s %7s %16s %7s   (median of %d runs; runs: new %s; dup %s)\n' target "new rows/s" ratio "duplicates/s" ratio "$RUNS" "" ""
for target in single citus; do
  printf '%-8s %14.0f %7.2f %16.0f %7.2f   new: %s dup: %s\n' "$target" "${NEW[$target]}" \
    "$(echo "${NEW[$target]} / ${NEW[single]}" | bc -l)" "${DUP[$target]}" \
    "$(echo "${DUP[$target]} / ${DUP[single]}" | bc -l)" \
    "$(xargs printf '%.0f ' <"$WORK/new.$target")" "$(xargs printf '%.0f ' <"$WORK/dup.$target")"
done

# One instrumented load into the cluster: the coordinator's statements to
# the workers, and each node's CPU.
cpu() { # NODE: CPU seconds of its postmaster and its exited children
  awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15 + $16 + $17) / hz }' \
    "/proc/$(cat "$WORK/$1/pid")/stat"
}
ci=$(newdb citus b_instr)
s1=$(newdb single b_instr)
declare -A C0 C1
for n in "${NODES[@]}"; do C0[$n]=$(cpu "$n"); done
coord_log=$(cat "$WORK/citus/coordinator/pgroot")/postgres.log
from=$(wc -l <"$coord_log")
"$BIN" load --pg "$ci options='-c citus.log_remote_commands=on -c log_min_messages=notice'" \
  --batch-size "$BATCH" "$WORK/fleet.jsonl" >/dev/null 2>>"$WORK/load.err"
"$BIN" load --pg "$s1" --batch-size "$BATCH" "$WORK/fleet.jsonl" >/dev/null 2>>"$WORK/load.err"
sleep 2 # the backends exit, their CPU goes to the postmaster's children
for n in "${NODES[@]}"; do C1[$n]=$(cpu "$n"); done
batches=$(( (rows + BATCH - 1) / BATCH ))
echo
echo "one load into the cluster, $batches batches: statements from the coordinator to the workers per batch"
tail -n +"$((from + 1))" "$coord_log" | grep -o 'issuing [A-Z]*\( [A-Z]*\)\?' | sed 's/issuing //' |
  awk '{ k = $1; if ($1 == "COMMIT" || $1 == "PREPARE" || $1 == "ROLLBACK") k = $0; n[k]++ } END { for (k in n) printf "  %-20s %8.2f\n", k, n[k] / '"$batches"' }' | sort
echo "client round trips per batch (the writer, Citus mode): BEGIN+settings, probe, COPY presences, COPY pi_fresh, mark, enlisting UPDATE, COMMIT = 7 (one server: 3)"
echo
echo "CPU seconds per 100 000 rows, per node (the same load into each target)"
for n in "${NODES[@]}"; do
  printf '  %-18s %8.2f\n' "$n" "$(echo "(${C1[$n]} - ${C0[$n]}) * 100000 / $rows" | bc -l)"
done
for n in citus/worker1 citus/worker2; do
  printf '  rows on %-10s %8s\n' "${n#citus/}" "$(psql "$(cat "$WORK/$n/conninfo") dbname=b_instr" -XAtq -c "set citus.override_table_visibility = off" -c "select coalesce(sum(n_live_tup), 0) from pg_stat_user_tables where relname ~ '^presences_.*_[0-9]+\$'")"
done
