#!/usr/bin/env bash
# No secret is ever shown (issue 12). Every command runs with secrets set
# the documented ways -- the SASL password in --sasl-password-file and in
# PRESENCE_KAFKA_SASL_PASSWORD, PostgreSQL's in PGPASSWORD and in a
# PGPASSFILE (the harness's PostgreSQL trusts, so libpq holds them without
# sending them) -- at debug level with librdkafka's debug=all, and none of
# the secrets may appear in any stdout or stderr, in --print-config, in
# the argv of the running service, on /metrics or in presence_rejects.
# The errors of a misconfiguration (a misspelt password key, a password
# given two ways, a wrong one) must not show theirs either.
source "$(dirname "$0")/lib.sh"

K=$PI_SERVICES/kafka
SECURE=$(cat "$K/brokers_sasl_ssl")
SASL_PW=$(cat "$K/scram_password")
PG_PW="pgpw-$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')"
PASSFILE_PW="pgpass-$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')"
WRONG_PW="wrongpw-$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')"
SECRETS=("$SASL_PW" "$PG_PW" "$PASSFILE_PW" "$WRONG_PW")
N=200
setup 2
{
  "$PI_GEN" "$N" --shape mixed
  echo '{"not": "a presence"}' # one reject, to look at presence_rejects
} >"$WORK/in.txt"
produce "$WORK/in.txt"

(umask 077 && printf '%s\n' "$SASL_PW" >"$WORK/sasl_password")
(umask 077 && printf '*:*:*:*:%s\n' "$PASSFILE_PW" >"$WORK/pgpass")
export PGPASSWORD=$PG_PW PGPASSFILE=$WORK/pgpass
KX=(-X security.protocol=SASL_SSL -X sasl.mechanisms=SCRAM-SHA-512
  -X "sasl.username=$(cat "$K/scram_user")" -X "ssl.ca.location=$K/tls/ca.pem"
  -X debug=all)
COMMON=(--pg "$PG" --log-level debug)

# check_clean WHAT FILE…: none of the secrets in any FILE.
check_clean() {
  local what=$1 s
  shift
  for s in "${SECRETS[@]}"; do
    if grep -l -F -- "$s" "$@" >/dev/null 2>&1; then
      fail "$what: a secret appears in $(grep -l -F -- "$s" "$@" | tr '\n' ' ')"
    fi
  done
}

# migrate (again: setup ran it), load, report, --print-config.
"$PI_BINARY" migrate "${COMMON[@]}" >"$WORK/migrate.out" 2>"$WORK/migrate.err"
head -n 20 "$WORK/in.txt" >"$WORK/load.txt" # run finds them stored
"$PI_BINARY" load "${COMMON[@]}" "$WORK/load.txt" >"$WORK/load.out" 2>"$WORK/load.err"
grep -q "^messages=20 stored=20 " "$WORK/load.out" || fail "load: $(cat "$WORK/load.out")"
"$PI_BINARY" report status "${COMMON[@]}" --format csv >"$WORK/report.out" 2>"$WORK/report.err"
"$PI_BINARY" run --print-config >"$WORK/print_config_run.out" 2>&1
"$PI_BINARY" replay --print-config >"$WORK/print_config_replay.out" 2>&1
grep -q '^#sasl-password-file =' "$WORK/print_config_run.out" ||
  fail "--print-config does not list sasl-password-file"

# run, with the password from its file; its argv and /metrics while it runs.
port=$(bash -c ". '$PI_SUPPORT_DIR/common.sh'; free_ports 1")
start_service run --brokers "$SECURE" "${KX[@]}" "${COMMON[@]}" \
  --sasl-password-file "$WORK/sasl_password" --http-listen "127.0.0.1:$port"
wait_for "select count(*) from presences" "$N" 90
tr '\0' ' ' <"/proc/$SERVICE_PID/cmdline" >"$WORK/run.argv"
grep -q -- "--sasl-password-file" "$WORK/run.argv" || fail "not the service's argv"
curl -sf "http://127.0.0.1:$port/metrics" >"$WORK/metrics.out" || fail "no /metrics"
grep -q '^presence_ingest_' "$WORK/metrics.out" || fail "/metrics is empty"
stop_service "$SERVICE_PID"
grep -q "SCRAM" "$WORK/run.log" || fail "librdkafka's debug=all did not log the SASL exchange"
sql "select * from presence_rejects" >"$WORK/rejects.out"
[ -s "$WORK/rejects.out" ] || fail "no reject recorded"

# replay, with the password from the environment.
PRESENCE_KAFKA_SASL_PASSWORD=$SASL_PW "$PI_BINARY" replay --brokers "$SECURE" \
  --topic "$TOPIC" "${KX[@]}" "${COMMON[@]}" --progress never \
  >"$WORK/replay.out" 2>"$WORK/replay.err" &
replay_pid=$!
SERVICE_PIDS+=("$replay_pid")
tr '\0' ' ' <"/proc/$replay_pid/cmdline" >"$WORK/replay.argv" || true
wait "$replay_pid" || fail "replay exited $?"
grep -q "^messages=$((N + 1)) stored=0 duplicates=$N " "$WORK/replay.out" ||
  fail "replay summary: $(cat "$WORK/replay.out")"

# Misconfigurations: their errors name the problem, not the password.
printf 'kafka.sasl.pasword = %s\n' "$WRONG_PW" >"$WORK/typo.conf"
rc=0
"$PI_BINARY" run --brokers "$SECURE" --topic "$TOPIC" --config "$WORK/typo.conf" \
  "${COMMON[@]}" >"$WORK/typo.out" 2>"$WORK/typo.err" || rc=$?
[ "$rc" = 2 ] && grep -q "sasl.pasword" "$WORK/typo.err" ||
  fail "misspelt key: exit $rc, $(cat "$WORK/typo.err")"
rc=0
PRESENCE_KAFKA_SASL_PASSWORD=$WRONG_PW "$PI_BINARY" run --brokers "$SECURE" \
  --topic "$TOPIC" --sasl-password-file "$WORK/sasl_password" "${COMMON[@]}" \
  >"$WORK/twice.out" 2>"$WORK/twice.err" || rc=$?
[ "$rc" = 2 ] && grep -q "more than once" "$WORK/twice.err" ||
  fail "password twice: exit $rc, $(cat "$WORK/twice.err")"
rc=0
PRESENCE_KAFKA_SASL_PASSWORD=$WRONG_PW timeout 20 "$PI_BINARY" run \
  --brokers "$SECURE" --topic "$TOPIC" --group "${GROUP}_wrong" "${KX[@]}" \
  "${COMMON[@]}" >"$WORK/wrong.out" 2>"$WORK/wrong.err" || rc=$?
[ "$rc" = 1 ] && tail -n 1 "$WORK/wrong.err" | grep -q "authentication failed" ||
  fail "wrong password: exit $rc, $(tail -n 1 "$WORK/wrong.err")"

check_clean "output" "$WORK"/*.out "$WORK"/*.err "$WORK"/*.log
check_clean "argv" "$WORK"/*.argv
log "ok: no secret in the output of migrate, load, report, run, replay," \
  "--print-config, argv, /metrics, presence_rejects or the errors" \
  "($(cat "$WORK"/*.log "$WORK"/*.err | wc -l) lines checked)"
