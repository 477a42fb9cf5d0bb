#!/usr/bin/env bash
# status_changes.sh -- migration 0008's change log (CONTRACT §8 "Status
# changes"): one asset_status_changes row per change of an asset's §7 status,
# recorded when the rollup's catch-up commits, for a hand-made sequence of
# events (connect, disconnect, reconnect, a lost disconnect, a late
# disconnect of an old session, declare, two events of one asset in one
# load); nothing for a replay of all of them, a late event that leaves the
# status as it was, a rebuild, or a TRUNCATE of asset_state refilled in the
# same transaction; an asset whose events are all deleted is recorded as
# gone; NOTIFY presence_status carries the first new seq; retention trims
# the log by --keep. Every expected row is written out by hand.
set -euo pipefail
: "${PI_BINARY:?run through ctest}" "${PI_SERVICES:?}"
PG_ADMIN=$(cat "$PI_SERVICES/pg/conninfo")
WORK=$(mktemp -d /tmp/status_changes.XXXXXX)
DB=status_changes_$$
cleanup() {
  psql "$PG_ADMIN" -XAtq -c "drop database if exists $DB with (force)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
PG="$PG_ADMIN dbname=$DB"
q() { psql "$PG" -XAtq -v ON_ERROR_STOP=1 -F, "$@"; }
# ev ID CONN TYPE REASON ASSET HH:MM: one presence line on 2026-03-01 (UTC).
ev() {
  printf '{"id_str":"%s","connection_id_str":"%s","type":"%s","reason":"%s","asset":"%s","time":"2026-03-01T%s:00Z"}\n' "$@"
}
# step NAME LINES...: load the lines as one file, then catch the rollup up.
step() {
  local f=$WORK/$1.jsonl
  shift
  printf '%s\n' "$@" >"$f"
  "$PI_BINARY" load --pg "$PG" "$f" >/dev/null 2>"$WORK/load.err" ||
    { cat "$WORK/load.err" >&2; fail "load $f"; }
  q -c "SELECT presence_rollup_refresh()" >/dev/null
}
expect() {
  local got
  got=$(q -c "$3")
  [ "$got" = "$2" ] || { diff -u <(printf '%s\n' "$2") <(printf '%s\n' "$got") >&2; fail "$1"; }
  echo "ok: $1"
}
LOG="SELECT seq, asset, state, since AT TIME ZONE 'UTC', reason, connection_id,
            previous_state, previous_since AT TIME ZONE 'UTC', previous_reason,
            previous_connection_id
     FROM asset_status_changes ORDER BY seq"

psql "$PG_ADMIN" -XAtq -c "create database $DB"
"$PI_BINARY" migrate --pg "$PG" >/dev/null
expect "empty log" "" "$LOG"

step connect "$(ev 101 1 connect cold_boot d1 10:00)"
step disconnect "$(ev 102 1 disconnect network_error d1 10:30)"
step reconnect "$(ev 103 2 connect modem_reset d1 11:00)"
# Session 2's disconnect was lost: the connect of session 3 supersedes it.
step lost "$(ev 104 3 connect timeout d1 12:00)"
# Session 2's disconnect arrives late: history changes (session 2 now ends
# at 11:45), the status (online since 12:00 on 3) does not.
step late "$(ev 105 2 disconnect client_disconnect d1 11:45)"
# A new asset declared; a declare of an asset that is online changes nothing.
step declare "$(ev 106 20 declare_asset asset_declared d2 09:00)" \
  "$(ev 107 21 declare_asset asset_declared d1 12:30)"
step offline "$(ev 108 3 disconnect client_disconnect d1 13:00)"
# Two events of one asset in one transaction: one change, from the status
# before to the status after.
step both "$(ev 109 4 connect cold_boot d1 14:00)" \
  "$(ev 110 4 disconnect server_shutdown d1 14:05)"

CHANGES="1,d1,online,2026-03-01 10:00:00,cold_boot,1,,,,
2,d1,offline,2026-03-01 10:30:00,network_error,1,online,2026-03-01 10:00:00,cold_boot,1
3,d1,online,2026-03-01 11:00:00,modem_reset,2,offline,2026-03-01 10:30:00,network_error,1
4,d1,online,2026-03-01 12:00:00,timeout,3,online,2026-03-01 11:00:00,modem_reset,2
5,d2,declared,2026-03-01 09:00:00,asset_declared,20,,,,
6,d1,offline,2026-03-01 13:00:00,client_disconnect,3,online,2026-03-01 12:00:00,timeout,3
7,d1,offline,2026-03-01 14:05:00,server_shutdown,4,offline,2026-03-01 13:00:00,client_disconnect,3"
expect "one change per transition" "$CHANGES" "$LOG"
expect "recorded_at in seq order" "t" \
  "SELECT bool_and(ok) FROM (SELECT recorded_at >= lag(recorded_at, 1, '-infinity') OVER (ORDER BY seq) AS ok FROM asset_status_changes) x"
expect "logged = asset_state" "0" \
  "SELECT count(*) FROM (TABLE asset_state EXCEPT TABLE asset_status_logged) x"

# A replay of every event: nothing stored, nothing recorded.
for f in connect disconnect reconnect lost late declare offline both; do
  "$PI_BINARY" load --pg "$PG" "$WORK/$f.jsonl" >/dev/null 2>&1 || fail "replay $f"
done
q -c "SELECT presence_rollup_refresh()" >/dev/null
expect "replay records nothing" "$CHANGES" "$LOG"

# Rewrites of asset_state that change no status record nothing: a rebuild
# (DELETE and refill), a TRUNCATE refilled in the same transaction.
q -c "SELECT presence_rollup_rebuild()" >/dev/null
q -c "TRUNCATE asset_state; SELECT presence_rollup_rebuild()" >/dev/null
q -c "BEGIN; DELETE FROM asset_state; INSERT INTO asset_state SELECT * FROM asset_status_logged; COMMIT" >/dev/null
expect "rebuilds record nothing" "$CHANGES" "$LOG"

# All of d2's events deleted: d2 has no status any more (a change to NULL).
# The notification of that commit carries its seq (8), once.
cat >"$WORK/listen.sql" <<EOF
LISTEN presence_status;
\! psql "$PG" -XAtq -c "DELETE FROM presences WHERE asset = 'd2'" -c "SELECT presence_rollup_refresh()" >/dev/null
SELECT 'after';
EOF
notes=$(psql "$PG" -XAtq -f "$WORK/listen.sql" 2>&1 | grep -c 'notification "presence_status" with payload "8"' || true)
[ "$notes" = 1 ] || { psql "$PG" -XAtq -f /dev/null; fail "one NOTIFY with payload 8 (got $notes)"; }
echo "ok: NOTIFY presence_status, payload the first new seq"
expect "gone" "8,d2,,,,,declared,2026-03-01 09:00:00,asset_declared,20" "$LOG OFFSET 7"

# A TRUNCATE of asset_state left empty: every asset gone, in asset order.
q -c "TRUNCATE asset_state" >/dev/null
expect "truncate" "9,d1,,,,,offline,2026-03-01 14:05:00,server_shutdown,4" "$LOG OFFSET 8"
q -c "SELECT presence_rollup_rebuild()" >/dev/null
expect "back" "10,d1,offline,2026-03-01 14:05:00,server_shutdown,4,,,," "$LOG OFFSET 9"

# Retention: --keep 1d trims the changes recorded more than a day ago.
q -c "UPDATE asset_status_changes SET recorded_at = now() - interval '2 days' WHERE seq <= 8" >/dev/null
"$PI_BINARY" retention --pg "$PG" --keep 1d --dry-run >"$WORK/dry.out" || fail "retention --dry-run"
grep -q "would_trim=8 " "$WORK/dry.out" || { cat "$WORK/dry.out" >&2; fail "dry run counts 8"; }
expect "dry run trims nothing" "10" "SELECT count(*) FROM asset_status_changes"
"$PI_BINARY" retention --pg "$PG" --keep 1d >"$WORK/ret.out" || fail "retention"
grep -q "trimmed=8 " "$WORK/ret.out" || { cat "$WORK/ret.out" >&2; fail "retention trims 8"; }
expect "retention trims the old changes" "9,10" "SELECT string_agg(seq::text, ',' ORDER BY seq) FROM asset_status_changes"
echo "status_changes: all ok"
