#!/usr/bin/env bash
# rollup_property.sh -- migration 0007's incremental rollup equals
# presence_rollup_rebuild(): for PI_PROP_SEEDS random histories (late and
# out-of-order events, lost disconnects, orphans, replays, DELETEs,
# UPDATEs, the retention of a partition; data/rollup_property.sql), written
# in random batches with catch-ups of random size between them, every
# rollup table equals the rebuild's, EXCEPT ALL both ways, at random
# checkpoints and at the end. The reference is the rebuild (the whole
# recomputation 0005 defined), not the code under test: a catch-up that
# kept a day it should have recomputed shows up as a row on one side only.
set -euo pipefail
: "${PI_BINARY:?run through ctest}" "${PI_SERVICES:?}" "${PI_SOURCE_DIR:?}"
SEEDS=${PI_PROP_SEEDS:-200}
FIRST=${PI_PROP_FIRST:-1}
PG_ADMIN=$(cat "$PI_SERVICES/pg/conninfo")
DB=rollup_property_$$
cleanup() {
  psql "$PG_ADMIN" -XAtq -c "drop database if exists $DB with (force)" >/dev/null 2>&1 || true
}
trap cleanup EXIT
PG="$PG_ADMIN dbname=$DB"
psql "$PG_ADMIN" -XAtq -c "create database $DB"
"$PI_BINARY" migrate --pg "$PG" >/dev/null
psql "$PG" -XAtq -v ON_ERROR_STOP=1 \
  -f "$PI_SOURCE_DIR/tests/integration/data/rollup_property.sql" >/dev/null
# One statement per seed (each its own transaction); a failing seed prints
# its number and the rows that differ.
bad=$(seq "$FIRST" $((FIRST + SEEDS - 1)) |
  sed 's/.*/SELECT & AS seed, pi_prop(&) AS diff;/' |
  psql "$PG" -XAtq -v ON_ERROR_STOP=1 -F' ' | grep -v ' $' || true)
if [ -n "$bad" ]; then
  echo "FAIL: seeds where the rollup differs from presence_rollup_rebuild():" >&2
  echo "$bad" | head -5 >&2
  exit 1
fi
echo "ok: $SEEDS seeds from $FIRST: the incremental rollup equals the rebuild"
