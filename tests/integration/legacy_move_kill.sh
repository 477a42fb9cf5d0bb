#!/usr/bin/env bash
# legacy_move_kill.sh -- `migrate --move-legacy` killed in the middle, then
# two at once: on a database upgraded from schema 2 with six months in
# presences_legacy, a move copying 20 rows per transaction is killed (-9,
# and its server session terminated, so that the step it was in is rolled
# back) once 1000 rows are copied; legacy is still attached and read. Two
# moves then run at the same time: both finish (exit 0), one of them swaps,
# and the rows are those of before (md5 of every column, by id), each in
# its id's month's partition, legacy gone. Last, on a new such database,
# `retention` drops legacy whole in the middle of a move: the next move
# abandons it (its copies and DEFAULT's CHECK gone).
source "$(dirname "$0")/legacy_move_lib.sh"

legacy_db
before=$(q "$MD5_ALL")
echo "ok: schema 2 upgraded: $N_BASE rows in presences_legacy"

"$PI_BINARY" migrate --pg "$PG application_name=mover_a" --move-legacy --move-batch 20 >"$WORK/a.log" 2>&1 &
A=$!
for _ in $(seq 1 600); do
  n=$(q "select coalesce((select rows_copied from presence_legacy_move), 0)")
  [ "$n" -ge 1000 ] && break
  sleep 0.02
done
kill -9 "$A"
q "select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and application_name = 'mover_a'" >/dev/null
wait "$A" 2>/dev/null && fail "the move ended before it was killed: $(cat "$WORK/a.log")"
phase=$(q "select phase || ' ' || rows_copied from presence_legacy_move")
case "$phase" in copy*) ;; *) fail "killed at the wrong time: $phase" ;; esac
[ "$(q "select count(*) from presence_partitions where partition = 'presences_legacy'")" = 1 ] || fail "legacy is not attached"
[ "$(q "$MD5_ALL")" = "$before" ] || fail "rows changed by the killed move"
echo "ok: killed in the copy ($phase rows): legacy attached, rows unchanged"

"$PI_BINARY" migrate --pg "$PG" --move-legacy --move-batch 50 >"$WORK/b.log" 2>&1 &
B=$!
"$PI_BINARY" migrate --pg "$PG" --move-legacy --move-batch 50 >"$WORK/c.log" 2>&1 &
C=$!
wait "$B" || fail "move b: $(cat "$WORK/b.log")"
wait "$C" || fail "move c: $(cat "$WORK/c.log")"
[ "$(cat "$WORK/b.log" "$WORK/c.log" | grep -c '^move-legacy: swapped: 6 partitions attached')" = 1 ] ||
  fail "not one swap: $(cat "$WORK/b.log" "$WORK/c.log")"
copied=$(cat "$WORK/b.log" "$WORK/c.log" | sed -n 's/^move-legacy: done (\([0-9]*\) rows copied.*/\1/p' | paste -sd+)
copied=$((copied))
[ "$copied" -eq $((N_BASE - ${phase#copy })) ] || fail "the two copied $copied rows, not the $((N_BASE - ${phase#copy })) left"
[ "$(q "$MD5_ALL")" = "$before" ] || fail "rows changed by the move"
check_placement
echo "ok: two moves at once after the kill: one swap, the rows left copied once between them, same rows ($before)"

psql "$PG_ADMIN" -XAtq -c "drop database $DB with (force)" -c "drop database ${DB}_src with (force)" >/dev/null
legacy_db
q "select presence_legacy_move_step(1000)" >/dev/null
q "select presence_legacy_move_step(1000)" >/dev/null
[ "$(q "select count(*) from presence_legacy_move_parts")" -gt 0 ] || fail "no copy made"
"$PI_BINARY" retention --pg "$PG" --keep 30d >"$WORK/ret" 2>&1 || fail "retention: $(cat "$WORK/ret")"
grep -q "^dropped presences_legacy" "$WORK/ret" || fail "retention kept legacy: $(cat "$WORK/ret")"
"$PI_BINARY" migrate --pg "$PG" --move-legacy >"$WORK/d.log" 2>&1 || fail "move d: $(cat "$WORK/d.log")"
grep -q "^move-legacy: abandoned" "$WORK/d.log" || fail "not abandoned: $(cat "$WORK/d.log")"
[ "$(q "select count(*) from pg_class where relname like 'presences_p2025%' and relkind = 'r'")" = 0 ] || fail "copies left"
[ "$(q "select count(*) from pg_constraint where conname = 'presences_default_legacy_move'")" = 0 ] || fail "DEFAULT's CHECK left"
[ "$(q "select phase from presence_legacy_move")" = done ] || fail "not done"
q "insert into presences (id, connection_id, type, reason, time, time_offset_minutes) values ($((($(date -ud 2025-06-01 +%s) * 1000 - 1262304000000) << 22)), 1, 'connect', 'x', '2025-06-01', 0)"
echo "ok: legacy dropped by retention during a move: the move abandoned, its copies gone, an id of legacy's range writable"

