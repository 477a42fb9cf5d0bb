-- bench_report_state.sql -- what writer-maintained state would buy: builds,
-- once, the tables a writer could keep in the same transaction as the rows
-- (one row per asset, one per session, hourly reason counts), then times the
-- reports' queries on them against SELECT count(*) FROM presences in the
-- same session. An experiment to decide issue 10's question, not shipped
-- schema. Run on bench_report.sh's database (BENCH_KEEP=1):
--   psql "$CONNINFO dbname=bench_report" -X -f tests/bench/bench_report_state.sql
\set ON_ERROR_STOP 1
SET jit = off;
SET work_mem = '64MB';
DROP TABLE IF EXISTS x_asset_state, x_sessions, x_reason_hours;
CREATE TABLE x_asset_state AS SELECT * FROM asset_status;
ALTER TABLE x_asset_state ADD PRIMARY KEY (asset);
CREATE TABLE x_sessions AS
    SELECT asset, connection_id, connected_at, ended_at, end_kind
    FROM sessions_in('-infinity', 'infinity') WHERE connected_at IS NOT NULL;
CREATE INDEX ON x_sessions (ended_at);
CREATE INDEX ON x_sessions (connected_at) WHERE ended_at IS NULL;
CREATE TABLE x_reason_hours AS
    SELECT date_trunc('hour', time) AS hour, type, reason, count(*) AS n
    FROM presences GROUP BY 1, 2, 3;
CREATE INDEX ON x_reason_hours (hour);
VACUUM ANALYZE x_asset_state, x_sessions, x_reason_hours;
SELECT max(time) AS last FROM presences \gset
\timing on
\o /dev/null
SELECT count(*) FROM presences;
SELECT count(*) FROM presences;
SELECT * FROM x_asset_state ORDER BY asset COLLATE "C";
SELECT * FROM x_asset_state ORDER BY asset COLLATE "C";
-- uptime of every asset over the data's last whole UTC day, from sessions
SELECT date_trunc('day', :'last'::timestamptz) - interval '1 day' AS d0 \gset
SELECT asset, sum(upper(r) - lower(r)) FROM (
    SELECT asset, unnest(range_agg(tstzrange(greatest(connected_at, :'d0'),
        least(coalesce(ended_at, :'d0'::timestamptz + interval '1 day'),
              :'d0'::timestamptz + interval '1 day')))) AS r
    FROM x_sessions
    WHERE (ended_at > :'d0' OR ended_at IS NULL)
      AND connected_at < :'d0'::timestamptz + interval '1 day'
      AND greatest(connected_at, :'d0') < least(coalesce(ended_at, :'d0'::timestamptz + interval '1 day'), :'d0'::timestamptz + interval '1 day')
    GROUP BY asset) u GROUP BY asset;
SELECT type, reason, sum(n) FROM x_reason_hours
WHERE hour >= :'last'::timestamptz - interval '1 day' GROUP BY 1, 2 ORDER BY 3 DESC;
SELECT count(*) FROM presences;
\o
\timing off
