#!/usr/bin/env bash
# backfill_partitions.sh -- partitions for whatever is written (0007 and the
# writer's lib/writer/ranges.c): on a fresh migrated database,
# presences_legacy holds no id range any more (MINVALUE TO 1); a backfill of
# February–May 2025, split in two files loaded by two `load`s at once (they
# race for the same four months), creates each month's partition once, and
# every row lands in its month's partition (none in presences_legacy or
# DEFAULT); `retention` then drops exactly the months wholly older than
# --keep, and the rows of the months kept are untouched (md5).
set -euo pipefail
: "${PI_BINARY:?run through ctest}" "${PI_SERVICES:?}" "${PI_GEN:?}"
PG_ADMIN=$(cat "$PI_SERVICES/pg/conninfo")
WORK=$(mktemp -d /tmp/backfill_partitions.XXXXXX)
DB=backfill_partitions_$$
cleanup() {
  psql "$PG_ADMIN" -XAtq -c "drop database if exists $DB with (force)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
PG="$PG_ADMIN dbname=$DB"
q() { psql "$PG" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
psql "$PG_ADMIN" -XAtq -c "create database $DB"
"$PI_BINARY" migrate --pg "$PG" >/dev/null

[ "$(q "select coalesce(from_id::text, 'MINVALUE') || ' ' || to_id from presence_partitions where partition = 'presences_legacy'")" = "MINVALUE 1" ] ||
  fail "presences_legacy still takes ids: $(q "select to_id from presence_partitions where partition = 'presences_legacy'")"
echo "ok: a fresh presences_legacy covers no id"

# 2025-02-19 .. 2025-05-20 (pi-gen's fleet: ids follow times).
"$PI_GEN" 4000 --shape fleet --assets 40 --end "$(($(date -ud 2025-05-20 +%s) * 1000))" --days 90 --seed 3 >"$WORK/all.jsonl"
N=$(wc -l <"$WORK/all.jsonl")
awk 'NR % 2' "$WORK/all.jsonl" >"$WORK/a.jsonl"
awk '!(NR % 2)' "$WORK/all.jsonl" >"$WORK/b.jsonl"
"$PI_BINARY" load --pg "$PG" --batch-size 100 --log-level debug "$WORK/a.jsonl" >"$WORK/a.out" 2>"$WORK/a.err" &
A=$!
"$PI_BINARY" load --pg "$PG" --batch-size 100 --log-level debug "$WORK/b.jsonl" >"$WORK/b.out" 2>"$WORK/b.err" &
B=$!
wait "$A" || fail "load a: $(cat "$WORK/a.err")"
wait "$B" || fail "load b: $(cat "$WORK/b.err")"
[ "$(q "select count(*) from presences")" = "$N" ] || fail "rows: $(q "select count(*) from presences") of $N"
[ "$(q "select count(*) from presences_legacy")" = 0 ] || fail "rows in presences_legacy"
[ "$(q "select count(*) from presences_default")" = 0 ] || fail "rows in presences_default"
MONTHS="presences_p20250201 presences_p20250301 presences_p20250401 presences_p20250501"
[ "$(q "select string_agg(p, ' ' order by p) from (select distinct tableoid::regclass::text p from presences) x")" = "$MONTHS" ] ||
  fail "partitions holding rows: $(q "select string_agg(distinct tableoid::regclass::text, ' ') from presences")"
# Each created once, by one of the two writers (the other found it made).
[ "$(cat "$WORK/a.err" "$WORK/b.err" | grep -o 'created partition presences_p2025[0-9]*' | sort | tr '\n' ' ')" = \
  "created partition presences_p20250201 created partition presences_p20250301 created partition presences_p20250401 created partition presences_p20250501 " ] ||
  fail "partitions created: $(cat "$WORK/a.err" "$WORK/b.err" | grep -o 'created partition [a-z_0-9]*')"
echo "ok: a backfill of 2025 by two writers at once made 2025's four months, each once; no row in legacy or DEFAULT"

# Retention with the cutoff on 2025-04-10 (+ less than a day): February and
# March go; April (ids after the cutoff) and May stay, untouched.
KEEP=$(( ($(date -u +%s) - $(date -ud 2025-04-10 +%s)) / 86400 ))d
kept=$(q "select count(*), md5(string_agg(p::text, ',' order by id)) from presences p where time >= '2025-04-01'")
"$PI_BINARY" retention --pg "$PG" --keep "$KEEP" >"$WORK/ret" 2>&1 || fail "retention: $(cat "$WORK/ret")"
[ "$(grep -o '^dropped presences_p[0-9]*' "$WORK/ret" | tr '\n' ' ')" = "dropped presences_p20250201 dropped presences_p20250301 " ] ||
  fail "retention dropped: $(grep '^dropped' "$WORK/ret")"
[ "$(q "select count(*) from presences where time < '2025-04-01'")" = 0 ] || fail "rows before April left"
[ "$(q "select count(*), md5(string_agg(p::text, ',' order by id)) from presences p where time >= '2025-04-01'")" = "$kept" ] ||
  fail "the months kept changed"
echo "ok: retention --keep $KEEP dropped exactly February and March 2025; April and May untouched (md5)"
