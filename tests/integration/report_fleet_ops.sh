#!/usr/bin/env bash
# report_fleet_ops.sh -- CONTRACT §8's reports (outages, availability, the
# fleet over time, status filters), as SQL and through `presence-ingest
# report`, against answers worked out by hand from
# data/report_fleet_ops.jsonl (not produced by the code under test):
#
#   2026-03-30, UTC; the window is [00:00, 18:00) unless said otherwise.
#   b1: conn 100 connect 08:00 (cold_boot), disconnect 10:00
#       (network_activity_timeout); conn 101 connect 10:00:30 (ppp_lost: a
#       30 s outage whose two reasons differ), disconnect 12:00
#       (server_shutdown); conn 102 connect 12:05 (closed_by_server: 5 min),
#       disconnect 14:00 (socket_closed): open outage, 4 h to 18:00.
#       Online 2 h + 1 h 59 min 30 s + 1 h 55 min = 21 270 s of 36 000.
#   b2: conn 200 connect 08:00, superseded by conn 201 09:00 (no outage);
#       conn 202 connect 10:30; conn 201's disconnect 11:00 arrives late,
#       inside 202's session (no outage); 202 disconnect 12:00
#       (client_disconnect); orphan disconnect conn 299 at 13:00 inside that
#       outage (no second one); conn 203 connect 14:00 (sim_error), open.
#       Online 08:00-12:00 and 14:00-18:00 = 28 800 s of 36 000.
#   b3: declare_asset 06:00 (its first event); orphan disconnect conn 300 at
#       07:00 (unknown_channel) starts an outage (06:00-07:00 is not one);
#       conn 301 connect 09:00 (cold_boot), open. 32 400 s of 43 200.
#   d1: only declare_asset 05:00: observed 13 h, never online.
#   s1, s2: connect 11:00 / 11:30, both disconnected at 12:00
#       (server_shutdown: the server restart), reconnect 12:10
#       (closed_by_server / read_error), open. s1 24 600 s of 25 200, s2
#       22 800 of 23 400.
#   failed_connect with a null asset at 12:00:30.
#   m1 (October, Europe/Paris: CEST -> CET on 10-25 at 01:00 UTC): connect
#       10-24 22:00 UTC (10-25 00:00 CEST, midnight of a 25-hour day),
#       disconnect 11-01 11:00 UTC (12:00 CET, socket_closed). October from
#       its first event: 10-24 22:00 -> 10-31 23:00 UTC = 169 h = 608 400 s,
#       all online; November to --until 11-03 00:00 CET: 48 h, online 12 h
#       = 43 200 s, one open outage of 36 h = 129 600 s.
set -euo pipefail
: "${PI_BINARY:?run through ctest}" "${PI_SERVICES:?}" "${PI_SOURCE_DIR:?}" "${PI_GEN:?}"
PG_ADMIN=$(cat "$PI_SERVICES/pg/conninfo")
DATA=$PI_SOURCE_DIR/tests/integration/data/report_fleet_ops.jsonl
WORK=$(mktemp -d /tmp/report_fleet_ops.XXXXXX)
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
  local db="fleet_ops_$1_$$"
  DBS+=("$db")
  psql "$PG_ADMIN" -XAtq -c "create database $db"
  "$PI_BINARY" migrate --pg "$PG_ADMIN dbname=$db" >/dev/null
  "$PI_BINARY" load --pg "$PG_ADMIN dbname=$db" "$2" >/dev/null 2>"$WORK/load.err" ||
    { cat "$WORK/load.err" >&2; fail "load $2"; }
  echo "$PG_ADMIN dbname=$db"
}

# check NAME EXPECTED ARGS…: report ARGS equals EXPECTED (CRLF as LF).
check() {
  local name=$1 expected=$2
  shift 2
  "$PI_BINARY" report "$@" >"$WORK/out" 2>"$WORK/err" || { cat "$WORK/err" >&2; fail "$name: exit $?"; }
  if ! diff -u <(printf '%s\n' "$expected") <(tr -d '\r' <"$WORK/out"); then
    fail "$name"
  fi
  echo "ok: $name"
}

# sql NAME EXPECTED QUERY: psql's unaligned rows equal EXPECTED.
sql() {
  local name=$1 expected=$2
  if ! diff -u <(printf '%s\n' "$expected") <(psql "$PG" -XAtq -v ON_ERROR_STOP=1 -c "set timezone = 'UTC'" -c "$3"); then
    fail "$name"
  fi
  echo "ok: $name"
}

PG=$(newdb fleet "$DATA")
DAY=(--since 2026-03-30T00:00:00Z --until 2026-03-30T18:00:00Z)

# ---- outages ---------------------------------------------------------------
OUTAGES="asset,started_at,ended_at,duration_s,disconnect_reason,reconnect_reason
b1,2026-03-30T10:00:00+00:00,2026-03-30T10:00:30+00:00,30,network_activity_timeout,ppp_lost
b1,2026-03-30T12:00:00+00:00,2026-03-30T12:05:00+00:00,300,server_shutdown,closed_by_server
b1,2026-03-30T14:00:00+00:00,,14400,socket_closed,
b2,2026-03-30T12:00:00+00:00,2026-03-30T14:00:00+00:00,7200,client_disconnect,sim_error
b3,2026-03-30T07:00:00+00:00,2026-03-30T09:00:00+00:00,7200,unknown_channel,cold_boot
s1,2026-03-30T12:00:00+00:00,2026-03-30T12:10:00+00:00,600,server_shutdown,closed_by_server
s2,2026-03-30T12:00:00+00:00,2026-03-30T12:10:00+00:00,600,server_shutdown,read_error"
check "outages csv" "$OUTAGES" outages --pg "$PG" "${DAY[@]}" --format csv
# Debounce: the 30 s outage is shorter than 1 min, the 5 min one is not; an
# outage of exactly the debounce is still one.
check "outages --debounce 1m" "$(printf '%s\n' "$OUTAGES" | grep -v ',30,')" \
  outages --pg "$PG" "${DAY[@]}" --format csv --debounce 1m
check "outages --debounce 30s (not shorter: kept)" "$OUTAGES" \
  outages --pg "$PG" "${DAY[@]}" --format csv --debounce 30s
check "outages --debounce 5m1s" "$(printf '%s\n' "$OUTAGES" | grep -v ',30,\|,300,')" \
  outages --pg "$PG" "${DAY[@]}" --format csv --debounce 301s
# Overlapping [since, until): from 12:03 only the outages still going on.
check "outages overlapping --since 12:03" "asset,started_at,ended_at,duration_s,disconnect_reason,reconnect_reason
b1,2026-03-30T12:00:00+00:00,2026-03-30T12:05:00+00:00,300,server_shutdown,closed_by_server
b1,2026-03-30T14:00:00+00:00,,14400,socket_closed,
b2,2026-03-30T12:00:00+00:00,2026-03-30T14:00:00+00:00,7200,client_disconnect,sim_error
s1,2026-03-30T12:00:00+00:00,2026-03-30T12:10:00+00:00,600,server_shutdown,closed_by_server
s2,2026-03-30T12:00:00+00:00,2026-03-30T12:10:00+00:00,600,server_shutdown,read_error" \
  outages --pg "$PG" --since 2026-03-30T12:03:00Z --until 2026-03-30T18:00:00Z --format csv
# The open outage is measured to --until: 14:00 -> 16:30.
check "outages --asset b1 json, open to --until, Europe/Paris" '[
{"asset":"b1","started_at":"2026-03-30T12:00:00+02:00","ended_at":"2026-03-30T12:00:30+02:00","duration_s":30,"disconnect_reason":"network_activity_timeout","reconnect_reason":"ppp_lost"},
{"asset":"b1","started_at":"2026-03-30T14:00:00+02:00","ended_at":"2026-03-30T14:05:00+02:00","duration_s":300,"disconnect_reason":"server_shutdown","reconnect_reason":"closed_by_server"},
{"asset":"b1","started_at":"2026-03-30T16:00:00+02:00","ended_at":null,"duration_s":9000,"disconnect_reason":"socket_closed","reconnect_reason":null}
]' outages --pg "$PG" --asset b1 --since 2026-03-30T00:00:00Z --until 2026-03-30T16:30:00Z --format json --tz Europe/Paris
# The table is for people: times to the millisecond, durations as 4h00m.
check "outages table" "asset  started_at                     ended_at                       duration_s  disconnect_reason  reconnect_reason
b1     2026-03-30T14:00:00.000+00:00                                      4h00m  socket_closed      ${NOTHING:-}
b2     2026-03-30T12:00:00.000+00:00  2026-03-30T14:00:00.000+00:00       2h00m  client_disconnect  sim_error
b3     2026-03-30T07:00:00.000+00:00  2026-03-30T09:00:00.000+00:00       2h00m  unknown_channel    cold_boot" \
  outages --pg "$PG" "${DAY[@]}" --format table --debounce 1h

# ---- availability ----------------------------------------------------------
check "availability csv" "asset,period_start,observed_s,online_s,availability,outages,downtime_s,longest_outage_s
b1,2026-03-30T00:00:00+00:00,36000,21270,0.5908333333333333,3,14730,14400
b2,2026-03-30T00:00:00+00:00,36000,28800,0.8,1,7200,7200
b3,2026-03-30T00:00:00+00:00,43200,32400,0.75,1,10800,7200
d1,2026-03-30T00:00:00+00:00,46800,0,0,0,46800,0
s1,2026-03-30T00:00:00+00:00,25200,24600,0.9761904761904762,1,600,600
s2,2026-03-30T00:00:00+00:00,23400,22800,0.9743589743589743,1,600,600" \
  availability --pg "$PG" "${DAY[@]}" --format csv
# Debounce 1m: b1's 30 s gap counts as online (21 300 s), two outages.
check "availability --debounce 1m --asset b1" "asset,period_start,observed_s,online_s,availability,outages,downtime_s,longest_outage_s
b1,2026-03-30T00:00:00+00:00,36000,21300,0.5916666666666667,2,14700,14400" \
  availability --pg "$PG" "${DAY[@]}" --format csv --debounce 1m --asset b1
check "availability json --asset b3" '[
{"asset":"b3","period_start":"2026-03-30T00:00:00+00:00","observed_s":43200,"online_s":32400,"availability":0.75,"outages":1,"downtime_s":10800,"longest_outage_s":7200}
]' availability --pg "$PG" "${DAY[@]}" --format json --asset b3
# 25 200 s = 7h00m, 24 600 s = 6h50m, 41/42 = 97.6 %, 600 s = 10m00s.
check "availability table --asset s1" "asset  period_start                   observed_s  online_s  availability  outages  downtime_s  longest_outage_s
s1     2026-03-30T00:00:00.000+00:00       7h00m     6h50m         97.6%        1      10m00s            10m00s" \
  availability --pg "$PG" "${DAY[@]}" --format table --asset s1
# By month across the month boundary and the DST change, first seen
# mid-period; the period starts are local midnights.
check "availability --period month, Europe/Paris" "asset,period_start,observed_s,online_s,availability,outages,downtime_s,longest_outage_s
m1,2026-10-01T00:00:00+02:00,608400,608400,1,0,0,0
m1,2026-11-01T00:00:00+01:00,172800,43200,0.25,1,129600,129600" \
  availability --pg "$PG" --asset m1 --tz Europe/Paris --period month \
  --since 2026-10-01T00:00:00+02:00 --until 2026-11-03T00:00:00+01:00 --format csv
# The same from the all-assets function: m1's rows are the same.
sql "asset_availability month, every asset, m1's rows" "m1|2026-09-30 22:00:00+00|608400|608400|1|0|0|0
m1|2026-10-31 23:00:00+00|172800|43200|0.25|1|129600|129600" \
  "select * from asset_availability('Europe/Paris', '2026-10-01T00:00:00+02:00', '2026-11-03T00:00:00+01:00', 'month') where asset = 'm1' order by 2"

# online_s (debounce 0) equals the sum of §7's daily_uptime over the same
# days, for every asset, by month in Europe/Paris and by day in UTC.
for args in "'Europe/Paris', '2026-03-01T00:00:00+01:00', '2026-11-03T00:00:00+01:00', 'month'" \
            "'UTC', '2026-03-29T00:00:00Z', '2026-03-31T00:00:00Z', 'day'"; do
  n=$(psql "$PG" -XAtq -v ON_ERROR_STOP=1 -c "
    with a as (select asset, sum(online_s) as s from asset_availability($args) group by asset),
         u as (select asset, sum(online_s) as s from daily_uptime(${args%, *}) group by asset)
    select count(*) from a full join u using (asset)
    where round(coalesce(a.s, 0)::numeric, 6) <> round(coalesce(u.s, 0)::numeric, 6)")
  [ "$n" = 0 ] || fail "availability online_s <> sum(daily_uptime) for $args: $n assets"
  echo "ok: online_s = sum(daily_uptime) ($args)"
done
# ... and the by-day rows' sum is the hand-computed one (b1 21 270 s etc.).
sql "availability by day sums" "b1|21270
b2|28800
b3|32400
d1|0
s1|24600
s2|22800" \
  "select asset, sum(online_s) from asset_availability('UTC', '2026-03-29T00:00:00Z', '2026-03-30T18:00:00Z', 'day') group by asset order by 1"

# The same on a generated fleet (orphans, lost disconnects, late events,
# flapping, the incidents), by day in UTC and by week in Europe/Paris, with
# the outages' own account: downtime_s (debounce 0) is at least the
# outages' time within the periods.
"$PI_GEN" 20000 --shape fleet --assets 200 --incidents 6 >"$WORK/gen.jsonl"
PG3=$(newdb gen "$WORK/gen.jsonl")
for args in "'UTC', '2026-03-20T00:00:00Z', '2026-03-30T00:00:00Z', 'day'" \
            "'Europe/Paris', '2026-03-16T00:00:00+01:00', '2026-03-30T00:00:00+02:00', 'week'"; do
  n=$(psql "$PG3" -XAtq -v ON_ERROR_STOP=1 -c "
    with a as (select asset, sum(online_s) as s from asset_availability($args) group by asset),
         u as (select asset, sum(online_s) as s from daily_uptime(${args%, *}) group by asset)
    select count(*) from a full join u using (asset)
    where round(coalesce(a.s, 0)::numeric, 6) <> round(coalesce(u.s, 0)::numeric, 6)")
  [ "$n" = 0 ] || fail "generated fleet: availability online_s <> sum(daily_uptime) for $args: $n assets"
done
n=$(psql "$PG3" -XAtq -v ON_ERROR_STOP=1 -c "
  select count(*) from asset_availability('UTC', '2026-03-20', '2026-03-30') a
  where a.downtime_s + 1e-6 < (select coalesce(sum(date_part('epoch',
            least(coalesce(o.ended_at, '2026-03-30'), '2026-03-30') - greatest(o.started_at, '2026-03-20'))), 0)
          from asset_outages('2026-03-20', '2026-03-30') o where o.asset = a.asset)")
[ "$n" = 0 ] || fail "generated fleet: downtime_s below the outages' time for $n assets"
[ "$(psql "$PG3" -XAtq -c "select count(*) from asset_outages('2026-03-29', '2026-03-30') where disconnect_reason = 'server_shutdown' and started_at >= '2026-03-29T18:00:00Z' and started_at < '2026-03-29T18:00:01Z'")" -gt 20 ] ||
  fail "generated fleet: no mass disconnect at the restart"
echo "ok: generated fleet: online_s = sum(daily_uptime), downtime covers the outages, the restart"

# ---- availability --fleet ----------------------------------------------------
# Availabilities 0, 0.590833…, 0.75, 0.8, 38/39, 41/42: mean 4.0913828…/6,
# p50 (0.75 + 0.8) / 2, p05 0.25 of the way from 0 to 0.590833…
check "availability --fleet csv" "period_start,assets,mean,p50,p05,below_target
2026-03-30T00:00:00+00:00,6,0.6818971306471306,0.775,0.14770833333333333,6" \
  availability --fleet --pg "$PG" "${DAY[@]}" --format csv
check "availability --fleet --target 0.975 json" '[
{"period_start":"2026-03-30T00:00:00+00:00","assets":6,"mean":0.6818971306471306,"p50":0.775,"p05":0.14770833333333333,"below_target":5}
]' availability --fleet --pg "$PG" "${DAY[@]}" --format json --target 0.975
# mean 68.19… %, p50 77.5 %, p05 14.77… %: one decimal.
check "availability --fleet table marks a period below target" "period_start                   assets   mean    p50    p05  below_target  target
2026-03-30T00:00:00.000+00:00       6  68.2%  77.5%  14.8%             6  below" \
  availability --fleet --pg "$PG" "${DAY[@]}" --format table
check "availability --fleet table --target 0.5: no mark" "period_start                   assets   mean    p50    p05  below_target  target
2026-03-30T00:00:00.000+00:00       6  68.2%  77.5%  14.8%             1  " \
  availability --fleet --pg "$PG" "${DAY[@]}" --format table --target 0.5

# ---- fleet -------------------------------------------------------------------
# At 11:00 (events before it): b1 (101), b2 (202), b3 (301) online, d1
# declared; over [11:00, 12:00) s1's and s2's connects, 201's late
# disconnect. At 12:00 all five online; over [12:00, 13:00) the four
# disconnects of 12:00, the three reconnects, the failed connect. At 13:00
# b2 offline; over [13:00, 14:00) its orphan disconnect.
check "fleet csv" "time,online,offline,declared,connects,disconnects,failed_connects,assets_disconnected
2026-03-30T11:00:00+00:00,3,0,1,2,1,0,1
2026-03-30T12:00:00+00:00,5,0,1,3,4,1,4
2026-03-30T13:00:00+00:00,4,1,1,0,1,0,1" \
  fleet --pg "$PG" --since 2026-03-30T11:00:00Z --until 2026-03-30T14:00:00Z --format csv
# Just before and after the mass disconnect: at 12:00:00 the events of
# 12:00:00 are not counted yet (time < t), at 12:00:01 they are.
check "fleet table around the mass disconnect" "time                           online                        offline  declared  connects  disconnects  failed_connects  assets_disconnected
2026-03-30T11:59:59.000+00:00       5  ████████████████████        0         1         0            0                0                    0
2026-03-30T12:00:00.000+00:00       5  ████████████████████        0         1         0            4                0                    4
2026-03-30T12:00:01.000+00:00       1  ████                        4         1         0            0                0                    0" \
  fleet --pg "$PG" --since 2026-03-30T11:59:59Z --until 2026-03-30T12:00:02Z --step 1s --format table
# b2 alone, 2 h steps from 09:00: 200 online before 09:00, then 201's and
# 202's connects; 202 online at 11:00, then 201's late disconnect and
# 202's; offline at 13:00, then the orphan disconnect (203's connect at
# 14:00 is at --until: the last step is cut there).
check "fleet json --asset b2, 2h steps, last step cut at --until" '[
{"time":"2026-03-30T09:00:00+00:00","online":1,"offline":0,"declared":0,"connects":2,"disconnects":0,"failed_connects":0,"assets_disconnected":0},
{"time":"2026-03-30T11:00:00+00:00","online":1,"offline":0,"declared":0,"connects":0,"disconnects":2,"failed_connects":0,"assets_disconnected":1},
{"time":"2026-03-30T13:00:00+00:00","online":0,"offline":1,"declared":0,"connects":0,"disconnects":1,"failed_connects":0,"assets_disconnected":1}
]' fleet --pg "$PG" --asset b2 --since 2026-03-30T09:00:00Z --until 2026-03-30T14:00:00Z --step 2h --format json

# ---- status filters ------------------------------------------------------------
check "status --state offline" "asset,state,since,reason,connection_id
b1,offline,2026-03-30T14:00:00+00:00,socket_closed,102
m1,offline,2026-11-01T11:00:00+00:00,socket_closed,600" \
  status --pg "$PG" --state offline --format csv
check "status --state declared" "asset,state,since,reason,connection_id
d1,declared,2026-03-30T05:00:00+00:00,declared,310" \
  status --pg "$PG" --state declared --format csv
# b1 offline since 14:00: at 16:00 that is exactly 2 h (kept), not 2 h 1 s.
check "status --offline-for 2h at its boundary" "asset,state,since,reason,connection_id
b1,offline,2026-03-30T14:00:00+00:00,socket_closed,102" \
  status --pg "$PG" --offline-for 2h --until 2026-03-30T16:00:00Z --format csv
check "status --offline-for 7201s" "asset,state,since,reason,connection_id" \
  status --pg "$PG" --offline-for 7201s --until 2026-03-30T16:00:00Z --format csv
check "status --asset b1 --offline-for 1h" "asset,state,since,reason,connection_id
b1,offline,2026-03-30T14:00:00+00:00,socket_closed,102" \
  status --pg "$PG" --asset b1 --offline-for 1h --until 2026-03-30T16:00:00Z --format csv

# ---- the same events in another order give the same answers --------------------
tac "$DATA" >"$WORK/reversed.jsonl"
PG2=$(newdb reversed "$WORK/reversed.jsonl")
for args in "outages ${DAY[*]}" "outages ${DAY[*]} --debounce 1m" \
            "availability ${DAY[*]}" "availability --fleet ${DAY[*]}" \
            "availability --period day --since 2026-03-29T00:00:00Z --until 2026-11-03T00:00:00Z --tz Europe/Paris" \
            "fleet --since 2026-03-30T04:00:00Z --until 2026-03-30T18:00:00Z --step 15m" \
            "status --state offline" "outages --asset b2 ${DAY[*]}"; do
  # shellcheck disable=SC2086
  "$PI_BINARY" report $args --pg "$PG" --format csv >"$WORK/a" || fail "report $args"
  # shellcheck disable=SC2086
  "$PI_BINARY" report $args --pg "$PG2" --format csv >"$WORK/b" || fail "report $args (reversed)"
  cmp -s "$WORK/a" "$WORK/b" || { diff "$WORK/a" "$WORK/b" >&2; fail "order changed 'report $args'"; }
  [ "$(wc -l <"$WORK/a")" -gt 1 ] || fail "'report $args' printed no row"
done
echo "ok: loaded in reverse order, the same output"

# One asset's variant is the all-assets function's rows of that asset.
n=$(psql "$PG" -XAtq -v ON_ERROR_STOP=1 -c "
  select (select count(*) from (
            select * from asset_outages('2026-03-30', '2026-03-31', '0') where asset = 'b2'
            except all select * from asset_outages_for('{b2}', '2026-03-30', '2026-03-31', '0')) x)
       + (select count(*) from (
            select * from asset_outages_for('{b2}', '2026-03-30', '2026-03-31', '0')
            except all select * from asset_outages('2026-03-30', '2026-03-31', '0') where asset = 'b2') x)
       + (select count(*) from (
            select * from asset_availability('UTC', '2026-03-30', '2026-03-31', 'day') where asset = 'b1'
            except all select * from asset_availability_for('{b1}', 'UTC', '2026-03-30', '2026-03-31', 'day', '0')) x)")
[ "$n" = 0 ] || fail "the one-asset variants differ: $n rows"
echo "ok: *_for(one asset) = all assets' rows of it"

# ---- bad input: one line, exit 2 ------------------------------------------------
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
expect 2 "presence-ingest report: --period must be one of day|week|month, got 'fortnight'" \
  availability --pg "$PG" --period fortnight
expect 2 "presence-ingest report: --step must be a duration above zero (90s, 15m, 1h, 7d), got '0s'" \
  fleet --pg "$PG" --step 0s
expect 2 "presence-ingest report: --step 1s gives 172800 rows from --since to --until, more than 100000: take a longer step or a shorter span" \
  fleet --pg "$PG" --step 1s --since 2026-03-01T00:00:00Z --until 2026-03-03T00:00:00Z
expect 2 "presence-ingest report: --target must be a ratio from 0 to 1 (0.99), got '1.5'" \
  availability --fleet --pg "$PG" --target 1.5
expect 2 "presence-ingest report: --debounce must be a duration of zero or more (0, 30s, 5m, 1h), got '-1m'" \
  outages --pg "$PG" --debounce -1m
expect 2 "presence-ingest report: --offline-for must be a duration above zero (90s, 15m, 1h, 7d), got '0m'" \
  status --pg "$PG" --offline-for 0m
expect 2 "presence-ingest report: --state must be one of online|offline|declared, got 'gone'" \
  status --pg "$PG" --state gone
expect 2 "presence-ingest report: --step does not apply to 'report outages'" \
  outages --pg "$PG" --step 1h
expect 2 "presence-ingest report: --debounce does not apply to 'report fleet'" \
  fleet --pg "$PG" --debounce 1m
expect 2 "presence-ingest report: --offline-for does not apply to 'report uptime'" \
  uptime --pg "$PG" --offline-for 1h
expect 2 "presence-ingest report: --target does not apply to 'report fleet'" \
  fleet --pg "$PG" --target 0.9
expect 2 "presence-ingest report: --period does not apply to 'report outages'" \
  outages --pg "$PG" --period day
expect 2 "presence-ingest report: --target applies to 'report availability --fleet' only" \
  availability --pg "$PG" --target 0.9
expect 2 "presence-ingest report: --asset does not apply to 'report availability --fleet'" \
  availability --fleet --asset b1 --pg "$PG"
expect 2 "presence-ingest report: --offline-for keeps offline assets only: --state online contradicts it" \
  status --pg "$PG" --state online --offline-for 1h
expect 2 "presence-ingest report: --until does not apply to 'report status'" \
  status --pg "$PG" --until 2026-03-30T16:00:00Z
# The SQL functions refuse the same mistakes.
for q in "select * from asset_outages('2026-03-30', '2026-03-31', '-1 minute')" \
         "select * from asset_availability('UTC', '2026-03-30', '2026-03-31', 'fortnight')" \
         "select * from fleet_timeline('0', '2026-03-30', '2026-03-31')" \
         "select * from fleet_timeline('1 second', '2026-03-01', '2026-03-03')"; do
  if psql "$PG" -XAtq -c "$q" >/dev/null 2>"$WORK/err"; then fail "accepted: $q"; fi
  grep -q 'ERROR: ' "$WORK/err" || fail "$q: $(cat "$WORK/err")"
done
echo "ok: the functions refuse a negative debounce, an unknown period, a zero step, too many steps"
echo "all ok"
