#!/usr/bin/env bash
# Malformed messages in the stream go to presence_rejects with their raw
# payload, and do not stall their partition: everything after them is
# stored and the lag reaches 0. (kcat cannot produce an empty value: that
# case is in test_mock_faults.c.)
source "$(dirname "$0")/lib.sh"

N=5000
BAD_EVERY=50
setup 2
"$PI_GEN" "$N" --bad-every "$BAD_EVERY" >"$WORK/in.txt"
printf '"just a string"\n' >>"$WORK/in.txt"
produce "$WORK/in.txt"
BAD=$((N / BAD_EVERY))

start_service svc
wait_for "select count(*) from presence_rejects" "$((BAD + 1))"
wait_for "select count(*) from presences" "$((N - BAD))"
[ "$(sql "select count(*) from presence_rejects where error = 'malformed_json'")" = "$BAD" ] ||
  fail "malformed_json count"
[ "$(sql "select count(*) from presence_rejects where error = 'not_an_object'")" = 1 ] ||
  fail "not_an_object"
[ "$(sql "select convert_from(payload, 'UTF8') from presence_rejects
          where error = 'not_an_object'")" = '"just a string"' ] || fail "payload not kept raw"
[ "$(sql "select count(*) from presence_rejects where topic <> '$TOPIC' or detail = ''")" = 0 ] ||
  fail "reject provenance"
sleep 1
check_offsets_match
check_lag_zero
stop_service "$SERVICE_PID"
log "ok: $BAD malformed messages rejected, $((N - BAD)) stored, no stall"
