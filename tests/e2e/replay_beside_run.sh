#!/usr/bin/env bash
# replay and run at once on the same topic and database, new messages still
# arriving (issue 9): every presence stored once, every reject once, the
# live group's ingest_offsets untouched by the replay, its lag 0 at the end.
# Issue 25: the replay runs with every option at its default beside a `run`
# that holds the default port 127.0.0.1:9464 (or, when something else on
# this shared host holds it already, a port of its own), both reading one
# config file that names that port, the environment naming it too (as a
# unit's Environment= would): a replay serves HTTP only when --http-listen
# is on its command line, so it needs no port and exits 0.
source "$(dirname "$0")/lib.sh"
source "$PI_SUPPORT_DIR/common.sh"

setup 3
"$PI_GEN" 12000 --bad-every 50 >"$WORK/all.txt"
head -n 6000 "$WORK/all.txt" >"$WORK/old.txt"
tail -n 6000 "$WORK/all.txt" | split -l 1000 - "$WORK/new."
produce "$WORK/old.txt"
port=9464
port_in_use "$port" && port=$(free_ports 1)
printf '%s\n' "brokers = $BROKERS" "topic = $TOPIC" "pg = $PG" \
  "http-listen = 127.0.0.1:$port" >"$WORK/shared.conf"
export PRESENCE_HTTP_LISTEN=127.0.0.1:$port
start_service live --batch-size 500 --config "$WORK/shared.conf"
wait_for "select count(*) from presences" 5880
grep -q "serving /metrics.*127.0.0.1:$port" "$WORK/live.log" ||
  fail "the live run does not serve on 127.0.0.1:$port"
port_in_use "$port" || fail "nothing listens on 127.0.0.1:$port"
offsets_before=$(sql "select string_agg(partition || ':' || next_offset, ',' order by partition)
                      from ingest_offsets where consumer_group = '$GROUP'")

# New messages keep arriving while the replay re-reads the old ones.
( for f in "$WORK"/new.*; do produce "$f"; sleep 0.5; done ) &
feeder=$!
# Defaults but for what makes the test fast and shows progress lines.
"$PI_BINARY" replay --config "$WORK/shared.conf" \
  --batch-size 200 --stats-interval-ms 50 --progress never \
  >"$WORK/replay.out" 2>"$WORK/replay.log" || fail "replay failed: $(tail -n 3 "$WORK/replay.log")"
! grep -q "serving /metrics" "$WORK/replay.log" ||
  fail "the replay served HTTP without --http-listen: $(grep serving "$WORK/replay.log")"
wait "$feeder"
summary=$(cat "$WORK/replay.out")
log "replay: $summary"
# It read at least the old messages, and accounted for each one it read.
read -r m s d c r k < <(echo "$summary" | sed 's/[a-z]*=//g')
[ "$m" -ge 6000 ] || fail "replay read $m messages, fewer than the 6000 there at start"
[ $((s + d + r)) = "$m" ] || fail "replay accounting: $summary"
[ "$(grep -c "replay progress percent=" "$WORK/replay.log")" -ge 2 ] ||
  fail "no progress lines during the replay"
grep "replay progress" "$WORK/replay.log" | tail -n 1 | grep -q "percent=100.0" ||
  fail "the last progress line is not at 100%"

wait_for "select count(*) from presences" 11760 120
[ "$(sql "select count(*), count(distinct id) from presences")" = "11760|11760" ] ||
  fail "presences not exactly once"
[ "$(sql "select count(*), count(distinct (topic, partition, \"offset\", element))
          from presence_rejects")" = "240|240" ] || fail "rejects not exactly once"
[ "$(sql "select count(*) from ingest_offsets where consumer_group <> '$GROUP'")" = 0 ] ||
  fail "the replay wrote ingest_offsets rows"
sleep 1
check_offsets_match
check_lag_zero
# Nothing of the replay in the group list: it joined no group.
bash "$PI_SUPPORT_DIR/kafka.sh" groups "$PI_SERVICES/kafka" "$GROUP" >/dev/null
stop_service "$SERVICE_PID"
log "ok: replay beside run: 11760 presences and 240 rejects once each; live offsets were $offsets_before"
