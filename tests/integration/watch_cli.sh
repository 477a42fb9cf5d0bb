#!/usr/bin/env bash
# watch_cli.sh -- `presence-ingest watch` (CONTRACT §8): killed (SIGKILL)
# twice and restarted with --after the last seq it printed while 10 000
# changes are recorded, it misses and repeats nothing; --offline-for 2s
# prints an asset that stays offline and not one that reconnects after 1 s
# (nor its reconnect); --state and --asset filter; JSON lines; bad input is
# one line and exit 2, a database without migration 0008 exit 3.
set -euo pipefail
: "${PI_BINARY:?run through ctest}" "${PI_SERVICES:?}"
PG_ADMIN=$(cat "$PI_SERVICES/pg/conninfo")
WORK=$(mktemp -d /tmp/watch_cli.XXXXXX)
DB=watch_cli_$$
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  psql "$PG_ADMIN" -XAtq -c "drop database if exists $DB with (force)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
PG="$PG_ADMIN dbname=$DB"
q() { psql "$PG" -XAtq -v ON_ERROR_STOP=1 "$@"; }
psql "$PG_ADMIN" -XAtq -c "create database $DB"

# ---- bad input --------------------------------------------------------------
# bad WHAT CODE PATTERN ARGS…: exit CODE, one line on stderr matching PATTERN.
bad() {
  local what=$1 want=$2 pat=$3 rc=0
  shift 3
  timeout 20 "$PI_BINARY" watch --pg "$PG" "$@" >"$WORK/bad.out" 2>"$WORK/bad.err" || rc=$?
  [ "$rc" = "$want" ] || fail "$what: exit $rc, want $want: $(cat "$WORK/bad.err")"
  [ "$(wc -l <"$WORK/bad.err")" = 1 ] || fail "$what: not one line: $(cat "$WORK/bad.err")"
  grep -q -- "$pat" "$WORK/bad.err" || fail "$what: no '$pat' in $(cat "$WORK/bad.err")"
  [ ! -s "$WORK/bad.out" ] || fail "$what: printed $(cat "$WORK/bad.out")"
  echo "ok: $what: exit $rc: $(cat "$WORK/bad.err")"
}
bad "no migration" 3 "run \`presence-ingest migrate\`"
"$PI_BINARY" migrate --pg "$PG" >/dev/null
bad "--after not a number" 2 "--after: 'x1' is not a sequence number" --after x1
bad "--after negative" 2 "--after: '-1'" --after -1
bad "--offline-for 0" 2 "--offline-for must be a duration above zero" --offline-for 0
bad "--offline-for no unit" 2 "--offline-for" --offline-for 5
bad "--state unknown" 2 "state" --state gone
bad "--tz unknown" 2 "--tz: unknown time zone 'Mars/Base'" --tz Mars/Base
bad "an argument" 2 "unexpected argument 'status'" status

# ---- resume: killed twice, 10 000 changes, nothing missed or repeated -------
# round R: 500 assets change (connect on even rounds, disconnect on odd
# ones, of the session the round before opened), then a catch-up: 500
# changes, one transaction.
round() {
  local r=$1 type=connect conn=$1
  [ $((r % 2)) = 1 ] && type=disconnect conn=$((r - 1))
  q -c "INSERT INTO presences (id, connection_id, type, reason, asset, time, time_offset_minutes)
        SELECT $r * 1000 + i, $conn * 1000 + i, '$type', 'r$r', 'w' || i,
               '2026-03-01'::timestamptz + ($r * 1000 + i) * interval '1 second', 0
        FROM generate_series(1, 500) i" -c "SELECT presence_rollup_refresh()" >/dev/null
}
( for r in $(seq 0 19); do round "$r"; sleep 0.2; done ) & PIDS+=($!)
PRODUCER=$!
# last_seq FILE: the seq of the last complete line (a kill may cut one).
last_seq() { awk -F, 'NR > 1 && /\r$/ { s = $1 } END { print s + 0 }' "$1"; }
after=0
for part in 1 2; do
  "$PI_BINARY" watch --pg "$PG" --after "$after" --format csv >"$WORK/part$part.csv" 2>>"$WORK/watch.err" &
  PIDS+=($!)
  sleep 1.5
  kill -9 $!
  wait $! 2>/dev/null || true
  after=$(last_seq "$WORK/part$part.csv")
  echo "watch part $part killed after seq $after"
done
"$PI_BINARY" watch --pg "$PG" --after "$after" --format csv >"$WORK/part3.csv" 2>>"$WORK/watch.err" &
W3=$!
PIDS+=($W3)
wait "$PRODUCER" || fail "producing the changes"
total=$(q -c "SELECT count(*) FROM asset_status_changes")
[ "$total" = 10000 ] || fail "10 000 changes expected, $total recorded"
for _ in $(seq 100); do [ "$(last_seq "$WORK/part3.csv")" = 10000 ] && break; sleep 0.1; done
kill -TERM $W3
wait $W3 || fail "watch exit $? on SIGTERM"
# Every part's complete lines after its --after, joined: each seq once, in
# order, and the rows themselves equal the table's.
for part in 1 2 3; do
  awk -F, 'NR > 1 && /\r$/' "$WORK/part$part.csv" | tr -d '\r'
done >"$WORK/all.csv"
cut -d, -f1 "$WORK/all.csv" >"$WORK/seqs"
seq 1 10000 | diff -q - "$WORK/seqs" >/dev/null || fail "seqs not 1..10000 once each: $(sort -n "$WORK/seqs" | uniq -d | head -3) $(wc -l <"$WORK/seqs")"
[ "$(head -1 "$WORK/part2.csv" | tr -d '\r')" = "seq,recorded_at,asset,state,since,reason,connection_id,previous_state,previous_since" ] ||
  fail "header: $(head -1 "$WORK/part2.csv")"
q -F, -c "SELECT seq, to_char(recorded_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.US') , asset, state,
                 to_char(since, 'YYYY-MM-DD\"T\"HH24:MI:SS\"+00:00\"'), reason, connection_id,
                 previous_state, to_char(previous_since, 'YYYY-MM-DD\"T\"HH24:MI:SS\"+00:00\"')
          FROM asset_status_changes ORDER BY seq" >"$WORK/want.csv"
# recorded_at prints without trailing zeros of its fraction: compare the rest.
cut -d, -f1,3- "$WORK/all.csv" >"$WORK/got.rest"
cut -d, -f1,3- "$WORK/want.csv" >"$WORK/want.rest"
diff -q "$WORK/want.rest" "$WORK/got.rest" >/dev/null || { diff "$WORK/want.rest" "$WORK/got.rest" | head -5 >&2; fail "rows differ"; }
grep -Eq "level=(warn|error)" "$WORK/watch.err" && fail "watch logged a problem: $(cat "$WORK/watch.err")"
echo "ok: killed twice during 10 000 changes, resumed with --after: each change printed once"

# ---- --offline-for: a debounced alert ----------------------------------------
# at REASON TYPE CONN ASSET [REASON TYPE CONN ASSET …]: events at the
# current time, loaded in one transaction, then a catch-up.
id=900000
at() {
  : >"$WORK/at.jsonl"
  while [ $# -gt 0 ]; do
    id=$((id + 1))
    printf '{"id_str":"%s","connection_id_str":"%s","type":"%s","reason":"%s","asset":"%s","time":"%sZ"}\n' \
      "$id" "$3" "$2" "$1" "$4" "$(date -u +%Y-%m-%dT%H:%M:%S.%N | cut -c1-26)" >>"$WORK/at.jsonl"
    shift 4
  done
  "$PI_BINARY" load --pg "$PG" "$WORK/at.jsonl" >/dev/null 2>&1 || fail "load $*"
  q -c "SELECT presence_rollup_refresh()" >/dev/null
}
# d-stay and d-back online first (before the watchers start).
at boot connect 1 d-stay boot connect 2 d-back
"$PI_BINARY" watch --pg "$PG" --offline-for 2s --format json >"$WORK/debounced.json" 2>>"$WORK/watch.err" &
WD=$!
PIDS+=($WD)
"$PI_BINARY" watch --pg "$PG" --state offline --asset d-back --format csv >"$WORK/filtered.csv" 2>>"$WORK/watch.err" &
WF=$!
PIDS+=($WF)
sleep 0.5
at network_error disconnect 1 d-stay network_error disconnect 2 d-back
sleep 1
at cold_boot connect 3 d-back
# The line comes 2 s after d-stay's disconnect (its since), not before.
printed=
for _ in $(seq 100); do
  [ -s "$WORK/debounced.json" ] && { printed=$(date +%s.%N); break; }
  sleep 0.05
done
[ -n "$printed" ] || fail "--offline-for 2s printed nothing within 5 s"
since=$(sed -E 's/.*"since":"([^"]*)".*/\1/' "$WORK/debounced.json")
awk -v p="$printed" -v s="$(date -d "$since" +%s.%N)" 'BEGIN { exit !(p >= s + 2 && p < s + 3) }' ||
  fail "printed at $printed, since $since: not 2 s (+ less than 1 s) after"
sleep 1.5
kill -TERM $WD $WF
wait $WD || fail "watch --offline-for exit $?"
wait $WF || fail "watch --state exit $?"
got=$(sed -E -e 's/"(seq|recorded_at|since)":("[^"]*"|[0-9]+),//g' -e 's/,"previous_since":"[^"]*"//' "$WORK/debounced.json")
[ "$got" = '{"asset":"d-stay","state":"offline","reason":"network_error","connection_id":"1","previous_state":"online"}' ] ||
  fail "--offline-for 2s: $(cat "$WORK/debounced.json")"
echo "ok: --offline-for 2s: printed the asset that stayed offline, not the one back after 1 s"
got=$(tail -n +2 "$WORK/filtered.csv" | cut -d, -f3,4,6,7,8 | tr -d '\r')
[ "$got" = "d-back,offline,network_error,2,online" ] || fail "--state offline --asset d-back: $(cat "$WORK/filtered.csv")"
echo "ok: --state and --asset"
echo "watch_cli: all ok"
