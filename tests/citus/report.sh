#!/usr/bin/env bash
# report.sh -- every report kind (--format csv) and the rollup's tables on
# a Citus cluster equal, row by row, those of a single server holding the
# same hand-made fleets (the report tests' data: report_fleet.jsonl,
# report_fleet_ops.jsonl, report_dst.jsonl, whose answers the integration
# tests work out by hand). The cluster's rows are spread over both workers,
# and its rollup was marked by the writer (no trigger on presences there).
source "$(dirname "$0")/lib.sh"
trap citus_cleanup EXIT
DATA=$PI_SOURCE_DIR/tests/integration/data

# compare NAME CLUSTER SINGLE KIND ARGS…: `report KIND ARGS --format csv`
# prints the same on both.
compare() {
  local name=$1 c=$2 s=$3 rc=0
  shift 3
  "$PI_BINARY" report "$@" --pg "$c" --format csv >"$CITUS_WORK/c.out" 2>"$CITUS_WORK/c.err" || rc=$?
  [ $rc = 0 ] || { cat "$CITUS_WORK/c.err" >&2; fail "$name: report on the cluster: exit $rc"; }
  "$PI_BINARY" report "$@" --pg "$s" --format csv >"$CITUS_WORK/s.out" 2>"$CITUS_WORK/s.err" || rc=$?
  [ $rc = 0 ] || { cat "$CITUS_WORK/s.err" >&2; fail "$name: report on the single server: exit $rc"; }
  [ "$(wc -l <"$CITUS_WORK/s.out")" -gt 1 ] || [ "${ALLOW_EMPTY:-}" = 1 ] ||
    fail "$name: no rows on the single server either (a comparison of nothing)"
  same "$name" "$CITUS_WORK/c.out" "$CITUS_WORK/s.out"
  echo "ok: $name ($(($(wc -l <"$CITUS_WORK/s.out") - 1)) rows)"
}

# The rollup's tables, whole, in one order.
ROLLUP="
select 'state', asset, state, since::text, reason, connection_id::text from asset_state
union all select 'day', asset, day::text, online_us::text, sessions::text, disconnects::text from asset_days
union all select 'span', asset, day::text, lo::text, hi::text, null from asset_day_spans
union all select 'open', asset, null, null, null, null from asset_open_sessions
union all select 'minute', type, reason, minute::text, n::text, null from presence_reason_minutes
order by 1, 2, 3, 4, 5, 6"

for set in fleet fleet_ops dst; do
  c=$(citus_db "$set")
  s=$(single_db "$set")
  for db in "$c" "$s"; do
    "$PI_BINARY" load --pg "$db" "$DATA/report_$set.jsonl" >>"$CITUS_WORK/load.out" 2>"$CITUS_WORK/load.err" ||
      { cat "$CITUS_WORK/load.err" >&2; fail "load report_$set.jsonl"; }
  done
  [ "$(q "$c" "select count(*) from pg_dist_partition where logicalrelid = 'presences'::regclass")" = 1 ] ||
    fail "$set: presences is not distributed on the cluster"
  [ "$(q "$c" "select count(*) from pg_trigger where tgrelid = 'presences'::regclass and not tgisinternal")" = 0 ] ||
    fail "$set: presences keeps triggers on the cluster"
  [ "$(q "$c" "select count(distinct p.groupid) from (select distinct get_shard_id_for_distribution_column('presences', id) as sid from presences) x join pg_dist_placement p on p.shardid = x.sid")" = 2 ] ||
    fail "$set: the rows are not on both workers"
  [ "$(q "$c" "select count(*) from presence_dirty")" -gt 0 ] ||
    fail "$set: the writer marked nothing for the rollup"
  q "$c" "select id, connection_id, type, reason, asset, time, time_offset_minutes from presences order by id" >"$CITUS_WORK/c.rows"
  q "$s" "select id, connection_id, type, reason, asset, time, time_offset_minutes from presences order by id" >"$CITUS_WORK/s.rows"
  same "$set: presences" "$CITUS_WORK/c.rows" "$CITUS_WORK/s.rows"
  for db in "$c" "$s"; do
    q "$db" "select presence_rollup_refresh()" >/dev/null
  done
  q "$c" "$ROLLUP" >"$CITUS_WORK/c.rollup"
  q "$s" "$ROLLUP" >"$CITUS_WORK/s.rollup"
  [ -s "$CITUS_WORK/s.rollup" ] || fail "$set: empty rollup"
  same "$set: the rollup's tables" "$CITUS_WORK/c.rollup" "$CITUS_WORK/s.rollup"
  echo "ok: $set: presences and the rollup ($(wc -l <"$CITUS_WORK/s.rollup") rows)"
  case $set in
    fleet) since=2026-03-01T00:00:00Z until=2026-03-03T06:00:00Z ;;
    fleet_ops) since=2026-03-30T00:00:00Z until=2026-03-30T18:00:00Z ;;
    dst) since=2026-03-27T00:00:00Z until=2026-04-01T00:00:00Z ;;
  esac
  W=(--since "$since" --until "$until")
  compare "$set status" "$c" "$s" status
  ALLOW_EMPTY=1 compare "$set status offline" "$c" "$s" status --state offline
  compare "$set sessions" "$c" "$s" sessions "${W[@]}"
  compare "$set uptime" "$c" "$s" uptime "${W[@]}"
  compare "$set uptime Europe/Paris" "$c" "$s" uptime "${W[@]}" --tz Europe/Paris
  compare "$set reasons" "$c" "$s" reasons "${W[@]}"
  # Window edges inside minutes: reason_counts reads presences for the
  # partial minutes (on the cluster only the window's rows are copied); the
  # fleet's disconnect of a1 at 2026-03-02T02:00:00Z falls in [02:00:00,
  # until).
  [ "$set" != fleet ] || compare "$set reasons, edges inside minutes" "$c" "$s" reasons \
    --since 2026-03-01T00:00:30Z --until 2026-03-02T02:00:30Z
  ALLOW_EMPTY=1 compare "$set flapping" "$c" "$s" flapping "${W[@]}" --threshold 2 --window 1h
  compare "$set outages" "$c" "$s" outages "${W[@]}"
  compare "$set outages debounced" "$c" "$s" outages "${W[@]}" --debounce 5m
  compare "$set availability" "$c" "$s" availability "${W[@]}"
  compare "$set availability by day" "$c" "$s" availability "${W[@]}" --period day
  compare "$set availability fleet" "$c" "$s" availability "${W[@]}" --fleet
  compare "$set fleet" "$c" "$s" fleet "${W[@]}" --step 3h
  asset=$(q "$s" "select asset from asset_state order by asset limit 1")
  compare "$set sessions of $asset" "$c" "$s" sessions "${W[@]}" --asset "$asset"
done
echo "ok: every report kind the same on the cluster as on one server"
