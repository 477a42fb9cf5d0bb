-- 0012_rollup_append.sql -- the append fold: an asset whose new events all
-- follow the events already folded (a live stream, in the common case) is
-- folded from what the rollup keeps and the new events alone, with no
-- search backwards for the sessions its changes can reach (0007's
-- reach()). 0007's incremental path stays for every other change (late
-- and out-of-order events, DELETE, UPDATE, retention) and
-- presence_rollup_rebuild() stays the reference both must equal
-- (tests/integration/rollup_property.sh, EXCEPT ALL both ways).
--
-- THE INVARIANT. asset_fold keeps, per asset, upto: a time at or after
-- every connect and disconnect of the asset the rollup has folded, and
-- last_connection: the connection of the latest of its connects (by time,
-- then id). A catch-up takes an asset by the append path when the earliest
-- time its new statements touched, T, is after upto: every event of the
-- asset before T is then folded, and every event at or after T is new (E).
-- What E can change, with O the open session kept in asset_open_sessions
-- (connection O, start oc <= upto < T) when there is one:
--   * O's session ends at O's first disconnect in E, else at the first
--     connect in E on another connection (a run start: O's run was the
--     last, so last_connection = O), else it stays open;
--   * a connection with no event before T ("new") has its session exactly
--     as 0005's session_rows gives it from E alone: its first connect in E
--     is a run start (the run before it is last_connection's), the next run
--     start and its first disconnect are in E;
--   * a connection other than O with events before T (probed, one index
--     lookup per connection: presence_connection_firsts) has its session's
--     start and end before T, unchanged, unless E holds a disconnect of it
--     and it had none (its end moves from the superseding connect to that
--     disconnect): those assets go to 0007's path. (One that had only
--     disconnects gets no session from a connect in E: its session would
--     end, at its first disconnect, before it starts; 0005 keeps no such
--     session. Its connect is a run start all the same.);
--   * old closed sessions end at or before upto < T and are unchanged; the
--     cut union kept in asset_day_spans lies before oc (0005 cuts it at the
--     open session's start) or before T when nothing was open. The new
--     closed sessions start at oc or at or after T, and the new cut is at
--     the new open session's start, at or after both. So the new union is
--     the kept one plus the new sessions' union, cut: each day's parts are
--     the kept parts and the new ones, merged (a part ending at oc joins
--     O's), and the day's sessions are the kept ones plus the new ones;
--   * disconnect counts only grow: a day's count adds E's; its pair_max
--     is the greater of the kept one and the pairs of hours ending in T's
--     hour or later; its best one-hour window the better of the kept one
--     and the windows that reach T (starting after T - 1 h) -- all read
--     from the disconnects since T - 2 h, whole; a kept best window that
--     reaches T is among those, recounted, so it never wins stale;
--   * the status (asset_status_of) is the latest connect, open unless its
--     connection has a disconnect, else the latest disconnect: E's when E
--     has them, the kept asset_state's otherwise; the one case neither
--     tells (E's connect closed by a disconnect before T while the kept
--     status is online, so the latest disconnect is not kept) is looked
--     up.
-- Deleted and updated events were folded (their time <= upto) unless they
-- were never folded, and then they are simply absent from E: either way
-- the append path is only taken when it holds. The other paths (0007's,
-- the whole recomputation, the rebuild) set upto and last_connection by
-- lookup after they fold an asset, so the marks hold whichever path ran.

CREATE TABLE asset_fold (
    asset           text        PRIMARY KEY,
    upto            timestamptz NOT NULL,
    last_connection bigint
);

-- asset_fold's rows of these assets, by lookup: the latest connect and the
-- latest disconnect (no row for an asset with neither).
CREATE FUNCTION presence_fold_marks(assets text[]) RETURNS void
LANGUAGE sql AS $$
WITH m AS MATERIALIZED (
    SELECT a.asset, greatest(lc.time, ld.time) AS upto,
           lc.connection_id
    FROM (SELECT DISTINCT u.asset FROM unnest(assets) u(asset)
          WHERE u.asset IS NOT NULL) a
    LEFT JOIN LATERAL (
        SELECT p.time, p.connection_id FROM presences p
        WHERE p.asset = a.asset AND p.type = 'connect'
        ORDER BY p.time DESC, p.id DESC LIMIT 1) lc ON true
    LEFT JOIN LATERAL (
        SELECT p.time FROM presences p
        WHERE p.asset = a.asset AND p.type = 'disconnect'
        ORDER BY p.time DESC, p.id DESC LIMIT 1) ld ON true
), gone AS (
    DELETE FROM asset_fold f USING m
    WHERE f.asset = m.asset AND m.upto IS NULL
)
INSERT INTO asset_fold AS f (asset, upto, last_connection)
SELECT m.asset, m.upto, m.connection_id FROM m WHERE m.upto IS NOT NULL
ON CONFLICT (asset) DO UPDATE
    SET upto = excluded.upto, last_connection = excluded.last_connection
    WHERE (f.upto, f.last_connection)
          IS DISTINCT FROM (excluded.upto, excluded.last_connection)
$$;

-- Fold by the append path (the header) the assets todo[i] whose new events
-- start at froms[i], each after its asset_fold.upto (the caller checks).
-- Returns the assets it left alone (a connection seen before T changes):
-- the caller folds them by 0007's path.
CREATE FUNCTION presence_rollup_append(todo text[], froms timestamptz[])
RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
    rest text[];
    ka text[];
    kc bigint[];
    kfc timestamptz[];
    kfd timestamptz[];
    oks text[];
    okt timestamptz[];
    n bigint;
BEGIN
    -- First which assets the path can take: each connection of the new
    -- events but O's, with its first connect and disconnect before T (one
    -- probe each); an asset whose old connection changes is left. Apart
    -- from the fold itself, so that an asset left costs only its probes.
    WITH c AS MATERIALIZED (
        SELECT x.a AS asset, x.t, o.connection_id AS oconn
        FROM unnest(todo, froms) x(a, t)
        LEFT JOIN asset_open_sessions o ON o.asset = x.a
    ), k AS MATERIALIZED (
        SELECT g.asset, g.connection_id, g.has_d,
               f.first_connect AS fc, f.first_disconnect AS fd
        FROM (SELECT c.asset, q.connection_id, min(c.t) AS t,
                     bool_or(q.type = 'disconnect') AS has_d
              FROM c CROSS JOIN LATERAL (
                  SELECT p.connection_id, p.type FROM presences p
                  WHERE p.asset = c.asset
                    AND p.type IN ('connect', 'disconnect')
                    AND p.time >= c.t OFFSET 0) q
              WHERE q.connection_id IS DISTINCT FROM c.oconn
              GROUP BY c.asset, q.connection_id) g
        CROSS JOIN LATERAL presence_connection_firsts(g.asset, g.connection_id,
                                                      g.t) f
    ), bad AS (
        SELECT DISTINCT k.asset FROM k
        WHERE k.fc IS NOT NULL AND k.fd IS NULL AND k.has_d
    )
    SELECT (SELECT coalesce(array_agg(b.asset), '{}') FROM bad b),
           (SELECT coalesce(array_agg(c.asset), '{}') FROM c
            WHERE NOT EXISTS (SELECT 1 FROM bad b WHERE b.asset = c.asset)),
           (SELECT coalesce(array_agg(c.t), '{}') FROM c
            WHERE NOT EXISTS (SELECT 1 FROM bad b WHERE b.asset = c.asset)),
           (SELECT coalesce(array_agg(k.asset), '{}') FROM k),
           (SELECT coalesce(array_agg(k.connection_id), '{}') FROM k),
           (SELECT coalesce(array_agg(k.fc), '{}') FROM k),
           (SELECT coalesce(array_agg(k.fd), '{}') FROM k)
    INTO rest, oks, okt, ka, kc, kfc, kfd;
    IF cardinality(oks) = 0 THEN
        RETURN rest;
    END IF;

    WITH ok AS MATERIALIZED (
        SELECT x.a AS asset, x.t, f.last_connection AS lastc,
               o.connection_id AS oconn, o.connected_at AS oc
        FROM unnest(oks, okt) x(a, t)
        JOIN asset_fold f ON f.asset = x.a
        LEFT JOIN asset_open_sessions o ON o.asset = x.a
    ), ev AS MATERIALIZED (
        -- The connects and disconnects from two hours before T on (the
        -- windows of the disconnect counts that reach T); new: at or after
        -- T.
        SELECT ok.asset, q.id, q.time, q.type, q.connection_id, q.reason,
               q.time >= ok.t AS new
        FROM ok CROSS JOIN LATERAL (
            SELECT p.id, p.time, p.type, p.connection_id, p.reason
            FROM presences p
            WHERE p.asset = ok.asset AND p.type IN ('connect', 'disconnect')
              AND p.time >= ok.t - interval '2 hours' OFFSET 0) q
    ), conns AS MATERIALIZED (
        SELECT x.asset, x.connection_id, x.fc, x.fd
        FROM unnest(ka, kc, kfc, kfd) x(asset, connection_id, fc, fd)
    ), runs AS (
        SELECT e.asset, e.connection_id, e.time, e.id,
               e.connection_id IS DISTINCT FROM coalesce(
                   lag(e.connection_id) OVER w, ok.lastc) AS run_start
        FROM ev e JOIN ok ON ok.asset = e.asset
        WHERE e.new AND e.type = 'connect'
        WINDOW w AS (PARTITION BY e.asset ORDER BY e.time, e.id)
    ), starts AS MATERIALIZED (
        SELECT r.asset, r.connection_id, r.time, r.id,
               lead(r.time) OVER (PARTITION BY r.asset
                                  ORDER BY r.time, r.id) AS next_time
        FROM runs r WHERE r.run_start
    ), firstd AS MATERIALIZED (
        SELECT e.asset, e.connection_id, min(e.time) AS fd
        FROM ev e JOIN ok ON ok.asset = e.asset
        WHERE e.new AND e.type = 'disconnect'
        GROUP BY e.asset, e.connection_id
    ), sess AS MATERIALIZED (
        -- The sessions E changes or makes: O's, then the new connections'.
        SELECT ok.asset, ok.oconn AS connection_id, ok.oc AS c,
               coalesce(d.fd, s.sup) AS e,
               CASE WHEN d.fd IS NOT NULL THEN 'disconnect'
                    WHEN s.sup IS NOT NULL THEN 'superseded'
                    ELSE 'open' END AS k
        FROM ok
        LEFT JOIN firstd d
               ON d.asset = ok.asset AND d.connection_id = ok.oconn
        LEFT JOIN (SELECT st.asset, min(st.time) AS sup FROM starts st
                   GROUP BY st.asset) s ON s.asset = ok.asset
        WHERE ok.oconn IS NOT NULL
        UNION ALL
        SELECT n.asset, n.connection_id, n.time, coalesce(d.fd, n.next_time),
               CASE WHEN d.fd IS NOT NULL THEN 'disconnect'
                    WHEN n.next_time IS NOT NULL THEN 'superseded'
                    ELSE 'open' END
        FROM (SELECT DISTINCT ON (st.asset, st.connection_id)
                     st.asset, st.connection_id, st.time, st.next_time
              FROM starts st
              JOIN conns k ON k.asset = st.asset
                          AND k.connection_id = st.connection_id
              WHERE k.fc IS NULL AND k.fd IS NULL
              ORDER BY st.asset, st.connection_id, st.time, st.id) n
        LEFT JOIN firstd d
               ON d.asset = n.asset AND d.connection_id = n.connection_id
    ), closed AS (
        SELECT s.asset, s.c, s.e FROM sess s
        WHERE s.k <> 'open' AND s.e > s.c
    ), pieces AS MATERIALIZED (
        SELECT u.asset, d.d::date AS day,
               r.r * tstzrange(d.d AT TIME ZONE 'UTC',
                               (d.d + interval '1 day') AT TIME ZONE 'UTC')
                   AS part
        FROM (SELECT cl.asset, range_agg(tstzrange(cl.c, cl.e)) AS m
              FROM closed cl GROUP BY cl.asset) u
        LEFT JOIN sess o ON o.asset = u.asset AND o.k = 'open'
        CROSS JOIN LATERAL unnest(u.m * tstzmultirange(tstzrange(NULL, o.c)))
            r(r)
        CROSS JOIN LATERAL generate_series(
            date_trunc('day', lower(r.r) AT TIME ZONE 'UTC'),
            (upper(r.r) - interval '1 microsecond') AT TIME ZONE 'UTC',
            interval '1 day') d(d)
    ), piece_days AS (
        -- Each day's parts: the kept ones and the new ones, merged.
        SELECT k.asset, k.day,
               sum(extract(epoch FROM upper(x.r) - lower(x.r))
                   * 1000000)::bigint AS online_us,
               array_agg(lower(x.r) ORDER BY lower(x.r)) AS lo,
               array_agg(upper(x.r) ORDER BY lower(x.r)) AS hi
        FROM (SELECT p.asset, p.day, range_agg(p.part) AS m
              FROM (SELECT n.asset, n.day, n.part FROM pieces n
                    UNION ALL
                    SELECT sp.asset, sp.day, tstzrange(z.l, z.h)
                    FROM (SELECT DISTINCT n.asset, n.day FROM pieces n) q
                    JOIN asset_day_spans sp
                      ON sp.asset = q.asset AND sp.day = q.day
                    CROSS JOIN LATERAL unnest(sp.lo, sp.hi) z(l, h)) p
              GROUP BY p.asset, p.day) k
        CROSS JOIN LATERAL unnest(k.m) x(r)
        GROUP BY k.asset, k.day
    ), session_days AS (
        -- The new closed sessions on each day they overlap.
        SELECT cl.asset, d.d::date AS day, count(*)::int AS sessions,
               count(*) FILTER (WHERE cl.c < d.d AT TIME ZONE 'UTC')::int
                   AS carried,
               array_agg(cl.c) AS starts, array_agg(cl.e) AS ends
        FROM closed cl
        CROSS JOIN LATERAL generate_series(
            date_trunc('day', cl.c AT TIME ZONE 'UTC'),
            (cl.e - interval '1 microsecond') AT TIME ZONE 'UTC',
            interval '1 day') d(d)
        GROUP BY cl.asset, d.d
    ), disc AS MATERIALIZED (
        SELECT e.asset, ok.t, e.time, e.id, e.new
        FROM ev e JOIN ok ON ok.asset = e.asset
        WHERE e.type = 'disconnect'
    ), new_days AS (
        -- The new disconnects per day (the count is additive).
        SELECT x.asset, (x.time AT TIME ZONE 'UTC')::date AS day,
               count(*)::int AS n
        FROM disc x WHERE x.new GROUP BY 1, 2
    ), hours AS (
        SELECT x.asset, min(x.t) AS t,
               date_trunc('hour', x.time AT TIME ZONE 'UTC') AS h,
               count(*)::int AS n
        FROM disc x GROUP BY x.asset, 3
    ), pair_days AS (
        -- The pairs of hours that end in T's hour or later, whole (the
        -- hour before T's is in the window): counts only grow, so the
        -- day's pair_max is the greater of the kept one and these.
        SELECT x.asset, x.h::date AS day,
               max(x.n + CASE WHEN x.ph = x.h - interval '1 hour' THEN x.pn
                              ELSE 0 END)::int AS pair_max
        FROM (SELECT h.asset, h.t, h.h, h.n,
                     lag(h.h) OVER v AS ph, lag(h.n) OVER v AS pn
              FROM hours h WINDOW v AS (PARTITION BY h.asset ORDER BY h.h)) x
        WHERE x.h >= date_trunc('hour', x.t AT TIME ZONE 'UTC')
        GROUP BY x.asset, x.h::date
    ), flap_days AS (
        -- The one-hour windows that reach T (they start after T - 1 h),
        -- whole: the day's best is the better of the kept one and theirs.
        SELECT DISTINCT ON (v.asset, v.day) v.asset, v.day, v.n, v.time,
               v.id, v.last
        FROM (
            SELECT x.asset, (x.time AT TIME ZONE 'UTC')::date AS day,
                   x.time, x.id, x.t, count(*) OVER v AS n,
                   last_value(x.time) OVER v AS last
            FROM disc x
            WINDOW v AS (PARTITION BY x.asset ORDER BY x.time
                         RANGE BETWEEN CURRENT ROW
                               AND interval '1 hour'
                                   - interval '1 microsecond' FOLLOWING)
        ) v
        WHERE v.time > v.t - interval '1 hour'
          AND v.time <= (v.day + 1)::timestamp AT TIME ZONE 'UTC'
                        - interval '1 hour'
        ORDER BY v.asset, v.day, v.n DESC, v.time, v.id
    ), fresh AS MATERIALIZED (
        -- Every day that changes, whole: the kept columns plus what the new
        -- events add.
        SELECT k.asset, k.day,
               coalesce(p.online_us, od.online_us, 0) AS online_us,
               coalesce(od.sessions, 0) + coalesce(sd.sessions, 0)
                   AS sessions,
               coalesce(od.carried, 0) + coalesce(sd.carried, 0) AS carried,
               coalesce(od.disconnects, 0) + coalesce(nd.n, 0)
                   AS disconnects,
               greatest(coalesce(od.pair_max, 0), coalesce(pd.pair_max, 0))
                   AS pair_max,
               CASE WHEN fl.newer THEN fd.n::int ELSE od.flap_n END AS flap_n,
               CASE WHEN fl.newer THEN fd.time ELSE od.flap_time END
                   AS flap_time,
               CASE WHEN fl.newer THEN fd.id ELSE od.flap_id END AS flap_id,
               CASE WHEN fl.newer THEN fd.last ELSE od.flap_last END
                   AS flap_last,
               coalesce(p.lo, os.lo, '{}') AS lo,
               coalesce(p.hi, os.hi, '{}') AS hi,
               se.starts, se.ends
        FROM (SELECT asset, day FROM piece_days
              UNION SELECT asset, day FROM session_days
              UNION SELECT asset, day FROM new_days) k
        LEFT JOIN piece_days p ON p.asset = k.asset AND p.day = k.day
        LEFT JOIN session_days sd ON sd.asset = k.asset AND sd.day = k.day
        LEFT JOIN new_days nd ON nd.asset = k.asset AND nd.day = k.day
        LEFT JOIN pair_days pd ON pd.asset = k.asset AND pd.day = k.day
        LEFT JOIN flap_days fd ON fd.asset = k.asset AND fd.day = k.day
        LEFT JOIN asset_days od ON od.asset = k.asset AND od.day = k.day
        LEFT JOIN asset_day_spans os ON os.asset = k.asset AND os.day = k.day
        CROSS JOIN LATERAL (
            -- the kept closed sessions and the new ones, sorted once
            SELECT coalesce(array_agg(z.c ORDER BY z.c, z.e), '{}') AS starts,
                   coalesce(array_agg(z.e ORDER BY z.c, z.e), '{}') AS ends
            FROM (SELECT * FROM unnest(os.starts, os.ends)
                  UNION ALL
                  SELECT * FROM unnest(sd.starts, sd.ends)) z(c, e)) se
        CROSS JOIN LATERAL (
            SELECT fd.n IS NOT NULL
                   AND (od.flap_n IS NULL OR fd.n > od.flap_n
                        OR (fd.n = od.flap_n
                            AND (fd.time, fd.id) < (od.flap_time, od.flap_id)))
                   AS newer) fl
    ), lc AS (
        SELECT DISTINCT ON (e.asset) e.asset, e.connection_id, e.time,
               e.reason
        FROM ev e WHERE e.new AND e.type = 'connect'
        ORDER BY e.asset, e.time DESC, e.id DESC
    ), ld AS (
        SELECT DISTINCT ON (e.asset) e.asset, e.connection_id, e.time,
               e.reason
        FROM ev e WHERE e.new AND e.type = 'disconnect'
        ORDER BY e.asset, e.time DESC, e.id DESC
    ), st AS MATERIALIZED (
        -- The §7 status (asset_status_of) from the kept one and E: the
        -- latest connect and disconnect are E's when E has them; a
        -- connect's connection is closed by a disconnect in E or, for one
        -- other than O, one before T (conns). src: which row it is, null
        -- when neither tells (E's connect closed by an old disconnect
        -- while the kept status is online: the latest disconnect is not
        -- kept) -- those are looked up.
        SELECT x.asset, x.src,
               CASE x.src WHEN 'lc' THEN 'online' WHEN 'ld' THEN 'offline'
                          ELSE x.state END AS state,
               CASE x.src WHEN 'lc' THEN x.lct WHEN 'ld' THEN x.ldt
                          ELSE x.since END AS since,
               CASE x.src WHEN 'lc' THEN x.lcr WHEN 'ld' THEN x.ldr
                          ELSE x.reason END AS reason,
               CASE x.src WHEN 'lc' THEN x.lcc WHEN 'ld' THEN x.ldc
                          ELSE x.connection_id END AS connection_id
        FROM (
            SELECT y.*,
                   CASE WHEN y.lcc IS NOT NULL THEN
                             CASE WHEN NOT y.lc_closed THEN 'lc'
                                  WHEN y.ldc IS NOT NULL THEN 'ld'
                                  WHEN y.state = 'offline' THEN 'old' END
                        WHEN y.ldc IS NOT NULL THEN
                             CASE WHEN y.state = 'online'
                                       AND NOT y.old_closed THEN 'old'
                                  WHEN y.state IN ('online', 'offline')
                                  THEN 'ld' END
                        ELSE 'old' END AS src
            FROM (
                SELECT ok.asset, s.state, s.since, s.reason, s.connection_id,
                       lc.connection_id AS lcc, lc.time AS lct,
                       lc.reason AS lcr, ld.connection_id AS ldc,
                       ld.time AS ldt, ld.reason AS ldr,
                       lc.connection_id IS NOT NULL AND (
                           EXISTS (SELECT 1 FROM firstd d
                                   WHERE d.asset = ok.asset
                                     AND d.connection_id = lc.connection_id)
                           OR EXISTS (SELECT 1 FROM conns k
                                      WHERE k.asset = ok.asset
                                        AND k.connection_id = lc.connection_id
                                        AND k.fd IS NOT NULL)) AS lc_closed,
                       EXISTS (SELECT 1 FROM firstd d
                               WHERE d.asset = ok.asset
                                 AND d.connection_id = s.connection_id)
                           AS old_closed
                FROM ok
                JOIN asset_state s ON s.asset = ok.asset
                LEFT JOIN lc ON lc.asset = ok.asset
                LEFT JOIN ld ON ld.asset = ok.asset) y) x
    ), state_fresh AS MATERIALIZED (
        SELECT st.asset, st.state, st.since, st.reason, st.connection_id
        FROM st WHERE st.src IS NOT NULL
        UNION ALL
        SELECT f.* FROM asset_status_for(ARRAY(
            SELECT ok.asset FROM ok
            WHERE NOT EXISTS (SELECT 1 FROM st
                              WHERE st.asset = ok.asset
                                AND st.src IS NOT NULL))) f
    ), state AS (
        INSERT INTO asset_state AS s (asset, state, since, reason,
                                      connection_id)
        SELECT f.asset, f.state, f.since, f.reason, f.connection_id
        FROM state_fresh f
        ON CONFLICT (asset) DO UPDATE
            SET state = excluded.state, since = excluded.since,
                reason = excluded.reason,
                connection_id = excluded.connection_id
            WHERE (s.state, s.since, s.reason, s.connection_id)
                  IS DISTINCT FROM (excluded.state, excluded.since,
                                    excluded.reason, excluded.connection_id)
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
    ), days AS (
        INSERT INTO asset_days AS d (asset, day, online_us, sessions, carried,
                                     disconnects, pair_max, flap_n,
                                     flap_time, flap_id, flap_last)
        SELECT f.asset, f.day, f.online_us, f.sessions, f.carried,
               f.disconnects, f.pair_max, f.flap_n, f.flap_time, f.flap_id,
               f.flap_last
        FROM fresh f
        ON CONFLICT (asset, day) DO UPDATE
            SET online_us = excluded.online_us,
                sessions = excluded.sessions, carried = excluded.carried,
                disconnects = excluded.disconnects,
                pair_max = excluded.pair_max, flap_n = excluded.flap_n,
                flap_time = excluded.flap_time, flap_id = excluded.flap_id,
                flap_last = excluded.flap_last
            WHERE (d.online_us, d.sessions, d.carried, d.disconnects,
                   d.pair_max, d.flap_n, d.flap_time, d.flap_id, d.flap_last)
                  IS DISTINCT FROM (excluded.online_us, excluded.sessions,
                                    excluded.carried, excluded.disconnects,
                                    excluded.pair_max, excluded.flap_n,
                                    excluded.flap_time, excluded.flap_id,
                                    excluded.flap_last)
    ), open_gone AS (
        DELETE FROM asset_open_sessions o USING ok
        WHERE o.asset = ok.asset
          AND NOT EXISTS (SELECT 1 FROM sess s
                          WHERE s.asset = o.asset AND s.k = 'open')
    ), open_fresh AS (
        INSERT INTO asset_open_sessions AS o (asset, connection_id,
                                              connected_at)
        SELECT s.asset, s.connection_id, s.c FROM sess s WHERE s.k = 'open'
        ON CONFLICT (asset) DO UPDATE
            SET connection_id = excluded.connection_id,
                connected_at = excluded.connected_at
            WHERE (o.connection_id, o.connected_at)
                  IS DISTINCT FROM (excluded.connection_id,
                                    excluded.connected_at)
    ), marks AS (
        UPDATE asset_fold f
        SET upto = greatest(f.upto, m.upto),
            last_connection = coalesce(m.lastc, f.last_connection)
        FROM (SELECT e.asset, max(e.time) AS upto,
                     (array_agg(e.connection_id ORDER BY e.time DESC, e.id DESC)
                          FILTER (WHERE e.type = 'connect'))[1] AS lastc
              FROM ev e JOIN ok ON ok.asset = e.asset
              WHERE e.new GROUP BY e.asset) m
        WHERE f.asset = m.asset
    )
    SELECT count(*) INTO n FROM ok;
    RETURN rest;
END
$$;

-- 0007's catch-up with the append path first: the assets taken with a
-- time after their asset_fold.upto go to presence_rollup_append, those it
-- leaves and the others to 0007's paths, whose assets then get their
-- marks by lookup (presence_fold_marks). Same entry point, same result:
-- the number of assets folded, -1 when another catch-up holds the lock.
CREATE OR REPLACE FUNCTION presence_rollup_refresh(max_rows int DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    todo text[];
    froms timestamptz[];
    whole text[];
    app text[];
    app_froms timestamptz[];
    rest text[];
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
    SELECT coalesce(array_agg(x.asset) FILTER (WHERE x.way = 'since'), '{}'),
           coalesce(array_agg(x.t) FILTER (WHERE x.way = 'since'), '{}'),
           coalesce(array_agg(x.asset) FILTER (WHERE x.way = 'whole'), '{}'),
           coalesce(array_agg(x.asset) FILTER (WHERE x.way = 'append'), '{}'),
           coalesce(array_agg(x.t) FILTER (WHERE x.way = 'append'), '{}')
    INTO todo, froms, whole, app, app_froms
    FROM (SELECT y.asset, y.t,
                 CASE WHEN y.t = '-infinity'
                           OR NOT EXISTS (SELECT 1 FROM asset_state s
                                          WHERE s.asset = y.asset)
                      THEN 'whole'
                      WHEN EXISTS (SELECT 1 FROM asset_fold f
                                   WHERE f.asset = y.asset AND f.upto < y.t)
                      THEN 'append'
                      WHEN coalesce((y.t AT TIME ZONE 'UTC')::date < (
                               SELECT max(d.day) FROM asset_days d
                               WHERE d.asset = y.asset) - whole_days, false)
                      THEN 'whole'
                      ELSE 'since' END AS way
          FROM (SELECT a.asset, min(coalesce(a.t, '-infinity')) AS t
                FROM taken t
                CROSS JOIN LATERAL unnest(t.assets, t.froms) a(asset, t)
                WHERE a.asset IS NOT NULL
                GROUP BY a.asset) y) x;
    IF cardinality(app) > 0 THEN
        rest := presence_rollup_append(app, app_froms);
        IF cardinality(rest) > 0 THEN
            SELECT todo || array_agg(x.a), froms || array_agg(x.t)
            INTO todo, froms
            FROM unnest(app, app_froms) x(a, t)
            WHERE x.a = ANY (rest);
        END IF;
    END IF;
    IF cardinality(whole) > 0 THEN
        PERFORM presence_rollup_assets(whole);
    END IF;
    IF cardinality(todo) > 0 THEN
        PERFORM presence_rollup_assets_since(todo, froms);
    END IF;
    IF cardinality(todo) + cardinality(whole) > 0 THEN
        PERFORM presence_fold_marks(todo || whole);
    END IF;
    RETURN cardinality(todo) + cardinality(whole) + cardinality(app)
           - coalesce(cardinality(rest), 0);
END
$$;
ALTER FUNCTION presence_rollup_refresh(int) SET jit = off;
ALTER FUNCTION presence_rollup_append(text[], timestamptz[]) SET jit = off;
-- A plan for the arrays at hand each time: PL/pgSQL switches to a generic
-- plan after five calls of a session, and the generic plan of the fold
-- (row estimates of unknown arrays) ran one catch-up of 2 000 assets for
-- 11.8 s instead of 0.3 s in `run`'s long-lived connection. Planning each
-- call costs a few milliseconds.
ALTER FUNCTION presence_rollup_append(text[], timestamptz[])
    SET plan_cache_mode = force_custom_plan;
ALTER FUNCTION presence_rollup_refresh(int)
    SET plan_cache_mode = force_custom_plan;

-- 0005's clear, emptying asset_fold too.
CREATE OR REPLACE FUNCTION presence_rollup_clear() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(presence_rollup_lock_key());
    DELETE FROM presence_dirty;
    DELETE FROM asset_state;
    DELETE FROM asset_days;
    DELETE FROM asset_day_spans;
    DELETE FROM asset_open_sessions;
    DELETE FROM presence_reason_minutes;
    DELETE FROM asset_fold;
END
$$;

-- 0005's rebuild, setting every asset's marks in one pass.
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
    INSERT INTO asset_fold (asset, upto, last_connection)
    SELECT p.asset, max(p.time),
           (array_agg(p.connection_id ORDER BY p.time DESC, p.id DESC)
                FILTER (WHERE p.type = 'connect'))[1]
    FROM presences p
    WHERE p.asset IS NOT NULL AND p.type IN ('connect', 'disconnect')
    GROUP BY p.asset;
    RETURN (SELECT count(*) FROM asset_state);
END
$$;
ALTER FUNCTION presence_rollup_rebuild() SET jit = off;
