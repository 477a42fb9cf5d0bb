#!/usr/bin/env bash
# bench_tx_prologue.sh -- what issue 25's per-transaction prologue costs the
# writer (BEGIN; SET LOCAL x4; CREATE TEMP TABLE IF NOT EXISTS x2 in every
# batch, instead of session settings and tables made once per connection,
# so that it works through PgBouncer's transaction pooling): `load` of the
# same file by a baseline binary and by the new one, in one run.
#
#   bash tests/bench/bench_tx_prologue.sh BASE_BINARY NEW_BINARY \
#        [MESSAGES] [ROUNDS] [BATCH_SIZES]    (defaults 200000, 5, "100 5000")
#
# Starts its own PostgreSQL (no Kafka); per round and batch size, each into
# an empty database, BASE then NEW, the order alternating from round to
# round. Prints msgs/s of each and NEW/BASE, then the medians. Build both
# the same way (same preset or flags) from the two commits to compare.
set -euo pipefail
BASE=${1:?BASE_BINARY}
NEW=${2:?NEW_BINARY}
N=${3:-200000}
ROUNDS=${4:-5}
SIZES=${5:-"100 5000"}
here=$(cd "$(dirname "$0")" && pwd)
SUPPORT=$here/../support
GEN=${PI_GEN:-$here/../../build/dev/tests/pi-gen}
WORK=$(mktemp -d /tmp/bench_tx_prologue.XXXXXX)
trap 'bash "$SUPPORT/pg.sh" stop "$WORK/pg" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
bash "$SUPPORT/pg.sh" start "$WORK/pg" >/dev/null
PG_ADMIN=$(cat "$WORK/pg/conninfo")
"$GEN" "$N" >"$WORK/in.txt"
now() { date +%s.%N; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
db=0
# load_rate BIN BATCH: msgs/s of one load into a new database.
load_rate() {
  local s e name="b$((db += 1))"
  psql "$PG_ADMIN" -XAtq -c "create database $name" >/dev/null
  "$1" migrate --pg "$PG_ADMIN dbname=$name" >/dev/null
  s=$(now)
  "$1" load --pg "$PG_ADMIN dbname=$name" --batch-size "$2" --log-level warn \
    "$WORK/in.txt" >/dev/null
  e=$(now)
  psql "$PG_ADMIN" -XAtq -c "drop database $name" >/dev/null
  awk -v n="$N" -v s="$s" -v e="$e" 'BEGIN { printf "%.0f", n / (e - s) }'
}
echo "messages=$N rounds=$ROUNDS nproc=$(nproc) load average $(cut -d' ' -f1-3 /proc/loadavg)"
for b in $SIZES; do
  : >"$WORK/ratios"
  for r in $(seq "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then
      base=$(load_rate "$BASE" "$b"); new=$(load_rate "$NEW" "$b")
    else
      new=$(load_rate "$NEW" "$b"); base=$(load_rate "$BASE" "$b")
    fi
    ratio=$(awk -v a="$new" -v b="$base" 'BEGIN { printf "%.3f", a / b }')
    echo "$ratio" >>"$WORK/ratios"
    echo "batch-size=$b round=$r base=$base msgs/s new=$new msgs/s new/base=$ratio"
  done
  echo "batch-size=$b median new/base=$(median <"$WORK/ratios") (load average $(cut -d' ' -f1-3 /proc/loadavg))"
done
