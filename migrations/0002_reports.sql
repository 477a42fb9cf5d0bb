-- 0002_reports.sql -- connectivity reports of CONTRACT §7: the reference
-- table presence_reasons, the views connectivity_sessions and asset_status,
-- the functions sessions_in, uptime_ranges, daily_uptime, daily_uptime_hours,
-- reason_counts, flapping_assets, and the indexes they read.
--
-- Everything is computed at query time from presences (no state kept by the
-- writer), so the answer never depends on the order rows arrived in: every
-- ordering below is by (time, id). The functions are plain SQL, STABLE and
-- single-statement, so PostgreSQL inlines them into the calling query and a
-- filter on asset reaches the index scans (it is a PARTITION BY / DISTINCT ON
-- column all the way down).

-- The documented reasons of presences-format.txt, both lists. `documented`
-- is true for every row seeded here; reason_counts also counts the pattern
-- 'Unhandled reason <digits>, please contact maintainer' as documented.
CREATE TABLE presence_reasons (
    type        text    NOT NULL,
    reason      text    NOT NULL,
    side        text    NOT NULL CHECK (side IN ('device', 'server', 'none')),
    documented  boolean NOT NULL DEFAULT true,
    description text    NOT NULL,
    PRIMARY KEY (type, reason)
);

INSERT INTO presence_reasons (type, reason, side, description) VALUES
    ('connect', 'cold_boot', 'device',
     'the device was turned off, which closed the connection on its side'),
    ('connect', 'suspend_boot', 'device',
     'the device (one with a screen) was turned off, closing the connection on its side'),
    ('connect', 'idle_out', 'device',
     'the device went idle, which closed the connection on its side'),
    ('connect', 'ppp_lost', 'device',
     'the device lost PPP, which closed the connection on its side'),
    ('connect', 'modem_reset', 'device',
     'the device''s modem was reset, which closed the connection on its side'),
    ('connect', 'sim_error', 'device',
     'the device''s SIM card was removed, which closed the connection on its side'),
    ('connect', 'write_error', 'device',
     'the device could not write to the socket and closed the connection'),
    ('connect', 'read_error', 'device',
     'the device could not read from the socket and closed the connection'),
    ('connect', 'closed_by_server', 'device',
     'the device tried to write but the socket had been closed (by the server, the ISP, ...)'),
    ('disconnect', 'socket_closed', 'server',
     'the server tried to write but the socket had been closed (by the device, the ISP, ...)'),
    ('disconnect', 'network_error', 'server',
     'the server got a TCP error on the socket and closed the connection'),
    ('disconnect', 'client_disconnect', 'server',
     'the device sent a disconnect symbol'),
    ('disconnect', 'network_activity_timeout', 'server',
     'no activity on the socket for longer than network_activity_timeout'),
    ('disconnect', 'message_ack_timeout', 'server',
     'the server timed out waiting for the device to acknowledge a message'),
    ('disconnect', 'basevalue_ack_timeout', 'server',
     'the server timed out waiting for the device to acknowledge a basevalue'),
    ('disconnect', 'unknown_channel', 'server',
     'a message was sent on a channel that is not set in the cloud'),
    ('disconnect', 'unknown_dynamic_channel', 'server',
     'the device used a stale channel id, so the server closed the connection'),
    ('disconnect', 'server_shutdown', 'server',
     'the server was restarted, closing all active connections'),
    ('disconnect', 'Unhandled reason 95074823, please contact maintainer', 'server',
     'another error occurred (any "Unhandled reason <digits>, please contact maintainer")');

-- Per asset in (time, id) order, by type: sessions, status and flapping walk
-- this; INCLUDE (connection_id) lets status and the session runs read the
-- index alone where the visibility map allows. It replaces 0001's
-- (asset, time) index, so that a row still costs the writer one index on
-- asset: three partial indexes (one per type) beside it measured 0.63-0.76
-- of the write rate without them.
DROP INDEX presences_asset_time_idx;
CREATE INDEX presences_asset_type_time_idx ON presences (asset, type, time, id)
    INCLUDE (connection_id);

-- Sessions overlapping [since, until), as of until: only events with time
-- before until are seen, and an open session is measured up to until.
-- A session is one (asset, connection_id) with a connect, starting at its
-- earliest connect (by time, id). It ends at the earliest disconnect of the
-- same (asset, connection_id) ('disconnect'; one earlier than the connect
-- gives duration 0); else at the asset's next connect on another connection
-- ('superseded': the disconnect was lost); else it is 'open'. A disconnect
-- whose (asset, connection_id) has no connect is an 'orphan' row: no start,
-- no duration, ended_at its earliest disconnect.
CREATE FUNCTION sessions_in(since timestamptz, until timestamptz)
RETURNS TABLE (asset text, connection_id bigint, connected_at timestamptz,
               ended_at timestamptz, end_kind text, duration_s float8,
               connect_reason text, disconnect_reason text)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT s.asset, s.connection_id, s.connected_at, s.ended_at, s.end_kind,
       s.duration_s, s.connect_reason, s.disconnect_reason
FROM (
    SELECT c.asset, c.connection_id, c.time AS connected_at,
           coalesce(d.time, c.next_time) AS ended_at,
           CASE WHEN d.time IS NOT NULL THEN 'disconnect'
                WHEN c.next_time IS NOT NULL THEN 'superseded'
                ELSE 'open' END AS end_kind,
           extract(epoch FROM greatest(
               coalesce(d.time, c.next_time, until) - c.time,
               interval '0'))::float8 AS duration_s,
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
                  AND p.time < until
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
          AND p.time < until
        ORDER BY p.asset, p.connection_id, p.time, p.id
    ) d ON d.asset = c.asset AND d.connection_id = c.connection_id
    UNION ALL
    SELECT o.asset, o.connection_id, NULL, o.time, 'orphan', NULL, NULL,
           o.reason
    FROM (
        SELECT DISTINCT ON (p.asset, p.connection_id)
               p.asset, p.connection_id, p.time, p.reason
        FROM presences p
        WHERE p.type = 'disconnect' AND p.asset IS NOT NULL
          AND p.time < until
          AND NOT EXISTS (
              SELECT 1 FROM presences k
              WHERE k.connection_id = p.connection_id AND k.asset = p.asset
                AND k.type = 'connect' AND k.time < until)
        ORDER BY p.asset, p.connection_id, p.time, p.id
    ) o
) s
WHERE CASE WHEN s.connected_at IS NULL THEN s.ended_at >= since
           ELSE coalesce(s.ended_at, until) > since OR s.connected_at >= since
      END
$$;

-- Every session and orphan, open ones measured up to now.
CREATE VIEW connectivity_sessions AS
SELECT * FROM sessions_in('-infinity', now());

-- One row per asset that has a connect, a disconnect or a declare_asset.
CREATE VIEW asset_status AS
SELECT a.asset,
       CASE WHEN lc.time IS NOT NULL AND NOT lc.closed THEN 'online'
            WHEN lc.time IS NOT NULL OR ld.time IS NOT NULL THEN 'offline'
            ELSE 'declared' END AS state,
       CASE WHEN lc.time IS NOT NULL AND NOT lc.closed THEN lc.time
            WHEN lc.time IS NOT NULL OR ld.time IS NOT NULL THEN ld.time
            ELSE dc.time END AS since,
       CASE WHEN lc.time IS NOT NULL AND NOT lc.closed THEN lc.reason
            WHEN lc.time IS NOT NULL OR ld.time IS NOT NULL THEN ld.reason
            ELSE dc.reason END AS reason,
       CASE WHEN lc.time IS NOT NULL AND NOT lc.closed THEN lc.connection_id
            WHEN lc.time IS NOT NULL OR ld.time IS NOT NULL
                 THEN ld.connection_id
            ELSE dc.connection_id END AS connection_id
FROM (SELECT DISTINCT p.asset FROM presences p WHERE p.asset IS NOT NULL) a
LEFT JOIN LATERAL (
    SELECT c.time, c.reason, c.connection_id,
           EXISTS (SELECT 1 FROM presences k
                   WHERE k.connection_id = c.connection_id
                     AND k.asset = c.asset AND k.type = 'disconnect') AS closed
    FROM presences c
    WHERE c.asset = a.asset AND c.type = 'connect'
    ORDER BY c.time DESC, c.id DESC LIMIT 1
) lc ON true
LEFT JOIN LATERAL (
    SELECT c.time, c.reason, c.connection_id
    FROM presences c
    WHERE c.asset = a.asset AND c.type = 'disconnect'
    ORDER BY c.time DESC, c.id DESC LIMIT 1
) ld ON true
LEFT JOIN LATERAL (
    SELECT c.time, c.reason, c.connection_id
    FROM presences c
    WHERE c.asset = a.asset AND c.type = 'declare_asset'
    ORDER BY c.time, c.id LIMIT 1
) dc ON true
WHERE lc.time IS NOT NULL OR ld.time IS NOT NULL OR dc.time IS NOT NULL;

-- The online time of each asset on each local calendar day of tz that
-- overlaps [since, until): the union of its sessions' [start, end) (open
-- ones end at until; nothing at or after until counts) intersected with the
-- day [lo, hi) = [local midnight, next local midnight), 23 or 25 hours long
-- across a daylight-saving change; n = the sessions overlapping the day.
-- The building block of daily_uptime and daily_uptime_hours.
CREATE FUNCTION uptime_ranges(tz text, since timestamptz, until timestamptz)
RETURNS TABLE (asset text, day date, lo timestamptz, hi timestamptz,
               n bigint, online tstzmultirange)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT s.asset, d.day, d.lo, d.hi, count(*),
       range_agg(s.r * tstzrange(d.lo, d.hi))
FROM (
    SELECT q.asset,
           tstzrange(q.connected_at,
                     greatest(q.connected_at,
                              least(coalesce(q.ended_at, until), until))) AS r
    FROM sessions_in(((since AT TIME ZONE tz)::date::timestamp
                      AT TIME ZONE tz), until) q
    WHERE q.connected_at IS NOT NULL
) s
JOIN (
    SELECT v::date AS day, v::date::timestamp AT TIME ZONE tz AS lo,
           (v::date + 1)::timestamp AT TIME ZONE tz AS hi
    FROM generate_series((since AT TIME ZONE tz)::date::timestamp,
                         ((until - interval '1 microsecond')
                          AT TIME ZONE tz)::date::timestamp,
                         interval '1 day') v
) d ON s.r && tstzrange(d.lo, d.hi)
GROUP BY s.asset, d.day, d.lo, d.hi
$$;

-- Online seconds per asset and local day (see uptime_ranges); ratio is over
-- the day's real length. Days with no online time are not listed.
CREATE FUNCTION daily_uptime(tz text, since timestamptz, until timestamptz)
RETURNS TABLE (asset text, day date, online_s float8, sessions bigint,
               ratio float8)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT g.asset, g.day, u.online_s, g.n,
       u.online_s / extract(epoch FROM g.hi - g.lo)::float8
FROM uptime_ranges(tz, since, until) g
CROSS JOIN LATERAL (
    SELECT sum(extract(epoch FROM upper(x) - lower(x)))::float8 AS online_s
    FROM unnest(g.online) x
) u
WHERE u.online_s > 0
$$;

-- The same days, hour by hour: hours[k] is the share (0 … 1) of the k-th
-- hour after local midnight spent online (23, 24 or 25 entries). What the
-- table format of `presence-ingest report uptime` draws.
CREATE FUNCTION daily_uptime_hours(tz text, since timestamptz,
                                   until timestamptz)
RETURNS TABLE (asset text, day date, hours float8[])
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT g.asset, g.day,
       ARRAY(SELECT coalesce((SELECT sum(extract(epoch FROM
                                  upper(x) - lower(x)))::float8
                              FROM unnest(g.online *
                                  tstzmultirange(tstzrange(h, h + interval '1 hour')))
                                  x), 0) / 3600
             FROM generate_series(g.lo, g.hi - interval '1 microsecond',
                                  interval '1 hour') h
             ORDER BY h)
FROM uptime_ranges(tz, since, until) g
WHERE NOT isempty(g.online)
$$;

-- Events (a null asset included) per (type, reason) with time in
-- [since, until).
CREATE FUNCTION reason_counts(since timestamptz, until timestamptz)
RETURNS TABLE (type text, reason text, side text, documented boolean,
               count bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT c.type, c.reason,
       CASE c.type WHEN 'connect' THEN 'device'
                   WHEN 'disconnect' THEN 'server' ELSE 'none' END,
       r.reason IS NOT NULL OR (c.type = 'disconnect' AND c.reason ~
           '^Unhandled reason [0-9]+, please contact maintainer$'),
       c.n
FROM (
    SELECT p.type, p.reason, count(*) AS n
    FROM presences p
    WHERE p.time >= since AND p.time < until
    GROUP BY p.type, p.reason
) c
LEFT JOIN presence_reasons r
       ON r.type = c.type AND r.reason = c.reason AND r.documented
$$;

-- Per asset, the largest number of its disconnects (time in [since, until))
-- within [t, t + win) for t one of them, when it is at least threshold; the
-- window's first and last disconnect (the earliest window on a tie).
CREATE FUNCTION flapping_assets(win interval, threshold int,
                                since timestamptz, until timestamptz)
RETURNS TABLE (asset text, disconnects bigint, window_start timestamptz,
               window_end timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT DISTINCT ON (w.asset) w.asset, w.n, w.time, w.last
FROM (
    -- Times are microseconds: [t, t + win) is [t, t + win - 1 µs].
    -- last_value, not max: the frame moves, and max would rescan it.
    SELECT p.asset, p.time, p.id,
           count(*) OVER w AS n, last_value(p.time) OVER w AS last
    FROM presences p
    WHERE p.type = 'disconnect' AND p.asset IS NOT NULL
      AND p.time >= since AND p.time < until
    WINDOW w AS (PARTITION BY p.asset ORDER BY p.time
                 RANGE BETWEEN CURRENT ROW
                       AND win - interval '1 microsecond' FOLLOWING)
) w
-- Before DISTINCT ON: an asset's best window, if it reaches the threshold,
-- is among its windows that do, and only those are sorted.
WHERE w.n >= threshold
ORDER BY w.asset, w.n DESC, w.time, w.id
$$;
