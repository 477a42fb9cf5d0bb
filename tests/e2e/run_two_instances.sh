#!/usr/bin/env bash
# Two instances in one group, one started and the other stopped mid-stream:
# partitions move and every presence is stored exactly once. Runs with the
# default cooperative-sticky assignor and again with the eager `range` one,
# each on a topic and group of its own.
source "$(dirname "$0")/lib.sh"

N=24000
setup 6
"$PI_GEN" "$N" >"$WORK/in.txt"
split -n l/3 -d "$WORK/in.txt" "$WORK/part."

for strategy in cooperative-sticky range; do
  TOPIC="${NAME}_${strategy//-/_}"
  GROUP="$TOPIC"
  bash "$PI_SUPPORT_DIR/kafka.sh" topic "$PI_SERVICES/kafka" "$TOPIC" 6 >/dev/null
  sql "truncate presences, presence_rejects, ingest_offsets"
  opts=(--batch-size 500 -X "partition.assignment.strategy=$strategy")

  start_service "a_$strategy" "${opts[@]}"
  a=$SERVICE_PID
  produce "$WORK/part.00"
  start_service "b_$strategy" "${opts[@]}"
  b=$SERVICE_PID
  produce "$WORK/part.01"
  sleep 2
  stop_service "$a"
  produce "$WORK/part.02"

  wait_for "select count(*) from presences" "$N" 180
  [ "$(sql "select max(id) - min(id) + 1 from presences")" = "$N" ] || fail "id range"
  grep -q "assigned " "$WORK/b_$strategy.log" || fail "b was never assigned"
  sleep 1
  check_offsets_match
  stop_service "$b"
  log "ok ($strategy): $N presences exactly once across two instances"
done
