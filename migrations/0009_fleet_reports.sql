-- 0009_fleet_reports.sql -- fleet operations reports of CONTRACT §8:
-- asset_outages (gaps in an asset's online time that a disconnect began,
-- with the server's and the device's reason), asset_availability and
-- fleet_availability (online over observed time per period, and the
-- fleet's summary of it), fleet_timeline (the fleet's §7 status counts at
-- each step, and the events of each step), and the helpers they share.
--
-- Everything is computed at query time from presences (session_rows,
-- session_rows_for of 0005), so every answer is exact whatever the
-- rollup's lag, and the same whatever order the events arrived in: every
-- ordering below is total ((time, id), or a session's (start, end,
-- connection_id)). Sessions are those of 0005: what all stored events make
-- them; `until` selects and measures (an open session lasts until it).

-- Each session and orphan of the given assets (NULL: every asset). The
-- branch not taken is a one-time filter: never run.
CREATE FUNCTION presence_sessions_of(assets text[])
RETURNS TABLE (asset text, connection_id bigint, connected_at timestamptz,
               ended_at timestamptz, end_kind text, connect_reason text,
               disconnect_reason text)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT * FROM session_rows() WHERE assets IS NULL
UNION ALL
SELECT * FROM session_rows_for(assets) WHERE assets IS NOT NULL
$$;

-- The gaps in the online time of the given assets (NULL: every asset) that
-- have a session or an orphan disconnect, all of them, independent of any
-- report window: [glo, ghi) (ghi null: to the end of time), and when the
-- gap holds an outage, its start, its disconnect_reason and its
-- reconnect_reason (the outage lasts to ghi; open when ghi is null).
--
-- An asset's online time is the union of its sessions [start, end): an
-- open session runs to infinity here (to `until` in the reports, which is
-- after every outage they list), a session whose disconnect is earlier
-- than its connect is [start, start). Islands: the sessions sorted by
-- (start, end, connection_id), a new island where a session starts after
-- the end of every session before it. Gaps: from an island's end to the
-- next island's start (open after the last), and before the first island.
-- A gap is an outage when the island before it ends with a session whose
-- end_kind is 'disconnect' (one of the sessions ending there, a disconnect
-- preferred, then the lowest connection_id): from the island's end, with
-- that session's disconnect_reason. Otherwise (the time before the first
-- event, a gap after a superseded session), the gap's earliest orphan
-- disconnect (time, connection_id) inside it -- at or after the gap's
-- start, before its end -- begins the outage, with its reason; no orphan,
-- no outage. An outage ends where the next island starts, with the reason
-- of the connect of its earliest session (start, connection_id): the
-- device's reason.
CREATE FUNCTION presence_gaps(assets text[])
RETURNS TABLE (asset text, glo timestamptz, ghi timestamptz,
               started_at timestamptz, disconnect_reason text,
               reconnect_reason text)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
WITH r AS (
    SELECT * FROM presence_sessions_of(assets)
), s AS (
    SELECT r.asset, r.connection_id, r.connected_at AS c,
           CASE WHEN r.end_kind = 'open' THEN 'infinity'::timestamptz
                ELSE greatest(r.ended_at, r.connected_at) END AS e,
           r.end_kind, r.connect_reason, r.disconnect_reason
    FROM r
    WHERE r.connected_at IS NOT NULL
), m AS (
    SELECT s.*,
           max(s.e) OVER (PARTITION BY s.asset
                          ORDER BY s.c, s.e, s.connection_id
                          ROWS BETWEEN UNBOUNDED PRECEDING
                               AND 1 PRECEDING) AS prev_max
    FROM s
), numbered AS (
    SELECT m.*,
           count(*) FILTER (WHERE m.prev_max IS NULL OR m.prev_max < m.c)
               OVER (PARTITION BY m.asset
                     ORDER BY m.c, m.e, m.connection_id) AS island
    FROM m
), islands AS (
    SELECT n.asset, n.island, min(n.c) AS lo, max(n.e) AS hi,
           (array_agg(n.connect_reason
                      ORDER BY n.c, n.connection_id))[1] AS creason,
           (array_agg(n.end_kind
                      ORDER BY n.e DESC, (n.end_kind = 'disconnect') DESC,
                               n.connection_id))[1] AS ekind,
           (array_agg(n.disconnect_reason
                      ORDER BY n.e DESC, (n.end_kind = 'disconnect') DESC,
                               n.connection_id))[1] AS dreason
    FROM numbered n
    GROUP BY n.asset, n.island
), orphans AS (
    SELECT r.asset, r.ended_at AS t, r.connection_id, r.disconnect_reason
    FROM r
    WHERE r.connected_at IS NULL
), gaps AS (
    SELECT i.asset, i.hi AS glo,
           lead(i.lo) OVER w AS ghi, lead(i.creason) OVER w AS rreason,
           i.ekind, i.dreason
    FROM islands i
    WINDOW w AS (PARTITION BY i.asset ORDER BY i.island)
    UNION ALL
    SELECT i.asset, '-infinity', i.lo, i.creason, 'none', NULL
    FROM islands i
    WHERE i.island = 1
    UNION ALL
    SELECT DISTINCT o.asset, '-infinity'::timestamptz, NULL::timestamptz,
           NULL::text, 'none', NULL::text
    FROM orphans o
    WHERE NOT EXISTS (SELECT 1 FROM islands i WHERE i.asset = o.asset)
)
SELECT DISTINCT ON (g.asset, g.glo)
       g.asset, g.glo, g.ghi,
       CASE WHEN g.ekind = 'disconnect' THEN g.glo ELSE o.t END,
       CASE WHEN g.ekind = 'disconnect' THEN g.dreason
            ELSE o.disconnect_reason END,
       CASE WHEN g.ekind = 'disconnect' OR o.t IS NOT NULL THEN g.rreason END
FROM gaps g
LEFT JOIN orphans o
       ON g.ekind <> 'disconnect' AND o.asset = g.asset AND o.t >= g.glo
      AND (g.ghi IS NULL OR o.t < g.ghi)
WHERE g.glo < 'infinity'
ORDER BY g.asset, g.glo, o.t, o.connection_id
$$;

-- The outages of the given assets (NULL: every asset), all of them, ended
-- or open (ended_at null): the gaps of presence_gaps that hold one.
CREATE FUNCTION presence_outage_rows(assets text[])
RETURNS TABLE (asset text, started_at timestamptz, ended_at timestamptz,
               disconnect_reason text, reconnect_reason text)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT g.asset, g.started_at, g.ghi, g.disconnect_reason, g.reconnect_reason
FROM presence_gaps(assets) g
WHERE g.started_at IS NOT NULL
$$;

-- A debounce must not be negative.
CREATE FUNCTION presence_check_debounce(debounce interval) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF debounce IS NULL OR debounce < interval '0' THEN
        RAISE EXCEPTION 'debounce must be a duration of zero or more, got %',
            debounce USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

-- The outages (see presence_outage_rows) of the given assets (NULL: every
-- asset) that overlap [since, until) and last at least debounce; an open
-- one is measured to until. duration_s: ended_at (or until) - started_at.
CREATE FUNCTION asset_outages_for(assets text[], since timestamptz,
                                  until timestamptz, debounce interval)
RETURNS TABLE (asset text, started_at timestamptz, ended_at timestamptz,
               duration_s float8, disconnect_reason text,
               reconnect_reason text)
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    PERFORM presence_check_debounce(debounce);
    RETURN QUERY
    SELECT o.asset, o.started_at, o.ended_at,
           date_part('epoch', coalesce(o.ended_at, until) - o.started_at),
           o.disconnect_reason, o.reconnect_reason
    FROM presence_outage_rows(assets) o
    WHERE o.started_at < until AND coalesce(o.ended_at, until) > since
      AND coalesce(o.ended_at, until) - o.started_at >= debounce;
END
$$;

-- CONTRACT §8's outages of every asset overlapping [since, until).
CREATE FUNCTION asset_outages(since timestamptz, until timestamptz,
                              debounce interval DEFAULT interval '0')
RETURNS TABLE (asset text, started_at timestamptz, ended_at timestamptz,
               duration_s float8, disconnect_reason text,
               reconnect_reason text)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT * FROM asset_outages_for(NULL, since, until, debounce)
$$;

-- The periods of an availability report: [since, until) as one (period
-- NULL), or each local calendar 'day', ISO 'week' (from Monday) or 'month'
-- of tz that overlaps [since, until), whole (from its local start, which
-- may be before since, as §7's uptime days are), cut at until. 23- and
-- 25-hour days, and months with one, are as long as they are.
CREATE FUNCTION presence_periods(tz text, since timestamptz,
                                 until timestamptz, period text)
RETURNS TABLE (period_start timestamptz, lo timestamptz, hi timestamptz)
LANGUAGE plpgsql STABLE PARALLEL SAFE ROWS 4 AS $$
BEGIN
    IF period IS NOT NULL AND period NOT IN ('day', 'week', 'month') THEN
        RAISE EXCEPTION 'period must be day, week or month, got %', period
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF since >= until THEN
        RETURN;
    END IF;
    IF period IS NULL THEN
        RETURN QUERY SELECT since, since, until;
        RETURN;
    END IF;
    RETURN QUERY
    SELECT v AT TIME ZONE tz, v AT TIME ZONE tz,
           least((v + ('1 ' || period)::interval) AT TIME ZONE tz, until)
    FROM generate_series(date_trunc(period, since AT TIME ZONE tz),
                         (until - interval '1 microsecond') AT TIME ZONE tz,
                         ('1 ' || period)::interval) v;
END
$$;

-- Availability of the given assets (NULL: every asset) per period (see
-- presence_periods). For an asset and a period [lo, hi): observed is
-- [greatest(lo, the asset's first event of any type), hi); online the
-- union of its sessions [start, least(end, until)) and of its outages
-- shorter than debounce, within observed: observed less its gaps
-- (presence_gaps: disjoint, the complement of its sessions' union; all of
-- observed when it has neither session nor orphan) plus those outages;
-- outages the outages of at least debounce that start in [lo, hi);
-- longest_outage_s the longest part of one of them within observed (0:
-- none). Periods with nothing observed are left out. Lengths are summed in
-- microseconds (bigint), as daily_uptime's are, so that with debounce 0
-- online_s is the sum of daily_uptime's online_s.
CREATE FUNCTION asset_availability_for(assets text[], tz text,
                                       since timestamptz, until timestamptz,
                                       period text, debounce interval)
RETURNS TABLE (asset text, period_start timestamptz, observed_s float8,
               online_s float8, availability float8, outages bigint,
               downtime_s float8, longest_outage_s float8)
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    PERFORM presence_check_debounce(debounce);
    RETURN QUERY
    WITH periods AS MATERIALIZED (
        SELECT * FROM presence_periods(tz, since, until, period)
    ), firsts AS (
        SELECT p.asset, min(p.time) AS first
        FROM presences p
        WHERE p.asset IS NOT NULL AND p.time < until
          AND (assets IS NULL OR p.asset = ANY (assets))
        GROUP BY p.asset
    ), observed AS (
        SELECT f.asset, p.period_start, p.lo, p.hi,
               greatest(p.lo, f.first) AS a, p.hi AS b
        FROM firsts f
        JOIN periods p ON f.first < p.hi
    ), gaps AS (
        -- Each gap before until: its extent, and whether it is an outage
        -- that counts (at least debounce: open ones measured to until) or
        -- one that is online time (shorter).
        SELECT g.asset, g.glo, least(coalesce(g.ghi, until), until) AS ghi,
               g.started_at,
               coalesce(g.ghi, until) - g.started_at >= debounce AS counted
        FROM presence_gaps(assets) g
        WHERE g.glo < until
    ), parts AS (
        -- Per (asset, period): its gaps' microseconds within observed, the
        -- short outages' (online), the outages starting in the period, the
        -- longest part of one within observed.
        SELECT o.asset, o.period_start,
               sum(round(date_part('epoch', least(g.ghi, o.b)
                                            - greatest(g.glo, o.a))
                         * 1000000))::bigint AS gap_us,
               coalesce(sum(round(date_part('epoch', least(g.ghi, o.b)
                                  - greatest(g.started_at, o.a)) * 1000000))
                            FILTER (WHERE NOT g.counted
                                      AND g.started_at < o.b
                                      AND g.ghi > o.a), 0)::bigint AS short_us,
               count(*) FILTER (WHERE g.counted AND g.started_at >= o.lo
                                  AND g.started_at < o.hi) AS n_out,
               coalesce(max(date_part('epoch', least(g.ghi, o.b)
                                               - greatest(g.started_at, o.a)))
                            FILTER (WHERE g.counted AND g.started_at < o.b
                                      AND g.ghi > o.a), 0) AS longest
        FROM observed o
        JOIN gaps g ON g.asset = o.asset AND g.glo < o.b AND g.ghi > o.a
        GROUP BY o.asset, o.period_start
    ), gap_assets AS (
        -- Every asset with a session or an orphan has a gap (the one
        -- before its first session, at least); the others are never online.
        SELECT DISTINCT g.asset FROM gaps g
    ), lengths AS (
        SELECT o.asset, o.period_start,
               round(date_part('epoch', o.b - o.a) * 1000000)::bigint
                   AS obs_us,
               coalesce(t.gap_us, 0) AS gap_us,
               coalesce(t.short_us, 0) AS short_us,
               coalesce(t.n_out, 0) AS n_out,
               coalesce(t.longest, 0) AS longest,
               x.asset IS NOT NULL AS has_gaps
        FROM observed o
        LEFT JOIN parts t ON t.asset = o.asset
                         AND t.period_start = o.period_start
        LEFT JOIN gap_assets x ON x.asset = o.asset
    )
    SELECT l.asset, l.period_start, l.obs_us::float8 / 1000000,
           (CASE WHEN l.has_gaps THEN l.obs_us - l.gap_us + l.short_us
                 ELSE 0 END)::float8 / 1000000,
           (CASE WHEN l.has_gaps THEN l.obs_us - l.gap_us + l.short_us
                 ELSE 0 END)::float8 / l.obs_us,
           l.n_out,
           (CASE WHEN l.has_gaps THEN l.gap_us - l.short_us
                 ELSE l.obs_us END)::float8 / 1000000,
           l.longest::float8
    FROM lengths l
    WHERE l.obs_us > 0;
END
$$;

-- CONTRACT §8's availability of every asset.
CREATE FUNCTION asset_availability(tz text, since timestamptz,
                                   until timestamptz, period text DEFAULT NULL,
                                   debounce interval DEFAULT interval '0')
RETURNS TABLE (asset text, period_start timestamptz, observed_s float8,
               online_s float8, availability float8, outages bigint,
               downtime_s float8, longest_outage_s float8)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT * FROM asset_availability_for(NULL, tz, since, until, period,
                                     debounce)
$$;

-- The fleet's availability per period: the assets observed in it, the
-- mean of their availability, its median (p50) and 5th percentile (p05)
-- (percentile_cont: interpolated between the two nearest assets), and the
-- number of assets whose availability is below target.
CREATE FUNCTION fleet_availability(tz text, since timestamptz,
                                   until timestamptz, period text DEFAULT NULL,
                                   debounce interval DEFAULT interval '0',
                                   target float8 DEFAULT 0.99)
RETURNS TABLE (period_start timestamptz, assets bigint, mean float8,
               p50 float8, p05 float8, below_target bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT a.period_start, count(*), avg(a.availability),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY a.availability),
       percentile_cont(0.05) WITHIN GROUP (ORDER BY a.availability),
       count(*) FILTER (WHERE a.availability < target)
FROM asset_availability(tz, since, until, period, debounce) a
GROUP BY a.period_start
$$;

-- The fleet over time: at each instant t = since + k * step (t < until;
-- step taken as its length in seconds, date_part('epoch', step)), the
-- number of assets whose §7 status computed from the events with time < t
-- is online, offline or declared; and over [t, least(t + step, until)) the
-- connect, disconnect and failed_connect events (a null asset included)
-- and the distinct assets with a disconnect.
--
-- The status after each instant T an asset has events at (its events of
-- time <= T taken into account): online when its latest connect (time,
-- id) has no disconnect on its connection at or before T; else offline
-- when it has a connect or disconnect; else declared. It holds for the
-- instants in (T, the asset's next event time]: from step
-- floor((T - since) / step) + 1 through floor((next - since) / step).
-- Counted as +1 at the first step and -1 after the last, then summed.
CREATE FUNCTION fleet_timeline_for(assets text[], step interval,
                                   since timestamptz, until timestamptz)
RETURNS TABLE ("time" timestamptz, online bigint, offline bigint,
               declared bigint, connects bigint, disconnects bigint,
               failed_connects bigint, assets_disconnected bigint)
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    s numeric := date_part('epoch', step)::numeric;
    iv interval := make_interval(secs => date_part('epoch', step));
    n bigint;
BEGIN
    IF s IS NULL OR s <= 0 THEN
        RAISE EXCEPTION 'step must be a duration above zero, got %', step
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF since >= until THEN
        RETURN;
    END IF;
    n := ceil(date_part('epoch', until - since)::numeric / s)::bigint;
    IF n > 100000 THEN
        RAISE EXCEPTION 'step % gives % rows from % to %, more than 100 000',
            step, n, since, until USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH ev AS (
        -- grp: the connects so far; cd: the connects and disconnects so
        -- far; fd: the time of the first disconnect of the event's
        -- connection (a window, not a join: one pass, no estimate to miss).
        SELECT p.asset, p.time, p.id, p.type,
               count(*) FILTER (WHERE p.type = 'connect')
                   OVER (PARTITION BY p.asset ORDER BY p.time, p.id) AS grp,
               count(*) FILTER (WHERE p.type <> 'declare_asset')
                   OVER (PARTITION BY p.asset ORDER BY p.time, p.id) AS cd,
               min(p.time) FILTER (WHERE p.type = 'disconnect')
                   OVER (PARTITION BY p.asset, p.connection_id) AS fd
        FROM presences p
        WHERE p.asset IS NOT NULL
          AND p.type IN ('connect', 'disconnect', 'declare_asset')
          AND p.time < since + (n - 1) * iv
          AND (assets IS NULL OR p.asset = ANY (assets))
    ), lc AS (
        -- The first disconnect of the latest connect's connection (null
        -- before any connect, or when it has none).
        SELECT e.asset, e.time, e.grp, e.cd,
               CASE WHEN e.grp > 0 THEN first_value(e.fd)
                        OVER (PARTITION BY e.asset, e.grp
                              ORDER BY e.time, e.id) END AS conn_fd,
               row_number() OVER (PARTITION BY e.asset, e.time
                                  ORDER BY e.id DESC) AS last_at_time
        FROM ev e
    ), st AS (
        SELECT l.asset, l.time,
               lead(l.time) OVER (PARTITION BY l.asset ORDER BY l.time)
                   AS next,
               CASE WHEN l.grp > 0
                         AND (l.conn_fd IS NULL OR l.conn_fd > l.time)
                        THEN 'online'
                    WHEN l.cd > 0 THEN 'offline'
                    ELSE 'declared' END AS state
        FROM lc l
        WHERE l.last_at_time = 1
    ), spans AS (
        SELECT t.state,
               greatest(0, floor(date_part('epoch', t.time - since)::numeric
                                 / s) + 1)::bigint AS k0,
               least(n - 1, coalesce(floor(date_part('epoch', t.next - since)
                                           ::numeric / s), n - 1))::bigint
                   AS k1
        FROM st t
    ), deltas AS (
        SELECT x.k, x.state, sum(x.d) AS d
        FROM (SELECT p.k0 AS k, p.state, 1 AS d FROM spans p
              WHERE p.k0 <= p.k1
              UNION ALL
              SELECT p.k1 + 1, p.state, -1 FROM spans p
              WHERE p.k0 <= p.k1 AND p.k1 + 1 < n) x
        GROUP BY x.k, x.state
    ), counts AS (
        SELECT k.k,
               sum(coalesce(sum(d.d) FILTER (WHERE d.state = 'online'), 0))
                   OVER w AS online,
               sum(coalesce(sum(d.d) FILTER (WHERE d.state = 'offline'), 0))
                   OVER w AS offline,
               sum(coalesce(sum(d.d) FILTER (WHERE d.state = 'declared'), 0))
                   OVER w AS declared
        FROM generate_series(0::bigint, n - 1) k(k)
        LEFT JOIN deltas d ON d.k = k.k
        GROUP BY k.k
        WINDOW w AS (ORDER BY k.k)
    ), events AS (
        SELECT floor(date_part('epoch', q.time - since)::numeric / s)::bigint
                   AS k,
               count(*) FILTER (WHERE q.type = 'connect') AS connects,
               count(*) FILTER (WHERE q.type = 'disconnect') AS disconnects,
               count(*) FILTER (WHERE q.type = 'failed_connect')
                   AS failed_connects,
               count(DISTINCT q.asset) FILTER (WHERE q.type = 'disconnect')
                   AS assets_disconnected
        FROM (
            -- Every asset: the window's partitions (a null asset
            -- included); given assets: their index ranges.
            SELECT w.time, w.type, w.asset
            FROM presences_in(since, until) w
            WHERE assets IS NULL
            UNION ALL
            SELECT w.time, w.type, w.asset
            FROM presences w
            WHERE assets IS NOT NULL AND w.asset = ANY (assets)
              AND w.time >= since AND w.time < until
        ) q
        GROUP BY 1
    )
    SELECT since + c.k * iv, c.online::bigint, c.offline::bigint,
           c.declared::bigint, coalesce(v.connects, 0),
           coalesce(v.disconnects, 0), coalesce(v.failed_connects, 0),
           coalesce(v.assets_disconnected, 0)
    FROM counts c
    LEFT JOIN events v ON v.k = c.k
    ORDER BY c.k;
END
$$;

-- CONTRACT §8's fleet over time, every asset.
CREATE FUNCTION fleet_timeline(step interval, since timestamptz,
                               until timestamptz)
RETURNS TABLE ("time" timestamptz, online bigint, offline bigint,
               declared bigint, connects bigint, disconnects bigint,
               failed_connects bigint, assets_disconnected bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT * FROM fleet_timeline_for(NULL, step, since, until)
$$;
