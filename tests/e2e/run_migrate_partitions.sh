#!/usr/bin/env bash
# Schema 2 → 3 under a running deployment: `run` stores the first 6000
# presences, the database is put back to schema 2 (an unpartitioned table
# with 0002's indexes holding those rows, the same ingest_offsets), 4000 more
# are produced (ids of the partitions 0003 creates, two far ahead: their
# own partition, which the writer makes for them since 0007),
# `migrate` applies 0003, and `run` resumes where ingest_offsets says:
# every presence exactly once, none of the first 6000 rewritten (same xmin),
# offsets at the log end. Then `migrate --move-legacy` (0010) moves the first
# 6000 out of presences_legacy into their month's partition, every row as
# it was (md5).
source "$(dirname "$0")/lib.sh"

N1=6000
N2=4000
setup 4
"$PI_GEN" "$N1" >"$WORK/a.txt"
produce "$WORK/a.txt"
start_service a
wait_for "select count(*) from presences" "$N1"
sleep 1
stop_service "$SERVICE_PID"
check_offsets_match

# Back to schema 2: what a schema-2 `run` would have left.
psql "$PG" -XAtq -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
begin;
create table p2 (like presences including defaults including constraints);
insert into p2 select * from presences;
drop table presences cascade;
drop table presence_partitioning;
drop function presence_partitions_ensure, presence_partition_retire,
  presence_partition_dropping, presence_period_floor, presence_on_scheme,
  presence_id_at, presence_id_time;
-- 0004's rollup (its triggers went with the table; asset_status with
-- asset_state: 0003 makes it again).
drop table asset_state, presence_dirty, presence_reason_minutes cascade;
drop function asset_status_of, asset_status_for, presence_rollup_lock_key,
  presence_rollup_mark, presence_rollup_truncate, presence_rollup_refresh,
  presence_rollup_rebuild;
-- 0005's (its CREATE OR REPLACE of sessions_in, daily_uptime and
-- flapping_assets is applied again with it).
drop table asset_days, asset_day_spans, asset_open_sessions cascade;
drop function session_rows, session_rows_for, daily_uptime_of,
  presence_rollup_assets, presence_local_days, presence_dirty_assets,
  asset_days_for, presence_rollup_clear;
-- 0006's (its indexes went with their tables).
drop function asset_status_by_asset, daily_uptime_by_asset;
-- 0007's (its columns of presence_dirty went with the table).
drop function presence_connection_firsts, presence_rollup_reach,
  presence_sessions_since, presence_rollup_assets_since, presence_rollup_lag;
-- 0008's status change log (its triggers went with asset_state).
drop table asset_status_changes, asset_status_logged, asset_status_touched;
drop function asset_status_log_lock_key, asset_status_touch, asset_status_log,
  asset_status_changes_trim;
-- 0009's fleet reports.
drop function presence_sessions_of, presence_gaps, presence_outage_rows,
  presence_check_debounce, asset_outages_for, asset_outages, presence_periods,
  asset_availability_for, asset_availability, fleet_availability,
  fleet_timeline_for, fleet_timeline;
-- 0010's move of presences_legacy.
drop function presence_legacy_move_step, presence_legacy_move_abandon,
  presence_legacy_move_apply, presence_legacy_move_part,
  presence_legacy_move_columns, presence_legacy_delta_mark,
  presence_legacy_move_lock_key;
drop table presence_legacy_move, presence_legacy_move_parts,
  presence_legacy_delta;
-- 0012's append fold.
drop function presence_fold_marks, presence_rollup_append;
drop table asset_fold;
alter table p2 rename to presences;
alter table presences add primary key (id);
create index presences_asset_type_time_idx on presences (asset, type, time, id) include (connection_id);
create index presences_connection_id_idx on presences (connection_id);
create index presences_time_brin on presences using brin (time);
delete from schema_migrations where version >= 3;
commit;
SQL
[ "$(sql "select relkind from pg_class where relname = 'presences'")" = r ] || fail "not back to a plain table"
offs=$(sql "select string_agg(partition || ':' || next_offset, ' ' order by partition) from ingest_offsets")
xmins=$(sql "select md5(string_agg(xmin::text, ',' order by id)) from presences")

# The next 4000: ids of the first partition ahead (next month on), and two
# far ahead (no partition: DEFAULT).
first=$(( ($(date -ud "$(date -u +%Y-%m-01) + 1 month" +%s) * 1000 - 1262304000000) << 22 ))
"$PI_GEN" $((N2 - 2)) --first-id "$first" --ids time >"$WORK/b.txt"
"$PI_GEN" 2 --first-id $(( ($(date -ud 2045-01-01 +%s) * 1000 - 1262304000000) << 22 )) --ids time >>"$WORK/b.txt"
produce "$WORK/b.txt"

"$PI_BINARY" migrate --pg "$PG" >"$WORK/migrate.log" 2>&1 || fail "migrate: $(cat "$WORK/migrate.log")"
grep -q "applied 0003_partitions.sql" "$WORK/migrate.log" || fail "0003 not applied"
grep -q "applied 0004_rollup.sql" "$WORK/migrate.log" || fail "0004 not applied"
grep -q "applied 0005_session_days.sql" "$WORK/migrate.log" || fail "0005 not applied"
grep -q "applied 0006_asset_order.sql" "$WORK/migrate.log" || fail "0006 not applied"
grep -q "applied 0007_history.sql" "$WORK/migrate.log" || fail "0007 not applied"
grep -q "applied 0008_status_changes.sql" "$WORK/migrate.log" || fail "0008 not applied"
grep -q "applied 0009_fleet_reports.sql" "$WORK/migrate.log" || fail "0009 not applied"
grep -q "applied 0010_legacy_move.sql" "$WORK/migrate.log" || fail "0010 not applied"
grep -q "applied 0011_rollup_probes.sql" "$WORK/migrate.log" || fail "0011 not applied"
grep -q "applied 0012_rollup_append.sql" "$WORK/migrate.log" || fail "0012 not applied"
[ "$(sql "select relkind from pg_class where relname = 'presences'")" = p ] || fail "presences is not partitioned"
[ "$(sql "select count(*) from presences_legacy")" = "$N1" ] || fail "the first $N1 are not in the old table"
[ "$(sql "select string_agg(partition || ':' || next_offset, ' ' order by partition) from ingest_offsets")" = "$offs" ] ||
  fail "migrate changed ingest_offsets"
[ "$(sql "select md5(string_agg(xmin::text, ',' order by id)) from presences")" = "$xmins" ] || fail "migrate rewrote rows"

start_service b
wait_for "select count(*) from presences" $((N1 + N2))
sleep 1
stop_service "$SERVICE_PID"
check_offsets_match
grep -q "stored=$N2 " "$WORK/b.log" || fail "the resumed run did not store exactly $N2: $(grep -o 'messages=.*' "$WORK/b.log" | tail -1)"
[ "$(sql "select md5(string_agg(xmin::text, ',' order by id)) from presences where id < $first")" = "$xmins" ] ||
  fail "the resumed run rewrote the first rows"
[ "$(sql "select count(*) from presences_default")" = 0 ] || fail "rows in DEFAULT"
[ "$(sql "select count(*) from presences where id >= $((($(date -ud 2045-01-01 +%s) * 1000 - 1262304000000) << 22)) and tableoid::regclass::text = 'presences_p20450101'")" = 2 ] ||
  fail "the two far ids are not in the partition the writer made for them"
[ "$(sql "select count(*) from presences p join presence_partitions q on q.partition = p.tableoid::regclass::text where q.from_id = $first")" = $((N2 - 2)) ] ||
  fail "the $((N2 - 2)) ids of next month are not in its partition"
grep -q "partitions ahead" "$WORK/b.log" && fail "the keeper failed: $(grep 'partitions ahead' "$WORK/b.log")"
log "ok: schema 2 → 3 between two runs: $N1 + $N2 exactly once, old rows untouched, offsets at the log end"

# Then the old rows move into their partitions (0010): every row as it was.
all=$(sql "select count(*) || ' ' || md5(string_agg(p::text, ',' order by id)) from presences p")
"$PI_BINARY" migrate --pg "$PG" --move-legacy >"$WORK/move.log" 2>&1 || fail "migrate --move-legacy: $(cat "$WORK/move.log")"
grep -q "^move-legacy: swapped" "$WORK/move.log" || fail "no swap: $(cat "$WORK/move.log")"
[ "$(sql "select count(*) || ' ' || md5(string_agg(p::text, ',' order by id)) from presences p")" = "$all" ] || fail "the move changed rows"
[ "$(sql "select count(*) from pg_class where relname = 'presences_legacy'")" = 0 ] || fail "presences_legacy left"
[ "$(sql "select count(*) from presences where id < $first and tableoid::regclass::text <> 'presences_p' || to_char(date_trunc('month', presence_id_time(id) at time zone 'UTC'), 'YYYYMMDD')")" = 0 ] ||
  fail "old rows outside their month's partition"
log "ok: migrate --move-legacy: the first $N1 in their month's partition, every row as it was"
