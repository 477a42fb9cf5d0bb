#!/usr/bin/env bash
# /metrics while `run` drains a topic: every scrape passes `promtool check
# metrics`; at the end the counters equal the tables (stored, duplicates,
# rejects by code) and the consumer lag is 0 on every partition. /readyz is
# 503 while PostgreSQL is down and 200 once it is back, /healthz stays 200.
# Slow scrape clients holding connections do not slow the consumer.
source "$(dirname "$0")/lib.sh"

command -v promtool >/dev/null || fail "promtool missing (apt-get install prometheus)"
N=20000
setup 4
"$PI_GEN" "$N" --first-id 1000000 --bad-every 100 >"$WORK/a.txt"
"$PI_GEN" "$N" --first-id 2000000 --bad-every 100 >"$WORK/b.txt"
{
  head -n 500 "$WORK/a.txt" # again: 495 duplicates, 5 more malformed_json
  p='"connection_id":1,"type":"connect","asset":"a","time":"2024-01-01T00:00:00Z"'
  echo "{\"id\":5,\"reason\":\"one\",$p}"
  echo "{\"id\":5,\"reason\":\"two\",$p}" # a conflict (either one wins)
  echo "{\"id\":6,\"reason\":\"same\",$p}"
  echo "{\"id\":6,\"reason\":\"same\",$p}" # a duplicate
  echo '{"meta":{"event":"track"},"payload":{}}'                   # skipped
  echo '{"id":7,"connection_id":1,"type":"connect","reason":"r","asset":"a","time":"soon"}'
  echo '{"id":8,"connection_id":1,"type":"teleport","reason":"r","asset":"a","time":"2024-01-01T00:00:00Z"}'
} >"$WORK/c.txt"

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
svc() {
  start_service svc --http-listen "127.0.0.1:$PORT" --health-stall-ms 2000 \
    --batch-size 1000 --backoff-max-ms 500
}
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL$1"; }
metric() { # metric SERIES: its value in the latest scrape (0 when absent)
  awk -v s="$1" '$1 == s { v = $2 } END { print v + 0 }' "$WORK/last.prom"
}
scrape() { curl -sf --max-time 5 "$URL/metrics" >"$WORK/last.prom"; }
wait_ready() { # wait_ready CODE SECONDS
  local i
  for i in $(seq $(($2 * 10))); do
    [ "$(code /readyz)" = "$1" ] && return 0
    sleep 0.1
  done
  fail "/readyz did not turn $1 within $2 s: $(curl -s "$URL/readyz")"
}
now() { date +%s.%N; }
# drained: wait until ingest_offsets covers the whole topic.
drained() {
  wait_for "select coalesce(sum(next_offset), 0) from ingest_offsets
            where consumer_group = '$GROUP'" "$(log_end_total)" 120
}

# Scrape every 0.2 s for the whole test, keeping each scrape.
mkdir "$WORK/scrapes"
( i=0; while :; do
    curl -sf --max-time 5 "$URL/metrics" >"$WORK/scrapes/$i.prom" 2>/dev/null &&
      i=$((i + 1))
    sleep 0.2
  done ) &
SERVICE_PIDS+=("$!")

# Phase 1: a backlog drained with only the scraper; phase 2: the same size
# of backlog with slow clients holding connections from the start.
produce "$WORK/a.txt"
t0=$(now)
svc
drained
t_plain=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
stop_service "$SERVICE_PID"
# The next instance's counters start from 0: the tables' contents so far.
base_stored=$(sql "select count(*) from presences")
base_messages=$(log_end_total)
sql "select error, count(*) from presence_rejects group by error" >"$WORK/base_rejects"

produce "$WORK/b.txt"
t0=$(now)
svc
for i in $(seq 100); do code /healthz >/dev/null && break; sleep 0.05; done
# Slow scrape clients: some send half a request and wait, some read a
# /metrics response one byte every half second through a tiny buffer, some
# connect and say nothing. They hold 20 of the 32 connection slots.
python3 - "$PORT" >"$WORK/slow.log" 2>&1 <<'PY' &
import socket, sys, time
port = int(sys.argv[1])
conns = []
for i in range(20):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    s.connect(("127.0.0.1", port))
    if i % 3 == 0:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    elif i % 3 == 1:
        s.sendall(b"GET /met")
    conns.append(s)
print("holding", len(conns), flush=True)
end = time.time() + 600
while time.time() < end:
    for i, s in enumerate(conns):
        if i % 3 == 0:
            try:
                s.recv(1)
            except OSError:
                pass
    time.sleep(0.5)
PY
SLOW_PID=$!
SERVICE_PIDS+=("$SLOW_PID")
drained
t_slow=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
grep -q holding "$WORK/slow.log" || fail "slow clients did not connect: $(cat "$WORK/slow.log")"
[ "$(code /healthz)" = 200 ] || fail "/healthz unanswered beside slow clients"
log "start + drain of $N messages: ${t_plain}s without slow clients, ${t_slow}s with"
awk -v a="$t_plain" -v b="$t_slow" 'BEGIN { exit !(b <= 2 * a + 5) }' ||
  fail "slow scrape clients slowed the consumer: ${t_slow}s vs ${t_plain}s"
kill "$SLOW_PID"
wait_ready 200 60

produce "$WORK/c.txt"
drained
# The lag gauge follows the high watermarks librdkafka learns from fetches.
for i in $(seq 50); do
  scrape
  lag=$(awk '$1 ~ /^presence_ingest_consumer_lag_messages\{/ { s += $2; n++ }
             END { print n "/" s }' "$WORK/last.prom")
  [ "$lag" = "4/0" ] && break
  sleep 0.2
done
[ "$lag" = "4/0" ] || fail "consumer lag (partitions/sum) is $lag, not 4/0"
[ "$(metric presence_ingest_assigned_partitions)" = 4 ] || fail "assigned_partitions"

# Counters equal the tables (less what the first instance wrote).
stored=$(($(sql "select count(*) from presences") - base_stored))
[ "$(metric 'presence_ingest_presences_total{outcome="stored"}')" = "$stored" ] ||
  fail "stored: metric $(metric 'presence_ingest_presences_total{outcome="stored"}'), table $stored"
[ "$(metric 'presence_ingest_presences_total{outcome="duplicate"}')" = 496 ] ||
  fail "duplicates: $(metric 'presence_ingest_presences_total{outcome="duplicate"}'), want 496"
[ "$(metric 'presence_ingest_presences_total{outcome="conflict"}')" = 1 ] || fail "conflicts"
[ "$(metric 'presence_ingest_presences_total{outcome="skipped"}')" = 1 ] || fail "skipped"
total=$(($(log_end_total) - base_messages))
[ "$(metric "presence_ingest_messages_total{topic=\"$TOPIC\"}")" = "$total" ] ||
  fail "messages_total $(metric "presence_ingest_messages_total{topic=\"$TOPIC\"}") != $total"
for c in empty too_large malformed_json not_an_object missing_field wrong_type \
  bad_encoding invalid_id id_mismatch id_out_of_range connection_id_mismatch \
  connection_id_out_of_range unknown_type bad_reason bad_asset bad_time id_conflict; do
  grep -q "^presence_ingest_rejects_total{code=\"$c\"} " "$WORK/last.prom" ||
    fail "no rejects_total series for $c"
  want=$(sql "select count(*) from presence_rejects where error = '$c'")
  want=$((want - $(awk -F'|' -v c="$c" '$1 == c { print $2 }' "$WORK/base_rejects" | grep . || echo 0)))
  got=$(metric "presence_ingest_rejects_total{code=\"$c\"}")
  [ "$got" = "$want" ] || fail "rejects_total{code=$c} = $got, table has $want"
done
[ "$(sql "select count(*) from presence_rejects where error in
          ('malformed_json', 'bad_time', 'unknown_type', 'id_conflict')")" = 408 ] ||
  fail "the test's rejects are not all in the table"
[ "$(metric presence_ingest_last_commit_timestamp_seconds | cut -d. -f1)" -gt 0 ] ||
  fail "no last commit time"

# PostgreSQL down: not ready (with a reason), still live; back: ready.
bash "$PI_SUPPORT_DIR/pg.sh" pause "$PI_SERVICES/pg"
wait_ready 503 15
reason=$(curl -s --max-time 5 "$URL/readyz")
log "readyz while PostgreSQL is down: $reason"
echo "$reason" | grep -q database || fail "readyz reason does not name the database: $reason"
"$PI_GEN" 100 --first-id 3000000 >"$WORK/d.txt"
produce "$WORK/d.txt" # the writer meets the outage
sleep 3
[ "$(code /healthz)" = 200 ] || fail "/healthz failed while only PostgreSQL was down"
[ "$(code /readyz)" = 503 ] || fail "/readyz turned 200 while PostgreSQL was down"
bash "$PI_SUPPORT_DIR/pg.sh" resume "$PI_SERVICES/pg"
wait_ready 200 60
want=$(log_end_total)
wait_for "select sum(next_offset) from ingest_offsets where consumer_group = '$GROUP'" "$want" 60
scrape
[ "$(metric presence_ingest_db_retries_total)" -gt 0 ] || fail "no db retry counted"
errs=$(awk '$1 ~ /^presence_ingest_db_errors_total\{/ { s += $2 } END { print s + 0 }' "$WORK/last.prom")
[ "$errs" -gt 0 ] || fail "no db error counted"
stop_service "$SERVICE_PID"

# Every scrape taken during the test is valid exposition, and some were
# taken mid-drain (the stored counter took several values).
n=$(ls "$WORK/scrapes" | wc -l)
[ "$n" -ge 20 ] || fail "only $n scrapes"
for f in "$WORK"/scrapes/*.prom; do
  [ -s "$f" ] || continue
  promtool check metrics <"$f" >"$WORK/promtool.log" 2>&1 ||
    fail "promtool check metrics $f: $(cat "$WORK/promtool.log")"
done
values=$(cat "$WORK"/scrapes/*.prom | awk '$1 == "presence_ingest_presences_total{outcome=\"stored\"}" { print $2 }' | sort -u | wc -l)
[ "$values" -ge 3 ] || fail "no scrape caught a drain in progress ($values stored values)"
log "$n scrapes checked with promtool, $values distinct stored values"
log "ok: metrics match the tables; readyz followed PostgreSQL; slow clients harmless"
