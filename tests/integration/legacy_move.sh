#!/usr/bin/env bash
# legacy_move.sh -- presences_legacy moved into its months' partitions
# online (migration 0010, `migrate --move-legacy`), on a database upgraded
# from schema 2 with six months of a fleet in legacy:
#   * while a writer (`load`) writes into legacy's range (months legacy has
#     rows of, and March 2025, before its first row: a month with no table
#     yet) and elsewhere (November 2026: its own new partition), and rows of
#     legacy are deleted and updated, the first steps copy legacy in
#     batches of 100 (the row trigger records what the writes change), the
#     catch-up applies those changes, 6 more (rows inserted, deleted,
#     updated) are left for the swap to apply, and a writer's transaction
#     that changed a row commits while the swap waits for its lock (the
#     swap applies it under the lock);
#   * then every row (all columns, by id: content and provenance) and every
#     report (status, sessions, uptime, reasons, flapping, outages,
#     availability, fleet; csv) is taken, and `migrate --move-legacy`
#     finishes: the same rows (md5, count), the same reports, nothing
#     recorded in presence_dirty, every row in its id's month's partition,
#     legacy gone, DEFAULT empty;
#   * a backfill of February 2025 (below legacy's old bound) then gets its
#     own partition; `retention --keep` (cutoff 2025-08-10) drops exactly
#     the months wholly older: February, March, May, June, July 2025.
source "$(dirname "$0")/legacy_move_lib.sh"

legacy_db
echo "ok: schema 2 upgraded: $N_BASE rows in presences_legacy"

# The writer's rows: ids in legacy's months, in March 2025, in November 2026.
{
  "$PI_GEN" 1500 --shape fleet --assets 8 --end "$(($(date -ud 2025-10-01 +%s) * 1000))" --days 40 --seed 11
  "$PI_GEN" 300 --shape fleet --assets 4 --end "$(($(date -ud 2025-03-20 +%s) * 1000))" --days 10 --seed 12
  "$PI_GEN" 300 --shape fleet --assets 4 --end "$(($(date -ud 2026-11-20 +%s) * 1000))" --days 5 --seed 13
} >"$WORK/w.jsonl"
step() { q "select presence_legacy_move_step(${1:-100})"; }

[ "$(step)" = started ] || fail "the first step did not start the move"
"$PI_BINARY" load --pg "$PG" --batch-size 20 "$WORK/w.jsonl" >"$WORK/w.out" 2>"$WORK/w.err" &
W=$!
# Deletes and updates of rows of legacy, some copied already, some not yet.
(
  for i in 1 2 3 4 5; do
    q "delete from presences where id in (select id from presences_legacy order by id offset $((i * 700)) limit 3)"
    q "update presences set time_offset_minutes = time_offset_minutes + 60, kafka_offset = kafka_offset + 1000000 where id in (select id from presences_legacy order by id offset $((i * 900 + 50)) limit 2)"
    sleep 0.1
  done
) >/dev/null &
D=$!
while :; do
  s=$(step)
  [ "$s" = "copied 0" ] && break
  case "$s" in copied*) ;; *) fail "a copy step said: $s" ;; esac
done
wait "$W" || fail "load: $(cat "$WORK/w.err")"
wait "$D" || fail "the deletes and updates failed"
delta=$(q "select count(*) from presence_legacy_delta")
[ "$delta" -gt 0 ] || fail "no write into legacy was recorded during the copy"
[ "$(q "select phase from presence_legacy_move")" = catchup ] || fail "not at the catch-up: $(q "select phase from presence_legacy_move")"
echo "ok: legacy copied in batches of 100 while a writer wrote; $delta changes recorded"

# The catch-up by hand up to the swap, then writes into legacy's range that
# only the swap can apply: 3 new rows, 2 deleted, 1 updated (6 ids).
while :; do
  s=$(step)
  case "$s" in "ready"*) break ;; "caught up"*) ;; *) fail "a catch-up step said: $s" ;; esac
done
[ "$(q "select count(*) from presence_legacy_delta")" = 0 ] || fail "the catch-up left ids"
q "insert into presences (id, connection_id, type, reason, asset, time, time_offset_minutes)
   select x, 99, 'connect', 'modem_reset', 'late-asset', presence_id_time(x), 0
   from generate_series($((($(date -ud 2025-07-15 +%s) * 1000 - 1262304000000) << 22)), $((($(date -ud 2025-07-15 +%s) * 1000 - 1262304000000) << 22)) + 100) x
   where not exists (select 1 from presences p where p.id = x) limit 3" >/dev/null
q "delete from presences where id in (select id from presences_legacy order by id offset 4000 limit 2)" >/dev/null
q "update presences set reason = 'ppp_lost' where id = (select id from presences_legacy order by id offset 4500 limit 1)" >/dev/null
[ "$(q "select count(distinct id) from presence_legacy_delta")" = 6 ] || fail "recorded: $(q "select count(*) from presence_legacy_delta")"

# Before: every row, every report, the rollup caught up.
q "select presence_rollup_refresh()" >/dev/null
[ "$(q "select count(*) from presence_dirty")" = 0 ] || fail "the rollup is not caught up"
R="--since 2025-01-01T00:00:00Z --until 2026-12-01T00:00:00Z --format csv"
reports() {
  "$PI_BINARY" report status --pg "$PG" --format csv
  for k in sessions uptime reasons outages availability; do
    # shellcheck disable=SC2086
    "$PI_BINARY" report $k --pg "$PG" $R
  done
  # shellcheck disable=SC2086
  "$PI_BINARY" report availability --pg "$PG" $R --period month --fleet
  # shellcheck disable=SC2086
  "$PI_BINARY" report flapping --pg "$PG" $R --window 1d --threshold 2
  # shellcheck disable=SC2086
  "$PI_BINARY" report fleet --pg "$PG" $R --step 1d
}
reports >"$WORK/reports.before" 2>"$WORK/reports.err" || fail "reports: $(cat "$WORK/reports.err")"
[ "$(wc -l <"$WORK/reports.before")" -gt 10000 ] || fail "the reports are nearly empty"

# The swap, with a writer's transaction holding presences: it has changed
# a row of legacy (provenance only: kafka_offset) and commits once the swap
# waits for its lock, so that the swap applies that id under the lock.
X=$(q "select id from presences_legacy order by id offset 3000 limit 1")
xoff=$(q "select kafka_offset from presences where id = $X")
but_x="select count(*) || ' ' || md5(string_agg(p::text, E'\n' order by id)) from presences p where id <> $X"
before_but_x=$(q "$but_x")
mkfifo "$WORK/holder"
psql "$PG application_name=holder" -XAtq -v ON_ERROR_STOP=1 <"$WORK/holder" >"$WORK/holder.out" 2>&1 &
H=$!
exec 3>"$WORK/holder"
echo "begin; update presences set kafka_offset = kafka_offset + 1 where id = $X;" >&3
for _ in $(seq 1 200); do
  [ "$(q "select state from pg_stat_activity where datname = current_database() and application_name = 'holder'")" = "idle in transaction" ] && break
  sleep 0.05
done
"$PI_BINARY" migrate --pg "$PG" --move-legacy --move-batch 100 >"$WORK/move.log" 2>&1 &
M=$!
for _ in $(seq 1 200); do
  [ "$(q "select count(*) from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and query like '%presence_legacy_move_step%'")" = 1 ] && break
  sleep 0.02
done
echo "commit;" >&3
exec 3>&-
wait "$H" || fail "the holder: $(cat "$WORK/holder.out")"
wait "$M" || fail "migrate --move-legacy: $(cat "$WORK/move.log")"
grep -q "^move-legacy: swapped: 7 partitions attached, 6 ids applied before the lock and 1 under it" "$WORK/move.log" || fail "swap: $(cat "$WORK/move.log")"
[ "$(q "$but_x")" = "$before_but_x" ] || fail "rows changed by the move"
[ "$(q "select kafka_offset || ' ' || tableoid::regclass::text from presences where id = $X")" = "$((xoff + 1)) presences_p$(q "select to_char(presence_id_time($X) at time zone 'UTC', 'YYYYMM')")01" ] ||
  fail "the row changed during the swap's wait: $(q "select kafka_offset, tableoid::regclass from presences where id = $X")"
# The holder's UPDATE is the one statement the rollup has to fold.
[ "$(q "select count(*) from presence_dirty")" = 1 ] || fail "the move recorded rollup work: $(q "select count(*) from presence_dirty")"
reports >"$WORK/reports.after" 2>>"$WORK/reports.err" || fail "reports after: $(cat "$WORK/reports.err")"
cmp -s "$WORK/reports.before" "$WORK/reports.after" || fail "reports differ: $(diff "$WORK/reports.before" "$WORK/reports.after" | head -5)"
check_placement
[ "$(q "select count(*) from presences_default")" = 0 ] || fail "rows in DEFAULT"
[ "$(q "select string_agg(partition, ' ' order by partition) from presence_partitions where not is_default and partition < 'presences_p2026'")" = \
  "presences_p20250301 presences_p20250501 presences_p20250601 presences_p20250701 presences_p20250801 presences_p20250901 presences_p20251001" ] ||
  fail "partitions: $(q "select string_agg(partition, ' ' order by partition) from presence_partitions")"
[ "$(q "select count(*) from presences where id < (select to_id from presence_legacy_move) and tableoid::regclass::text not like 'presences_p2025%'")" = 0 ] ||
  fail "rows of legacy's range outside its months"
[ "$(q "select phase from presence_legacy_move")" = done ] || fail "not done"
[ "$(q "select count(*) from pg_constraint where conname like '%_move' or conname = 'presences_default_legacy_move'")" = 0 ] || fail "the move's CHECKs are left"
echo "ok: moved: same rows ($before_but_x, and $X as its writer left it), same reports ($(wc -l <"$WORK/reports.after") lines), nothing for the rollup; presences locked $(q "select round(swap_ms::numeric, 1) from presence_legacy_move") ms"
"$PI_BINARY" migrate --pg "$PG" --move-legacy >"$WORK/again.log" 2>&1 || fail "again: $(cat "$WORK/again.log")"
grep -q "^move-legacy: done (0 rows copied" "$WORK/again.log" || fail "a second move did something: $(cat "$WORK/again.log")"
# A backfill of February 2025 (below legacy's old bound, no partition):
# its own new partition now, not legacy, not DEFAULT.
"$PI_GEN" 200 --shape fleet --assets 3 --end "$(($(date -ud 2025-02-20 +%s) * 1000))" --days 5 --seed 14 >"$WORK/feb.jsonl"
"$PI_BINARY" load --pg "$PG" "$WORK/feb.jsonl" >/dev/null 2>"$WORK/feb.err" || fail "load feb: $(cat "$WORK/feb.err")"
[ "$(q "select string_agg(distinct tableoid::regclass::text, ' ') from presences where time < '2025-03-01'")" = presences_p20250201 ] ||
  fail "February went to: $(q "select string_agg(distinct tableoid::regclass::text, ' ') from presences where time < '2025-03-01'")"
echo "ok: a backfill below legacy's old bound gets its own month's partition"

# Retention with the cutoff on 2025-08-10 (+ less than a day): the moved
# months wholly older go; August (ids after the cutoff) on stay, untouched.
KEEP=$(( ($(date -u +%s) - $(date -ud 2025-08-10 +%s)) / 86400 ))d
kept=$(q "select count(*) || ' ' || md5(string_agg(p::text, ',' order by id)) from presences p where time >= '2025-08-01'")
"$PI_BINARY" retention --pg "$PG" --keep "$KEEP" >"$WORK/ret" 2>&1 || fail "retention: $(cat "$WORK/ret")"
[ "$(grep -o '^dropped presences_p[0-9]*' "$WORK/ret" | tr '\n' ' ')" = \
  "dropped presences_p20250201 dropped presences_p20250301 dropped presences_p20250501 dropped presences_p20250601 dropped presences_p20250701 " ] ||
  fail "retention dropped: $(grep '^dropped' "$WORK/ret")"
[ "$(q "select count(*) from presences where time < '2025-08-01'")" = 0 ] || fail "rows before August left"
[ "$(q "select count(*) || ' ' || md5(string_agg(p::text, ',' order by id)) from presences p where time >= '2025-08-01'")" = "$kept" ] ||
  fail "the months kept changed"
echo "ok: retention --keep $KEEP dropped exactly February, March, May, June and July 2025"
