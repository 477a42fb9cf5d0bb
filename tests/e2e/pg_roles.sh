#!/usr/bin/env bash
# deploy/sql/roles.sql (issue 12): presence_owner owns everything and
# migrates, presence_writer can do what run, replay and load need and no
# DROP/ALTER/TRUNCATE/DELETE, presence_reader only reads. A grant taken away
# stops the service with one line naming the privilege, writes no reject and
# loses nothing: after granting it again, everything is stored once.
source "$(dirname "$0")/lib.sh"

setup 2
ROLES="$PI_SOURCE_DIR/deploy/sql/roles.sql"
psql "$PG" -XAtq -v ON_ERROR_STOP=1 -f "$ROLES" >/dev/null || fail "roles.sql"
psql "$PG" -XAtq -v ON_ERROR_STOP=1 -f "$ROLES" >/dev/null || fail "roles.sql, run again"
W=${NAME}_w R=${NAME}_r O=${NAME}_o
sql "create role $W login in role presence_writer;
     create role $R login in role presence_reader;
     create role $O login in role presence_owner"
at_exit "psql \"\$PG_ADMIN\" -XAtqc 'drop role if exists $W, $R, $O'"

[ "$(sql "select string_agg(relname, ',') from pg_class where relnamespace = 'public'::regnamespace
          and relkind in ('r', 'v') and relowner <> 'presence_owner'::regrole")" = "" ] ||
  fail "objects not owned by presence_owner"

# as ROLE SQL: run SQL logged in as ROLE. denied ROLE SQL: it fails with 42501.
as() { psql "$PG user=$1" -XAtq -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -c "$2" 2>&1; }
denied() {
  local out
  out=$(as "$1" "$2") && fail "$1 may: $2"
  echo "$out" | grep -q "ERROR:  42501" || fail "$1: $2: not 42501: $out"
}
for stmt in "DROP TABLE presences" "ALTER TABLE presences ADD COLUMN x int" \
  "TRUNCATE presences" "DELETE FROM presences" "UPDATE presences SET reason = ''" \
  "DROP TABLE ingest_offsets" "TRUNCATE ingest_offsets" "DELETE FROM ingest_offsets" \
  "ALTER TABLE ingest_offsets ADD COLUMN x int" "TRUNCATE presence_rejects" \
  "DELETE FROM presence_rejects" "DROP VIEW asset_status"; do
  denied "$W" "$stmt"
done
for stmt in "INSERT INTO presences (id, connection_id, type, reason, time, time_offset_minutes)
               VALUES (1, 1, 'connect', 'r', now(), 0)" \
  "DELETE FROM presence_rejects" "UPDATE ingest_offsets SET next_offset = 0" \
  "TRUNCATE presences" "DROP TABLE presences"; do
  denied "$R" "$stmt"
done
[ "$(as "$R" "select count(*) from presences, asset_status, connectivity_sessions,
               presence_reasons, presence_rejects, ingest_offsets")" = 0 ] ||
  fail "the reader cannot read"
log "ok: ownership; the writer and the reader are refused DROP/ALTER/TRUNCATE/DELETE/UPDATE/INSERT as designed"

# one_line WHAT PATTERN CMD…: CMD exits non-zero within 60 s with one line on
# stderr matching PATTERN, and nothing is stored or rejected.
one_line() {
  local what=$1 pat=$2 rc=0
  shift 2
  timeout 60 "$@" >"$WORK/fail.out" 2>"$WORK/fail.err" </dev/null || rc=$?
  [ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "$what: exit $rc"
  [ "$(wc -l <"$WORK/fail.err")" = 1 ] || fail "$what: not one line: $(cat "$WORK/fail.err")"
  grep -q -- "$pat" "$WORK/fail.err" || fail "$what: no '$pat' in: $(cat "$WORK/fail.err")"
  [ "$(sql "select (select count(*) from presences) + (select count(*) from presence_rejects)")" = 0 ] ||
    fail "$what: something was written"
  log "ok: $what: exit $rc: $(cat "$WORK/fail.err")"
}

# A revoked INSERT on presences: load stops; granted again, it stores all.
M=300
"$PI_GEN" "$M" --first-id 922746880000100000 --bad-every 50 >"$WORK/load.txt"
sql "revoke insert on presences from presence_writer"
one_line "load without INSERT on presences" "role $W lacks INSERT on presences" \
  "$PI_BINARY" load --pg "$PG user=$W" "$WORK/load.txt"
sql "grant insert on presences to presence_writer"
out=$("$PI_BINARY" load --pg "$PG user=$W" "$WORK/load.txt" 2>>"$WORK/load.log") ||
  fail "load as the writer"
[ "$out" = "messages=$M stored=$((M - M / 50)) duplicates=0 conflicts=0 rejected=$((M / 50)) skipped=0" ] ||
  fail "load summary: $out"
sql "delete from presences; delete from presence_rejects"

# A revoked UPDATE on ingest_offsets (the fence locks its rows): run stops
# before writing anything; granted again, a restart stores every presence.
N=2000
"$PI_GEN" "$N" >"$WORK/in.txt"
produce "$WORK/in.txt"
sql "revoke update on ingest_offsets from presence_writer"
one_line "run without UPDATE on ingest_offsets" "role $W lacks UPDATE on ingest_offsets" \
  "$PI_BINARY" run --brokers "$BROKERS" --topic "$TOPIC" --group "$GROUP" \
  --pg "$PG user=$W" --log-level error --http-listen off --linger-ms 50
sql "grant update on ingest_offsets to presence_writer"
PG_SERVICE="$PG user=$W"
start_service run
wait_for "select count(*) from presences" "$N"
stop_service "$SERVICE_PID"
check_offsets_match
[ "$(sql "select count(distinct id) || ' ' || (max(id) - min(id) + 1) from presences")" = "$N $N" ] ||
  fail "not every presence once"
[ "$(sql "select count(*) from presence_rejects")" = 0 ] || fail "rejects written"
out=$("$PI_BINARY" replay --brokers "$BROKERS" --topic "$TOPIC" --pg "$PG user=$W" \
  --progress never --stats-interval-ms 0 2>>"$WORK/replay.log") || fail "replay as the writer"
[ "$out" = "messages=$N stored=0 duplicates=$N conflicts=0 rejected=0 skipped=0" ] ||
  fail "replay summary: $out"
"$PI_BINARY" report status --pg "$PG user=$R" --format csv >"$WORK/status.csv" ||
  fail "report as the reader"
[ "$(($(wc -l <"$WORK/status.csv") - 1))" = "$(sql "select count(*) from asset_status")" ] ||
  fail "report as the reader: $(wc -l <"$WORK/status.csv") lines"
# Every asset's uptime over whole UTC days: daily_uptime_by_asset (0006).
"$PI_BINARY" report uptime --since -3d --until "$(date -u +%Y-%m-%dT00:00:00Z)" --tz UTC \
  --pg "$PG user=$R" --format csv >"$WORK/uptime.csv" || fail "report uptime as the reader"
# CONTRACT §8's reports need nothing more than SELECT (0009's functions are
# not SECURITY DEFINER: they read as the caller).
for kind in outages availability "availability --fleet" fleet; do
  # shellcheck disable=SC2086
  "$PI_BINARY" report $kind --since -3d --pg "$PG user=$R" --format csv >"$WORK/fleet.csv" ||
    fail "report $kind as the reader"
done
grep -q "partitions ahead" "$WORK/run.log" &&
  fail "run's partition keeper failed as the writer: $(grep "partitions ahead" "$WORK/run.log")"
log "ok: run, replay and load as the writer, report as the reader"

# The status change log (0008): the writer's catch-up records the changes
# (the triggers write as the log's owner), the reader reads them; neither
# may write or delete them by hand.
as "$W" "select presence_rollup_refresh()" >/dev/null || fail "catch-up as the writer"
[ "$(as "$R" "select count(distinct asset) from asset_status_changes")" = "$(sql "select count(*) from asset_state")" ] ||
  fail "the reader does not see one change per asset"
for who in "$W" "$R"; do
  denied "$who" "INSERT INTO asset_status_changes (asset) VALUES ('x')"
  denied "$who" "DELETE FROM asset_status_changes"
done
log "ok: status changes recorded by the writer's catch-up, read by the reader"

# retention as the writer: its DDL goes through the two SECURITY DEFINER
# functions roles.sql grants; the partitions themselves stay out of reach.
denied "$W" "DROP TABLE presences_default"
denied "$W" "ALTER TABLE presences DETACH PARTITION presences_default"
# (--keep 4000d: pi-gen's presences are of December 2016, and since 0007
# they have a partition of their own, which a shorter keep would drop.)
for mode in --dry-run ""; do
  "$PI_BINARY" retention --keep 4000d $mode --pg "$PG user=$W" >"$WORK/retention.out" 2>&1 ||
    fail "retention --keep 4000d $mode as the writer: $(cat "$WORK/retention.out")"
done
[ "$(sql "select count(*) from presences")" = "$N" ] || fail "retention dropped current rows"
[ "$(sql "select count(*) from pg_inherits i join pg_class c on c.oid = i.inhrelid
          where i.inhparent = 'presences'::regclass and c.relowner <> 'presence_owner'::regrole")" = 0 ] ||
  fail "a partition not owned by presence_owner"
log "ok: retention as the writer; the partitions it makes are the owner's"

# A later migration, applied by a member of presence_owner (no superuser):
# it may ALTER what the owner owns, and what it creates is the owner's.
mkdir "$WORK/migrations"
cp "$PI_SOURCE_DIR"/migrations/*.sql "$WORK/migrations/"
printf 'ALTER TABLE presences ADD COLUMN pi_test int;\nCREATE TABLE pi_test_later (x int);\n' \
  >"$WORK/migrations/9999_pi_test.sql"
PRESENCE_MIGRATIONS_DIR="$WORK/migrations" "$PI_BINARY" migrate --pg "$PG user=$O" \
  >"$WORK/migrate.out" 2>&1 || fail "migrate as a member of presence_owner: $(cat "$WORK/migrate.out")"
[ "$(sql "select relowner::regrole from pg_class where relname = 'pi_test_later'")" = presence_owner ] ||
  fail "the new table is not owned by presence_owner"
log "ok: a member of presence_owner migrates; new objects are owned by presence_owner"
