/* lanes.c -- the consumer's writers: partitions to lanes, batches
 * handed to each lane's writer thread and taken back
 *
 * A lane is one writer (its own PostgreSQL connection) behind its own
 * pipeline, with the batches of the partitions it owns: the one filling, a
 * spare and one that came back unwritten. Partition p belongs to lane
 * p mod N for as long as the process runs, and a lane writes one batch at a
 * time, in order: so one partition is always written by one writer, in
 * order, which the fence and the compare-and-set rely on. Everything here
 * runs on the consumer's thread.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "consumer_int.h"
#include "presence/log.h"
#include "presence/mem.h"
#include "presence/metrics.h"

int pi_consumer__lanes_new(pi_consumer *c, const pi_writer_opts *wopts,
                           bool dry_run, pi_err *err)
{
    size_t n = c->cfg->writers > 0 ? (size_t)c->cfg->writers : 1;

    c->lanes = pi_calloc(n, sizeof(*c->lanes));
    c->n_lanes = n;
    for (size_t i = 0; i < n; i++) {
        lane *l = &c->lanes[i];
        pi_writer_opts opts = *wopts;

        atomic_init(&l->cancel, 0);
        opts.cancel = &l->cancel;
        opts.metrics_slot = (unsigned)i;
        if (!dry_run) {
            int rc = pi_writer_new(&l->w, &opts, err);
            if (rc)
                return rc;
        }
        pi_batch_new(&l->fill);
        pi_pipeline_new(&l->pipe, l->w, &l->cancel);
    }
    return 0;
}

void pi_consumer__lanes_destroy(pi_consumer *c)
{
    for (size_t i = 0; i < c->n_lanes; i++) {
        lane *l = &c->lanes[i];

        pi_pipeline_destroy(l->pipe);
        pi_writer_destroy(l->w);
        pi_batch_destroy(l->fill);
        pi_batch_destroy(l->spare);
        pi_batch_destroy(l->requeue);
    }
    free(c->lanes);
    c->lanes = NULL;
    c->n_lanes = 0;
}

bool pi_consumer__full(const pi_consumer *c, const lane *l)
{
    return pi_batch_messages(l->fill) >= (size_t)c->cfg->batch_size ||
           pi_batch_bytes(l->fill) >= (size_t)c->cfg->batch_bytes;
}

lane *pi_consumer__backlog(pi_consumer *c)
{
    for (size_t i = 0; i < c->n_lanes; i++) {
        lane *l = &c->lanes[i];
        if (pi_consumer__full(c, l) && !pi_pipeline_idle(l->pipe))
            return l;
    }
    return NULL;
}

bool pi_consumer__any_full(const pi_consumer *c)
{
    for (size_t i = 0; i < c->n_lanes; i++) {
        if (pi_consumer__full(c, &c->lanes[i]))
            return true;
    }
    return false;
}

bool pi_consumer__idle(pi_consumer *c)
{
    for (size_t i = 0; i < c->n_lanes; i++) {
        if (!pi_pipeline_idle(c->lanes[i].pipe))
            return false;
    }
    return true;
}

size_t pi_consumer__buffered(const pi_consumer *c)
{
    size_t n = 0;

    for (size_t i = 0; i < c->n_lanes; i++) {
        const lane *l = &c->lanes[i];
        n += pi_batch_messages(l->fill) +
             (l->requeue ? pi_batch_messages(l->requeue) : 0);
    }
    return n;
}

static void recycle(lane *l, pi_batch *batch)
{
    pi_batch_reset(batch);
    if (l->spare == NULL)
        l->spare = batch;
    else
        pi_batch_destroy(batch);
}

/* A batch that came back unwritten keeps only the partitions whose stored
 * offset is still the one it was stamped with. Another lane's re-read
 * (pi_consumer__resync) may have found one of them behind while this batch
 * was in flight, and seeked it back: its messages here lie past the hole
 * and are read again, so they must not be written first. */
static void drop_stale(pi_consumer *c, pi_batch *batch)
{
    size_t n;
    const pi_position *pos = pi_batch_positions(batch, &n);

    for (size_t i = n; i-- > 0;) {
        const char *topic = pi_batch_topic(batch, pos[i].topic);
        part *p = pi_consumer__find_part(c, topic, pos[i].partition, false);

        if (p == NULL || !p->assigned || p->stored != pos[i].expected) {
            pi_batch_drop_partition(batch, topic, pos[i].partition);
            pos = pi_batch_positions(batch, &n);
        }
    }
}

/* A batch came back from lane l's writer. */
static void handle_done(pi_consumer *c, lane *l, pi_batch *batch, int rc,
                        const pi_write_stats *stats, const pi_err *err,
                        bool sync_commit)
{
    pi_metrics_batch_done(c->cfg->metrics, batch, rc, stats);
    if (rc == 0) {
        pi_write_stats_add(&c->total, stats);
        pi_debug("batch written: messages=%" PRIu64 " stored=%" PRIu64
                 " duplicates=%" PRIu64 " conflicts=%" PRIu64
                 " rejected=%" PRIu64,
                 stats->messages, stats->stored, stats->duplicates,
                 stats->conflicts, stats->rejected);
        pi_consumer__commit_positions(c, batch, sync_commit);
        pi_consumer__note_committed(c, batch, stats);
        recycle(l, batch);
        if (stats->reconnects && !c->replay && !atomic_load(c->stop))
            (void)pi_consumer__resync(c, NULL);
        return;
    }
    if (rc == PI_EBEHIND) {
        /* Nothing of it was written. Without the stored offsets (stopping)
         * it is dropped: its messages are read again from ingest_offsets
         * by whoever consumes the partitions next. */
        pi_warn("%s", err->msg);
        assert(l->requeue == NULL);
        if (atomic_load(c->stop) || pi_consumer__resync(c, batch) != 0) {
            recycle(l, batch);
            return;
        }
        drop_stale(c, batch);
        if (pi_batch_messages(batch) == 0) {
            recycle(l, batch);
            return;
        }
        l->requeue = batch;
        return;
    }
    if (rc == PI_ERETRY) {
        /* Cancelled before it committed: it must still be written, and
         * before anything newer of its partitions. Only pi_consumer__drain()
         * cancels, and it runs only with no batch waiting to be requeued. */
        assert(l->requeue == NULL);
        if (!c->replay)
            drop_stale(c, batch);
        l->requeue = batch;
        return;
    }
    pi_batch_destroy(batch);
    if (!c->fatal) {
        c->fatal = 1;
        c->fatal_err = *err;
    }
}

void pi_consumer__collect(pi_consumer *c, lane *wait_on, int wait_ms)
{
    for (size_t i = 0; i < c->n_lanes; i++) {
        lane *l = &c->lanes[i];
        pi_batch *batch;
        pi_write_stats stats;
        pi_err err;
        int rc;

        if (pi_pipeline_collect(l->pipe, l == wait_on ? wait_ms : 0, &batch,
                                &rc, &stats, &err) == 0)
            handle_done(c, l, batch, rc, &stats, &err, false);
    }
}

/* Wait for every batch in flight until deadline (ms, monotonic); past it,
 * cancel their retries and take them back unwritten. */
void pi_consumer__drain(pi_consumer *c, int64_t deadline, bool sync_commit)
{
    bool cancelled = false;

    for (;;) {
        lane *l = NULL;
        pi_batch *batch;
        pi_write_stats stats;
        pi_err err;
        int rc;

        for (size_t i = 0; i < c->n_lanes && l == NULL; i++) {
            if (!pi_pipeline_idle(c->lanes[i].pipe))
                l = &c->lanes[i];
        }
        if (l == NULL)
            return;
        int64_t left = deadline - pi_mono_ms();
        if (left <= 0 && !cancelled) {
            pi_warn("writer still busy at the deadline: cancelling; its "
                    "messages will be consumed again");
            for (size_t i = 0; i < c->n_lanes; i++)
                pi_pipeline_cancel(c->lanes[i].pipe);
            cancelled = true;
        }
        if (pi_pipeline_collect(l->pipe, left > 0 ? (int)left : 100, &batch,
                                &rc, &stats, &err) == 0)
            handle_done(c, l, batch, rc, &stats, &err, sync_commit);
    }
}

static pi_batch *take_empty_batch(lane *l)
{
    pi_batch *batch = l->spare;

    l->spare = NULL;
    if (batch == NULL)
        pi_batch_new(&batch);
    return batch;
}

/* Hand lane l's next batch to its writer if it is idle: a batch that came
 * back unwritten first, then the filling one when it is full, lingered long
 * enough, or force is set. */
static void submit_lane(pi_consumer *c, lane *l, bool force)
{
    if (!pi_pipeline_idle(l->pipe))
        return;
    if (l->requeue) {
        pi_consumer__stamp_expected(c, l->requeue);
        pi_pipeline_submit(l->pipe, l->requeue);
        l->requeue = NULL;
        return;
    }
    if (pi_batch_messages(l->fill) == 0)
        return;
    if (!force && !pi_consumer__full(c, l) &&
        pi_mono_ms() - l->fill_since_ms < c->cfg->linger_ms)
        return;
    pi_consumer__stamp_expected(c, l->fill);
    pi_pipeline_submit(l->pipe, l->fill);
    l->fill = take_empty_batch(l);
}

void pi_consumer__submit(pi_consumer *c, bool force)
{
    for (size_t i = 0; i < c->n_lanes; i++)
        submit_lane(c, &c->lanes[i], force);
}
