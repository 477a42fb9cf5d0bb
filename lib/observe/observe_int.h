/* observe_int.h -- the body of pi_metrics, shared by metrics.c (recording,
 * health) and expose.c (the text exposition) */
#ifndef PRESENCE_OBSERVE_INT_H
#define PRESENCE_OBSERVE_INT_H

#include <stdatomic.h>
#include <stdbool.h>

#include "presence/metrics.h"

/* Writers whose batches readiness watches (the bound of --writers). */
#define PI_METRICS_WRITERS 32

#define N_BOUNDS_MAX 16

/* Bucket counts are kept per bucket (not cumulative) and summed at scrape
 * time, so that _count, which is derived from them, always agrees with the
 * +Inf bucket. Only the consumer thread records into histograms, so the
 * double sum is a plain load and store. */
typedef struct histogram {
    const double *bounds;
    size_t n_bounds;
    _Atomic uint64_t counts[N_BOUNDS_MAX + 1];
    _Atomic double sum;
} histogram;

/* SQLSTATE classes: two characters of [0-9A-Z]. */
#define N_CLASSES (36 * 36)

typedef struct topic_slot {
    char *name;
    _Atomic uint64_t messages;
} topic_slot;

/* Appended by the consumer thread only; a slot is published by the release
 * store of the count, after its fields are set. */
typedef struct part_slot {
    uint32_t topic; /* index in topics */
    int32_t partition;
    atomic_bool assigned;
    _Atomic int64_t next; /* next offset to write; <0 unknown */
} part_slot;

struct pi_metrics {
    char *version;
    int64_t stall_ms;
    double start_time; /* process start, seconds since the epoch */
    _Atomic(rd_kafka_t *) rk;

    topic_slot topics[PI_METRICS_MAX_TOPICS];
    atomic_size_t n_topics;
    part_slot *parts;
    atomic_size_t n_parts;

    _Atomic uint64_t stored, duplicates, conflicts, rejected, skipped;
    _Atomic uint64_t rejects[PI_REJ__COUNT];
    _Atomic uint64_t batches;
    _Atomic uint64_t rebalances[PI_REBALANCE__COUNT];
    _Atomic uint64_t db_errors[N_CLASSES];
    _Atomic uint64_t db_retries;
    atomic_bool paused;
    atomic_int_fast64_t backlog_at; /* pi_metrics_backlog */
    _Atomic double last_commit;     /* seconds since the epoch; 0: none yet */
    _Atomic double rollup_lag;      /* presence_rollup_lag(), seconds */
    histogram batch_messages, write_seconds, event_lag;

    /* Health, on the monotonic clock (ms); 0: never. */
    _Atomic int64_t tick_ms;
    _Atomic int64_t db_ok_ms;  /* the database last answered */
    _Atomic int64_t db_err_ms; /* a database call last failed */
    _Atomic bool no_database;  /* a dry run: readiness needs no database */
    /* Per writer (pi_writer_opts.metrics_slot): when it started the batch
     * in flight; 0: none. */
    _Atomic int64_t writing_ms[PI_METRICS_WRITERS];
    _Atomic int64_t created_ms;
    /* pi_metrics_fleet: online, offline, declared; the last seq. */
    atomic_bool fleet_published;
    _Atomic int64_t fleet[3];
    _Atomic int64_t fleet_changes;
};

static inline uint64_t mx_get(_Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

#endif
