#!/usr/bin/env bash
# bench_legacy_move.sh -- `migrate --move-legacy` (migration 0010) on a
# presences_legacy of ROWS rows (six months of 2025, 20 000 assets, put
# into legacy directly: the rollup is not involved), while a probe inserts
# one row every 20 ms through presences (into legacy's range, a month before
# its first row). Per round: the move's time and copy rate; how long the
# swap held presences locked (presence_legacy_move.swap_ms); the baseline
# of the same round: the time one validation scan of legacy takes under
# ACCESS EXCLUSIVE (ADD CONSTRAINT CHECK on it, rolled back: what narrowing
# legacy's bound costs, once per period); and the probe's insert latency
# in the 5 s before the move and during it (median, max).
#
#   bash tests/bench/bench_legacy_move.sh [ROWS] [ROUNDS] [BATCH]
#                                 (defaults 2000000 3 20000)
set -euo pipefail
ROWS=${1:-2000000}
ROUNDS=${2:-3}
BATCH=${3:-20000}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${PI_BINARY:-$root/build/release/cmd/presence-ingest/presence-ingest}
[ -x "$BIN" ] || BIN=$root/build/dev/cmd/presence-ingest/presence-ingest
WORK=$(mktemp -d /tmp/bench_legacy_move.XXXXXX)
trap 'jobs -p | xargs -r kill 2>/dev/null || true; bash "$root/tests/support/pg.sh" stop "$WORK/pg" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
bash "$root/tests/support/pg.sh" start "$WORK/pg" >/dev/null
PG_ADMIN=$(cat "$WORK/pg/conninfo")
now() { date +%s.%N; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
echo "rows=$ROWS rounds=$ROUNDS batch=$BATCH commit=$(git -C "$root" rev-parse --short HEAD) $(nproc) cpus; load: $(uptime | sed 's/.*load/load/')"
echo "round  move_s  copy_rows/s  swap_ms  scan_ms  swap/scan  probe_ms_before(median,max)  probe_ms_during(median,max)"
for r in $(seq 1 "$ROUNDS"); do
  DB=move$r
  PG="$PG_ADMIN dbname=$DB"
  psql "$PG_ADMIN" -XAtq -c "create database $DB"
  "$BIN" migrate --pg "$PG" >/dev/null
  psql "$PG" -XAtq -v ON_ERROR_STOP=1 >/dev/null <<SQL
alter table presences detach partition presences_legacy;
alter table presences_legacy drop constraint presences_legacy_range;
insert into presences_legacy (id, connection_id, type, reason, asset, time,
  time_offset_minutes, kafka_topic, kafka_partition, kafka_offset)
select ((extract(epoch from s.t) * 1000)::bigint - 1262304000000) << 22
         | (s.g % 4096),
       1000 + s.g / 2, case when s.g % 2 = 0 then 'connect' else 'disconnect' end,
       'modem_reset', 'asset-' || (s.g / 2 % 20000), s.t, 60, 'bench', 0, s.g
from (select g, timestamptz '2025-04-01 00:00:00+00'
                + g * (interval '1 second' * (182 * 86400.0 / $ROWS)) as t
      from generate_series(0, $ROWS - 1) g) s;
select format('alter table presences_legacy add constraint presences_legacy_range check (id < %s)', max(id) + 1) from presences_legacy \gexec
select format('alter table presences attach partition presences_legacy for values from (minvalue) to (%s)', max(id) + 1) from presences_legacy \gexec
vacuum analyze presences_legacy;
SQL
  # The baseline: one validation scan of legacy under ACCESS EXCLUSIVE.
  s=$(now)
  psql "$PG" -XAtq -v ON_ERROR_STOP=1 -c "begin" -c "alter table presences_legacy add constraint bench_scan check (id < 9223372036854775807)" -c "rollback" >/dev/null
  e=$(now)
  scan_ms=$(awk -v s="$s" -v e="$e" 'BEGIN { printf "%.1f", (e - s) * 1000 }')
  # The probe: one insert every 20 ms, its wall time and latency.
  first=$((($(date -ud 2025-01-10 +%s) * 1000 - 1262304000000) << 22))
  for i in $(seq 0 20000); do
    echo "with i as (insert into presences (id, connection_id, type, reason, asset, time, time_offset_minutes) values ($((first + (i << 22))), 7, 'connect', 'probe', 'probe', '2025-01-10'::timestamptz + interval '1 ms' * $i, 0) returning 1) select extract(epoch from clock_timestamp()) from i;"
    echo '\! sleep 0.02'
  done >"$WORK/probe.sql"
  (echo '\timing on'; cat "$WORK/probe.sql") | psql "$PG" -XAtq >"$WORK/probe.out" 2>&1 &
  P=$!
  sleep 5
  s=$(now)
  "$BIN" migrate --pg "$PG" --move-legacy --move-batch "$BATCH" >"$WORK/move.log" 2>&1 || { cat "$WORK/move.log" >&2; exit 1; }
  e=$(now)
  sleep 1
  kill "$P" 2>/dev/null || true
  wait "$P" 2>/dev/null || true
  swap_ms=$(psql "$PG" -XAtq -c "select round(swap_ms::numeric, 1) from presence_legacy_move")
  left=$(psql "$PG" -XAtq -c "select count(*) from pg_class where relname = 'presences_legacy'")
  [ "$left" = 0 ] || { echo "legacy left after the move" >&2; exit 1; }
  awk '/^[0-9]+\.[0-9]+$/ { t = $1; next } /^Time:/ { if (t) print t, $2; t = 0 }' "$WORK/probe.out" >"$WORK/lat"
  before=$(awk -v s="$s" '$1 < s { print $2 }' "$WORK/lat" | median)
  before_max=$(awk -v s="$s" '$1 < s { print $2 }' "$WORK/lat" | sort -n | tail -1)
  during_med=$(awk -v s="$s" -v e="$e" '$1 >= s && $1 <= e { print $2 }' "$WORK/lat" | median)
  during_max=$(awk -v s="$s" -v e="$e" '$1 >= s && $1 <= e { print $2 }' "$WORK/lat" | sort -n | tail -1)
  awk -v r="$r" -v s="$s" -v e="$e" -v n="$ROWS" -v sw="$swap_ms" -v sc="$scan_ms" \
    -v b="$before" -v bx="$before_max" -v dm="$during_med" -v dx="$during_max" \
    'BEGIN { printf "%5d  %6.1f  %11.0f  %7.1f  %7.1f  %9.4f  %s, %s  %s, %s\n", r, e - s, n / (e - s), sw, sc, sw / sc, b, bx, dm, dx }'
  grep -E "ready|swapped|done" "$WORK/move.log" | sed 's/^/       /'
  psql "$PG_ADMIN" -XAtq -c "drop database $DB" >/dev/null
done
