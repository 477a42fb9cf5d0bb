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
# duplicates), and the ratio to the single server; per node the CPU
# seconds per 100 000 rows of each of those loads (a worker's per 100 000
# rows it holds: the issue's per-row work on each worker), medians and
# ratios to one server; then, from one instrumented load into the cluster
# (citus.log_remote_commands), the statements the coordinator sent to the
# workers per batch by kind (the round trips, the PREPAREs = two-phase
# commits); and the rate of `run` draining a Kafka topic of the same rows
# into each target (median of RUNS, the same Kafka 4 broker for both).
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
  bash "$root/tests/support/kafka.sh" stop "$WORK/kafka" >/dev/null 2>&1 || true
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
# CPU seconds of a node: its postmaster with its exited children, and its
# live children (Citus's cached connections and daemons live on).
cpu() { # NODE
  local pm
  pm=$(cat "$WORK/$1/pid")
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v pm="$pm" -v hz="$(getconf CLK_TCK)" '
    $1 == pm { t += $14 + $15 + $16 + $17 } $4 == pm { t += $14 + $15 }
    END { printf "%.3f\n", t / hz }'
}
# Rows stored on each worker of a cluster database (its placements).
worker_rows() { # CONNINFO: "rows_on_worker1 rows_on_worker2"
  local p1
  p1=$(cat "$WORK/citus/worker1/port")
  psql "$1" -XAtq -c "select coalesce(sum(result::bigint) filter (where nodeport = $p1), 0),
    coalesce(sum(result::bigint) filter (where nodeport <> $p1), 0)
    from run_command_on_placements('presences', 'select count(*) from %s')" | tr '|' ' '
}
declare -A C0
snap() { for n in "${NODES[@]}"; do C0[$n]=$(cpu "$n"); done; }
since() { echo "$(cpu "$1") - ${C0[$1]}" | bc -l; } # NODE: CPU s since snap

# Per run and target: a load of new rows, then the same again (all
# duplicates); CPU per 100 000 rows on each node around each (the load's
# connections closed: sleep). A worker's CPU is divided by the rows it
# holds (about half), the issue's "per-row work on each worker".
declare -A NEW DUP
for r in $(seq "$RUNS"); do
  for target in single citus; do # alternate: the same noise for both
    ci=$(newdb "$target" "b_${target}_$r")
    for phase in new dup; do
      snap
      rate "$ci" >>"$WORK/$phase.$target"
      sleep 1
      if [ "$target" = single ]; then
        echo "$(since pg) * 100000 / $rows" | bc -l >>"$WORK/cpu.$phase.single"
      else
        read -r n1 n2 <<<"$(worker_rows "$ci")"
        echo "$(since citus/coordinator) * 100000 / $rows" | bc -l >>"$WORK/cpu.$phase.coordinator"
        echo "$(since citus/worker1) * 100000 / $n1" | bc -l >>"$WORK/cpu.$phase.worker1"
        echo "$(since citus/worker2) * 100000 / $n2" | bc -l >>"$WORK/cpu.$phase.worker2"
      fi
    done
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
echo
echo "CPU seconds per 100 000 rows (a worker: per 100 000 rows it holds), median of $RUNS runs, and the ratio to one server"
printf '  %-12s %10s %7s %12s %7s   runs (new)\n' node new ratio duplicates ratio
base_new=$(median <"$WORK/cpu.new.single")
base_dup=$(median <"$WORK/cpu.dup.single")
for n in single coordinator worker1 worker2; do
  mn=$(median <"$WORK/cpu.new.$n")
  md=$(median <"$WORK/cpu.dup.$n")
  printf '  %-12s %10.2f %7.2f %12.2f %7.2f   %s\n' "$n" "$mn" "$(echo "$mn / $base_new" | bc -l)" \
    "$md" "$(echo "$md / $base_dup" | bc -l)" "$(xargs printf '%.2f ' <"$WORK/cpu.new.$n")"
done

# `run` draining a 4-partition topic of the same file into a fresh
# database of each target (the catch-up on, as deployed; the targets
# alternated): rows/s from start to the offsets at the log end.
bash "$root/tests/support/kafka.sh" start "$WORK/kafka" >/dev/null 2>&1
BROKERS=$(cat "$WORK/kafka/brokers")
bash "$root/tests/support/kafka.sh" topic "$WORK/kafka" fleet 4 >/dev/null
kcat -P -b "$BROKERS" -t fleet -X sticky.partitioning.linger.ms=0 -l "$WORK/fleet.jsonl"
for r in $(seq "$RUNS"); do
  for target in single citus; do
    ci=$(newdb "$target" "r_${target}_$r")
    t0=$(date +%s.%N)
    "$BIN" run --pg "$ci" --brokers "$BROKERS" --topic fleet --group "r_${target}_$r" \
      --batch-size "$BATCH" --http-listen off --stats-interval-ms 0 --log-level warn \
      2>>"$WORK/run.err" &
    pid=$!
    while [ "$(psql "$ci" -XAtq -c "select coalesce(sum(next_offset), 0) from ingest_offsets")" != "$rows" ]; do
      kill -0 "$pid" 2>/dev/null || { cat "$WORK/run.err" >&2; exit 1; }
      sleep 0.1
    done
    t1=$(date +%s.%N)
    kill -TERM "$pid"; wait "$pid" || true
    echo "$rows / ($t1 - $t0)" | bc -l >>"$WORK/run.$target"
  done
done
bash "$root/tests/support/kafka.sh" stop "$WORK/kafka" >/dev/null 2>&1 || true
echo
rs=$(median <"$WORK/run.single")
rc=$(median <"$WORK/run.citus")
echo "run draining a 4-partition topic of the same rows, rows/s, median of $RUNS:"
printf '  %-8s %10.0f  runs: %s\n' single "$rs" "$(xargs printf '%.0f ' <"$WORK/run.single")"
printf '  %-8s %10.0f  %.2f x one server   runs: %s\n' citus "$rc" "$(echo "$rc / $rs" | bc -l)" "$(xargs printf '%.0f ' <"$WORK/run.citus")"

# One instrumented load into the cluster: the coordinator's statements to
# the workers per batch.
ci=$(newdb citus b_instr)
coord_log=$(cat "$WORK/citus/coordinator/pgroot")/postgres.log
from=$(wc -l <"$coord_log")
"$BIN" load --pg "$ci options='-c citus.log_remote_commands=on -c log_min_messages=notice'" \
  --batch-size "$BATCH" "$WORK/fleet.jsonl" >/dev/null 2>>"$WORK/load.err"
batches=$(( (rows + BATCH - 1) / BATCH ))
echo
echo "one load into the cluster, $batches batches: statements from the coordinator to the workers per batch"
tail -n +"$((from + 1))" "$coord_log" | grep -o 'issuing [A-Z]*\( [A-Z]*\)\?' | sed 's/issuing //' |
  awk '{ k = $1; if ($1 == "COMMIT" || $1 == "PREPARE" || $1 == "ROLLBACK") k = $0; n[k]++ } END { for (k in n) printf "  %-20s %8.2f\n", k, n[k] / '"$batches"' }' | sort
echo "client round trips per batch (the writer, Citus mode): BEGIN+settings, [probe: one pipelined statement per shard, skipped when every id is above the writer's max], COPY presences, COPY pi_fresh, marks, enlisting UPDATE, COMMIT = 6-7 (one server: 3)"
echo "rows on the workers: $(worker_rows "$ci")"

# The window reports on the cluster (issue 26, "What is left"): reason_counts
# and presences_in copy only the window's rows to the coordinator; the
# baseline, in the same database and run, is the copy of every row (what
# their wrappers did before: a copy made first is the one a nested call
# uses), and one server's answer time.
s1=$(newdb single b_win)
"$BIN" load --pg "$s1" --batch-size "$BATCH" "$WORK/fleet.jsonl" >/dev/null 2>>"$WORK/load.err"
for db in "$ci" "$s1"; do psql "$db" -XAtq -c "select presence_rollup_refresh()" >/dev/null; done
day=$(psql "$ci" -XAtq -c "select date_trunc('day', min(time) + (max(time) - min(time)) / 2) from presences")
secs() { # CONNINFO SQL: seconds of one psql call
  local t0 t1
  t0=$(date +%s.%N)
  psql "$1" -XAtq -v ON_ERROR_STOP=1 -c "$2" >/dev/null
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}
W="'$day', timestamptz '$day' + interval '1 day'"
for r in $(seq "$RUNS"); do
  secs "$ci" "select count(*) from reason_counts($W)" >>"$WORK/win.citus"
  secs "$ci" "begin; create temp table presences on commit drop as select * from public.presences; select count(*) from reason_counts($W); commit" >>"$WORK/win.all"
  secs "$s1" "select count(*) from reason_counts($W)" >>"$WORK/win.single"
done
echo
echo "reason_counts over one day of the 30 ($day), seconds, median of $RUNS:"
ws=$(median <"$WORK/win.single")
for k in single all citus; do
  printf '  %-28s %8.3f  %6.2f x one server   runs: %s\n' \
    "$(case $k in single) echo "one server" ;; all) echo "cluster, copying every row" ;; citus) echo "cluster, the window's rows" ;; esac)" \
    "$(median <"$WORK/win.$k")" "$(echo "$(median <"$WORK/win.$k") / $ws" | bc -l)" "$(xargs printf '%.3f ' <"$WORK/win.$k")"
done
