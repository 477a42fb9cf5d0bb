#!/usr/bin/env bash
# load_pg_restart.sh -- PostgreSQL restarted in the middle of a large load:
# the load waits, reconnects, retries its batch and finishes; every row is
# stored exactly once and the summary's figures are exact (a COMMIT whose
# reply was lost is resolved, not counted twice). Restarts the shared server:
# registered SERIAL.
set -euo pipefail
: "${PI_BINARY:?run through ctest}" "${PI_SERVICES:?}" "${PI_GEN:?}" "${PI_SUPPORT_DIR:?}"
N=${PI_RESTART_ROWS:-400000}
PG_ADMIN=$(cat "$PI_SERVICES/pg/conninfo")
DB="load_restart_$$"
PG="$PG_ADMIN dbname=$DB"
WORK=$(mktemp -d /tmp/load_restart.XXXXXX)
LOAD_PID=
cleanup() {
  [ -n "$LOAD_PID" ] && kill -9 "$LOAD_PID" 2>/dev/null || true
  psql "$PG_ADMIN" -XAtq -c "drop database if exists $DB with (force)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; tail -n 20 "$WORK/err" >&2 || true; exit 1; }
sql() { psql "$PG" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }

psql "$PG_ADMIN" -XAtq -c "create database $DB"
"$PI_BINARY" migrate --pg "$PG" >/dev/null
"$PI_GEN" "$N" >"$WORK/in.txt"

"$PI_BINARY" load --pg "$PG" --batch-size 2000 --backoff-min-ms 50 \
  --backoff-max-ms 500 "$WORK/in.txt" >"$WORK/out" 2>"$WORK/err" &
LOAD_PID=$!

# Restart once some rows are in, well before the end.
for _ in $(seq 1 600); do
  n=$(sql "select count(*) from presences" 2>/dev/null || echo 0)
  [ "$n" -gt 20000 ] && break
  sleep 0.05
done
[ "$n" -lt "$N" ] || fail "the load finished before the restart: raise PI_RESTART_ROWS"
echo "restarting PostgreSQL with $n of $N rows stored"
bash "$PI_SUPPORT_DIR/pg.sh" restart "$PI_SERVICES/pg"

rc=0
wait "$LOAD_PID" || rc=$?
LOAD_PID=
[ "$rc" = 0 ] || fail "load exited $rc"
grep -q "retrying" "$WORK/err" || fail "no retry was logged: was the load interrupted?"
grep -c "retrying" "$WORK/err" | sed 's/^/retries logged: /'
[ "$(cat "$WORK/out")" = "messages=$N stored=$N duplicates=0 conflicts=0 rejected=0 skipped=0" ] ||
  fail "summary: $(cat "$WORK/out")"
[ "$(sql "select count(*) || ':' || count(distinct id) from presences")" = "$N:$N" ] ||
  fail "rows: $(sql "select count(*) from presences")"
[ "$(sql "select count(*) from presence_rejects")" = 0 ] || fail "rejects"
echo "load survived a PostgreSQL restart: $N rows, each once"
