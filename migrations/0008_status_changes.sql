-- 0008_status_changes.sql -- the status change log (CONTRACT §8 "Status
-- changes"): asset_status_changes, one row per change of an asset's §7
-- status (state, since, reason, connection_id) as the rollup's asset_state
-- takes stored events into account, in commit order (seq), with the new and
-- the previous status; NOTIFY presence_status at commit.
--
-- How changes are caught. Not in the rollup's maintenance functions (they
-- are rewritten by other migrations) but by a trigger on asset_state itself,
-- deferred to the commit of the transaction that wrote it: at commit, each
-- asset whose asset_state row was inserted, updated or deleted is compared
-- with the status last logged for it (asset_status_logged, one row per
-- asset), and a change is recorded only when they differ. So whatever way
-- asset_state is maintained -- rows updated in place, deleted and inserted
-- again, a rebuild that empties it (DELETE or TRUNCATE) and refills it --
-- a transaction that leaves an asset's status as it was records nothing,
-- and one that changes it several times records one change (from the
-- status before the transaction to the one after it).
--
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

-- A TRUNCATE of asset_state fires no row trigger: it leaves a row here,
-- whose deferred trigger compares every asset at commit.
CREATE TABLE asset_status_recheck (
    at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION asset_status_log_lock_key() RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT 7304169482913377008::bigint $$;

-- Compare asset a's asset_state row with its logged status; record a change
-- and notify when they differ.
CREATE FUNCTION asset_status_log_asset(a text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    cur  asset_status_logged%ROWTYPE;
    prev asset_status_logged%ROWTYPE;
    s    bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(asset_status_log_lock_key());
    SELECT x.asset, x.state, x.since, x.reason, x.connection_id INTO cur
    FROM asset_state x WHERE x.asset = a;
    SELECT l.asset, l.state, l.since, l.reason, l.connection_id INTO prev
    FROM asset_status_logged l WHERE l.asset = a;
    IF (cur.state, cur.since, cur.reason, cur.connection_id)
       IS NOT DISTINCT FROM
       (prev.state, prev.since, prev.reason, prev.connection_id) THEN
        RETURN;
    END IF;
    INSERT INTO asset_status_changes
        (asset, state, since, reason, connection_id, previous_state,
         previous_since, previous_reason, previous_connection_id)
    VALUES (a, cur.state, cur.since, cur.reason, cur.connection_id,
            prev.state, prev.since, prev.reason, prev.connection_id)
    RETURNING seq INTO s;
    IF cur.asset IS NULL THEN
        DELETE FROM asset_status_logged l WHERE l.asset = a;
    ELSE
        INSERT INTO asset_status_logged AS l
            (asset, state, since, reason, connection_id)
        VALUES (a, cur.state, cur.since, cur.reason, cur.connection_id)
        ON CONFLICT (asset) DO UPDATE
            SET state = excluded.state, since = excluded.since,
                reason = excluded.reason,
                connection_id = excluded.connection_id;
    END IF;
    -- Once per transaction (a transaction-local setting remembers it).
    IF coalesce(current_setting('presence.status_notified', true), '') = ''
    THEN
        PERFORM set_config('presence.status_notified', s::text, true);
        PERFORM pg_notify('presence_status', s::text);
    END IF;
END
$$;

-- The row trigger (deferred): the assets of the old and the new row.
CREATE FUNCTION asset_status_log_row() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM asset_status_log_asset(NEW.asset);
    END IF;
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.asset <> NEW.asset) THEN
        PERFORM asset_status_log_asset(OLD.asset);
    END IF;
    RETURN NULL;
END
$$;

-- After a TRUNCATE: every asset logged or in asset_state whose status
-- differs, in asset order (byte-wise).
CREATE FUNCTION asset_status_log_all() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    a text;
BEGIN
    DELETE FROM asset_status_recheck;
    FOR a IN
        SELECT coalesce(c.asset, l.asset)
        FROM asset_state c
        FULL JOIN asset_status_logged l ON l.asset = c.asset
        WHERE (c.state, c.since, c.reason, c.connection_id)
              IS DISTINCT FROM (l.state, l.since, l.reason, l.connection_id)
        ORDER BY coalesce(c.asset, l.asset) COLLATE "C"
    LOOP
        PERFORM asset_status_log_asset(a);
    END LOOP;
    RETURN NULL;
END
$$;

CREATE FUNCTION asset_status_log_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO asset_status_recheck DEFAULT VALUES;
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
    FOREACH f IN ARRAY ARRAY['asset_status_log_asset(text)',
                             'asset_status_log_row()',
                             'asset_status_log_all()',
                             'asset_status_log_truncate()',
                             'asset_status_changes_trim(timestamptz, boolean)']
    LOOP
        EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER'
                       ' SET search_path = %I, pg_temp', f, current_schema());
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$$;

-- Deferred to commit: sees asset_state as the transaction leaves it.
CREATE CONSTRAINT TRIGGER asset_state_status_log
    AFTER INSERT OR UPDATE OR DELETE ON asset_state
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION asset_status_log_row();
CREATE TRIGGER asset_state_status_truncate
    AFTER TRUNCATE ON asset_state
    FOR EACH STATEMENT EXECUTE FUNCTION asset_status_log_truncate();
CREATE CONSTRAINT TRIGGER asset_status_recheck_all
    AFTER INSERT ON asset_status_recheck
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION asset_status_log_all();

-- The log starts now: the statuses asset_state holds are the ones logged,
-- no change recorded for them. (CREATE TRIGGER above locked asset_state
-- against writes until this commits: no catch-up falls in between.)
INSERT INTO asset_status_logged (asset, state, since, reason, connection_id)
SELECT s.asset, s.state, s.since, s.reason, s.connection_id FROM asset_state s;
