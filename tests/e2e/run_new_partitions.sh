#!/usr/bin/env bash
# Partitions added to a topic while the service runs are consumed within a
# minute (issue 8): topic.metadata.refresh.interval.ms defaults to 30 s
# here, not librdkafka's 5 minutes.
source "$(dirname "$0")/lib.sh"

setup 2
"$PI_GEN" 3000 >"$WORK/in.txt"
head -n 1000 "$WORK/in.txt" >"$WORK/a.txt"
tail -n 2000 "$WORK/in.txt" >"$WORK/b.txt"
start_service svc
produce "$WORK/a.txt"
wait_for "select count(*) from presences" 1000
bash "$PI_SUPPORT_DIR/kafka.sh" grow "$PI_SERVICES/kafka" "$TOPIC" 4
grown_at=$SECONDS
produce "$WORK/b.txt"
wait_for "select count(*) from presences" 3000 60
took=$((SECONDS - grown_at))
[ "$(sql "select count(distinct partition) from ingest_offsets
          where consumer_group = '$GROUP' and partition in (2, 3)")" = 2 ] ||
  fail "the new partitions 2 and 3 have no ingest_offsets rows"
check_offsets_match
stop_service "$SERVICE_PID"
log "ok: partitions 2 and 3 consumed ${took}s after they were added"
