#!/usr/bin/env bash
# report_rollup.sh -- the rollup of migrations 0004-0006 (asset_state,
# presence_reason_minutes, asset_days, asset_day_spans, asset_open_sessions,
# presence_dirty, presence_rollup_refresh) gives exactly 0002's query-time
# status, reason counts, uptime and flapping: before and after a
# catch-up, with late events, --on-conflict replace, DELETE and TRUNCATE, a
# replay that writes nothing, and a shuffled generated fleet loaded in small
# batches while catch-ups run beside it.
#
# Hand-computed expectations on data/report_fleet.jsonl (see report_cli.sh
# for its events): a1 online since 03-02 20:00 (conn 14, modem_reset), a2
# offline since 03-01 09:00 (conn 20), a3 declared 07:00 (conn 30), a4
# offline since 03-02 23:30 (conn 46).
set -euo pipefail
: "${PI_BINARY:?run through ctest}" "${PI_SERVICES:?}" "${PI_SOURCE_DIR:?}" "${PI_GEN:?}"
PG_ADMIN=$(cat "$PI_SERVICES/pg/conninfo")
DATA=$PI_SOURCE_DIR/tests/integration/data
WORK=$(mktemp -d /tmp/report_rollup.XXXXXX)
DB=report_rollup_$$
BG=
cleanup() {
  [ -z "$BG" ] || kill "$BG" 2>/dev/null || true
  psql "$PG_ADMIN" -XAtq -c "drop database if exists $DB with (force)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
PG="$PG_ADMIN dbname=$DB"
q() { psql "$PG" -XAtq -v ON_ERROR_STOP=1 -F, "$@"; }
load() {
  "$PI_BINARY" load --pg "$PG" "$@" 2>"$WORK/load.err" ||
    { cat "$WORK/load.err" >&2; fail "load $*"; }
}
# expect NAME EXPECTED SQL: the query's rows (comma-separated) equal EXPECTED.
expect() {
  local got
  got=$(q -c "$3")
  [ "$got" = "$2" ] || { diff -u <(printf '%s\n' "$2") <(printf '%s\n' "$got") >&2; fail "$1"; }
  echo "ok: $1"
}
STATE="SELECT asset, state, since AT TIME ZONE 'UTC', reason, connection_id FROM"
ORDER="ORDER BY asset COLLATE \"C\""

psql "$PG_ADMIN" -XAtq -c "create database $DB"
"$PI_BINARY" migrate --pg "$PG" >/dev/null
load >/dev/null "$DATA/report_fleet.jsonl"

# Loaded through the triggers: nothing caught up yet, the view is exact.
expect "dirty after load" "4" \
  "SELECT count(DISTINCT a) FROM presence_dirty, unnest(assets) a"
expect "asset_state empty before a catch-up" "0" "SELECT count(*) FROM asset_state"
FLEET="a1,online,2026-03-02 20:00:00,modem_reset,14
a2,offline,2026-03-01 09:00:00,client_disconnect,20
a3,declared,2026-03-01 07:00:00,declared,30
a4,offline,2026-03-02 23:30:00,Unhandled reason x, please contact maintainer,46"
expect "view before catch-up" "$FLEET" "$STATE asset_status $ORDER"
expect "refresh" "4" "SELECT presence_rollup_refresh()"
expect "asset_state after catch-up" "$FLEET" "$STATE asset_state $ORDER"
expect "dirty emptied" "0" "SELECT count(*) FROM presence_dirty"
expect "second refresh: nothing to do" "0" "SELECT presence_rollup_refresh()"

# A replay of stored rows writes nothing: no dirty row, asset_state's rows
# keep their xmin (and a catch-up rewrites no unchanged row either).
XMINS="SELECT (SELECT string_agg(asset || ':' || xmin, ' ' $ORDER) FROM asset_state)
          || ' / ' || (SELECT string_agg(xmin::text, ' ' ORDER BY minute, type, reason) FROM presence_reason_minutes)
          || ' / ' || (SELECT string_agg(xmin::text, ' ' ORDER BY asset, day) FROM asset_days)
          || ' / ' || (SELECT string_agg(xmin::text, ' ' ORDER BY asset, day) FROM asset_day_spans)
          || ' / ' || (SELECT string_agg(xmin::text, ' ' ORDER BY asset) FROM asset_open_sessions)
          || ' / ' || (SELECT string_agg(xmin::text, ' ' ORDER BY id) FROM presences)"
before=$(q -c "$XMINS")
load >/dev/null "$DATA/report_fleet.jsonl"
expect "replay: no dirty row" "0" "SELECT count(*) FROM presence_dirty"
q -c "SELECT presence_rollup_refresh()" >/dev/null
expect "replay and catch-up: every rollup row's xmin unchanged" "$before" "$XMINS"

# The report catches up itself (status for every asset).
cat >"$WORK/late.jsonl" <<'EOF'
{"id_str":"9001","connection_id_str":"14","type":"disconnect","reason":"network_error","asset":"a1","time":"2026-03-02T21:00:00Z"}
{"id_str":"9002","connection_id_str":"50","type":"connect","reason":"cold_boot","asset":"a5","time":"2026-03-01T00:00:00Z"}
{"id_str":"9003","connection_id_str":"41","type":"connect","reason":"cold_boot","asset":"a4","time":"2026-02-01T00:00:00Z"}
EOF
# Late: a1's open connection 14 closes at 21:00 → offline since 21:00; a new
# asset a5 online; an older connect of a4 changes nothing.
load >/dev/null "$WORK/late.jsonl"
LATE="a1,offline,2026-03-02 21:00:00,network_error,14
a2,offline,2026-03-01 09:00:00,client_disconnect,20
a3,declared,2026-03-01 07:00:00,declared,30
a4,offline,2026-03-02 23:30:00,Unhandled reason x, please contact maintainer,46
a5,online,2026-03-01 00:00:00,cold_boot,50"
expect "late events: view before catch-up" "$LATE" "$STATE asset_status $ORDER"
a4_xmin=$(q -c "SELECT xmin FROM asset_state WHERE asset = 'a4'")
# The rollup's lag (0007): the pending change, made 2 minutes old by hand,
# is noted on stderr by the report (stdout stays the report alone).
expect "lag of a fresh change under a minute" "t" "SELECT presence_rollup_lag() BETWEEN 0 AND 60"
q -c "UPDATE presence_dirty SET at = now() - interval '125 s'" >/dev/null
expect "lag of a 125 s old change" "125" "SELECT round(presence_rollup_lag())"
"$PI_BINARY" report status --pg "$PG" --format csv >"$WORK/out" 2>"$WORK/err"
grep -q "^presence-ingest report: note: the rollup is 125 s behind (1 statements pending)" "$WORK/err" ||
  fail "no lag notice: $(cat "$WORK/err")"
! grep -q "note" "$WORK/out" || fail "the notice went to stdout"
expect "report status caught up" "0" "SELECT count(*) FROM presence_dirty"
expect "lag when nothing is pending" "0" "SELECT presence_rollup_lag()"
"$PI_BINARY" report status --pg "$PG" --format csv >/dev/null 2>"$WORK/err"
[ ! -s "$WORK/err" ] || fail "a notice without lag: $(cat "$WORK/err")"
expect "late events: asset_state" "$LATE" "$STATE asset_state $ORDER"
expect "unchanged a4 not rewritten" "$a4_xmin" "SELECT xmin FROM asset_state WHERE asset = 'a4'"
[ "$(sed -n 2p "$WORK/out" | tr -d '\r')" = "a1,offline,2026-03-02T21:00:00+00:00,network_error,14" ] ||
  fail "report status line: $(sed -n 2p "$WORK/out")"
echo "ok: report status after catch-up"

# --on-conflict replace: row 9002 moves from a5 to a2 (a later connect: a2
# online since 03-02 05:00 on conn 50); a5 is left with no row at all.
cat >"$WORK/replace.jsonl" <<'EOF'
{"id_str":"9002","connection_id_str":"50","type":"connect","reason":"cold_boot","asset":"a2","time":"2026-03-02T05:00:00Z"}
EOF
load >/dev/null --on-conflict replace "$WORK/replace.jsonl"
REPL="a1,offline,2026-03-02 21:00:00,network_error,14
a2,online,2026-03-02 05:00:00,cold_boot,50
a3,declared,2026-03-01 07:00:00,declared,30
a4,offline,2026-03-02 23:30:00,Unhandled reason x, please contact maintainer,46"
expect "replace: view before catch-up" "$REPL" "$STATE asset_status $ORDER"
q -c "SELECT presence_rollup_refresh()" >/dev/null
expect "replace: asset_state" "$REPL" "$STATE asset_state $ORDER"

# DELETE by hand: a3's only row gone → a3 not listed.
q -c "DELETE FROM presences WHERE asset = 'a3'"
expect "delete: view" "a1 a2 a4" "SELECT string_agg(asset, ' ' $ORDER) FROM asset_status"
q -c "SELECT presence_rollup_refresh()" >/dev/null
expect "delete: asset_state" "a1 a2 a4" "SELECT string_agg(asset, ' ' $ORDER) FROM asset_state"

# TRUNCATE empties the rollup.
q -c "TRUNCATE presences"
expect "truncate" "0,0,0" "SELECT (SELECT count(*) FROM asset_state), (SELECT count(*) FROM presence_dirty), (SELECT count(*) FROM asset_status)"

# A generated fleet, shuffled, in batches of 37 with catch-ups of at most 2
# statements running beside the load: the view, and asset_state after a
# final catch-up, equal 0002's query-time definition (inlined here).
"$PI_GEN" 6000 --shape fleet --assets 150 --seed 11 | shuf --random-source=<(yes) >"$WORK/fleet.jsonl"
(while :; do psql "$PG" -XAtq -c "SELECT presence_rollup_refresh(2)" >/dev/null 2>&1 || true; done) &
BG=$!
load >/dev/null --batch-size 37 "$WORK/fleet.jsonl"
# Stop the loop and the psql it may be running, and wait until no catch-up
# holds the rollup's lock: a refresh called while one still runs returns -1
# and does nothing, which left asset_state behind now and then.
pkill -P "$BG" 2>/dev/null || true
kill "$BG"; wait "$BG" 2>/dev/null || true; BG=
for _ in $(seq 300); do
  [ "$(q -c "SELECT pg_try_advisory_xact_lock(presence_rollup_lock_key())")" = f ] || break
  sleep 0.1
done
QT=$(awk '/^CREATE VIEW asset_status AS/{p=1; next} p && /^WHERE lc.time IS NOT NULL OR ld.time/{print; exit} p' \
  "$PI_SOURCE_DIR/migrations/0002_reports.sql")
QT=${QT%;}
[ -n "$QT" ] || fail "0002's asset_status not found"
q -c "CREATE TABLE qt AS $QT"
expect "fleet: query-time rows" "150" "SELECT count(*) FROM qt"
expect "fleet: view = query time" "0,0" \
  "SELECT (SELECT count(*) FROM (SELECT * FROM asset_status EXCEPT ALL SELECT * FROM qt) x),
          (SELECT count(*) FROM (SELECT * FROM qt EXCEPT ALL SELECT * FROM asset_status) x)"
q -c "SELECT presence_rollup_refresh()" >/dev/null
expect "fleet: asset_state = query time" "0,0" \
  "SELECT (SELECT count(*) FROM (SELECT * FROM asset_state EXCEPT ALL SELECT * FROM qt) x),
          (SELECT count(*) FROM (SELECT * FROM qt EXCEPT ALL SELECT * FROM asset_state) x)"
# Each state occurs (the comparison is not vacuous).
expect "fleet: states" "offline online" \
  "SELECT string_agg(DISTINCT state, ' ') FROM asset_state"

# reason_counts (whole minutes from the rollup and presence_dirty, the
# partial ones from presences) equals 0002's query-time function (inlined
# here as qt_reason_counts), before and after a catch-up, after rows were
# replaced (--on-conflict replace moves 200 rows to other assets, types) and
# deleted, on windows with and without whole minutes.
awk '$0 ~ "^CREATE FUNCTION reason_counts\\(" {p=1} p {print} p && /^\$\$;/ {exit}' \
  "$PI_SOURCE_DIR/migrations/0002_reports.sql" |
  sed "s/^CREATE FUNCTION reason_counts(/CREATE FUNCTION qt_reason_counts(/" >"$WORK/rc.sql"
grep -q "qt_reason_counts" "$WORK/rc.sql" || fail "0002's reason_counts not found"
q -f "$WORK/rc.sql" >/dev/null
# The same for 0005's daily_uptime and flapping_assets (from asset_days,
# asset_day_spans, asset_open_sessions): the reference is 0002's
# uptime_ranges per asset (daily_uptime_of) and 0002's flapping_assets over
# every disconnect (inlined here as qt_flapping_assets).
awk '$0 ~ "^CREATE FUNCTION flapping_assets\\(" {p=1} p {print} p && /^\$\$;/ {exit}' \
  "$PI_SOURCE_DIR/migrations/0002_reports.sql" |
  sed "s/^CREATE FUNCTION flapping_assets(/CREATE FUNCTION qt_flapping_assets(/" >"$WORK/fl.sql"
grep -q "qt_flapping_assets" "$WORK/fl.sql" || fail "0002's flapping_assets not found"
q -f "$WORK/fl.sql" >/dev/null
QT_UPTIME="SELECT u.* FROM (SELECT DISTINCT asset FROM presences WHERE asset IS NOT NULL) a
  CROSS JOIN LATERAL daily_uptime_of(a.asset"
head -200 "$WORK/fleet.jsonl" | sed -e 's/"asset":"\([^"]*\)"/"asset":"\1x"/' \
  -e 's/"type":"connect"/"type":"disconnect"/' >"$WORK/replace2.jsonl"
load >/dev/null --on-conflict replace "$WORK/replace2.jsonl"
expect "replaced rows" "$(grep -c '"asset":"' "$WORK/replace2.jsonl")" \
  "SELECT count(*) FROM presences WHERE asset LIKE '%x'"
q -c "DELETE FROM presences WHERE id IN (SELECT id FROM presences ORDER BY id DESC LIMIT 100)"
LAST=$(q -c "SELECT max(time) FROM presences")
for round in dirty folded; do
  [ "$round" = dirty ] || q -c "SELECT presence_rollup_refresh()" >/dev/null
  for w in "'-infinity'|'infinity'" "'$LAST'::timestamptz - interval '1 day'|'$LAST'" \
    "'$LAST'::timestamptz - interval '30 hours 7 minutes 1.5 seconds'|'$LAST'::timestamptz - interval '2 hours 3.5 seconds'" \
    "date_trunc('hour', '$LAST'::timestamptz) - interval '5 hours'|date_trunc('hour', '$LAST'::timestamptz)" \
    "'$LAST'::timestamptz - interval '50.5 seconds'|'$LAST'::timestamptz - interval '10 seconds'"; do
    s=${w%%|*} u=${w##*|}
    n=$(q -c "SELECT count(*) FROM qt_reason_counts($s, $u)")
    expect "$round: reason_counts($s, $u) = query time ($n rows)" "0,0" \
      "SELECT (SELECT count(*) FROM (SELECT * FROM reason_counts($s, $u) EXCEPT ALL SELECT * FROM qt_reason_counts($s, $u)) x),
              (SELECT count(*) FROM (SELECT * FROM qt_reason_counts($s, $u) EXCEPT ALL SELECT * FROM reason_counts($s, $u)) x)"
  done
  # Whole days, days cut by until (mid-hour) and since, in zones of whole,
  # half and quarter hours and with daylight saving.
  FIRST=$(q -c "SELECT min(time) FROM presences")
  for tz in UTC Europe/Paris Asia/Kolkata America/St_Johns Asia/Kathmandu; do
    for w in "'$FIRST'::timestamptz - interval '1 day'|'$LAST'::timestamptz + interval '1 day'" \
      "'$FIRST'::timestamptz + interval '13 hours 7 minutes'|'$LAST'::timestamptz - interval '7 hours 13 minutes 2.5 seconds'"; do
      s=${w%%|*} u=${w##*|}
      n=$(q -c "SELECT count(*) FROM ($QT_UPTIME, '$tz', $s, $u) u) x")
      [ "$n" -gt 100 ] || fail "uptime reference has only $n rows"
      expect "$round: daily_uptime('$tz', $s, $u) = query time ($n rows)" "0,0" \
        "SELECT (SELECT count(*) FROM (SELECT * FROM daily_uptime('$tz', $s, $u) EXCEPT ALL $QT_UPTIME, '$tz', $s, $u) u) x),
                (SELECT count(*) FROM ($QT_UPTIME, '$tz', $s, $u) u EXCEPT ALL SELECT * FROM daily_uptime('$tz', $s, $u)) x)"
    done
  done
  # Windows cut inside days, and (one hour) over whole UTC days, where
  # asset_days' best windows stand in for the days' inner windows.
  WIDE="'$FIRST'::timestamptz - interval '1 day'|'$LAST'::timestamptz + interval '1 day'"
  CUT="'$FIRST'::timestamptz + interval '5 hours 30 minutes'|'$LAST'::timestamptz - interval '1 hour 1 second'"
  for f in "30 minutes|2|$CUT" "1 hour|3|$CUT" "3 hours|4|$CUT" "1 day|6|$CUT" \
    "1 hour|2|$WIDE" "1 hour|4|$WIDE" "1 hour|6|$WIDE" "2 hours|5|$WIDE"; do
    win=${f%%|*} rest=${f#*|} thr=${rest%%|*} rest=${rest#*|} s=${rest%%|*} u=${rest##*|}
    n=$(q -c "SELECT count(*) FROM qt_flapping_assets('$win', $thr, $s, $u)")
    [ "$n" -gt 0 ] || fail "flapping reference ($win, $thr) is empty"
    expect "$round: flapping_assets('$win', $thr) = query time ($n rows)" "0,0" \
      "SELECT (SELECT count(*) FROM (SELECT * FROM flapping_assets('$win', $thr, $s, $u) EXCEPT ALL SELECT * FROM qt_flapping_assets('$win', $thr, $s, $u)) x),
              (SELECT count(*) FROM (SELECT * FROM qt_flapping_assets('$win', $thr, $s, $u) EXCEPT ALL SELECT * FROM flapping_assets('$win', $thr, $s, $u)) x)"
  done
  # 0006: asset_status_by_asset and daily_uptime_by_asset give the same rows
  # as asset_status and daily_uptime. Status: the caught-up assets in
  # byte-wise order, then the dirty ones. Uptime: day after day; a day that
  # is a whole UTC day, counted to its end or to an until after every stored
  # event, merges the rollup (auto_explain shows its Merge Full Join: one
  # per such day), the others are daily_uptime's; within a day, in asset
  # order once the rollup has caught up.
  expect "$round: asset_status_by_asset = asset_status, caught-up assets first, each part in asset order" "0,0,0" \
    "SELECT (SELECT count(*) FROM (SELECT * FROM asset_status_by_asset() EXCEPT ALL SELECT * FROM asset_status) x),
            (SELECT count(*) FROM (SELECT * FROM asset_status EXCEPT ALL SELECT * FROM asset_status_by_asset()) x),
            (SELECT count(*) FROM (SELECT n, row_number() OVER (ORDER BY asset IN (SELECT presence_dirty_assets()), asset COLLATE \"C\") AS r
                                   FROM asset_status_by_asset() WITH ORDINALITY t(asset, state, since, reason, connection_id, n)) x
             WHERE n <> r)"
  D1="date_trunc('day', '$LAST'::timestamptz, 'UTC')"
  D0="date_trunc('day', '$FIRST'::timestamptz, 'UTC')"
  if [ "$round" = folded ]; then
    expect "folded: nothing waits for a catch-up" "0" "SELECT count(*) FROM presence_dirty_assets()"
  else
    [ "$(q -c "SELECT count(*) > 10 FROM presence_dirty_assets()")" = t ] ||
      fail "dirty round: too few assets wait for a catch-up"
  fi
  # CONTRACT §7: `report` prints status by asset and uptime by asset, day,
  # whatever order the by-asset functions give (dirty assets last, days
  # first). With the rollup's lock held elsewhere the report's catch-up
  # gives up, so the dirty assets stay dirty.
  if [ "$round" = dirty ]; then
    psql "$PG" -XAtq -c "SELECT pg_advisory_lock(presence_rollup_lock_key()), pg_sleep(60)" >/dev/null 2>&1 &
    BG=$!
    for _ in $(seq 100); do
      [ "$(q -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")" = 0 ] || break
      sleep 0.1
    done
    "$PI_BINARY" report status --pg "$PG" --format csv | tail -n +2 | cut -d, -f1 >"$WORK/status.order"
    q -c "SELECT asset FROM asset_status ORDER BY asset COLLATE \"C\"" >"$WORK/status.want"
    rfc() { q -c "SELECT to_char(($1) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"; }
    "$PI_BINARY" report uptime --pg "$PG" --format csv --tz UTC --since "$(rfc "$D0")" \
      --until "$(rfc "$D1 + interval '24 hours'")" | tail -n +2 | cut -d, -f1,2 >"$WORK/uptime.order"
    q -c "SELECT asset, day FROM daily_uptime('UTC', $D0, $D1 + interval '24 hours') ORDER BY asset COLLATE \"C\", day" >"$WORK/uptime.want"
    # (Killing psql leaves its backend asleep with the lock: end it.)
    q -c "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()" >/dev/null
    wait "$BG" 2>/dev/null || true; BG=
    [ "$(q -c "SELECT count(*) > 10 FROM presence_dirty_assets()")" = t ] || fail "report caught up despite the lock"
    cmp -s "$WORK/status.order" "$WORK/status.want" || fail "report status not by asset with dirty assets"
    cmp -s "$WORK/uptime.order" "$WORK/uptime.want" || fail "report uptime not by asset, day"
    echo "ok: dirty: report status and uptime sorted by asset ($(wc -l <"$WORK/status.want") assets, $(wc -l <"$WORK/uptime.want") days)"
  fi
  NDAYS=$(q -c "SELECT ($D1::date - $D0::date) + 1")
  [ "$NDAYS" -ge 2 ] || fail "the fleet spans $NDAYS UTC days"
  for w in "UTC|$D0|$D1 + interval '24 hours'|$NDAYS" "UTC|$D1 - interval '24 hours'|$D1|1" \
    "UTC|$D0|'$LAST'::timestamptz + interval '1 second'|$NDAYS" \
    "UTC|$D0|'$LAST'::timestamptz - interval '7 hours 13 minutes 2.5 seconds'|$((NDAYS - 1))" \
    "Europe/Paris|$D0|$D1 + interval '24 hours'|0"; do
    IFS='|' read -r tz s u merges <<<"$w"
    n=$(q -c "SELECT count(*) FROM daily_uptime('$tz', $s, $u)")
    [ "$n" -gt 10 ] || fail "daily_uptime('$tz', $s, $u) has only $n rows"
    expect "$round: daily_uptime_by_asset('$tz', $s, $u) = daily_uptime ($n rows)" "0,0" \
      "SELECT (SELECT count(*) FROM (SELECT * FROM daily_uptime_by_asset('$tz', $s, $u) EXCEPT ALL SELECT * FROM daily_uptime('$tz', $s, $u)) x),
              (SELECT count(*) FROM (SELECT * FROM daily_uptime('$tz', $s, $u) EXCEPT ALL SELECT * FROM daily_uptime_by_asset('$tz', $s, $u)) x)"
    got=$(psql "$PG" -XAtq -v ON_ERROR_STOP=1 -c "LOAD 'auto_explain'" \
      -c "SET auto_explain.log_min_duration = 0" -c "SET auto_explain.log_nested_statements = on" \
      -c "SET auto_explain.log_level = notice" -c "SET client_min_messages = notice" \
      -c "SELECT count(*) FROM daily_uptime_by_asset('$tz', $s, $u)" 2>&1 | grep -c "Merge Full Join" || true)
    [ "$got" = "$merges" ] || fail "$round: daily_uptime_by_asset('$tz', $s, $u) merged $got days, expected $merges"
    echo "ok: $round: daily_uptime_by_asset('$tz', $s, $u) merges $merges days"
    [ "$round" = folded ] || continue
    expect "$round: daily_uptime_by_asset('$tz', $s, $u) in day, asset order" "0" \
      "SELECT count(*) FROM (SELECT n, row_number() OVER (ORDER BY day, asset COLLATE \"C\") AS r
                             FROM daily_uptime_by_asset('$tz', $s, $u) WITH ORDINALITY t(asset, day, online_s, sessions, ratio, n)) x
       WHERE n <> r"
  done
done
expect "fleet: view = query time after replace and delete" "0,0" \
  "SELECT (SELECT count(*) FROM (SELECT * FROM asset_status EXCEPT ALL SELECT * FROM ($QT) y) x),
          (SELECT count(*) FROM (SELECT * FROM ($QT) y EXCEPT ALL SELECT * FROM asset_status) x)"

q -c "SELECT presence_rollup_refresh()" >/dev/null
expect "fleet: asset_state = query time after replace and delete" "0,0" \
  "SELECT (SELECT count(*) FROM (SELECT * FROM asset_state EXCEPT ALL SELECT * FROM ($QT) y) x),
          (SELECT count(*) FROM (SELECT * FROM ($QT) y EXCEPT ALL SELECT * FROM asset_state) x)"

# presence_rollup_rebuild gives the same table.
q -c "CREATE TABLE before_rebuild AS SELECT * FROM asset_state;
      CREATE TABLE days_before AS SELECT * FROM asset_days;
      CREATE TABLE spans_before AS SELECT * FROM asset_day_spans;
      CREATE TABLE open_before AS SELECT * FROM asset_open_sessions;
      SELECT presence_rollup_rebuild()" >/dev/null
for t in "asset_state before_rebuild" "asset_days days_before" "asset_day_spans spans_before" "asset_open_sessions open_before"; do
  a=${t% *} b=${t#* }
  expect "rebuild = catch-up: $a" "0,0" \
    "SELECT (SELECT count(*) FROM (SELECT * FROM $a EXCEPT ALL SELECT * FROM $b) x),
            (SELECT count(*) FROM (SELECT * FROM $b EXCEPT ALL SELECT * FROM $a) x)"
done
expect "rollup tables not empty" "t" \
  "SELECT (SELECT count(*) FROM asset_days) > 100 AND (SELECT count(*) FROM asset_day_spans) > 100
      AND (SELECT count(*) FROM asset_open_sessions) > 10"
