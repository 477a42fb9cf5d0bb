-- 0005_session_days.sql -- uptime and flapping from the rollup: per asset and
-- UTC day, what its closed sessions and its disconnects add up to
-- (asset_days), and its session in progress (asset_open_sessions), both kept
-- by presence_rollup_refresh beside asset_state; daily_uptime and
-- flapping_assets redefined on them, exact whatever the rollup's lag (the
-- assets still in presence_dirty are computed from presences, as 0002 does).
--
-- One change of meaning, so that a day's uptime can come from the rollup:
-- sessions no longer ignore the events at or after `until`. A session is what
-- all stored events make it (CONTRACT §7 defines it from the events, not
-- "as of" a time); `until` selects (sessions that start before it) and
-- measures (an open session lasts until it; uptime counts nothing at or
-- after it). Before, a session whose disconnect came after `until` was
-- reported open as of `until`; now it is reported with that disconnect.

-- Every session and orphan of every asset, from all events (0002's
-- definition without its `time < until`): a session is one (asset,
-- connection_id) with a connect, starting at its earliest connect (by time,
-- id), ending at the earliest disconnect of the same (asset, connection_id)
-- ('disconnect'), else at the asset's next connect on another connection
-- ('superseded'), else 'open' (ended_at null). An orphan is a disconnect
-- whose (asset, connection_id) has no connect: connected_at null, ended_at
-- its earliest disconnect. Inlined: a filter on asset reaches the indexes.
CREATE FUNCTION session_rows()
RETURNS TABLE (asset text, connection_id bigint, connected_at timestamptz,
               ended_at timestamptz, end_kind text, connect_reason text,
               disconnect_reason text)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT s.asset, s.connection_id, s.connected_at, s.ended_at, s.end_kind,
       s.connect_reason, s.disconnect_reason
FROM (
    SELECT c.asset, c.connection_id, c.time AS connected_at,
           coalesce(d.time, c.next_time) AS ended_at,
           CASE WHEN d.time IS NOT NULL THEN 'disconnect'
                WHEN c.next_time IS NOT NULL THEN 'superseded'
                ELSE 'open' END AS end_kind,
           c.reason AS connect_reason, d.reason AS disconnect_reason
    FROM (
        -- The first run of each connection: its earliest connect, and the
        -- start of the next run (a connect on another connection).
        SELECT DISTINCT ON (r.asset, r.connection_id)
               r.asset, r.connection_id, r.time, r.reason, r.next_time
        FROM (
            SELECT x.asset, x.connection_id, x.time, x.id, x.reason,
                   lead(x.time) OVER (PARTITION BY x.asset
                                      ORDER BY x.time, x.id) AS next_time
            FROM (
                -- Runs of consecutive connects on one connection.
                SELECT p.asset, p.connection_id, p.time, p.id, p.reason,
                       p.connection_id IS DISTINCT FROM lag(p.connection_id)
                           OVER (PARTITION BY p.asset ORDER BY p.time, p.id)
                           AS run_start
                FROM presences p
                WHERE p.type = 'connect' AND p.asset IS NOT NULL
            ) x
            WHERE x.run_start
        ) r
        ORDER BY r.asset, r.connection_id, r.time, r.id
    ) c
    LEFT JOIN (
        SELECT DISTINCT ON (p.asset, p.connection_id)
               p.asset, p.connection_id, p.time, p.reason
        FROM presences p
        WHERE p.type = 'disconnect' AND p.asset IS NOT NULL
        ORDER BY p.asset, p.connection_id, p.time, p.id
    ) d ON d.asset = c.asset AND d.connection_id = c.connection_id
    UNION ALL
    SELECT o.asset, o.connection_id, NULL, o.time, 'orphan', NULL, o.reason
    FROM (
        SELECT DISTINCT ON (p.asset, p.connection_id)
               p.asset, p.connection_id, p.time, p.reason
        FROM presences p
        WHERE p.type = 'disconnect' AND p.asset IS NOT NULL
          AND NOT EXISTS (
              SELECT 1 FROM presences k
              WHERE k.connection_id = p.connection_id AND k.asset = p.asset
                AND k.type = 'connect')
        ORDER BY p.asset, p.connection_id, p.time, p.id
    ) o
) s
$$;

-- Sessions overlapping [since, until): the sessions that start before until
-- and have not ended by since (or start at or after since: a zero-length
-- one), and the orphans whose disconnect is in [since, until). An open
-- session is measured up to until.
CREATE OR REPLACE FUNCTION sessions_in(since timestamptz, until timestamptz)
RETURNS TABLE (asset text, connection_id bigint, connected_at timestamptz,
               ended_at timestamptz, end_kind text, duration_s float8,
               connect_reason text, disconnect_reason text)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT s.asset, s.connection_id, s.connected_at, s.ended_at, s.end_kind,
       CASE WHEN s.connected_at IS NOT NULL
            THEN extract(epoch FROM greatest(coalesce(s.ended_at, until)
                                             - s.connected_at,
                                             interval '0'))::float8
       END,
       s.connect_reason, s.disconnect_reason
FROM session_rows() s
WHERE CASE WHEN s.connected_at IS NULL
           THEN s.ended_at >= since AND s.ended_at < until
           ELSE s.connected_at < until
                AND (coalesce(s.ended_at, until) > since
                     OR s.connected_at >= since)
      END
$$;

-- session_rows of each of the given assets, one asset at a time: the
-- subquery (kept apart by OFFSET 0) is a parameterized scan, so `asset =
-- <that asset>` reaches every index scan inside, the disconnects' side of the
-- LEFT JOIN included. (`asset = ANY (array)`, or a join the planner
-- flattens, leaves that side scanning every disconnect: 3.6 s for 2 assets
-- of 10M rows; this: 0.25 ms an asset.)
CREATE FUNCTION session_rows_for(assets text[])
RETURNS TABLE (asset text, connection_id bigint, connected_at timestamptz,
               ended_at timestamptz, end_kind text, connect_reason text,
               disconnect_reason text)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT r.asset, r.connection_id, r.connected_at, r.ended_at, r.end_kind,
       r.connect_reason, r.disconnect_reason
FROM (SELECT DISTINCT u.a FROM unnest(assets) u(a)) x
CROSS JOIN LATERAL (SELECT * FROM session_rows() q WHERE q.asset = x.a
                    OFFSET 0) r
$$;

-- 0002's daily uptime of one asset, from presences (uptime_ranges): what
-- daily_uptime gives for the assets the rollup has not caught up with.
CREATE FUNCTION daily_uptime_of(a text, tz text, since timestamptz,
                                until timestamptz)
RETURNS TABLE (asset text, day date, online_s float8, sessions bigint,
               ratio float8)
-- PL/pgSQL, planned for its one asset: inlined into daily_uptime's join, the
-- planner would compute every asset's sessions first.
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    RETURN QUERY
    SELECT g.asset, g.day, u.online_s, g.n,
           u.online_s / extract(epoch FROM g.hi - g.lo)::float8
    FROM uptime_ranges(tz, since, until) g
    CROSS JOIN LATERAL (
        SELECT sum(extract(epoch FROM upper(x) - lower(x)))::float8
                   AS online_s
        FROM unnest(g.online) x
    ) u
    WHERE g.asset = a AND u.online_s > 0;
END
$$;

-- Per asset and UTC day (day: the date in UTC, [day 00:00, next day 00:00)
-- UTC), from its sessions of positive length that have an end ('closed':
-- disconnect or superseded) and its disconnects:
--   online_us    the length of the union of its closed sessions, cut at the
--                start of its open session (if any), within the day, in
--                microseconds;
--   sessions     the closed sessions overlapping the day; carried: those of
--                them that started before the day;
--   disconnects  its disconnect events with time in the day;
--   pair_max     the most disconnects in two consecutive UTC hours whose
--                later hour is in the day (an upper bound on any window of
--                an hour or less that starts in the day);
--   flap_*       the best one-hour window [t, t + 1 h) that lies in the day
--                (t a disconnect, t + 1 h <= the day's end): its disconnects
--                n, t and its id, its last disconnect (the earliest on a
--                tie; null when the day has no such window).
-- A row exists when one of these is not zero. With asset_open_sessions it
-- gives a whole UTC day's uptime; asset_day_spans holds what a part of a day
-- needs (other zones, a day cut by until). The open session's online time is
-- [connected_at, until), disjoint from the cut union.
CREATE TABLE asset_days (
    asset       text   NOT NULL,
    day         date   NOT NULL,
    online_us   bigint NOT NULL,
    sessions    int    NOT NULL,
    carried     int    NOT NULL,
    disconnects int    NOT NULL,
    pair_max    int    NOT NULL,
    flap_n      int,
    flap_time   timestamptz,
    flap_id     bigint,
    flap_last   timestamptz,
    PRIMARY KEY (asset, day)
);
CREATE INDEX asset_days_day_idx ON asset_days (day, asset);

-- The same days' detail, where there is any: lo[i], hi[i] the cut union's
-- parts within the day (disjoint, sorted); starts[i], ends[i] the closed
-- sessions overlapping the day (unclipped). Apart from asset_days so that a
-- whole day's scan reads narrow rows.
CREATE TABLE asset_day_spans (
    asset  text          NOT NULL,
    day    date          NOT NULL,
    lo     timestamptz[] NOT NULL,
    hi     timestamptz[] NOT NULL,
    starts timestamptz[] NOT NULL,
    ends   timestamptz[] NOT NULL,
    PRIMARY KEY (asset, day)
);

-- The open session of each asset that has one (at most one: a later connect
-- on another connection would have superseded it).
CREATE TABLE asset_open_sessions (
    asset         text        PRIMARY KEY,
    connection_id bigint      NOT NULL,
    connected_at  timestamptz NOT NULL
);

-- asset_days' and asset_day_spans' rows of the given assets, computed from
-- presences (empty arrays where a day has no span).
CREATE FUNCTION asset_days_for(assets text[])
RETURNS TABLE (asset text, day date, online_us bigint, sessions int,
               carried int, disconnects int, pair_max int, flap_n int,
               flap_time timestamptz, flap_id bigint, flap_last timestamptz,
               lo timestamptz[], hi timestamptz[], starts timestamptz[],
               ends timestamptz[])
LANGUAGE sql STABLE PARALLEL SAFE AS $$
WITH s AS MATERIALIZED (
    SELECT r.asset, r.connected_at AS c, r.ended_at AS e, r.end_kind AS k
    FROM session_rows_for(assets) r
    WHERE r.connected_at IS NOT NULL
), closed AS (
    SELECT s.asset, s.c, s.e FROM s WHERE s.k <> 'open' AND s.e > s.c
), pieces AS (
    -- The union of the closed sessions, cut at the open session's start
    -- (tstzrange(NULL, NULL) is everything when there is none), by UTC day.
    SELECT u.asset, d.d::date AS day,
           r.r * tstzrange(d.d AT TIME ZONE 'UTC',
                           (d.d + interval '1 day') AT TIME ZONE 'UTC') AS part
    FROM (SELECT cl.asset, range_agg(tstzrange(cl.c, cl.e)) AS m
          FROM closed cl GROUP BY cl.asset) u
    LEFT JOIN s o ON o.asset = u.asset AND o.k = 'open'
    CROSS JOIN LATERAL unnest(u.m * tstzmultirange(tstzrange(NULL, o.c))) r(r)
    CROSS JOIN LATERAL generate_series(
        date_trunc('day', lower(r.r) AT TIME ZONE 'UTC'),
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
           count(*) FILTER (WHERE cl.c < d.d AT TIME ZONE 'UTC')::int AS carried,
           array_agg(cl.c ORDER BY cl.c, cl.e) AS starts,
           array_agg(cl.e ORDER BY cl.c, cl.e) AS ends
    FROM closed cl
    CROSS JOIN LATERAL generate_series(
        date_trunc('day', cl.c AT TIME ZONE 'UTC'),
        (cl.e - interval '1 microsecond') AT TIME ZONE 'UTC',
        interval '1 day') d(d)
    GROUP BY cl.asset, d.d
), hours AS (
    SELECT p.asset, date_trunc('hour', p.time AT TIME ZONE 'UTC') AS h,
           count(*)::int AS n
    FROM presences p
    WHERE p.asset = ANY (assets) AND p.type = 'disconnect'
    GROUP BY 1, 2
), disconnect_days AS (
    SELECT x.asset, x.h::date AS day, sum(x.n)::int AS disconnects,
           max(x.n + CASE WHEN x.ph = x.h - interval '1 hour' THEN x.pn
                          ELSE 0 END)::int AS pair_max
    FROM (SELECT h.asset, h.h, h.n,
                 lag(h.h) OVER w AS ph, lag(h.n) OVER w AS pn
          FROM hours h WINDOW w AS (PARTITION BY h.asset ORDER BY h.h)) x
    GROUP BY x.asset, x.h::date
), flap_days AS (
    -- 0002's flapping windows for one hour, those inside their UTC day.
    SELECT DISTINCT ON (w.asset, w.day) w.asset, w.day, w.n, w.time, w.id,
           w.last
    FROM (
        SELECT p.asset, (p.time AT TIME ZONE 'UTC')::date AS day, p.time,
               p.id, count(*) OVER w AS n, last_value(p.time) OVER w AS last
        FROM presences p
        WHERE p.asset = ANY (assets) AND p.type = 'disconnect'
        WINDOW w AS (PARTITION BY p.asset ORDER BY p.time
                     RANGE BETWEEN CURRENT ROW
                           AND interval '1 hour' - interval '1 microsecond'
                           FOLLOWING)
    ) w
    WHERE w.time <= (w.day + 1)::timestamp AT TIME ZONE 'UTC'
                    - interval '1 hour'
    ORDER BY w.asset, w.day, w.n DESC, w.time, w.id
)
SELECT k.asset, k.day, coalesce(p.online_us, 0), coalesce(sd.sessions, 0),
       coalesce(sd.carried, 0), coalesce(dd.disconnects, 0),
       coalesce(dd.pair_max, 0), fd.n::int, fd.time, fd.id, fd.last,
       coalesce(p.lo, '{}'), coalesce(p.hi, '{}'),
       coalesce(sd.starts, '{}'), coalesce(sd.ends, '{}')
FROM (SELECT asset, day FROM piece_days
      UNION SELECT asset, day FROM session_days
      UNION SELECT asset, day FROM disconnect_days) k
LEFT JOIN piece_days p ON p.asset = k.asset AND p.day = k.day
LEFT JOIN session_days sd ON sd.asset = k.asset AND sd.day = k.day
LEFT JOIN disconnect_days dd ON dd.asset = k.asset AND dd.day = k.day
LEFT JOIN flap_days fd ON fd.asset = k.asset AND fd.day = k.day
$$;

-- Recompute the rollup's rows of these assets from presences: asset_state,
-- asset_days, asset_day_spans, asset_open_sessions. Rows that did not change are not
-- rewritten (a replay that changes nothing writes nothing).
CREATE FUNCTION presence_rollup_assets(todo text[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
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

    WITH fresh AS MATERIALIZED (
        SELECT * FROM asset_days_for(todo)
    ), gone AS (
        DELETE FROM asset_days d
        WHERE d.asset = ANY (todo)
          AND NOT EXISTS (SELECT 1 FROM fresh f
                          WHERE f.asset = d.asset AND f.day = d.day)
    ), gone_spans AS (
        DELETE FROM asset_day_spans d
        WHERE d.asset = ANY (todo)
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

    WITH fresh AS MATERIALIZED (
        SELECT r.asset, r.connection_id, r.connected_at
        FROM session_rows_for(todo) r
        WHERE r.end_kind = 'open'
    ), gone AS (
        DELETE FROM asset_open_sessions o
        WHERE o.asset = ANY (todo)
          AND NOT EXISTS (SELECT 1 FROM fresh f WHERE f.asset = o.asset)
    )
    INSERT INTO asset_open_sessions AS o (asset, connection_id, connected_at)
    SELECT f.asset, f.connection_id, f.connected_at FROM fresh f
    ON CONFLICT (asset) DO UPDATE
        SET connection_id = excluded.connection_id,
            connected_at = excluded.connected_at
        WHERE (o.connection_id, o.connected_at)
              IS DISTINCT FROM (excluded.connection_id, excluded.connected_at);
END
$$;

-- 0004's catch-up, recomputing every rollup table of the assets it takes.
CREATE OR REPLACE FUNCTION presence_rollup_refresh(max_rows int DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    todo text[];
BEGIN
    IF NOT pg_try_advisory_xact_lock(presence_rollup_lock_key()) THEN
        RETURN -1;
    END IF;
    -- Take the rows (one snapshot), fold their counts, and collect their
    -- assets.
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
    SELECT coalesce(array_agg(DISTINCT a.asset), '{}') INTO todo
    FROM taken t CROSS JOIN LATERAL unnest(t.assets) a(asset);
    IF cardinality(todo) = 0 THEN
        RETURN 0;
    END IF;
    PERFORM presence_rollup_assets(todo);
    RETURN cardinality(todo);
END
$$;

-- Empty every rollup table, the rows still to catch up with included, under
-- the catch-ups' lock (held to the end of the transaction).
CREATE FUNCTION presence_rollup_clear() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(presence_rollup_lock_key());
    DELETE FROM presence_dirty;
    DELETE FROM asset_state;
    DELETE FROM asset_days;
    DELETE FROM asset_day_spans;
    DELETE FROM asset_open_sessions;
    DELETE FROM presence_reason_minutes;
END
$$;

-- Recompute the whole rollup from presences (after rows were removed
-- without DELETE, e.g. a dropped partition). Waits for a running catch-up.
-- Every dirty row committed before it is covered by the recomputation (it
-- reads a later snapshot).
CREATE OR REPLACE FUNCTION presence_rollup_rebuild() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    todo text[];
BEGIN
    PERFORM presence_rollup_clear();
    SELECT coalesce(array_agg(DISTINCT p.asset), '{}') INTO todo
    FROM presences p WHERE p.asset IS NOT NULL;
    PERFORM presence_rollup_assets(todo);
    INSERT INTO presence_reason_minutes (minute, type, reason, n)
    SELECT date_bin('1 minute', p.time, '2000-01-01 00:00:00+00'), p.type,
           p.reason, count(*)
    FROM presences p GROUP BY 1, 2, 3;
    RETURN (SELECT count(*) FROM asset_state);
END
$$;

-- Compiling these plans (jit) costs more than running them: 1.3 s for a
-- catch-up of 2 assets, measured, against 13 ms without.
ALTER FUNCTION presence_rollup_refresh(int) SET jit = off;
ALTER FUNCTION presence_rollup_rebuild() SET jit = off;

-- TRUNCATE presences empties the rollup with it.
CREATE OR REPLACE FUNCTION presence_rollup_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM presence_rollup_clear();
    RETURN NULL;
END
$$;

-- The assets the rollup has not caught up with (still in presence_dirty).
CREATE FUNCTION presence_dirty_assets() RETURNS SETOF text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT DISTINCT a.asset
FROM presence_dirty d CROSS JOIN LATERAL unnest(d.assets) a(asset)
$$;

-- 0004's asset_status, reading the dirty assets through
-- presence_dirty_assets like the functions below.
CREATE OR REPLACE VIEW asset_status AS
WITH dirty AS MATERIALIZED (
    SELECT x AS asset FROM presence_dirty_assets() x
)
SELECT s.asset, s.state, s.since, s.reason, s.connection_id
FROM asset_state s
WHERE NOT EXISTS (SELECT 1 FROM dirty x WHERE x.asset = s.asset)
UNION ALL
SELECT f.asset, f.state, f.since, f.reason, f.connection_id
FROM dirty x CROSS JOIN LATERAL asset_status_of(x.asset) f;

-- The local days of tz that overlap [since, until): [lo, hi) from local
-- midnight to the next (23 or 25 hours across a daylight-saving change), e =
-- least(hi, until). PL/pgSQL for its row estimate (a few, not the 1 000 the
-- planner assumes of generate_series), which keeps daily_uptime's joins
-- hashed.
CREATE FUNCTION presence_local_days(tz text, since timestamptz,
                                    until timestamptz)
RETURNS TABLE (day date, lo timestamptz, hi timestamptz, e timestamptz)
LANGUAGE plpgsql STABLE PARALLEL SAFE ROWS 2 AS $$
BEGIN
    RETURN QUERY
    SELECT v::date, v AT TIME ZONE tz, (v + interval '1 day') AT TIME ZONE tz,
           least((v + interval '1 day') AT TIME ZONE tz, until)
    FROM generate_series((since AT TIME ZONE tz)::date::timestamp,
                         ((until - interval '1 microsecond')
                          AT TIME ZONE tz)::date::timestamp,
                         interval '1 day') v;
END
$$;

-- Online seconds per asset and local day of tz overlapping [since, until)
-- (0002's definition, see uptime_ranges): from asset_days, asset_day_spans
-- and asset_open_sessions for the assets the rollup has caught up with, from
-- presences (daily_uptime_of) for the others. A local day [lo, hi) counts up
-- to e = least(hi, until). Each UTC day row it overlaps adds: when the local
-- day covers the row's whole day, its totals (the sessions that started
-- before the row's day only when the row is the local day's first, else the
-- previous row counted them); else, from its spans, the parts of its union
-- within [lo, e) and the sessions overlapping [lo, e) (the same rule). The
-- open session adds [its start, until) within [lo, e), and one session.
-- Microseconds as bigint: round(date_part(...) * 1e6) is exact below 2^53,
-- and us / 1e6 in float8 is the same number as 0002's numeric sum cast. One
-- pass: the rows and the open sessions, grouped per (asset, day) (the day's
-- length carried along, not joined back);
-- the assets in presence_dirty filtered out by an array (no join).
CREATE OR REPLACE FUNCTION daily_uptime(tz text, since timestamptz,
                                        until timestamptz)
RETURNS TABLE (asset text, day date, online_s float8, sessions bigint,
               ratio float8)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
WITH days AS MATERIALIZED (
    SELECT * FROM presence_local_days(tz, since, until)
), dirty AS MATERIALIZED (
    SELECT coalesce(array_agg(x), '{}') AS assets
    FROM presence_dirty_assets() x
)
SELECT g.asset, g.day, g.us::float8 / 1000000, g.n,
       g.us::float8 / 1000000 / g.len
FROM (
    SELECT p.asset, p.day, max(p.len) AS len, sum(p.us)::bigint AS us,
           sum(p.n)::bigint AS n
    FROM (
        SELECT r.asset, d.day, date_part('epoch', d.hi - d.lo) AS len,
               CASE WHEN w.whole THEN r.online_us ELSE sp.part[1] END AS us,
               CASE WHEN w.whole
                    THEN r.sessions - CASE WHEN w.day0 > d.lo THEN r.carried
                                           ELSE 0 END
                    ELSE sp.part[2] END AS n
        FROM days d
        JOIN asset_days r
          ON r.day >= (d.lo AT TIME ZONE 'UTC')::date
         AND r.day <= ((d.e - interval '1 microsecond') AT TIME ZONE 'UTC')::date
        CROSS JOIN LATERAL (
            SELECT r.day::timestamp AT TIME ZONE 'UTC' AS day0,
                   r.day::timestamp AT TIME ZONE 'UTC' >= d.lo
                   AND (r.day + 1)::timestamp AT TIME ZONE 'UTC' <= d.e AS whole
        ) w
        -- A part of the row's day: {online µs, sessions} from its spans
        -- (one lookup, only for such rows: CASE evaluates it lazily).
        CROSS JOIN LATERAL (
            SELECT CASE WHEN NOT w.whole THEN (
                SELECT ARRAY[
                    coalesce((SELECT sum(round(date_part('epoch',
                                  least(x.b, d.e) - greatest(x.a, d.lo))
                                  * 1000000))
                              FROM unnest(s.lo, s.hi) x(a, b)
                              WHERE x.a < d.e AND x.b > d.lo), 0)::bigint,
                    (SELECT count(*) FROM unnest(s.starts, s.ends) x(a, b)
                     WHERE x.a < d.e AND x.b > d.lo
                       AND (x.a >= w.day0 OR w.day0 <= d.lo))]
                FROM asset_day_spans s
                WHERE s.asset = r.asset AND s.day = r.day) END AS part
            OFFSET 0  -- once a row: not pulled up into both uses
        ) sp
        WHERE r.asset <> ALL ((SELECT x.assets FROM dirty x)::text[])
        UNION ALL
        SELECT o.asset, d.day, date_part('epoch', d.hi - d.lo),
               round(date_part('epoch', d.e - greatest(d.lo, o.connected_at))
                     * 1000000)::bigint,
               1
        FROM days d
        JOIN asset_open_sessions o ON o.connected_at < d.e
        WHERE o.asset <> ALL ((SELECT x.assets FROM dirty x)::text[])
    ) p
    GROUP BY p.asset, p.day
) g
WHERE g.us > 0
UNION ALL
SELECT u.asset, u.day, u.online_s, u.sessions, u.ratio
FROM dirty x CROSS JOIN LATERAL unnest(x.assets) a(asset)
CROSS JOIN LATERAL daily_uptime_of(a.asset, tz, since, until) u
$$;

-- Flapping (0002's definition) computed only for the assets that can reach
-- the threshold: by asset_days, at least `threshold` disconnects in two
-- consecutive UTC hours (a window of an hour or less lies within two) or,
-- for a longer window, in the UTC days [since, until) touches; plus the
-- assets the rollup has not caught up with. An upper bound, so no asset that
-- flaps is left out. For a one-hour window, the windows that lie inside a
-- whole UTC day of [since, until) are asset_days' flap_* (that day's best);
-- only the others (starting in a day's last hour, or in a day [since,
-- until) cuts) are counted from presences, from the disconnects up to an
-- hour after them. Of all, the most disconnects, then the earliest (time,
-- id), as 0002's DISTINCT ON.
CREATE OR REPLACE FUNCTION flapping_assets(win interval, threshold int,
                                           since timestamptz,
                                           until timestamptz)
RETURNS TABLE (asset text, disconnects bigint, window_start timestamptz,
               window_end timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
WITH dirty AS MATERIALIZED (
    SELECT coalesce(array_agg(x), '{}') AS assets
    FROM presence_dirty_assets() x
), cand AS MATERIALIZED (
    SELECT ARRAY(
        SELECT r.asset FROM asset_days r
        WHERE r.day >= (since AT TIME ZONE 'UTC')::date
          AND r.day <= ((until - interval '1 microsecond')
                        AT TIME ZONE 'UTC')::date
          AND r.disconnects > 0
        GROUP BY r.asset
        HAVING CASE WHEN win <= interval '1 hour' THEN max(r.pair_max)
                    ELSE sum(r.disconnects) END >= threshold) AS assets
), whole AS MATERIALIZED (
    -- The whole UTC days of [since, until), for a one-hour window.
    SELECT d::date AS day
    FROM generate_series(
        date_trunc('day', (since AT TIME ZONE 'UTC') + interval '1 day'
                          - interval '1 microsecond'),
        (until AT TIME ZONE 'UTC') - interval '1 day', interval '1 day') d
    WHERE win = interval '1 hour'
), rest AS MATERIALIZED (
    -- Where the other windows start: [since, until) but the days' inner
    -- parts [day, day + 23 h]; and the disconnects they count, up to an
    -- hour later (within until).
    SELECT t.starts,
           (SELECT coalesce(range_agg(tstzrange(lower(x),
                                                least(upper(x) + win, until))),
                            '{}')
            FROM unnest(t.starts) x) AS reads
    FROM (SELECT tstzmultirange(tstzrange(since, until))
                 - coalesce(range_agg(tstzrange(
                       w.day::timestamp AT TIME ZONE 'UTC',
                       (w.day + 1)::timestamp AT TIME ZONE 'UTC'
                       - interval '1 hour', '[]')), '{}') AS starts
          FROM whole w) t
), counted AS (
    SELECT w.asset, w.n, w.time, w.id, w.last
    FROM (
        SELECT p.asset, p.time, p.id,
               count(*) OVER w AS n, last_value(p.time) OVER w AS last
        FROM (
            SELECT q.asset, q.time, q.id
            FROM rest t CROSS JOIN LATERAL unnest(t.reads) y
            CROSS JOIN LATERAL presences_in(lower(y), upper(y)) q
            WHERE q.type = 'disconnect'
              AND q.asset = ANY ((SELECT c.assets FROM cand c)::text[])
              AND q.asset <> ALL ((SELECT d.assets FROM dirty d)::text[])
            UNION ALL
            SELECT q.asset, q.time, q.id
            FROM presences_in(since, until) q
            WHERE q.type = 'disconnect'
              AND q.asset = ANY ((SELECT d.assets FROM dirty d)::text[])
        ) p
        WINDOW w AS (PARTITION BY p.asset ORDER BY p.time
                     RANGE BETWEEN CURRENT ROW
                           AND win - interval '1 microsecond' FOLLOWING)
    ) w
    WHERE w.n >= threshold
      AND (w.asset = ANY ((SELECT d.assets FROM dirty d)::text[])
           OR w.time <@ (SELECT t.starts FROM rest t))
)
SELECT DISTINCT ON (b.asset) b.asset, b.n, b.time, b.last
FROM (
    SELECT c.asset, c.n, c.time, c.id, c.last FROM counted c
    UNION ALL
    SELECT r.asset, r.flap_n, r.flap_time, r.flap_id, r.flap_last
    FROM asset_days r
    WHERE r.day IN (SELECT w.day FROM whole w)
      AND r.flap_n >= threshold
      AND r.asset <> ALL ((SELECT d.assets FROM dirty d)::text[])
) b
ORDER BY b.asset, b.n DESC, b.time, b.id
$$;

-- Fill the new tables from the rows already stored (0004's triggers keep
-- marking; its lock keeps other catch-ups out until this commits).
SELECT presence_rollup_rebuild();
