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

# Catch it inside a write that holds the fence: a SHARE lock on presences,
# taken for 2 s (less than the statement timeout) from another session,
# makes its next COPY wait with its batch's ingest_offsets rows locked; a
# SKIP LOCKED probe names them and it is frozen there. Once the lock goes,
# its backend waits for COPY data from a process that sends none.
locked=""
for attempt in $(seq 5); do
  # lock_timeout: never queue behind a's own lock (that would hold both).
  psql "$PG" -XAtq -c "set lock_timeout = '1s'" -c "begin" \
    -c "lock table presences in share mode" -c "select pg_sleep(2)" \
    -c "commit" >/dev/null 2>&1 &
  locker=$!
  for i in $(seq 60); do
    locked=$(sql "select string_agg(partition::text, ',' order by partition) from (
                    select partition from ingest_offsets where consumer_group = '$GROUP'
                    except
                    select partition from (select partition from ingest_offsets
                      where consumer_group = '$GROUP' for update skip locked) s) l")
    if [ -n "$locked" ]; then
      kill -STOP "$A"
      break
    fi
    sleep 0.02
  done
  frozen_at=$SECONDS
  timeout 5 tail --pid="$locker" -f /dev/null || kill "$locker" 2>/dev/null || true
  wait "$locker" 2>/dev/null || true
  [ -n "$locked" ] && break
done
[ -n "$locked" ] || fail "instance a never held an ingest_offsets lock inside a write"
# The successor must write to the partitions a holds: they are the ones a
# lock that PostgreSQL never ends would block.
in_locked="select count(*) from presences where kafka_partition in ($locked)"
before=$(sql "$in_locked")
log "instance a frozen holding the fence of partition(s) $locked ($before rows in them)"
at_exit 'kill -CONT "$A"'

start_service b "${OPTS[@]}"
B=$SERVICE_PID
# The group drops a after its session timeout; b's fence then waits at most
# for PostgreSQL to end a's transaction: a statement cut after TX_MS, then
# the aborted transaction ended after TX_MS idle.
limit=$(((SESSION_MS + 2 * TX_MS) / 1000 + 8))
for i in $(seq $((limit * 5))); do
  [ "$(sql "$in_locked")" -gt "$before" ] && break
  sleep 0.2
done
took=$((SECONDS - frozen_at))
[ "$(sql "$in_locked")" -gt "$before" ] ||
  fail "the successor wrote nothing to partition(s) $locked within $limit s of the freeze"
log "successor wrote after ${took}s (limit ${limit}s)"

kill -CONT "$A"
wait_for "select count(*) from presences" "$N" 180
[ "$(sql "select count(*), max(id) - min(id) + 1 from presences")" = "$N|$N" ] ||
  fail "rows are not exactly the $N presences"
check_offsets_match
stop_service "$B"
stop_service "$A"
log "ok: successor wrote ${took}s after the freeze; all $N stored once"
