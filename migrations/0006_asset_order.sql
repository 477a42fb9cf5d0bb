-- 0006_asset_order.sql -- the fleet-wide status and uptime in asset order,
-- fast: asset_status_by_asset() and daily_uptime_by_asset(), the same rows
-- as asset_status and daily_uptime, in byte-wise asset order (COLLATE "C",
-- the order the report prints; day by day for uptime; the assets a catch-up
-- has not reached yet last), read from the rollup through covering indexes
-- in that order.
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

-- asset_status's rows: the assets the rollup has caught up with from
-- asset_state, in byte-wise asset order (read so from the index, the others
-- left out by a merge anti-join that keeps it), then the assets still in
-- presence_dirty from presences (asset_status_of), in that order too. So
-- the whole is in asset order when nothing waits for a catch-up, and a
-- report beside a live writer (whose last statements are not caught up yet)
-- recomputes only their assets. PL/pgSQL: STABLE, both reads see the
-- caller's snapshot.
CREATE FUNCTION asset_status_by_asset()
RETURNS TABLE (asset text, state text, since timestamptz, reason text,
               connection_id bigint)
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    dirty text[] := ARRAY(SELECT x FROM presence_dirty_assets() x);
BEGIN
    RETURN QUERY
    SELECT s.asset, s.state, s.since, s.reason, s.connection_id
    FROM asset_state s
    WHERE NOT EXISTS (SELECT 1 FROM unnest(dirty) x(a)
                      WHERE x.a COLLATE "C" = s.asset COLLATE "C")
    ORDER BY s.asset COLLATE "C";
    RETURN QUERY
    SELECT f.asset, f.state, f.since, f.reason, f.connection_id
    FROM unnest(dirty) x(a) CROSS JOIN LATERAL asset_status_of(x.a) f
    ORDER BY f.asset COLLATE "C";
END
$$;

-- daily_uptime(tz, since, until)'s rows, day after day. A local day that
-- is a whole UTC day [lo, hi) (any day of UTC, or of a zone at offset 0),
-- counted to e = hi -- or to an e before hi when no event is stored at or
-- after e, so that every closed session and part of one on that day ends
-- before e -- is its asset_days rows merged with the open sessions that
-- began before e, on asset: a row counts all its online time and sessions
-- (0005's rule for a row the local day covers, and the first of its day),
-- an open session the day's part from its start to e, and one session. The
-- assets the rollup has not caught up with are left out of the merge and
-- computed from presences (daily_uptime_of) after it. Any other day is
-- daily_uptime's. Within a day, rows in byte-wise asset order (the
-- caught-up assets, then the others, for a merged day; all of them for the
-- others).
CREATE FUNCTION daily_uptime_by_asset(tz text, since timestamptz,
                                      until timestamptz)
RETURNS TABLE (asset text, day date, online_s float8, sessions bigint,
               ratio float8)
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    dirty text[] := ARRAY(SELECT x FROM presence_dirty_assets() x);
    d record;
BEGIN
    FOR d IN SELECT * FROM presence_local_days(tz, since, until) LOOP
        IF d.lo <> date_trunc('day', d.lo, 'UTC')
           OR d.hi <> d.lo + interval '24 hours'
           OR (d.e < d.hi
               AND EXISTS (SELECT 1 FROM presences p WHERE p.time >= d.e))
        THEN
            RETURN QUERY
            SELECT u.asset, u.day, u.online_s, u.sessions, u.ratio
            FROM daily_uptime(tz, d.lo, d.e) u
            ORDER BY u.asset COLLATE "C";
            CONTINUE;
        END IF;
        RETURN QUERY
        SELECT coalesce(r.asset, o.asset), d.day, t.us::float8 / 1000000,
               coalesce(r.sessions, 0)::bigint + (o.asset IS NOT NULL)::int,
               t.us::float8 / 1000000 / 86400
        -- Each side sorted in a subquery of its own: the index gives that
        -- order there (a merge anti-join keeps it), where below the FULL
        -- JOIN the planner would sort again.
        FROM (SELECT a.asset, a.online_us, a.sessions
              FROM asset_days a
              WHERE a.day = d.day
                AND NOT EXISTS (SELECT 1 FROM unnest(dirty) x(a)
                                WHERE x.a COLLATE "C" = a.asset COLLATE "C")
              ORDER BY a.asset COLLATE "C" OFFSET 0) r
        FULL JOIN (SELECT b.asset, b.connected_at
                   FROM asset_open_sessions b
                   WHERE b.connected_at < d.e
                     AND NOT EXISTS (SELECT 1 FROM unnest(dirty) x(a)
                                     WHERE x.a COLLATE "C"
                                           = b.asset COLLATE "C")
                   ORDER BY b.asset COLLATE "C" OFFSET 0) o
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
        RETURN QUERY
        SELECT u.asset, u.day, u.online_s, u.sessions, u.ratio
        FROM unnest(dirty) x(a)
        CROSS JOIN LATERAL daily_uptime_of(x.a, tz, d.lo, d.e) u
        ORDER BY u.asset COLLATE "C";
    END LOOP;
END
$$;

-- A FULL JOIN is a merge or a hash join: off, the merge it is, reading both
-- sides in index order and giving rows in that order (a hash join was 2x
-- slower and unordered); and the anti-joins with the dirty assets merge
-- too, keeping the index order. daily_uptime and asset_status_of, the
-- other paths, join no hash.
ALTER FUNCTION daily_uptime_by_asset(text, timestamptz, timestamptz)
    SET enable_hashjoin = off;
ALTER FUNCTION asset_status_by_asset() SET enable_hashjoin = off;
