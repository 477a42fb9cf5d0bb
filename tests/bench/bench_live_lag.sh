#!/usr/bin/env bash
# bench_live_lag.sh -- the rollup's lag under a live stream on a year of
# history (issue 22): ASSETS assets with EVENTS events each over the last
# year (as bench_history.sh), then `run` consumes a topic fed at RATE
# presences a second (a connect or a disconnect of a random asset, now, one
# kcat call a second) for SECONDS seconds per rate, its /metrics scraped
# every second: the highest and the median presence_rollup_lag_seconds per
# offered rate, and whether run kept up (consumer lag at the end).
#
# LIVE_SHAPE=sessions makes the stream a fleet's instead: each asset
# alternates a connect on a new connection and its disconnect, the events
# of a second spread over its milliseconds.
#
#   [LIVE_SHAPE=random|sessions] bash tests/bench/bench_live_lag.sh
#       [ASSETS] [EVENTS] [SECONDS] [RATE...]  (defaults 20000 200 60 100 300 1000)
set -euo pipefail
ASSETS=${1:-20000}
EVENTS=${2:-200}
SECONDS_PER=${3:-60}
shift 3 2>/dev/null || shift $#
RATES=("$@")
[ ${#RATES[@]} -gt 0 ] || RATES=(100 300 1000)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export PI_BINARY=${PI_BINARY:-$root/build/dev/cmd/presence-ingest/presence-ingest}
export PI_GEN=${PI_GEN:-$root/build/dev/tests/pi-gen}
source "$root/tests/bench/bench_lib.sh"
BIN=$PI_BINARY
trap '[ -n "${RUN_PID:-}" ] && kill -9 "$RUN_PID" 2>/dev/null; bench_cleanup' EXIT
bench_start 0
echo "assets=$ASSETS events=$EVENTS seconds=$SECONDS_PER rates=${RATES[*]} shape=${LIVE_SHAPE:-random} commit=$(git -C "$root" rev-parse --short HEAD) $(nproc) cpus"
newdb live
PG="$PG_ADMIN dbname=live"
psql "$PG" -XAtq -v ON_ERROR_STOP=1 >/dev/null <<SQL
INSERT INTO presences (id, connection_id, type, reason, asset, time, time_offset_minutes)
SELECT ((floor(extract(epoch FROM x.t) * 1000)::bigint - 1262304000000) << 22)
       + (x.a * 1000 + x.k * 2 + x.d) % 4194304,
       x.a::bigint * 100000 + x.k, CASE x.d WHEN 0 THEN 'connect' ELSE 'disconnect' END,
       'cold_boot', 'asset' || x.a, x.t, 0
FROM (SELECT a, k, d, now() - interval '365 days'
             + (k + 0.8 * random()) * (interval '365 days' / ($EVENTS / 2))
             + CASE d WHEN 1 THEN interval '10 minutes' + random() * interval '6 hours'
                      ELSE interval '0' END AS t
      FROM generate_series(1, $ASSETS) a, generate_series(0, $EVENTS / 2 - 1) k,
           generate_series(0, 1) d) x
WHERE x.t < now() - interval '1 hour';
SELECT presence_rollup_rebuild();
VACUUM ANALYZE;
SQL
echo "history: $(psql "$PG" -XAtq -c 'select count(*) from presences') rows"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
bash "$SUPPORT/kafka.sh" topic "$WORK/kafka" live 4 >/dev/null
"$BIN" run --brokers "$BROKERS" --topic live --group live --pg "$PG" \
  --stats-interval-ms 0 --log-level warn --http-listen "127.0.0.1:$port" 2>"$WORK/run.log" &
RUN_PID=$!
seq_no=0
for rate in "${RATES[@]}"; do
  : >"$WORK/lag"
  for s in $(seq "$SECONDS_PER"); do
    t0=$(date +%s.%N)
    python3 - "$rate" "$ASSETS" "$seq_no" "${LIVE_SHAPE:-random}" "$WORK/shape.json" >"$WORK/sec.jsonl" <<'PY'
import json, os, random, sys, time
rate, assets, base = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
shape, state_file = sys.argv[4], sys.argv[5]
state = json.load(open(state_file)) if os.path.exists(state_file) else {}
now = time.time()
for i in range(rate):
    a = random.randint(1, assets)
    if shape == "sessions":
        # a connect on a new connection, then its disconnect, in turn
        k = state.get(str(a), 0)
        state[str(a)] = k + 1
        kind = "disconnect" if k % 2 else "connect"
        conn = a * 100000 + 50000 + k // 2
        t = now + i / rate
    else:
        kind = random.choice(["connect", "disconnect"])
        conn = a * 100000 + 99000 + (base + i) % 900
        t = now
    ms = int(t * 1000)
    print(json.dumps({"id_str": str(((ms - 1262304000000) << 22) + (base + i) % 4194304),
                      "connection_id_str": str(conn),
                      "type": kind, "reason": "cold_boot", "asset": "asset%d" % a,
                      "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))
                              + ".%03dZ" % (ms % 1000)}))
json.dump(state, open(state_file, "w"))
PY
    seq_no=$((seq_no + rate))
    kcat -P -b "$BROKERS" -t live -l "$WORK/sec.jsonl"
    curl -sf --max-time 1 "http://127.0.0.1:$port/metrics" |
      awk '/^presence_rollup_lag_seconds / { print $2 }' >>"$WORK/lag" || true
    sleep "$(awk -v t0="$t0" -v now="$(date +%s.%N)" 'BEGIN { d = 1 - (now - t0); print (d > 0 ? d : 0) }')"
  done
  echo "rate $rate/s: rollup lag max $(sort -n "$WORK/lag" | tail -1) s, median $(median <"$WORK/lag") s over $(wc -l <"$WORK/lag") scrapes;" \
    "pending at the end: $(psql "$PG" -XAtq -c 'select count(*) from presence_dirty') statements"
done
