#!/usr/bin/env bash
# presence-ingest replay (issue 9): bounded re-reads for repair and backfill,
# against the real broker (offsets by time need it) and PostgreSQL.
source "$(dirname "$0")/lib.sh"

setup 3
"$PI_GEN" 3000 --bad-every 100 >"$WORK/first.txt"
"$PI_GEN" 2000 --first-id 922746880000005000 >"$WORK/second.txt"
replay() { "$PI_BINARY" replay --brokers "$BROKERS" --topic "$TOPIC" --pg "$PG" \
  --stats-interval-ms 0 --progress never "$@"; }
snapshot() {
  sql "select id, connection_id, type, reason, coalesce(asset, '-'), time,
              time_offset_minutes, kafka_topic, kafka_partition, kafka_offset
       from presences order by id" >"$1"
}

# A first burst, drained by run.
produce "$WORK/first.txt"
start_service svc
wait_for "select count(*) from presences" 2970
wait_for "select count(*) from presence_rejects" 30
stop_service "$SERVICE_PID"
snapshot "$WORK/before.txt"
rejects_before=$(sql "select count(*) from presence_rejects")

# 1. Repair by offsets: delete the rows of partition 1's offsets [100, 200),
#    replay exactly that range.
deleted=$(sql "with d as (delete from presences where kafka_partition = 1
               and kafka_offset >= 100 and kafka_offset < 200 returning 1)
               select count(*) from d")
bad=$(sql "select count(*) from presence_rejects where partition = 1
           and \"offset\" >= 100 and \"offset\" < 200")
[ $((deleted + bad)) = 100 ] || fail "partition 1 has no offsets [100, 200) ($deleted rows, $bad rejects)"
out=$(replay --partitions 1 --from-offset 100 --to-offset 200)
[ "$out" = "messages=100 stored=$deleted duplicates=0 conflicts=0 rejected=$bad skipped=0" ] ||
  fail "repair summary: $out (deleted $deleted, rejects $bad)"
snapshot "$WORK/after.txt"
diff -q "$WORK/before.txt" "$WORK/after.txt" >/dev/null || fail "table differs from before the delete"
[ "$(sql "select count(*) from presence_rejects")" = "$rejects_before" ] || fail "rejects multiplied"
[ "$(sql "select count(*) from ingest_offsets where consumer_group <> '$GROUP'")" = 0 ] ||
  fail "replay wrote ingest_offsets rows"
log "ok: repair of partition 1 [100, 200): $out"

# 2. By time: a second burst a few seconds later; its rows deleted; replay
#    --from T with T between the bursts restores exactly them.
sleep 2
t_between=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
sleep 2
produce "$WORK/second.txt"
start_service svc2
wait_for "select count(*) from presences" 4970
stop_service "$SERVICE_PID"
sql "delete from presences where id >= (select min(id) from presences) + 5000" >/dev/null
[ "$(sql "select count(*) from presences")" = 2970 ] || fail "second burst not deleted"
out=$(replay --from "$t_between")
[ "$out" = "messages=2000 stored=2000 duplicates=0 conflicts=0 rejected=0 skipped=0" ] ||
  fail "replay --from: $out"
[ "$(sql "select count(*) from presences")" = 4970 ] || fail "after replay --from"

# 3. The same range again: nothing written, every row a duplicate.
out=$(replay --from "$t_between")
[ "$out" = "messages=2000 stored=0 duplicates=2000 conflicts=0 rejected=0 skipped=0" ] ||
  fail "second replay --from: $out"

# 4. An empty range, a dry run, and a relative time in the future's past.
out=$(replay --from-offset 999999)
[ "$out" = "messages=0 stored=0 duplicates=0 conflicts=0 rejected=0 skipped=0" ] ||
  fail "empty range: $out"
sql "delete from presences where kafka_partition = 0" >/dev/null
left=$(sql "select count(*) from presences")
out=$(replay --partitions 0 --dry-run --pg "host=127.0.0.1 port=1")
echo "$out" | grep -q "^messages=[1-9][0-9]* stored=[1-9][0-9]* duplicates=0" || fail "dry run: $out"
[ "$(sql "select count(*) from presences")" = "$left" ] || fail "dry run wrote"

# 5. kill -9 half way, then the same replay again: complete, no duplicates.
"$PI_BINARY" replay --brokers "$BROKERS" --topic "$TOPIC" --pg "$PG" --partitions 0 \
  --batch-size 50 --linger-ms 10 --stats-interval-ms 0 >"$WORK/killed.out" 2>"$WORK/killed.log" &
pid=$!
for i in $(seq 200); do
  [ "$(sql "select count(*) from presences where kafka_partition = 0")" -gt 100 ] && break
  sleep 0.05
done
kill -9 "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
half=$(sql "select count(*) from presences where kafka_partition = 0")
out=$(replay --partitions 0)
[ "$(sql "select count(*) from presences")" = 4970 ] || fail "after kill -9 and replay: $out"
[ "$(sql "select count(*), count(distinct id) from presences")" = "4970|4970" ] || fail "duplicates"
snapshot "$WORK/final.txt"
log "ok: kill -9 at $half rows of partition 0, replayed again: $out"

# 6. Errors: one line each, exit 2 for bad input.
expect_err() {
  local code=$1 pattern=$2 rc=0
  shift 2
  replay "$@" >/dev/null 2>"$WORK/err.txt" || rc=$?
  [ "$rc" = "$code" ] || fail "replay $*: exit $rc, expected $code ($(tail -n 1 "$WORK/err.txt"))"
  tail -n 1 "$WORK/err.txt" | grep -q -- "$pattern" ||
    fail "replay $*: '$(tail -n 1 "$WORK/err.txt")' lacks '$pattern'"
}
expect_err 2 "topic 'no_such_topic' does not exist" --topic no_such_topic
expect_err 2 "topic $TOPIC has no partition 7" --partitions 7
expect_err 2 "--to-offset 10 is before --from-offset 20" --from-offset 20 --to-offset 10
expect_err 2 "is before --from" --from 2026-01-02T00:00:00Z --to 2026-01-01T00:00:00Z
expect_err 2 "exclude each other" --from -1h --from-offset 5
expect_err 2 "not an RFC 3339 time" --from yesterday
expect_err 2 "--group" --group x
expect_err 1 "cannot reach Kafka brokers 127.0.0.1:1" --brokers 127.0.0.1:1 -X log_level=0
expect_err 1 "cannot connect to PostgreSQL" --pg "host=127.0.0.1 port=1 connect_timeout=2"

# 7. An offset below the log start: warned, started at the log start, the
#    rest replayed, and the exit says how much was no longer there.
bash "$PI_SUPPORT_DIR/kafka.sh" truncate "$PI_SERVICES/kafka" "$TOPIC" 2 50
end2=$(sql "select max(kafka_offset) + 1 from presences where kafka_partition = 2")
rc=0
out=$(replay --partitions 2 --from-offset 10 2>"$WORK/trunc.log") || rc=$?
[ "$rc" = 1 ] || fail "below the log start: exit $rc, expected 1"
grep -q "40 message(s) of the range are no longer on the broker" "$WORK/trunc.log" ||
  fail "no warning for the truncated range: $(cat "$WORK/trunc.log")"
tail -n 1 "$WORK/trunc.log" | grep -q "40 message(s) of the range were no longer on the broker" ||
  fail "exit line: $(tail -n 1 "$WORK/trunc.log")"
echo "$out" | grep -q "^messages=$((end2 - 50)) " || fail "truncated replay read: $out (log end $end2)"
log "ok: replay repairs, restores by time, dry-runs, survives kill -9, refuses bad ranges"
