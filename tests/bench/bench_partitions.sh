#!/usr/bin/env bash
# bench_partitions.sh -- `load` rate as presences grows: CHUNKS chunks of
# CHUNK presences, each chunk's rows/s, into the time-partitioned table of
# 0003 and, in the same run, into one unpartitioned table with schema 2's
# indexes (the comparison).
#
#   bash tests/bench/bench_partitions.sh [CHUNK] [CHUNKS] [harness|production]
#                                        [PERIOD]
#                            (defaults 5000000, 10, harness, '7 days')
#
# The issue's run is the default, 50M rows into each table. The ids follow
# the scheme (pi-gen --ids time: id >> 22 is the message's time, 4 messages
# a second, so 5M rows are 14.5 days), after the partitions `migrate`
# made, in partitions of PERIOD (presence_partitioning.period) created to
# cover them: at the default, 2.4M rows a partition. A reduced scale needs a
# shorter PERIOD to cross partitions at all (200000-row chunks are 13.9 h:
# '1 day'). Chunk k is generated once and loaded into both databases, which of
# the two goes first alternating. Settings: `harness` is the test harness's
# PostgreSQL (fsync off, synchronous_commit off, shared_buffers 128MB);
# `production` turns fsync and synchronous_commit on and shared_buffers to
# 2GB (a production server would give it about a quarter of its memory; this
# machine is shared). The output says which. Build first:
#   cmake --preset release && cmake --build --preset release
CHUNK=${1:-5000000}
CHUNKS=${2:-10}
SETTINGS=${3:-harness}
PERIOD=${4:-7 days}
source "$(dirname "$0")/bench_lib.sh"
case $SETTINGS in harness | production) ;; *) echo "settings: harness or production" >&2; exit 2 ;; esac

bash "$SUPPORT/pg.sh" start "$WORK/pg" >/dev/null
PG_ADMIN=$(cat "$WORK/pg/conninfo")
if [ "$SETTINGS" = production ]; then
  psql "$PG_ADMIN" -XAtq -c "alter system set fsync = on" -c "alter system set synchronous_commit = on" \
    -c "alter system set shared_buffers = '2GB'" -c "alter system set full_page_writes = on" >/dev/null
  bash "$SUPPORT/pg.sh" restart "$WORK/pg" >/dev/null
fi
echo "settings=$SETTINGS $(psql "$PG_ADMIN" -XAtq -c "select string_agg(name || '=' || current_setting(name), ' ' order by name) from pg_settings where name in ('fsync', 'synchronous_commit', 'shared_buffers', 'full_page_writes', 'max_wal_size')")"

newdb part
newdb flat
PART="$PG_ADMIN dbname=part"
FLAT="$PG_ADMIN dbname=flat"
# The unpartitioned comparison: schema 2's table and indexes.
psql "$FLAT" -XAtq -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
set client_min_messages = warning;
drop table presences cascade;
create table presences (
    id bigint primary key check (id > 0),
    connection_id bigint not null check (connection_id > 0),
    type text not null, reason text not null, asset text null,
    time timestamptz not null, time_offset_minutes smallint not null,
    kafka_topic text, kafka_partition int, kafka_offset bigint,
    ingested_at timestamptz not null default now());
create index presences_asset_type_time_idx on presences (asset, type, time, id) include (connection_id);
create index presences_connection_id_idx on presences (connection_id);
create index presences_time_brin on presences using brin (time);
SQL
FIRST=$(psql "$PART" -XAtq -c "select max(to_id) from presence_partitions")
psql "$PART" -XAtq -c "update presence_partitioning set period = '$PERIOD'" >/dev/null
SPAN_MS=$((CHUNK * CHUNKS * 250))
psql "$PART" -XAtq -c "select count(*) from presence_partitions_ensure(presence_id_time($FIRST), presence_id_time($FIRST) + make_interval(secs => $SPAN_MS / 1000.0) + interval '1 month')" >/dev/null
echo "chunks=$CHUNKS chunk=$CHUNK rows ids from $(psql "$PART" -XAtq -c "select presence_id_time($FIRST)") over $((SPAN_MS / 86400000)) days; period $PERIOD; partitions: $(psql "$PART" -XAtq -c "select count(*) from presence_partitions")"

# load_into DB FILE: sets RATE (rows/s).
load_into() {
  local s e
  s=$(now)
  "$BIN" load --pg "$1" --log-level warn "$2" >"$WORK/load.out"
  e=$(now)
  grep -q " stored=$CHUNK " "$WORK/load.out" || { echo "load: $(cat "$WORK/load.out")" >&2; exit 1; }
  RATE=$(rate "$CHUNK" "$s" "$e")
}
printf '%-6s %14s %14s\n' chunk partitioned unpartitioned
for k in $(seq 0 $((CHUNKS - 1))); do
  "$GEN" "$CHUNK" --first-id $((FIRST + ((k * CHUNK * 250) << 22))) --ids time >"$WORK/chunk"
  if [ $((k % 2)) = 0 ]; then
    load_into "$PART" "$WORK/chunk"; P=$RATE
    load_into "$FLAT" "$WORK/chunk"; F=$RATE
  else
    load_into "$FLAT" "$WORK/chunk"; F=$RATE
    load_into "$PART" "$WORK/chunk"; P=$RATE
  fi
  rm -f "$WORK/chunk"
  printf '%-6s %14s %14s\n' "$((k + 1))" "$P" "$F"
  [ "$k" = 0 ] && { P0=$P; F0=$F; }
done
echo "last/first: partitioned $(ratio "$P" "$P0"), unpartitioned $(ratio "$F" "$F0")"
echo "last chunk partitioned/unpartitioned: $(ratio "$P" "$F")"
for db in part flat; do
  echo "$db: $(psql "$PG_ADMIN dbname=$db" -XAtq -c "select count(*) || ' rows, ' || pg_size_pretty(pg_database_size(current_database())) from presences")"
done
echo "partitions holding rows: $(psql "$PART" -XAtq -c "select string_agg(tableoid::regclass::text || '=' || n, ' ') from (select tableoid, count(*) n from presences group by 1 order by 1) t")"
