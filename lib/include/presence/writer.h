/* writer.h -- write a batch to PostgreSQL in one transaction, exactly once
 *
 * (Interface agreed between modules; the implementation documents the SQL.)
 */
#ifndef PRESENCE_WRITER_H
#define PRESENCE_WRITER_H

#include <stdatomic.h>
#include <stdint.h>

#include "presence/batch.h"
#include "presence/err.h"

typedef enum pi_on_conflict {
    PI_ON_CONFLICT_KEEP = 0,
    PI_ON_CONFLICT_REPLACE
} pi_on_conflict;

typedef struct pi_writer_opts {
    const char *conninfo;      /* libpq conninfo or URI; NULL: PG* env */
    const char *group;         /* consumer group for ingest_offsets; NULL
                                  (load) writes no ingest_offsets row */
    pi_on_conflict on_conflict;
    int backoff_min_ms;        /* first retry delay (default 100) */
    int backoff_max_ms;        /* cap (default 10000) */
    const atomic_int *cancel;  /* when non-zero, stop retrying: return
                                  PI_ERETRY; may be NULL */
} pi_writer_opts;

typedef struct pi_write_stats {
    uint64_t messages;
    uint64_t stored;
    uint64_t duplicates;
    uint64_t conflicts;
    uint64_t rejected;
    uint64_t skipped;
} pi_write_stats;

typedef struct pi_writer pi_writer;

/* Connect and check the schema version (PI_ESCHEMA: "run migrate"). */
PI_MUST_CHECK int pi_writer_new(pi_writer **out, const pi_writer_opts *opts,
                                pi_err *err);
void pi_writer_destroy(pi_writer *w);

/* Write batch in one transaction (rows, rejects, ingest_offsets), retrying
 * transient failures with backoff until it commits or opts->cancel is set.
 * Messages of a partition whose stored next_offset is already past them
 * (another owner got there first) are skipped, and ingest_offsets only ever
 * moves forward. On success adds the batch's figures to *stats (not reset). */
PI_MUST_CHECK int pi_writer_write(pi_writer *w, pi_batch *batch,
                                  pi_write_stats *stats, pi_err *err);

/* Read the stored next offset of (group, topic, partition); -1 if none. */
PI_MUST_CHECK int pi_writer_next_offset(pi_writer *w, const char *topic,
                                        int32_t partition, int64_t *next,
                                        pi_err *err);

#endif
