#!/usr/bin/env bash
# The fleet gauges (presence_fleet_assets{state}, presence_fleet_status_changes_total)
# with two `run` instances of one group: exactly one publishes them, with the
# values the database holds (asset_status by state, the last seq of
# asset_status_changes), the other publishes their HELP/TYPE lines only;
# when the publisher stops, the other takes over with the same values.
source "$(dirname "$0")/lib.sh"

N=3000
setup 2
"$PI_GEN" "$N" >"$WORK/in.txt"
produce "$WORK/in.txt"
ports=$(python3 -c 'import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
read -r PA PB <<<"$ports"
start_service a --http-listen "127.0.0.1:$PA" --rollup-interval-ms 200
A=$SERVICE_PID
start_service b --http-listen "127.0.0.1:$PB" --rollup-interval-ms 200
B=$SERVICE_PID
wait_for "select coalesce(sum(next_offset), 0) from ingest_offsets where consumer_group = '$GROUP'" "$(log_end_total)" 120
wait_for "select count(*) from presence_dirty" 0 60

# gauges PORT: "online offline declared changes" as published, "-" when not.
gauges() {
  curl -sf --max-time 5 "http://127.0.0.1:$1/metrics" | awk '
    /^presence_fleet_assets\{state="online"\}/ { on = $2; n++ }
    /^presence_fleet_assets\{state="offline"\}/ { off = $2; n++ }
    /^presence_fleet_assets\{state="declared"\}/ { dec = $2; n++ }
    /^presence_fleet_status_changes_total / { ch = $2; n++ }
    /^# TYPE presence_fleet_assets gauge$/ { t++ }
    /^# TYPE presence_fleet_status_changes_total counter$/ { t++ }
    END { if (t != 2) print "no-type"; else if (n == 0) print "-"; else print on, off, dec, ch }'
}
want=$(sql "select (select count(*) from asset_status where state = 'online') || ' ' ||
                   (select count(*) from asset_status where state = 'offline') || ' ' ||
                   (select count(*) from asset_status where state = 'declared') || ' ' ||
                   (select max(seq) from asset_status_changes)")
[ "$(sql "select count(*) from asset_status_changes")" -gt 0 ] || fail "no change recorded"
ga= gb=
for _ in $(seq 100); do
  ga=$(gauges "$PA") gb=$(gauges "$PB")
  { [ "$ga" = "$want" ] && [ "$gb" = - ]; } || { [ "$gb" = "$want" ] && [ "$ga" = - ]; } && break
  sleep 0.1
done
if [ "$ga" = "$want" ] && [ "$gb" = - ]; then
  leader=$A other=$PB
elif [ "$gb" = "$want" ] && [ "$ga" = - ]; then
  leader=$B other=$PA
else
  fail "one instance publishing '$want' expected: a '$ga', b '$gb'"
fi
log "ok: one instance publishes the fleet gauges ($want), the other none"

stop_service "$leader"
got=
for _ in $(seq 100); do
  got=$(gauges "$other")
  [ "$got" = "$want" ] && break
  sleep 0.1
done
[ "$got" = "$want" ] || fail "the other instance did not take over: '$got', want '$want'"
log "ok: the other instance took over the fleet gauges"
