#!/usr/bin/env bash
# retention_watch.sh -- on a Citus cluster: `retention --keep`, run as a
# member of presence_writer, drops exactly the partition wholly older than
# its cutoff, whose shards go from both workers, and keeps the rest; `watch
# --after 0 --format csv` prints the status changes of a tiny hand-made
# sequence, the catch-up run after each step (the writer marked the rollup:
# no trigger on presences there). Every expected line is worked out by hand
# below (ids by shell arithmetic from the scheme: (ms since 2010-01-01) <<
# 22).
source "$(dirname "$0")/lib.sh"
W=${CITUS_NAME}_w
WATCH_PID=
drop_role() {
  psql "$(cat "$PI_SERVICES/citus/conninfo")" -XAtq -c "drop role if exists $W" >/dev/null 2>&1 || true
}
trap '[ -z "$WATCH_PID" ] || kill "$WATCH_PID" 2>/dev/null || true; citus_cleanup; drop_role' EXIT

id_at() { echo $((($(date -ud "$1" +%s) * 1000 - 1262304000000) << 22)); }
line() { # ID CONNECTION TYPE REASON ASSET TIME
  printf '{"id_str":"%s","connection_id_str":"%s","type":"%s","reason":"%s","asset":"%s","time":"%s"}\n' "$@"
}
load() { # CONNINFO FILE
  "$PI_BINARY" load --pg "$1" "$2" >>"$CITUS_WORK/load.out" 2>"$CITUS_WORK/load.err" ||
    { cat "$CITUS_WORK/load.err" >&2; fail "load $2"; }
}

# --- retention ----------------------------------------------------------------
# Monthly partitions 2024-01 … 2024-03 (the old table detached and dropped,
# so that they can be made); the cutoff (--keep) falls on 2024-02-15 (+ less
# than a day):
#   2024-01: rows of 01-10 and 01-12             → dropped (wholly older)
#   2024-02: rows of 02-10 and 02-20             → kept (ids after the cutoff)
#   2024-03: a row of 03-05                      → kept
#   DEFAULT                                      → kept, never dropped
#   the current month and 3 ahead (migrate's)    → kept (4): kept=7
c=$(citus_db retention)
psql "$c" -XAtq -v ON_ERROR_STOP=1 -f "$PI_SOURCE_DIR/deploy/sql/roles.sql" >/dev/null 2>"$CITUS_WORK/roles.err" ||
  { cat "$CITUS_WORK/roles.err" >&2; fail "roles.sql"; }
q "$c" "create role $W login in role presence_writer" >/dev/null
psql "$c" -XAtq -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
alter table presences detach partition presences_legacy;
drop table presences_legacy;
select * from presence_partitions_ensure('2024-01-01', '2024-04-01');
SQL
{
  line $(($(id_at 2024-01-10T00:00:00Z) + 1)) 1 connect cold_boot r1 2024-01-10T00:00:00Z
  line $(($(id_at 2024-01-12T00:00:00Z) + 1)) 1 disconnect socket_closed r1 2024-01-12T00:00:00Z
  line $(($(id_at 2024-02-10T00:00:00Z) + 1)) 2 connect cold_boot r1 2024-02-10T00:00:00Z
  line $(($(id_at 2024-02-20T00:00:00Z) + 1)) 2 disconnect socket_closed r1 2024-02-20T00:00:00Z
  line $(($(id_at 2024-03-05T00:00:00Z) + 1)) 3 connect cold_boot r1 2024-03-05T00:00:00Z
} >"$CITUS_WORK/old.jsonl"
load "$c user=$W" "$CITUS_WORK/old.jsonl"
[ "$(q "$c" "select count(*) from presences_p20240101")" = 2 ] || fail "January's partition does not hold its 2 rows"
shards() { # PARTITION: its shards in the metadata, and its shard tables on the workers
  echo "$(q "$c" "select count(*) from pg_dist_shard where logicalrelid::text = '$1'")" \
    "$(q "$c" "select sum(result::int) from run_command_on_workers(\$\$select count(*) from pg_class where relkind = 'r' and relname like '$1\\_%'\$\$)")"
}
[ "$(shards presences_p20240101)" = "4 4" ] || fail "January's partition: shards $(shards presences_p20240101), want 4 4"

KEEP=$((($(date -u +%s) - $(date -ud 2024-02-15T00:00:00Z +%s)) / 86400))d
b() { id_at "$1"; }
strip() { sed -E 's/ \(~[0-9]+ rows\)//' | grep -E '_p2024|_default|^retention' | sed -E 's/cutoff [^:]+:[^:]+:[^:]+: /cutoff C: /'; }
EXPECT="dropped presences_p20240101 ids [$(b 2024-01-01T00:00:00Z), $(b 2024-02-01T00:00:00Z)) 2024-01-01T00:00:00Z..2024-02-01T00:00:00Z
kept presences_p20240201 ids [$(b 2024-02-01T00:00:00Z), $(b 2024-03-01T00:00:00Z)) 2024-02-01T00:00:00Z..2024-03-01T00:00:00Z: ids at or after the cutoff
kept presences_p20240301 ids [$(b 2024-03-01T00:00:00Z), $(b 2024-04-01T00:00:00Z)) 2024-03-01T00:00:00Z..2024-04-01T00:00:00Z: ids at or after the cutoff
kept presences_default: the DEFAULT partition (ids off the scheme) is never dropped
retention: cutoff C: created=0 dropped=1 kept=7"
"$PI_BINARY" retention --pg "$c user=$W" --keep "$KEEP" >"$CITUS_WORK/retention.out" 2>"$CITUS_WORK/retention.err" ||
  { cat "$CITUS_WORK/retention.err" >&2; fail "retention as $W: exit $?"; }
diff -u <(echo "$EXPECT") <(strip <"$CITUS_WORK/retention.out") || fail "retention on the cluster"
[ "$(shards presences_p20240101)" = "0 0" ] || fail "January's shards stayed: $(shards presences_p20240101)"
[ "$(shards presences_p20240201)" = "4 4" ] || fail "February's shards: $(shards presences_p20240201)"
[ "$(q "$c" "select count(*) from presences")" = 3 ] || fail "rows left: $(q "$c" "select count(*) from presences"), want 3"
echo "ok: retention as presence_writer dropped exactly January's partition and its 4 shards; 3 rows kept"

# --- watch --------------------------------------------------------------------
# Three steps, a catch-up after each (one change per step, so seq 1, 2, 3):
#   1. a1 connects at 10:00 (connection 11, cold_boot) → a1 online
#   2. b2 connects at 10:30 (connection 21, cold_boot) → b2 online
#   3. a1 disconnects at 11:00 (socket_closed)         → a1 offline, was
#      online since 10:00
w=$(citus_db watch)
line 1 11 connect cold_boot a1 2026-03-01T10:00:00Z >"$CITUS_WORK/s1.jsonl"
line 2 21 connect cold_boot b2 2026-03-01T10:30:00Z >"$CITUS_WORK/s2.jsonl"
line 3 11 disconnect socket_closed a1 2026-03-01T11:00:00Z >"$CITUS_WORK/s3.jsonl"
for step in 1 2 3; do
  load "$w" "$CITUS_WORK/s$step.jsonl"
  q "$w" "select presence_rollup_refresh()" >/dev/null
done
"$PI_BINARY" watch --pg "$w" --after 0 --format csv >"$CITUS_WORK/watch.csv" 2>"$CITUS_WORK/watch.err" &
WATCH_PID=$!
for _ in $(seq 100); do [ "$(grep -c . "$CITUS_WORK/watch.csv")" -ge 4 ] && break; sleep 0.1; done
kill "$WATCH_PID" 2>/dev/null || true
wait "$WATCH_PID" 2>/dev/null || true
WATCH_PID=
WANT="seq,asset,state,since,reason,connection_id,previous_state,previous_since
1,a1,online,2026-03-01T10:00:00+00:00,cold_boot,11,,
2,b2,online,2026-03-01T10:30:00+00:00,cold_boot,21,,
3,a1,offline,2026-03-01T11:00:00+00:00,socket_closed,11,online,2026-03-01T10:00:00+00:00"
# recorded_at (the catch-up's clock) left out.
diff -u <(echo "$WANT") <(tr -d '\r' <"$CITUS_WORK/watch.csv" | cut -d, -f1,3-) || fail "watch --after 0 on the cluster"
echo "ok: watch --after 0 --format csv prints the 3 changes of the hand-made sequence"
