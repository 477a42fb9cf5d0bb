-- 0010_legacy_move.sql -- the rows of presences_legacy moved into their
-- periods' partitions online: copy, then swap (presence_legacy_move_step,
-- called in a loop by `presence-ingest migrate --move-legacy`).
--
-- PostgreSQL 15 attaches a partition for a period only once no other
-- partition's bound covers it, and presences_legacy's bound [MINVALUE, hi)
-- covers every period it holds rows of: narrowing it means a validation
-- scan of it under lock, once per period. So nothing is narrowed. Instead:
--   start   a row trigger on presences_legacy records the id of every row
--           written, changed or removed there from now on
--           (presence_legacy_delta); presences_default gets a CHECK
--           (id >= hi), NOT VALID (it holds no id below hi: legacy does);
--   copy    legacy's rows are copied, in id order, `batch` at a time (one
--           transaction each), into one standalone table per period
--           (presences_pYYYYMMDD, as presence_partitions_ensure names them:
--           presences' columns, defaults, constraints and indexes, and a
--           CHECK on the period's id bounds clipped to hi), while legacy
--           stays attached and readers and writers go on using it: a copy
--           step takes no lock a writer waits for;
--   catchup the recorded ids are applied, `batch` at a time (each table's
--           rows of those ids removed, legacy's current rows of them copied
--           again: idempotent); when fewer than `batch` are left the DEFAULT
--           CHECK is validated (a scan of DEFAULT, writers not blocked) and
--           the tables are analyzed;
--   swap    one transaction: the ids recorded since the last catch-up
--           applied; presences locked (ACCESS EXCLUSIVE, lock_timeout 1 s:
--           the caller tries again), the ids recorded meanwhile applied,
--           legacy detached, each period's table attached (no scan: its
--           CHECK implies its bound, and DEFAULT's CHECK that DEFAULT holds
--           none of its ids; its indexes become the partitions of
--           presences' indexes as they are), the CHECKs dropped, legacy
--           (and its trigger) dropped. Under the lock, its cost is the ids
--           recorded while it waited for the lock and a catalog change per
--           period, not the size of legacy.
-- Each step is one transaction that commits its work together with the
-- state (presence_legacy_move), so a crash or kill at any point loses at
-- most the step in progress, and the next call goes on from there. Steps
-- take an advisory lock: two callers at once take turns.
--
-- Copies are made with INSERT into tables that are not partitions of
-- presences, and DETACH, ATTACH and DROP fire no trigger: presences'
-- statement triggers (the rollup's presence_rollup_mark) see nothing, so
-- presence_dirty gets nothing, and the rollup's tables need nothing (the
-- events are the same). Every column is copied as it is (content,
-- provenance, ingested_at).
--
-- Periods follow presence_partitioning.period as it was when the move
-- started (recorded). Periods without a row of legacy get no table: after
-- the swap their ids are free, and the writer (lib/writer/ranges.c) or
-- presence_partitions_ensure creates their partitions when rows come.

-- The move's state: one row, made by the first step.
CREATE TABLE presence_legacy_move (
    one         boolean     PRIMARY KEY DEFAULT true CHECK (one),
    to_id       bigint      NOT NULL, -- legacy's upper bound at the start
    period      interval    NOT NULL, -- presence_partitioning.period then
    phase       text        NOT NULL
        CHECK (phase IN ('copy', 'catchup', 'swap', 'done')),
    copied_to   bigint      NOT NULL DEFAULT 0, -- every id <= it copied
    rows_copied bigint      NOT NULL DEFAULT 0,
    started_at  timestamptz NOT NULL DEFAULT now(),
    swapped_at  timestamptz,
    swap_ms     float8,     -- how long the swap held presences locked
    swap_ids    bigint      -- the ids it applied under that lock
);

-- The tables being filled, one per period, with their future bounds.
CREATE TABLE presence_legacy_move_parts (
    partition text   PRIMARY KEY,
    from_id   bigint NOT NULL UNIQUE,
    to_id     bigint NOT NULL
);

-- The ids written, changed or removed in presences_legacy since the move
-- started (the trigger below), applied by catchup and swap.
CREATE TABLE presence_legacy_delta (
    seq bigserial PRIMARY KEY,
    id  bigint    NOT NULL
);

-- Key of the move's advisory lock (transaction level).
CREATE FUNCTION presence_legacy_move_lock_key() RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT 2794146312081771343::bigint $$;

-- The row trigger on presences_legacy (installed by the first step, gone
-- with legacy). SECURITY DEFINER: the writer's role needs no grant on the
-- delta table.
CREATE FUNCTION presence_legacy_delta_mark() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        INSERT INTO presence_legacy_delta (id) VALUES (OLD.id);
    END IF;
    IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.id <> OLD.id) THEN
        INSERT INTO presence_legacy_delta (id) VALUES (NEW.id);
    END IF;
    RETURN NULL;
END
$$;

-- presences' columns, in order, quoted: legacy's physical order may differ
-- (the table of 0001), so copies name them.
CREATE FUNCTION presence_legacy_move_columns() RETURNS text
LANGUAGE sql STABLE AS $$
SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
FROM pg_attribute a
WHERE a.attrelid = 'presences'::regclass AND a.attnum > 0
  AND NOT a.attisdropped
$$;

-- The table of the period that holds id, created (empty, with presences'
-- indexes and a CHECK on its bounds) when it does not exist yet.
CREATE FUNCTION presence_legacy_move_part(s presence_legacy_move, i bigint)
RETURNS presence_legacy_move_parts
LANGUAGE plpgsql AS $$
DECLARE
    p presence_legacy_move_parts;
    b timestamptz;
BEGIN
    SELECT * INTO p FROM presence_legacy_move_parts q
    WHERE q.from_id <= i AND q.to_id > i;
    IF FOUND THEN
        RETURN p;
    END IF;
    b := presence_period_floor(presence_id_time(i), s.period);
    p.from_id := presence_id_at(b);
    p.to_id := least(presence_id_at(b + s.period), s.to_id);
    p.partition := 'presences_p' || to_char(b, 'YYYYMMDD');
    EXECUTE format('CREATE TABLE %I (LIKE presences INCLUDING DEFAULTS '
                   'INCLUDING CONSTRAINTS INCLUDING INDEXES, '
                   'CONSTRAINT %I CHECK (id >= %s AND id < %s))',
                   p.partition, p.partition || '_move', p.from_id, p.to_id);
    INSERT INTO presence_legacy_move_parts VALUES (p.*);
    RETURN p;
END
$$;

-- Copy legacy's current rows of ids into their periods' tables, replacing
-- what was copied of them before (a row removed from legacy goes). Returns
-- how many ids it took.
CREATE FUNCTION presence_legacy_move_apply(s presence_legacy_move,
                                           ids bigint[])
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    cols text := presence_legacy_move_columns();
    p presence_legacy_move_parts;
    f bigint;
BEGIN
    IF cardinality(ids) = 0 THEN
        RETURN 0;
    END IF;
    FOR p IN SELECT * FROM presence_legacy_move_parts q
             WHERE EXISTS (SELECT 1 FROM unnest(ids) i
                           WHERE i >= q.from_id AND i < q.to_id) LOOP
        EXECUTE format('DELETE FROM %I WHERE id = ANY ($1)', p.partition)
            USING ids;
    END LOOP;
    FOR f IN SELECT min(l.id) FROM presences_legacy l
             WHERE l.id = ANY (ids)
             GROUP BY presence_period_floor(presence_id_time(l.id), s.period)
    LOOP
        p := presence_legacy_move_part(s, f);
        EXECUTE format('INSERT INTO %I (%s) SELECT %s FROM presences_legacy '
                       'WHERE id = ANY ($1) AND id >= $2 AND id < $3',
                       p.partition, cols, cols)
            USING ids, p.from_id, p.to_id;
    END LOOP;
    RETURN cardinality(ids);
END
$$;

-- presences_legacy went away during the move (retention dropped it whole:
-- every row older than its cutoff): the copies are of rows that are gone,
-- so they go too, with DEFAULT's CHECK and the recorded ids.
CREATE FUNCTION presence_legacy_move_abandon() RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    p presence_legacy_move_parts;
BEGIN
    FOR p IN SELECT * FROM presence_legacy_move_parts LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I', p.partition);
    END LOOP;
    DELETE FROM presence_legacy_move_parts;
    DELETE FROM presence_legacy_delta;
    IF to_regclass('presences_default') IS NOT NULL THEN
        ALTER TABLE presences_default
            DROP CONSTRAINT IF EXISTS presences_default_legacy_move;
    END IF;
    UPDATE presence_legacy_move SET phase = 'done';
    RETURN 'abandoned: presences_legacy was dropped during the move';
END
$$;

-- One step of the move (one transaction: call it in autocommit mode, again
-- until it returns 'done'). batch: the rows a copy step copies, the ids a
-- catch-up step applies. Returns what it did: 'started', 'copied N',
-- 'caught up N', 'ready ...', 'swapped ...', 'abandoned ...' (legacy was
-- dropped meanwhile: presence_legacy_move_abandon) or 'done' ('done' at
-- once when presences_legacy is not a partition of presences). The swap
-- waits at most 1 s for its lock (SQLSTATE 55P03 then: call again later).
-- SECURITY DEFINER: what it creates belongs to the migrations' owner.
CREATE FUNCTION presence_legacy_move_step(batch int DEFAULT 20000)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET TimeZone = 'UTC' SET lock_timeout = '2s' AS $$
DECLARE
    s presence_legacy_move;
    cols text := presence_legacy_move_columns();
    hi bigint;
    n bigint;
    ids bigint[];
    f bigint;
    p presence_legacy_move_parts;
    t0 timestamptz;
    ms float8;
    k bigint;
    pre bigint;
BEGIN
    IF batch IS NULL OR batch < 1 THEN
        RAISE EXCEPTION 'presence_legacy_move_step: batch must be >= 1'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(presence_legacy_move_lock_key());
    SELECT * INTO s FROM presence_legacy_move;
    IF NOT FOUND THEN
        SELECT q.to_id INTO hi FROM presence_partitions q
        WHERE q.partition = 'presences_legacy' AND NOT q.is_default;
        IF NOT FOUND THEN
            RETURN 'done';
        END IF;
        IF hi IS NULL THEN
            RAISE EXCEPTION 'presences_legacy has no upper bound'
                USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
        INSERT INTO presence_legacy_move (to_id, period, phase)
        SELECT hi, c.period, 'copy' FROM presence_partitioning c;
        CREATE TRIGGER presences_legacy_move
            AFTER INSERT OR UPDATE OR DELETE ON presences_legacy
            FOR EACH ROW EXECUTE FUNCTION presence_legacy_delta_mark();
        IF to_regclass('presences_default') IS NOT NULL THEN
            EXECUTE format('ALTER TABLE presences_default ADD CONSTRAINT '
                           'presences_default_legacy_move CHECK (id >= %s) '
                           'NOT VALID', hi);
        END IF;
        RETURN 'started';
    END IF;
    IF s.phase <> 'done' AND NOT EXISTS (
           SELECT 1 FROM presence_partitions q
           WHERE q.partition = 'presences_legacy' AND NOT q.is_default) THEN
        RETURN presence_legacy_move_abandon();
    END IF;

    IF s.phase = 'copy' THEN
        SELECT count(*), max(x.id) INTO n, hi
        FROM (SELECT l.id FROM presences_legacy l WHERE l.id > s.copied_to
              ORDER BY l.id LIMIT batch) x;
        IF n = 0 THEN
            UPDATE presence_legacy_move SET phase = 'catchup';
            RETURN 'copied 0';
        END IF;
        FOR f IN SELECT min(l.id) FROM presences_legacy l
                 WHERE l.id > s.copied_to AND l.id <= hi
                 GROUP BY presence_period_floor(presence_id_time(l.id),
                                                s.period)
        LOOP
            p := presence_legacy_move_part(s, f);
            EXECUTE format('INSERT INTO %I (%s) SELECT %s '
                           'FROM presences_legacy WHERE id > $1 '
                           'AND id <= $2 AND id >= $3 AND id < $4',
                           p.partition, cols, cols)
                USING s.copied_to, hi, p.from_id, p.to_id;
        END LOOP;
        UPDATE presence_legacy_move
        SET copied_to = hi, rows_copied = rows_copied + n;
        RETURN 'copied ' || n;
    END IF;

    IF s.phase = 'catchup' THEN
        WITH d AS (
            DELETE FROM presence_legacy_delta
            WHERE seq IN (SELECT seq FROM presence_legacy_delta
                          ORDER BY seq LIMIT batch)
            RETURNING id
        )
        SELECT count(*), coalesce(array_agg(DISTINCT d.id), '{}')
        INTO n, ids FROM d;
        PERFORM presence_legacy_move_apply(s, ids);
        IF n < batch THEN
            IF to_regclass('presences_default') IS NOT NULL THEN
                ALTER TABLE presences_default
                    VALIDATE CONSTRAINT presences_default_legacy_move;
            END IF;
            FOR p IN SELECT * FROM presence_legacy_move_parts LOOP
                EXECUTE format('ANALYZE %I', p.partition);
            END LOOP;
            UPDATE presence_legacy_move SET phase = 'swap';
            RETURN 'ready (caught up ' || n || ')';
        END IF;
        RETURN 'caught up ' || n;
    END IF;

    IF s.phase = 'swap' THEN
        -- After any partition creator (presence_partitions_ensure), which
        -- must not plan a range this swap is about to fill.
        PERFORM pg_advisory_xact_lock(8101472946116829795);
        -- What was recorded since the last catch-up step (the DEFAULT
        -- scan and ANALYZE took a while) is applied before the lock,
        -- which then waits only for what arrives meanwhile.
        WITH d AS (DELETE FROM presence_legacy_delta RETURNING id)
        SELECT coalesce(array_agg(DISTINCT d.id), '{}') INTO ids FROM d;
        pre := presence_legacy_move_apply(s, ids);
        SET LOCAL lock_timeout = '1s';
        LOCK TABLE ONLY presences IN ACCESS EXCLUSIVE MODE;
        t0 := clock_timestamp();
        IF NOT EXISTS (SELECT 1 FROM presence_partitions q
                       WHERE q.partition = 'presences_legacy') THEN
            RETURN presence_legacy_move_abandon();
        END IF;
        WITH d AS (DELETE FROM presence_legacy_delta RETURNING id)
        SELECT coalesce(array_agg(DISTINCT d.id), '{}') INTO ids FROM d;
        n := presence_legacy_move_apply(s, ids);
        ALTER TABLE presences DETACH PARTITION presences_legacy;
        FOR p IN SELECT * FROM presence_legacy_move_parts ORDER BY from_id LOOP
            EXECUTE format('ALTER TABLE presences ATTACH PARTITION %I '
                           'FOR VALUES FROM (%s) TO (%s)',
                           p.partition, p.from_id, p.to_id);
            EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', p.partition,
                           p.partition || '_move');
        END LOOP;
        IF to_regclass('presences_default') IS NOT NULL THEN
            ALTER TABLE presences_default
                DROP CONSTRAINT presences_default_legacy_move;
        END IF;
        DROP TABLE presences_legacy;
        ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
        UPDATE presence_legacy_move
        SET phase = 'done', swapped_at = now(), swap_ms = ms, swap_ids = n;
        DELETE FROM presence_legacy_move_parts;
        GET DIAGNOSTICS k = ROW_COUNT;
        RETURN format('swapped: %s partitions attached, %s ids applied '
                      'before the lock and %s under it, presences locked '
                      '%s ms', k, pre, n, round(ms::numeric, 1));
    END IF;
    RETURN 'done';
END
$$;

DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION presence_legacy_move_step(int) '
                   'SET search_path = %I, pg_temp', current_schema());
    EXECUTE format('ALTER FUNCTION presence_legacy_delta_mark() '
                   'SET search_path = %I, pg_temp', current_schema());
END
$$;
REVOKE ALL ON FUNCTION presence_legacy_move_step(int) FROM PUBLIC;
