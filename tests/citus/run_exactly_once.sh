#!/usr/bin/env bash
# run_exactly_once.sh -- `run` against a Citus cluster (coordinator + two
# workers) stores every presence exactly once through kill -9 of the
# service after each chunk of a stream and a restart of one worker while it
# drains: every row once, ingest_offsets at the log-end offsets, a `replay`
# of the whole topic stores nothing and rewrites no row, and the rollup the
# writer marked equals a single server's for the same messages.
source "$(dirname "$0")/lib.sh"
source "$PI_SOURCE_DIR/tests/e2e/lib.sh"
trap 'rc=$?; citus_cleanup; (exit $rc); cleanup' EXIT

CHUNK=1500
CHUNKS=4
BIG=12000 # drained while a worker is down
N=$((CHUNK * CHUNKS + BIG))
bash "$PI_SUPPORT_DIR/kafka.sh" topic "$PI_SERVICES/kafka" "$TOPIC" 3 >/dev/null
PG=$(citus_db run)
PG_SERVICE=$PG
# Envelopes and notifications among them (notifications: skipped).
"$PI_GEN" "$N" --shape mixed >"$WORK/in.txt"
head -n $((CHUNK * CHUNKS)) "$WORK/in.txt" | split -l "$CHUNK" -d - "$WORK/chunk."
tail -n "$BIG" "$WORK/in.txt" >"$WORK/big.txt"

OPTS=(--batch-size 500 -X session.timeout.ms=6000 -X heartbeat.interval.ms=500)
start_service run0 "${OPTS[@]}"
for i in $(seq 0 $((CHUNKS - 1))); do
  produce "$WORK/chunk.0$i"
  sleep "0.$((RANDOM % 9 + 1))"
  kill -9 "$SERVICE_PID"
  wait "$SERVICE_PID" 2>/dev/null || true
  log "killed after chunk $i: $(sql "select count(*) from presences") rows"
  start_service "run$((i + 1))" "${OPTS[@]}"
done
# One worker goes down while the service drains the big chunk, and comes
# back; then it restarts. The chunk goes in eight parts, so that each step
# lands while the drain is in progress: the pause once rows of the first
# part arrive, with five more parts produced during it; the restart once
# rows arrive again after it; the last two parts only after the restart.
# Batches in flight fail and are retried, two-phase commits in flight are
# recovered by Citus. (Whether a given batch is caught between its COPY and
# its COMMIT is chance, as in production: not asserted; the rows are.)
wait_for "select count(*) from presences" $((CHUNK * CHUNKS)) 180
split -n l/8 -d "$WORK/big.txt" "$WORK/part."
rows_arrive() { # FROM SECS: wait until presences holds more than FROM rows; print the count
  local got i
  for i in $(seq $(($2 * 20))); do
    got=$(sql "select count(*) from presences" 2>/dev/null || echo 0)
    [ "$got" -gt "$1" ] && { echo "$got"; return 0; }
    sleep 0.05
  done
  return 1
}
count_now() { # the rows stored, asked again while a worker restarts
  local i
  for i in $(seq 100); do
    sql "select count(*) from presences" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
produce "$WORK/part.00"
at=$(rows_arrive $((CHUNK * CHUNKS)) 60) || fail "the big chunk's drain did not start"
(for p in 01 02 03 04 05; do produce "$WORK/part.$p"; sleep 0.4; done) &
feeder=$!
bash "$PI_SUPPORT_DIR/citus.sh" worker "$PI_SERVICES/citus" 1 pause >/dev/null 2>&1
log "worker 1 paused at $at rows, the drain in progress"
sleep 3
bash "$PI_SUPPORT_DIR/citus.sh" worker "$PI_SERVICES/citus" 1 resume >/dev/null 2>&1
wait "$feeder"
at=$(rows_arrive "$at" 60) || fail "no row stored after worker 1 came back"
log "worker 1 back; rows arriving: $at"
produce "$WORK/part.06"
# A restart landing between a batch's COPY and its COMMIT is what lost rows
# before the writer enlisted them (rows.c).
sleep "0.$((RANDOM % 3 + 1))"
bash "$PI_SUPPORT_DIR/citus.sh" worker "$PI_SERVICES/citus" 1 restart >/dev/null 2>&1
at=$(count_now) || fail "the cluster does not answer after worker 1's restart"
log "worker 1 restarted at $at rows"
produce "$WORK/part.07"
at=$(rows_arrive "$at" 60) || fail "no row stored after worker 1's restart"
log "rows arriving after the restart: $at"
kill -9 "$SERVICE_PID"
wait "$SERVICE_PID" 2>/dev/null || true
log "killed after the worker's restart: $(sql "select count(*) from presences") rows"
start_service "run_last" "${OPTS[@]}"

wait_for "select count(*) from presences" "$N" 180
[ "$(sql "select max(id) - min(id) + 1 from presences")" = "$N" ] || fail "id range"
[ "$(sql "select count(*) from presence_rejects")" = 0 ] || fail "unexpected rejects"
grep -q "writer records the rollup's marks" "$WORK"/run0.log ||
  fail "the writer did not take the Citus mode"
log "the outage in the service's logs: $(cat "$WORK"/run*.log | grep -c "level=warn" || true) warnings"
check_offsets_match
stop_service "$SERVICE_PID"
log "ok: $N presences exactly once through $CHUNKS kill -9 and a worker restart"

# A replay of the whole topic writes nothing and rewrites nothing.
xmins=$(sql "select md5(string_agg(xmin::text, ',' order by id)) from presences")
dirty=$(sql "select count(*) from presence_dirty")
# (No catch-up during the replay: presence_dirty then changes only by
# the replay's own marks, which must be none.)
out=$("$PI_BINARY" replay --brokers "$BROKERS" --topic "$TOPIC" --pg "$PG" \
  --stats-interval-ms 0 --progress never --rollup-interval-ms 0 2>>"$WORK/replay.log")
case $out in
  "messages=$N stored=0 duplicates=$N conflicts=0 rejected=0 skipped="*) ;;
  *) fail "replay: $out" ;;
esac
[ "$(sql "select md5(string_agg(xmin::text, ',' order by id)) from presences")" = "$xmins" ] ||
  fail "replay rewrote rows"
[ "$(sql "select count(*) from presence_dirty")" = "$dirty" ] ||
  fail "replay marked the rollup"
log "ok: replay: $out"

# The rollup the writer marked (through the kills) equals a single
# server's, which its triggers marked, for the same messages.
s=$(single_db run)
"$PI_BINARY" load --pg "$s" "$WORK/in.txt" >/dev/null 2>>"$WORK/load.log"
ROLLUP="
select 'state', asset, state, since::text, reason, connection_id::text from asset_state
union all select 'day', asset, day::text, online_us::text, sessions::text, disconnects::text from asset_days
union all select 'minute', type, reason, minute::text, n::text, null from presence_reason_minutes
order by 1, 2, 3, 4, 5, 6"
# Caught up: a killed instance's catch-up may still hold the lock (the
# refresh then returns -1 at once), so until presence_dirty is empty.
for db in "$PG" "$s"; do
  for _ in $(seq 600); do
    q "$db" "select presence_rollup_refresh()" >/dev/null
    [ "$(q "$db" "select count(*) from presence_dirty")" = 0 ] && break
    sleep 0.5
  done
  [ "$(q "$db" "select count(*) from presence_dirty")" = 0 ] || fail "the rollup did not catch up"
done
q "$PG" "$ROLLUP" >"$WORK/c.rollup"
q "$s" "$ROLLUP" >"$WORK/s.rollup"
[ -s "$WORK/s.rollup" ] || fail "empty rollup"
if ! diff -q "$WORK/c.rollup" "$WORK/s.rollup" >/dev/null; then
  for a in $(diff "$WORK/c.rollup" "$WORK/s.rollup" | grep '^[<>]' | cut -d'|' -f2 | sort -u | head -3); do
    log "DIAG asset $a rows: $(q "$PG" "select string_agg(id || ' ' || connection_id || ' ' || type || ' ' || time || ' p' || kafka_partition || '@' || kafka_offset || ' ' || ingested_at, '; ' order by id) from presences where asset = '$a'")"
    log "DIAG state c: $(q "$PG" "select * from asset_state where asset = '$a'") s: $(q "$s" "select * from asset_state where asset = '$a'")"
    log "DIAG days c: $(q "$PG" "select * from asset_days where asset = '$a'") s: $(q "$s" "select * from asset_days where asset = '$a'")"
    log "DIAG days now c: $(q "$PG" "select asset, day, online_us, sessions, disconnects from asset_days_for(array['$a'])")"
  done
  grep -h 'level=warn' "$WORK"/run*.log | grep -v 'attempt' | head -5 >&2 || true
fi
same "the rollup" "$WORK/c.rollup" "$WORK/s.rollup"
log "ok: the rollup ($(wc -l <"$WORK/s.rollup") rows) the same as one server's"
