#!/usr/bin/env bash
# A production-like Kafka (issue 12): run and replay over SASL_SSL with
# SCRAM-SHA-512, the password from --sasl-password-file (run) and from
# PRESENCE_KAFKA_SASL_PASSWORD (replay), never on the command line. Every
# presence is stored once; a wrong password and a CA that did not sign the
# broker's certificate each end the start with one line naming the cause,
# exit 1, within 15 s. (Needs librdkafka >= 2.6.1: older ones fail the
# login, librdkafka issue 4895.)
source "$(dirname "$0")/lib.sh"

K=$PI_SERVICES/kafka
SECURE=$(cat "$K/brokers_sasl_ssl")
N=2000
SCRAM_X=(-X security.protocol=SASL_SSL -X sasl.mechanisms=SCRAM-SHA-512
  -X "sasl.username=$(cat "$K/scram_user")")
setup 3
"$PI_GEN" "$N" --shape mixed >"$WORK/in.txt"
produce "$WORK/in.txt"
(umask 077 && cp "$K/scram_password" "$WORK/password")
printf 'not-the-password\n' >"$WORK/wrong"
chmod 600 "$WORK/wrong"

# expect_fail NAME PATTERN ARGS…: run exits 1 within 15 s, and its last
# line (the only error line) matches.
expect_fail() {
  local name=$1 pattern=$2 rc=0 started=$SECONDS
  shift 2
  timeout 15 "$PI_BINARY" run --brokers "$SECURE" --topic "$TOPIC" \
    --group "$GROUP" --pg "$PG" "${SCRAM_X[@]}" "$@" \
    >"$WORK/$name.log" 2>&1 || rc=$?
  [ "$rc" = 1 ] || fail "$name: exit status $rc, expected 1"
  tail -n 1 "$WORK/$name.log" | grep -q -- "$pattern" ||
    fail "$name: last line '$(tail -n 1 "$WORK/$name.log")' lacks '$pattern'"
  [ "$(grep -c 'level=error' "$WORK/$name.log")" = 1 ] ||
    fail "$name: not exactly one error line"
  log "ok: $name in $((SECONDS - started)) s: $(tail -n 1 "$WORK/$name.log" | cut -c 1-220)"
}

expect_fail wrong_password "authentication failed" \
  -X "ssl.ca.location=$K/tls/ca.pem" --sasl-password-file "$WORK/wrong"
expect_fail wrong_ca "certificate verify failed" \
  -X "ssl.ca.location=$K/tls/other-ca.pem" --sasl-password-file "$WORK/password"
[ "$(sql "select count(*) from presences")" = 0 ] || fail "a failed start stored rows"

start_service a --brokers "$SECURE" "${SCRAM_X[@]}" \
  -X "ssl.ca.location=$K/tls/ca.pem" --sasl-password-file "$WORK/password"
wait_for "select count(*) from presences" "$N" 90
sleep 1 # the last Kafka commit
check_offsets_match
stop_service "$SERVICE_PID"
grep -q "stored=$N " "$WORK/a.log" || fail "final summary does not say stored=$N"
[ "$(sql "select count(distinct id) from presences")" = "$N" ] || fail "duplicate ids"
[ "$(sql "select count(*) from presence_rejects")" = 0 ] || fail "unexpected rejects"
grep -q "librdkafka .* cannot log in" "$WORK/a.log" &&
  fail "the old-librdkafka warning appeared with $(grep -o 'librdkafka [0-9.]*' "$WORK/a.log" | head -n 1)"

# replay over the same listener reads all N again and stores none twice.
out=$(PRESENCE_KAFKA_SASL_PASSWORD=$(cat "$WORK/password") timeout 60 \
  "$PI_BINARY" replay --brokers "$SECURE" --topic "$TOPIC" --pg "$PG" \
  --progress never --stats-interval-ms 0 "${SCRAM_X[@]}" \
  -X "ssl.ca.location=$K/tls/ca.pem" 2>"$WORK/replay.log") ||
  fail "replay exited $?"
# (skipped: the envelopes' non-presence notifications, as run counted them)
skipped=$(grep -o 'stopped: .* skipped=[0-9]*' "$WORK/a.log" | grep -o '[0-9]*$')
[ "$out" = "messages=$N stored=0 duplicates=$N conflicts=0 rejected=0 skipped=$skipped" ] ||
  fail "replay summary: $out"
[ "$(sql "select count(*) from presences")" = "$N" ] || fail "rows after replay"
log "ok: $N presences once over SASL_SSL + SCRAM-SHA-512 (run and replay)"
