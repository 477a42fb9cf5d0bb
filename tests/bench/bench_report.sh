#!/usr/bin/env bash
# bench_report.sh -- the connectivity reports on a generated fleet, timed
# against SELECT count(*) FROM presences in the same run (bench_report).
#
#   bash tests/bench/bench_report.sh [EVENTS] [ASSETS] [ROUNDS] [FILTER]
#
# Defaults: 10 000 000 presences, 100 000 assets, 5 rounds. Starts its own
# PostgreSQL with the test harness (or uses $BENCH_PG, a conninfo whose
# database is replaced), loads `pi-gen EVENTS --shape fleet --assets ASSETS`
# through `presence-ingest load` (binary COPY), lets the rollup catch up
# (presence_rollup_refresh, as `run` does), VACUUM ANALYZE, then runs
# bench_report (BENCH_KEEP=1 leaves the server running, to EXPLAIN;
# FILTER: only the reports whose name contains it). Needs
# the release build:
#   cmake --preset release && cmake --build --preset release
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
EVENTS=${1:-10000000}
ASSETS=${2:-100000}
ROUNDS=${3:-5}
FILTER=${4:-}
BUILD=${PI_BUILD:-$root/build/release}
BIN=$BUILD/cmd/presence-ingest/presence-ingest
GEN=$BUILD/tests/pi-gen
BENCH=$BUILD/tests/bench/bench_report
WORK=${BENCH_DIR:-/tmp/bench_report}
for f in "$BIN" "$GEN" "$BENCH"; do
  [ -x "$f" ] || { echo "missing $f: build the release preset" >&2; exit 2; }
done

started=0
if [ -z "${BENCH_PG:-}" ]; then
  bash "$root/tests/support/pg.sh" start "$WORK/pg" >/dev/null
  started=1
  BENCH_PG=$(cat "$WORK/pg/conninfo")
fi
stop() { [ "$started" = 0 ] || [ -n "${BENCH_KEEP:-}" ] || bash "$root/tests/support/pg.sh" stop "$WORK/pg" >/dev/null; }
trap stop EXIT

DB=bench_report
psql "$BENCH_PG" -XAtq -c "drop database if exists $DB with (force)" -c "create database $DB"
PG="$BENCH_PG dbname=$DB"
"$BIN" migrate --pg "$PG" >/dev/null
t0=$(date +%s)
"$GEN" "$EVENTS" --shape fleet --assets "$ASSETS" |
  "$BIN" load --pg "$PG" --batch-size 20000 - 2>/dev/null
echo "loaded in $(($(date +%s) - t0)) s"
# What `run` does every second: the rollup catches up with the load.
t0=$(date +%s)
psql "$PG" -XAtq -c "select presence_rollup_refresh()" >/dev/null
echo "rollup caught up in $(($(date +%s) - t0)) s"
psql "$PG" -XAtq -c "vacuum analyze"
psql "$PG" -XAt -c "select pg_size_pretty(sum(pg_total_relation_size(partition::regclass))) || ' (presences: partitions and indexes)' from presence_partitions" \
  -c "select pg_size_pretty(sum(pg_total_relation_size(t::regclass))) || ' (rollup)' from unnest(array['asset_state', 'asset_days', 'asset_day_spans', 'asset_open_sessions', 'presence_reason_minutes']) t"
"$BENCH" "$PG" "$ROUNDS" "$FILTER"
