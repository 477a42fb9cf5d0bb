#!/usr/bin/env bash
# bench_backfill.sh -- the backfill growth curve (issue 22): CHUNKS chunks of
# ROWS presences of last year's times (pi-gen --ids time: ids follow times,
# four a second, chunk after chunk) loaded by `load` into a fresh migrated
# database (default PostgreSQL settings, fsync on); rows/s per chunk and the
# last/first ratio; then `retention --keep` with the cutoff at nine tenths of
# the loaded months, and the partitions it dropped against those wholly
# before the cutoff.
#
#   bash tests/bench/bench_backfill.sh [CHUNKS] [ROWS] [START] [PERIOD]
#                               [CONTROL]
#                               (defaults 10 2000000 2025-01-01 '1 month' 0)
# PERIOD: presence_partitioning.period for the run (e.g. '7 days'), to
# compare partition periods. CONTROL > 0: after each chunk, its first
# CONTROL rows are loaded again into an empty migrated database (a baseline
# taken at the same moment, so that a machine whose load changes during the
# run does not pass for growth): each chunk's rate is also given against
# its control's, and the last/first ratio of those.
set -euo pipefail
CHUNKS=${1:-10}
ROWS=${2:-2000000}
START=${3:-2025-01-01}
PERIOD=${4:-1 month}
CONTROL=${5:-0}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${PI_BINARY:-$root/build/release/cmd/presence-ingest/presence-ingest}
[ -x "$BIN" ] || BIN=$root/build/dev/cmd/presence-ingest/presence-ingest
GEN=${PI_GEN:-$root/build/release/tests/pi-gen}
[ -x "$GEN" ] || GEN=$root/build/dev/tests/pi-gen
WORK=$(mktemp -d /tmp/bench_backfill.XXXXXX)
trap 'bash "$root/tests/support/pg.sh" stop "$WORK/pg" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
bash "$root/tests/support/pg.sh" start "$WORK/pg" >/dev/null
PG_ADMIN=$(cat "$WORK/pg/conninfo")
PG="$PG_ADMIN dbname=backfill"
psql "$PG_ADMIN" -XAtq -c "create database backfill"
"$BIN" migrate --pg "$PG" >/dev/null
psql "$PG" -XAtq -c "update presence_partitioning set period = '$PERIOD'"
now() { date +%s.%N; }
echo "chunks=$CHUNKS rows=$ROWS start=$START period=$PERIOD commit=$(git -C "$root" rev-parse --short HEAD) $(nproc) cpus"
first_id=$((($(date -ud "$START" +%s) * 1000 - 1262304000000) << 22))
step=$(( (ROWS * 250) << 22 )) # pi-gen --ids time: 250 ms apart
first_rate=
for i in $(seq 0 $((CHUNKS - 1))); do
  "$GEN" "$ROWS" --first-id $((first_id + i * step)) --ids time >"$WORK/chunk.jsonl"
  s=$(now)
  "$BIN" load --pg "$PG" --log-level debug "$WORK/chunk.jsonl" >"$WORK/load.out" 2>"$WORK/load.err" ||
    { cat "$WORK/load.err" >&2; exit 1; }
  e=$(now)
  rate=$(awk -v n="$ROWS" -v s="$s" -v e="$e" 'BEGIN { printf "%.0f", n / (e - s) }')
  [ -n "$first_rate" ] || first_rate=$rate
  line="chunk $((i + 1)): $rate rows/s ($(awk -v a="$rate" -v b="$first_rate" 'BEGIN{printf "%.2f", a/b}') of the first)  $(grep -c 'created partition' "$WORK/load.err" || true) partitions created"
  if [ "$CONTROL" -gt 0 ]; then
    psql "$PG_ADMIN" -XAtq -c "drop database if exists control" -c "create database control"
    "$BIN" migrate --pg "$PG_ADMIN dbname=control" >/dev/null
    psql "$PG_ADMIN dbname=control" -XAtq -c "update presence_partitioning set period = '$PERIOD'"
    head -n "$CONTROL" "$WORK/chunk.jsonl" >"$WORK/control.jsonl"
    s=$(now)
    "$BIN" load --pg "$PG_ADMIN dbname=control" "$WORK/control.jsonl" >/dev/null 2>"$WORK/control.err" ||
      { cat "$WORK/control.err" >&2; exit 1; }
    e=$(now)
    crate=$(awk -v n="$CONTROL" -v s="$s" -v e="$e" 'BEGIN { printf "%.0f", n / (e - s) }')
    rel=$(awk -v a="$rate" -v b="$crate" 'BEGIN { printf "%.3f", a / b }')
    [ -n "${first_rel:-}" ] || first_rel=$rel
    line="$line  control $crate rows/s, chunk/control $rel ($(awk -v a="$rel" -v b="$first_rel" 'BEGIN{printf "%.2f", a/b}') of the first's)"
  fi
  echo "$line"
done
psql "$PG_ADMIN" -XAtq -c "drop database if exists control"
psql "$PG" -XAtq -c "select 'legacy ' || (select count(*) from presences_legacy) || ', default ' || (select count(*) from presences_default) || ', partitions holding rows ' || (select count(distinct tableoid) from presences)"
# The cutoff at nine tenths of the loaded range: the partitions wholly
# before it go.
mid=$(psql "$PG" -XAtq -c "select extract(epoch from (min(time) + (max(time) - min(time)) * 0.9))::bigint from presences")
KEEP=$(( ($(date -u +%s) - mid) / 86400 ))d
older=$(psql "$PG" -XAtq -c "select coalesce(string_agg(partition, ' ' order by partition), '') from presence_partitions where not is_default and from_id is not null and to_time <= now() - interval '${KEEP%d} days' and exists (select 1 from presences)")
s=$(now)
"$BIN" retention --pg "$PG" --keep "$KEEP" >"$WORK/ret" 2>&1
e=$(now)
dropped=$( (grep -o '^dropped presences_p[0-9_]*' "$WORK/ret" || true) | sed 's/^dropped //' | sort | tr '\n' ' ' | sed 's/ $//')
echo "retention --keep $KEEP: dropped [$dropped] in $(awk -v s="$s" -v e="$e" 'BEGIN{printf "%.1f", e-s}') s; partitions wholly before the cutoff: [$older]"
[ "$dropped" = "$older" ] && echo "retention: exactly the partitions older than --keep" || echo "retention: MISMATCH"
