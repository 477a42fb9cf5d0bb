#!/usr/bin/env bash
# Shutdown: SIGTERM exits within the shutdown timeout + 5 s whatever the
# database or the broker does (down, or frozen), non-zero with a line saying
# so when it had to give up (what could not be written is consumed again
# later); a second signal exits at once; nothing is lost either way.
source "$(dirname "$0")/lib.sh"

N=6000
setup 2
"$PI_GEN" "$N" >"$WORK/in.txt"
head -n 2000 "$WORK/in.txt" >"$WORK/a.txt"
sed -n '2001,4000p' "$WORK/in.txt" >"$WORK/b.txt"
tail -n +4001 "$WORK/in.txt" >"$WORK/c.txt"
OPTS=(--batch-size 500 --backoff-max-ms 500 --shutdown-timeout-ms 3000
  -X session.timeout.ms=6000 -X heartbeat.interval.ms=500)

# stop_within PID SECONDS: SIGTERM; the process must be gone within SECONDS;
# sets rc to its exit status.
stop_within() {
  local pid=$1 secs=$2
  kill -TERM "$pid"
  timeout "$secs" tail --pid="$pid" -f /dev/null ||
    fail "service $pid did not exit within $secs s of SIGTERM"
  rc=0
  wait "$pid" || rc=$?
}

# 1. Database down while stopping: the first SIGTERM gives up after the
#    shutdown timeout, says so, and exits 1 (what it gave up is consumed
#    again later).
start_service one "${OPTS[@]}"
produce "$WORK/a.txt"
wait_for "select count(*) from presences" 2000
bash "$PI_SUPPORT_DIR/pg.sh" pause "$PI_SERVICES/pg"
at_exit 'bash "$PI_SUPPORT_DIR/pg.sh" resume "$PI_SERVICES/pg"'
produce "$WORK/b.txt"
sleep 2
stop_within "$SERVICE_PID" 8 # the 3 s timeout + 5 s
[ "$rc" = 1 ] || fail "SIGTERM with the database down: exit status $rc, expected 1"
grep -q "gave up writing" "$WORK/one.log" || fail "giving up not reported"
bash "$PI_SUPPORT_DIR/pg.sh" resume "$PI_SERVICES/pg"

# 1b. Database frozen (SIGSTOP: it accepts connections and never answers,
#     so even a cancel request blocks): the same bound holds.
start_service frozen "${OPTS[@]}"
sleep 3
bash "$PI_SUPPORT_DIR/pg.sh" freeze "$PI_SERVICES/pg"
at_exit 'bash "$PI_SUPPORT_DIR/pg.sh" thaw "$PI_SERVICES/pg"'
produce "$WORK/b.txt"
sleep 2
start=$SECONDS
stop_within "$SERVICE_PID" 8
bash "$PI_SUPPORT_DIR/pg.sh" thaw "$PI_SERVICES/pg"
[ "$rc" != 0 ] || fail "SIGTERM with the database frozen exited 0"
grep -Eq "gave up writing|stop did not complete" "$WORK/frozen.log" ||
  fail "giving up not reported"
log "frozen database: exited $rc after $((SECONDS - start)) s"

# 1c. Broker frozen: leaving the group cannot complete; the bound holds.
start_service nobroker "${OPTS[@]}"
sleep 3
bash "$PI_SUPPORT_DIR/kafka.sh" freeze "$PI_SERVICES/kafka"
at_exit 'bash "$PI_SUPPORT_DIR/kafka.sh" thaw "$PI_SERVICES/kafka"'
sleep 1
start=$SECONDS
stop_within "$SERVICE_PID" 8
bash "$PI_SUPPORT_DIR/kafka.sh" thaw "$PI_SERVICES/kafka"
log "frozen broker: exited $rc after $((SECONDS - start)) s"

# 2. A second signal exits at once, with 128 + SIGTERM, even while the first
#    one waits for a database that is down.
bash "$PI_SUPPORT_DIR/pg.sh" resume "$PI_SERVICES/pg"
start_service two "${OPTS[@]}" --shutdown-timeout-ms 600000
sleep 3
bash "$PI_SUPPORT_DIR/pg.sh" pause "$PI_SERVICES/pg"
produce "$WORK/c.txt"
sleep 2
kill -TERM "$SERVICE_PID"
sleep 1
kill -TERM "$SERVICE_PID"
rc=0
timeout 5 tail --pid="$SERVICE_PID" -f /dev/null || fail "second SIGTERM did not exit at once"
wait "$SERVICE_PID" || rc=$?
[ "$rc" = 143 ] || fail "second SIGTERM: exit status $rc, expected 143"
grep -q "second signal" "$WORK/two.log" || fail "second signal not reported"

# 3. Database back: a new instance stores everything, exactly once.
bash "$PI_SUPPORT_DIR/pg.sh" resume "$PI_SERVICES/pg"
start_service three "${OPTS[@]}"
wait_for "select count(*) from presences" "$N" 120
[ "$(sql "select max(id) - min(id) + 1 from presences")" = "$N" ] || fail "id range"
check_offsets_match
stop_service "$SERVICE_PID"
log "ok: bounded shutdown with the database down, second signal, nothing lost"
