#!/usr/bin/env bash
# bench_watch.sh -- latency from a presence's commit to `watch` printing the
# status change it made, while `run` drains a pre-filled topic at full speed.
#
#   bash tests/bench/bench_watch.sh [MESSAGES] [ROUNDS] [ROLLUP_MS] [ASSETS] [RATE]
#                                     (defaults 200000, 3, 1000, 20000, 0)
#
# Starts its own PostgreSQL and Kafka (bench_lib.sh), fills a 4-partition
# topic with about MESSAGES presences of a realistic fleet of ASSETS assets
# (pi-gen --shape fleet: sessions, each connect and disconnect a change of
# status unless one batch holds both), then per round: a new database,
# `watch --format json` started first (its lines stamped on arrival by a
# small reader), then `run --rollup-interval-ms ROLLUP_MS` draining the
# topic; once drained and caught up, each printed change's latency is its
# arrival time minus the ingested_at of the asset's latest presence stored
# before the change was recorded (the presence that made it; ingested_at is
# its transaction's start, a little before the commit, so the figure errs
# long). Prints p50, p99, max per round (and the p99 of its two parts: to
# the change recorded by the catch-up, to watch printing it) and the
# medians, with the goal p99 <=
# 2 x ROLLUP_MS. RATE > 0: the messages are not in the topic beforehand but
# produced while `run` drains, RATE a second (a topic of its own per round;
# a live stream instead of a backlog). Build the release preset first.
# BENCH_LOG_LEVEL=debug keeps run's log, with a line per catch-up round,
# in /tmp/bench_watch_run_R.log. BENCH_HISTORY=H: pi-gen makes H more
# presences first, the fleet's past, loaded and folded into a template
# each round's database starts from (a fleet the rollup already knows).
N=${1:-200000}
ROUNDS=${2:-3}
ROLLUP_MS=${3:-1000}
ASSETS=${4:-20000}
RATE=${5:-0}
source "$(dirname "$0")/bench_lib.sh"
trap '[ -n "${RUN_PID:-}" ] && kill -9 "$RUN_PID" 2>/dev/null; [ -n "${WATCH_PID:-}" ] && kill -9 "$WATCH_PID" 2>/dev/null; bench_cleanup' EXIT
bench_start "$((N + ${BENCH_HISTORY:-0}))" --shape fleet --assets "$ASSETS" --end now
N=$(wc -l <"$WORK/in.txt")
if [ "${BENCH_HISTORY:-0}" -gt 0 ]; then
  newdb history
  "$BIN" load --pg "$PG_ADMIN dbname=history" --log-level warn <"$WORK/history.txt" >/dev/null
  psql "$PG_ADMIN dbname=history" -XAtq -c 'select presence_rollup_refresh()' -c 'vacuum analyze' >/dev/null
fi
echo "messages=$N history=${BENCH_HISTORY:-0} assets=$ASSETS partitions=4 rounds=$ROUNDS rollup-interval-ms=$ROLLUP_MS rate=${RATE} (0: a backlog)"

for r in $(seq "$ROUNDS"); do
  name=w_$r
  if [ "${BENCH_HISTORY:-0}" -gt 0 ]; then
    psql "$PG_ADMIN" -XAtq -c "create database $name template history" >/dev/null
  else
    newdb "$name"
  fi
  PG="$PG_ADMIN dbname=$name"
  base=$(psql "$PG" -XAtq -c 'select coalesce(max(seq), 0) from asset_status_changes')
  # Each line of watch's JSON output, with the wall-clock time it arrived.
  "$BIN" watch --pg "$PG" --format json 2>"$WORK/watch_$r.log" > >(python3 -u -c '
import json, sys, time
for line in sys.stdin:
    t = time.time()
    c = json.loads(line)
    print("%s,%.6f" % (c["seq"], t), flush=True)' >"$WORK/stamps_$r.csv") &
  WATCH_PID=$!
  sleep 1
  topic=bench
  if [ "$RATE" -gt 0 ]; then
    topic=live_$r
    bash "$SUPPORT/kafka.sh" topic "$WORK/kafka" "$topic" 4 >/dev/null
    python3 -u -c '
import sys, time
rate, start = float(sys.argv[1]), time.time()
for i, line in enumerate(open(sys.argv[2])):
    ahead = start + i / rate - time.time()
    if ahead > 0:
        time.sleep(ahead)
    sys.stdout.write(line)
    sys.stdout.flush()' "$RATE" "$WORK/in.txt" |
      kcat -P -b "$BROKERS" -t "$topic" -X sticky.partitioning.linger.ms=0 &
  fi
  "$BIN" run --brokers "$BROKERS" --topic "$topic" --group "$name" --pg "$PG" \
    --stats-interval-ms 0 --log-level "${BENCH_LOG_LEVEL:-warn}" --http-listen off \
    --rollup-interval-ms "$ROLLUP_MS" 2>"$WORK/run_$r.log" &
  RUN_PID=$!
  while [ "$(psql "$PG" -XAtq -c "select coalesce(sum(next_offset), 0) from ingest_offsets where topic = '$topic'")" != "$N" ]; do
    kill -0 "$RUN_PID" || { cat "$WORK/run_$r.log"; exit 1; }
    sleep 0.2
  done
  while [ "$(psql "$PG" -XAtq -c 'select count(*) from presence_dirty')" != 0 ]; do sleep 0.2; done
  total=$(psql "$PG" -XAtq -c "select count(*) from asset_status_changes where seq > $base")
  for _ in $(seq 100); do
    [ "$(wc -l <"$WORK/stamps_$r.csv")" -ge "$total" ] && break
    sleep 0.1
  done
  kill -TERM "$RUN_PID"; wait "$RUN_PID"; RUN_PID=
  [ -n "${BENCH_LOG_LEVEL:-}" ] && cp "$WORK/run_$r.log" "/tmp/bench_watch_run_$r.log"
  kill -TERM "$WATCH_PID"
  wait "$WATCH_PID" || { echo "watch exit $?" >&2; exit 1; }
  WATCH_PID=
  sleep 0.5 # the stamping reader finishes its last lines
  psql "$PG" -XAtq -v ON_ERROR_STOP=1 >"$WORK/lat_$r" <<SQL
CREATE TEMP TABLE stamps (seq bigint, t double precision);
\copy stamps FROM '$WORK/stamps_$r.csv' WITH (FORMAT csv)
CREATE TEMP TABLE lat AS
SELECT s.seq, s.t - extract(epoch FROM i.at) AS l,
       extract(epoch FROM c.recorded_at - i.at) AS rec,
       s.t - extract(epoch FROM c.recorded_at) AS pr
FROM stamps s JOIN asset_status_changes c USING (seq)
CROSS JOIN LATERAL (SELECT max(p.ingested_at) AS at FROM presences p
                    WHERE p.asset = c.asset
                      AND p.ingested_at <= c.recorded_at) i;
SELECT count(*), (SELECT count(*) FROM asset_status_changes WHERE seq > $base),
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY l)::numeric, 3),
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY l)::numeric, 3),
       round(max(l)::numeric, 3),
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY rec)::numeric, 3),
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY pr)::numeric, 3)
FROM lat;
SQL
  IFS='|' read -r n all p50 p99 mx rec pr <"$WORK/lat_$r"
  echo "round $r: $n of $all changes printed; latency p50 ${p50} s, p99 ${p99} s, max ${mx} s" \
    "(p99 of its parts: commit to recorded ${rec} s, recorded to printed ${pr} s);" \
    "p99 / rollup interval $(awk -v a="$p99" -v b="$ROLLUP_MS" 'BEGIN { printf "%.2f", a * 1000 / b }')"
  echo "$p50" >>"$WORK/p50"
  echo "$p99" >>"$WORK/p99"
  psql "$PG_ADMIN" -XAtq -c "drop database $name with (force)" >/dev/null
done
P50=$(median <"$WORK/p50")
P99=$(median <"$WORK/p99")
echo "median: p50 ${P50} s, p99 ${P99} s; p99 / rollup interval" \
  "$(awk -v a="$P99" -v b="$ROLLUP_MS" 'BEGIN { printf "%.2f", a * 1000 / b }') (goal <= 2)"
