#!/usr/bin/env bash
# The closing line of a failed start names the real cause (issue 8): a
# wrong SASL password says "authentication failed", a CA that did not sign
# the broker's certificate says "certificate verify failed", both exit 1 at
# once instead of "Broker transport failure" after 10 s. The right
# credentials and CA work on the same listeners, so the failures are not an
# artefact of the setup.
source "$(dirname "$0")/lib.sh"

SASL=$(cat "$PI_SERVICES/kafka/brokers_sasl")
SSL=$(cat "$PI_SERVICES/kafka/brokers_ssl")
TLS=$PI_SERVICES/kafka/tls
setup 1
"$PI_GEN" 20 >"$WORK/in.txt"
produce "$WORK/in.txt"
SASL_X=(-X security.protocol=SASL_PLAINTEXT -X sasl.mechanism=PLAIN -X sasl.username=pi)

# expect_fail NAME PATTERN ARGS…: run exits 1 within 15 s, last line matches.
expect_fail() {
  local name=$1 pattern=$2 rc=0
  shift 2
  timeout 15 "$PI_BINARY" run --topic "$TOPIC" --group "$GROUP" --pg "$PG" "$@" \
    >"$WORK/$name.log" 2>&1 || rc=$?
  [ "$rc" = 1 ] || fail "$name: exit status $rc, expected 1"
  tail -n 1 "$WORK/$name.log" | grep -q -- "$pattern" ||
    fail "$name: last line '$(tail -n 1 "$WORK/$name.log")' lacks '$pattern'"
  log "ok: $name: $(tail -n 1 "$WORK/$name.log" | cut -c 1-200)"
}

expect_fail wrong_password "authentication failed" \
  --brokers "$SASL" "${SASL_X[@]}" -X sasl.password=wrong
expect_fail wrong_ca "certificate verify failed" \
  --brokers "$SSL" -X security.protocol=SSL -X ssl.ca.location="$TLS/other-ca.pem"
grep -q "pi-secret\|sasl.password=wrong" "$WORK/wrong_password.log" &&
  fail "a password was logged"

# The right ones: every message stored through each listener.
"$PI_BINARY" run --brokers "$SASL" --topic "$TOPIC" --group "${GROUP}_sasl" \
  --pg "$PG" --linger-ms 50 "${SASL_X[@]}" -X sasl.password=pi-secret \
  >"$WORK/sasl.log" 2>&1 &
SERVICE_PIDS+=($!)
wait_for "select count(*) from ingest_offsets where consumer_group = '${GROUP}_sasl'" 1 60
stop_service "${SERVICE_PIDS[-1]}"
"$PI_BINARY" run --brokers "$SSL" --topic "$TOPIC" --group "${GROUP}_ssl" \
  --pg "$PG" --linger-ms 50 -X security.protocol=SSL \
  -X ssl.ca.location="$TLS/ca.pem" >"$WORK/ssl.log" 2>&1 &
SERVICE_PIDS+=($!)
wait_for "select count(*) from ingest_offsets where consumer_group = '${GROUP}_ssl'" 1 60
stop_service "${SERVICE_PIDS[-1]}"
[ "$(sql "select count(*) from presences")" = 20 ] || fail "rows"
log "ok: authentication and certificate failures named; SASL and TLS work"
