#!/usr/bin/env bash
# A frozen instance inside a write (issue 8): it holds its transaction and
# the ingest_offsets row locks. PostgreSQL itself must end that transaction
# (statement_timeout, idle_in_transaction_session_timeout, from
# --pg-tx-timeout-ms), so that the successor that takes its partitions
# writes within the timeouts and a few seconds; the frozen one, woken, is
# fenced; every presence is stored once.
source "$(dirname "$0")/lib.sh"

N=100000
TX_MS=3000
SESSION_MS=6000
setup 2
"$PI_GEN" "$N" >"$WORK/in.txt"
OPTS=(--batch-size 1000 --pg-tx-timeout-ms "$TX_MS" --backoff-max-ms 500
  -X session.timeout.ms=$SESSION_MS -X heartbeat.interval.ms=500)
produce "$WORK/in.txt"
start_service a "${OPTS[@]}"
A=$SERVICE_PID
wait_for "select count(*) > 0 from presences" t

# Catch it inside a write that holds the whole fence: a SHARE lock on
# presences, taken for 4 s from another session, makes its next COPY wait
# with both ingest_offsets rows locked (checked with a SKIP LOCKED probe);
# it is frozen there. Once the lock goes, its backend waits for COPY data
# from a process that will not send any.
psql "$PG" -XAtq -c "begin" -c "lock table presences in share mode" \
  -c "select pg_sleep(4)" -c "commit" >/dev/null &
locker=$!
locked=0
for i in $(seq 60); do
  read -r rows free < <(sql "select (select count(*) from ingest_offsets
                        where consumer_group = '$GROUP'),
                     (select count(*) from (select 1 from ingest_offsets
                        where consumer_group = '$GROUP'
                        for update skip locked) s)" | tr '|' ' ')
  if [ "$rows" -eq 2 ] && [ "$free" -eq 0 ]; then
    kill -STOP "$A"
    locked=2
    break
  fi
  sleep 0.05
done
[ "$locked" -eq 2 ] || fail "instance a never held both ingest_offsets locks inside a write"
wait "$locker"
frozen_at=$SECONDS
before=$(sql "select count(*) from presences")
log "instance a frozen holding $locked ingest_offsets lock(s) at $before rows"
at_exit 'kill -CONT "$A"'

start_service b "${OPTS[@]}"
B=$SERVICE_PID
# The group drops a after its session timeout; b's fence then waits at most
# for PostgreSQL to end a's transaction: a statement cut after TX_MS, then
# the aborted transaction ended after TX_MS idle.
limit=$(((SESSION_MS + 2 * TX_MS) / 1000 + 8))
for i in $(seq $((limit * 5))); do
  [ "$(sql "select count(*) from presences")" -gt "$before" ] && break
  sleep 0.2
done
took=$((SECONDS - frozen_at))
[ "$(sql "select count(*) from presences")" -gt "$before" ] ||
  fail "the successor wrote nothing within $limit s of the freeze"
log "successor wrote after ${took}s (limit ${limit}s)"

kill -CONT "$A"
wait_for "select count(*) from presences" "$N" 180
[ "$(sql "select count(*), max(id) - min(id) + 1 from presences")" = "$N|$N" ] ||
  fail "rows are not exactly the $N presences"
check_offsets_match
stop_service "$B"
stop_service "$A"
log "ok: successor wrote ${took}s after the freeze; all $N stored once"
