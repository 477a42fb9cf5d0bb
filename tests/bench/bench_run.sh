#!/usr/bin/env bash
# bench_run.sh -- `presence-ingest run` draining a pre-filled topic, against
# `load` of the same messages from a file (the writer's ceiling), in one run.
#
#   bash tests/bench/bench_run.sh [MESSAGES] [ROUNDS] [--metrics|--changelog]
#                                              (defaults 1000000, 3)
#
# Starts its own PostgreSQL and Kafka with the test harness, fills a
# 4-partition topic with kcat, then per round: `load` FILE into an empty
# database, and `run` draining the topic into another empty database (a new
# consumer group each round). Prints msgs/s for both, the ratio, and the
# peak RSS of `run` (VmHWM), then the medians. `run` has its HTTP endpoint
# off. With --metrics, each round also runs `run` with the endpoint on and
# /metrics scraped every second (the same topic, another group and empty
# database; the two runs alternate which goes first), and prints the ratio
# metrics/plain. With --changelog, each round runs `run` twice more, with
# the status change log (migration 0008: asset_state's triggers) on and off
# (disabled in that database), alternating which goes first, and prints
# each one's run/load and the ratio on/off. Build first:
#   cmake --preset release && cmake --build --preset release
N=${1:-1000000}
ROUNDS=${2:-3}
METRICS=${3:-}
CHANGELOG=
[ "$METRICS" = --changelog ] && CHANGELOG=1 METRICS=
source "$(dirname "$0")/bench_lib.sh"
trap '[ -n "${RUN_PID:-}" ] && kill -9 "$RUN_PID" 2>/dev/null; bench_cleanup' EXIT
bench_start "$N"
echo "messages=$N bytes=$(stat -c %s "$WORK/in.txt") partitions=4 rounds=$ROUNDS"

# drain ROUND NAME on|off: `run` drains the topic into a new database NAME
# with group NAME; on: the HTTP endpoint on a free port, scraped every
# second. Sets RATE (msgs/s), HWM (peak RSS, kB) and CPU (seconds).
drain() {
  local r=$1 name=$2 mode=$3 s e h port=0 http=(--http-listen off) scraper=
  newdb "$name"
  PG="$PG_ADMIN dbname=$name"
  # A fourth argument "nolog": the status change log's triggers disabled.
  [ "${4:-}" = nolog ] && psql "$PG" -XAtq -v ON_ERROR_STOP=1 -c \
    "ALTER TABLE asset_state DISABLE TRIGGER asset_state_status_insert,
       DISABLE TRIGGER asset_state_status_update,
       DISABLE TRIGGER asset_state_status_delete,
       DISABLE TRIGGER asset_state_status_truncate" >/dev/null
  if [ "$mode" = on ]; then
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    http=(--http-listen "127.0.0.1:$port")
  fi
  # Each drain starts from a clean slate: no dirty pages of the one before
  # left to write.
  psql "$PG_ADMIN" -XAtq -c "CHECKPOINT" >/dev/null
  s=$(now)
  "$BIN" run --brokers "$BROKERS" --topic bench --group "$name" --pg "$PG" \
    --stats-interval-ms 0 --log-level warn "${http[@]}" 2>"$WORK/$name.log" &
  RUN_PID=$!
  if [ "$mode" = on ]; then
    ( n=0; while kill -0 "$RUN_PID" 2>/dev/null; do
        curl -sf --max-time 2 "http://127.0.0.1:$port/metrics" >/dev/null && n=$((n + 1))
        echo "$n" >"$WORK/scrapes"
        sleep 1
      done ) &
    scraper=$!
  fi
  HWM=0
  while [ "$(psql "$PG" -XAtq -c 'select coalesce(sum(next_offset), 0) from ingest_offsets')" != "$N" ]; do
    kill -0 "$RUN_PID" || { cat "$WORK/$name.log"; exit 1; }
    h=$(awk '/VmHWM/ { print $2 }' "/proc/$RUN_PID/status")
    [ "${h:-0}" -gt "$HWM" ] && HWM=$h
    sleep 0.05
  done
  e=$(now)
  h=$(awk '/VmHWM/ { print $2 }' "/proc/$RUN_PID/status")
  [ "${h:-0}" -gt "$HWM" ] && HWM=$h
  # CPU seconds the process used (user + system, after the command name's
  # closing parenthesis fields 12 and 13): steadier than wall-clock rates on
  # a shared machine.
  CPU=$(sed 's/.*) //' "/proc/$RUN_PID/stat" |
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($12 + $13) / hz }')
  kill -TERM "$RUN_PID"
  wait "$RUN_PID"
  RUN_PID=
  [ -z "$scraper" ] || wait "$scraper" || true
  RATE=$(rate "$N" "$s" "$e")
  rows=$(psql "$PG" -XAtq -c 'select count(*) from presences')
  [ "$rows" = "$N" ] || { echo "run stored $rows of $N" >&2; exit 1; }
  psql "$PG_ADMIN" -XAtq -c "drop database $name" >/dev/null
}


for r in $(seq "$ROUNDS"); do
  newdb "load_$r"
  s=$(now)
  "$BIN" load --pg "$PG_ADMIN dbname=load_$r" "$WORK/in.txt" >/dev/null
  e=$(now)
  load_rate=$(rate "$N" "$s" "$e")
  # Gone before the drains, so that its autovacuum does not weigh on the
  # first of them.
  psql "$PG_ADMIN" -XAtq -c "drop database load_$r" >/dev/null

  if [ -n "$METRICS" ] && [ $((r % 2)) -eq 0 ]; then
    drain "$r" "m_$r" on; metrics_rate=$RATE; metrics_hwm=$HWM; metrics_cpu=$CPU
    drain "$r" "p_$r" off; run_rate=$RATE; hwm=$HWM; run_cpu=$CPU
  elif [ -n "$CHANGELOG" ] && [ $((r % 2)) -eq 0 ]; then
    hwm=0 # the two runs of this round come below, the log off first
  else
    drain "$r" "p_$r" off; run_rate=$RATE; hwm=$HWM; run_cpu=$CPU
    if [ -n "$METRICS" ]; then
      drain "$r" "m_$r" on; metrics_rate=$RATE; metrics_hwm=$HWM; metrics_cpu=$CPU
    fi
  fi
  if [ -n "$CHANGELOG" ]; then
    # The plain run above has the change log on; this one off. Which went
    # first alternates.
    if [ $((r % 2)) -eq 0 ]; then
      drain "$r" "n_$r" off nolog; nolog_rate=$RATE
      drain "$r" "c_$r" off; run_rate=$RATE; hwm=$HWM
    else
      drain "$r" "n_$r" off nolog; nolog_rate=$RATE
    fi
    log_rate=$run_rate
    echo "round $r: change log on ${log_rate} msgs/s (run/load $(ratio "$log_rate" "$load_rate")," \
      "off ${nolog_rate} msgs/s (run/load $(ratio "$nolog_rate" "$load_rate")), on/off" \
      "$(awk -v a="$log_rate" -v b="$nolog_rate" 'BEGIN { printf "%.3f", a / b }')"
    awk -v a="$log_rate" -v b="$load_rate" 'BEGIN { print a / b }' >>"$WORK/log_rl"
    awk -v a="$nolog_rate" -v b="$load_rate" 'BEGIN { print a / b }' >>"$WORK/nolog_rl"
    awk -v a="$log_rate" -v b="$nolog_rate" 'BEGIN { print a / b }' >>"$WORK/onoff"
  fi
  echo "round $r: load ${load_rate} msgs/s, run ${run_rate} msgs/s," \
    "ratio $(awk -v a="$run_rate" -v b="$load_rate" 'BEGIN { printf "%.2f", a / b }')," \
    "run peak RSS $((hwm / 1024)) MiB"
  if [ -n "$METRICS" ]; then
    echo "round $r: run with /metrics scraped every second ${metrics_rate} msgs/s," \
      "ratio to plain run $(awk -v a="$metrics_rate" -v b="$run_rate" 'BEGIN { printf "%.3f", a / b }')," \
      "peak RSS $((metrics_hwm / 1024)) MiB, $(cat "$WORK/scrapes") scrapes;" \
      "CPU ${run_cpu} s plain, ${metrics_cpu} s with metrics," \
      "ratio $(awk -v a="$run_cpu" -v b="$metrics_cpu" 'BEGIN { printf "%.3f", a / b }')"
    awk -v a="$run_cpu" -v b="$metrics_cpu" 'BEGIN { print a / b }' >>"$WORK/cpu_ratio"
    echo "$metrics_rate" >>"$WORK/metrics"
    awk -v a="$metrics_rate" -v b="$run_rate" 'BEGIN { print a / b }' >>"$WORK/metrics_ratio"
  fi
  echo "$load_rate" >>"$WORK/load"
  echo "$run_rate" >>"$WORK/run"
  echo "$hwm" >>"$WORK/hwm"
done
L=$(median <"$WORK/load")
R=$(median <"$WORK/run")
echo "median: load ${L} msgs/s, run ${R} msgs/s, run/load $(awk -v a="$R" -v b="$L" 'BEGIN { printf "%.2f", a / b }')," \
  "run peak RSS $(( $(sort -n "$WORK/hwm" | tail -n 1) / 1024 )) MiB (max)"
if [ -n "$METRICS" ]; then
  M=$(median <"$WORK/metrics")
  echo "median: run with /metrics scraped ${M} msgs/s vs plain ${R} msgs/s:" \
    "ratio of medians $(awk -v a="$M" -v b="$R" 'BEGIN { printf "%.3f", a / b }')," \
    "median per-round ratio $(median <"$WORK/metrics_ratio" | awk '{ printf "%.3f", $1 }');" \
    "CPU plain/metrics, median per-round $(median <"$WORK/cpu_ratio" | awk '{ printf "%.3f", $1 }')"
fi
if [ -n "$CHANGELOG" ]; then
  echo "median: run/load with the change log $(median <"$WORK/log_rl" | awk '{ printf "%.3f", $1 }')," \
    "without $(median <"$WORK/nolog_rl" | awk '{ printf "%.3f", $1 }'); per-round on/off" \
    "$(median <"$WORK/onoff" | awk '{ printf "%.3f", $1 }') (goal >= 0.95)"
fi
