#!/usr/bin/env bash
# The database goes back in time (issue 8): PostgreSQL with
# synchronous_commit=off stopped with -m immediate three times during a drain
# loses its last commits, rows and ingest_offsets together. The running
# service must notice (its compare-and-set on ingest_offsets, and a re-read
# after reconnecting), read the lost range again, and end with every presence
# exactly once and its counters equal to the table.
source "$(dirname "$0")/lib.sh"

N=60000
setup 3
"$PI_GEN" "$N" >"$WORK/in.txt"
# The WAL writer flushes asynchronous commits every wal_writer_delay: a long
# one makes each crash lose the last seconds of commits for certain.
psql "$PG_ADMIN" -XAtq -c "alter system set wal_writer_delay = '5s'" \
  -c "select pg_reload_conf()" >/dev/null
at_exit 'psql "$PG_ADMIN" -XAtq -c "alter system reset wal_writer_delay" -c "select pg_reload_conf()"'
at_exit 'kill -CONT "$SERVICE_PID"'

produce "$WORK/in.txt"
start_service svc --batch-size 500 --backoff-min-ms 50 --backoff-max-ms 500 \
  --stats-interval-ms 1000
lost_total=0
for target in 12000 27000 42000; do
  for i in $(seq 600); do
    n=$(sql "select count(*) from presences")
    [ "$n" -ge "$target" ] && break
    sleep 0.1
  done
  [ "$n" -ge "$target" ] || fail "drain stalled at $n rows"
  # Hold the service still so that what the crash loses can be counted:
  # rows visible before it (committed, not yet flushed) minus rows after.
  kill -STOP "$SERVICE_PID"
  before=$(sql "select count(*) from presences")
  bash "$PI_SUPPORT_DIR/pg.sh" crash "$PI_SERVICES/pg"
  after=$(sql "select count(*) from presences")
  kill -CONT "$SERVICE_PID"
  log "crash at $before rows: $after survived"
  lost_total=$((lost_total + before - after))
done
# Unless the crashes lost something the test shows nothing.
[ "$lost_total" -gt 0 ] || fail "the crashes lost no commits: the test proves nothing"
wait_for "select count(*) from presences" "$N" 180
[ "$(sql "select count(*), max(id) - min(id) + 1 from presences")" = "$N|$N" ] ||
  fail "rows are not exactly the $N presences"
check_offsets_match
grep -q "behind the" "$WORK/svc.log" || fail "the service never noticed the database behind it"
stop_service "$SERVICE_PID"
# Its own counters agree with the table: every presence stored once, none
# counted twice although the lost ranges were consumed twice.
line=$(grep -o 'stopped: messages=[0-9]* stored=[0-9]* duplicates=[0-9]*' "$WORK/svc.log" | tail -n 1)
[ "$line" = "stopped: messages=$N stored=$N duplicates=0" ] ||
  fail "counters '$line', expected messages=$N stored=$N duplicates=0"
log "ok: 3 crashes lost at least $lost_total rows' commits; all $N stored once, counters exact"
