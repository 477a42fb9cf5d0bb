-- rollup_property.sql -- the property of migration 0007's incremental
-- rollup: for a random history (seeded), written in random batches with
-- catch-ups of random size between them, the rollup tables equal what
-- presence_rollup_rebuild() computes from the same presences (EXCEPT ALL
-- both ways). Installed into a test database by rollup_property.sh (and by
-- tests/bench/bench_history.sh for more seeds); not part of the schema.
--
-- A history: 1-3 assets (and rows without an asset), each with a small pool
-- of connections reused at random, connect/disconnect/declare_asset and an
-- event type the rollup only counts, times over 12 days across a month's
-- end (ties on purpose), inserted shuffled (late and out-of-order events),
-- some disconnects never sent (lost) or sent for a connection that never
-- connected (orphans); between batches: replays of stored rows (nothing
-- written), DELETEs, UPDATEs (--on-conflict replace), and in one seed of
-- four the retention of the first month's partition. Two seeds of five
-- arrive mostly in time order (0012's append path).

CREATE TABLE IF NOT EXISTS pi_prop_events (
    id bigint, connection_id bigint, type text, reason text, asset text,
    time timestamptz, batch int);

-- The differences between the rollup tables and a rebuild, as text (null:
-- none). Leaves the rebuilt rollup in place.
CREATE OR REPLACE FUNCTION pi_prop_compare() RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    d text;
    t text;
    cols text;
    cnt bigint;
BEGIN
    PERFORM presence_rollup_refresh();
    IF (SELECT count(*) FROM presence_dirty) > 0 THEN
        RETURN 'presence_dirty not empty after a full refresh';
    END IF;
    CREATE TEMP TABLE pi_prop_inc_state AS SELECT * FROM asset_state;
    CREATE TEMP TABLE pi_prop_inc_days AS SELECT * FROM asset_days;
    CREATE TEMP TABLE pi_prop_inc_spans AS SELECT * FROM asset_day_spans;
    CREATE TEMP TABLE pi_prop_inc_open AS SELECT * FROM asset_open_sessions;
    CREATE TEMP TABLE pi_prop_inc_fold AS SELECT * FROM asset_fold;
    CREATE TEMP TABLE pi_prop_inc_minutes AS
        SELECT * FROM presence_reason_minutes WHERE n <> 0;
    PERFORM presence_rollup_rebuild();
    FOR t, cols IN VALUES ('state', 'asset_state'), ('days', 'asset_days'),
                          ('spans', 'asset_day_spans'),
                          ('open', 'asset_open_sessions'),
                          ('fold', 'asset_fold'),
                          ('minutes', 'presence_reason_minutes')
    LOOP
        EXECUTE format('SELECT count(*), string_agg(x::text, '' '') FROM ('
                       '(SELECT ''inc'' AS side, * FROM pi_prop_inc_%1$s '
                       ' EXCEPT ALL SELECT ''inc'', * FROM %2$s) '
                       'UNION ALL '
                       '(SELECT ''ref'', * FROM %2$s '
                       ' EXCEPT ALL SELECT ''ref'', * FROM pi_prop_inc_%1$s)'
                       ') x', t, cols)
            INTO cnt, d;
        IF cnt > 0 THEN
            d := cols || ': ' || left(d, 2000);
            EXIT;
        END IF;
        d := NULL;
    END LOOP;
    DROP TABLE pi_prop_inc_state, pi_prop_inc_days, pi_prop_inc_spans,
               pi_prop_inc_open, pi_prop_inc_fold, pi_prop_inc_minutes;
    RETURN d;
END
$$;

-- One seed: null when the property holds, else what differed.
CREATE OR REPLACE FUNCTION pi_prop(seed int) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    base timestamptz := date_trunc('month', now(), 'UTC')
                        + interval '2 months';
    nassets int;
    nbatches int;
    b int;
    k int;
    r record;
    d text;
    retire_at int := -1;
    first_part text;
BEGIN
    PERFORM setseed((seed % 100000) / 100000.0);
    -- Two seeds of three take the incremental path for every change, the
    -- third recomputes whole the assets changed more than 2 days back.
    PERFORM set_config('presence.rollup_whole_days',
                       CASE WHEN seed % 3 = 0 THEN '2' ELSE '100000' END,
                       false);
    TRUNCATE presences;
    -- The month before base has a partition again (a retention may have
    -- dropped it in an earlier seed).
    PERFORM presence_partitions_ensure(base - interval '1 month', base);
    TRUNCATE pi_prop_events;
    nassets := 1 + floor(random() * 3)::int;
    nbatches := CASE WHEN seed % 5 IN (1, 2) THEN 4 + floor(random() * 8)::int
                     ELSE 2 + floor(random() * 6)::int END;
    IF seed % 4 = 0 THEN
        retire_at := floor(random() * nbatches)::int;
    END IF;
    FOR a IN 1 .. nassets LOOP
        DECLARE
            nconn int := 1 + floor(random() * 5)::int;
            nev int := 4 + floor(random() * 30)::int;
            t timestamptz;
            ty text;
            x float8;
        BEGIN
            FOR e IN 1 .. nev LOOP
                x := random();
                ty := CASE WHEN x < 0.45 THEN 'connect'
                           WHEN x < 0.85 THEN 'disconnect'
                           WHEN x < 0.92 THEN 'declare_asset'
                           ELSE 'location' END;
                -- 12 days around base, on 10-minute marks half the time
                -- (ties), else to the second; some seeds (among them half
                -- of those in time order) pack them into 8 hours across base (several disconnects an hour:
                -- the counts of pairs of hours and one-hour windows).
                IF seed % 3 = 1 OR seed % 5 = 1 THEN
                    t := base - interval '4 hours'
                         + random() * interval '8 hours';
                ELSE
                    t := base - interval '5 days'
                         + random() * interval '12 days';
                END IF;
                IF random() < 0.5 THEN
                    t := date_bin('10 minutes', t, base);
                ELSE
                    t := date_trunc('second', t);
                END IF;
                INSERT INTO pi_prop_events VALUES (
                    -- on the id scheme: its time's millisecond, then a
                    -- sequence number
                    ((floor(extract(epoch FROM t) * 1000)::bigint
                      - 1262304000000) << 22) + a * 1000 + e,
                    -- orphans: connection 9 of an asset never connects
                    CASE WHEN ty = 'disconnect' AND random() < 0.1
                         THEN a * 100 + 9
                         ELSE a * 100 + floor(random() * nconn)::int END,
                    ty,
                    (ARRAY['cold_boot', 'socket_closed', 'modem_reset'])[
                        1 + floor(random() * 3)::int],
                    CASE WHEN random() < 0.03 THEN NULL ELSE 'pa' || a END,
                    t, floor(random() * nbatches)::int);
            END LOOP;
        END;
    END LOOP;
    -- Two seeds of five arrive in time order, batch after batch, with a
    -- few late events, a catch-up after each batch: most catch-ups take
    -- the append path (0012), the late ones 0007's.
    IF seed % 5 IN (1, 2) THEN
        UPDATE pi_prop_events e
        SET batch = q.b
        FROM (SELECT x.id,
                     ((row_number() OVER (ORDER BY x.time, x.id) - 1)
                      * nbatches / count(*) OVER ())::int AS b
              FROM pi_prop_events x) q
        WHERE e.id = q.id AND random() < 0.9;
    END IF;
    -- Lost disconnects: some never arrive.
    DELETE FROM pi_prop_events WHERE type = 'disconnect' AND random() < 0.15
        AND connection_id % 100 <> 9;
    FOR b IN 0 .. nbatches - 1 LOOP
        INSERT INTO presences (id, connection_id, type, reason, asset, time,
                               time_offset_minutes)
        SELECT e.id, e.connection_id, e.type, e.reason, e.asset, e.time, 0
        FROM pi_prop_events e WHERE e.batch = b ORDER BY random()
        ON CONFLICT (id) DO NOTHING;
        IF random() < 0.3 THEN -- a replay: writes nothing
            INSERT INTO presences (id, connection_id, type, reason, asset,
                                   time, time_offset_minutes)
            SELECT e.id, e.connection_id, e.type, e.reason, e.asset, e.time,
                   0
            FROM pi_prop_events e WHERE e.batch <= b AND random() < 0.3
            ON CONFLICT (id) DO NOTHING;
        END IF;
        IF random() < 0.25 THEN
            DELETE FROM presences p
            WHERE p.id IN (SELECT q.id FROM presences q
                           ORDER BY random() LIMIT 1 + floor(random() * 3));
        END IF;
        IF random() < 0.15 THEN -- --on-conflict replace
            UPDATE presences p
            SET time = p.time + (random() - 0.5) * interval '6 hours',
                type = CASE WHEN random() < 0.5 THEN p.type
                            WHEN p.type = 'connect' THEN 'disconnect'
                            ELSE 'connect' END
            WHERE p.id IN (SELECT q.id FROM presences q
                           WHERE q.time >= base - interval '1 month'
                           ORDER BY random() LIMIT 1 + floor(random() * 2));
        END IF;
        IF b = retire_at THEN
            SELECT p.partition INTO first_part FROM presence_partitions p
            WHERE p.from_id = presence_id_at(base - interval '1 month');
            IF first_part IS NULL
               OR presence_partition_retire(first_part, base, false)
                  NOT IN ('dropped',
                          'kept: holds rows with time at or after the cutoff')
            THEN
                RETURN 'retention of ' || coalesce(first_part, '?')
                       || ' failed';
            END IF;
        END IF;
        k := floor(random() * CASE WHEN seed % 5 IN (1, 2) THEN 3
                                   ELSE 4 END)::int;
        IF k = 0 THEN
            PERFORM presence_rollup_refresh(1);
        ELSIF k = 1 THEN
            PERFORM presence_rollup_refresh(2);
        ELSIF k = 2 THEN
            PERFORM presence_rollup_refresh();
        END IF;
        IF random() < 0.2 THEN -- a checkpoint; continue from the rebuild
            d := pi_prop_compare();
            IF d IS NOT NULL THEN
                RETURN format('batch %s: %s', b, d);
            END IF;
        END IF;
    END LOOP;
    RETURN pi_prop_compare();
END
$$;
