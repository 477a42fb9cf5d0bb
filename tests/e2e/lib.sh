# lib.sh -- shared steps of the end-to-end tests (sourced, not run)
#
# Each test gets its own topic and its own database on the harness's broker
# and PostgreSQL (ctest fixtures `kafka` and `pg`), runs the real binary, and
# checks the tables with psql and the group with Kafka's own tool.
set -euo pipefail

: "${PI_SERVICES:?run through ctest: the fixtures start the services}"
: "${PI_BINARY:?}" "${PI_GEN:?}" "${PI_SUPPORT_DIR:?}"

BROKERS=$(cat "$PI_SERVICES/kafka/brokers")
PG_ADMIN=$(cat "$PI_SERVICES/pg/conninfo")
NAME="e2e_$(basename "$0" .sh | tr -c 'a-z0-9_\n' '_')_$$"
TOPIC="$NAME"
GROUP="$NAME"
DB="$NAME"
PG="$PG_ADMIN dbname=$DB"
# What start_service logs in with. PI_E2E_PG_ROLE=writer: a login role that
# is only a member of presence_writer (deploy/sql/roles.sql), made by setup;
# the checks (sql) keep the administrator's $PG.
PG_SERVICE=$PG
WORK=$(mktemp -d "/tmp/$NAME.XXXXXX")
SERVICE_PIDS=()
AT_EXIT=() # commands run at exit before the services are killed

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

# at_exit CMD: also run CMD at exit (undo a fault the test injected); the
# script's exit status is kept whatever CMD returns.
at_exit() { AT_EXIT+=("$1"); }

cleanup() {
  local rc=$? i
  for ((i = ${#AT_EXIT[@]} - 1; i >= 0; i--)); do # last in, first out
    eval "${AT_EXIT[i]}" >/dev/null 2>&1 || true
  done
  for pid in "${SERVICE_PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  if [ $rc -ne 0 ]; then
    for f in "$WORK"/*.log; do
      [ -f "$f" ] && { echo "--- $f (last 30 lines)"; tail -n 30 "$f"; }
    done
  fi
  [ -n "${PI_KEEP:-}" ] || rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT

sql() { psql "$PG" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }

# setup PARTITIONS: topic, database, schema.
setup() {
  bash "$PI_SUPPORT_DIR/kafka.sh" topic "$PI_SERVICES/kafka" "$TOPIC" "$1" >/dev/null
  psql "$PG_ADMIN" -XAtq -v ON_ERROR_STOP=1 -c "create database $DB" >/dev/null
  "$PI_BINARY" migrate --pg "$PG" >/dev/null
  if [ "${PI_E2E_PG_ROLE:-}" = writer ]; then
    psql "$PG" -XAtq -v ON_ERROR_STOP=1 -f "$PI_SOURCE_DIR/deploy/sql/roles.sql" >/dev/null
    sql "create role ${NAME}_w login in role presence_writer"
    at_exit "psql \"\$PG_ADMIN\" -XAtqc 'drop role if exists ${NAME}_w'"
    PG_SERVICE="$PG user=${NAME}_w"
    log "the service logs in as ${NAME}_w, a member of presence_writer only"
  fi
}

# produce FILE: every line of FILE becomes one message, produced by kcat,
# not by our code. No key, and no sticky partitioning: each message goes to
# a random partition, so every partition gets some.
produce() {
  kcat -P -b "$BROKERS" -t "$TOPIC" -X sticky.partitioning.linger.ms=0 -l "$1"
}

# start_service NAME [ARGS…]: run the service in the background; its log is
# $WORK/NAME.log; sets SERVICE_PID. PI_E2E_WRITERS (default 1) is its
# --writers: tests/e2e/tests.cmake runs some tests a second time with 2.
start_service() {
  local name=$1; shift
  "$PI_BINARY" run --brokers "$BROKERS" --topic "$TOPIC" --group "$GROUP" \
    --pg "$PG_SERVICE" --linger-ms 50 --stats-interval-ms 0 \
    --writers "${PI_E2E_WRITERS:-1}" "$@" \
    >>"$WORK/$name.log" 2>&1 &
  SERVICE_PID=$!
  SERVICE_PIDS+=("$SERVICE_PID")
}

# stop_service PID: SIGTERM, and it must exit 0 within 30 s.
stop_service() {
  local pid=$1 i
  kill -TERM "$pid"
  for i in $(seq 300); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && fail "service $pid did not exit within 30 s of SIGTERM"
  wait "$pid" || fail "service $pid exited with status $? after SIGTERM"
}

# wait_for SQL EXPECTED [SECONDS]: poll until the query prints EXPECTED.
wait_for() {
  local query=$1 want=$2 secs=${3:-120} got="" i
  for i in $(seq $((secs * 5))); do
    got=$(sql "$query" 2>/dev/null || true)
    [ "$got" = "$want" ] && return 0
    sleep 0.2
  done
  fail "waited ${secs}s for [$query] = $want, last saw '$got'"
}

# log_end_total: sum of the topic's log-end offsets (messages produced).
# The group's description lists no partition while it rebalances (two
# instances joining): asked again until it does, for up to 10 s, so that a
# test never waits for a total of 0 (every caller has produced first).
log_end_total() {
  local s=0
  for _ in $(seq 50); do
    s=$(bash "$PI_SUPPORT_DIR/kafka.sh" groups "$PI_SERVICES/kafka" "$GROUP" 2>/dev/null |
      awk -v t="$TOPIC" '$2 == t { s += $5 } END { print s + 0 }')
    [ "$s" != 0 ] && break
    sleep 0.2
  done
  echo "$s"
}

# check_offsets_match: ingest_offsets holds, for every partition of the
# topic that has messages, exactly the log-end offset (a partition that never
# had one has no row).
check_offsets_match() {
  local want got
  want=$(bash "$PI_SUPPORT_DIR/kafka.sh" groups "$PI_SERVICES/kafka" "$GROUP" |
    awk -v t="$TOPIC" '$2 == t && $5 != "0" { print $3 " " $5 }' | sort -n)
  got=$(sql "select partition || ' ' || next_offset from ingest_offsets
             where consumer_group = '$GROUP' and topic = '$TOPIC'
             order by partition")
  [ "$want" = "$got" ] || fail "ingest_offsets ($got) differs from log-end offsets ($want)"
}

# check_lag_zero: Kafka's own tool shows the group with lag 0 everywhere.
check_lag_zero() {
  local out
  out=$(bash "$PI_SUPPORT_DIR/kafka.sh" groups "$PI_SERVICES/kafka" "$GROUP")
  echo "$out" | awk -v t="$TOPIC" '$2 == t' | grep -q . ||
    fail "kafka-consumer-groups does not show group $GROUP: $out"
  echo "$out" | awk -v t="$TOPIC" '$2 == t && $6 != "0" && $5 != "0" { bad = 1 } END { exit bad }' ||
    fail "lag is not 0: $out"
}
