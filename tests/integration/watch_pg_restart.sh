#!/usr/bin/env bash
# watch_pg_restart.sh -- `watch` across a PostgreSQL restart: changes are
# recorded before, and right after while watch is still reconnecting; it
# reconnects (one warning, one info line), resumes after its last seq and
# prints every change once.
set -euo pipefail
: "${PI_BINARY:?run through ctest}" "${PI_SERVICES:?}" "${PI_SUPPORT_DIR:?}"
PG_ADMIN=$(cat "$PI_SERVICES/pg/conninfo")
WORK=$(mktemp -d /tmp/watch_restart.XXXXXX)
DB=watch_restart_$$
WP=
cleanup() {
  [ -z "$WP" ] || kill -9 "$WP" 2>/dev/null || true
  psql "$PG_ADMIN" -XAtq -c "drop database if exists $DB with (force)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
PG="$PG_ADMIN dbname=$DB"
q() { psql "$PG" -XAtq -v ON_ERROR_STOP=1 "$@"; }
psql "$PG_ADMIN" -XAtq -c "create database $DB"
"$PI_BINARY" migrate --pg "$PG" >/dev/null
# round R: 200 assets connect (even R) or disconnect (odd R): 200 changes.
round() {
  local r=$1 type=connect conn=$1
  [ $((r % 2)) = 1 ] && type=disconnect conn=$((r - 1))
  q -c "INSERT INTO presences (id, connection_id, type, reason, asset, time, time_offset_minutes)
        SELECT $r * 1000 + i, $conn * 1000 + i, '$type', 'r$r', 'w' || i,
               '2026-03-01'::timestamptz + ($r * 1000 + i) * interval '1 second', 0
        FROM generate_series(1, 200) i" -c "SELECT presence_rollup_refresh()" >/dev/null
}
"$PI_BINARY" watch --pg "$PG" --after 0 --format csv >"$WORK/out.csv" 2>"$WORK/watch.err" &
WP=$!
for r in 0 1 2; do round "$r"; done
for _ in $(seq 100); do [ "$(wc -l <"$WORK/out.csv")" = 601 ] && break; sleep 0.1; done
[ "$(wc -l <"$WORK/out.csv")" = 601 ] || fail "600 changes not printed before the restart"
bash "$PI_SUPPORT_DIR/pg.sh" restart "$PI_SERVICES/pg" >/dev/null 2>&1 || fail "restarting PostgreSQL"
# At once: watch is still waiting to reconnect (backoff from 100 ms).
for r in 3 4 5 6; do round "$r"; done
for _ in $(seq 150); do [ "$(wc -l <"$WORK/out.csv")" = 1401 ] && break; sleep 0.1; done
kill -TERM "$WP"
wait "$WP" || fail "watch exit $?"
WP=
tail -n +2 "$WORK/out.csv" | cut -d, -f1 >"$WORK/seqs"
seq 1 1400 | diff -q - "$WORK/seqs" >/dev/null ||
  fail "not each of the 1400 changes once: $(wc -l <"$WORK/out.csv") lines; $(cat "$WORK/watch.err")"
grep -q "level=warn.*reconnecting (after seq 600)" "$WORK/watch.err" || fail "no reconnect warning: $(cat "$WORK/watch.err")"
[ "$(grep -c . "$WORK/watch.err")" = 2 ] || fail "two log lines expected: $(cat "$WORK/watch.err")"
grep -q "level=info.*reconnected after .* read on after seq 600 (now at" "$WORK/watch.err" || fail "no reconnect info: $(cat "$WORK/watch.err")"
echo "ok: watch across a PostgreSQL restart: 1400 changes, each once"
