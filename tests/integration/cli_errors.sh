#!/usr/bin/env bash
# Bad options, unknown Kafka properties and unreachable services: one line
# naming the problem, a non-zero exit code, never a crash, never a password.
set -euo pipefail
: "${PI_BINARY:?run through ctest}" "${PI_SERVICES:?}" "${PI_SOURCE_DIR:?}"
PG_ADMIN=$(cat "$PI_SERVICES/pg/conninfo")
DB="cli_$$"
psql "$PG_ADMIN" -XAtq -c "create database $DB"
PG="$PG_ADMIN dbname=$DB"
"$PI_BINARY" migrate --pg "$PG" >/dev/null
out=$(mktemp)
trap 'rm -f "$out"' EXIT

fail() { echo "FAIL: $*"; echo "--- output:"; cat "$out"; exit 1; }

# expect CODE PATTERN ARGS…: the command exits with CODE and its last line
# of stderr matches PATTERN.
expect() {
  local code=$1 pattern=$2 rc=0
  shift 2
  "$PI_BINARY" "$@" >/dev/null 2>"$out" || rc=$?
  [ "$rc" = "$code" ] || fail "'$*' exited $rc, expected $code"
  tail -n 1 "$out" | grep -q -- "$pattern" || fail "'$*': no line matching '$pattern'"
  echo "ok: $* -> $rc: $(tail -n 1 "$out")"
}

expect 2 "unknown command 'frobnicate'" frobnicate
expect 2 "lists its options"
expect 2 "--topic is required" run --brokers 127.0.0.1:1 --pg "$PG"
expect 2 "--batch-size must be an integer, got 'many'" run --batch-size many
expect 2 "--linger-ms must be between 0 and 60000, got 99999999" run --linger-ms 99999999
# (an unknown property's value is not shown: it may be a misspelt secret)
expect 2 "-X no.such.property: No such configuration property" \
  run --topic t --brokers 127.0.0.1:1 --pg "$PG" -X no.such.property=1
expect 2 "-X fetch.wait.max.ms=soon: .*fetch.wait.max.ms" \
  run --topic t --brokers 127.0.0.1:1 --pg "$PG" -X fetch.wait.max.ms=soon
expect 2 "enable.auto.commit=true: presence-ingest commits offsets itself" \
  run --topic t --brokers 127.0.0.1:1 --pg "$PG" -X enable.auto.commit=true
expect 2 "unexpected argument 'extra'" run --topic t extra
PRESENCE_ON_CONFLICT=sometimes expect 2 \
  "PRESENCE_ON_CONFLICT must be one of keep|replace, got 'sometimes'" run --topic t

# Unreachable PostgreSQL: exit 1, and the password never shows.
expect 1 "127.0.0.1" run --topic t --brokers 127.0.0.1:1 \
  --pg "host=127.0.0.1 port=1 user=x password=hunter2 connect_timeout=2"
grep -q hunter2 "$out" && fail "password printed"
expect 1 "127.0.0.1" load --pg "postgresql://x:hunter2@127.0.0.1:1/db?connect_timeout=2" /dev/null
grep -q hunter2 "$out" && fail "password printed"

# Unreachable brokers (PostgreSQL fine): exit 1 naming the brokers and why.
expect 1 "cannot reach Kafka brokers 127.0.0.1:1: unreachable" \
  run --topic t --brokers 127.0.0.1:1 --pg "$PG" -X log_level=0
# A port that is not one is bad configuration, said at once (not "unreachable"
# after 10 s).
start=$SECONDS
expect 2 "--brokers: '127.0.0.1:notaport' is not host:port (port 1-65535)" \
  run --topic t --brokers 127.0.0.1:notaport --pg "$PG"
expect 2 "--brokers: 'k1:70000' is not host:port" \
  run --topic t --brokers 127.0.0.1:9092,k1:70000 --pg "$PG"
[ $((SECONDS - start)) -le 3 ] || fail "bad --brokers took $((SECONDS - start)) s"
# load of a directory is a usage error (exit 2), like any unreadable file.
expect 2 "cannot read '/tmp': Is a directory" load --pg "$PG" /tmp

"$PI_BINARY" version | grep -Eq '^presence-ingest [0-9]+\.[0-9]+\.[0-9]+$' || fail "version"

# --help is generated from the table; the shipped sample is the generated one.
# (Into a variable: grep -q stops reading at the match, and under pipefail
# the help's next write would fail the pipeline with SIGPIPE.)
help=$("$PI_BINARY" run --help) || fail "help: exit $?"
grep -q -- "--batch-size N" <<<"$help" || fail "help"
diff <("$PI_BINARY" run --print-config) "$PI_SOURCE_DIR/deploy/presence-ingest.conf.sample" ||
  fail "deploy/presence-ingest.conf.sample is stale: regenerate with 'presence-ingest run --print-config'"
psql "$PG_ADMIN" -XAtq -c "drop database $DB"
echo "all cli checks passed"
