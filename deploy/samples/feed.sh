#!/bin/sh
# feed.sh -- the compose demo's messages on standard output (deploy/local.sh
# feeds a larger generated fleet instead), one value per line: the
# real CloudConnect bodies next to this script, then a connect/disconnect
# pair for each of ten assets over the last ten minutes (ids carry
# milliseconds since 2010-01-01 << 22, as CloudConnect's do). POSIX sh with
# 64-bit arithmetic (dash, bash, busybox), so the Kafka image can run it.
set -eu
dir=$(dirname "$0")
cat "$dir"/*.json
EPOCH_MS=1262304000000
now_ms=$(($(date +%s) * 1000))
n=0
while [ $n -lt 10 ]; do
    asset=$(printf '35615606035%04d' $n)
    t0=$((now_ms - 60000 * (10 - n)))
    conn=$(((t0 - EPOCH_MS) << 22 | (2 * n)))
    for k in 0 1; do
        if [ $k -eq 0 ]; then
            typ=connect reason=idle_out t=$t0
        else
            typ=disconnect reason=closed_by_device t=$((t0 + 30000))
        fi
        id=$(((t - EPOCH_MS) << 22 | (2 * n + k + 1)))
        when=$(date -u -d "@$((t / 1000))" +%Y-%m-%dT%H:%M:%SZ)
        printf '{"meta":{"account":"local","event":"presence"},"payload":{"id":%s,"id_str":"%s","connection_id":%s,"connection_id_str":"%s","asset":"%s","type":"%s","reason":"%s","time":"%s"}}\n' \
            "$id" "$id" "$conn" "$conn" "$asset" "$typ" "$reason" "$when"
    done
    n=$((n + 1))
done
