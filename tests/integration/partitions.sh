#!/usr/bin/env bash
# partitions.sh -- 0003's time partitions: the migration of a schema-2
# database holding rows, ids with no partition, and `retention` beside a
# writer. Every expected value is worked out by hand in the comments (ids by
# shell arithmetic from the scheme: (ms since 2010-01-01) << 22, not by the
# SQL under test).
set -euo pipefail
: "${PI_BINARY:?run through ctest}" "${PI_SERVICES:?}" "${PI_SOURCE_DIR:?}" "${PI_GEN:?}"
PG_ADMIN=$(cat "$PI_SERVICES/pg/conninfo")
WORK=$(mktemp -d /tmp/partitions.XXXXXX)
DBS=()
LOADER=
ROLE="parts_reader_$$"
cleanup() {
  [ -z "$LOADER" ] || kill "$LOADER" 2>/dev/null || true
  for db in "${DBS[@]}"; do
    psql "$PG_ADMIN" -XAtq -c "drop database if exists $db with (force)" >/dev/null 2>&1 || true
  done
  psql "$PG_ADMIN" -XAtq -c "drop role if exists $ROLE" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
newdb() {
  local db="parts_$1_$$"
  DBS+=("$db")
  psql "$PG_ADMIN" -XAtq -c "create database $db"
  echo "$PG_ADMIN dbname=$db"
}
# The first id of the millisecond of an RFC 3339 UTC time.
id_at() { echo $((($(date -ud "$1" +%s) * 1000 - 1262304000000) << 22)); }
line() { # id time reason
  printf '{"id_str":"%s","connection_id_str":"7","type":"connect","reason":"%s","asset":"x1","time":"%s"}\n' "$1" "$3" "$2"
}

# --- the id ↔ time functions, by hand ---------------------------------------
# The sample's id 911270996919452058 >> 22 = 217263936262 ms after 2010:
# 2016-11-19T15:05:36.262Z (its time field says 15:05:36Z). 1 << 22 =
# 4194304 is the first id of 2010-01-01T00:00:00.001Z; half a millisecond
# rounds up to it (the smallest id whose time is at or after t).
PG=$(newdb functions)
"$PI_BINARY" migrate --pg "$PG" >/dev/null
fn() { psql "$PG" -XAtq -c "set timezone = 'UTC'" -c "$1"; }
[ "$(fn "select presence_id_time(911270996919452058)")" = "2016-11-19 15:05:36.262+00" ] || fail "presence_id_time of the sample"
[ "$(fn "select presence_id_at('2016-11-19 15:05:36.262+00')")" = $((217263936262 << 22)) ] || fail "presence_id_at of the sample's ms"
[ "$(fn "select presence_id_at('2010-01-01 00:00:00.0005+00') || ' ' || presence_id_at('2010-01-01 00:00:00.001+00') || ' ' || presence_id_at('2010-01-01+00') || ' ' || presence_id_at('1999-01-01+00')")" = "4194304 4194304 0 0" ] ||
  fail "presence_id_at near 2010"
[ "$(fn "select presence_id_at('-infinity') || ' ' || presence_id_at('infinity') || ' ' || presence_id_at('2090-01-01+00')")" = "0 9223372036854775807 9223372036854775807" ] ||
  fail "presence_id_at at the ends"
# On the scheme: within a day of the id's time, either side.
[ "$(fn "select string_agg(presence_on_scheme(911270996919452058, t)::text, ' ' order by t) from unnest(array['2016-11-18 15:05:36.262+00', '2016-11-18 15:05:36.261+00', '2016-11-20 15:05:36.262+00', '2016-11-20 15:05:36.263+00']::timestamptz[]) t")" = "false true true false" ] ||
  fail "presence_on_scheme's day"
# Periods: months from 2010-01, days binned from 2010-01-01 (a Friday).
[ "$(fn "select presence_period_floor('2026-12-02 05:00+00', '1 month') || ' ' || presence_period_floor('2026-12-02 05:00+00', '3 months') || ' ' || presence_period_floor('2026-12-02 05:00+00', '7 days')")" = "2026-12-01 00:00:00+00 2026-10-01 00:00:00+00 2026-11-27 00:00:00+00" ] ||
  fail "presence_period_floor"
echo "ok: presence_id_time, presence_id_at (ends, rounding), presence_on_scheme, presence_period_floor"

# --- (a) schema 2 → 3 on a database holding rows --------------------------
# 0001 and 0002 by hand (this build refuses to stop at 2), 1000 rows through
# COPY, 3 offsets. Ids: 997 of pi-gen's (2016, the past), one far ahead
# (2040, no partition: DEFAULT), one off the scheme (id 5), one ahead in the
# 3rd month after this one (a partition 0003 creates: moved there).
PG=$(newdb migrate)
for f in 0001_initial 0002_reports; do
  psql "$PG" -XAtq -v ON_ERROR_STOP=1 -c "begin" -f "$PI_SOURCE_DIR/migrations/$f.sql" \
    -c "insert into schema_migrations (version, name) values (${f:3:1}, '$f.sql')" -c "commit" >/dev/null
done
AHEAD=$(id_at "$(date -ud "$(date -u +%Y-%m-01) + 2 month + 3 day" +%Y-%m-%dT00:00:00Z)")
FAR=$(id_at 2040-01-10T00:00:00Z)
psql "$PG" -XAtq -v ON_ERROR_STOP=1 >/dev/null <<SQL
insert into presences (id, connection_id, type, reason, asset, time, time_offset_minutes, kafka_topic, kafka_partition, kafka_offset)
select 922746880000000000 + i, 1000 + i, 'connect', 'cold_boot', 'a' || (i % 10), timestamptz '2016-12-21' + i * interval '1 s', 0, 't', i % 3, i / 3
from generate_series(1, 997) i;
insert into presences (id, connection_id, type, reason, asset, time, time_offset_minutes) values
  ($FAR, 9, 'connect', 'idle_out', 'far', '2040-01-10', 0),
  (5, 9, 'connect', 'idle_out', 'five', '2016-12-21', 60),
  ($AHEAD, 9, 'connect', 'idle_out', 'ahead', now(), 0);
insert into ingest_offsets (consumer_group, topic, partition, next_offset) values
  ('g', 't', 0, 333), ('g', 't', 1, 333), ('g', 't', 2, 333);
SQL
# A role granted SELECT on the old table keeps it on the new one.
psql "$PG" -XAtq -v ON_ERROR_STOP=1 -c "create role $ROLE nologin" -c "grant select on presences to $ROLE" >/dev/null
sum() { psql "$PG" -XAtq -c "select count(*), md5(string_agg(p::text, ',' order by id)) from presences p"; }
offs() { psql "$PG" -XAtq -c "select string_agg(format('%s/%s/%s=%s', consumer_group, topic, partition, next_offset), ' ' order by partition) from ingest_offsets"; }
before=$(sum)
offs_before=$(offs)
"$PI_BINARY" migrate --pg "$PG" >"$WORK/m.out" || fail "migrate 2 → 3"
grep -q "^applied 0003_partitions.sql$" "$WORK/m.out" || fail "0003 not applied: $(cat "$WORK/m.out")"
[ "$(sum)" = "$before" ] || fail "rows changed by the migration: $(sum) vs $before"
[ "${before%%|*}" = 1000 ] || fail "not 1000 rows: $before"
[ "$(offs)" = "$offs_before" ] || fail "offsets changed: $(offs)"
[ "$offs_before" = "g/t/0=333 g/t/1=333 g/t/2=333" ] || fail "offsets: $offs_before"
q() { psql "$PG" -XAtq -c "$1"; }
# 998 in the old table (997 + id 5), the far one in DEFAULT, AHEAD moved to
# its month's partition, created by 0003 (3 ahead of the current month;
# 0007 cuts the old table down to its largest id and makes the current
# month's partition too).
[ "$(q "select count(*) from presences_legacy")" = 998 ] || fail "legacy does not hold 998"
[ "$(q "select id from presences_default")" = "$FAR" ] || fail "DEFAULT does not hold only the 2040 id"
[ "$(q "select tableoid::regclass from presences where id = $AHEAD")" = "presences_p$(date -ud "$(date -u +%Y-%m-01) + 2 month" +%Y%m%d)" ] ||
  fail "the id ahead is not in its month's partition: $(q "select tableoid::regclass from presences where id = $AHEAD")"
[ "$(q "select count(*) from presence_partitions where not is_default and from_id is not null")" = 4 ] || fail "not 4 partitions (current month + 3 ahead)"
# The indexes are partitioned ones, the old table's attached (not rebuilt:
# their names are the renamed originals). 0004 replaces the time BRIN with
# a minmax-multi one, so only the three B-trees are the originals.
[ "$(q "select count(*) from pg_inherits i join pg_class c on c.oid = i.inhrelid where c.relname in ('presences_legacy_pkey', 'presences_legacy_asset_type_time_idx', 'presences_legacy_connection_id_idx')")" = 3 ] ||
  fail "the old indexes are not attached to the partitioned ones"
[ "$(q "select has_table_privilege('$ROLE', 'presences', 'SELECT')::text || has_table_privilege('$ROLE', 'presences', 'INSERT')::text")" = truefalse ] ||
  fail "the old table's grant did not carry over to the partitioned presences"
psql "$PG" -XAtq -c "drop owned by $ROLE" >/dev/null
echo "ok: schema 2 → 3: 1000 rows kept (same md5), offsets and grants kept, ids routed (old table, DEFAULT, a partition ahead)"

# --- (c) ids with no partition never fail a batch --------------------------
# After the migration, through `load`: id 6 (off the scheme: the old table,
# which 0007 cut down to its largest id, 2016's), a 2041 id and a 2040-01
# id beside the one already in DEFAULT (both on the scheme: the writer makes
# their months' partitions first, 0007; January 2040's takes its row from
# DEFAULT).
FAR2=$(id_at 2041-03-01T00:00:00Z)
{ line 6 2016-12-21T00:00:00Z idle_out; line "$FAR2" 2041-03-01T00:00:00Z idle_out
  line $((FAR + 1)) 2040-01-10T00:00:01Z idle_out; } >"$WORK/c.jsonl"
"$PI_BINARY" load --pg "$PG" "$WORK/c.jsonl" >"$WORK/c.out" 2>"$WORK/c.err" || { cat "$WORK/c.err" >&2; fail "load of ids without partition"; }
grep -q "^messages=3 stored=3 duplicates=0 conflicts=0 rejected=0 skipped=0$" "$WORK/c.out" || fail "ids without partition: $(cat "$WORK/c.out")"
[ "$(q "select count(*) from presences_default")" = 0 ] || fail "DEFAULT still holds rows"
[ "$(q "select count(*) from presences_p20400101")" = 2 ] && [ "$(q "select count(*) from presences_p20410301")" = 1 ] &&
  [ "$(q "select tableoid::regclass from presences where id = 6")" = presences_legacy ] &&
  [ "$(q "select count(*) from presences")" = 1003 ] || fail "rows lost or not routed"
echo "ok: ids with no partition are stored: the writer makes their partitions (taking the row DEFAULT held), off-scheme id 6 in the old table"

# --- (b) retention ----------------------------------------------------------
# Monthly partitions 2023-12 … 2024-05 (the empty first partition dropped);
# the cutoff (--keep) falls on 2024-03-15 (+ less than a day).
#   2023-12: empty                                   → would drop (no row)
#   2024-01: 3 rows of January                       → would drop
#   2024-02: 2 rows of February + 1 id of February with time 2024-06-01
#            (a late clock, off the scheme)          → kept (a row after)
#   2024-03: 3 rows of March 1-5: rows older, but ids up to April → kept
#   2024-04, 2024-05: empty, ids after               → kept
#   DEFAULT: ids 1 2 3 (off the scheme) of 2024-01-05 → kept, never dropped
#   and the current month + 3 ahead                  → kept (4)
PG=$(newdb retention)
"$PI_BINARY" migrate --pg "$PG" >/dev/null
psql "$PG" -XAtq -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
alter table presences detach partition presences_legacy;
drop table presences_legacy;
select * from presence_partitions_ensure('2023-12-01', '2024-06-01');
select * from presence_partitions_ensure();
SQL
{
  for d in 10 11 12; do line $(($(id_at 2024-01-${d}T00:00:00Z) + 1)) 2024-01-${d}T00:00:00Z cold_boot; done
  for d in 10 11; do line $(($(id_at 2024-02-${d}T00:00:00Z) + 1)) 2024-02-${d}T00:00:00Z idle_out; done
  line $(($(id_at 2024-02-20T00:00:00Z) + 1)) 2024-06-01T00:00:00Z ppp_lost
  for d in 01 03 05; do line $(($(id_at 2024-03-${d}T00:00:00Z) + 1)) 2024-03-${d}T00:00:00Z modem_reset; done
  for i in 1 2 3; do line $i 2024-01-05T00:00:00Z sim_error; done
} >"$WORK/b.jsonl"
"$PI_BINARY" load --pg "$PG" "$WORK/b.jsonl" >/dev/null 2>"$WORK/b.err" || { cat "$WORK/b.err" >&2; fail "load b"; }
KEEP=$((($(date -u +%s) - $(date -ud 2024-03-15T00:00:00Z +%s)) / 86400))d
JAN_REASONS="type,reason,side,documented,count
connect,cold_boot,device,true,3
connect,sim_error,device,true,3"
KEPT_REASONS="type,reason,side,documented,count
connect,modem_reset,device,true,3
connect,idle_out,device,true,2
connect,ppp_lost,device,true,1"
reasons() { "$PI_BINARY" report reasons --pg "$PG" --format csv --since "$1" --until "$2" | tr -d '\r'; }
[ "$(reasons 2024-01-01T00:00:00Z 2024-02-01T00:00:00Z)" = "$JAN_REASONS" ] || fail "January before retention"
[ "$(reasons 2024-02-01T00:00:00Z 2024-07-01T00:00:00Z)" = "$KEPT_REASONS" ] || fail "the kept window before retention"

b() { echo "$(id_at "$1")"; }
# One line per partition (the estimate of rows left out: autovacuum decides
# when it is known), then the summary.
strip() { sed -E 's/ \(~[0-9]+ rows\)//' | grep -E '_p2023|_p2024|_default|^retention' | sed -E 's/cutoff [^:]+:[^:]+:[^:]+: /cutoff C: /'; }
EXPECT_DRY="would drop presences_p20231201 ids [$(b 2023-12-01T00:00:00Z), $(b 2024-01-01T00:00:00Z)) 2023-12-01T00:00:00Z..2024-01-01T00:00:00Z
would drop presences_p20240101 ids [$(b 2024-01-01T00:00:00Z), $(b 2024-02-01T00:00:00Z)) 2024-01-01T00:00:00Z..2024-02-01T00:00:00Z
kept presences_p20240201 ids [$(b 2024-02-01T00:00:00Z), $(b 2024-03-01T00:00:00Z)) 2024-02-01T00:00:00Z..2024-03-01T00:00:00Z: holds rows with time at or after the cutoff
kept presences_p20240301 ids [$(b 2024-03-01T00:00:00Z), $(b 2024-04-01T00:00:00Z)) 2024-03-01T00:00:00Z..2024-04-01T00:00:00Z: ids at or after the cutoff
kept presences_p20240401 ids [$(b 2024-04-01T00:00:00Z), $(b 2024-05-01T00:00:00Z)) 2024-04-01T00:00:00Z..2024-05-01T00:00:00Z: ids at or after the cutoff
kept presences_p20240501 ids [$(b 2024-05-01T00:00:00Z), $(b 2024-06-01T00:00:00Z)) 2024-05-01T00:00:00Z..2024-06-01T00:00:00Z: ids at or after the cutoff
kept presences_default: the DEFAULT partition (ids off the scheme) is never dropped
retention: cutoff C: would_create=0 would_drop=2 kept=9 (dry run: nothing changed)"
"$PI_BINARY" retention --pg "$PG" --keep "$KEEP" --dry-run >"$WORK/dry" || fail "retention --dry-run exit $?"
diff -u <(echo "$EXPECT_DRY") <(strip <"$WORK/dry") || fail "retention --dry-run"
[ "$(psql "$PG" -XAtq -c "select count(*) from presence_partitions")" = 11 ] || fail "the dry run changed the partitions"
echo "ok: retention --dry-run lists exactly the two partitions wholly older, changes nothing"

# The real run, while `load` writes this month's ids in a loop (batches of
# 50, 20 files of 200): none fails, none is lost.
"$PI_GEN" 4000 --first-id "$(id_at "$(date -u +%Y-%m-%dT00:00:00Z)")" >"$WORK/now.jsonl"
split -l 200 -d "$WORK/now.jsonl" "$WORK/now."
( for f in "$WORK"/now.[0-9]*; do
    "$PI_BINARY" load --pg "$PG" --batch-size 50 "$f" >>"$WORK/loader.out" 2>>"$WORK/loader.err" || { echo "load $f failed" >>"$WORK/loader.fail"; }
  done ) &
LOADER=$!
sleep 0.5
"$PI_BINARY" retention --pg "$PG" --keep "$KEEP" >"$WORK/real" || fail "retention exit $?"
wait "$LOADER"
LOADER=
[ ! -e "$WORK/loader.fail" ] || fail "a load beside retention failed: $(cat "$WORK/loader.fail" "$WORK/loader.err")"
EXPECT_REAL=$(echo "$EXPECT_DRY" | sed -e 's/^would drop/dropped/' -e 's/would_create=0 would_drop=2 kept=9 (dry run: nothing changed)/created=0 dropped=2 kept=9/')
diff -u <(echo "$EXPECT_REAL") <(strip <"$WORK/real") || fail "retention"
[ "$(psql "$PG" -XAtq -c "select count(*) from presence_partitions")" = 9 ] || fail "not 9 partitions left"
[ "$(psql "$PG" -XAtq -c "select count(*) from presences")" = $((4000 + 6 + 3)) ] || fail "rows: $(psql "$PG" -XAtq -c "select count(*) from presences") (want 4009)"
[ "$(reasons 2024-02-01T00:00:00Z 2024-07-01T00:00:00Z)" = "$KEPT_REASONS" ] || fail "the kept window changed"
[ "$(reasons 2024-01-01T00:00:00Z 2024-02-01T00:00:00Z)" = "type,reason,side,documented,count
connect,sim_error,device,true,3" ] || fail "January after retention: only DEFAULT's off-scheme rows stay"
echo "ok: retention dropped exactly those two beside a writer (4000 rows, no failure), the kept window's report unchanged"
