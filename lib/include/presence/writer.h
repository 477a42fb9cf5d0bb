/* writer.h -- write a batch to PostgreSQL in one transaction, exactly once
 *
 * One pi_writer_write is one transaction on the writer's own connection
 * (READ COMMITTED), in this order:
 *
 *   BEGIN
 *   -- only with opts.group (the consumer; `load` has none):
 *   INSERT INTO ingest_offsets … ON CONFLICT DO NOTHING  -- the rows of the
 *   SELECT … FROM ingest_offsets … ORDER BY … FOR UPDATE -- batch's
 *       partitions, locked: the fence. A message whose offset is below its
 *       partition's stored next_offset was already written (by us before a
 *       lost COMMIT reply, or by the partition's newer owner) and is skipped
 *       whole, rows and rejects (counted as fenced). And the
 *       compare-and-set: a position whose `expected` (batch.h) is set and
 *       above the stored next_offset means the database lost commits the
 *       caller saw succeed (a crash with synchronous_commit=off, a failover
 *       to an asynchronous replica, a restore) or was reset by hand: the
 *       batch is rolled back and PI_EBEHIND returned, so that the caller
 *       reads the stored offsets again and re-reads the hole. A position
 *       above the expected one (a gap of control records, or a newer owner)
 *       is not a mismatch.
 *   -- in C: one row per id. A repeat inside the batch is a duplicate when
 *   -- identical, else a conflict: keep → the first stays, the later one is
 *   -- an id_conflict reject; replace → the later one wins.
 *   SELECT … FROM presences WHERE id = ANY($1)   -- binary; compared in C:
 *       identical → duplicate (nothing written: no UPDATE, no new tuple);
 *       different → conflict (keep: id_conflict reject naming the fields,
 *       stored vs incoming; replace: staged for the UPDATE below)
 *   COPY presences (…) FROM STDIN (FORMAT binary)    -- the new rows, directly,
 *       in id order (concurrent writers then lock ids in one order)
 *   [replace only] COPY pi_stage …; UPDATE presences … FROM pi_stage
 *   COPY pi_stage_rejects …; INSERT INTO presence_rejects SELECT …
 *       ON CONFLICT (topic, partition, "offset", element) DO NOTHING
 *   [group] INSERT INTO ingest_offsets … ON CONFLICT DO UPDATE
 *       SET next_offset = EXCLUDED.next_offset
 *       WHERE ingest_offsets.next_offset < EXCLUDED.next_offset
 *   SELECT pg_current_xact_id(); COMMIT
 *
 * On a Citus coordinator (presences distributed, its rollup triggers gone:
 * docs/scale-out.md) the writer takes the trigger's place, detected once at
 * startup: SET LOCAL citus.max_adaptive_executor_pool_size = 1 rides on
 * BEGIN; the probe is one statement per shard (its ids only), all in one
 * round trip (pipeline mode), and only of ids up to the highest the writer
 * knows is stored (max(id) read once, and again after a failed attempt; none
 * above: no probe); after the COPY into presences the same rows go into
 * pi_fresh, SELECT presence_rollup_mark_fresh_ids() marks the rollup and
 * returns one of their ids per shard, and a no-op UPDATE of those ids
 * enlists the COPY's connections in Citus's two-phase commit; replace calls
 * presence_rollup_mark_replaced before its UPDATE.
 *
 * pi_stage, pi_stage_rejects and pi_fresh are TEMP tables, ON COMMIT DELETE
 * ROWS, created once per connection. Figures are exact: the probe and the COPY
 * together account for every staged row; if another transaction inserts one
 * of our ids between them, the COPY fails on presences_pkey and the
 * transaction is retried (the row is then found): at once, up to 5 times,
 * then with the backoff below.
 *
 * Failures, by SQLSTATE (db.h): transient → reconnect (the staging tables
 * are created again) and retry the same batch with exponential backoff and
 * jitter, forever, one warning per attempt, until opts.cancel is set. A
 * COMMIT whose reply was lost with the connection is resolved with
 * pg_xact_status() after reconnecting, never guessed. Data (class 22/23) →
 * the batch is written again with ranges of rows under SAVEPOINTs, bisecting
 * until each refused row is alone; it becomes a reject whose code comes from
 * the column or constraint the error names (presences_reason_check →
 * bad_reason, …; see refusal_code in rows.c) and is otherwise
 * wrong_type, the detail carrying "refused by PostgreSQL: SQLSTATE: message";
 * the rest commits. Anything else → PI_EFATAL with SQLSTATE and message:
 * nothing of the batch is written, rejected or bisected. A missing privilege
 * (42501) is one of those; its message adds which of the privileges this
 * writer uses the role lacks (SELECT on schema_migrations and presences,
 * INSERT on presences, SELECT and INSERT on presence_rejects (its ON
 * CONFLICT reads the unique key), UPDATE on presences with
 * on_conflict=replace, SELECT/INSERT/UPDATE on ingest_offsets with a group:
 * what deploy/sql/roles.sql grants presence_writer). A connection refused
 * for good (wrong password, certificate, no such database: db.h) is
 * PI_EFATAL too, at start and on a reconnect alike.
 */
#ifndef PRESENCE_WRITER_H
#define PRESENCE_WRITER_H

#include <stdatomic.h>
#include <stdint.h>

#include "presence/batch.h"
#include "presence/err.h"

typedef struct pi_metrics pi_metrics; /* metrics.h */

typedef enum pi_on_conflict {
    PI_ON_CONFLICT_KEEP = 0,
    PI_ON_CONFLICT_REPLACE
} pi_on_conflict;

typedef struct pi_writer_opts {
    const char *conninfo; /* libpq conninfo or URI; NULL: PG* env */
    const char *group;    /* consumer group for ingest_offsets; NULL
                             (load) writes no ingest_offsets row */
    pi_on_conflict on_conflict;
    int backoff_min_ms;       /* first retry delay (default 100) */
    int backoff_max_ms;       /* cap (default 10000) */
    int tx_timeout_ms;        /* statement_timeout and
                                 idle_in_transaction_session_timeout of the
                                 writer's sessions (default 60000): a frozen
                                 instance's transaction, and its locks, end
                                 within twice this */
    const atomic_int *cancel; /* when non-zero, stop retrying: return
                                 PI_ERETRY; may be NULL */
    pi_metrics *metrics;      /* database errors, writes in flight; may be
                                 NULL (borrowed) */
    unsigned metrics_slot;    /* which of the process's writers this is,
                                 for the metrics (0..31) */
} pi_writer_opts;

/* Fill opts with the defaults above (everything else 0/NULL). */
void pi_writer_opts_init(pi_writer_opts *opts);

typedef struct pi_write_stats {
    uint64_t messages;
    uint64_t stored;
    uint64_t duplicates;
    uint64_t conflicts;
    uint64_t rejected;
    uint64_t skipped;    /* envelopes that are not presences (decoder) */
    uint64_t fenced;     /* messages not written: their partition's stored
                            next_offset was already past them */
    uint64_t batches;    /* transactions committed */
    uint64_t retries;    /* transient failures retried */
    uint64_t splits;     /* batches written again bisected (data errors) */
    uint64_t reconnects; /* connections made again after one was lost */
    /* The committed attempt, BEGIN to COMMIT, in microseconds. */
    uint64_t write_us;
    /* Rows sent to presence_rejects, by code (kept conflicts included). */
    uint64_t rejects_by_code[PI_REJ__COUNT];
} pi_write_stats;

/* Every element of a written, unfenced message ends as exactly one of
 * stored, duplicates, conflicts, rejected, skipped. conflicts counts both
 * kept (recorded as id_conflict rejects, not counted in rejected) and
 * replaced rows. messages counts every message of the batch, fenced ones
 * included. */

/* Add every figure of from to to; subtract them (none below 0). */
void pi_write_stats_add(pi_write_stats *to, const pi_write_stats *from);
void pi_write_stats_sub(pi_write_stats *to, const pi_write_stats *from);

typedef struct pi_writer pi_writer;

/* Connect and check the schema version (PI_ESCHEMA: "run migrate").
 * PI_ERETRY: the server cannot be reached now (the caller decides whether to
 * wait; `load` exits). opts is copied. */
PI_MUST_CHECK int pi_writer_new(pi_writer **out, const pi_writer_opts *opts,
                                pi_err *err);
void pi_writer_destroy(pi_writer *w);

/* Write batch in one transaction (rows, rejects, ingest_offsets), retrying
 * transient failures with backoff until it commits or opts->cancel is set.
 * Messages of a partition whose stored next_offset is already past them
 * (another owner got there first) are skipped, and ingest_offsets only ever
 * moves forward. On success adds the batch's figures to *stats (not reset).
 * An empty batch is a no-op. stats->reconnects says whether the connection
 * was made again during the write: the database may then be another one,
 * or have come back from a crash without its last commits, and the caller
 * should check every position it believes stored (not only this batch's).
 * Returns 0; PI_EBEHIND (see the compare-and-set above: nothing written,
 * err names the partition); PI_ERETRY only when cancelled:
 * nothing of the batch committed — unless a COMMIT reply was lost and the
 * database could not be asked since, in which case the batch may be in (the
 * fence makes writing it again harmless); PI_EFATAL (err has the SQLSTATE
 * and message). The batch is not modified. */
PI_MUST_CHECK int pi_writer_write(pi_writer *w, pi_batch *batch,
                                  pi_write_stats *stats, pi_err *err);

/* Cancel the statement w is running, if any (PQcancel), so that a write
 * whose opts.cancel was just set stops waiting on a stuck server now. Safe
 * to call from any thread while another uses w. */
void pi_writer_interrupt(pi_writer *w);

/* Read the stored next offset of (group, topic, partition); -1 if none.
 * Retries transient failures like pi_writer_write. */
PI_MUST_CHECK int pi_writer_next_offset(pi_writer *w, const char *topic,
                                        int32_t partition, int64_t *next,
                                        pi_err *err);

#endif
