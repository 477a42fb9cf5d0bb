#!/usr/bin/env bash
# Through PgBouncer in transaction pooling (issue 25): Debian's pgbouncer,
# a pool of 2 server connections for more clients (load's writers; run's 2
# writers, consumer, rollup, partition keeper and readiness probe; replay;
# report), and another client dirtying those server connections with
# session settings all along. load, then run (PgBouncer killed and started
# again mid-drain), then replay: every presence and every reject stored
# once, the group's offsets those of the last presences; the reports
# through the pool are the same bytes as directly. What makes each
# session-level feature safe is in docs/packaging.md (PgBouncer).
source "$(dirname "$0")/lib.sh"
source "$PI_SUPPORT_DIR/common.sh"
# PgBouncer runs as a daemon: a test ended by ctest's timeout (SIGTERM)
# must still reach the exit trap that stops it.
trap 'exit 143' TERM INT
PGBOUNCER=${PGBOUNCER:-/usr/sbin/pgbouncer}
[ -x "$PGBOUNCER" ] || fail "pgbouncer missing (bash deploy/install-deps.sh)"

N=6000 GOOD=5880 BAD=120 # --bad-every 50
setup 3
"$PI_GEN" "$N" --bad-every 50 >"$WORK/all.txt"
head -n 3000 "$WORK/all.txt" >"$WORK/a.txt"
tail -n +3001 "$WORK/all.txt" >"$WORK/b.txt"

# PgBouncer will not run as root: its files belong to postgres.
PGB_DIR=$(mktemp -d /tmp/pi_pgbouncer.XXXXXX)
at_exit "rm -rf '$PGB_DIR'"
PG_PORT=$(sed -n 's/.*port=\([0-9]*\).*/\1/p' <<<"$PG_ADMIN")
PGB_PORT=$(free_ports 1)
cat >"$PGB_DIR/pgbouncer.ini" <<INI
[databases]
$DB = host=127.0.0.1 port=$PG_PORT dbname=$DB user=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir =
auth_type = trust
auth_file = $PGB_DIR/userlist.txt
pool_mode = transaction
default_pool_size = 2
max_client_conn = 200
logfile = $PGB_DIR/pgbouncer.log
pidfile = $PGB_DIR/pgbouncer.pid
INI
echo '"postgres" ""' >"$PGB_DIR/userlist.txt"
chown -R postgres "$PGB_DIR"
pgb_start() {
  runuser -u postgres -- "$PGBOUNCER" -d "$PGB_DIR/pgbouncer.ini" ||
    fail "pgbouncer did not start: $(tail -n 5 "$PGB_DIR/pgbouncer.log")"
  local i
  for i in $(seq 50); do port_in_use "$PGB_PORT" && return 0; sleep 0.1; done
  fail "pgbouncer does not listen on $PGB_PORT"
}
pgb_kill() { kill -9 "$(cat "$PGB_DIR/pgbouncer.pid")"; rm -f "$PGB_DIR/pgbouncer.pid"; }
at_exit '[ -f "$PGB_DIR/pgbouncer.pid" ] && kill -9 "$(cat "$PGB_DIR/pgbouncer.pid")"'
pgb_start
PGB="host=127.0.0.1 port=$PGB_PORT user=postgres dbname=$DB"

# Another client leaves session settings on the pool's server connections,
# all along: the ones PgBouncer tracks (DateStyle, TimeZone) and some it
# does not (extra_float_digits, IntervalStyle, work_mem).
(
  while :; do
    psql "$PGB" -XAtq -c "SET DateStyle = 'SQL, DMY'; SET TimeZone = 'Asia/Tokyo';
      SET extra_float_digits = -3; SET IntervalStyle = 'sql_standard';
      SET work_mem = '1MB'; SELECT pg_sleep(0.02)" >/dev/null 2>&1 || true
  done
) &
dirtier=$!
SERVICE_PIDS+=("$dirtier")

# load: the first half, 2 writers.
"$PI_BINARY" load --pg "$PGB" --writers 2 --batch-size 250 "$WORK/a.txt" \
  >"$WORK/load.out" 2>"$WORK/load.log" || fail "load: $(tail -n 3 "$WORK/load.log")"
grep -q "^messages=3000 stored=2940 duplicates=0 conflicts=0 rejected=60 " "$WORK/load.out" ||
  fail "load: $(cat "$WORK/load.out")"
log "load through the pool: $(cat "$WORK/load.out")"

# run: everything (the first half again: duplicates), PgBouncer killed
# mid-drain and started again.
port=$(free_ports 1)
produce "$WORK/a.txt"
start_service svc --pg "$PGB" --writers 2 --batch-size 100 --linger-ms 20 \
  --backoff-max-ms 500 --rollup-interval-ms 200 --partition-check-ms 500 \
  --http-listen "127.0.0.1:$port" --health-stall-ms 3000
produce "$WORK/b.txt"
wait_for "select count(*) > 3000 from presences" t 60
pgb_kill
log "pgbouncer killed at $(sql "select count(*) from presences") presences"
sleep 2
pgb_start
wait_for "select count(*) from presences" "$GOOD" 120
wait_for "select count(*) from presence_rejects where topic = '$TOPIC'" "$BAD" 60
[ "$(sql "select count(*), count(distinct id) from presences")" = "$GOOD|$GOOD" ] ||
  fail "presences not exactly once"
[ "$(sql "select count(*), count(distinct (topic, partition, \"offset\", element))
          from presence_rejects")" = "$((BAD + 60))|$((BAD + 60))" ] ||
  fail "rejects not exactly once (load's 60 are under the file's name)"
check_offsets_match
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")
[ "$code" = 200 ] || fail "/readyz through the pool: $code"
# The service's rollup ran through the pool (nothing else fills it yet).
wait_for "select count(*) > 0 from asset_state" t 60
stop_service "$SERVICE_PID"

# replay: all of it again, through the pool; nothing new.
"$PI_BINARY" replay --brokers "$BROKERS" --topic "$TOPIC" --pg "$PGB" \
  --batch-size 300 --progress never >"$WORK/replay.out" 2>"$WORK/replay.log" ||
  fail "replay: $(tail -n 3 "$WORK/replay.log")"
read -r m s d c r k < <(sed 's/[a-z]*=//g' "$WORK/replay.out")
[ "$m" = "$N" ] && [ "$s" = 0 ] && [ $((d + r)) = "$m" ] ||
  fail "replay: $(cat "$WORK/replay.out")"
[ "$(sql "select count(*) from presences")" = "$GOOD" ] || fail "replay stored more"

# report: the same bytes through the pool (dirty server connections) as
# directly, in every kind and format that prints values a setting changes.
# The data's days, whole (uptime makes a row a day and asset).
read -r since until < <(sql "select to_char(min(time) at time zone 'UTC', 'YYYY-MM-DD\"T00:00:00Z\"'),
  to_char(max(time) at time zone 'UTC' + interval '1 day', 'YYYY-MM-DD\"T00:00:00Z\"')
  from presences" | tr '|' ' ')
span="--since $since --until $until"
for args in "status --format json --tz Europe/Paris" "sessions --format csv $span" \
  "uptime --format csv $span --tz America/New_York" "reasons --format json $span"; do
  # shellcheck disable=SC2086
  "$PI_BINARY" report $args --pg "$PG" >"$WORK/direct.out" 2>"$WORK/report.log" ||
    fail "report $args (direct): $(cat "$WORK/report.log")"
  for i in 1 2 3; do
    # shellcheck disable=SC2086
    "$PI_BINARY" report $args --pg "$PGB" >"$WORK/pooled.out" 2>"$WORK/report.log" ||
      fail "report $args (pooled): $(cat "$WORK/report.log")"
    cmp -s "$WORK/direct.out" "$WORK/pooled.out" ||
      fail "report $args differs through the pool: $(diff "$WORK/direct.out" "$WORK/pooled.out" | head -n 4)"
  done
  [ "$(wc -l <"$WORK/direct.out")" -gt 2 ] || fail "report $args: $(cat "$WORK/direct.out")"
done
kill "$dirtier" 2>/dev/null || true
log "ok: through PgBouncer (transaction pooling, pool of 2, dirty server" \
  "connections, killed mid-drain): load, run, replay: $GOOD presences and" \
  "$BAD rejects once each; the reports equal to direct ones"
