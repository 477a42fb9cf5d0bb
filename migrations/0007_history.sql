-- 0007_history.sql -- a rollup whose catch-up costs the same on day 365 as
-- on day 1: presence_rollup_refresh() recomputes, for each asset it takes,
-- only the UTC days from the one its new (or deleted) events can reach
-- onward, reading only the events from the start of the sessions alive then;
-- the days before are kept. presence_dirty records, per asset, the earliest
-- time a statement touched (froms, beside assets) and when it was written
-- (at: the rollup's lag, presence_rollup_lag()). presence_rollup_rebuild()
-- is unchanged: the reference the incremental catch-up must equal
-- (tests/integration/rollup_property.sh checks it, EXCEPT ALL both ways).
--
-- THE INVARIANT. Sessions (0005's session_rows) are per (asset,
-- connection): a session starts at its connection's first connect fc(C)
-- and ends at the earliest disconnect of (asset, C) -- whenever it is --
-- else at the next "run start" after its first run (a connect on another
-- connection: 'superseded'), else it is open. A UTC day's row of
-- asset_days/asset_day_spans depends only on the closed sessions that
-- overlap the day, on the start of the open session (the cut), and on the
-- disconnects in the day and the hour before it. For a set of changed
-- events (inserted, deleted, updated, dropped) of an asset whose earliest
-- time is T, let
--     reach(t) = least(t, fc(X(t)), fc(C) for every connection C with a
--                connect or disconnect at or after t)
-- where X(t) is the connection of the asset's latest connect before t (the
-- run in progress at t), and F = reach(T). Every session whose start, end
-- or kind differs between before and after starts at or after F:
--   * a new or deleted connect at t >= T moves its own connection's start
--     (to or from t >= T), or splits/merges the run in progress at t,
--     changing the end of that run's session only if the run is its
--     connection's first: then that run is in progress at T too, or starts
--     after T, so fc(X(T)) or T bounds it;
--   * a new disconnect (a late one closing an old open session, one that
--     replaces a 'superseded' end, or a lost one arriving) changes only its
--     connection's session: that connection has an event at or after T, so
--     fc(C) is in reach(T); a deleted disconnect's connection may have no
--     event left, so the DELETE trigger folds fc(C) into the time it
--     records (presence_rollup_mark);
--   * orphans (disconnects without a connect) are in no rollup table but
--     their disconnect counts, which are by time (>= T);
--   * retention drops a partition: its assets are recorded with -infinity
--     (the whole history of those assets is recomputed, as a rebuild does:
--     once per dropped partition, not per catch-up);
--   * declare_asset changes asset_state only, which is recomputed from
--     indexed lookups (asset_status_of) for every asset taken.
-- So every day before D0 = the UTC day of F is unchanged and is kept. The
-- days from D0 on are computed from the sessions that overlap them, and all
-- of those start at or after L = reach(D0) (a session alive at D0 either
-- has its earliest disconnect at or after D0, so its connection is in
-- reach(D0), or is the first run in progress at D0, X(D0)); the catch-up
-- reads the events from L on and the first connect and disconnect of each
-- connection in them (connections whose first connect is before L are not
-- sessions of the window: they ended before D0). The cost of a catch-up is
-- so the events since the start of the sessions alive on the earliest day
-- touched -- for a live stream, about a day of each asset -- and one probe
-- per connection among them, whatever the history kept.
--
-- Several pending presence_dirty rows of one asset, taken by different
-- catch-ups (max_rows), each recompute the days from their own D0 on from
-- the presences of that moment; each later change is recorded in a row of
-- its own, so an earlier day left stale by a row not yet taken is
-- recomputed when that row is taken.

ALTER TABLE presence_dirty
    ADD COLUMN froms timestamptz[],
    ADD COLUMN at timestamptz NOT NULL DEFAULT now();
ALTER TABLE presence_dirty ALTER COLUMN froms SET STORAGE EXTERNAL;
-- (Rows written before this migration have froms null: their assets are
-- recomputed whole, as before.)

-- The first connect and the first disconnect of one (asset, connection)
-- before t (presences_connection_id_idx). Set-returning (one row) so that
-- the planner inlines it where it is called with columns.
CREATE FUNCTION presence_connection_firsts(a text, c bigint, t timestamptz)
RETURNS TABLE (first_connect timestamptz, first_disconnect timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT min(p.time) FILTER (WHERE p.type = 'connect'),
       min(p.time) FILTER (WHERE p.type = 'disconnect')
FROM presences p
WHERE p.connection_id = c AND p.asset = a
  AND p.type IN ('connect', 'disconnect') AND p.time < t
$$;

-- reach(t) of the header: the earliest start of a session of asset a that
-- an event at or after t can change (or that is alive at t). Only a
-- connect before t can make it earlier than t: none (no X(t)), no probe.
CREATE FUNCTION presence_rollup_reach(a text, t timestamptz)
RETURNS TABLE (reach timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT least(t, x.fc, (
    SELECT min(f.first_connect)
    FROM (SELECT DISTINCT p.connection_id FROM presences p
          WHERE x.fc IS NOT NULL AND p.asset = a
            AND p.type IN ('connect', 'disconnect') AND p.time >= t) y
    CROSS JOIN LATERAL presence_connection_firsts(a, y.connection_id, t) f))
FROM (SELECT (
    SELECT f.first_connect
    FROM (SELECT p.connection_id FROM presences p
          WHERE p.asset = a AND p.type = 'connect' AND p.time < t
          ORDER BY p.time DESC, p.id DESC LIMIT 1) x
    CROSS JOIN LATERAL presence_connection_firsts(a, x.connection_id, t) f)
    AS fc) x
$$;

-- The sessions of asset a that start at or after l (0005's session_rows,
-- from the connects at or after l): the connections whose first connect is
-- at or after l, each from its first connect to its earliest disconnect
-- (whenever), else the next run start, else open. Correct for every
-- session starting at or after l: the run starts after l are those of the
-- connects after l, and a connect continuing a run begun before l belongs
-- to a connection left out. The events before l are probed per connection
-- only when the asset has a connect or disconnect before l.
CREATE FUNCTION presence_sessions_since(a text, l timestamptz)
RETURNS TABLE (connection_id bigint, connected_at timestamptz,
               ended_at timestamptz, end_kind text)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT r.connection_id, r.time, coalesce(r.fd, r.next_time),
       CASE WHEN r.fd IS NOT NULL THEN 'disconnect'
            WHEN r.next_time IS NOT NULL THEN 'superseded'
            ELSE 'open' END
FROM (
    SELECT s.connection_id, s.time, s.next_time,
           least(b.first_disconnect, wd.fd) AS fd, b.first_connect AS before
    FROM (SELECT EXISTS (SELECT 1 FROM presences p
                         WHERE p.asset = a AND p.type IN ('connect',
                                                          'disconnect')
                           AND p.time < l) AS hb) h
    CROSS JOIN (
        SELECT DISTINCT ON (x.connection_id) x.connection_id, x.time,
               x.next_time
        FROM (
            SELECT y.connection_id, y.time, y.id,
                   lead(y.time) OVER (ORDER BY y.time, y.id) AS next_time
            FROM (
                SELECT p.connection_id, p.time, p.id,
                       p.connection_id IS DISTINCT FROM lag(p.connection_id)
                           OVER (ORDER BY p.time, p.id) AS run_start
                FROM presences p
                WHERE p.asset = a AND p.type = 'connect' AND p.time >= l
            ) y
            WHERE y.run_start
        ) x
        ORDER BY x.connection_id, x.time, x.id
    ) s
    LEFT JOIN (
        SELECT p.connection_id, min(p.time) AS fd
        FROM presences p
        WHERE p.asset = a AND p.type = 'disconnect' AND p.time >= l
        GROUP BY p.connection_id
    ) wd ON wd.connection_id = s.connection_id
    LEFT JOIN LATERAL (
        SELECT f.first_connect, f.first_disconnect
        FROM presence_connection_firsts(a, s.connection_id, l) f
        WHERE h.hb
    ) b ON true
) r
WHERE r.before IS NULL
$$;

-- Recompute the rollup's rows of the given assets from the UTC day their
-- changes can reach (froms[i]: the earliest time of asset todo[i]'s changed
-- events; see the header): asset_state whole (indexed lookups),
-- asset_days and asset_day_spans from that day on, asset_open_sessions.
-- Rows that did not change are not rewritten.
CREATE FUNCTION presence_rollup_assets_since(todo text[], froms timestamptz[])
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    d0s timestamptz[];
    ls timestamptz[];
BEGIN
    SELECT array_agg(k.d0 ORDER BY x.i), array_agg(l.reach ORDER BY x.i)
    INTO d0s, ls
    FROM unnest(todo, froms) WITH ORDINALITY x(a, t, i)
    CROSS JOIN LATERAL presence_rollup_reach(x.a, x.t) f
    CROSS JOIN LATERAL (SELECT date_trunc('day', f.reach, 'UTC') AS d0) k
    CROSS JOIN LATERAL presence_rollup_reach(x.a, k.d0) l;

    WITH fresh AS MATERIALIZED (
        SELECT * FROM asset_status_for(todo)
    ), gone AS (
        DELETE FROM asset_state s
        WHERE s.asset = ANY (todo)
          AND NOT EXISTS (SELECT 1 FROM fresh f WHERE f.asset = s.asset)
    )
    INSERT INTO asset_state AS s (asset, state, since, reason, connection_id)
    SELECT f.asset, f.state, f.since, f.reason, f.connection_id FROM fresh f
    ON CONFLICT (asset) DO UPDATE
        SET state = excluded.state, since = excluded.since,
            reason = excluded.reason, connection_id = excluded.connection_id
        WHERE (s.state, s.since, s.reason, s.connection_id)
              IS DISTINCT FROM (excluded.state, excluded.since,
                                excluded.reason, excluded.connection_id);

    WITH w AS MATERIALIZED (
        -- Each asset, its first day recomputed (d0, also as a UTC
        -- timestamp and a date) and the start of its window (l).
        SELECT x.a AS asset, x.d0, (x.d0 AT TIME ZONE 'UTC') AS d0t,
               (x.d0 AT TIME ZONE 'UTC')::date AS d0d, x.l
        FROM unnest(todo, d0s, ls) x(a, d0, l)
    ), s AS MATERIALIZED (
        SELECT w.asset, w.d0t, r.connection_id, r.connected_at AS c,
               r.ended_at AS e, r.end_kind AS k
        FROM w CROSS JOIN LATERAL (
            SELECT * FROM presence_sessions_since(w.asset, w.l) q OFFSET 0) r
    ), closed AS (
        SELECT s.asset, s.d0t, s.c, s.e FROM s
        WHERE s.k <> 'open' AND s.e > s.c
    ), pieces AS (
        SELECT u.asset, d.d::date AS day,
               r.r * tstzrange(d.d AT TIME ZONE 'UTC',
                               (d.d + interval '1 day') AT TIME ZONE 'UTC')
                   AS part
        FROM (SELECT cl.asset, min(cl.d0t) AS d0t,
                     range_agg(tstzrange(cl.c, cl.e)) AS m
              FROM closed cl GROUP BY cl.asset) u
        LEFT JOIN s o ON o.asset = u.asset AND o.k = 'open'
        CROSS JOIN LATERAL unnest(u.m * tstzmultirange(tstzrange(NULL, o.c)))
            r(r)
        CROSS JOIN LATERAL generate_series(
            greatest(date_trunc('day', lower(r.r) AT TIME ZONE 'UTC'), u.d0t),
            (upper(r.r) - interval '1 microsecond') AT TIME ZONE 'UTC',
            interval '1 day') d(d)
    ), piece_days AS (
        SELECT p.asset, p.day,
               sum(extract(epoch FROM upper(p.part) - lower(p.part))
                   * 1000000)::bigint AS online_us,
               array_agg(lower(p.part) ORDER BY lower(p.part)) AS lo,
               array_agg(upper(p.part) ORDER BY lower(p.part)) AS hi
        FROM pieces p GROUP BY p.asset, p.day
    ), session_days AS (
        SELECT cl.asset, d.d::date AS day, count(*)::int AS sessions,
               count(*) FILTER (WHERE cl.c < d.d AT TIME ZONE 'UTC')::int
                   AS carried,
               array_agg(cl.c ORDER BY cl.c, cl.e) AS starts,
               array_agg(cl.e ORDER BY cl.c, cl.e) AS ends
        FROM closed cl
        CROSS JOIN LATERAL generate_series(
            greatest(date_trunc('day', cl.c AT TIME ZONE 'UTC'), cl.d0t),
            (cl.e - interval '1 microsecond') AT TIME ZONE 'UTC',
            interval '1 day') d(d)
        GROUP BY cl.asset, d.d
    ), disc AS MATERIALIZED (
        -- The disconnects from an hour before d0 (the pair of hours across
        -- midnight) on.
        SELECT w.asset, w.d0d, q.time, q.id
        FROM w CROSS JOIN LATERAL (
            SELECT p.time, p.id
            FROM presences p
            WHERE p.asset = w.asset AND p.type = 'disconnect'
              AND p.time >= w.d0 - interval '1 hour' OFFSET 0) q
    ), hours AS (
        SELECT x.asset, min(x.d0d) AS d0d,
               date_trunc('hour', x.time AT TIME ZONE 'UTC') AS h,
               count(*)::int AS n
        FROM disc x GROUP BY x.asset, 3
    ), disconnect_days AS (
        SELECT x.asset, x.h::date AS day,
               sum(x.n)::int AS disconnects,
               max(x.n + CASE WHEN x.ph = x.h - interval '1 hour' THEN x.pn
                              ELSE 0 END)::int AS pair_max
        FROM (SELECT h.asset, h.d0d, h.h, h.n,
                     lag(h.h) OVER v AS ph, lag(h.n) OVER v AS pn
              FROM hours h WINDOW v AS (PARTITION BY h.asset ORDER BY h.h)) x
        WHERE x.h::date >= x.d0d
        GROUP BY x.asset, x.h::date
    ), flap_days AS (
        SELECT DISTINCT ON (v.asset, v.day) v.asset, v.day, v.n, v.time,
               v.id, v.last
        FROM (
            SELECT x.asset, (x.time AT TIME ZONE 'UTC')::date AS day,
                   x.time, x.id, x.d0d, count(*) OVER v AS n,
                   last_value(x.time) OVER v AS last
            FROM disc x
            WINDOW v AS (PARTITION BY x.asset ORDER BY x.time
                         RANGE BETWEEN CURRENT ROW
                               AND interval '1 hour'
                                   - interval '1 microsecond' FOLLOWING)
        ) v
        WHERE v.day >= v.d0d
          AND v.time <= (v.day + 1)::timestamp AT TIME ZONE 'UTC'
                        - interval '1 hour'
        ORDER BY v.asset, v.day, v.n DESC, v.time, v.id
    ), fresh AS MATERIALIZED (
        SELECT k.asset, k.day, coalesce(p.online_us, 0) AS online_us,
               coalesce(sd.sessions, 0) AS sessions,
               coalesce(sd.carried, 0) AS carried,
               coalesce(dd.disconnects, 0) AS disconnects,
               coalesce(dd.pair_max, 0) AS pair_max, fd.n::int AS flap_n,
               fd.time AS flap_time, fd.id AS flap_id, fd.last AS flap_last,
               coalesce(p.lo, '{}') AS lo, coalesce(p.hi, '{}') AS hi,
               coalesce(sd.starts, '{}') AS starts,
               coalesce(sd.ends, '{}') AS ends
        FROM (SELECT asset, day FROM piece_days
              UNION SELECT asset, day FROM session_days
              UNION SELECT asset, day FROM disconnect_days) k
        LEFT JOIN piece_days p ON p.asset = k.asset AND p.day = k.day
        LEFT JOIN session_days sd ON sd.asset = k.asset AND sd.day = k.day
        LEFT JOIN disconnect_days dd
               ON dd.asset = k.asset AND dd.day = k.day
        LEFT JOIN flap_days fd ON fd.asset = k.asset AND fd.day = k.day
    ), gone AS (
        DELETE FROM asset_days d
        USING w
        WHERE d.asset = w.asset AND d.day >= w.d0d
          AND NOT EXISTS (SELECT 1 FROM fresh f
                          WHERE f.asset = d.asset AND f.day = d.day)
    ), gone_spans AS (
        DELETE FROM asset_day_spans d
        USING w
        WHERE d.asset = w.asset AND d.day >= w.d0d
          AND NOT EXISTS (SELECT 1 FROM fresh f
                          WHERE f.asset = d.asset AND f.day = d.day
                            AND (cardinality(f.lo) > 0
                                 OR cardinality(f.starts) > 0))
    ), spans AS (
        INSERT INTO asset_day_spans AS d (asset, day, lo, hi, starts, ends)
        SELECT f.asset, f.day, f.lo, f.hi, f.starts, f.ends FROM fresh f
        WHERE cardinality(f.lo) > 0 OR cardinality(f.starts) > 0
        ON CONFLICT (asset, day) DO UPDATE
            SET lo = excluded.lo, hi = excluded.hi, starts = excluded.starts,
                ends = excluded.ends
            WHERE (d.lo, d.hi, d.starts, d.ends)
                  IS DISTINCT FROM (excluded.lo, excluded.hi,
                                    excluded.starts, excluded.ends)
    ), open_gone AS (
        DELETE FROM asset_open_sessions o
        WHERE o.asset = ANY (todo)
          AND NOT EXISTS (SELECT 1 FROM s WHERE s.asset = o.asset
                                            AND s.k = 'open')
    ), open_fresh AS (
        INSERT INTO asset_open_sessions AS o (asset, connection_id,
                                              connected_at)
        SELECT s.asset, s.connection_id, s.c FROM s WHERE s.k = 'open'
        ON CONFLICT (asset) DO UPDATE
            SET connection_id = excluded.connection_id,
                connected_at = excluded.connected_at
            WHERE (o.connection_id, o.connected_at)
                  IS DISTINCT FROM (excluded.connection_id,
                                    excluded.connected_at)
    )
    INSERT INTO asset_days AS d (asset, day, online_us, sessions, carried,
                                 disconnects, pair_max, flap_n, flap_time,
                                 flap_id, flap_last)
    SELECT f.asset, f.day, f.online_us, f.sessions, f.carried,
           f.disconnects, f.pair_max, f.flap_n, f.flap_time, f.flap_id,
           f.flap_last
    FROM fresh f
    ON CONFLICT (asset, day) DO UPDATE
        SET online_us = excluded.online_us, sessions = excluded.sessions,
            carried = excluded.carried, disconnects = excluded.disconnects,
            pair_max = excluded.pair_max, flap_n = excluded.flap_n,
            flap_time = excluded.flap_time, flap_id = excluded.flap_id,
            flap_last = excluded.flap_last
        WHERE (d.online_us, d.sessions, d.carried, d.disconnects, d.pair_max,
               d.flap_n, d.flap_time, d.flap_id, d.flap_last)
              IS DISTINCT FROM (excluded.online_us, excluded.sessions,
                                excluded.carried, excluded.disconnects,
                                excluded.pair_max, excluded.flap_n,
                                excluded.flap_time, excluded.flap_id,
                                excluded.flap_last);
END
$$;

-- The statement triggers (0004's), recording beside each asset the
-- earliest time the statement touched for it. For UPDATE and DELETE (rare:
-- --on-conflict replace, retention by hand) a removed disconnect also
-- records its connection's first connect (the session it ended), as its
-- connection may have no event left at or after that time (see the header).
CREATE OR REPLACE FUNCTION presence_rollup_mark() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    rows text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO presence_dirty (assets, froms, minutes, types, reasons,
                                    counts)
        SELECT a.assets, a.froms, m.minutes, m.types, m.reasons, m.counts
        FROM (SELECT array_agg(g.minute) AS minutes, array_agg(g.type) AS types,
                     array_agg(g.reason) AS reasons, array_agg(g.n) AS counts
              FROM (SELECT date_bin('1 minute', n.time,
                                    '2000-01-01 00:00:00+00') AS minute,
                           n.type, n.reason, count(*) AS n
                    FROM rollup_new n GROUP BY 1, 2, 3) g
              HAVING count(*) > 0) m
        CROSS JOIN (
            SELECT coalesce(array_agg(s.asset), '{}') AS assets,
                   coalesce(array_agg(s.t), '{}') AS froms
            FROM (SELECT n.asset, min(n.time) AS t FROM rollup_new n
                  WHERE n.asset IS NOT NULL
                    AND n.type IN ('connect', 'disconnect', 'declare_asset')
                  GROUP BY n.asset) s) a;
        RETURN NULL;
    END IF;
    rows := 'SELECT -1 AS sign, o.asset, o.type, o.reason, o.time, '
            'o.connection_id FROM rollup_old o';
    IF TG_OP = 'UPDATE' THEN
        rows := rows || ' UNION ALL SELECT 1, n.asset, n.type, n.reason, '
                        'n.time, n.connection_id FROM rollup_new n';
    END IF;
    EXECUTE format($q$
        INSERT INTO presence_dirty (assets, froms, minutes, types, reasons,
                                    counts)
        SELECT a.assets, a.froms, m.minutes, m.types, m.reasons, m.counts
        FROM (SELECT coalesce(array_agg(s.asset), '{}') AS assets,
                     coalesce(array_agg(s.t), '{}') AS froms
              FROM (SELECT r.asset,
                           min(CASE WHEN r.sign < 0 AND r.type = 'disconnect'
                                    THEN least(r.time, (
                                        SELECT f.first_connect
                                        FROM presence_connection_firsts(
                                            r.asset, r.connection_id,
                                            'infinity') f))
                                    ELSE r.time END) AS t
                    FROM (%1$s) r
                    WHERE r.asset IS NOT NULL
                      AND r.type IN ('connect', 'disconnect', 'declare_asset')
                    GROUP BY r.asset) s) a
        CROSS JOIN (
            SELECT coalesce(array_agg(g.minute), '{}') AS minutes,
                   coalesce(array_agg(g.type), '{}') AS types,
                   coalesce(array_agg(g.reason), '{}') AS reasons,
                   coalesce(array_agg(g.n), '{}') AS counts
            FROM (SELECT date_bin('1 minute', r.time,
                                  '2000-01-01 00:00:00+00') AS minute,
                         r.type, r.reason, sum(r.sign)::bigint AS n
                  FROM (%1$s) r GROUP BY 1, 2, 3
                  HAVING sum(r.sign) <> 0) g) m
        WHERE EXISTS (SELECT 1 FROM (%1$s) r) $q$, rows);
    RETURN NULL;
END
$$;

-- A partition about to be dropped (0004's, with froms): its assets are
-- recomputed whole (-infinity): their history loses its start.
CREATE OR REPLACE FUNCTION presence_partition_dropping(part text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format($q$
        INSERT INTO presence_dirty (assets, froms, minutes, types, reasons,
                                    counts)
        SELECT a.assets,
               array_fill('-infinity'::timestamptz,
                          ARRAY[cardinality(a.assets)]),
               m.minutes, m.types, m.reasons, m.counts
        FROM (SELECT coalesce(array_agg(DISTINCT o.asset), '{}') AS assets
              FROM %1$I o
              WHERE o.asset IS NOT NULL
                AND o.type IN ('connect', 'disconnect', 'declare_asset')) a
        CROSS JOIN (
            SELECT array_agg(g.minute) AS minutes, array_agg(g.type) AS types,
                   array_agg(g.reason) AS reasons, array_agg(g.n) AS counts
            FROM (SELECT date_bin('1 minute', o.time,
                                  '2000-01-01 00:00:00+00') AS minute,
                         o.type, o.reason, -count(*) AS n
                  FROM %1$I o GROUP BY 1, 2, 3) g
            HAVING count(*) > 0) m $q$, part);
END
$$;

-- 0005's catch-up, incremental: the assets taken with a time recompute
-- from the day it reaches (presence_rollup_assets_since), those taken with
-- none (rows from before this migration, a dropped partition) whole
-- (presence_rollup_assets), and so do the assets the rollup has no row of
-- yet (new ones: their whole history is what changed, and set-based is
-- cheaper than through the bounds: docs/benchmarks-history.md), and those
-- whose earliest change is more
-- than presence.rollup_whole_days (a setting; default 7) days before their
-- last day in asset_days: a change that far back (a backfill, a shuffled
-- load) recomputes most of the asset's history anyway, which the whole
-- recomputation does set-based, without a probe per connection. Returns the number of assets folded, -1 when
-- another catch-up holds the lock.
CREATE OR REPLACE FUNCTION presence_rollup_refresh(max_rows int DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    todo text[];
    froms timestamptz[];
    whole text[];
    whole_days int := coalesce(nullif(current_setting(
        'presence.rollup_whole_days', true), '')::int, 7);
BEGIN
    IF NOT pg_try_advisory_xact_lock(presence_rollup_lock_key()) THEN
        RETURN -1;
    END IF;
    WITH taken AS (
        DELETE FROM presence_dirty d
        WHERE max_rows IS NULL
           OR d.ctid = ANY (ARRAY(SELECT x.ctid FROM presence_dirty x
                                  LIMIT max_rows))
        RETURNING d.*
    ), folded AS (
        INSERT INTO presence_reason_minutes AS m (minute, type, reason, n)
        SELECT u.minute, u.type, u.reason, sum(u.n)
        FROM taken t
        CROSS JOIN LATERAL unnest(t.minutes, t.types, t.reasons, t.counts)
            u(minute, type, reason, n)
        GROUP BY 1, 2, 3
        ON CONFLICT (minute, type, reason) DO UPDATE SET n = m.n + excluded.n
        RETURNING 1
    )
    SELECT coalesce(array_agg(x.asset) FILTER (WHERE NOT x.whole), '{}'),
           coalesce(array_agg(x.t) FILTER (WHERE NOT x.whole), '{}'),
           coalesce(array_agg(x.asset) FILTER (WHERE x.whole), '{}')
    INTO todo, froms, whole
    FROM (SELECT y.asset, y.t,
                 y.t = '-infinity'
                 OR NOT EXISTS (SELECT 1 FROM asset_state s
                                WHERE s.asset = y.asset)
                 OR coalesce((y.t AT TIME ZONE 'UTC')::date < (
                        SELECT max(d.day) FROM asset_days d
                        WHERE d.asset = y.asset) - whole_days, false)
                    AS whole
          FROM (SELECT a.asset, min(coalesce(a.t, '-infinity')) AS t
                FROM taken t
                CROSS JOIN LATERAL unnest(t.assets, t.froms) a(asset, t)
                WHERE a.asset IS NOT NULL
                GROUP BY a.asset) y) x;
    IF cardinality(whole) > 0 THEN
        PERFORM presence_rollup_assets(whole);
    END IF;
    IF cardinality(todo) > 0 THEN
        PERFORM presence_rollup_assets_since(todo, froms);
    END IF;
    RETURN cardinality(todo) + cardinality(whole);
END
$$;
ALTER FUNCTION presence_rollup_refresh(int) SET jit = off;

-- The rollup's lag: the age in seconds of the oldest statement still in
-- presence_dirty (0 when nothing is pending). The metric
-- presence_rollup_lag_seconds and report's notice read it.
CREATE FUNCTION presence_rollup_lag() RETURNS float8
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT coalesce(greatest(extract(epoch FROM now() - min(d.at)), 0), 0)::float8
FROM presence_dirty d
$$;

-- PARTITIONS FOR WHATEVER IS WRITTEN. 0003 attached the old table as
-- presences_legacy for every id below the end of the period it ran in, so
-- a backfill of earlier times (ids) landed there, where no partition could
-- be made for it and retention never reached it. Its range is cut down to
-- the ids it holds: [MINVALUE, its largest id + 1) (MINVALUE TO 1 when
-- empty: no id is below 1). A validated CHECK on the new bound lets the
-- ATTACH skip its scan; the cost is one read of it (the CHECK), under this
-- migration's lock. The ids above are free for partitions: the writer
-- creates them for the rows it writes (lib/writer/ranges.c) through
-- presence_partitions_ensure, and this migration creates the current
-- period's and those ahead again.
DO $$
DECLARE
    cur bigint;
    hi bigint;
BEGIN
    SELECT p.to_id INTO cur FROM presence_partitions p
    WHERE p.partition = 'presences_legacy';
    IF NOT FOUND OR cur IS NULL THEN
        RETURN;
    END IF;
    SELECT coalesce(max(l.id) + 1, 1) INTO hi FROM presences_legacy l;
    IF hi >= cur THEN
        RETURN;
    END IF;
    ALTER TABLE presences DETACH PARTITION presences_legacy;
    ALTER TABLE presences_legacy DROP CONSTRAINT presences_legacy_range;
    EXECUTE format('ALTER TABLE presences_legacy ADD CONSTRAINT '
                   'presences_legacy_range CHECK (id < %s)', hi);
    EXECUTE format('ALTER TABLE presences ATTACH PARTITION presences_legacy '
                   'FOR VALUES FROM (MINVALUE) TO (%s)', hi);
    PERFORM presence_partitions_ensure();
END
$$;
