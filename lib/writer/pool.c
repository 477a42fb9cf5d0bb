/* pool.c -- N writers fed whole batches in input order (`load`) */
#include "presence/writer_pool.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "presence/mem.h"
#include "presence/pipeline.h"

/* How long one wait lasts before stop is looked at again. */
#define WAIT_SLICE_MS 100

typedef struct slot {
    pi_writer *w;
    pi_pipeline *pipe;
    atomic_int cancel; /* w's opts.cancel */
    bool busy;         /* a batch is in flight */
    uint64_t seq;      /* submission number of that batch */
    int64_t *ids;      /* its presence ids, sorted */
    size_t n_ids, cap_ids;
} slot;

struct pi_writer_pool {
    slot *slots;
    size_t n;
    const atomic_int *stop;
    bool cancelled;
    uint64_t next_seq;
    pi_batch **spare; /* written and reset, ready to fill */
    size_t n_spare;
    pi_write_stats total;
    int rc; /* the first failure */
    pi_err err;
};

int pi_writer_pool_new(pi_writer_pool **out, const pi_writer_opts *opts,
                       size_t n, const atomic_int *stop, pi_err *err)
{
    pi_writer_pool *pool = pi_calloc(1, sizeof(*pool));

    *out = NULL;
    pool->slots = pi_calloc(n, sizeof(*pool->slots));
    pool->spare = pi_calloc(n + 1, sizeof(*pool->spare));
    pool->stop = stop;
    for (size_t i = 0; i < n; i++) {
        slot *s = &pool->slots[i];
        pi_writer_opts wopts = *opts;
        int rc;

        atomic_init(&s->cancel, 0);
        wopts.cancel = &s->cancel;
        wopts.metrics_slot = (unsigned)i;
        rc = pi_writer_new(&s->w, &wopts, err);
        if (rc) {
            pi_writer_pool_destroy(pool);
            return rc;
        }
        pi_pipeline_new(&s->pipe, s->w, &s->cancel);
        pool->n++;
    }
    *out = pool;
    return 0;
}

void pi_writer_pool_destroy(pi_writer_pool *pool)
{
    if (pool == NULL)
        return;
    for (size_t i = 0; i < pool->n; i++) {
        pi_pipeline_destroy(pool->slots[i].pipe);
        pi_writer_destroy(pool->slots[i].w);
        free(pool->slots[i].ids);
    }
    for (size_t i = 0; i < pool->n_spare; i++)
        pi_batch_destroy(pool->spare[i]);
    free(pool->spare);
    free(pool->slots);
    free(pool);
}

pi_batch *pi_writer_pool_take(pi_writer_pool *pool)
{
    pi_batch *batch;

    if (pool->n_spare)
        return pool->spare[--pool->n_spare];
    pi_batch_new(&batch);
    return batch;
}

static void recycle(pi_writer_pool *pool, pi_batch *batch)
{
    pi_batch_reset(batch);
    if (pool->n_spare < pool->n + 1)
        pool->spare[pool->n_spare++] = batch;
    else
        pi_batch_destroy(batch);
}

static void fail(pi_writer_pool *pool, int rc, const pi_err *err)
{
    if (pool->rc == 0) {
        pool->rc = rc;
        pool->err = *err;
    }
}

/* Once stop is set: every write in flight gives up its retries. */
static void check_stop(pi_writer_pool *pool)
{
    if (pool->cancelled || !atomic_load(pool->stop))
        return;
    pool->cancelled = true;
    for (size_t i = 0; i < pool->n; i++)
        pi_pipeline_cancel(pool->slots[i].pipe);
}

/* Wait up to timeout_ms for slot s's batch; 1 when it came back. */
static int collect(pi_writer_pool *pool, slot *s, int timeout_ms)
{
    pi_batch *batch;
    pi_write_stats stats;
    pi_err err;
    int rc;

    if (!s->busy || pi_pipeline_collect(s->pipe, timeout_ms, &batch, &rc,
                                        &stats, &err) != 0)
        return 0;
    s->busy = false;
    if (rc == 0)
        pi_write_stats_add(&pool->total, &stats);
    else
        fail(pool, rc, &err);
    recycle(pool, batch);
    return 1;
}

/* Wait until slot s is free. */
static void wait_slot(pi_writer_pool *pool, slot *s)
{
    while (s->busy) {
        check_stop(pool);
        collect(pool, s, WAIT_SLICE_MS);
    }
}

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/* Whether two sorted id lists share one. */
static bool overlap(const int64_t *a, size_t na, const int64_t *b, size_t nb)
{
    size_t i = 0, j = 0;

    if (na == 0 || nb == 0 || a[na - 1] < b[0] || b[nb - 1] < a[0])
        return false;
    while (i < na && j < nb) {
        if (a[i] == b[j])
            return true;
        if (a[i] < b[j])
            i++;
        else
            j++;
    }
    return false;
}

int pi_writer_pool_submit(pi_writer_pool *pool, pi_batch *batch, pi_err *err)
{
    const pi_decode_result *res = pi_batch_result(batch);
    slot *free_slot = NULL;

    check_stop(pool);
    for (size_t i = 0; i < pool->n; i++)
        collect(pool, &pool->slots[i], 0);
    if (pool->rc == 0 && pool->cancelled)
        pool->rc = pi_err_set(&pool->err, PI_ERETRY, "interrupted");
    if (pool->rc) {
        recycle(pool, batch);
        *err = pool->err;
        return pool->rc;
    }
    if (pi_batch_messages(batch) == 0) {
        recycle(pool, batch);
        return 0;
    }
    /* The batch's ids, sorted, kept with the slot it goes to. Batches in
     * flight that share one of them go first. With one writer there is
     * nothing to compare with: the writer is free only once the previous
     * batch is done. */
    int64_t *ids = NULL;
    size_t cap = 0, n_ids = res->n_presences;
    if (pool->n > 1) {
        for (size_t i = 0; i < pool->n && free_slot == NULL; i++) {
            if (!pool->slots[i].busy)
                free_slot = &pool->slots[i];
        }
        if (free_slot == NULL) {
            /* The oldest batch in flight is the likeliest to end first. */
            slot *oldest = &pool->slots[0];
            for (size_t i = 1; i < pool->n; i++) {
                if (pool->slots[i].seq < oldest->seq)
                    oldest = &pool->slots[i];
            }
            wait_slot(pool, oldest);
            free_slot = oldest;
        }
        ids = free_slot->ids;
        cap = free_slot->cap_ids;
        pi_grow((void **)&ids, &cap, n_ids + 1, sizeof(*ids));
        for (size_t i = 0; i < n_ids; i++)
            ids[i] = res->presences[i].id;
        qsort(ids, n_ids, sizeof(*ids), cmp_id);
        for (size_t i = 0; i < pool->n; i++) {
            slot *s = &pool->slots[i];
            if (s->busy && overlap(ids, n_ids, s->ids, s->n_ids))
                wait_slot(pool, s);
        }
    } else {
        free_slot = &pool->slots[0];
        wait_slot(pool, free_slot);
    }
    if (pool->rc == 0 && pool->cancelled)
        pool->rc = pi_err_set(&pool->err, PI_ERETRY, "interrupted");
    if (pool->rc) {
        if (ids) {
            free_slot->ids = ids;
            free_slot->cap_ids = cap;
        }
        recycle(pool, batch);
        *err = pool->err;
        return pool->rc;
    }
    free_slot->ids = ids;
    free_slot->cap_ids = cap;
    free_slot->n_ids = ids ? n_ids : 0;
    free_slot->busy = true;
    free_slot->seq = pool->next_seq++;
    pi_pipeline_submit(free_slot->pipe, batch);
    return 0;
}

int pi_writer_pool_finish(pi_writer_pool *pool, pi_err *err)
{
    for (size_t i = 0; i < pool->n; i++)
        wait_slot(pool, &pool->slots[i]);
    if (pool->rc)
        *err = pool->err;
    return pool->rc;
}

void pi_writer_pool_totals(const pi_writer_pool *pool, pi_write_stats *out)
{
    *out = pool->total;
}
