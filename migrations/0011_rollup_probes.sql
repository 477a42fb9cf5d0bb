-- 0011_rollup_probes.sql -- the same reach() as 0007 (its definition and
-- invariant unchanged), fenced so that the planner evaluates it once per
-- asset. 0007's body is inlined into the catch-up's first statement, and
-- its result, referenced by the day it starts (d0) and by the second
-- reach() from that day, was expanded into every reference: each of its
-- index probes ran about five times per asset (188 probes an asset against
-- 38 now, measured with EXPLAIN ANALYZE on 700 assets of a live fleet;
-- docs/benchmarks.md). OFFSET 0 keeps a subquery from being pulled up into
-- its caller, so its output is computed once and read where referenced;
-- the function stays inlinable (a non-inlined call costs more than the
-- duplication: 3x slower, measured).
-- reach(t) of 0007's header: the earliest start of a session of asset a that
-- an event at or after t can change (or that is alive at t). Only a
-- connect before t can make it earlier than t: none (no X(t)), no probe.
CREATE OR REPLACE FUNCTION presence_rollup_reach(a text, t timestamptz)
RETURNS TABLE (reach timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT least(t, x.fc, (
    SELECT min(f.first_connect)
    FROM (SELECT DISTINCT p.connection_id FROM presences p
          WHERE x.fc IS NOT NULL AND p.asset = a
            AND p.type IN ('connect', 'disconnect') AND p.time >= t) y
    CROSS JOIN LATERAL presence_connection_firsts(a, y.connection_id, t) f))
FROM (SELECT (
    SELECT f.first_connect
    FROM (SELECT p.connection_id FROM presences p
          WHERE p.asset = a AND p.type = 'connect' AND p.time < t
          ORDER BY p.time DESC, p.id DESC LIMIT 1) x
    CROSS JOIN LATERAL presence_connection_firsts(a, x.connection_id, t) f)
    AS fc OFFSET 0) x
OFFSET 0
$$;
