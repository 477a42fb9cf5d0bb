#!/usr/bin/env bash
# roles.sh -- deploy/sql/roles.sql on a Citus cluster: it runs there (twice:
# re-runnable), and the service works with least privilege: `load` as a
# member of presence_writer only (partitions made, rollup marked, the
# catch-up run), every report kind as a member of presence_reader only,
# the same answers as one server with the same roles; and neither role can
# do what it is not meant to (the reader writes nothing, the writer deletes
# nothing and updates no column but the enlisting UPDATE's connection_id).
source "$(dirname "$0")/lib.sh"
DATA=$PI_SOURCE_DIR/tests/integration/data
W=${CITUS_NAME}_w
R=${CITUS_NAME}_r
drop_roles() {
  local ci
  for ci in "$(cat "$PI_SERVICES/citus/conninfo")" "$PG_ADMIN"; do
    psql "$ci" -XAtq -c "drop role if exists $W" -c "drop role if exists $R" >/dev/null 2>&1 || true
  done
}
trap 'citus_cleanup; drop_roles' EXIT

c=$(citus_db roles)
s=$(single_db roles)
for db in "$c" "$c" "$s"; do
  psql "$db" -XAtq -v ON_ERROR_STOP=1 -f "$PI_SOURCE_DIR/deploy/sql/roles.sql" >"$CITUS_WORK/roles.out" 2>&1 ||
    { cat "$CITUS_WORK/roles.out" >&2; fail "roles.sql on $db"; }
done
echo "ok: roles.sql runs on the cluster, twice"
# migrate again: it now runs as presence_owner (SET ROLE), and citus.sql
# replaces its functions and wrappers, which roles.sql gave that role.
"$PI_BINARY" migrate --pg "$c" >"$CITUS_WORK/migrate.again" 2>&1 ||
  { cat "$CITUS_WORK/migrate.again" >&2; fail "migrate after roles.sql on the cluster"; }
psql "$c" -XAtq -v ON_ERROR_STOP=1 -f "$PI_SOURCE_DIR/deploy/sql/roles.sql" >"$CITUS_WORK/roles.out" 2>&1 ||
  { cat "$CITUS_WORK/roles.out" >&2; fail "roles.sql after migrate on the cluster"; }
echo "ok: migrate after roles.sql, then roles.sql again"
# Login roles: Citus makes them on the workers too.
for db in "$c" "$s"; do
  q "$db" "create role $W login in role presence_writer; create role $R login in role presence_reader" >/dev/null
done

# load as the writer: the same summary as one server's writer, the rollup
# marked and caught up.
for db in "$c" "$s"; do
  "$PI_BINARY" load --pg "$db user=$W" "$DATA/report_fleet.jsonl" >"$CITUS_WORK/load.$W.out" 2>"$CITUS_WORK/load.err" ||
    { cat "$CITUS_WORK/load.err" >&2; fail "load as $W into $db"; }
  ! grep "level=warn" "$CITUS_WORK/load.err" >&2 || fail "load as $W into $db warned"
  cat "$CITUS_WORK/load.$W.out" >>"$CITUS_WORK/load.both"
done
[ "$(sort -u "$CITUS_WORK/load.both" | wc -l)" = 1 ] || fail "load as the writer: $(cat "$CITUS_WORK/load.both")"
case $(head -1 "$CITUS_WORK/load.both") in
  *" stored=0 "*) fail "load as the writer stored nothing" ;;
esac
echo "ok: load as presence_writer: $(head -1 "$CITUS_WORK/load.both")"
# Partitions ahead, as `run` makes them: presence_partitions_ensure() runs
# as presence_owner (SECURITY DEFINER), on the workers too.
before=$(q "$c" "select count(*) from pg_inherits where inhparent = 'presences'::regclass")
psql "$c user=$W" -XAtq -v ON_ERROR_STOP=1 -c "select presence_partitions_ensure(now() + interval '400 days', now() + interval '460 days')" >/dev/null 2>"$CITUS_WORK/ensure.err" ||
  { cat "$CITUS_WORK/ensure.err" >&2; fail "presence_partitions_ensure as $W"; }
after=$(q "$c" "select count(*) from pg_inherits where inhparent = 'presences'::regclass")
[ "$after" -gt "$before" ] || fail "presence_partitions_ensure as $W made no partition ($before, $after)"
[ "$(q "$c" "select count(*) from pg_inherits i left join pg_dist_partition d on d.logicalrelid = i.inhrelid where i.inhparent = 'presences'::regclass and d.logicalrelid is null")" = 0 ] ||
  fail "a partition made by $W is not distributed"
echo "ok: presence_partitions_ensure as presence_writer: $before -> $after partitions, all distributed"
[ "$(q "$c" "select count(*) from presence_dirty")" -gt 0 ] || fail "the writer marked nothing"
for db in "$c" "$s"; do
  psql "$db user=$W" -XAtq -v ON_ERROR_STOP=1 -c "select presence_rollup_refresh()" >/dev/null 2>"$CITUS_WORK/refresh.err" ||
    { cat "$CITUS_WORK/refresh.err" >&2; fail "the catch-up as $W on $db"; }
  [ "$(q "$db" "select count(*) from presence_dirty")" = 0 ] || fail "the catch-up as $W left marks on $db"
done
echo "ok: the catch-up as presence_writer"

# Every report kind as the reader, the same on both.
n=0
report_both() { # NAME ARGS…
  local name=$1 db rc
  shift
  for db in "$c" "$s"; do
    rc=0
    "$PI_BINARY" report "$@" --pg "$db user=$R" --format csv >"$CITUS_WORK/out.${db##*port=}" 2>"$CITUS_WORK/report.err" || rc=$?
    [ $rc = 0 ] || { cat "$CITUS_WORK/report.err" >&2; fail "report $name as $R on $db: exit $rc"; }
  done
  same "report $name as the reader" "$CITUS_WORK/out.${c##*port=}" "$CITUS_WORK/out.${s##*port=}"
  [ "$(wc -l <"$CITUS_WORK/out.${s##*port=}")" -gt 1 ] || [ "${ALLOW_EMPTY:-}" = 1 ] || fail "report $name: no rows"
  n=$((n + 1))
}
WIN=(--since 2026-03-01T00:00:00Z --until 2026-03-03T06:00:00Z)
report_both status status
report_both sessions sessions "${WIN[@]}"
report_both uptime uptime "${WIN[@]}" --tz Europe/Paris
report_both reasons reasons "${WIN[@]}"
ALLOW_EMPTY=1 report_both flapping flapping "${WIN[@]}" --threshold 2
report_both outages outages "${WIN[@]}" --debounce 5m
report_both availability availability "${WIN[@]}" --period day
report_both "availability --fleet" availability "${WIN[@]}" --fleet
report_both fleet fleet "${WIN[@]}" --step 3h
asset=$(q "$s" "select asset from asset_state order by asset limit 1")
report_both "sessions --asset" sessions "${WIN[@]}" --asset "$asset"
echo "ok: $n reports as presence_reader, the same as one server's"

# What each role must not do, on the cluster: 42501 (insufficient privilege).
denied() { # ROLE SQL WHAT
  local out
  out=$(psql "$c user=$1" -XAtq -v ON_ERROR_STOP=1 -c "$2" 2>&1) && fail "$3: allowed"
  case $out in *"permission denied"*) ;; *) fail "$3: $out" ;; esac
}
denied "$R" "insert into presences (id, connection_id, type, reason, time, time_offset_minutes) values (1, 1, 'connect', 'cold_boot', now(), 0)" "the reader inserting into presences"
denied "$W" "delete from presences where id = 1" "the writer deleting from presences"
denied "$W" "update presences set reason = reason where id = 1" "the writer updating presences' reason"
psql "$c user=$W" -XAtq -v ON_ERROR_STOP=1 -c "update presences set connection_id = connection_id where id = 1 and connection_id < 0" >/dev/null ||
  fail "the writer's enlisting UPDATE is refused"
echo "ok: the reader writes nothing; the writer deletes nothing and updates only connection_id"
