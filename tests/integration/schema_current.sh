#!/usr/bin/env bash
# schema_current.sh -- schema/current.sql is the schema `migrate` leaves:
# a fresh database migrated by this build and dumped by schema/dump.sh is
# that file byte for byte (as cli_errors.sh checks the sample config
# against --print-config). Regenerate with schema/regenerate.sh.
set -euo pipefail
: "${PI_BINARY:?run through ctest}" "${PI_SERVICES:?}" "${PI_SOURCE_DIR:?}"
PG_ADMIN=$(cat "$PI_SERVICES/pg/conninfo")
DB=schema_current_$$
WORK=$(mktemp -d /tmp/schema_current.XXXXXX)
cleanup() {
  psql "$PG_ADMIN" -XAtq -c "drop database if exists $DB with (force)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

psql "$PG_ADMIN" -XAtq -v ON_ERROR_STOP=1 -c "create database $DB"
"$PI_BINARY" migrate --pg "$PG_ADMIN dbname=$DB" >/dev/null
bash "$PI_SOURCE_DIR/schema/dump.sh" "$PG_ADMIN dbname=$DB" >"$WORK/current.sql"

# The file must say something: the stable names of CONTRACT §4 and §7.
for name in 'TABLE public.presences ' 'TABLE public.presence_rejects ' \
  'TABLE public.ingest_offsets ' 'VIEW public.asset_status ' \
  'VIEW public.connectivity_sessions ' 'FUNCTION public.daily_uptime(' \
  'FUNCTION public.reason_counts(' 'FUNCTION public.flapping_assets('; do
  grep -qF "CREATE $name" "$WORK/current.sql" || fail "the dump has no CREATE $name"
done
# What depends on the day migrate ran is out (schema/dump.sh).
! grep -q 'presences_p[0-9]' "$WORK/current.sql" || fail "a dated partition is in the dump"
! grep -q '^\\restrict' "$WORK/current.sql" || fail "pg_dump's \\restrict key is in the dump"

diff -u "$PI_SOURCE_DIR/schema/current.sql" "$WORK/current.sql" >"$WORK/diff" ||
  fail "schema/current.sql is stale (bash schema/regenerate.sh rewrites it): $(head -40 "$WORK/diff")"
echo "ok: schema/current.sql is what migrate leaves ($(wc -l <"$WORK/current.sql") lines)"
