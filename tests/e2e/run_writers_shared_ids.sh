#!/usr/bin/env bash
# --writers 2: partitions 0 and 2 are written by writer 0, 1 and 3 by
# writer 1 (partition mod 2).
#
# 1. The same presences produced to all four partitions (shuffled, to 0 and
#    3 in one order, to 1 and 2 in another) before the service starts, so that both
#    writers' batches hold the same ids at the same moment, many times over: each is stored once,
#    the summary counts the three other copies as duplicates, no deadlock
#    is ever reported (rows go in by id) and ingest_offsets ends at the
#    log-end offsets.
# 2. Ordering within a partition: 300 versions of one id per partition,
#    produced in order, written in batches of 50 with --on-conflict replace:
#    the stored row is each partition's last version.
source "$(dirname "$0")/lib.sh"

PI_E2E_WRITERS=2
N=20000
setup 4
"$PI_GEN" "$N" | shuf >"$WORK/s.txt"
# The same order with every run of 100 lines reversed: batches of the two
# writers then hold mostly the same ids, in different orders.
awk '{ b[NR % 100] = $0 } NR % 100 == 0 { for (i = 100; i >= 1; i--) print b[i % 100] }
     END { for (i = NR % 100; i >= 1; i--) print b[i] }' "$WORK/s.txt" >"$WORK/r.txt"
[ "$(sort "$WORK/s.txt" | md5sum)" = "$(sort "$WORK/r.txt" | md5sum)" ] || fail "r.txt"

produce_to() { # FILE PARTITION [TOPIC]
  kcat -P -b "$BROKERS" -t "${3:-$TOPIC}" -p "$2" -l "$1"
}

producers=()
for p in 0 3; do
  produce_to "$WORK/s.txt" "$p" &
  producers+=($!)
done
for p in 1 2; do
  produce_to "$WORK/r.txt" "$p" &
  producers+=($!)
done
for pid in "${producers[@]}"; do wait "$pid" || fail "kcat failed"; done
# All of it waiting: the consumer fills both writers' batches as fast as it
# decodes, so that they are written at the same time.
start_service a --batch-size 1000
wait_for "select coalesce(sum(next_offset), 0) from ingest_offsets
          where consumer_group = '$GROUP' and topic = '$TOPIC'" "$((4 * N))" 180
stop_service "$SERVICE_PID"
[ "$(sql "select count(*) from presences")" = "$N" ] || fail "row count"
[ "$(sql "select max(id) - min(id) + 1 from presences")" = "$N" ] || fail "id range"
[ "$(sql "select count(*) from presence_rejects")" = 0 ] || fail "unexpected rejects"
check_offsets_match
grep -q "stopped: messages=$((4 * N)) stored=$N duplicates=$((3 * N)) conflicts=0 rejected=0 " \
  "$WORK/a.log" || fail "summary: $(grep 'stopped:' "$WORK/a.log")"
if grep -q -i "40P01\|deadlock" "$WORK/a.log"; then
  fail "a deadlock was reported: $(grep -i -m1 '40P01\|deadlock' "$WORK/a.log")"
fi
log "ok: $N presences produced to 4 partitions stored once by 2 writers"

# 2. Ordering: versions differ in connection_id (5000 + version).
TOPIC="${NAME}_order"
GROUP="$TOPIC"
K=300
bash "$PI_SUPPORT_DIR/kafka.sh" topic "$PI_SERVICES/kafka" "$TOPIC" 4 >/dev/null
for p in 0 1 2 3; do
  id=$((922746890000000000 + p))
  for k in $(seq 0 $((K - 1))); do
    c=$((5000 + k))
    printf '{"id":%s,"id_str":"%s","connection_id":%s,"connection_id_str":"%s","type":"connect","reason":"client_disconnect","asset":"358084525962000","time":"2016-12-21T07:06:40.000Z"}\n' \
      "$id" "$id" "$c" "$c"
  done >"$WORK/versions.$p"
  produce_to "$WORK/versions.$p" "$p" "$TOPIC"
done
start_service b --batch-size 50 --on-conflict replace
wait_for "select coalesce(sum(next_offset), 0) from ingest_offsets
          where consumer_group = '$GROUP' and topic = '$TOPIC'" "$((4 * K))" 120
stop_service "$SERVICE_PID"
want=$(for p in 0 1 2 3; do echo "$((922746890000000000 + p)) $((5000 + K - 1)) $p $((K - 1))"; done)
got=$(sql "select id || ' ' || connection_id || ' ' || kafka_partition || ' ' || kafka_offset
           from presences where id >= 922746890000000000 order by id")
[ "$got" = "$want" ] || fail "last versions: got [$got], want [$want]"
grep -q "stopped: messages=$((4 * K)) stored=4 duplicates=0 conflicts=$((4 * (K - 1))) " \
  "$WORK/b.log" || fail "summary: $(grep 'stopped:' "$WORK/b.log")"
log "ok: each partition's last version stored, in order, by 2 writers"
