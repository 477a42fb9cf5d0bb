#!/usr/bin/env bash
# load_replay.sh -- `load` on a Citus cluster stores what a single server
# stores for the same input (a generated fleet of 200 assets over 10 days,
# ids by time over several partitions, with malformed messages), row by
# row: presences, the rejects, the rollup after a catch-up. Loading the
# same file again (two writers) writes nothing and marks nothing for the
# rollup; --on-conflict replace of changed rows moves the rollup the same
# way on both.
source "$(dirname "$0")/lib.sh"
: "${PI_GEN:?}"
trap citus_cleanup EXIT

"$PI_GEN" 20000 --shape fleet --assets 200 --days 10 --seed 7 >"$CITUS_WORK/fleet.jsonl"
# Malformed lines among them: rejects on both sides.
awk 'NR % 997 == 0 { print "{\"id_str\": broken" } { print }' "$CITUS_WORK/fleet.jsonl" >"$CITUS_WORK/in.jsonl"
n=$(grep -c . "$CITUS_WORK/in.jsonl")
c=$(citus_db load)
s=$(single_db load)

load() { # CONNINFO FILE ARGS…: load's summary line
  "$PI_BINARY" load --pg "$1" --batch-size 2000 "${@:3}" "$2" 2>>"$CITUS_WORK/load.err" ||
    { tail -5 "$CITUS_WORK/load.err" >&2; fail "load $2 into $1"; }
}
out_c=$(load "$c" "$CITUS_WORK/in.jsonl")
out_s=$(load "$s" "$CITUS_WORK/in.jsonl")
[ "$out_c" = "$out_s" ] || fail "first load: cluster '$out_c', single server '$out_s'"
echo "ok: first load, the same summary: $out_c"
case $out_c in "messages=$n stored="*" rejected=0 "*) fail "no rejects: $out_c" ;; esac
[ "$(q "$c" "select count(distinct p.groupid) from (select distinct get_shard_id_for_distribution_column('presences', id) as sid from presences) x join pg_dist_placement p on p.shardid = x.sid")" = 2 ] ||
  fail "the rows are not on both workers"
[ "$(q "$c" "select count(*) from pg_inherits where inhparent = 'presences'::regclass")" -ge 3 ] ||
  fail "expected several partitions"

ROWS="select id, connection_id, type, reason, asset, time, time_offset_minutes, kafka_topic, kafka_partition, kafka_offset from presences order by id"
REJECTS="select topic, partition, \"offset\", element, error, detail, payload from presence_rejects order by 1, 2, 3, 4"
ROLLUP="
select 'state', asset, state, since::text, reason, connection_id::text from asset_state
union all select 'day', asset, day::text, online_us::text, sessions::text, disconnects::text from asset_days
union all select 'span', asset, day::text, lo::text, hi::text, null from asset_day_spans
union all select 'open', asset, null, null, null, null from asset_open_sessions
union all select 'minute', type, reason, minute::text, n::text, null from presence_reason_minutes
order by 1, 2, 3, 4, 5, 6"
compare_all() { # WHAT
  q "$c" "$ROWS" >"$CITUS_WORK/c.rows"; q "$s" "$ROWS" >"$CITUS_WORK/s.rows"
  same "$1: presences" "$CITUS_WORK/c.rows" "$CITUS_WORK/s.rows"
  q "$c" "$REJECTS" >"$CITUS_WORK/c.rej"; q "$s" "$REJECTS" >"$CITUS_WORK/s.rej"
  same "$1: presence_rejects" "$CITUS_WORK/c.rej" "$CITUS_WORK/s.rej"
  for db in "$c" "$s"; do q "$db" "select presence_rollup_refresh()" >/dev/null; done
  q "$c" "$ROLLUP" >"$CITUS_WORK/c.rollup"; q "$s" "$ROLLUP" >"$CITUS_WORK/s.rollup"
  same "$1: the rollup" "$CITUS_WORK/c.rollup" "$CITUS_WORK/s.rollup"
  echo "ok: $1: $(wc -l <"$CITUS_WORK/s.rows") presences, $(wc -l <"$CITUS_WORK/s.rej") rejects, $(wc -l <"$CITUS_WORK/s.rollup") rollup rows the same"
}
compare_all "first load"

# The same file again, two writers: nothing stored, nothing marked.
out_c=$(load "$c" "$CITUS_WORK/in.jsonl" --writers 2)
case $out_c in *" stored=0 "*) ;; *) fail "replayed load stored rows: $out_c" ;; esac
[ "$(q "$c" "select count(*) from presence_dirty")" = 0 ] ||
  fail "a replay of stored rows marked the rollup"
load "$s" "$CITUS_WORK/in.jsonl" --writers 2 >/dev/null
compare_all "load again"

# The probe of a replay, as the coordinator sends it on (its log, with
# citus.log_remote_commands for this load only): one statement per shard
# per batch, each routed to its one shard -- the writer's per-shard arrays
# (lib/writer/shards.c hashes ids as PostgreSQL's hashint8 does; a wrong
# hash would send each array to several shards, up to 4 x 4 per batch).
coord_log=$(cat "$PI_SERVICES/citus/coordinator/pgroot")/postgres.log
from=$(wc -l <"$coord_log")
load "$c options='-c citus.log_remote_commands=on -c log_min_messages=notice'" "$CITUS_WORK/in.jsonl" >/dev/null
batches=$(( (n + 1999) / 2000 ))
probes=$(tail -n +"$((from + 1))" "$coord_log" | grep -c 'issuing SELECT id, connection_id' || true)
[ "$probes" = $((4 * batches)) ] ||
  fail "the probe reached $probes shards in $batches batches (expected 4 per batch: one array per shard)"
echo "ok: the replay's probe: $probes shard statements for $batches batches"

# Replace: 300 stored presences come back with another reason (and a
# disconnect turned into a connect every 7th), on both.
awk 'NR % 50 == 3 { sub(/"reason":"[^"]*"/, "\"reason\":\"modem_reset\""); if (NR % 7 == 0) sub(/"type":"disconnect"/, "\"type\":\"connect\""); print }' \
  "$CITUS_WORK/fleet.jsonl" >"$CITUS_WORK/changed.jsonl"
out_c=$(load "$c" "$CITUS_WORK/changed.jsonl" --on-conflict replace)
out_s=$(load "$s" "$CITUS_WORK/changed.jsonl" --on-conflict replace)
[ "$out_c" = "$out_s" ] || fail "replace: cluster '$out_c', single server '$out_s'"
case $out_c in *" conflicts=0 "*) fail "replace changed nothing: $out_c" ;; esac
echo "ok: replace, the same summary: $out_c"
compare_all "replace"

# The writer's statements on Citus (rows.c: probe, COPY, the no-op UPDATE
# that enlists the COPY's connections, on one id per shard written as
# presence_rollup_mark_fresh_ids() returns them) with worker 1's backends
# ended just
# before COMMIT: the COMMIT fails and nothing of the transaction stays, the
# coordinator's own row neither. (Without the UPDATE, Citus 13.2.2 commits
# the rest: logged, not asserted.)
db=${c##*dbname=}
w1=$(cat "$PI_SERVICES/citus/worker1/port")
q "$c" "create table t_local (x int)" >/dev/null
broken_commit() { # WITH_UPDATE: prints "rows local"
  local ids="array(select generate_series(5000001, 5000100))"
  {
    echo "BEGIN;"
    echo "SELECT count(*) FROM presences WHERE id = ANY ($ids);"
    echo "COPY presences (id, connection_id, type, reason, asset, time, time_offset_minutes) FROM STDIN;"
    for i in $(seq 1 100); do printf '50%05d\t1\tconnect\tcold_boot\tz%s\t2026-03-01 00:00:00+00\t0\n' "$i" "$i"; done
    echo '\.'
    if [ "$1" = 1 ]; then
      echo "SELECT array_agg(i) AS reps FROM (SELECT min(i) AS i FROM unnest($ids) i GROUP BY get_shard_id_for_distribution_column('presences', i)) s \\gset"
      echo "SELECT cardinality(:'reps'::int8[]) AS n_reps;"
      echo "UPDATE presences SET connection_id = connection_id WHERE id = ANY (:'reps'::int8[]) AND connection_id < 0;"
    fi
    echo "\\! psql 'host=127.0.0.1 port=$w1 user=postgres dbname=$db' -XAtqc \"select count(pg_terminate_backend(pid)) from pg_stat_activity where datname = '$db' and pid <> pg_backend_pid() and backend_type = 'client backend'\" >/dev/null"
    echo "INSERT INTO t_local VALUES (1);"
    echo "COMMIT;"
  } >"$CITUS_WORK/broken.sql"
  psql "$c" -X -f "$CITUS_WORK/broken.sql" >"$CITUS_WORK/broken.out" 2>&1 || true
  echo "$(q "$c" "select count(*) from presences where id between 5000001 and 5000100") $(q "$c" "select count(*) from t_local")"
  q "$c" "delete from presences where id between 5000001 and 5000100; delete from t_local" >/dev/null
}
got=$(broken_commit 1)
[ "$got" = "0 0" ] || fail "a worker connection broken before COMMIT: $got (rows, coordinator rows) stayed"
grep -q "ERROR" "$CITUS_WORK/broken.out" || fail "the COMMIT did not fail: $(cat "$CITUS_WORK/broken.out")"
# 100 ids over 4 shards: one id each, not 100.
grep -qx ' *4' "$CITUS_WORK/broken.out" || fail "the enlisting UPDATE did not name one id per shard: $(cat "$CITUS_WORK/broken.out")"
echo "ok: a worker's connection broken before COMMIT fails the whole transaction"
echo "(without the enlisting UPDATE, Citus kept: $(broken_commit 0) (rows, coordinator rows))"
