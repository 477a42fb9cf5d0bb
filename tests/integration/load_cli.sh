#!/usr/bin/env bash
# load_cli.sh -- `presence-ingest load` end to end through the real binary:
# the summary line, provenance, replay as a no-op (xmin), conflicts under both
# policies, overlong lines, exit codes (CONTRACT §4, §6), several writers.
set -euo pipefail
: "${PI_BINARY:?run through ctest}" "${PI_SERVICES:?}" "${PI_GEN:?}"
PG_ADMIN=$(cat "$PI_SERVICES/pg/conninfo")
DB="load_cli_$$"
PG="$PG_ADMIN dbname=$DB"
WORK=$(mktemp -d /tmp/load_cli.XXXXXX)
cleanup() {
  psql "$PG_ADMIN" -XAtq -c "drop database if exists $DB with (force)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$WORK/err" ] && cat "$WORK/err" >&2; exit 1; }
sql() { psql "$PG" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
# load ARGS…: run load, its summary line in $summary, its exit code in $rc.
load() {
  rc=0
  summary=$("$PI_BINARY" load --pg "$PG" "$@" 2>"$WORK/err") || rc=$?
}
expect_summary() {
  [ "$rc" = 0 ] || fail "load exited $rc"
  [ "$summary" = "$1" ] || fail "summary '$summary', expected '$1'"
  echo "ok: $1"
}
fingerprint() {
  sql "select count(*) || ':' || coalesce(md5(string_agg(xmin::text || ctid::text, ',' order by ctid)), '') from $1"
}

psql "$PG_ADMIN" -XAtq -c "create database $DB"

# An older (here: empty) schema is refused with exit 3, saying what to do.
printf '{}\n' >"$WORK/one.txt"
load "$WORK/one.txt"
[ "$rc" = 3 ] || fail "unmigrated database: exit $rc, expected 3"
grep -q 'run `presence-ingest migrate`' "$WORK/err" || fail "no hint to migrate"
"$PI_BINARY" migrate --pg "$PG" >/dev/null

# Usage errors: exit 2.
load "$WORK/one.txt" "$WORK/one.txt"
[ "$rc" = 2 ] || fail "two files: exit $rc"
load "$WORK/no-such-file"
[ "$rc" = 2 ] || fail "missing file: exit $rc"
grep -q "no-such-file" "$WORK/err" || fail "missing file not named"

# Every outcome once. Line 1 stored, 2 duplicate, 3 conflict (kept), 4
# malformed, 5 a skipped envelope, 6 empty, 7 a CRLF line (stored), 8 no
# final newline (stored).
P='{"id":461799503595297635,"id_str":"461799503595297635","connection_id_str":"9","type":"connect","reason":"%s","asset":"357322041802978","time":"2016-11-19T15:05:36+01:00"}'
{
  printf "$P\n" idle_out
  printf "$P\n" idle_out
  printf "$P\n" ppp_lost
  printf '{"id":\n'
  printf '{"meta":{"event":"track"},"payload":{}}\n'
  printf '\n'
  printf '{"id_str":"2","connection_id_str":"3","type":"disconnect","reason":"socket_closed","asset":null,"time":"2016-11-19T15:05:36Z"}\r\n'
  printf '{"id_str":"4","connection_id_str":"3","type":"connect","reason":"cold_boot","asset":"a","time":"2016-11-19T15:05:37Z"}'
} >"$WORK/mix.txt"
load "$WORK/mix.txt"
expect_summary "messages=8 stored=3 duplicates=1 conflicts=1 rejected=2 skipped=1"
[ "$(sql "select string_agg(id || '@' || kafka_offset, ',' order by id) from presences where kafka_topic = '$WORK/mix.txt' and kafka_partition = -1")" = \
  "2@7,4@8,461799503595297635@1" ] || fail "provenance"
[ "$(sql "select string_agg(\"offset\" || ':' || error, ',' order by \"offset\") from presence_rejects where topic = '$WORK/mix.txt' and partition = -1")" = \
  "3:id_conflict,4:malformed_json,6:empty" ] || fail "rejects: $(sql 'table presence_rejects')"
[ "$(sql "select reason from presences where id = 461799503595297635")" = idle_out ] || fail "keep"

# Loading the same file again changes no row and adds no reject.
before=$(fingerprint presences)
rbefore=$(fingerprint presence_rejects)
load "$WORK/mix.txt"
expect_summary "messages=8 stored=0 duplicates=4 conflicts=1 rejected=2 skipped=1"
[ "$(fingerprint presences)" = "$before" ] || fail "replay rewrote presences"
[ "$(fingerprint presence_rejects)" = "$rbefore" ] || fail "replay touched presence_rejects"

# Standard input is topic "-".
load - <"$WORK/mix.txt"
expect_summary "messages=8 stored=0 duplicates=4 conflicts=1 rejected=2 skipped=1"
[ "$(sql "select count(*) from presence_rejects where topic = '-'")" = 3 ] || fail "stdin provenance"

# replace: the later content wins, nothing is rejected.
sql "truncate presences, presence_rejects"
load --on-conflict replace "$WORK/mix.txt"
expect_summary "messages=8 stored=3 duplicates=1 conflicts=1 rejected=2 skipped=1"
[ "$(sql "select reason || '@' || kafka_offset from presences where id = 461799503595297635")" = "ppp_lost@3" ] || fail "replace"
[ "$(sql "select count(*) from presence_rejects where error = 'id_conflict'")" = 0 ] || fail "replace rejected"

# A line longer than --max-message-bytes: rejected too_large, its first
# max-message-bytes kept as payload, memory bounded.
{
  printf '{"id_str":"77","connection_id_str":"3","type":"connect","reason":"'
  head -c 300000 /dev/zero | tr '\0' x
  printf '","asset":"a","time":"2016-11-19T15:05:37Z"}\n'
  printf '{"id_str":"78","connection_id_str":"3","type":"connect","reason":"r","asset":"a","time":"2016-11-19T15:05:37Z"}\n'
  # Longer than the reader's buffer: streamed past, never held whole; its
  # length, as every line's, is without the "\r\n" (5 000 000).
  head -c 5000000 /dev/zero | tr '\0' y
  printf '\r\n'
} >"$WORK/long.txt"
load --max-message-bytes 1024 "$WORK/long.txt"
expect_summary "messages=3 stored=1 duplicates=0 conflicts=0 rejected=2 skipped=0"
[ "$(sql "select string_agg(\"offset\" || ':' || error || ':' || length(payload) || ':' || substring(detail from 'value of [0-9]+ bytes'), ',' order by \"offset\") from presence_rejects where topic = '$WORK/long.txt'")" = \
  "1:too_large:1024:value of 300110 bytes,3:too_large:1024:value of 5000000 bytes" ] ||
  fail "too_large: $(sql "select \"offset\", detail from presence_rejects where topic = '$WORK/long.txt'")"

# A generated file in several batches, loaded twice.
"$PI_GEN" 20000 --shape mixed --bad-every 97 >"$WORK/gen.txt"
load --batch-size 1000 "$WORK/gen.txt"
[ "$rc" = 0 ] || fail "gen: exit $rc"
echo "gen: $summary"
stored=$(sql "select count(*) from presences where kafka_topic = '$WORK/gen.txt'")
rejected=$(sql "select count(*) from presence_rejects where topic = '$WORK/gen.txt'")
[ "$summary" = "messages=20000 stored=$stored duplicates=0 conflicts=0 rejected=$rejected skipped=$(grep -c '"track"' "$WORK/gen.txt")" ] ||
  fail "gen summary '$summary' vs table $stored / $rejected"
before=$(fingerprint presences)
load --batch-size 777 "$WORK/gen.txt"
expect_summary "messages=20000 stored=0 duplicates=$stored conflicts=0 rejected=$rejected skipped=$(grep -c '"track"' "$WORK/gen.txt")"
[ "$(fingerprint presences)" = "$before" ] || fail "gen replay rewrote presences"
# Three writers: the same summary, the same rows and rejects as one writer;
# then loaded again by two, nothing new.
content() {
  sql "select md5(string_agg(concat_ws(':', id, connection_id, type, reason, asset, time, kafka_offset), ',' order by id)) from presences where kafka_topic = '$WORK/gen.txt'"
  sql "select md5(string_agg(concat_ws(':', \"offset\", element, error, detail), ',' order by \"offset\", element)) from presence_rejects where topic = '$WORK/gen.txt'"
}
one=$(content)
first="messages=20000 stored=$stored duplicates=0 conflicts=0 rejected=$rejected skipped=$(grep -c '"track"' "$WORK/gen.txt")"
sql "truncate presences, presence_rejects"
load --batch-size 500 --writers 3 "$WORK/gen.txt"
expect_summary "$first"
[ "$(content)" = "$one" ] || fail "three writers stored other rows or rejects than one"
load --batch-size 300 --writers 2 "$WORK/gen.txt"
expect_summary "messages=20000 stored=0 duplicates=$stored conflicts=0 rejected=$rejected skipped=$(grep -c '"track"' "$WORK/gen.txt")"
echo "all load checks passed"
