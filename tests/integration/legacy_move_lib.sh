#!/usr/bin/env bash
# legacy_move_lib.sh -- sourced by legacy_move*.sh: a database upgraded from
# schema 2 with rows in presences_legacy, and helpers.
#
# legacy_db: the fleet of pi-gen (30 assets, 2025-05-23 .. 2025-10-20: six
# months, ids follow times) is loaded by `load` into a scratch database,
# whose rows are copied into a database at schema 2 (0001 and 0002 applied
# by psql, as a schema-2 `migrate` left them); `migrate` then applies 0003
# on: presences_legacy holds every row, its bound [MINVALUE, max id + 1).
set -euo pipefail
: "${PI_BINARY:?run through ctest}" "${PI_SERVICES:?}" "${PI_GEN:?}" "${PI_SOURCE_DIR:?}"
PG_ADMIN=$(cat "$PI_SERVICES/pg/conninfo")
WORK=$(mktemp -d "/tmp/$(basename "$0" .sh).XXXXXX")
DB=legacy_move_$$
PG="$PG_ADMIN dbname=$DB"
MOVE_KEY=2794146312081771343 # presence_legacy_move_lock_key()
cleanup() {
  jobs -p | xargs -r kill 2>/dev/null || true
  psql "$PG_ADMIN" -XAtq -c "drop database if exists $DB with (force)" >/dev/null 2>&1 || true
  psql "$PG_ADMIN" -XAtq -c "drop database if exists ${DB}_src with (force)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
q() { psql "$PG" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
# Every column of every row, in id order.
MD5_ALL="select count(*) || ' ' || md5(string_agg(p::text, E'\n' order by id)) from presences p"

legacy_db() {
  local src="$PG_ADMIN dbname=${DB}_src"
  psql "$PG_ADMIN" -XAtq -c "create database ${DB}_src" -c "create database $DB"
  "$PI_BINARY" migrate --pg "$src" >/dev/null
  "$PI_GEN" 12000 --shape fleet --assets 30 --end "$(($(date -ud 2025-10-20 +%s) * 1000))" --days 150 --seed 7 >"$WORK/base.jsonl"
  "$PI_BINARY" load --pg "$src" "$WORK/base.jsonl" >/dev/null 2>"$WORK/base.err" || fail "load: $(cat "$WORK/base.err")"
  psql "$src" -XAtq -v ON_ERROR_STOP=1 -c "\\copy (select id, connection_id, type, reason, asset, time, time_offset_minutes, kafka_topic, kafka_partition, kafka_offset, ingested_at from presences order by id) to '$WORK/base.copy'"
  {
    echo "begin;"
    cat "$PI_SOURCE_DIR/migrations/0001_initial.sql" "$PI_SOURCE_DIR/migrations/0002_reports.sql"
    echo "insert into schema_migrations (version, name) values (1, '0001_initial.sql'), (2, '0002_reports.sql');"
    echo "\\copy presences (id, connection_id, type, reason, asset, time, time_offset_minutes, kafka_topic, kafka_partition, kafka_offset, ingested_at) from '$WORK/base.copy'"
    echo "commit;"
  } | psql "$PG" -XAtq -v ON_ERROR_STOP=1 >/dev/null
  "$PI_BINARY" migrate --pg "$PG" >"$WORK/migrate.log" 2>&1 || fail "migrate: $(cat "$WORK/migrate.log")"
  N_BASE=$(wc -l <"$WORK/base.copy")
  [ "$(q "select count(*) from presences_legacy")" = "$N_BASE" ] || fail "legacy holds $(q "select count(*) from presences_legacy") of $N_BASE"
  [ "$(q "select to_id = (select max(id) + 1 from presences_legacy) from presence_partitions where partition = 'presences_legacy'")" = t ] ||
    fail "legacy's bound is not its largest id + 1"
}

# The partition each row of the moved range is in, against the one its id
# names (the month of its id's time): the rows off, and the partitions.
check_placement() {
  [ "$(q "select count(*) from presences where tableoid::regclass::text <> 'presences_p' || to_char(date_trunc('month', presence_id_time(id) at time zone 'UTC'), 'YYYYMMDD')")" = 0 ] ||
    fail "rows not in their month's partition: $(q "select tableoid::regclass, count(*) from presences where tableoid::regclass::text <> 'presences_p' || to_char(date_trunc('month', presence_id_time(id) at time zone 'UTC'), 'YYYYMMDD') group by 1")"
  [ -z "$(q "select to_regclass('presences_legacy')")" ] || fail "presences_legacy is still there"
}
