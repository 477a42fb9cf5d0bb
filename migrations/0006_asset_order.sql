-- 0006_asset_order.sql -- the fleet-wide status and uptime in asset order,
-- fast: asset_status_by_asset() and daily_uptime_by_asset(), the same rows
-- as asset_status and daily_uptime, in byte-wise asset order (COLLATE "C",
-- the order the report prints), read from the rollup through covering
-- indexes in that order.
--
-- Measured on 10M presences and 100 000 assets (bench_report): sorting
-- 100 000 rows cost more than reading them, on the server (60 ms of 125)
-- or in the report (qsort and the cache misses of writing rows in another
-- order than they arrived: 80 ms of 200); and a day's uptime grouped 170 000
-- rows (asset_days and asset_open_sessions) in a hash to add each asset's
-- two, where a merge of the two in asset order needs no grouping (105 ms
-- against 330).

-- Covering, in byte-wise asset order: an index-only scan gives the rows
-- sorted. asset_days_day_c_idx also serves the day ranges that 0005's
-- asset_days_day_idx served (daily_uptime; flapping_assets' candidates,
-- index-only: 103 ms of its 210 were their heap reads and grouping).
CREATE INDEX asset_state_c_idx ON asset_state (asset COLLATE "C")
    INCLUDE (state, since, reason, connection_id);
CREATE INDEX asset_days_day_c_idx ON asset_days (day, asset COLLATE "C")
    INCLUDE (online_us, sessions, carried, disconnects, pair_max);
DROP INDEX asset_days_day_idx;
CREATE INDEX asset_open_sessions_c_idx
    ON asset_open_sessions (asset COLLATE "C") INCLUDE (connected_at);

-- asset_status, sorted by asset (COLLATE "C"). When the rollup has caught
-- up, that is asset_state read in index order; else the view, sorted.
-- PL/pgSQL for the choice; STABLE, so both reads see the caller's snapshot.
CREATE FUNCTION asset_status_by_asset()
RETURNS TABLE (asset text, state text, since timestamptz, reason text,
               connection_id bigint)
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM presence_dirty_assets()) THEN
        RETURN QUERY
        SELECT s.asset, s.state, s.since, s.reason, s.connection_id
        FROM asset_state s ORDER BY s.asset COLLATE "C";
    ELSE
        RETURN QUERY
        SELECT s.asset, s.state, s.since, s.reason, s.connection_id
        FROM asset_status s ORDER BY s.asset COLLATE "C";
    END IF;
END
$$;

-- daily_uptime(tz, since, until), the same rows. When the rollup has caught
-- up and every local day of [since, until) is a whole UTC day (tz is UTC
-- then, or any zone at offset 0, and since and until fall on UTC
-- midnights), each day is its asset_days rows merged with the open sessions
-- that started before its end, on asset: a whole day's row counts all its
-- online time and sessions (0005's rule for a row the local day covers, and
-- the first of its day), the open session the day's part from its start,
-- and one session. Rows in asset order within a day, day after day
-- (a one-day report is in asset order). Otherwise daily_uptime, sorted by
-- asset and day.
CREATE FUNCTION daily_uptime_by_asset(tz text, since timestamptz,
                                      until timestamptz)
RETURNS TABLE (asset text, day date, online_s float8, sessions bigint,
               ratio float8)
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    d record;
BEGIN
    IF EXISTS (SELECT 1 FROM presence_dirty_assets())
       OR EXISTS (SELECT 1 FROM presence_local_days(tz, since, until) x
                  WHERE x.lo <> date_trunc('day', x.lo, 'UTC')
                     OR x.hi <> x.lo + interval '24 hours'
                     OR x.e <> x.hi) THEN
        RETURN QUERY
        SELECT u.asset, u.day, u.online_s, u.sessions, u.ratio
        FROM daily_uptime(tz, since, until) u
        ORDER BY u.asset COLLATE "C", u.day;
        RETURN;
    END IF;
    FOR d IN SELECT * FROM presence_local_days(tz, since, until) LOOP
        RETURN QUERY
        SELECT coalesce(r.asset, o.asset), d.day, t.us::float8 / 1000000,
               coalesce(r.sessions, 0)::bigint + (o.asset IS NOT NULL)::int,
               t.us::float8 / 1000000 / 86400
        -- Sorted in a subquery of its own: the index gives that order
        -- there, where below the FULL JOIN the planner would sort again.
        FROM (SELECT a.asset, a.online_us, a.sessions
              FROM asset_days a WHERE a.day = d.day
              ORDER BY a.asset COLLATE "C" OFFSET 0) r
        FULL JOIN (SELECT b.asset, b.connected_at
                   FROM asset_open_sessions b WHERE b.connected_at < d.e) o
          ON r.asset COLLATE "C" = o.asset COLLATE "C"
        CROSS JOIN LATERAL (
            -- (greatest ignores a null: no open session adds nothing.)
            SELECT coalesce(r.online_us, 0)
                   + CASE WHEN o.asset IS NOT NULL
                          THEN round(date_part('epoch', d.e - greatest(
                                   d.lo, o.connected_at)) * 1000000)::bigint
                          ELSE 0 END AS us
        ) t
        WHERE t.us > 0;
    END LOOP;
END
$$;

-- A FULL JOIN is a merge or a hash join: off, the merge it is, reading both
-- sides in index order and giving rows in that order (a hash join was 2x
-- slower and unordered). daily_uptime, the other path, joins no hash.
ALTER FUNCTION daily_uptime_by_asset(text, timestamptz, timestamptz)
    SET enable_hashjoin = off;
