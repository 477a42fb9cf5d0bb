#!/usr/bin/env bash
# report_cli.sh -- `presence-ingest report` against hand-computed answers
# (CONTRACT §7): every expected line below was worked out by hand from the
# events in data/report_fleet.jsonl and data/report_dst.jsonl (their times
# are listed in the comments), not produced by the code under test.
#
# report_fleet.jsonl, all UTC:
#   a1: conn 10 connect 03-01 22:00 (written 23:00+01:00), disconnect 03-02
#       02:00 (across midnight); conn 11 connect 10:00, no disconnect, conn
#       12 connects 12:00 (lost disconnect: superseded); conn 12 disconnect
#       15:00 arrives late, after conn 13 connected 14:00 (disconnect
#       16:00): 12:00-16:00 counts once; conn 99 disconnect 18:00 without
#       connect (orphan); conn 14 connect 20:00, open (measured to --until
#       03-03 06:00: 10 h).
#   a2: declare 03-01 08:00; conn 20 disconnect 09:00:00 before its connect
#       09:00:05.25 (duration 0).
#   a3: only declare_asset 07:00.    failed_connect with a null asset 03-02 05:00.
#   a4: five 5-minute sessions 01:00-01:45 (disconnects 01:05 … 01:45, three
#       'Unhandled reason 95074823, please contact maintainer'), one
#       02:30-02:35 ('Unhandled reason 12, …'), one 23:00-23:30 (connect
#       'weird_reason', disconnect 'Unhandled reason x, …': not documented).
set -euo pipefail
: "${PI_BINARY:?run through ctest}" "${PI_SERVICES:?}" "${PI_SOURCE_DIR:?}" "${PI_GEN:?}"
PG_ADMIN=$(cat "$PI_SERVICES/pg/conninfo")
DATA=$PI_SOURCE_DIR/tests/integration/data
WORK=$(mktemp -d /tmp/report_cli.XXXXXX)
DBS=()
cleanup() {
  for db in "${DBS[@]}"; do
    psql "$PG_ADMIN" -XAtq -c "drop database if exists $db with (force)" >/dev/null 2>&1 || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# newdb NAME FILE: a migrated database holding FILE's presences.
newdb() {
  local db="report_$1_$$"
  DBS+=("$db")
  psql "$PG_ADMIN" -XAtq -c "create database $db"
  "$PI_BINARY" migrate --pg "$PG_ADMIN dbname=$db" >/dev/null
  "$PI_BINARY" load --pg "$PG_ADMIN dbname=$db" "$2" >/dev/null 2>"$WORK/load.err" ||
    { cat "$WORK/load.err" >&2; fail "load $2"; }
  echo "$PG_ADMIN dbname=$db"
}

# check NAME EXPECTED ARGS…: report ARGS (CSV: CRLF line ends) equals
# EXPECTED (compared with LF).
check() {
  local name=$1 expected=$2
  shift 2
  "$PI_BINARY" report "$@" >"$WORK/out" 2>"$WORK/err" || { cat "$WORK/err" >&2; fail "$name: exit $?"; }
  if ! diff -u <(printf '%s\n' "$expected") <(tr -d '\r' <"$WORK/out"); then
    fail "$name"
  fi
  echo "ok: $name"
}

PG=$(newdb fleet "$DATA/report_fleet.jsonl")
SPAN=(--since 2026-03-01T00:00:00Z --until 2026-03-03T06:00:00Z)

check "status csv" "asset,state,since,reason,connection_id
a1,online,2026-03-02T20:00:00+00:00,modem_reset,14
a2,offline,2026-03-01T09:00:00+00:00,client_disconnect,20
a3,declared,2026-03-01T07:00:00+00:00,declared,30
a4,offline,2026-03-02T23:30:00+00:00,\"Unhandled reason x, please contact maintainer\",46" \
  status --pg "$PG" --format csv

# CSV is RFC 4180: CRLF after every record, the header included.
[ "$(head -c 41 "$WORK/out" | od -An -c | tr -d ' \n')" = 'asset,state,since,reason,connection_id\r\na' ] ||
  fail "csv line ends are not CRLF"

check "status json, Europe/Paris" '[
{"asset":"a1","state":"online","since":"2026-03-02T21:00:00+01:00","reason":"modem_reset","connection_id":"14"},
{"asset":"a2","state":"offline","since":"2026-03-01T10:00:00+01:00","reason":"client_disconnect","connection_id":"20"},
{"asset":"a3","state":"declared","since":"2026-03-01T08:00:00+01:00","reason":"declared","connection_id":"30"},
{"asset":"a4","state":"offline","since":"2026-03-03T00:30:00+01:00","reason":"Unhandled reason x, please contact maintainer","connection_id":"46"}
]' status --pg "$PG" --format json --tz Europe/Paris

check "status table, one asset" "asset  state   since                          reason       connection_id
a1     online  2026-03-02T20:00:00.000+00:00  modem_reset  14" \
  status --pg "$PG" --format table --asset a1

# Issue 25: an unknown asset is said so on stderr, exit 0, no rows.
"$PI_BINARY" report status --pg "$PG" --format csv --asset nosuch \
  >"$WORK/out" 2>"$WORK/err" || fail "status of an unknown asset: exit $?"
[ "$(cat "$WORK/err")" = "presence-ingest report: no presence of asset 'nosuch' is stored" ] ||
  fail "status of an unknown asset: stderr '$(cat "$WORK/err")'"
[ "$(tr -d '\r' <"$WORK/out")" = "asset,state,since,reason,connection_id" ] ||
  fail "status of an unknown asset: rows $(cat "$WORK/out")"
echo "ok: status of an unknown asset"
# report --help lists every kind, one line each, from lib/report's table.
help=$("$PI_BINARY" report --help)
for k in status sessions uptime reasons flapping; do
  grep -qE "^  $k +[a-z]" <<<"$help" || fail "report --help does not list $k"
done
echo "ok: report --help lists the kinds"

SESSIONS="asset,connection_id,connected_at,ended_at,end_kind,duration_s,connect_reason,disconnect_reason
a1,10,2026-03-01T22:00:00+00:00,2026-03-02T02:00:00+00:00,disconnect,14400,cold_boot,socket_closed
a1,11,2026-03-02T10:00:00+00:00,2026-03-02T12:00:00+00:00,superseded,7200,idle_out,
a1,12,2026-03-02T12:00:00+00:00,2026-03-02T15:00:00+00:00,disconnect,10800,ppp_lost,network_activity_timeout
a1,13,2026-03-02T14:00:00+00:00,2026-03-02T16:00:00+00:00,disconnect,7200,cold_boot,socket_closed
a1,99,,2026-03-02T18:00:00+00:00,orphan,,,network_error
a1,14,2026-03-02T20:00:00+00:00,,open,36000,modem_reset,
a2,20,2026-03-01T09:00:05.25+00:00,2026-03-01T09:00:00+00:00,disconnect,0,cold_boot,client_disconnect
a4,40,2026-03-02T01:00:00+00:00,2026-03-02T01:05:00+00:00,disconnect,300,ppp_lost,\"Unhandled reason 95074823, please contact maintainer\"
a4,41,2026-03-02T01:10:00+00:00,2026-03-02T01:15:00+00:00,disconnect,300,ppp_lost,\"Unhandled reason 95074823, please contact maintainer\"
a4,42,2026-03-02T01:20:00+00:00,2026-03-02T01:25:00+00:00,disconnect,300,ppp_lost,\"Unhandled reason 95074823, please contact maintainer\"
a4,43,2026-03-02T01:30:00+00:00,2026-03-02T01:35:00+00:00,disconnect,300,ppp_lost,network_error
a4,44,2026-03-02T01:40:00+00:00,2026-03-02T01:45:00+00:00,disconnect,300,ppp_lost,network_error
a4,45,2026-03-02T02:30:00+00:00,2026-03-02T02:35:00+00:00,disconnect,300,sim_error,\"Unhandled reason 12, please contact maintainer\"
a4,46,2026-03-02T23:00:00+00:00,2026-03-02T23:30:00+00:00,disconnect,1800,weird_reason,\"Unhandled reason x, please contact maintainer\""
check "sessions csv" "$SESSIONS" sessions --pg "$PG" --format csv "${SPAN[@]}"

# [since, until) selects the sessions overlapping it: from 03-02 16:00 on,
# a1's orphan and open session, a4's last one; the open one measured to
# --until 03-02 22:00 (2 h).
check "sessions overlapping a window" "asset,connection_id,connected_at,ended_at,end_kind,duration_s,connect_reason,disconnect_reason
a1,99,,2026-03-02T18:00:00+00:00,orphan,,,network_error
a1,14,2026-03-02T20:00:00+00:00,,open,7200,modem_reset," \
  sessions --pg "$PG" --format csv --since 2026-03-02T16:00:00Z --until 2026-03-02T22:00:00Z --asset a1

# A session is what all events make it; --until selects and measures. With
# --until 03-02 13:00, a1's conn 12 (connect 12:00) is reported with its
# disconnect at 15:00 (after until), not as open; conn 13 (14:00) starts
# after until and is not listed.
check "sessions: an end after --until" "asset,connection_id,connected_at,ended_at,end_kind,duration_s,connect_reason,disconnect_reason
a1,11,2026-03-02T10:00:00+00:00,2026-03-02T12:00:00+00:00,superseded,7200,idle_out,
a1,12,2026-03-02T12:00:00+00:00,2026-03-02T15:00:00+00:00,disconnect,10800,ppp_lost,network_activity_timeout" \
  sessions --pg "$PG" --format csv --since 2026-03-02T11:00:00Z --until 2026-03-02T13:00:00Z --asset a1
# Uptime counts nothing at or after --until: a1 on 03-02 up to 13:00 is
# 00-02 + 10-13 = 5 h = 18000 s of 86400 (5/24); conns 10, 11, 12 overlap.
check "uptime: a day cut by --until" "asset,day,online_s,sessions,ratio
a1,2026-03-02,18000,3,0.20833333333333334" \
  uptime --pg "$PG" --format csv --since 2026-03-02T00:00:00Z --until 2026-03-02T13:00:00Z --asset a1

check "sessions json, one asset" '[
{"asset":"a2","connection_id":"20","connected_at":"2026-03-01T09:00:05.25+00:00","ended_at":"2026-03-01T09:00:00+00:00","end_kind":"disconnect","duration_s":0,"connect_reason":"cold_boot","disconnect_reason":"client_disconnect"}
]' sessions --pg "$PG" --format json --asset a2 "${SPAN[@]}"

# a1 on 03-02: 00-02 + 10-16 (12-16 once, although sessions 12 and 13
# overlap) + 20-24 = 12 h of 24; 5 sessions touch the day. a4: 6 × 300 s +
# 1800 s = 3600 s.
UPTIME="asset,day,online_s,sessions,ratio
a1,2026-03-01,7200,1,0.08333333333333333
a1,2026-03-02,43200,5,0.5
a1,2026-03-03,21600,1,0.25
a4,2026-03-02,3600,7,0.041666666666666664"
check "uptime csv" "$UPTIME" uptime --pg "$PG" --format csv "${SPAN[@]}"

# The table is for people (issue 25): durations and percentages.
check "uptime table with hourly strips" "asset  day         online_s  sessions  ratio  hours
a1     2026-03-01     2h00m         1   8.3%  |                      ██|
a1     2026-03-02    12h00m         5  50.0%  |██        ██████    ████|
a1     2026-03-03     6h00m         1  25.0%  |██████                  |
a4     2026-03-02     1h00m         7   4.2%  | ▒░                    ▒|" \
  uptime --pg "$PG" --format table "${SPAN[@]}"

check "uptime json" '[
{"asset":"a4","day":"2026-03-02","online_s":3600,"sessions":7,"ratio":0.041666666666666664}
]' uptime --pg "$PG" --format json --asset a4 "${SPAN[@]}"

# Every row counts, the null asset's failed_connect included; 'Unhandled
# reason <digits>, please contact maintainer' is documented, with 'x' it is not.
REASONS="type,reason,side,documented,count
connect,ppp_lost,device,true,6
connect,cold_boot,device,true,3
disconnect,\"Unhandled reason 95074823, please contact maintainer\",server,true,3
disconnect,network_error,server,true,3
declare_asset,declared,none,false,2
disconnect,socket_closed,server,true,2
connect,idle_out,device,true,1
connect,modem_reset,device,true,1
connect,sim_error,device,true,1
connect,weird_reason,device,false,1
disconnect,\"Unhandled reason 12, please contact maintainer\",server,true,1
disconnect,\"Unhandled reason x, please contact maintainer\",server,false,1
disconnect,client_disconnect,server,true,1
disconnect,network_activity_timeout,server,true,1
failed_connect,network_error,none,false,1"
check "reasons csv" "$REASONS" reasons --pg "$PG" --format csv "${SPAN[@]}"

# a4's disconnects 01:05 01:15 01:25 01:35 01:45 02:35: five in
# [01:05, 02:05); 02:35 is outside [01:35, 02:35).
check "flapping json" '[
{"asset":"a4","disconnects":5,"window_start":"2026-03-02T01:05:00+00:00","window_end":"2026-03-02T01:45:00+00:00"}
]' flapping --pg "$PG" --format json "${SPAN[@]}"
check "flapping: threshold not reached" "asset,disconnects,window_start,window_end" \
  flapping --pg "$PG" --format csv --threshold 6 "${SPAN[@]}"
# 30 min: [01:05,01:35), [01:15,01:45), [01:25,01:55) all hold 3: the earliest.
check "flapping tie: earliest window" "asset,disconnects,window_start,window_end
a4,3,2026-03-02T01:05:00+00:00,2026-03-02T01:25:00+00:00" \
  flapping --pg "$PG" --format csv --window 30m --threshold 3 "${SPAN[@]}"

# One disconnect is a window of 1 (threshold 1): a1's four one-hour
# windows (02:00, 15:00, 16:00, 18:00 on 03-02) all hold one, the earliest
# wins; a2's one at 03-01 09:00. (SPAN holds the whole days 03-01 and 03-02:
# their inner windows come from the rollup's asset_days.)
check "flapping: ties of one-hour windows, earliest" "asset,disconnects,window_start,window_end
a4,5,2026-03-02T01:05:00+00:00,2026-03-02T01:45:00+00:00
a1,1,2026-03-02T02:00:00+00:00,2026-03-02T02:00:00+00:00
a2,1,2026-03-01T09:00:00+00:00,2026-03-01T09:00:00+00:00" \
  flapping --pg "$PG" --format csv --threshold 1 "${SPAN[@]}"

# The same events loaded in reverse order (and in batches of 3): the same
# answers, byte for byte.
tac "$DATA/report_fleet.jsonl" >"$WORK/reversed.jsonl"
PG2=$(newdb reversed "$WORK/reversed.jsonl")
for kind in status sessions uptime reasons flapping; do
  args=(--format csv)
  [ "$kind" = status ] || args+=("${SPAN[@]}")
  "$PI_BINARY" report "$kind" --pg "$PG" "${args[@]}" >"$WORK/a"
  "$PI_BINARY" report "$kind" --pg "$PG2" "${args[@]}" >"$WORK/b"
  cmp -s "$WORK/a" "$WORK/b" || { diff "$WORK/a" "$WORK/b" >&2; fail "$kind differs with the events reversed"; }
  echo "ok: $kind identical with the events in reverse order"
done

# The same events in time partitions (0003), with ids that follow the scheme
# (id >> 22 = ms since 2010 = the event's time) except: event ids 3, 6, 9, …
# carry a time 30 days older than their event (a late clock: off the scheme,
# in February's partition) and ids 5, 10, … one 400 days ahead (off the
# scheme, no partition: presences_default). Monthly partitions 2026-01 … 05
# replace the empty first partition. Reports read the id window of their
# time window plus the rows off the scheme: the same answers, byte for byte.
DB5="report_parts_$$"
DBS+=("$DB5")
PG5="$PG_ADMIN dbname=$DB5"
psql "$PG_ADMIN" -XAtq -c "create database $DB5"
"$PI_BINARY" migrate --pg "$PG5" >/dev/null
psql "$PG5" -XAtq -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
alter table presences detach partition presences_legacy;
drop table presences_legacy;
select * from presence_partitions_ensure('2026-01-01', '2026-06-01');
SQL
# ms since 2010 of each event, shifted for the late / ahead ones, << 22,
# plus the old id (unique within one millisecond).
psql "$PG" -XAtq -c "select json_build_object('id_str', (((floor(extract(epoch from time) * 1000)::bigint - 1262304000000
    + case when id % 5 = 0 then 400::bigint * 86400000 when id % 3 = 0 then -30::bigint * 86400000 else 0 end) << 22) + id)::text,
  'connection_id_str', connection_id::text, 'type', type, 'reason', reason, 'asset', asset,
  'time', to_char(time at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'))
  from presences order by id" >"$WORK/parts.jsonl"
"$PI_BINARY" load --pg "$PG5" "$WORK/parts.jsonl" >"$WORK/load5.out" 2>"$WORK/load.err" ||
  { cat "$WORK/load.err" >&2; fail "load into partitions"; }
grep -q "^messages=28 stored=28 duplicates=0 conflicts=0 rejected=0 skipped=0$" "$WORK/load5.out" ||
  fail "load into partitions: $(cat "$WORK/load5.out")"
# ids 5 10 15 20 25 in DEFAULT, 3 6 9 12 18 21 24 27 off the scheme in the
# partitions, 15 others on it.
[ "$(psql "$PG5" -XAtq -c "select count(*) from presences_default")" = 5 ] || fail "partitions: DEFAULT does not hold the 5 ids ahead"
[ "$(psql "$PG5" -XAtq -c "select count(*) from presences where not presence_on_scheme(id, time)")" = 13 ] ||
  fail "partitions: not 13 rows off the scheme"
for kind in status sessions uptime reasons flapping; do
  args=(--format csv)
  [ "$kind" = status ] || args+=("${SPAN[@]}")
  "$PI_BINARY" report "$kind" --pg "$PG" "${args[@]}" >"$WORK/a"
  "$PI_BINARY" report "$kind" --pg "$PG5" "${args[@]}" >"$WORK/b"
  cmp -s "$WORK/a" "$WORK/b" || { diff "$WORK/a" "$WORK/b" >&2; fail "$kind differs in partitions"; }
  echo "ok: $kind identical in time partitions, late and off-scheme ids included"
done
# Pruning: presences_in (what flapping_assets reads, for the candidates the
# rollup names) over a March window reads March's partition and the last day
# of February's (the one-day margin) by id, of 10 (2026-01 … 05, the current
# month, which 0007 makes, and 3 ahead); May's only through the
# off-scheme index. (reasons reads 0004's minute counts, and presences only
# for the partial minutes at its ends, through the time BRIN.)
psql "$PG5" -XAtq -c "explain (costs off) select * from presences_in('2026-03-01', '2026-03-03') where type = 'disconnect'" >"$WORK/plan"
grep -q "Index Scan on presences_p20260301_pkey" "$WORK/plan" &&
  grep -q "Index Scan on presences_p20260201_pkey" "$WORK/plan" &&
  grep -q "Subplans Removed: 8" "$WORK/plan" ||
  fail "pruning: February and March not read by id, or others not pruned: $(cat "$WORK/plan")"
! grep -q "presences_p20260501_pkey\|presences_p20260401_pkey\|presences_p20260101_pkey" "$WORK/plan" &&
  grep -q "Index Scan on presences_p20260501_time_idx" "$WORK/plan" ||
  fail "pruning: May's partition is read by id: $(cat "$WORK/plan")"
echo "ok: a March window reads February and March by id, the rest through the off-scheme index"

# Daylight saving in Europe/Paris: 2026-03-29 has 23 hours, 2026-10-25 has 25.
# p1 online 03-28 12:00Z … 03-30 12:00Z: all 23 h = 82800 s of 03-29.
# p3 00:00+01:00 … 04:00+02:00 = 3 real hours: 10800/82800.
# p2 online 10-24 12:00Z … 10-26 12:00Z: all 25 h = 90000 s of 10-25.
# p4 02:30+02:00 … 02:30+01:00 (the repeated hour) = 3600 s: 0.04 of 10-25,
# half of the day's 3rd and 4th hours (00:00-01:00Z, 01:00-02:00Z).
PG3=$(newdb dst "$DATA/report_dst.jsonl")
check "uptime on a 23-hour day" "asset,day,online_s,sessions,ratio
p1,2026-03-29,82800,1,1
p3,2026-03-29,10800,1,0.13043478260869565" \
  uptime --pg "$PG3" --format csv --tz Europe/Paris \
  --since 2026-03-29T00:00:00+01:00 --until 2026-03-30T00:00:00+02:00
check "uptime on a 25-hour day" "asset,day,online_s,sessions,ratio
p2,2026-10-25,90000,1,1
p4,2026-10-25,3600,1,0.04" \
  uptime --pg "$PG3" --format csv --tz Europe/Paris \
  --since 2026-10-25T00:00:00+02:00 --until 2026-10-26T00:00:00+01:00
# Europe/London's 2026-10-25 is 25 h too, [10-24 23:00Z, 10-26 00:00Z): it
# holds the whole UTC day 10-25 and an hour of 10-24. p2 is online all of
# it (90000 s, its one session counted once); p4 00:30Z-01:30Z.
check "uptime on a 25-hour day in London" "asset,day,online_s,sessions,ratio
p2,2026-10-25,90000,1,1
p4,2026-10-25,3600,1,0.04" \
  uptime --pg "$PG3" --format csv --tz Europe/London \
  --since 2026-10-25T00:00:00+01:00 --until 2026-10-26T00:00:00Z
check "a strip of 23 hours" "asset  day         online_s  sessions   ratio  hours
p1     2026-03-29    23h00m         1  100.0%  |███████████████████████|
p3     2026-03-29     3h00m         1   13.0%  |███                    |" \
  uptime --pg "$PG3" --format table --tz Europe/Paris \
  --since 2026-03-29T00:00:00+01:00 --until 2026-03-30T00:00:00+02:00
check "a strip of 25 hours" "asset  day         online_s  sessions   ratio  hours
p2     2026-10-25     1d01h         1  100.0%  |█████████████████████████|
p4     2026-10-25     1h00m         1    4.0%  |  ▒▒                     |" \
  uptime --pg "$PG3" --format table --tz Europe/Paris \
  --since 2026-10-25T00:00:00+02:00 --until 2026-10-26T00:00:00+01:00

# The fleet generator (pi-gen --shape fleet) makes what the reports are
# about: every end_kind, failed connects with a null asset, one declare per
# asset at its first appearance, ids whose top bits are the time, late lines.
"$PI_GEN" 4000 --shape fleet --assets 40 >"$WORK/fleet.jsonl"
PG4=$(newdb gen "$WORK/fleet.jsonl")
kinds=$("$PI_BINARY" report sessions --pg "$PG4" --format csv \
  --since 2026-01-01T00:00:00Z --until 2026-03-30T00:00:00Z | tail -n +2 |
  cut -d, -f5 | sort -u | tr '\n' ' ')
[ "$kinds" = "disconnect open orphan superseded " ] || fail "fleet end kinds: $kinds"
q() { psql "$PG4" -XAtq -c "$1"; }
[ "$(q "select count(*) > 0 from presences where type = 'failed_connect' and asset is null")" = t ] ||
  fail "fleet: no failed_connect with a null asset"
[ "$(q "select count(distinct asset) from presences")" = 40 ] || fail "fleet: not 40 assets"
[ "$(q "select count(*) from (select distinct on (asset) type from presences where asset is not null order by asset, time, id) f where type <> 'declare_asset'")" = 0 ] ||
  fail "fleet: an asset does not start with declare_asset"
[ "$(q "select count(*) from presences where (id >> 22) + 1262304000000 <> floor(extract(epoch from time) * 1000)")" = 0 ] ||
  fail "fleet: id >> 22 is not the time"
[ "$(q "select count(*) > 0 from presences a join presences b on b.kafka_offset = a.kafka_offset + 1 where b.time < a.time - interval '1 minute'")" = t ] ||
  fail "fleet: no late events"
[ "$(q "select count(*) > 0 from presences where reason ~ '^Unhandled reason [0-9]+, please contact maintainer$'")" = t ] ||
  fail "fleet: no Unhandled reason"
echo "ok: the generated fleet has every end kind, null-asset failed connects, declares first, time ids, late events"

# Bad input: one line naming the problem, exit 2; a database without the
# reports' migration: exit 3, saying to migrate.
expect() {
  local code=$1 line=$2 rc=0
  shift 2
  "$PI_BINARY" report "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
  [ "$rc" = "$code" ] || { cat "$WORK/err" >&2; fail "'$*' exited $rc, expected $code"; }
  [ "$(wc -l <"$WORK/err")" = 1 ] || { cat "$WORK/err" >&2; fail "'$*': not one line"; }
  [ "$(cat "$WORK/err")" = "$line" ] || fail "'$*': got '$(cat "$WORK/err")'"
  [ ! -s "$WORK/out" ] || fail "'$*' printed a partial report"
  echo "ok: $* -> $rc"
}
expect 2 "presence-ingest report: --tz: unknown time zone 'Mars/Olympus' (an IANA name such as Europe/Paris or UTC)" \
  status --pg "$PG" --tz Mars/Olympus
expect 2 "presence-ingest report: --since must be an RFC 3339 time (2026-03-29T00:00:00+01:00) or relative to now (-7d, -2h, -15m, -90s), got 'yesterday'" \
  sessions --pg "$PG" --since yesterday
expect 2 "presence-ingest report: --window must be a duration above zero (90s, 15m, 1h, 7d), got '0m'" \
  flapping --pg "$PG" --window 0m
expect 2 "presence-ingest report: --window does not apply to 'report uptime'" \
  uptime --pg "$PG" --window 1h
expect 2 "presence-ingest report: --since must be before --until" \
  uptime --pg "$PG" --since 2026-03-02T00:00:00Z --until 2026-03-01T00:00:00Z
expect 2 "presence-ingest report: unknown report 'uptimes' (status, sessions, uptime, reasons, flapping, outages, availability, fleet)" \
  uptimes --pg "$PG"
expect 2 "presence-ingest report: --format must be one of table|csv|json, got 'xml'" \
  status --pg "$PG" --format xml
OLD="report_old_$$"
DBS+=("$OLD")
psql "$PG_ADMIN" -XAtq -c "create database $OLD"
psql "$PG_ADMIN dbname=$OLD" -XAtq -v ON_ERROR_STOP=1 \
  -f "$PI_SOURCE_DIR/migrations/0001_initial.sql" \
  -c "insert into schema_migrations (version, name) values (1, '0001_initial.sql')"
expect 3 "presence-ingest report: the database has no reports yet: run \`presence-ingest migrate\`" \
  status --pg "$PG_ADMIN dbname=$OLD"
echo "all report checks passed"
