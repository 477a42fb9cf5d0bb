#!/usr/bin/env bash
# bench_history.sh -- the rollup's catch-up on a year of history (issue 22):
# ASSETS assets holding EVENTS events each, spread over the last year (one
# session = a connect and, most of the time, its disconnect; some lost
# disconnects), written as a backfill, folded; then FRESH fresh events (one
# per asset: a connect on a new connection, now) folded by
# presence_rollup_refresh(), timed. Done for each EVENTS given, in one
# database server, ROUNDS times each (medians), and the ratio of each
# median to the first's. With PROP_SEEDS, also runs that many more seeds of
# the property test (tests/integration/data/rollup_property.sql).
# HISTORY_DAYS (default 365) sets the span the history is spread over:
# 30 against 365 compares a young database (two monthly partitions) with
# a year's (thirteen) at the same events per asset.
#
#   bash tests/bench/bench_history.sh [ASSETS] [FRESH] [ROUNDS] [EVENTS...]
#                                     (defaults 20000 10000 3 20 200)
#
# Starts its own PostgreSQL (tests/support/pg.sh, default settings, fsync
# on). History rows are made by SQL (generate_series) rather than by `load`:
# the rollup's cost is what is measured, not the writer's.
set -euo pipefail
ASSETS=${1:-20000}
FRESH=${2:-10000}
ROUNDS=${3:-3}
DAYS=${HISTORY_DAYS:-365}
shift 3 2>/dev/null || shift $#
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(20 200)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${PI_BINARY:-$root/build/release/cmd/presence-ingest/presence-ingest}
[ -x "$BIN" ] || BIN=$root/build/dev/cmd/presence-ingest/presence-ingest
WORK=$(mktemp -d /tmp/bench_history.XXXXXX)
trap 'bash "$root/tests/support/pg.sh" stop "$WORK/pg" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
bash "$root/tests/support/pg.sh" start "$WORK/pg" >/dev/null
PG_ADMIN=$(cat "$WORK/pg/conninfo")
now() { date +%s.%N; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
echo "assets=$ASSETS fresh=$FRESH rounds=$ROUNDS events=${SIZES[*]} days=$DAYS commit=$(git -C "$root" rev-parse --short HEAD) $(nproc) cpus"

# history DB EVENTS: a new migrated database with the history folded.
history() {
  local db=$1 ev=$2 s e
  psql "$PG_ADMIN" -XAtq -c "create database $db" >/dev/null
  "$BIN" migrate --pg "$PG_ADMIN dbname=$db" >/dev/null
  s=$(now)
  # Sessions of asset a: EVENTS/2, evenly over the year before now with a
  # random start within their slot; disconnect 10 min - 6 h later (lost 1
  # in 20). Ids on the scheme (the time's millisecond, then a sequence).
  psql "$PG_ADMIN dbname=$db" -XAtq -v ON_ERROR_STOP=1 <<SQL
INSERT INTO presences (id, connection_id, type, reason, asset, time,
                       time_offset_minutes)
SELECT ((floor(extract(epoch FROM x.t) * 1000)::bigint - 1262304000000) << 22)
       + (x.a * 1000 + x.k * 2 + x.d) % 4194304,
       x.a::bigint * 100000 + x.k, CASE x.d WHEN 0 THEN 'connect' ELSE 'disconnect' END,
       CASE x.d WHEN 0 THEN 'cold_boot' ELSE 'socket_closed' END,
       'asset' || x.a, x.t, 0
FROM (SELECT a, k, d,
             now() - interval '$DAYS days'
             + (k + 0.8 * random()) * (interval '$DAYS days' / ($ev / 2))
             + CASE d WHEN 1 THEN interval '10 minutes'
                                  + random() * interval '6 hours'
                      ELSE interval '0' END AS t
      FROM generate_series(1, $ASSETS) a,
           generate_series(0, $ev / 2 - 1) k,
           generate_series(0, 1) d) x
WHERE x.d = 0 OR random() > 0.05;
SELECT presence_rollup_rebuild();
VACUUM ANALYZE;
SQL
  e=$(now)
  echo "  history: $(psql "$PG_ADMIN dbname=$db" -XAtq -c 'select count(*) from presences') rows loaded and rebuilt in $(awk -v s="$s" -v e="$e" 'BEGIN{printf "%.1f", e-s}') s"
}

# fresh DB ROUND [whole]: FRESH assets get a connect on a new connection,
# now; prints the seconds presence_rollup_refresh() takes to fold them, or
# with `whole`, the seconds 0005's whole recomputation of the same assets
# takes (presence_rollup_assets, the catch-up before 0007: the baseline).
fresh() {
  local db=$1 r=$2 s e sql="select presence_rollup_refresh()"
  [ "${3:-}" != whole ] ||
    sql="set jit = off; select presence_rollup_assets(array(select 'asset' || a from generate_series(1, $FRESH) a)); select presence_rollup_refresh()"
  psql "$PG_ADMIN dbname=$db" -XAtq -v ON_ERROR_STOP=1 >/dev/null <<SQL
INSERT INTO presences (id, connection_id, type, reason, asset, time,
                       time_offset_minutes)
SELECT ((floor(extract(epoch FROM now()) * 1000)::bigint - 1262304000000) << 22)
       + $r * 100000 + a,
       a::bigint * 100000 + 90000 + $r, 'connect', 'cold_boot', 'asset' || a,
       now(), 0
FROM generate_series(1, $FRESH) a;
SQL
  s=$(now)
  psql "$PG_ADMIN dbname=$db" -XAtq -v ON_ERROR_STOP=1 -c "$sql" >/dev/null
  e=$(now)
  awk -v s="$s" -v e="$e" 'BEGIN{printf "%.3f\n", e-s}'
}

first=
for ev in "${SIZES[@]}"; do
  db=h$ev
  history "$db" "$ev"
  : >"$WORK/t$ev"
  for r in $(seq 1 "$ROUNDS"); do
    t=$(fresh "$db" "$r")
    echo "  events=$ev round $r: catch-up of $FRESH fresh events ${t} s"
    echo "$t" >>"$WORK/t$ev"
  done
  m=$(median <"$WORK/t$ev")
  [ -n "$first" ] || first=$m
  echo "events=$ev catch-up median ${m} s  ratio to events=${SIZES[0]}: $(awk -v a="$m" -v b="$first" 'BEGIN{printf "%.2f", a/b}')"
  if [ -z "${NO_WHOLE:-}" ]; then
    # The same fold by the whole recomputation (before 0007), once.
    t=$(fresh "$db" $((ROUNDS + 1)) whole)
    echo "events=$ev whole recomputation of the same $FRESH assets (before 0007): ${t} s"
  fi
  psql "$PG_ADMIN" -XAtq -c "drop database $db" >/dev/null
done

if [ -n "${PROP_SEEDS:-}" ]; then
  mkdir -p "$WORK/svc/pg"
  cp "$WORK/pg/conninfo" "$WORK/svc/pg/"
  PI_BINARY=$BIN PI_SERVICES=$WORK/svc PI_SOURCE_DIR=$root PI_PROP_SEEDS=$PROP_SEEDS \
    PI_PROP_FIRST=${PROP_FIRST:-1000} bash "$root/tests/integration/rollup_property.sh"
fi
