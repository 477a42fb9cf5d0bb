-- bench_fleet_state.sql -- what rollup state would buy CONTRACT §8's
-- reports: builds, once, the tables a catch-up could keep beside asset_days
-- (every gap of every asset with its outage, each asset's first event, the
-- fleet's status changes per minute, the assets disconnected per hour),
-- then times the reports' queries on them against SELECT count(*) FROM
-- presences in the same session. An experiment to decide what the rollup
-- should keep (issue 23), not shipped schema: the catch-up that would
-- maintain them is issue 22's to change. Run on bench_report.sh's database
-- (BENCH_KEEP=1):
--   psql "$CONNINFO dbname=bench_report" -X -f tests/bench/bench_fleet_state.sql
\set ON_ERROR_STOP 1
SET jit = off;
SET work_mem = '64MB';
SET TimeZone = 'UTC';
DROP TABLE IF EXISTS x_gaps, x_first, x_fleet_minutes, x_disc_hours;
\timing on
-- What the catch-up would recompute for its dirty assets (presence_gaps of
-- them), here for all.
CREATE TABLE x_gaps AS SELECT * FROM presence_gaps(NULL);
CREATE INDEX ON x_gaps (asset, glo);
CREATE INDEX ON x_gaps (ghi) INCLUDE (asset, started_at);
CREATE INDEX ON x_gaps (started_at) WHERE ghi IS NULL;
CREATE TABLE x_first AS
    SELECT asset, min(time) AS first FROM presences
    WHERE asset IS NOT NULL GROUP BY asset;
ALTER TABLE x_first ADD PRIMARY KEY (asset);
-- The fleet's status changes: each asset's status after each instant it
-- has events at (fleet_timeline's definition), counted +1 for the new state
-- and -1 for the old at the first minute boundary after the change (the
-- status at t counts the events before t, so a change at a boundary shows
-- at the next one): the counts at a whole minute t are the sums of the
-- rows up to t.
CREATE TABLE x_fleet_minutes AS
WITH ev AS (
    SELECT p.asset, p.time, p.id,
           count(*) FILTER (WHERE p.type = 'connect')
               OVER (PARTITION BY p.asset ORDER BY p.time, p.id) AS grp,
           count(*) FILTER (WHERE p.type <> 'declare_asset')
               OVER (PARTITION BY p.asset ORDER BY p.time, p.id) AS cd,
           min(p.time) FILTER (WHERE p.type = 'disconnect')
               OVER (PARTITION BY p.asset, p.connection_id) AS fd
    FROM presences p
    WHERE p.asset IS NOT NULL
      AND p.type IN ('connect', 'disconnect', 'declare_asset')
), lc AS (
    SELECT e.asset, e.time, e.grp, e.cd,
           CASE WHEN e.grp > 0 THEN first_value(e.fd)
                    OVER (PARTITION BY e.asset, e.grp ORDER BY e.time, e.id)
           END AS conn_fd,
           row_number() OVER (PARTITION BY e.asset, e.time
                              ORDER BY e.id DESC) AS last_at_time
    FROM ev e
), st AS (
    SELECT l.asset, l.time,
           CASE WHEN l.grp > 0 AND (l.conn_fd IS NULL OR l.conn_fd > l.time)
                THEN 'online' WHEN l.cd > 0 THEN 'offline'
                ELSE 'declared' END AS state
    FROM lc l WHERE l.last_at_time = 1
), ch AS (
    SELECT s.asset, s.time, s.state,
           lag(s.state) OVER (PARTITION BY s.asset ORDER BY s.time) AS prev
    FROM st s
)
SELECT date_bin('1 minute', c.time, '2000-01-01 00:00+00') + interval '1 minute'
           AS minute,
       sum((c.state = 'online')::int - (c.prev IS NOT DISTINCT FROM 'online')::int)
           AS online,
       sum((c.state = 'offline')::int - (c.prev IS NOT DISTINCT FROM 'offline')::int)
           AS offline,
       sum((c.state = 'declared')::int - (c.prev IS NOT DISTINCT FROM 'declared')::int)
           AS declared
FROM ch c WHERE c.state IS DISTINCT FROM c.prev
GROUP BY 1;
ALTER TABLE x_fleet_minutes ADD PRIMARY KEY (minute);
CREATE TABLE x_disc_hours AS
    SELECT date_trunc('hour', time) AS hour, count(DISTINCT asset) AS n
    FROM presences WHERE type = 'disconnect' AND asset IS NOT NULL GROUP BY 1;
ALTER TABLE x_disc_hours ADD PRIMARY KEY (hour);
VACUUM ANALYZE x_gaps, x_first, x_fleet_minutes, x_disc_hours;
SELECT pg_size_pretty(pg_total_relation_size('x_gaps')) AS gaps,
       pg_size_pretty(pg_total_relation_size('x_first')) AS first,
       pg_size_pretty(pg_total_relation_size('x_fleet_minutes')) AS minutes,
       (SELECT count(*) FROM x_gaps) AS gap_rows;
SELECT max(time) + interval '1 microsecond' AS until FROM presences \gset
SELECT date_trunc('minute', :'until'::timestamptz) AS until_m \gset
\o /dev/null
SELECT count(*) FROM presences;
SELECT count(*) FROM presences;
SELECT count(*) FROM presences;
-- outages --since -1d (every row, as the report reads them)
SELECT g.asset, g.started_at, g.ghi,
       date_part('epoch', coalesce(g.ghi, :'until') - g.started_at),
       g.disconnect_reason, g.reconnect_reason
FROM x_gaps g
WHERE g.started_at IS NOT NULL AND g.started_at < :'until'
  AND (g.ghi > :'until'::timestamptz - interval '1 day' OR g.ghi IS NULL)
ORDER BY g.asset COLLATE "C", g.started_at;
SELECT g.asset, g.started_at, g.ghi,
       date_part('epoch', coalesce(g.ghi, :'until') - g.started_at),
       g.disconnect_reason, g.reconnect_reason
FROM x_gaps g
WHERE g.started_at IS NOT NULL AND g.started_at < :'until'
  AND (g.ghi > :'until'::timestamptz - interval '1 day' OR g.ghi IS NULL)
ORDER BY g.asset COLLATE "C", g.started_at;
-- availability --since -30d --period month (asset_availability_for's
-- query on x_gaps and x_first)
WITH periods AS MATERIALIZED (
    SELECT * FROM presence_periods('UTC', :'until'::timestamptz - interval '30 days', :'until', 'month')
), observed AS (
    SELECT f.asset, p.period_start, p.lo, p.hi, greatest(p.lo, f.first) AS a, p.hi AS b
    FROM x_first f JOIN periods p ON f.first < p.hi
), gaps AS (
    SELECT g.asset, g.glo, least(coalesce(g.ghi, :'until'), :'until') AS ghi, g.started_at,
           coalesce(g.ghi, :'until') - g.started_at >= interval '0' AS counted
    FROM x_gaps g
    WHERE g.glo < :'until' AND (g.ghi IS NULL OR g.ghi > (SELECT min(lo) FROM periods))
), parts AS (
    SELECT o.asset, o.period_start,
           sum(round(date_part('epoch', least(g.ghi, o.b) - greatest(g.glo, o.a)) * 1000000))::bigint AS gap_us,
           count(*) FILTER (WHERE g.counted AND g.started_at >= o.lo AND g.started_at < o.hi) AS n_out,
           coalesce(max(date_part('epoch', least(g.ghi, o.b) - greatest(g.started_at, o.a)))
                    FILTER (WHERE g.counted AND g.started_at < o.b AND g.ghi > o.a), 0) AS longest
    FROM observed o JOIN gaps g ON g.asset = o.asset AND g.glo < o.b AND g.ghi > o.a
    GROUP BY o.asset, o.period_start
)
SELECT o.asset, o.period_start, o.b - o.a, t.gap_us, t.n_out, t.longest
FROM observed o LEFT JOIN parts t ON t.asset = o.asset AND t.period_start = o.period_start
ORDER BY o.asset COLLATE "C", o.period_start;
-- fleet --since -7d --step 1h, whole minutes: the counts before since,
-- then a running sum per step; the events per step from
-- presence_reason_minutes, the assets disconnected from x_disc_hours.
WITH base AS (
    SELECT coalesce(sum(online), 0) AS online, coalesce(sum(offline), 0) AS offline,
           coalesce(sum(declared), 0) AS declared
    FROM x_fleet_minutes WHERE minute <= :'until_m'::timestamptz - interval '7 days'
), steps AS (
    SELECT k, :'until_m'::timestamptz - interval '7 days' + k * interval '1 hour' AS t
    FROM generate_series(0, 167) k
), d AS (
    SELECT s.k, sum(m.online) AS online, sum(m.offline) AS offline, sum(m.declared) AS declared
    FROM steps s JOIN x_fleet_minutes m
      ON m.minute > s.t - interval '1 hour' AND m.minute <= s.t AND s.k > 0
    GROUP BY s.k
), e AS (
    SELECT s.k, sum(r.n) FILTER (WHERE r.type = 'connect') AS connects,
           sum(r.n) FILTER (WHERE r.type = 'disconnect') AS disconnects,
           sum(r.n) FILTER (WHERE r.type = 'failed_connect') AS failed
    FROM steps s JOIN presence_reason_minutes r
      ON r.minute >= s.t AND r.minute < s.t + interval '1 hour'
    GROUP BY s.k
)
SELECT s.t, b.online + sum(coalesce(d.online, 0)) OVER w,
       b.offline + sum(coalesce(d.offline, 0)) OVER w,
       b.declared + sum(coalesce(d.declared, 0)) OVER w,
       e.connects, e.disconnects, e.failed, h.n
FROM steps s CROSS JOIN base b
LEFT JOIN d ON d.k = s.k LEFT JOIN e ON e.k = s.k
LEFT JOIN x_disc_hours h ON h.hour = s.t
WINDOW w AS (ORDER BY s.k)
ORDER BY s.t;
SELECT count(*) FROM presences;
\o
\timing off
-- The minute table is exact at whole minutes: it agrees with
-- fleet_timeline there (0 rows).
SELECT * FROM (
    SELECT t.time, t.online, t.offline, t.declared FROM fleet_timeline(
        interval '1 hour', :'until_m'::timestamptz - interval '1 day', :'until_m') t
    EXCEPT
    SELECT s.t, b.online, b.offline, b.declared
    FROM (SELECT :'until_m'::timestamptz - interval '1 day' + k * interval '1 hour' AS t
          FROM generate_series(0, 23) k) s
    CROSS JOIN LATERAL (
        SELECT sum(online) AS online, sum(offline) AS offline, sum(declared) AS declared
        FROM x_fleet_minutes WHERE minute <= s.t) b
) x;
