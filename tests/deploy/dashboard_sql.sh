#!/usr/bin/env bash
# The dashboard's PostgreSQL panels run against the real schema (CONTRACT §7
# and §8 views and functions, from migrations/), with Grafana's time macros
# replaced by the last 6 hours, and give the expected figures for the
# compose demo's messages (deploy/samples/feed.sh) loaded with `load`.
set -euo pipefail
: "${PI_SERVICES:?run through ctest: the pg fixture}" "${PI_BINARY:?}" "${PI_SOURCE_DIR:?}"
PG_ADMIN=$(cat "$PI_SERVICES/pg/conninfo")
DB="deploy_dashboard_sql_$$"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"; psql "$PG_ADMIN" -XAtq -c "drop database if exists $DB" >/dev/null 2>&1 || true' EXIT
psql "$PG_ADMIN" -XAtq -v ON_ERROR_STOP=1 -c "create database $DB" >/dev/null
PG="$PG_ADMIN dbname=$DB"
"$PI_BINARY" migrate --pg "$PG" >/dev/null
sh "$PI_SOURCE_DIR/deploy/samples/feed.sh" >"$WORK/feed.txt"
"$PI_BINARY" load --pg "$PG" "$WORK/feed.txt" >/dev/null

python3 - "$PI_SOURCE_DIR/deploy/grafana/presence-ingest.json" "$WORK" <<'PY'
import json, re, sys
dash = json.load(open(sys.argv[1]))
n = 0
for p in dash["panels"]:
    for t in p.get("targets", []):
        if "rawSql" not in t:
            continue
        q = t["rawSql"]
        q = re.sub(r"\$__timeFilter\(([^)]+)\)",
                   r"\1 >= now() - interval '6 hours' AND \1 < now() + interval '1 minute'", q)
        q = q.replace("$__timeFrom()", "(now() - interval '6 hours')")
        q = q.replace("$__timeTo()", "(now() + interval '1 minute')")
        if "$" in q:
            sys.exit(f"panel '{p['title']}': unhandled macro in {q}")
        n += 1
        open(f"{sys.argv[2]}/q{n}.sql", "w").write(q + "\n")
        open(f"{sys.argv[2]}/q{n}.title", "w").write(p["title"])
if n != 5:
    sys.exit(f"expected 5 SQL panels, found {n}")
PY
for q in "$WORK"/q*.sql; do
  title=$(cat "${q%.sql}.title")
  out=$(psql "$PG" -XAtq -v ON_ERROR_STOP=1 -F ' ' -f "$q") ||
    { echo "panel '$title' fails: $(cat "$q")" >&2; exit 1; }
  echo "$title: $(echo "$out" | tr '\n' ';')"
  case $title in
    "Devices online now")
      [ "$out" = 1 ] || { echo "online now: $out, want 1 (the sample asset)" >&2; exit 1; } ;;
    "Sessions per hour")
      total=$(echo "$out" | awk '{ s += $NF } END { print s + 0 }')
      [ "$total" = 10 ] || { echo "sessions in 6 h: $total, want 10" >&2; exit 1; } ;;
    "Top disconnect reasons")
      [ "$out" = "closed_by_device 10" ] || { echo "reasons: $out" >&2; exit 1; } ;;
    "Fleet over time")
      # time online offline declared disconnects, one row a step: at the
      # first step (6 h ago) only the sample asset (connected in 2016) is
      # online; over the range, the ten assets' ten disconnects.
      first=$(echo "$out" | head -n 1 | cut -d' ' -f3-5)
      [ "$first" = "1 0 0" ] || { echo "fleet 6 h ago: $first, want 1 0 0" >&2; exit 1; }
      total=$(echo "$out" | awk '{ s += $NF } END { print s + 0 }')
      [ "$total" = 10 ] || { echo "disconnects in 6 h: $total, want 10" >&2; exit 1; } ;;
    "Least available assets")
      # asset availability outages downtime_s longest_outage_s: the ten
      # assets first (connected 30 s, then one outage to the end), the
      # oldest first; the sample asset, online all along, last.
      [ "$(echo "$out" | wc -l)" = 11 ] || { echo "availability rows: $out" >&2; exit 1; }
      [ "$(echo "$out" | tail -n 1)" = "356156060353505 1 0 0 0" ] ||
        { echo "availability, last: $(echo "$out" | tail -n 1)" >&2; exit 1; }
      [ "$(echo "$out" | head -n 1 | cut -d' ' -f1)" = 356156060350000 ] ||
        { echo "availability, first: $(echo "$out" | head -n 1)" >&2; exit 1; }
      bad=$(echo "$out" | head -n 10 | awk '$3 != 1 || $4 != $5 || $2 >= 1')
      [ -z "$bad" ] || { echo "availability: $bad" >&2; exit 1; } ;;
    *) echo "unknown panel $title" >&2; exit 1 ;;
  esac
done
echo "ok: the dashboard's SQL panels run on the migrated schema"
