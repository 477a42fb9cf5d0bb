/* pipeline.c -- the writer thread: one batch in flight, handed back when done
 */
#include "presence/pipeline.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "presence/mem.h"

/* How often a cancelled write's statement is interrupted again. */
#define INTERRUPT_MS 100

typedef enum slot_state {
    SLOT_EMPTY = 0, /* nothing in flight */
    SLOT_QUEUED,    /* submitted, the thread has not taken it yet */
    SLOT_WRITING,   /* the thread is writing it */
    SLOT_DONE       /* written (or failed): waiting for collect */
} slot_state;

struct pi_pipeline {
    pi_writer *w;
    atomic_int *cancel;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* signalled on every state change */
    slot_state state;
    bool quit;
    pi_batch *batch;
    int rc;
    pi_write_stats stats;
    pi_err err;
};

/* A dry run's "write": the batch's figures, nothing stored. */
static int count_only(const pi_batch *batch, pi_write_stats *stats)
{
    const pi_decode_result *res = pi_batch_result(batch);

    stats->messages = pi_batch_messages(batch);
    stats->stored = res->n_presences;
    stats->rejected = res->n_rejects;
    stats->skipped = pi_batch_skipped(batch);
    stats->batches = 1;
    return 0;
}

static void *writer_main(void *arg)
{
    pi_pipeline *p = arg;

    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (p->state != SLOT_QUEUED && !p->quit)
            pthread_cond_wait(&p->cond, &p->lock);
        if (p->state != SLOT_QUEUED)
            break;
        p->state = SLOT_WRITING;
        pthread_mutex_unlock(&p->lock);

        pi_write_stats stats;
        pi_err err;
        memset(&stats, 0, sizeof(stats));
        pi_err_clear(&err);
        int rc = p->w ? pi_writer_write(p->w, p->batch, &stats, &err)
                      : count_only(p->batch, &stats);

        pthread_mutex_lock(&p->lock);
        p->rc = rc;
        p->stats = stats;
        p->err = err;
        p->state = SLOT_DONE;
        pthread_cond_broadcast(&p->cond);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

void pi_pipeline_new(pi_pipeline **out, pi_writer *w, atomic_int *cancel)
{
    pi_pipeline *p = pi_calloc(1, sizeof(*p));

    p->w = w;
    p->cancel = cancel;
    pthread_condattr_t attr;

    pthread_mutex_init(&p->lock, NULL);
    /* Timed waits measure on the monotonic clock: a wall-clock step must
     * not stretch or cut them. */
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cond, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&p->thread, NULL, writer_main, p) != 0) {
        /* Only on resource exhaustion: treated like out-of-memory. */
        fprintf(stderr, "presence-ingest: cannot start the writer thread\n");
        abort();
    }
    *out = p;
}

bool pi_pipeline_idle(pi_pipeline *p)
{
    bool idle;

    pthread_mutex_lock(&p->lock);
    idle = p->state == SLOT_EMPTY;
    pthread_mutex_unlock(&p->lock);
    return idle;
}

void pi_pipeline_submit(pi_pipeline *p, pi_batch *batch)
{
    pthread_mutex_lock(&p->lock);
    assert(p->state == SLOT_EMPTY); /* submit only when idle */
    atomic_store(p->cancel, 0);
    p->batch = batch;
    p->state = SLOT_QUEUED;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

static bool timespec_before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec ||
           (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static void deadline_after(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Wait on the condition until deadline (NULL: a slice of INTERRUPT_MS).
 * While a cancelled write is still running, interrupt its statement again
 * every slice: a cancel request sent between two statements finds nothing
 * to cancel, and the next statement may be the one that blocks. Called and
 * returns with p->lock held. */
static void wait_for_writer(pi_pipeline *p, const struct timespec *deadline)
{
    struct timespec slice;

    if (atomic_load(p->cancel) && p->state == SLOT_WRITING && p->w) {
        pthread_mutex_unlock(&p->lock);
        pi_writer_interrupt(p->w);
        pthread_mutex_lock(&p->lock);
        deadline_after(&slice, INTERRUPT_MS);
        if (deadline == NULL || timespec_before(&slice, deadline))
            deadline = &slice;
    }
    if (deadline)
        pthread_cond_timedwait(&p->cond, &p->lock, deadline);
    else
        pthread_cond_wait(&p->cond, &p->lock);
}

void pi_pipeline_destroy(pi_pipeline *p)
{
    if (p == NULL)
        return;
    /* A batch still in flight is given up: its messages are consumed again
     * from ingest_offsets by whoever owns the partitions next. */
    atomic_store(p->cancel, 1);
    pthread_mutex_lock(&p->lock);
    p->quit = true;
    if (p->state == SLOT_QUEUED)
        p->state = SLOT_DONE;
    pthread_cond_broadcast(&p->cond);
    while (p->state == SLOT_WRITING)
        wait_for_writer(p, NULL);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    /* A batch still held here was never collected: the caller gave up on it
     * (its messages will be redelivered), so it is only freed. */
    pi_batch_destroy(p->batch);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

int pi_pipeline_collect(pi_pipeline *p, int timeout_ms, pi_batch **out, int *rc,
                        pi_write_stats *stats, pi_err *err)
{
    struct timespec deadline, now;

    *out = NULL;
    memset(stats, 0, sizeof(*stats));
    if (timeout_ms > 0)
        deadline_after(&deadline, timeout_ms);
    pthread_mutex_lock(&p->lock);
    while (p->state == SLOT_QUEUED || p->state == SLOT_WRITING) {
        if (timeout_ms == 0)
            break;
        if (timeout_ms > 0) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (!timespec_before(&now, &deadline))
                break;
        }
        wait_for_writer(p, timeout_ms > 0 ? &deadline : NULL);
    }
    if (p->state != SLOT_DONE) {
        pthread_mutex_unlock(&p->lock);
        return PI_ERETRY;
    }
    *out = p->batch;
    *rc = p->rc;
    *stats = p->stats;
    *err = p->err;
    p->batch = NULL;
    p->state = SLOT_EMPTY;
    pthread_mutex_unlock(&p->lock);
    return 0;
}

void pi_pipeline_cancel(pi_pipeline *p)
{
    atomic_store(p->cancel, 1);
    if (p->w)
        pi_writer_interrupt(p->w);
}
