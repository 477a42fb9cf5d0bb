-- 0008_status_changes.sql -- the status change log (CONTRACT §8 "Status
-- changes"): asset_status_changes, one row per change of an asset's §7
-- status (state, since, reason, connection_id) as the rollup's asset_state
-- takes stored events into account, in commit order (seq), with the new and
-- the previous status; NOTIFY presence_status at commit.
--
-- How changes are caught. Not in the rollup's maintenance functions (they
-- are rewritten by other migrations) but by triggers on asset_state itself:
-- each statement that writes it notes the assets of the rows it wrote (its
-- transition tables) in asset_status_touched, and a trigger deferred to
-- commit compares those assets' asset_state rows, in one statement, with
-- the status last logged for each (asset_status_logged, one row per asset)
-- and records a change only where they differ. So whatever way asset_state
-- is maintained -- rows updated in place, deleted and inserted again, a
-- rebuild that empties it (DELETE or TRUNCATE) and refills it -- a
-- transaction that leaves an asset's status as it was records nothing, and
-- one that changes it several times records one change (from the status
-- before the transaction to the one after it). The cost is per statement
-- and set-based at commit, not a function call per row.

-- An asset whose row is deleted from asset_state and not put back (all its
-- events were deleted: retention dropped them, or presences was truncated)
-- has no status any more: that is recorded as a change whose state, since,
-- reason and connection_id are NULL (the previous_* columns say what it
-- was). Should events of the asset come again, the next change has
-- previous_state NULL, as for a new asset.
--
-- Order. Changes are numbered under a transaction-level advisory lock of
-- their own, taken at commit by the deferred trigger and held until the
-- commit is complete: a transaction numbers its changes only after every
-- transaction that numbered changes before it has committed (or rolled
-- back), so seq order is commit order and a reader of `seq > $last` with a
-- snapshot taken after a NOTIFY, or later, never finds a smaller seq
-- appearing afterwards. (A rolled-back transaction leaves a gap in seq.)
--
-- NOTIFY presence_status, once per committing transaction that recorded a
-- change, payload: the first seq it recorded (a hint only: a listener reads
-- `WHERE seq > $last ORDER BY seq`).

-- The log. state etc. NULL: the asset no longer has a status (see above);
-- previous_state etc. NULL: it had none before (a new asset).
CREATE TABLE asset_status_changes (
    seq                    bigserial   PRIMARY KEY,
    recorded_at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    asset                  text        NOT NULL,
    state                  text,
    since                  timestamptz,
    reason                 text,
    connection_id          bigint,
    previous_state         text,
    previous_since         timestamptz,
    previous_reason        text,
    previous_connection_id bigint
);
-- retention trims by recorded_at.
CREATE INDEX asset_status_changes_recorded_idx
    ON asset_status_changes (recorded_at);

-- The status last logged for each asset (what asset_state held at the last
-- commit that changed it): what the next change is compared with.
CREATE TABLE asset_status_logged (
    asset         text        PRIMARY KEY,
    state         text        NOT NULL,
    since         timestamptz NOT NULL,
    reason        text        NOT NULL,
    connection_id bigint      NOT NULL
);

-- The assets a transaction's statements wrote in asset_state, one row per
-- statement (NULL: every asset, after a TRUNCATE), until its commit takes
-- them. Rows live within one transaction (its commit deletes them):
-- UNLOGGED, no index.
CREATE UNLOGGED TABLE asset_status_touched (
    assets text[]
);

CREATE FUNCTION asset_status_log_lock_key() RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT 7304169482913377008::bigint $$;

-- The statement triggers: note the assets of the rows written (for UPDATE,
-- the old rows' and the new rows'); nothing when no row was.
CREATE FUNCTION asset_status_touch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO asset_status_touched (assets)
        SELECT array_agg(n.asset) FROM status_new n HAVING count(*) > 0;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO asset_status_touched (assets)
        SELECT array_agg(x.asset)
        FROM (SELECT n.asset FROM status_new n
              UNION SELECT o.asset FROM status_old o) x
        HAVING count(*) > 0;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO asset_status_touched (assets)
        SELECT array_agg(o.asset) FROM status_old o HAVING count(*) > 0;
    ELSE -- TRUNCATE
        INSERT INTO asset_status_touched (assets) VALUES (NULL);
    END IF;
    RETURN NULL;
END
$$;

-- At commit (deferred, once per noted statement; the first takes every
-- row, the others find none): the touched assets whose asset_state row
-- differs from their logged status, in byte-wise asset order, become
-- changes, and their logged status follows.
CREATE FUNCTION asset_status_log() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    todo  text[];
    every boolean;
    first bigint;
BEGIN
    WITH taken AS (
        DELETE FROM asset_status_touched t RETURNING t.assets
    )
    SELECT coalesce(bool_or(t.assets IS NULL), false),
           array_agg(DISTINCT u.asset) FILTER (WHERE u.asset IS NOT NULL)
    INTO every, todo
    FROM taken t LEFT JOIN LATERAL unnest(t.assets) u(asset) ON true;
    IF NOT every AND todo IS NULL THEN
        RETURN NULL;
    END IF;
    -- Numbered in commit order: see the head of this file.
    PERFORM pg_advisory_xact_lock(asset_status_log_lock_key());
    WITH a AS (
        SELECT x.asset FROM unnest(todo) x(asset) WHERE NOT every
        UNION ALL
        SELECT s.asset FROM asset_state s WHERE every
        UNION
        SELECT l.asset FROM asset_status_logged l WHERE every
    ), diff AS MATERIALIZED (
        SELECT a.asset, c.state, c.since, c.reason, c.connection_id,
               l.state AS p_state, l.since AS p_since, l.reason AS p_reason,
               l.connection_id AS p_connection_id
        FROM a
        LEFT JOIN asset_state c ON c.asset = a.asset
        LEFT JOIN asset_status_logged l ON l.asset = a.asset
        WHERE (c.state, c.since, c.reason, c.connection_id)
              IS DISTINCT FROM (l.state, l.since, l.reason, l.connection_id)
    ), logged AS (
        INSERT INTO asset_status_logged AS l
            (asset, state, since, reason, connection_id)
        SELECT d.asset, d.state, d.since, d.reason, d.connection_id
        FROM diff d WHERE d.state IS NOT NULL
        ON CONFLICT (asset) DO UPDATE
            SET state = excluded.state, since = excluded.since,
                reason = excluded.reason,
                connection_id = excluded.connection_id
    ), gone AS (
        DELETE FROM asset_status_logged l
        USING diff d WHERE d.state IS NULL AND l.asset = d.asset
    ), recorded AS (
        INSERT INTO asset_status_changes
            (asset, state, since, reason, connection_id, previous_state,
             previous_since, previous_reason, previous_connection_id)
        SELECT d.asset, d.state, d.since, d.reason, d.connection_id,
               d.p_state, d.p_since, d.p_reason, d.p_connection_id
        FROM diff d ORDER BY d.asset COLLATE "C"
        RETURNING seq
    )
    SELECT min(r.seq) INTO first FROM recorded r;
    -- Once per transaction (a transaction-local setting remembers it).
    IF first IS NOT NULL AND
       coalesce(current_setting('presence.status_notified', true), '') = ''
    THEN
        PERFORM set_config('presence.status_notified', first::text, true);
        PERFORM pg_notify('presence_status', first::text);
    END IF;
    RETURN NULL;
END
$$;

-- Remove the changes recorded before cutoff (retention, with --keep);
-- dry_run: count them only. Returns how many.
CREATE FUNCTION asset_status_changes_trim(cutoff timestamptz, dry_run boolean)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER AS $$
DECLARE
    n bigint;
BEGIN
    IF dry_run THEN
        SELECT count(*) INTO n FROM asset_status_changes c
        WHERE c.recorded_at < cutoff;
    ELSE
        DELETE FROM asset_status_changes c WHERE c.recorded_at < cutoff;
        GET DIAGNOSTICS n = ROW_COUNT;
    END IF;
    RETURN n;
END
$$;

-- The triggers' functions write the log as its owner (SECURITY DEFINER):
-- the role that maintains asset_state (the rollup's catch-up, as the
-- writer) needs no privilege on the log but reading it. Search path pinned
-- to this schema.
DO $$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY['asset_status_touch()', 'asset_status_log()',
                             'asset_status_changes_trim(timestamptz, boolean)']
    LOOP
        EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER'
                       ' SET search_path = %I, pg_temp', f, current_schema());
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$$;
-- Compiling the commit's statement (jit) would cost more than running it.
ALTER FUNCTION asset_status_log() SET jit = off;

CREATE TRIGGER asset_state_status_insert AFTER INSERT ON asset_state
    REFERENCING NEW TABLE AS status_new
    FOR EACH STATEMENT EXECUTE FUNCTION asset_status_touch();
CREATE TRIGGER asset_state_status_update AFTER UPDATE ON asset_state
    REFERENCING OLD TABLE AS status_old NEW TABLE AS status_new
    FOR EACH STATEMENT EXECUTE FUNCTION asset_status_touch();
CREATE TRIGGER asset_state_status_delete AFTER DELETE ON asset_state
    REFERENCING OLD TABLE AS status_old
    FOR EACH STATEMENT EXECUTE FUNCTION asset_status_touch();
CREATE TRIGGER asset_state_status_truncate AFTER TRUNCATE ON asset_state
    FOR EACH STATEMENT EXECUTE FUNCTION asset_status_touch();
-- Deferred to commit: sees asset_state as the transaction leaves it.
CREATE CONSTRAINT TRIGGER asset_status_touched_log
    AFTER INSERT ON asset_status_touched
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION asset_status_log();

-- The log starts now: the statuses asset_state holds are the ones logged,
-- no change recorded for them. (CREATE TRIGGER above locked asset_state
-- against writes until this commits: no catch-up falls in between.)
INSERT INTO asset_status_logged (asset, state, since, reason, connection_id)
SELECT s.asset, s.state, s.since, s.reason, s.connection_id FROM asset_state s;
