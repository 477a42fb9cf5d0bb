#!/usr/bin/env bash
# kill -9 of the service at random moments during a stream, restarted each
# time: in the end every presence is stored exactly once and ingest_offsets
# equals the log-end offsets.
source "$(dirname "$0")/lib.sh"

CHUNK=6000
CHUNKS=5
N=$((CHUNK * CHUNKS))
setup 3
"$PI_GEN" "$N" >"$WORK/in.txt"
split -l "$CHUNK" -d "$WORK/in.txt" "$WORK/chunk."

# Small batches so that a kill lands between, inside and after commits; a
# short session timeout so that the group gives up on the killed member in
# seconds (the default 45 s would only make the test slow).
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

wait_for "select count(*) from presences" "$N" 180
[ "$(sql "select max(id) - min(id) + 1 from presences")" = "$N" ] || fail "id range"
[ "$(sql "select count(*) from presence_rejects")" = 0 ] || fail "unexpected rejects"
check_offsets_match
# The positions stored in the database reach the group's committed offsets
# (committed on assignment and after every batch), so lag tools see 0.
sleep 2
check_lag_zero
stop_service "$SERVICE_PID"
log "ok: $N presences exactly once through $CHUNKS kill -9"
