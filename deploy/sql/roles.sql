-- roles.sql -- least-privilege group roles for presence-ingest.
--
-- Run by an administrator (a superuser, or the role that ran the first
-- `migrate` if it has CREATEROLE) in the service's database, after
-- `presence-ingest migrate`, and again after any migrate that adds objects:
--
--   psql "$ADMIN_PG" -v ON_ERROR_STOP=1 -f deploy/sql/roles.sql
--
-- Re-runnable: it creates what is missing and (re)states every grant. It
-- makes three NOLOGIN group roles (cluster-wide names) and gives them
-- privileges on this database's objects only:
--
--   presence_owner   owns the tables, views and functions; `migrate` logs in
--                    as a member of it and runs the migrations as it (SET
--                    ROLE), so that what they create is owned by it too
--   presence_writer  what `run`, `replay`, `load` (and `retention`) need,
--                    nothing more: no DROP, ALTER, TRUNCATE or DELETE
--   presence_reader  `report` and dashboards: SELECT on the tables and views
--
-- A deployment grants them to its login roles, for example:
--
--   CREATE ROLE pi_ingest LOGIN PASSWORD '…' IN ROLE presence_writer;
--   CREATE ROLE grafana   LOGIN PASSWORD '…' IN ROLE presence_reader;
--   CREATE ROLE pi_deploy LOGIN PASSWORD '…' IN ROLE presence_owner;
--
-- The instances of one consumer group should share one login role: an
-- instance ends the sessions of a frozen one (pg_terminate_backend), which
-- PostgreSQL allows on the sessions of one's own role (or with
-- pg_signal_backend).

DO $roles$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['presence_owner', 'presence_writer',
                             'presence_reader'] LOOP
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        EXCEPTION
            -- Already there, or created at the same moment by another run.
            WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END LOOP;
END
$roles$;

DO $grants$
DECLARE
    -- Where migrate put the tables (the search_path's first schema then).
    s      name := (SELECT n.nspname FROM pg_class c
                    JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE c.oid = to_regclass('schema_migrations'));
    -- The objects of the migrations, by their stable names (CONTRACT §4,
    -- §7): a migration that adds one adds it here.
    tables text[] := ARRAY['schema_migrations', 'presences', 'presence_rejects',
                           'ingest_offsets', 'presence_reasons',
                           'connectivity_sessions', 'asset_status',
                           'presence_partitioning', 'presence_partitions',
                           'asset_state', 'presence_dirty',
                           'presence_reason_minutes', 'asset_days',
                           'asset_day_spans', 'asset_open_sessions',
                           'asset_status_changes', 'asset_status_logged',
                           'asset_status_touched',
                           -- 0010: the legacy move's state (migrate
                           -- --move-legacy runs as the owner)
                           'presence_legacy_move',
                           'presence_legacy_move_parts',
                           'presence_legacy_delta',
                           -- 0012: the append fold's marks
                           'asset_fold'];
    -- The report functions and the id/time helpers (0003): SQL, SECURITY
    -- INVOKER, for readers.
    reports text[] := ARRAY['sessions_in', 'uptime_ranges', 'daily_uptime',
                            'daily_uptime_hours', 'reason_counts',
                            'flapping_assets', 'presences_in',
                            'presence_id_time', 'presence_id_at',
                            'presence_on_scheme', 'presence_period_floor',
                            'asset_status_of', 'asset_status_for',
                            'session_rows', 'daily_uptime_of',
                            'presence_local_days', 'presence_dirty_assets',
                            'asset_status_by_asset',
                            'daily_uptime_by_asset'];
    -- The writer's functions (0003): SECURITY DEFINER, so they act as their
    -- owner (presence_owner, who owns presences and its partitions);
    -- EXECUTE is revoked from PUBLIC by the migration.
    definer text[] := ARRAY['presence_partitions_ensure',
                            'presence_partition_retire',
                            'asset_status_changes_trim'];
    -- Internal functions (0003, 0004): owned, granted to nobody (the rollup's
    -- triggers and catch-up run as the role whose statement fires them).
    internal text[] := ARRAY['presence_partition_dropping',
                             'presence_rollup_lock_key', 'presence_rollup_mark',
                             'presence_rollup_truncate',
                             'presence_rollup_refresh',
                             'presence_rollup_rebuild',
                             'presence_rollup_assets', 'asset_days_for',
                             'presence_rollup_clear',
                             -- 0008: the status log's triggers (SECURITY
                             -- DEFINER: they write the log as its owner)
                             'asset_status_log_lock_key',
                             'asset_status_touch', 'asset_status_log',
                             -- 0010: the legacy move (its trigger is
                             -- SECURITY DEFINER: it records as the owner)
                             'presence_legacy_move_lock_key',
                             'presence_legacy_delta_mark',
                             'presence_legacy_move_columns',
                             'presence_legacy_move_part',
                             'presence_legacy_move_apply',
                             'presence_legacy_move_abandon',
                             'presence_legacy_move_step',
                             -- 0012: the append fold
                             'presence_rollup_append', 'presence_fold_marks'];
    -- Citus (migrations/citus/citus.sql): the writer records the rollup's
    -- marks itself with these (SECURITY INVOKER), and its catch-up waits
    -- for in-doubt two-phase commits with the last.
    marks text[] := ARRAY['presence_rollup_mark_rows',
                          'presence_rollup_mark_fresh',
                          'presence_rollup_mark_fresh_ids',
                          'presence_rollup_mark_replaced',
                          'presence_citus_settle'];
    -- A Citus coordinator (migrations/citus/citus.sql laid it out).
    citus  boolean := EXISTS (SELECT 1 FROM pg_extension
                              WHERE extname = 'citus');
    obj    record;
BEGIN
    IF s IS NULL THEN
        RAISE EXCEPTION 'no schema_migrations table here: run presence-ingest migrate first, in this database';
    END IF;
    IF citus THEN
        -- Citus propagates the grants and owners to the workers; changing
        -- a function's owner after a grant on the distributed presences
        -- needs one connection per worker for the whole transaction.
        PERFORM set_config('citus.multi_shard_modify_mode', 'sequential',
                           true);
    END IF;
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO presence_owner,'
                   ' presence_writer', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO presence_reader',
                   current_database());
    -- CREATE: for migrations, and for a new owner of the objects.
    EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO presence_owner', s);
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO presence_writer,'
                   ' presence_reader', s);

    -- The owner owns them all. The writer and the reader are stated from
    -- scratch (REVOKE first): a privilege taken out of this file is taken
    -- away on the next run.
    -- (ALTER … OWNER only where it changes something: it locks the table
    -- exclusively, and a run beside the service should not.) Each DO block
    -- is one transaction: no session sees the grants half made.
    FOR obj IN
        SELECT format('TABLE %I.%I', s, c.relname) AS what,
               c.relowner <> 'presence_owner'::regrole AS foreign
        FROM pg_class c
        WHERE c.relnamespace = s::regnamespace AND c.relname = ANY (tables)
        UNION ALL
        SELECT format('FUNCTION %s', p.oid::regprocedure),
               p.proowner <> 'presence_owner'::regrole
        FROM pg_proc p
        WHERE p.pronamespace = s::regnamespace
          AND (p.proname = ANY (reports || definer || internal)
               -- Citus: what citus.sql makes (its wrappers, the bodies it
               -- renamed <name>__local behind them, the writer's marks
               -- functions), which it replaces at every migrate.
               OR (citus AND (p.proname LIKE '%\_\_local'
                              OR obj_description(p.oid, 'pg_proc')
                                 = 'citus wrapper'
                              OR p.proname = ANY (marks))))
        UNION ALL
        -- The partitions of presences (0003): ALTER TABLE … OWNER does not
        -- reach them, and retention drops them as presence_owner.
        SELECT format('TABLE %s', i.inhrelid::regclass),
               c.relowner <> 'presence_owner'::regrole
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = to_regclass(format('%I.presences', s))
    LOOP
        -- Citus: a function's owner and grants stay on the coordinator
        -- (the workers run none of these; citus.sql renamed some there
        -- only), a table's reach its shards.
        IF citus THEN
            PERFORM set_config('citus.enable_ddl_propagation',
                               (obj.what LIKE 'TABLE %')::text, true);
        END IF;
        IF obj.foreign THEN
            EXECUTE format('ALTER %s OWNER TO presence_owner', obj.what);
        END IF;
        EXECUTE format('REVOKE ALL ON %s FROM presence_writer, presence_reader',
                       obj.what);
    END LOOP;
    IF citus THEN
        PERFORM set_config('citus.enable_ddl_propagation', 'true', true);
    END IF;

    -- The writer. The schema version check at start:
    EXECUTE format('GRANT SELECT ON %I.schema_migrations TO presence_writer', s);
    -- the probe of stored ids and the COPY of new rows (on_conflict=replace
    -- also UPDATEs presences: a deployment using it adds
    --   GRANT UPDATE ON presences TO presence_writer;)
    EXECUTE format('GRANT SELECT, INSERT ON %I.presences TO presence_writer', s);
    -- INSERT … ON CONFLICT (its unique key) DO NOTHING, which reads the key;
    EXECUTE format('GRANT SELECT, INSERT ON %I.presence_rejects'
                   ' TO presence_writer', s);
    -- the fence (SELECT … FOR UPDATE needs UPDATE) and the offsets' upsert.
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I.ingest_offsets'
                   ' TO presence_writer', s);
    -- Functions the writer calls (SECURITY DEFINER, EXECUTE revoked from
    -- PUBLIC): creating partitions ahead (`run`, `retention`), and
    -- `retention`'s drop of a partition wholly older than its cutoff; the
    -- list it works through.
    EXECUTE format('GRANT EXECUTE ON FUNCTION %I.presence_partitions_ensure('
                   'timestamptz, timestamptz) TO presence_writer', s);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %I.presence_partition_retire('
                   'text, timestamptz, boolean) TO presence_writer', s);
    EXECUTE format('GRANT SELECT ON %I.presence_partitions TO presence_writer', s);
    -- The reports' rollup (0004): presences' statement triggers append to
    -- presence_dirty in the writer's transaction; the catch-up thread of
    -- `run` (presence_rollup_refresh) takes those rows and rewrites the
    -- summaries (0004's two, 0005's three, 0012's marks). Derived data only:
    -- presences itself stays insert-only.
    EXECUTE format('GRANT SELECT, INSERT, DELETE ON %I.presence_dirty'
                   ' TO presence_writer', s);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I.asset_state,'
                   ' %I.presence_reason_minutes, %I.asset_days,'
                   ' %I.asset_day_spans, %I.asset_open_sessions,'
                   ' %I.asset_fold TO presence_writer', s, s, s, s, s, s);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %I.presence_rollup_refresh(int)'
                   ' TO presence_writer', s);
    -- The status change log (0008): written only by asset_state's triggers
    -- (as its owner); `run` reads it for the fleet gauges, `retention`
    -- trims it through the SECURITY DEFINER function.
    EXECUTE format('GRANT SELECT ON %I.asset_status_changes,'
                   ' %I.asset_status_logged TO presence_writer', s, s);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %I.asset_status_changes_trim('
                   'timestamptz, boolean) TO presence_writer', s);

    -- The reader: the tables and views, read-only, and the report functions.
    -- (`watch` reads asset_status_changes and LISTENs on presence_status:
    -- LISTEN needs no privilege.) From here on Citus propagates only the
    -- tables' grants (as above).
    FOR obj IN
        SELECT format('TABLE %I.%I', s, c.relname) AS what
        FROM pg_class c
        WHERE c.relnamespace = s::regnamespace AND c.relname = ANY (tables)
        UNION ALL
        SELECT format('FUNCTION %s', p.oid::regprocedure)
        FROM pg_proc p
        WHERE p.pronamespace = s::regnamespace AND p.proname = ANY (reports)
    LOOP
        IF citus THEN
            PERFORM set_config('citus.enable_ddl_propagation',
                               (obj.what LIKE 'TABLE %')::text, true);
        END IF;
        EXECUTE format('GRANT %s ON %s TO presence_reader',
                       CASE WHEN obj.what LIKE 'TABLE %' THEN 'SELECT'
                            ELSE 'EXECUTE' END, obj.what);
    END LOOP;

    -- On Citus (docs/scale-out.md), beside the above:
    IF citus THEN
        PERFORM set_config('citus.enable_ddl_propagation', 'false', true);
        -- the reports' wrappers copy the rows they read into a temporary
        -- table, and run the body, <name>__local;
        EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO presence_reader',
                       current_database());
        FOR obj IN
            SELECT format('FUNCTION %s', p.oid::regprocedure) AS what
            FROM pg_proc p
            WHERE p.pronamespace = s::regnamespace
              AND p.proname LIKE '%\_\_local'
              AND left(p.proname, -7) = ANY (reports)
        LOOP
            EXECUTE format('GRANT EXECUTE ON %s TO presence_reader', obj.what);
        END LOOP;
        -- the writer marks the rollup itself (no trigger on a distributed
        -- table), its catch-up runs presence_rollup_refresh's body, and it
        -- enlists the shards it wrote with a no-op UPDATE of connection_id;
        FOR obj IN
            SELECT format('FUNCTION %s', p.oid::regprocedure) AS what
            FROM pg_proc p
            WHERE p.pronamespace = s::regnamespace
              AND (p.proname = ANY (marks)
                   OR p.proname = 'presence_rollup_refresh__local')
        LOOP
            EXECUTE format('GRANT EXECUTE ON %s TO presence_writer', obj.what);
        END LOOP;
        PERFORM set_config('citus.enable_ddl_propagation', 'true', true);
        EXECUTE format('GRANT UPDATE (connection_id) ON %I.presences'
                       ' TO presence_writer', s);
        -- the coordinator runs a statement on the workers as the role that
        -- runs it: presence_partitions_ensure() and retention's drops run
        -- as presence_owner (SECURITY DEFINER), which must log in there
        -- (Citus's node-to-node authentication, e.g. pg_dist_authinfo).
        ALTER ROLE presence_owner LOGIN;
    END IF;
END
$grants$;
