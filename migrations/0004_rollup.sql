-- 0004_rollup.sql -- the fleet-wide reports from a rollup kept off the
-- writer's hot path: asset_state (one row per asset: its §7 status) and
-- presence_reason_minutes (event counts per UTC minute, type and reason),
-- presence_dirty (what the writers' statements changed since the last
-- catch-up), the statement triggers that fill it, presence_rollup_refresh()
-- that catches up, and asset_status and reason_counts redefined on the
-- rollup plus what is still in presence_dirty -- so both give exactly the
-- query-time answer whatever the rollup's lag.
--
-- The writer pays one statement trigger per COPY/UPDATE/DELETE: from the
-- statement's transition table, one row appended to an index-free table
-- (the distinct assets of its connect/disconnect/declare_asset rows, and its
-- counts per minute, type and reason). A statement that writes no row (a
-- replay: every row already stored) appends nothing, so it still writes
-- nothing. Works the same on a plain and on a partitioned presences (the
-- triggers are on the table the statements name). Removing rows without
-- DELETE (DROP/DETACH of a partition) fires no trigger: run SELECT
-- presence_rollup_rebuild() afterwards.

-- The §7 status of one asset, from presences: 0002's asset_status
-- definition for that asset (no row when it has no connect, disconnect or
-- declare_asset). Inlined where it is called with a column (LATERAL).
CREATE FUNCTION asset_status_of(a text)
RETURNS TABLE (asset text, state text, since timestamptz, reason text,
               connection_id bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT a,
       CASE WHEN lc.time IS NOT NULL AND NOT lc.closed THEN 'online'
            WHEN lc.time IS NOT NULL OR ld.time IS NOT NULL THEN 'offline'
            ELSE 'declared' END,
       CASE WHEN lc.time IS NOT NULL AND NOT lc.closed THEN lc.time
            WHEN lc.time IS NOT NULL OR ld.time IS NOT NULL THEN ld.time
            ELSE dc.time END,
       CASE WHEN lc.time IS NOT NULL AND NOT lc.closed THEN lc.reason
            WHEN lc.time IS NOT NULL OR ld.time IS NOT NULL THEN ld.reason
            ELSE dc.reason END,
       CASE WHEN lc.time IS NOT NULL AND NOT lc.closed THEN lc.connection_id
            WHEN lc.time IS NOT NULL OR ld.time IS NOT NULL
                 THEN ld.connection_id
            ELSE dc.connection_id END
FROM (SELECT 1) one
LEFT JOIN LATERAL (
    SELECT c.time, c.reason, c.connection_id,
           EXISTS (SELECT 1 FROM presences k
                   WHERE k.connection_id = c.connection_id
                     AND k.asset = c.asset AND k.type = 'disconnect') AS closed
    FROM presences c
    WHERE c.asset = a AND c.type = 'connect'
    ORDER BY c.time DESC, c.id DESC LIMIT 1
) lc ON true
LEFT JOIN LATERAL (
    SELECT c.time, c.reason, c.connection_id
    FROM presences c
    WHERE c.asset = a AND c.type = 'disconnect'
    ORDER BY c.time DESC, c.id DESC LIMIT 1
) ld ON true
LEFT JOIN LATERAL (
    SELECT c.time, c.reason, c.connection_id
    FROM presences c
    WHERE c.asset = a AND c.type = 'declare_asset'
    ORDER BY c.time, c.id LIMIT 1
) dc ON true
WHERE a IS NOT NULL
  AND (lc.time IS NOT NULL OR ld.time IS NOT NULL OR dc.time IS NOT NULL)
$$;

-- The same for a list of assets (duplicates and nulls ignored).
CREATE FUNCTION asset_status_for(assets text[])
RETURNS TABLE (asset text, state text, since timestamptz, reason text,
               connection_id bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT s.asset, s.state, s.since, s.reason, s.connection_id
FROM (SELECT DISTINCT u.asset FROM unnest(assets) u(asset)) a
CROSS JOIN LATERAL asset_status_of(a.asset) s
$$;

-- One row per asset: asset_status_for's row, as of the last catch-up.
CREATE TABLE asset_state (
    asset         text        PRIMARY KEY,
    state         text        NOT NULL,
    since         timestamptz NOT NULL,
    reason        text        NOT NULL,
    connection_id bigint      NOT NULL
);

-- What changed since the last catch-up: one row per statement that changed
-- presences (append-only, no index; emptied by the catch-up): the assets
-- whose status may have changed, and the statement's event counts per UTC
-- minute, type and reason (negative for rows updated away or deleted), as
-- four arrays of one length.
CREATE TABLE presence_dirty (
    assets  text[]        NOT NULL,
    minutes timestamptz[] NOT NULL,
    types   text[]        NOT NULL,
    reasons text[]        NOT NULL,
    counts  bigint[]      NOT NULL
);

-- Event counts per minute (date_bin from 2000-01-01 UTC: UTC minutes), type
-- and reason, folded from presence_dirty by the catch-up. reason_counts
-- sums the whole minutes of [since, until) here and in presence_dirty, and
-- counts the partial minutes at its ends in presences. A key whose rows
-- were all deleted keeps a row with n = 0.
CREATE TABLE presence_reason_minutes (
    minute timestamptz NOT NULL,
    type   text        NOT NULL,
    reason text        NOT NULL,
    n      bigint      NOT NULL,
    PRIMARY KEY (minute, type, reason)
);
-- presence_dirty's rows live until the next catch-up: not worth compressing.
ALTER TABLE presence_dirty ALTER COLUMN assets SET STORAGE EXTERNAL,
    ALTER COLUMN minutes SET STORAGE EXTERNAL,
    ALTER COLUMN types SET STORAGE EXTERNAL,
    ALTER COLUMN reasons SET STORAGE EXTERNAL,
    ALTER COLUMN counts SET STORAGE EXTERNAL;

-- 0001's BRIN on time, as minmax-multi: events arrive roughly in time order
-- but late ones are common, and one late event widens a plain minmax range
-- to everything since it, so a one-hour window read a whole day's blocks
-- (measured: 1 877 blocks for an empty 10-minute edge, 32 with this). Still
-- a block-range index: it costs the writer next to nothing.
DROP INDEX IF EXISTS presences_time_brin;
CREATE INDEX presences_time_brin ON presences
    USING brin (time timestamptz_minmax_multi_ops) WITH (pages_per_range = 16);

-- Refreshers (and TRUNCATE) serialise on this transaction-level advisory
-- lock, so each catch-up reads presences after the previous one committed.
CREATE FUNCTION presence_rollup_lock_key() RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT 7304169482913377001::bigint $$;

-- The statement triggers: one presence_dirty row for the rows the statement
-- wrote (for UPDATE and DELETE, the old rows count out), none when it wrote
-- no row. Only the types status reads mark an asset.
CREATE FUNCTION presence_rollup_mark() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    rows text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO presence_dirty (assets, minutes, types, reasons, counts)
        SELECT (SELECT coalesce(array_agg(s.asset), '{}') FROM (
                    SELECT DISTINCT n.asset FROM rollup_new n
                    WHERE n.asset IS NOT NULL
                      AND n.type IN ('connect', 'disconnect',
                                     'declare_asset')) s),
               array_agg(g.minute), array_agg(g.type), array_agg(g.reason),
               array_agg(g.n)
        FROM (SELECT date_bin('1 minute', n.time, '2000-01-01 00:00:00+00')
                         AS minute, n.type, n.reason, count(*) AS n
              FROM rollup_new n GROUP BY 1, 2, 3) g
        HAVING count(*) > 0;
        RETURN NULL;
    END IF;
    -- UPDATE (old rows counted out, new ones in) or DELETE (old rows out):
    -- rare (--on-conflict replace, retention by hand), so dynamic SQL
    -- naming only the transition tables this trigger has.
    rows := 'SELECT -1 AS sign, o.asset, o.type, o.reason, o.time '
            'FROM rollup_old o';
    IF TG_OP = 'UPDATE' THEN
        rows := rows || ' UNION ALL SELECT 1, n.asset, n.type, n.reason, '
                        'n.time FROM rollup_new n';
    END IF;
    EXECUTE format($q$
        INSERT INTO presence_dirty (assets, minutes, types, reasons, counts)
        SELECT (SELECT coalesce(array_agg(DISTINCT r.asset), '{}')
                FROM (%1$s) r
                WHERE r.asset IS NOT NULL
                  AND r.type IN ('connect', 'disconnect', 'declare_asset')),
               coalesce(array_agg(g.minute), '{}'),
               coalesce(array_agg(g.type), '{}'),
               coalesce(array_agg(g.reason), '{}'),
               coalesce(array_agg(g.n), '{}')
        FROM (SELECT date_bin('1 minute', r.time, '2000-01-01 00:00:00+00')
                         AS minute, r.type, r.reason, sum(r.sign)::bigint AS n
              FROM (%1$s) r GROUP BY 1, 2, 3 HAVING sum(r.sign) <> 0) g
        HAVING EXISTS (SELECT 1 FROM (%1$s) r) $q$, rows);
    RETURN NULL;
END
$$;

-- A partition about to be dropped by retention (0003's
-- presence_partition_retire, which holds it in SHARE mode by now, so no row
-- can come in or go): its rows count out as a DELETE's would.
CREATE OR REPLACE FUNCTION presence_partition_dropping(part text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format($q$
        INSERT INTO presence_dirty (assets, minutes, types, reasons, counts)
        SELECT (SELECT coalesce(array_agg(DISTINCT o.asset), '{}')
                FROM %1$I o
                WHERE o.asset IS NOT NULL
                  AND o.type IN ('connect', 'disconnect', 'declare_asset')),
               coalesce(array_agg(g.minute), '{}'),
               coalesce(array_agg(g.type), '{}'),
               coalesce(array_agg(g.reason), '{}'),
               coalesce(array_agg(g.n), '{}')
        FROM (SELECT date_bin('1 minute', o.time, '2000-01-01 00:00:00+00')
                         AS minute, o.type, o.reason, -count(*) AS n
              FROM %1$I o GROUP BY 1, 2, 3) g
        HAVING count(*) > 0 $q$, part);
END
$$;

-- TRUNCATE presences empties the rollup with it.
CREATE FUNCTION presence_rollup_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(presence_rollup_lock_key());
    DELETE FROM presence_dirty;
    DELETE FROM asset_state;
    DELETE FROM presence_reason_minutes;
    RETURN NULL;
END
$$;

CREATE TRIGGER presences_rollup_insert AFTER INSERT ON presences
    REFERENCING NEW TABLE AS rollup_new
    FOR EACH STATEMENT EXECUTE FUNCTION presence_rollup_mark();
CREATE TRIGGER presences_rollup_update AFTER UPDATE ON presences
    REFERENCING OLD TABLE AS rollup_old NEW TABLE AS rollup_new
    FOR EACH STATEMENT EXECUTE FUNCTION presence_rollup_mark();
CREATE TRIGGER presences_rollup_delete AFTER DELETE ON presences
    REFERENCING OLD TABLE AS rollup_old
    FOR EACH STATEMENT EXECUTE FUNCTION presence_rollup_mark();
CREATE TRIGGER presences_rollup_truncate AFTER TRUNCATE ON presences
    FOR EACH STATEMENT EXECUTE FUNCTION presence_rollup_truncate();

-- Catch up: take up to max_rows rows of presence_dirty (statements; NULL:
-- all of them) and recompute asset_state for their assets from presences.
-- Returns the number of assets recomputed, or -1 when another catch-up holds
-- the lock (it never waits: the view is exact without it). Rows unchanged
-- are not rewritten. Safe to run concurrently with writers: a dirty row is
-- taken in one statement and its assets recomputed in a later one, which sees
-- every row committed with it.
CREATE FUNCTION presence_rollup_refresh(max_rows int DEFAULT NULL)
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
    RETURN cardinality(todo);
END
$$;

-- Recompute the whole rollup from presences (after rows were removed
-- without DELETE, e.g. a dropped partition). Waits for a running catch-up.
CREATE FUNCTION presence_rollup_rebuild() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(presence_rollup_lock_key());
    -- Every dirty row committed before this statement is covered by the
    -- recomputation below (it reads a later snapshot).
    DELETE FROM presence_dirty;
    DELETE FROM asset_state;
    INSERT INTO asset_state (asset, state, since, reason, connection_id)
    SELECT s.asset, s.state, s.since, s.reason, s.connection_id
    FROM (SELECT DISTINCT p.asset FROM presences p
          WHERE p.asset IS NOT NULL) a
    CROSS JOIN LATERAL asset_status_of(a.asset) s;
    GET DIAGNOSTICS n = ROW_COUNT;
    DELETE FROM presence_reason_minutes;
    INSERT INTO presence_reason_minutes (minute, type, reason, n)
    SELECT date_bin('1 minute', p.time, '2000-01-01 00:00:00+00'), p.type,
           p.reason, count(*)
    FROM presences p GROUP BY 1, 2, 3;
    RETURN n;
END
$$;

-- Exactly 0002's asset_status: the rollup's rows for the assets nothing
-- changed since it caught up, the query-time definition for the others.
CREATE OR REPLACE VIEW asset_status AS
WITH dirty AS MATERIALIZED (
    SELECT DISTINCT a.asset
    FROM presence_dirty d CROSS JOIN LATERAL unnest(d.assets) a(asset)
)
SELECT s.asset, s.state, s.since, s.reason, s.connection_id
FROM asset_state s
WHERE NOT EXISTS (SELECT 1 FROM dirty x WHERE x.asset = s.asset)
UNION ALL
SELECT f.asset, f.state, f.since, f.reason, f.connection_id
FROM dirty x CROSS JOIN LATERAL asset_status_of(x.asset) f;

-- 0002's reason_counts, from the minute counts: the whole UTC minutes
-- [m1, m2) of [since, until) from presence_reason_minutes and the rows still
-- in presence_dirty (one snapshot: a row is in one or the other), the partial
-- minutes [since, m1) and [m2, until) at its ends from presences (time BRIN).
CREATE OR REPLACE FUNCTION reason_counts(since timestamptz, until timestamptz)
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
    SELECT x.type, x.reason, sum(x.n)::bigint AS n
    FROM (
        -- m1: the first minute boundary at or after since; m2: the last at
        -- or before until.
        SELECT date_bin('1 minute', since + interval '1 minute'
                        - interval '1 microsecond', o.origin) AS m1,
               date_bin('1 minute', until, o.origin) AS m2
        FROM (SELECT '2000-01-01 00:00:00+00'::timestamptz AS origin) o
    ) b
    CROSS JOIN LATERAL (
        SELECT m.type, m.reason, m.n
        FROM presence_reason_minutes m
        WHERE m.minute >= b.m1 AND m.minute < b.m2
        UNION ALL
        SELECT u.type, u.reason, u.n
        FROM presence_dirty d
        CROSS JOIN LATERAL unnest(d.minutes, d.types, d.reasons, d.counts)
            u(minute, type, reason, n)
        WHERE u.minute >= b.m1 AND u.minute < b.m2
        UNION ALL
        SELECT p.type, p.reason, 1
        FROM presences p
        WHERE p.time >= since AND p.time < least(until, b.m1)
        UNION ALL
        SELECT p.type, p.reason, 1
        FROM presences p
        WHERE p.time >= greatest(since, b.m1, b.m2) AND p.time < until
    ) x
    GROUP BY x.type, x.reason
    HAVING sum(x.n) > 0
) c
LEFT JOIN presence_reasons r
       ON r.type = c.type AND r.reason = c.reason AND r.documented
$$;

-- Fill the rollup from the rows already stored. The triggers above were
-- created first: their lock keeps writers out until this commits.
SELECT presence_rollup_rebuild();
