#!/usr/bin/env bash
# `retention` beside `run`: monthly partitions 2023-12 … 2024-05 (see
# tests/integration/partitions.sh for the rule, worked through there), the
# cutoff on 2024-03-15; while `run` drains 20000 presences of this month
# produced in 4 bursts, retention drops exactly 2023-12 (empty) and 2024-01
# (all older), keeps 2024-02 (a late row after the cutoff) and DEFAULT (ids
# off the scheme), and `run` stores every presence once, with no error.
source "$(dirname "$0")/lib.sh"

N=20000
setup 4
id_at() { echo $((($(date -ud "$1" +%s) * 1000 - 1262304000000) << 22)); }
sql "alter table presences detach partition presences_legacy" >/dev/null
sql "drop table presences_legacy" >/dev/null
sql "select count(*) from presence_partitions_ensure('2023-12-01', '2024-06-01')" >/dev/null
sql "select count(*) from presence_partitions_ensure()" >/dev/null
line() { printf '{"id_str":"%s","connection_id_str":"7","type":"connect","reason":"idle_out","asset":"x1","time":"%s"}\n' "$1" "$2"; }
{ line $(($(id_at 2024-01-10T00:00:00Z) + 1)) 2024-01-10T00:00:00Z
  line $(($(id_at 2024-02-10T00:00:00Z) + 1)) 2024-02-10T00:00:00Z
  line $(($(id_at 2024-02-20T00:00:00Z) + 1)) 2024-06-01T00:00:00Z
  line 1 2024-01-05T00:00:00Z; } >"$WORK/old.jsonl"
"$PI_BINARY" load --pg "$PG" "$WORK/old.jsonl" >/dev/null 2>"$WORK/load.log" || fail "load old rows"

"$PI_GEN" "$N" --first-id "$(id_at "$(date -u +%Y-%m-%dT00:00:00Z)")" --ids time >"$WORK/now.txt"
split -n l/4 -d "$WORK/now.txt" "$WORK/burst."
start_service a --batch-size 500
produce "$WORK/burst.00"
wait_for "select count(*) > 0 from presences where id > $(id_at 2026-01-01T00:00:00Z)" t
( for b in 01 02 03; do produce "$WORK/burst.$b"; sleep 0.3; done ) &
PRODUCER=$!
KEEP=$((($(date -u +%s) - $(date -ud 2024-03-15T00:00:00Z +%s)) / 86400))d
"$PI_BINARY" retention --pg "$PG" --keep "$KEEP" >"$WORK/retention.out" 2>"$WORK/retention.log" ||
  fail "retention exit $?: $(cat "$WORK/retention.log")"
wait "$PRODUCER"
# 4 old rows, less January's, dropped with its partition.
wait_for "select count(*) from presences" $((N + 3))
sleep 1
stop_service "$SERVICE_PID"
check_offsets_match
grep -Eq "level=(warn|error)" "$WORK/a.log" && fail "run logged a problem: $(grep -E 'level=(warn|error)' "$WORK/a.log")"
got=$(grep -E "_p2023|_p2024|_default|^retention" "$WORK/retention.out" | awk '{ print $1, $2 }')
want="dropped presences_p20231201
dropped presences_p20240101
kept presences_p20240201
kept presences_p20240301
kept presences_p20240401
kept presences_p20240501
kept presences_default
retention: cutoff"
[ "$got" = "$want" ] || fail "retention: $(cat "$WORK/retention.out")"
grep -q "created=0 dropped=2 kept=9$" "$WORK/retention.out" || fail "summary: $(tail -1 "$WORK/retention.out")"
[ "$(sql "select count(*) from presences where time < '2024-03-15'")" = 2 ] ||
  fail "not exactly February's and DEFAULT's old rows left"
log "ok: retention dropped 2 partitions beside run, which stored $N presences once with no error"
