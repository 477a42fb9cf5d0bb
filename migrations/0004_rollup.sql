-- 0004_rollup.sql -- asset_status from a rollup kept off the writer's hot
-- path: asset_state (one row per asset: its §7 status), presence_dirty (the
-- assets written since the rollup last caught up), the statement triggers
-- that fill presence_dirty, presence_rollup_refresh() that catches up, and
-- asset_status redefined as asset_state for the clean assets plus 0002's
-- query-time definition (asset_status_for) for the dirty ones -- so the view
-- gives exactly the query-time answer whatever the rollup's lag.
--
-- The writer pays one statement trigger per COPY/UPDATE/DELETE: from the
-- statement's transition table, one row holding the distinct assets of its
-- connect/disconnect/declare_asset rows, appended to an index-free table. A
-- statement that writes no row (a replay: every row already stored) appends
-- nothing, so it still writes nothing. Works the same on a plain and on a
-- partitioned presences (the triggers are on the table the statements name).
-- Removing rows without DELETE (DROP/DETACH of a partition) fires no trigger:
-- run SELECT presence_rollup_rebuild() afterwards.

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

-- Assets whose rows changed since the last catch-up: one row per statement
-- that changed presences (append-only, no index; emptied by the refresh).
CREATE TABLE presence_dirty (
    assets text[] NOT NULL
);

-- Refreshers (and TRUNCATE) serialise on this transaction-level advisory
-- lock, so each catch-up reads presences after the previous one committed.
CREATE FUNCTION presence_rollup_lock_key() RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT 7304169482913377001::bigint $$;

-- The statement triggers: the distinct assets of the rows the statement
-- wrote (for UPDATE and DELETE, the old rows' assets too). Only the types
-- status reads; nothing is appended when there are none.
CREATE FUNCTION presence_rollup_mark() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO presence_dirty (assets)
        SELECT array_agg(s.asset) FROM (
            SELECT DISTINCT n.asset FROM rollup_new n
            WHERE n.asset IS NOT NULL
              AND n.type IN ('connect', 'disconnect', 'declare_asset')) s
        HAVING count(*) > 0;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO presence_dirty (assets)
        SELECT array_agg(s.asset) FROM (
            SELECT n.asset FROM rollup_new n
            WHERE n.asset IS NOT NULL
              AND n.type IN ('connect', 'disconnect', 'declare_asset')
            UNION
            SELECT o.asset FROM rollup_old o
            WHERE o.asset IS NOT NULL
              AND o.type IN ('connect', 'disconnect', 'declare_asset')) s
        HAVING count(*) > 0;
    ELSE
        INSERT INTO presence_dirty (assets)
        SELECT array_agg(s.asset) FROM (
            SELECT DISTINCT o.asset FROM rollup_old o
            WHERE o.asset IS NOT NULL
              AND o.type IN ('connect', 'disconnect', 'declare_asset')) s
        HAVING count(*) > 0;
    END IF;
    RETURN NULL;
END
$$;

-- TRUNCATE presences empties the rollup with it.
CREATE FUNCTION presence_rollup_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(presence_rollup_lock_key());
    DELETE FROM presence_dirty;
    DELETE FROM asset_state;
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
    WITH taken AS (
        DELETE FROM presence_dirty d
        WHERE max_rows IS NULL
           OR d.ctid = ANY (ARRAY(SELECT x.ctid FROM presence_dirty x
                                  LIMIT max_rows))
        RETURNING d.assets
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

-- Fill the rollup from the rows already stored. The triggers above were
-- created first: their lock keeps writers out until this commits.
SELECT presence_rollup_rebuild();
