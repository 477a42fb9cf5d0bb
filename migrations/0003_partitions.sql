-- 0003_partitions.sql -- presences partitioned by RANGE on id (time
-- partitions: a CloudConnect id's top bits are its creation time), the
-- functions that map ids and times, the partition keeper's and retention's
-- SECURITY DEFINER functions, and the reports of 0002 narrowed to the
-- partitions a time window can touch.
--
-- The id scheme: id >> 22 = milliseconds since 2010-01-01T00:00:00Z (the
-- samples and presences-format.txt's example agree to the millisecond).
--
-- The existing table is not rewritten: it becomes the first partition,
-- presences_legacy, covering every id below the end of the current period
-- (MINVALUE: it holds whatever ids it held, off the scheme or not). A
-- validated CHECK on that range lets ATTACH skip its scan; its indexes are
-- attached to the partitioned ones as they are. The cost on a big table is
-- two reads of it under this migration's lock (the CHECK's validation and the
-- build of the small off-scheme index), no write of its rows. Rows with later
-- ids (a clock ahead, ids off the scheme) are moved out and routed anew.

-- How partitions are cut: `period` is whole days or whole months (UTC,
-- counted from 2010-01-01), `ahead` the number of periods created beyond the
-- current one. One row; the owner may UPDATE it (new partitions follow it,
-- existing ones keep their bounds).
CREATE TABLE presence_partitioning (
    one    boolean  PRIMARY KEY DEFAULT true CHECK (one),
    period interval NOT NULL DEFAULT '1 month'
        CHECK (period > interval '0' AND date_trunc('day', period) = period
               AND (extract(day FROM period) = 0
                    OR (extract(year FROM period) = 0
                        AND extract(month FROM period) = 0))),
    ahead  int      NOT NULL DEFAULT 3 CHECK (ahead BETWEEN 1 AND 120)
);
INSERT INTO presence_partitioning DEFAULT VALUES;

-- The time in an id: its millisecond, as timestamptz.
CREATE FUNCTION presence_id_time(id bigint) RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
SELECT to_timestamp(((id >> 22) + 1262304000000) / 1000.0::float8)
$$;

-- The inverse: the smallest id whose time is at or after t, so that
-- presence_id_time(id) >= t  <=>  id >= presence_id_at(t) for every id > 0.
-- 0 before 2010; 9223372036854775807 past the last millisecond the 41 bits
-- hold (2079-09-07), which no id that follows the scheme reaches (see
-- presence_on_scheme).
CREATE FUNCTION presence_id_at(t timestamptz) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
SELECT CASE
    WHEN t = '-infinity' THEN 0
    WHEN t = 'infinity' THEN 9223372036854775807
    ELSE (SELECT CASE WHEN ms <= 0 THEN 0
                      WHEN ms >= 2199023255551 THEN 9223372036854775807
                      ELSE ms::bigint << 22 END
          FROM (SELECT ceil(extract(epoch FROM t) * 1000)
                       - 1262304000000 AS ms) m)
END
$$;

-- Does a row follow the scheme, for the reports: its time is within one day
-- of its id's time (and its id is not in the 41 bits' last millisecond).
-- Presences are stamped by the server that makes their id, so in practice
-- the two agree to the millisecond; the day is room, not a measurement. Rows
-- that do not follow it are found through presences_offscheme_time_idx.
-- Only built-in immutable operators: inlined, it costs the writer nothing
-- measurable per row.
CREATE FUNCTION presence_on_scheme(id bigint, t timestamptz) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT id > 0 AND (id >> 22) < 2199023255551
   AND t >= to_timestamp(((id >> 22) + 1262217600000) / 1000.0::float8)
   AND t <= to_timestamp(((id >> 22) + 1262390400000) / 1000.0::float8)
$$;

-- The start of the period (cfg period) that holds t, in UTC.
CREATE FUNCTION presence_period_floor(t timestamptz, period interval)
RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE STRICT SET TimeZone = 'UTC' AS $$
DECLARE
    months int := extract(year FROM period)::int * 12
                  + extract(month FROM period)::int;
    k int;
BEGIN
    IF months > 0 THEN
        k := (extract(year FROM t)::int - 2010) * 12
             + extract(month FROM t)::int - 1;
        RETURN timestamptz '2010-01-01 00:00:00+00'
               + make_interval(months => k - mod(mod(k, months) + months, months));
    END IF;
    RETURN date_bin(period, t, timestamptz '2010-01-01 00:00:00+00');
END
$$;

ALTER TABLE presences RENAME TO presences_legacy;
ALTER INDEX presences_pkey RENAME TO presences_legacy_pkey;
ALTER INDEX presences_asset_type_time_idx
    RENAME TO presences_legacy_asset_type_time_idx;
ALTER INDEX presences_connection_id_idx
    RENAME TO presences_legacy_connection_id_idx;
ALTER INDEX presences_time_brin RENAME TO presences_legacy_time_brin;

-- The table of 0001, partitioned. The primary key on id stays global: id is
-- the partition key.
CREATE TABLE presences (
    id                  bigint      PRIMARY KEY
        CONSTRAINT presences_id_check CHECK (id > 0),
    connection_id       bigint      NOT NULL
        CONSTRAINT presences_connection_id_check CHECK (connection_id > 0),
    type                text        NOT NULL,
    reason              text        NOT NULL,
    asset               text        NULL,
    time                timestamptz NOT NULL,
    time_offset_minutes smallint    NOT NULL,
    kafka_topic         text,
    kafka_partition     int,
    kafka_offset        bigint,
    ingested_at         timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (id);
-- (The CHECK names are 0001's: the writer reads the column from them, and
-- ATTACH matches the old table's by name.)

-- The indexes of 0001 and 0002, partitioned: the old table's are attached.
CREATE INDEX presences_asset_type_time_idx ON presences (asset, type, time, id)
    INCLUDE (connection_id);
CREATE INDEX presences_connection_id_idx ON presences (connection_id);
CREATE INDEX presences_time_brin ON presences USING brin (time);
-- The rows off the scheme, by time: what a report scans besides the id
-- window (see presences_in). Normally empty, so it costs the writer nothing.
CREATE INDEX presences_offscheme_time_idx ON presences (time)
    WHERE NOT presence_on_scheme(id, time);

-- Every partition, its id bounds (null: MINVALUE / MAXVALUE), the times they
-- stand for, and the planner's row estimate. For retention, tests and people.
CREATE VIEW presence_partitions AS
SELECT c.relname::text AS partition, b.from_id, b.to_id,
       b.spec = 'DEFAULT' AS is_default,
       presence_id_time(b.from_id) AS from_time,
       presence_id_time(b.to_id) AS to_time,
       greatest(c.reltuples, 0)::bigint AS est_rows
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
CROSS JOIN LATERAL (
    SELECT s.spec,
           CASE WHEN m[1] <> 'MINVALUE' THEN m[1]::bigint END AS from_id,
           CASE WHEN m[2] <> 'MAXVALUE' THEN m[2]::bigint END AS to_id
    FROM (SELECT pg_get_expr(c.relpartbound, c.oid) AS spec) s
    LEFT JOIN LATERAL (
        SELECT regexp_match(s.spec, 'FROM \(''?(-?[0-9]+|MINVALUE)''?\) '
                                    'TO \(''?(-?[0-9]+|MAXVALUE)''?\)') AS m
    ) r ON true
) b
WHERE i.inhparent = 'presences'::regclass;

-- Create the partitions that cover [since, until) (defaults: the current
-- period, and `ahead` periods beyond it), one per period, where none exists;
-- a range that overlaps an existing partition is clipped to the gap. Rows of
-- the DEFAULT partition in a new range move into it first, so attaching never
-- fails (there are few: partitions are made periods ahead, and only ids that
-- far ahead land in DEFAULT). Locks: DEFAULT exclusively for the move and
-- ATTACH's check of it (writers wait only for an off-scheme row), presences
-- in SHARE UPDATE EXCLUSIVE (writers do not wait). lock_timeout bounds any
-- wait: a caller that times out tries again later. Returns what it created.
-- Called by migrate, by `run` (at start, then hourly, on its own
-- connection), by `retention`. SECURITY DEFINER: the service's role needs
-- EXECUTE only.
CREATE FUNCTION presence_partitions_ensure(since timestamptz DEFAULT NULL,
                                           until timestamptz DEFAULT NULL)
RETURNS TABLE (partition text, from_id bigint, to_id bigint, moved bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET TimeZone = 'UTC' SET lock_timeout = '2s' AS $$
DECLARE
    cfg presence_partitioning;
    b timestamptz;
    e timestamptz;
    lo bigint;
    hi bigint;
    x bigint;
    nm text;
    has_default boolean;
BEGIN
    -- One creator at a time (migrate, instances, retention).
    PERFORM pg_advisory_xact_lock(8101472946116829795);
    SELECT * INTO STRICT cfg FROM presence_partitioning;
    b := presence_period_floor(coalesce(since, now()), cfg.period);
    e := coalesce(until, presence_period_floor(now(), cfg.period)
                         + cfg.period * (cfg.ahead + 1));
    SELECT count(*) > 0 INTO has_default
    FROM presence_partitions p WHERE p.is_default;
    WHILE b < e LOOP
        lo := presence_id_at(b);
        hi := presence_id_at(b + cfg.period);
        b := b + cfg.period;
        LOOP -- past every partition that holds lo
            SELECT max(coalesce(p.to_id, 9223372036854775807)) INTO x
            FROM presence_partitions p
            WHERE NOT p.is_default AND coalesce(p.from_id, 0) <= lo
              AND coalesce(p.to_id, 9223372036854775807) > lo;
            EXIT WHEN x IS NULL;
            lo := x;
        END LOOP;
        SELECT min(p.from_id) INTO x FROM presence_partitions p
        WHERE NOT p.is_default AND p.from_id > lo AND p.from_id < hi;
        hi := coalesce(x, hi);
        CONTINUE WHEN lo >= hi;
        nm := 'presences_p' || to_char(presence_id_time(lo), 'YYYYMMDD');
        IF presence_id_time(lo) <> date_trunc('day', presence_id_time(lo)) THEN
            nm := nm || '_' || lo;
        END IF;
        EXECUTE format('CREATE TABLE %I (LIKE presences INCLUDING DEFAULTS '
                       'INCLUDING CONSTRAINTS)', nm);
        moved := 0;
        IF has_default THEN
            LOCK TABLE presences_default IN ACCESS EXCLUSIVE MODE;
            EXECUTE format('WITH m AS (DELETE FROM presences_default '
                           'WHERE id >= $1 AND id < $2 RETURNING *) '
                           'INSERT INTO %I SELECT * FROM m', nm)
                USING lo, hi;
            GET DIAGNOSTICS moved = ROW_COUNT;
        END IF;
        EXECUTE format('ALTER TABLE presences ATTACH PARTITION %I '
                       'FOR VALUES FROM (%s) TO (%s)', nm, lo, hi);
        partition := nm;
        from_id := lo;
        to_id := hi;
        RETURN NEXT;
    END LOOP;
END
$$;

-- Retention of one partition: drop it when its ids are all before the cutoff
-- and so are its rows' own times (a row at or after the cutoff keeps it,
-- whatever its id). The DEFAULT partition (ids off the scheme) is never
-- dropped. dry_run: only say. Returns 'dropped', 'would drop', or 'kept: …'.
-- DETACH … CONCURRENTLY cannot be used (PostgreSQL 15 refuses it when a
-- DEFAULT partition exists, inside a transaction and in a function), so the
-- drop takes presences ACCESS EXCLUSIVE for one catalog change, after the
-- partition alone was locked in SHARE mode for the re-check of its rows
-- (the BRIN index on time: no row read in a partition wholly older) and
-- presence_partition_dropping; lock_timeout caps each wait (and so the
-- writers' wait behind it) to 1 s, and the caller retries. SECURITY DEFINER.
-- Called by presence_partition_retire just before it drops a partition,
-- with the partition locked against writes: a dropped partition fires no
-- DELETE trigger, so what keeps summaries of the rows (0004's rollup)
-- counts them out here. Nothing to do in this migration.
CREATE FUNCTION presence_partition_dropping(part text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
END
$$;
REVOKE ALL ON FUNCTION presence_partition_dropping(text) FROM PUBLIC;

CREATE FUNCTION presence_partition_retire(part text, cutoff timestamptz,
                                          dry_run boolean)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET TimeZone = 'UTC' SET lock_timeout = '1s' AS $$
DECLARE
    p presence_partitions;
    newer boolean;
BEGIN
    SELECT * INTO p FROM presence_partitions q WHERE q.partition = part;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'retention: % is not a partition of presences', part
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p.is_default THEN
        RETURN 'kept: the DEFAULT partition (ids off the scheme) is never '
               'dropped';
    END IF;
    IF p.to_id IS NULL OR p.to_id > presence_id_at(cutoff) THEN
        RETURN 'kept: ids at or after the cutoff';
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE time >= $1)', part)
        INTO newer USING cutoff;
    IF newer THEN
        RETURN 'kept: holds rows with time at or after the cutoff';
    END IF;
    IF dry_run THEN
        RETURN 'would drop';
    END IF;
    -- No row comes into or leaves this partition from here on (SHARE
    -- conflicts with the writers' ROW EXCLUSIVE; the other partitions are
    -- not locked), so check again and let the summaries count its rows out
    -- before the short ACCESS EXCLUSIVE of the catalog change.
    EXECUTE format('LOCK TABLE %I IN SHARE MODE', part);
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE time >= $1)', part)
        INTO newer USING cutoff;
    IF newer THEN
        RETURN 'kept: holds rows with time at or after the cutoff';
    END IF;
    PERFORM presence_partition_dropping(part);
    LOCK TABLE ONLY presences IN ACCESS EXCLUSIVE MODE;
    EXECUTE format('ALTER TABLE presences DETACH PARTITION %I', part);
    EXECUTE format('DROP TABLE %I', part);
    RETURN 'dropped';
END
$$;

-- Pin the search path of the SECURITY DEFINER functions to this schema (a
-- caller's objects must not stand in for ours), and let no one call them
-- unless granted.
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION presence_partitions_ensure(timestamptz, '
                   'timestamptz) SET search_path = %I, pg_temp',
                   current_schema());
    EXECUTE format('ALTER FUNCTION presence_partition_retire(text, '
                   'timestamptz, boolean) SET search_path = %I, pg_temp',
                   current_schema());
END
$$;
REVOKE ALL ON FUNCTION presence_partitions_ensure(timestamptz, timestamptz)
    FROM PUBLIC;
REVOKE ALL ON FUNCTION presence_partition_retire(text, timestamptz, boolean)
    FROM PUBLIC;

-- The old table becomes the first partition.
DO $$
DECLARE
    cfg presence_partitioning;
    hi bigint;
    g record;
BEGIN
    SELECT * INTO STRICT cfg FROM presence_partitioning;
    hi := presence_id_at(presence_period_floor(now(), cfg.period) + cfg.period);
    CREATE TEMP TABLE pi_later ON COMMIT DROP AS
        SELECT * FROM presences_legacy WHERE id >= hi;
    DELETE FROM presences_legacy WHERE id >= hi;
    EXECUTE format('ALTER TABLE presences_legacy ADD CONSTRAINT '
                   'presences_legacy_range CHECK (id < %s)', hi);
    EXECUTE format('ALTER TABLE presences ATTACH PARTITION presences_legacy '
                   'FOR VALUES FROM (MINVALUE) TO (%s)', hi);
    CREATE TABLE presences_default PARTITION OF presences DEFAULT;
    -- The old table's grants (roles.sql's, say) hold for the new one: the
    -- roles read and write presences, not its partitions.
    FOR g IN
        SELECT a.privilege_type, a.grantee, a.is_grantable
        FROM pg_class c, aclexplode(c.relacl) a
        WHERE c.oid = 'presences_legacy'::regclass AND a.grantee <> c.relowner
    LOOP
        EXECUTE format('GRANT %s ON presences TO %s%s', g.privilege_type,
                       CASE WHEN g.grantee = 0 THEN 'PUBLIC'
                            ELSE quote_ident(g.grantee::regrole::text) END,
                       CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION'
                            ELSE '' END);
    END LOOP;
    PERFORM presence_partitions_ensure();
    INSERT INTO presences SELECT * FROM pi_later;
END
$$;

-- 0002's view read the old table (a view holds its table, not its name).
CREATE OR REPLACE VIEW asset_status AS
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

-- The rows with time in [since, until), read from the partitions that can
-- hold them. The rule, exact whatever the ids: a row that follows the scheme
-- (presence_on_scheme: time within a day of its id's time) and has time in
-- [since, until) has its id in the window W = [presence_id_at(since - 1 day),
-- presence_id_at(until + 1 day)). So the rows wanted are those of W with
-- time in [since, until) (W prunes partitions), and those outside W with
-- time in [since, until), which are all off the scheme (a late clock, an id
-- off the scheme, in any partition, DEFAULT included): read through
-- presences_offscheme_time_idx. The halves are disjoint (in W, not in W), so
-- nothing is counted twice or missed, and the first costs no test per row.
-- Inlined by the planner, so the callers' filters (asset, type) reach both.
CREATE FUNCTION presences_in(since timestamptz, until timestamptz)
RETURNS SETOF presences
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT * FROM presences p
WHERE p.id >= presence_id_at(since - interval '1 day')
  AND p.id < presence_id_at(until + interval '1 day')
  AND p.time >= since AND p.time < until
UNION ALL
SELECT * FROM presences p
WHERE NOT presence_on_scheme(p.id, p.time)
  AND (p.id < presence_id_at(since - interval '1 day')
       OR p.id >= presence_id_at(until + interval '1 day'))
  AND p.time >= since AND p.time < until
$$;

-- 0002's functions of a time window, reading presences_in instead of
-- presences: the same rows, so the same results
-- (tests/integration/report_cli.sh). sessions_in (and so uptime_ranges,
-- daily_uptime, daily_uptime_hours, connectivity_sessions) is left as 0002
-- wrote it, reading presences: a session depends on every event before
-- `until`, however old (its connect, an earlier connect on the connection),
-- so only partitions after until + 1 day could be pruned; those are the
-- empty ones ahead, and the UNION ALL measured more planning time than they
-- cost (asset_status, with no window at all, likewise).
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
    SELECT p.type, p.reason, count(*) AS n
    FROM presences_in(since, until) p
    GROUP BY p.type, p.reason
) c
LEFT JOIN presence_reasons r
       ON r.type = c.type AND r.reason = c.reason AND r.documented
$$;

CREATE OR REPLACE FUNCTION flapping_assets(win interval, threshold int,
                                           since timestamptz,
                                           until timestamptz)
RETURNS TABLE (asset text, disconnects bigint, window_start timestamptz,
               window_end timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT DISTINCT ON (w.asset) w.asset, w.n, w.time, w.last
FROM (
    SELECT p.asset, p.time, p.id,
           count(*) OVER w AS n, last_value(p.time) OVER w AS last
    FROM presences_in(since, until) p
    WHERE p.type = 'disconnect' AND p.asset IS NOT NULL
    WINDOW w AS (PARTITION BY p.asset ORDER BY p.time
                 RANGE BETWEEN CURRENT ROW
                       AND win - interval '1 microsecond' FOLLOWING)
) w
WHERE w.n >= threshold
ORDER BY w.asset, w.n DESC, w.time, w.id
$$;
