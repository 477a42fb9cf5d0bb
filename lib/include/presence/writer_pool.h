/* writer_pool.h -- N writers fed whole batches, for `load`
 *
 * Each writer is a pi_writer (its own PostgreSQL connection) behind a
 * pipeline thread. Batches are handed over in input order, each to a free
 * writer, and written concurrently, each in its own transaction, with one
 * rule that keeps the result what one writer would have made of the input:
 * a batch that shares a presence id with a batch still in flight waits
 * until that one has committed. So every id's versions are written in
 * input order (keep: the first stays and a later different one is an
 * id_conflict reject; replace: the last wins), duplicates are counted
 * where one writer would count them, and batches with no id in common,
 * whose order cannot change anything, commute. Rejects are keyed by line
 * (CONTRACT §4), so loading a file again is still a no-op.
 *
 * Memory: the batches in flight (one per writer) plus the one the caller
 * fills, each bounded by batch-size and batch-bytes, and one sorted copy
 * of each in-flight batch's ids (8 bytes per presence).
 *
 * Threads: every function is called from one thread (the reader); the
 * pool's threads only run pi_writer_write.
 */
#ifndef PRESENCE_WRITER_POOL_H
#define PRESENCE_WRITER_POOL_H

#include <stdatomic.h>
#include <stddef.h>

#include "presence/batch.h"
#include "presence/err.h"
#include "presence/writer.h"

typedef struct pi_writer_pool pi_writer_pool;

/* n writers (1..32) made from opts (opts->cancel is ignored: each writer
 * gets its own, set when stop becomes non-zero). stop is borrowed and
 * checked while waiting: once set, writes in flight give up their retries
 * and submitting fails. Errors are pi_writer_new's. */
PI_MUST_CHECK int pi_writer_pool_new(pi_writer_pool **out,
                                     const pi_writer_opts *opts, size_t n,
                                     const atomic_int *stop, pi_err *err);

/* Stop the threads (a batch still in flight is given up) and free. */
void pi_writer_pool_destroy(pi_writer_pool *pool);

/* An empty batch to fill: a written one, recycled, or a new one. The caller
 * owns it until it submits it. */
pi_batch *pi_writer_pool_take(pi_writer_pool *pool);

/* Hand batch to a free writer (the pool owns it from now on), waiting for
 * one to be free and for every batch in flight that shares an id with it.
 * An empty batch is only recycled. Returns 0, or the first failure of an
 * earlier batch (a pi_writer_write code; PI_ERETRY once stop is set, err
 * saying so): then batch is not written, nor anything after it. */
PI_MUST_CHECK int pi_writer_pool_submit(pi_writer_pool *pool, pi_batch *batch,
                                        pi_err *err);

/* Wait for every batch in flight. Returns 0 when all committed, else the
 * first failure (err filled). */
PI_MUST_CHECK int pi_writer_pool_finish(pi_writer_pool *pool, pi_err *err);

/* The figures of every committed batch so far. */
void pi_writer_pool_totals(const pi_writer_pool *pool, pi_write_stats *out);

#endif
