-- citus.sql -- the schema's layout on a Citus coordinator. `presence-ingest
-- migrate` runs this after the numbered migrations whenever the database
-- has the citus extension (docs/scale-out.md); it is idempotent, so it runs
-- again after every migrate and lays out what a new migration added.
--
--  * presences is distributed by hash of id (the primary key, CONTRACT §3,
--    must contain the distribution column; asset is null for
--    failed_connect), its id-range partitions co-located with it. The
--    shard count is presence.citus_shard_count when the session sets it
--    (conninfo options=-c presence.citus_shard_count=N), else two per
--    worker: a batch's COPY and probe touch every shard, so shards cost
--    round trips (docs/scale-out.md, measured).
--  * Every other table stays on the coordinator, plain: ingest_offsets
--    (the fence's row locks stay local; a batch commits over the
--    coordinator and the workers it wrote to with Citus's two-phase
--    commit), the rejects, the rollup (asset_state, asset_days, ... and
--    their triggers on asset_state, which are local).
--  * Citus runs no triggers on a distributed table: presences' rollup
--    triggers are dropped and the writer records the rollup's marks itself,
--    in the batch's transaction, from the rows it inserted
--    (presence_rollup_mark_rows; the writer takes that mode when
--    presences has no presences_rollup_insert trigger).
--  * Citus cannot plan a SQL function's parameterized query on a
--    distributed table, nor most of the reports' correlated lateral
--    subqueries (only joins on the distribution column push down): each
--    function that reads presences runs on the coordinator over a copy of
--    the rows it may read (the wrappers below).

-- Every function here runs on the coordinator only: none is sent to the
-- workers (Citus would otherwise propagate each CREATE, and a later
-- CREATE OR REPLACE by presence_owner would then fail on a worker where
-- the function's owner is still the one that created it).
SELECT set_config('citus.enable_ddl_propagation', 'off', true);

-- The marks of a set of changed rows, as presence_rollup_mark() (0007)
-- records them for an UPDATE or DELETE: rows is a query returning (sign,
-- asset, type, reason, time, connection_id), sign 1 for a row added, -1
-- for one removed.
CREATE OR REPLACE FUNCTION presence_rollup_mark_rows(rows text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    -- The rows once, materialized: on the coordinator even when they come
    -- from presences (Citus plans the CTE on its own, then the rest here).
    EXECUTE format($q$
        WITH x AS MATERIALIZED (%1$s)
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
                    FROM x r
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
                  FROM x r GROUP BY 1, 2, 3
                  HAVING sum(r.sign) <> 0) g) m
        WHERE EXISTS (SELECT 1 FROM x r) $q$, rows);
END
$$;

-- The writer's new rows of a batch (COPYed into its temporary pi_fresh
-- beside presences), marked, then forgotten.
CREATE OR REPLACE FUNCTION presence_rollup_mark_fresh() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM presence_rollup_mark_rows(
        'SELECT 1 AS sign, f.asset, f.type, f.reason, f.time, '
        'f.connection_id FROM pg_temp.pi_fresh f');
    TRUNCATE pg_temp.pi_fresh;
END
$$;

-- The same marks, returning one id of the rows per shard of presences
-- they went to: the writer's enlisting no-op UPDATE then names each shard
-- it wrote once instead of every row (lib/writer/rows.c,
-- docs/scale-out.md).
CREATE OR REPLACE FUNCTION presence_rollup_mark_fresh_ids() RETURNS int8[]
LANGUAGE plpgsql AS $$
DECLARE
    ids int8[];
BEGIN
    SELECT array_agg(s.id) INTO ids
    FROM (SELECT min(f.id) AS id FROM pg_temp.pi_fresh f
          GROUP BY get_shard_id_for_distribution_column('presences', f.id)) s;
    PERFORM presence_rollup_mark_fresh();
    RETURN ids;
END
$$;

-- Wait until the two-phase commits that Citus had prepared on the workers
-- when this is called are resolved (committed or rolled back there), at
-- most wait_s seconds, else raise. A batch's marks are on the coordinator,
-- visible as soon as its transaction commits there; its rows on a worker
-- only once that worker has run COMMIT PREPARED: a moment later, or, when
-- the worker's connection broke in between, when Citus's recovery
-- (citus.recover_2pc_interval, a minute) commits them. The catch-up takes
-- the marks, then reads the rows: it calls this in between (the wrappers
-- below), so that it never folds an asset without rows whose marks it
-- takes (measured: citus_run_exactly_once, a worker restarted mid-drain,
-- 5 assets' days missing before). A worker that does not answer counts as
-- pending.
CREATE OR REPLACE FUNCTION presence_citus_settle(wait_s int DEFAULT 90)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    q constant text := $q$SELECT coalesce(string_agg(gid, ' '), '')
        FROM pg_prepared_xacts
        WHERE gid LIKE 'citus\_%' AND database = current_database()$q$;
    first text[];
    now_pending text[];
    deadline timestamptz := clock_timestamp() + make_interval(secs => wait_s);
BEGIN
    LOOP
        SELECT coalesce(array_agg(CASE WHEN r.success
                                       THEN r.nodename || ':' || r.nodeport
                                            || '/' || x
                                       ELSE r.nodename || ':' || r.nodeport
                                            || ' unreachable' END), '{}')
        INTO now_pending
        FROM run_command_on_workers(q) r
        LEFT JOIN LATERAL unnest(string_to_array(
            CASE WHEN r.success THEN r.result END, ' ')) x ON true
        -- Every one, not only those pg_dist_transaction records as
        -- committed on the coordinator: that narrower wait still let one
        -- run of 13 fold an asset without rows (cause not found), this
        -- one none in 10 (docs/scale-out.md). A prepared transaction that
        -- will be rolled back is waited for until Citus's recovery.
        WHERE NOT r.success OR x IS NOT NULL;
        IF first IS NULL THEN
            first := now_pending;
        END IF;
        -- Those prepared before the call, still there (new ones are later
        -- batches, whose marks the caller has not taken).
        IF NOT (now_pending && first) THEN
            RETURN;
        END IF;
        IF clock_timestamp() > deadline THEN
            RAISE EXCEPTION 'two-phase commits still in doubt on the workers after % s: %',
                wait_s, array_to_string(ARRAY(SELECT unnest(now_pending)
                                   INTERSECT SELECT unnest(first)), ', ')
                USING ERRCODE = 'lock_not_available';
        END IF;
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;

-- The stored rows that pi_stage's rows [lo, hi) replace (the writer's
-- --on-conflict replace), marked before the writer's UPDATE.
CREATE OR REPLACE FUNCTION presence_rollup_mark_replaced(lo int, hi int)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM presence_rollup_mark_rows(format(
        'SELECT -1 AS sign, p.asset, p.type, p.reason, p.time, '
        'p.connection_id FROM presences p WHERE p.id = ANY (ARRAY('
        'SELECT s.id FROM pg_temp.pi_stage s WHERE s.seq >= %1$s AND '
        's.seq < %2$s)) UNION ALL SELECT 1, s.asset, s.type, s.reason, '
        's.time, s.connection_id FROM pg_temp.pi_stage s WHERE s.seq >= '
        '%1$s AND s.seq < %2$s', lo, hi));
END
$$;

-- Functions first: once presences is distributed in this transaction, Citus
-- refuses to create functions (it would propagate them to the workers).
DO $$
DECLARE
    shards int := nullif(current_setting('presence.citus_shard_count', true),
                         '')::int;
    f record;
    filter text;
    callargs text;
    body text;
BEGIN
    -- Each reader of presences becomes a wrapper of itself (renamed
    -- <name>__local): the wrapper copies the rows it may read into a
    -- temporary table named presences, which the body's unqualified
    -- "presences" then names (pg_temp is searched first), so the body runs
    -- on the coordinator unchanged, as on one server. Only the asset's rows
    -- when the function takes one (a) or a list (assets, todo; null: all),
    -- the window's for presences_in and reason_counts, else all of them
    -- (the other window reports: docs/scale-out.md, the cost).
    -- Nested calls reuse the outer call's copy, so the functions that take
    -- a list of assets are wrapped too (one copy for the catch-up's list,
    -- not one per asset). DDL stays on the
    -- coordinator: the workers need none of these functions.
    PERFORM set_config('citus.enable_ddl_propagation', 'off', true);
    -- A wrapper made before this file's current version (a catch-up
    -- wrapper without presence_citus_settle(), a window function's copying
    -- every row): its body back under its name, to be wrapped again below.
    FOR f IN
        SELECT p.oid, p.proname,
               pg_get_function_identity_arguments(p.oid) AS ident
        FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = current_schema()
          AND obj_description(p.oid, 'pg_proc') = 'citus wrapper'
          AND (p.proname LIKE 'presence\_rollup\_%'
               AND p.prosrc NOT LIKE '%presence_citus_settle%'
               OR p.proname IN ('presences_in', 'reason_counts')
               AND p.prosrc NOT LIKE '%p.time >= $1%')
    LOOP
        EXECUTE format('DROP FUNCTION %s', f.oid::regprocedure);
        EXECUTE format('ALTER FUNCTION %I(%s) RENAME TO %I',
                       f.proname || '__local', f.ident, f.proname);
    END LOOP;
    FOR f IN
        SELECT p.oid, p.proname, p.proretset, p.prorettype,
               pg_get_function_arguments(p.oid) AS args,
               pg_get_function_result(p.oid) AS result, p.pronargs,
               coalesce(p.proargnames, '{}') AS names,
               p.proargtypes
        FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = current_schema()
          AND (p.prosrc ~ '\mpresences\M'
               OR EXISTS (SELECT 1 FROM unnest(p.proargnames) a(name)
                          WHERE a.name IN ('assets', 'todo')))
          AND p.provolatile <> 'i'
          AND p.prorettype <> 'trigger'::regtype
          AND p.proname NOT LIKE '%\_\_local'
          AND p.proname NOT IN ('presence_partitions_ensure',
                                'presence_partition_retire',
                                'presence_partition_dropping',
                                'presence_rollup_mark_rows',
                                'presence_rollup_mark_fresh',
                                'presence_rollup_mark_fresh_ids',
                                'presence_citus_settle',
                                'presence_rollup_mark_replaced')
          AND obj_description(p.oid, 'pg_proc') IS DISTINCT FROM
              'citus wrapper'
    LOOP
        filter := 'true';
        callargs := '';
        FOR i IN 1 .. f.pronargs LOOP
            callargs := callargs || CASE WHEN i > 1 THEN ', ' ELSE '' END
                        || '$' || i;
            IF f.names[i] = 'a' AND f.proargtypes[i - 1] = 'text'::regtype
            THEN
                filter := format('p.asset = $%s', i);
            ELSIF f.names[i] IN ('assets', 'todo')
                  AND f.proargtypes[i - 1] = 'text[]'::regtype THEN
                filter := format('($%1$s IS NULL OR p.asset = ANY ($%1$s))',
                                 i);
            END IF;
        END LOOP;
        -- The window functions whose bodies read only rows with time in
        -- [since, until) (no session look-back): only those rows, each
        -- shard scanning its partitions' BRIN index on time.
        IF f.proname IN ('presences_in', 'reason_counts')
           AND f.names[1] = 'since' AND f.names[2] = 'until' THEN
            filter := 'p.time >= $1 AND p.time < $2';
        END IF;
        EXECUTE format('DROP FUNCTION IF EXISTS %I(%s)', f.proname || '__local',
                       pg_get_function_identity_arguments(f.oid));
        EXECUTE format('ALTER FUNCTION %s RENAME TO %I', f.oid::regprocedure,
                       f.proname || '__local');
        body := format($b$
DECLARE
    own boolean := to_regclass('pg_temp.presences') IS NULL;
    %s
BEGIN
    IF own THEN
        %s
        CREATE TEMP TABLE presences ON COMMIT DROP AS
            SELECT p.* FROM %I.presences p WHERE %s;
        CREATE INDEX ON pg_temp.presences (asset, type, time, id);
        CREATE INDEX ON pg_temp.presences (connection_id);
        ANALYZE pg_temp.presences;
    END IF;
    %s
    IF own THEN
        DROP TABLE pg_temp.presences;
    END IF;
    RETURN%s;
END
$b$,
            CASE WHEN f.proretset OR f.prorettype = 'void'::regtype THEN ''
                 ELSE format('r %s;', f.result) END,
            -- The catch-up's readers: the rows of the marks it took.
            CASE WHEN f.proname LIKE 'presence\_rollup\_%'
                 THEN 'PERFORM presence_citus_settle();' ELSE '' END,
            current_schema(), filter,
            CASE WHEN f.proretset
                 THEN format('RETURN QUERY SELECT * FROM %I(%s);',
                             f.proname || '__local', callargs)
                 WHEN f.prorettype = 'void'::regtype
                 THEN format('PERFORM %I(%s);', f.proname || '__local',
                             callargs)
                 ELSE format('r := %I(%s);', f.proname || '__local', callargs)
            END,
            CASE WHEN f.proretset OR f.prorettype = 'void'::regtype THEN ''
                 ELSE ' r' END);
        EXECUTE format('CREATE FUNCTION %I(%s) RETURNS %s LANGUAGE plpgsql '
                       'VOLATILE AS %L', f.proname, f.args, f.result, body);
        EXECUTE format('COMMENT ON FUNCTION %I(%s) IS %L', f.proname,
                       pg_get_function_identity_arguments(f.oid),
                       'citus wrapper');
    END LOOP;
    PERFORM set_config('citus.enable_ddl_propagation', 'on', true);
    IF NOT EXISTS (SELECT 1 FROM pg_dist_partition
                   WHERE logicalrelid = 'presences'::regclass) THEN
        DROP TRIGGER IF EXISTS presences_rollup_insert ON presences;
        DROP TRIGGER IF EXISTS presences_rollup_update ON presences;
        DROP TRIGGER IF EXISTS presences_rollup_delete ON presences;
        DROP TRIGGER IF EXISTS presences_rollup_truncate ON presences;
        IF shards IS NULL THEN
            SELECT greatest(2 * count(*), 2)::int INTO shards
            FROM pg_dist_node
            WHERE noderole = 'primary' AND isactive AND groupid <> 0;
        END IF;
        PERFORM create_distributed_table('presences', 'id',
                                         shard_count => shards);
    END IF;
END
$$;
