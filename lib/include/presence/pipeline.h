/* pipeline.h -- a writer thread fed one batch at a time
 *
 * The consumer fills one batch while the writer thread commits the other, so
 * that fetching and decoding overlap the database round trip. The pipeline
 * holds at most one batch at a time (the one being written): batches are
 * written strictly in the order submitted, which the offset fence in the
 * writer relies on (a later batch of a partition committed before an earlier
 * one would make the earlier one look stale).
 *
 * Threads: every function is called from the one consumer thread; the
 * pipeline's own thread only runs pi_writer_write.
 */
#ifndef PRESENCE_PIPELINE_H
#define PRESENCE_PIPELINE_H

#include <stdatomic.h>
#include <stdbool.h>

#include "presence/batch.h"
#include "presence/err.h"
#include "presence/writer.h"

typedef struct pi_pipeline pi_pipeline;

/* Start the writer thread over w (borrowed: w must outlive the pipeline and
 * is used only by the pipeline's thread from now on). cancel is the flag that
 * w was created with as pi_writer_opts.cancel (borrowed too). w NULL is a
 * dry run: every batch comes back at once, written by nobody, with its
 * figures counted from the batch (stored = the presences it holds). */
void pi_pipeline_new(pi_pipeline **out, pi_writer *w, atomic_int *cancel);

/* Stop the thread (after the batch in flight, if any, finishes or is
 * cancelled) and free. The writer is not destroyed. */
void pi_pipeline_destroy(pi_pipeline *p);

/* True when no batch is in flight or waiting to be collected. */
bool pi_pipeline_idle(pi_pipeline *p);

/* Hand batch to the writer thread. Only when idle. The pipeline owns the
 * batch until pi_pipeline_collect gives it back. */
void pi_pipeline_submit(pi_pipeline *p, pi_batch *batch);

/* Wait up to timeout_ms (0: don't wait, <0: forever) for the batch in
 * flight. Returns 0 and sets *out when a batch is back: *rc is the write's
 * result (0 committed, else the pi_writer_write code with err filled) and
 * *stats its figures (zeroed first). Returns PI_ERETRY when none is back. */
int pi_pipeline_collect(pi_pipeline *p, int timeout_ms, pi_batch **out, int *rc,
                        pi_write_stats *stats, pi_err *err);

/* Ask the batch in flight to give up its retries (the writer's cancel flag);
 * it then comes back from pi_pipeline_collect with rc PI_ERETRY, unwritten.
 * Cleared by the next submit. */
void pi_pipeline_cancel(pi_pipeline *p);

#endif
