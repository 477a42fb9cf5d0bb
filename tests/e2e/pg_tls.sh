#!/usr/bin/env bash
# PostgreSQL over verified TLS with SCRAM (issue 12). A server of its own
# (pg.sh start-tls: hostssl + scram-sha-256 only, a CA made here): run,
# replay, load, migrate and report connect with sslmode=verify-full, the
# password from libpq's own mechanisms (PGPASSFILE, passfile=, PGPASSWORD),
# never the command line; every presence is stored once. A certificate for
# another host name and a wrong password each stop every command with one
# line and a non-zero exit, at start and, for run, on a reconnect; nothing
# is lost.
source "$(dirname "$0")/lib.sh"

TLS="$WORK/pg"
bash "$PI_SUPPORT_DIR/pg.sh" start-tls "$TLS" >"$WORK/pg-harness.log" 2>&1 ||
  fail "cannot start the TLS server: $(cat "$WORK/pg-harness.log")"
at_exit 'bash "$PI_SUPPORT_DIR/pg.sh" stop "$TLS"'
# The checks: user postgres, its password in passfile=; verify-ca (the CA,
# not the name) so that they go on while the server shows the other
# certificate.
ADMIN=$(sed 's/sslmode=verify-full/sslmode=verify-ca/' "$TLS/conninfo")
APP_PASSWORD=$(cat "$TLS/pi_app.password")
# The service's conninfo: no password, no passfile; each command below gets
# the password another way.
APP="host=localhost port=$(cat "$TLS/port") user=pi_app dbname=$DB sslmode=verify-full sslrootcert=$TLS/tls/ca.crt"
PG_SERVICE=$APP
export PGPASSFILE="$TLS/pgpass"
sql() { psql "$ADMIN dbname=$DB" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
psql "$ADMIN" -XAtq -v ON_ERROR_STOP=1 -c "create database $DB owner pi_app"
bash "$PI_SUPPORT_DIR/kafka.sh" topic "$PI_SERVICES/kafka" "$TOPIC" 2 >/dev/null

# ---- everything through TLS -------------------------------------------------
N=3000
"$PI_BINARY" migrate --pg "$APP" >"$WORK/migrate.out" || fail "migrate over TLS"
"$PI_GEN" "$N" >"$WORK/in.txt"
produce "$WORK/in.txt"
# run1 is the production-like path end to end: Kafka over SASL_SSL with
# SCRAM-SHA-512 (the harness broker's third listener, its CA; the password
# from the environment) and PostgreSQL over verify-full with SCRAM.
K=$PI_SERVICES/kafka
PLAIN_BROKERS=$BROKERS
BROKERS=$(cat "$K/brokers_sasl_ssl")
export PRESENCE_KAFKA_SASL_PASSWORD
PRESENCE_KAFKA_SASL_PASSWORD=$(cat "$K/scram_password")
start_service run1 -X security.protocol=SASL_SSL -X sasl.mechanisms=SCRAM-SHA-512 \
  -X "sasl.username=$(cat "$K/scram_user")" -X "ssl.ca.location=$K/tls/ca.pem"
unset PRESENCE_KAFKA_SASL_PASSWORD
BROKERS=$PLAIN_BROKERS
wait_for "select count(*) from presences" "$N"
[ "$(sql "select count(*) > 0 and bool_and(s.ssl) from pg_stat_ssl s
          join pg_stat_activity a using (pid) where a.usename = 'pi_app'")" = t ] ||
  fail "the service's sessions are not all TLS"
stop_service "$SERVICE_PID"
[ "$(sql "select count(distinct id) || ' ' || (max(id) - min(id) + 1) from presences")" = "$N $N" ] ||
  fail "not every presence once"
[ "$(sql "select count(*) from presence_rejects")" = 0 ] || fail "unexpected rejects"

out=$("$PI_BINARY" replay --brokers "$BROKERS" --topic "$TOPIC" \
  --pg "$APP passfile=$TLS/pgpass" --progress never --stats-interval-ms 0 2>>"$WORK/replay.log") ||
  fail "replay over TLS"
[ "$out" = "messages=$N stored=0 duplicates=$N conflicts=0 rejected=0 skipped=0" ] ||
  fail "replay summary: $out"

M=500
"$PI_GEN" "$M" --first-id 922746880000100000 >"$WORK/load.txt"
out=$(env -u PGPASSFILE PGPASSWORD="$APP_PASSWORD" "$PI_BINARY" load --pg "$APP" \
  "$WORK/load.txt" 2>>"$WORK/load.log") || fail "load over TLS"
[ "$out" = "messages=$M stored=$M duplicates=0 conflicts=0 rejected=0 skipped=0" ] ||
  fail "load summary: $out"

"$PI_BINARY" report status --pg "$APP" --format csv >"$WORK/status.csv" ||
  fail "report over TLS"
[ "$(($(wc -l <"$WORK/status.csv") - 1))" = "$(sql "select count(*) from asset_status")" ] ||
  fail "report status has $(wc -l <"$WORK/status.csv") lines"
log "ok: migrate, run ($N, Kafka over SASL_SSL + SCRAM-SHA-512), replay, load ($M) and report over verify-full + SCRAM"

# ---- failures at start: every command ---------------------------------------
# expect_failure WHAT PATTERN CMD…: CMD exits non-zero within 60 s, with one
# line on stderr matching PATTERN, and changes nothing.
expect_failure() {
  local what=$1 pat=$2 rc=0 t0=$SECONDS before
  shift 2
  before=$(sql "select count(*) from presences")
  timeout 60 "$@" >"$WORK/fail.out" 2>"$WORK/fail.err" </dev/null || rc=$?
  [ $rc -ne 0 ] || fail "$what: exit 0"
  [ $rc -ne 124 ] || fail "$what: still running after 60 s"
  [ "$(wc -l <"$WORK/fail.err")" = 1 ] || fail "$what: not one line: $(cat "$WORK/fail.err")"
  grep -q -- "$pat" "$WORK/fail.err" || fail "$what: no '$pat' in: $(cat "$WORK/fail.err")"
  [ "$(sql "select count(*) from presences")" = "$before" ] || fail "$what: presences changed"
  log "ok: $what: exit $rc after $((SECONDS - t0)) s"
}
every_command() { # WHAT PATTERN [env VAR=…]
  local what=$1 pat=$2 q=(--log-level error --http-listen off)
  shift 2
  expect_failure "$what: migrate" "$pat" "$@" "$PI_BINARY" migrate --pg "$APP"
  expect_failure "$what: report" "$pat" "$@" "$PI_BINARY" report status --pg "$APP"
  expect_failure "$what: load" "$pat" "$@" "$PI_BINARY" load --pg "$APP" "$WORK/load.txt"
  expect_failure "$what: replay" "$pat" "$@" "$PI_BINARY" replay --brokers "$BROKERS" \
    --topic "$TOPIC" --pg "$APP" --progress never "${q[@]}"
  expect_failure "$what: run" "$pat" "$@" "$PI_BINARY" run --brokers "$BROKERS" \
    --topic "$TOPIC" --group "$GROUP" --pg "$APP" "${q[@]}"
}
every_command "wrong password" "28P01: password authentication failed" env PGPASSWORD=wrong-password
bash "$PI_SUPPORT_DIR/pg.sh" cert "$TLS" other
every_command "certificate for another host name" \
  'server certificate for .*other.invalid.* does not match host name .*localhost' env
bash "$PI_SUPPORT_DIR/pg.sh" cert "$TLS" good

# ---- run, on a reconnect ----------------------------------------------------
# The sessions of pi_app end (as after a failover); the next batch needs a
# new connection, which is refused for good: run stops with one error line
# within a bounded time instead of retrying forever. Then the cause is
# repaired and a restart stores what was produced meanwhile, once.
kill_sessions() {
  sql "select count(pg_terminate_backend(pid)) from pg_stat_activity where usename = 'pi_app'" >/dev/null
}
produced=$N
reconnect_refused() { # NAME PATTERN BREAK REPAIR
  local name=$1 pat=$2 pid rc=0 i
  start_service "$name"
  pid=$SERVICE_PID
  # Connected (the writers and the readiness probe) before the break.
  wait_for "select count(*) >= 2 from pg_stat_activity where usename = 'pi_app'" t 30
  eval "$3"
  kill_sessions
  "$PI_GEN" 50 --first-id $((922746880000200000 + produced)) >"$WORK/more.txt"
  produce "$WORK/more.txt"
  produced=$((produced + 50))
  for i in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && fail "$name: run still running 60 s after the refused reconnect"
  wait "$pid" || rc=$?
  [ $rc -ne 0 ] || fail "$name: run exited 0"
  [ "$(grep -c 'level=error' "$WORK/$name.log")" = 1 ] ||
    fail "$name: not one error line: $(grep 'level=error' "$WORK/$name.log")"
  grep 'level=error' "$WORK/$name.log" | grep -q -- "$pat" || fail "$name: no '$pat' in the error"
  [ "$(grep -c -- "$pat" "$WORK/$name.log")" = 1 ] || fail "$name: the refusal was retried"
  log "ok: $name: run exited $rc: $(grep 'level=error' "$WORK/$name.log" | cut -c1-200)"
  eval "$4"
}
reconnect_refused run_password "28P01: password authentication failed" \
  "sql \"alter role pi_app password 'changed-elsewhere'\"" \
  "sql \"alter role pi_app password '$APP_PASSWORD'\""
reconnect_refused run_cert 'does not match host name .*localhost' \
  'bash "$PI_SUPPORT_DIR/pg.sh" cert "$TLS" other' \
  'bash "$PI_SUPPORT_DIR/pg.sh" cert "$TLS" good'

start_service run2
wait_for "select count(*) from presences" $((produced + M))
stop_service "$SERVICE_PID"
[ "$(sql "select count(*) from presence_rejects")" = 0 ] || fail "rejects after the failures"
check_offsets_match
# No password anywhere in what the commands printed.
for pw in "$APP_PASSWORD" "$(cat "$TLS/postgres.password")"; do
  if grep -rqF -- "$pw" "$WORK"/*.log "$WORK"/*.out "$WORK"/fail.err; then
    fail "a password appears in the output"
  fi
done
log "ok: $produced produced + $M loaded stored once through verify-full + SCRAM"
