#!/usr/bin/env bash
# regenerate.sh -- rewrite schema/current.sql from the migrations of this tree
#
#   bash schema/regenerate.sh [BUILD_DIR]     (default: build/dev)
#
# Starts a throwaway PostgreSQL with the test harness (tests/support/pg.sh),
# runs BUILD_DIR's `presence-ingest migrate` on an empty database, and dumps
# it with schema/dump.sh. Run it after adding a migration (and rebuilding),
# then commit schema/current.sql with the migration.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build/dev}
bin=$build/cmd/presence-ingest/presence-ingest
[ -x "$bin" ] || { echo "regenerate.sh: no $bin: build first" >&2; exit 2; }
work=$(mktemp -d /tmp/schema-regenerate.XXXXXX)
cleanup() {
  bash "$root/tests/support/pg.sh" stop "$work/pg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
bash "$root/tests/support/pg.sh" start "$work/pg" >/dev/null
admin=$(cat "$work/pg/conninfo")
psql "$admin" -XAtq -v ON_ERROR_STOP=1 -c 'create database schema_current'
"$bin" migrate --pg "$admin dbname=schema_current" >/dev/null
bash "$root/schema/dump.sh" "$admin dbname=schema_current" >"$work/current.sql"
mv "$work/current.sql" "$root/schema/current.sql"
echo "schema/current.sql: $(wc -l <"$root/schema/current.sql") lines, $(grep -c '^CREATE' "$root/schema/current.sql") CREATE statements"
