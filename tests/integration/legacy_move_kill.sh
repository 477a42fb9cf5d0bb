#!/usr/bin/env bash
# legacy_move_kill.sh -- `migrate --move-legacy` killed in the middle, then
# two at once: on a database upgraded from schema 2 with six months in
# presences_legacy, a move copying 20 rows per transaction is killed (-9,
# and its server session terminated, so that the step it was in is rolled
# back) once 1000 rows are copied; legacy is still attached and read. Two
# moves then run at the same time: both finish (exit 0), one of them swaps,
# and the rows are those of before (md5 of every column, by id), each in
# its id's month's partition, legacy gone.
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
q "select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'mover_a'" >/dev/null
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
