# lib.sh -- shared steps of the Citus tests (sourced, not run): skip
# without Citus, a database on the cluster and one on the single server,
# both migrated.
set -euo pipefail
: "${PI_SERVICES:?run through ctest: the fixtures start the services}"
: "${PI_BINARY:?}" "${PI_SUPPORT_DIR:?}" "${PI_SOURCE_DIR:?}"

# Exit 77 (ctest: skipped) with citus.sh's one line when the source is absent.
bash "$PI_SUPPORT_DIR/citus.sh" available || exit 77
[ -f "$PI_SERVICES/citus/conninfo" ] ||
  { echo "no Citus cluster in $PI_SERVICES/citus (the citus fixture)" >&2; exit 1; }

CITUS_NAME="citus_$(basename "$0" .sh | tr -c 'a-z0-9_\n' '_')_$$"
PG_ADMIN=$(cat "$PI_SERVICES/pg/conninfo")
CITUS_DBS=()
SINGLE_DBS=()
CITUS_WORK=$(mktemp -d "/tmp/$CITUS_NAME.XXXXXX")

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

citus_cleanup() {
  local db port
  for db in "${SINGLE_DBS[@]}"; do
    psql "$PG_ADMIN" -XAtq -c "drop database if exists $db with (force)" >/dev/null 2>&1 || true
  done
  for db in "${CITUS_DBS[@]}"; do
    for port in $(cat "$PI_SERVICES"/citus/{coordinator,worker1,worker2}/port 2>/dev/null); do
      psql "host=127.0.0.1 port=$port user=postgres dbname=postgres" -XAtq \
        -c "drop database if exists $db with (force)" >/dev/null 2>&1 || true
    done
  done
  rm -rf "$CITUS_WORK"
}

# citus_db NAME: a migrated database on the cluster; prints its conninfo.
citus_db() {
  local db="${CITUS_NAME}_$1" ci
  CITUS_DBS+=("$db")
  ci=$(bash "$PI_SUPPORT_DIR/citus.sh" createdb "$PI_SERVICES/citus" "$db" 2>/dev/null)
  "$PI_BINARY" migrate --pg "$ci" >"$CITUS_WORK/migrate.out" 2>"$CITUS_WORK/migrate.err" ||
    { cat "$CITUS_WORK/migrate.err" >&2; fail "migrate on the cluster"; }
  grep -q "applied the Citus layout" "$CITUS_WORK/migrate.out" ||
    fail "migrate did not lay the schema out for Citus: $(cat "$CITUS_WORK/migrate.out")"
  echo "$ci"
}

# single_db NAME: a migrated database on the single server; prints its
# conninfo.
single_db() {
  local db="${CITUS_NAME}_$1"
  SINGLE_DBS+=("$db")
  psql "$PG_ADMIN" -XAtq -v ON_ERROR_STOP=1 -c "create database $db" >/dev/null
  "$PI_BINARY" migrate --pg "$PG_ADMIN dbname=$db" >/dev/null
  echo "$PG_ADMIN dbname=$db"
}

# q CONNINFO SQL: psql's unaligned rows, UTC.
q() { psql "$1" -XAtq -v ON_ERROR_STOP=1 -c "set timezone = 'UTC'" -c "$2"; }

# same WHAT FILE_A FILE_B: the two outputs are equal line by line.
same() {
  diff -u "$2" "$3" >"$CITUS_WORK/diff" || { head -40 "$CITUS_WORK/diff" >&2; fail "$1: the cluster and the single server differ"; }
}
