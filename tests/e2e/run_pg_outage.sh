#!/usr/bin/env bash
# PostgreSQL stopped for a while during a stream and started again: the
# service waits (retrying visibly, staying in the group), recovers, and loses
# nothing.
source "$(dirname "$0")/lib.sh"

N=20000
setup 2
"$PI_GEN" "$N" >"$WORK/in.txt"
head -n 10000 "$WORK/in.txt" >"$WORK/a.txt"
tail -n +10001 "$WORK/in.txt" >"$WORK/b.txt"

start_service svc --batch-size 1000 --backoff-max-ms 1000
produce "$WORK/a.txt"
wait_for "select count(*) > 0 from presences" "t"
bash "$PI_SUPPORT_DIR/pg.sh" pause "$PI_SERVICES/pg"
produce "$WORK/b.txt"
sleep 6
kill -0 "$SERVICE_PID" || fail "the service exited while PostgreSQL was down"
bash "$PI_SUPPORT_DIR/pg.sh" resume "$PI_SERVICES/pg"

wait_for "select count(*) from presences" "$N" 120
grep -q "level=warn" "$WORK/svc.log" || fail "the outage was not logged"
check_offsets_match
stop_service "$SERVICE_PID"
log "ok: $N presences through a PostgreSQL outage"
