/* consumer.c -- the run loop: librdkafka consumer → decoder → batch → writer */
#include "presence/consumer.h"

#include <assert.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "presence/batch.h"
#include "presence/commit_log.h"
#include "presence/decode.h"
#include "presence/kafka.h"
#include "presence/log.h"
#include "presence/mem.h"
#include "presence/metrics.h"
#include "presence/pipeline.h"

/* How long the writer may stay behind before the partitions are paused. */
#define PAUSE_AFTER_MS 1000
/* Committed batches remembered, to take back from the counters those a
 * database that lost its last commits no longer has (about a minute at
 * full speed). */
#define COMMIT_LOG_BATCHES 1024

/* Per assigned partition. */
typedef struct part {
    char *topic;
    int32_t partition;
    bool assigned;
    bool warned_below; /* said once that the log went below next */
    int64_t next;      /* next offset expected from Kafka; -1: any */
    int64_t committed; /* highest offset committed to Kafka since assigned */
    int64_t stored;    /* ingest_offsets.next_offset as last read or
                          committed by us; -1: no row */
    int64_t origin;    /* with no row at assignment: the first offset
                          consumed, where a re-read starts if the row
                          vanishes; -1: not yet */
} part;

struct pi_consumer {
    const pi_config *cfg;
    rd_kafka_t *rk;
    pi_writer *w;      /* used by the pipeline's thread only */
    pi_writer *meta;   /* this thread's connection: offsets on assignment */
    pi_pipeline *pipe; /* owns the batch in flight */
    atomic_int cancel;
    pi_decoder *dec;
    pi_batch *fill;    /* being filled */
    pi_batch *spare;   /* written and reset, ready to fill next */
    pi_batch *requeue; /* came back unwritten: write before fill */
    int64_t fill_since_ms;
    bool paused;
    bool cooperative; /* the assignor's protocol, from the configuration */
    int64_t reset;    /* where a partition with no row in ingest_offsets
                         starts: RD_KAFKA_OFFSET_BEGINNING, _END, or
                         _INVALID (librdkafka's auto.offset.reset=error) */
    int64_t revoke_budget_ms; /* longest flush inside a revoke */
    int64_t stop_deadline;    /* once stopping: when to give up flushing */
    part *parts;
    size_t n_parts, cap_parts;
    size_t last_part; /* cache for the per-message lookup */
    pi_commit_log *log;
    pi_commit_pos *scratch_pos; /* for pi_commit_log_add */
    size_t cap_scratch_pos;
    pi_write_stats total;
    const atomic_int *stop;
    pi_kafka_cause cause; /* what librdkafka's errors said, for start-up */
    int fatal;
    pi_err fatal_err;
    bool closed; /* left the group cleanly */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    pi_consumer *c = opaque;

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[512];
        rd_kafka_fatal_error(rk, buf, sizeof(buf));
        pi_err_set(&c->fatal_err, PI_EFATAL, "kafka fatal error: %s", buf);
        c->fatal = 1;
        return;
    }
    /* Everything else (brokers down, timeouts) librdkafka retries itself:
     * say so and go on. A lost connection is already in librdkafka's own
     * log line. */
    pi_kafka_cause_note(&c->cause, err, reason);
    if (err == RD_KAFKA_RESP_ERR__TRANSPORT)
        return;
    pi_warn("kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err),
            reason);
}

static part *find_part(pi_consumer *c, const char *topic, int32_t partition,
                       bool create)
{
    if (c->last_part < c->n_parts) {
        part *p = &c->parts[c->last_part];
        if (p->partition == partition && strcmp(p->topic, topic) == 0)
            return p;
    }
    for (size_t i = 0; i < c->n_parts; i++) {
        part *p = &c->parts[i];
        if (p->partition == partition && strcmp(p->topic, topic) == 0) {
            c->last_part = i;
            return p;
        }
    }
    if (!create)
        return NULL;
    pi_grow((void **)&c->parts, &c->cap_parts, c->n_parts + 1,
            sizeof(*c->parts));
    part *p = &c->parts[c->n_parts];
    p->topic = pi_strdup(topic);
    p->partition = partition;
    p->assigned = false;
    p->next = -1;
    p->committed = -1;
    p->stored = -1;
    p->origin = -1;
    c->last_part = c->n_parts;
    return &c->parts[c->n_parts++];
}

static bool batch_full(const pi_consumer *c, const pi_batch *batch)
{
    return pi_batch_messages(batch) >= (size_t)c->cfg->batch_size ||
           pi_batch_bytes(batch) >= (size_t)c->cfg->batch_bytes;
}

/* Commit the positions a written batch reached to Kafka, for the partitions
 * still ours (lag tools read them; the database already has them). */
static void commit_positions(pi_consumer *c, const pi_batch *batch, bool sync)
{
    size_t n;
    const pi_position *pos = pi_batch_positions(batch, &n);
    rd_kafka_topic_partition_list_t *list;
    rd_kafka_resp_err_t kerr;

    if (n == 0)
        return;
    list = rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; i < n; i++) {
        const char *topic = pi_batch_topic(batch, pos[i].topic);
        part *p = find_part(c, topic, pos[i].partition, false);
        /* Not ours, or a batch from before a reassignment that is behind
         * what was committed since: lag tools must not see it go back. */
        if (p == NULL || !p->assigned || pos[i].next_offset <= p->committed)
            continue;
        p->committed = pos[i].next_offset;
        rd_kafka_topic_partition_list_add(list, topic, pos[i].partition)
            ->offset = pos[i].next_offset;
    }
    if (list->cnt > 0) {
        kerr = rd_kafka_commit(c->rk, list, sync ? 0 : 1);
        if (kerr && kerr != RD_KAFKA_RESP_ERR__NO_OFFSET)
            pi_warn("kafka offset commit failed (the database has the "
                    "offsets; lag tools will catch up on the next commit): %s",
                    rd_kafka_err2str(kerr));
    }
    rd_kafka_topic_partition_list_destroy(list);
}

static int stored_offset(pi_consumer *c, const char *topic, int32_t partition,
                         int64_t *next);
static void commit_assigned(pi_consumer *c,
                            const rd_kafka_topic_partition_list_t *parts);

/* Stamp each position of batch with what we believe ingest_offsets holds
 * for it: the writer's compare-and-set (writer.h). Done at every submit,
 * when no other batch is in flight, so the belief is exact. */
static void stamp_expected(pi_consumer *c, pi_batch *batch)
{
    size_t n;
    const pi_position *pos = pi_batch_positions(batch, &n);

    for (size_t i = 0; i < n; i++) {
        part *p = find_part(c, pi_batch_topic(batch, pos[i].topic),
                            pos[i].partition, false);
        pi_batch_set_expected(batch, i, p && p->assigned ? p->stored : -1);
    }
}

/* A batch committed: its positions are now stored, and remembered with its
 * figures in case the database loses the commit later. */
static void note_committed(pi_consumer *c, const pi_batch *batch,
                           const pi_write_stats *stats)
{
    size_t n, k = 0;
    const pi_position *pos = pi_batch_positions(batch, &n);

    pi_grow((void **)&c->scratch_pos, &c->cap_scratch_pos, n ? n : 1,
            sizeof(*c->scratch_pos));
    for (size_t i = 0; i < n; i++) {
        part *p = find_part(c, pi_batch_topic(batch, pos[i].topic),
                            pos[i].partition, false);
        if (p == NULL)
            continue;
        if (p->assigned && pos[i].next_offset > p->stored)
            p->stored = pos[i].next_offset;
        c->scratch_pos[k].part = (uint32_t)(p - c->parts);
        c->scratch_pos[k++].next_offset = pos[i].next_offset;
    }
    pi_commit_log_add(c->log, c->scratch_pos, k, stats);
}

static void drop_part(pi_consumer *c, pi_batch *batch, const part *p)
{
    if (batch)
        pi_batch_drop_partition(batch, p->topic, p->partition);
    pi_batch_drop_partition(c->fill, p->topic, p->partition);
    if (c->requeue)
        pi_batch_drop_partition(c->requeue, p->topic, p->partition);
}

/* The database is the source of truth at every write: after the writer
 * found a partition behind what we committed (PI_EBEHIND) or had to
 * reconnect (the server may have come back without its last commits, or be
 * another one), read every assigned partition's stored offset again. Where
 * it is behind, drop what is buffered for the partition (in batch too, the
 * one that came back), seek back to it, and take the lost batches back from
 * the counters. Non-zero when the offsets could not be read (stopping, or
 * fatal). */
static int resync(pi_consumer *c, pi_batch *batch)
{
    int64_t *stored =
        pi_malloc((c->n_parts ? c->n_parts : 1) * sizeof(*stored));
    rd_kafka_topic_partition_list_t *seek =
        rd_kafka_topic_partition_list_new(4);
    pi_write_stats undone;
    size_t n_undone;
    int rc = 0, overflow;

    for (size_t i = 0; i < c->n_parts; i++) {
        part *p = &c->parts[i];
        int64_t s, target;

        stored[i] = INT64_MAX;
        if (!p->assigned)
            continue;
        rc = stored_offset(c, p->topic, p->partition, &s);
        if (rc)
            goto cleanup;
        stored[i] = s;
        if (p->stored < 0 || s >= p->stored)
            continue;
        target = s >= 0 ? s : p->origin >= 0 ? p->origin : c->reset;
        pi_log_at(PI_LOG_WARN, p->topic, p->partition, s,
                  "ingest_offsets is at %" PRId64 ", behind the %" PRId64
                  " this instance committed: the database lost commits "
                  "(crash with synchronous_commit=off, failover, restore) or "
                  "was reset; reading the partition again from %" PRId64,
                  s, p->stored, target);
        drop_part(c, batch, p);
        rd_kafka_topic_partition_list_add(seek, p->topic, p->partition)
            ->offset = target;
        p->stored = s;
        p->next = target >= 0 ? target : -1;
        p->committed = p->next;
        p->warned_below = false;
    }
    memset(&undone, 0, sizeof(undone));
    n_undone =
        pi_commit_log_undo(c->log, stored, c->n_parts, &undone, &overflow);
    if (n_undone) {
        pi_write_stats_sub(&c->total, &undone);
        pi_warn("took %zu committed batch(es) (%" PRIu64 " messages, %" PRIu64
                " stored) back from the counters: the database no longer "
                "has them, and they are read again",
                n_undone, undone.messages, undone.stored);
    }
    if (overflow)
        pi_warn("the database lost more than the last %d commits this "
                "instance remembers: the counters may overstate what is "
                "stored (the rows themselves are read again)",
                COMMIT_LOG_BATCHES);
    if (seek->cnt > 0) {
        /* Asynchronous (timeout 0): librdkafka purges the partitions'
         * pre-fetched messages and fetches from the new positions. */
        rd_kafka_error_t *error = rd_kafka_seek_partitions(c->rk, seek, 0);
        if (error) {
            pi_err_set(&c->fatal_err, PI_EFATAL, "kafka seek failed: %s",
                       rd_kafka_error_string(error));
            c->fatal = 1;
            rd_kafka_error_destroy(error);
            rc = PI_EFATAL;
            goto cleanup;
        }
        commit_assigned(c, seek);
    }
cleanup:
    rd_kafka_topic_partition_list_destroy(seek);
    free(stored);
    return rc;
}

static void recycle(pi_consumer *c, pi_batch *batch)
{
    pi_batch_reset(batch);
    if (c->spare == NULL)
        c->spare = batch;
    else
        pi_batch_destroy(batch);
}

/* A batch came back from the writer thread. */
static void handle_done(pi_consumer *c, pi_batch *batch, int rc,
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
        commit_positions(c, batch, sync_commit);
        note_committed(c, batch, stats);
        recycle(c, batch);
        if (stats->reconnects && !atomic_load(c->stop))
            (void)resync(c, NULL);
        return;
    }
    if (rc == PI_EBEHIND) {
        /* Nothing of it was written. Without the stored offsets (stopping)
         * it is dropped: its messages are read again from ingest_offsets
         * by whoever consumes the partitions next. */
        pi_warn("%s", err->msg);
        assert(c->requeue == NULL);
        if (atomic_load(c->stop) || resync(c, batch) != 0 ||
            pi_batch_messages(batch) == 0) {
            recycle(c, batch);
            return;
        }
        c->requeue = batch;
        return;
    }
    if (rc == PI_ERETRY) {
        /* Cancelled before it committed: it must still be written, and
         * before anything newer of its partitions. Only drain() cancels, and
         * it runs only with no batch waiting to be requeued. */
        assert(c->requeue == NULL);
        c->requeue = batch;
        return;
    }
    pi_batch_destroy(batch);
    if (!c->fatal) {
        c->fatal = 1;
        c->fatal_err = *err;
    }
}

/* Wait for the batch in flight until deadline (ms, monotonic); past it,
 * cancel its retries and take it back unwritten. */
static void drain(pi_consumer *c, int64_t deadline, bool sync_commit)
{
    pi_batch *batch;
    pi_write_stats stats;
    pi_err err;
    int rc;
    bool cancelled = false;

    while (!pi_pipeline_idle(c->pipe)) {
        int64_t left = deadline - now_ms();
        if (left <= 0 && !cancelled) {
            pi_warn("writer still busy at the deadline: cancelling; its "
                    "messages will be consumed again");
            pi_pipeline_cancel(c->pipe);
            cancelled = true;
        }
        if (pi_pipeline_collect(c->pipe, left > 0 ? (int)left : 100, &batch,
                                &rc, &stats, &err) == 0)
            handle_done(c, batch, rc, &stats, &err, sync_commit);
    }
}

static pi_batch *take_empty_batch(pi_consumer *c)
{
    pi_batch *batch = c->spare;

    c->spare = NULL;
    if (batch == NULL)
        pi_batch_new(&batch);
    return batch;
}

/* Hand the next batch to the writer if it is idle: a batch that came back
 * unwritten first, then the filling one when it is full, lingered long
 * enough, or force is set. */
static void maybe_submit(pi_consumer *c, bool force)
{
    if (!pi_pipeline_idle(c->pipe))
        return;
    if (c->requeue) {
        stamp_expected(c, c->requeue);
        pi_pipeline_submit(c->pipe, c->requeue);
        c->requeue = NULL;
        return;
    }
    if (pi_batch_messages(c->fill) == 0)
        return;
    if (!force && !batch_full(c, c->fill) &&
        now_ms() - c->fill_since_ms < c->cfg->linger_ms)
        return;
    stamp_expected(c, c->fill);
    pi_pipeline_submit(c->pipe, c->fill);
    c->fill = take_empty_batch(c);
}

static void set_paused(pi_consumer *c, bool pause)
{
    rd_kafka_topic_partition_list_t *list = NULL;

    if (c->paused == pause)
        return;
    if (rd_kafka_assignment(c->rk, &list) == 0 && list) {
        if (list->cnt > 0) {
            if (pause)
                rd_kafka_pause_partitions(c->rk, list);
            else
                rd_kafka_resume_partitions(c->rk, list);
        }
        rd_kafka_topic_partition_list_destroy(list);
    }
    c->paused = pause;
    pi_metrics_paused(c->cfg->metrics, pause);
    pi_debug("%s fetching: %s", pause ? "pausing" : "resuming",
             pause ? "the writer is behind" : "the writer caught up");
}

static void add_message(pi_consumer *c, const rd_kafka_message_t *rkm)
{
    const char *topic = rd_kafka_topic_name(rkm->rkt);
    part *p = find_part(c, topic, rkm->partition, false);

    /* Not ours any more (revoked while it was in the queue): its next owner
     * reads it. */
    if (p == NULL || !p->assigned)
        return;
    /* Below what is stored or buffered: already taken care of. librdkafka
     * resumes from our position, so this means the log itself went back
     * (topic recreated, unclean leader election, offset reset): say so. */
    if (p->next >= 0 && rkm->offset < p->next) {
        if (!p->warned_below)
            pi_log_at(PI_LOG_ERROR, topic, rkm->partition, rkm->offset,
                      "offset below the next one already stored or "
                      "buffered (%" PRId64 "): skipping up to it; was the "
                      "topic recreated or truncated?",
                      p->next);
        p->warned_below = true;
        return;
    }
    if (pi_batch_messages(c->fill) == 0)
        c->fill_since_ms = now_ms();
    if (p->stored < 0 && p->origin < 0)
        p->origin = rkm->offset;
    pi_batch_add(c->fill, c->dec, topic, rkm->partition, rkm->offset, rkm->key,
                 rkm->key_len, rkm->payload, rkm->len);
    p->next = rkm->offset + 1;
}

/* The stored next offset of a partition (-1: no row). The writer retries
 * transient failures until the consumer is told to stop. */
static int stored_offset(pi_consumer *c, const char *topic, int32_t partition,
                         int64_t *next)
{
    pi_err err;
    int rc = pi_writer_next_offset(c->meta, topic, partition, next, &err);

    if (rc == PI_ERETRY && atomic_load(c->stop))
        return rc; /* asked to stop while waiting for the database */
    if (rc != 0 && !c->fatal) {
        c->fatal = 1;
        c->fatal_err = err;
    }
    return rc;
}

static void check_partitions(const rd_kafka_topic_partition_list_t *parts,
                             const char *what)
{
    for (int i = 0; i < parts->cnt; i++) {
        if (parts->elems[i].err)
            pi_warn("kafka %s %s[%d]: %s", what, parts->elems[i].topic,
                    (int)parts->elems[i].partition,
                    rd_kafka_err2str(parts->elems[i].err));
    }
}

static void commit_assigned(pi_consumer *c,
                            const rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_topic_partition_list_t *list =
        rd_kafka_topic_partition_list_new(parts->cnt);
    rd_kafka_resp_err_t kerr;

    for (int i = 0; i < parts->cnt; i++) {
        if (parts->elems[i].offset >= 0)
            rd_kafka_topic_partition_list_add(list, parts->elems[i].topic,
                                              parts->elems[i].partition)
                ->offset = parts->elems[i].offset;
    }
    if (list->cnt > 0) {
        kerr = rd_kafka_commit(c->rk, list, 1);
        if (kerr)
            pi_warn("kafka commit of the assigned positions: %s",
                    rd_kafka_err2str(kerr));
    }
    rd_kafka_topic_partition_list_destroy(list);
}

static void on_assign(pi_consumer *c, rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t kerr = 0;
    bool ok = true;

    for (int i = 0; i < parts->cnt && ok; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        int64_t next = -1;

        ok = stored_offset(c, tp->topic, tp->partition, &next) == 0;
        tp->offset = next >= 0 ? next : c->reset;
    }
    /* The rebalance is answered even when the offsets could not be read (we
     * are stopping): the partitions are then taken but never marked ours,
     * and paused, so nothing of them is buffered or written. */
    if (c->cooperative)
        error = rd_kafka_incremental_assign(c->rk, parts);
    else
        kerr = rd_kafka_assign(c->rk, parts);
    if (error) {
        pi_err_set(&c->fatal_err, PI_EFATAL, "kafka assign failed: %s",
                   rd_kafka_error_string(error));
        c->fatal = 1;
        rd_kafka_error_destroy(error);
        return;
    }
    if (kerr) {
        pi_err_set(&c->fatal_err, PI_EFATAL, "kafka assign failed: %s",
                   rd_kafka_err2str(kerr));
        c->fatal = 1;
        return;
    }
    /* librdkafka keeps a partition's pause across unassign and assign:
     * set it explicitly either way. */
    if (c->paused || !ok)
        kerr = rd_kafka_pause_partitions(c->rk, parts);
    else
        kerr = rd_kafka_resume_partitions(c->rk, parts);
    if (kerr)
        pi_warn("kafka pause/resume of new partitions: %s",
                rd_kafka_err2str(kerr));
    check_partitions(parts, "pause/resume");
    if (!ok)
        return;
    /* Publish the database's positions to the group at once: after a crash
     * Kafka's committed offsets lag behind ingest_offsets, and lag tools
     * would show a backlog that is already stored. Only positions found in
     * ingest_offsets are committed (async, best effort). */
    commit_assigned(c, parts);
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        part *p = find_part(c, tp->topic, tp->partition, true);

        p->assigned = true;
        p->next = tp->offset >= 0 ? tp->offset : -1;
        p->committed = p->next;
        p->stored = p->next;
        p->origin = -1;
        p->warned_below = false;
        pi_info("assigned %s[%d] from %s", tp->topic, (int)tp->partition,
                tp->offset >= 0 ? "its offset in ingest_offsets"
                                : "auto.offset.reset (no row in "
                                  "ingest_offsets)");
        if (tp->offset >= 0)
            pi_debug("%s[%d] starts at offset %" PRId64, tp->topic,
                     (int)tp->partition, tp->offset);
    }
}

static void drop_partitions(pi_batch *batch,
                            const rd_kafka_topic_partition_list_t *parts)
{
    if (batch == NULL)
        return;
    for (int i = 0; i < parts->cnt; i++)
        pi_batch_drop_partition(batch, parts->elems[i].topic,
                                parts->elems[i].partition);
}

static void on_revoke(pi_consumer *c, rd_kafka_topic_partition_list_t *parts)
{
    bool lost = rd_kafka_assignment_lost(c->rk);
    rd_kafka_error_t *error = NULL;

    if (lost) {
        /* Someone else may own them already: drop what is buffered; the
         * batch in flight is fenced by the writer. */
        pi_warn("assignment lost: dropping buffered messages of %d "
                "partition(s)",
                parts->cnt);
        drop_partitions(c->fill, parts);
        drop_partitions(c->requeue, parts);
    } else {
        /* While stopping, the shutdown's own deadline holds (the flush
         * already happened); otherwise a budget that leaves the group's
         * max.poll.interval.ms to spare. */
        int64_t deadline = c->stop_deadline ? c->stop_deadline
                                            : now_ms() + c->revoke_budget_ms;

        /* Flush in order: the batch in flight, one that came back, then
         * what is filling (all of it: a batch is cheap to write early). */
        drain(c, deadline, true);
        for (int round = 0; round < 2 && !c->fatal && now_ms() < deadline;
             round++) {
            maybe_submit(c, true);
            drain(c, deadline, true);
        }
        if (c->requeue) {
            drop_partitions(c->requeue, parts);
            if (pi_batch_messages(c->requeue) == 0) {
                pi_batch_destroy(c->requeue);
                c->requeue = NULL;
            }
        }
        drop_partitions(c->fill, parts);
    }
    for (int i = 0; i < parts->cnt; i++) {
        part *p = find_part(c, parts->elems[i].topic, parts->elems[i].partition,
                            false);
        if (p) {
            p->assigned = false;
            p->next = -1;
        }
        pi_info("%s %s[%d]", lost ? "lost" : "revoked", parts->elems[i].topic,
                (int)parts->elems[i].partition);
    }
    /* A pause outlives the assignment in librdkafka: clear it. */
    if (rd_kafka_resume_partitions(c->rk, parts) == 0)
        check_partitions(parts, "resume");
    if (c->cooperative) {
        error = rd_kafka_incremental_unassign(c->rk, parts);
        if (error) {
            pi_warn("kafka unassign: %s", rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
        }
    } else {
        rd_kafka_resp_err_t kerr = rd_kafka_assign(c->rk, NULL);
        if (kerr)
            pi_warn("kafka unassign: %s", rd_kafka_err2str(kerr));
    }
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t kerr,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    pi_consumer *c = opaque;
    pi_rebalance_kind kind =
        kerr == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS ? PI_REBALANCE_ASSIGN
        : rd_kafka_assignment_lost(rk)               ? PI_REBALANCE_LOST
                                                     : PI_REBALANCE_REVOKE;

    c->cooperative =
        strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (kerr == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
        on_assign(c, parts);
    else
        on_revoke(c, parts);
    pi_metrics_rebalance(c->cfg->metrics, kind, parts);
}

int pi_consumer_new(pi_consumer **out, const pi_config *cfg,
                    const atomic_int *stop, pi_err *err)
{
    pi_consumer *c = pi_calloc(1, sizeof(*c));
    rd_kafka_conf_t *conf = NULL;
    pi_kafka_settings settings;
    pi_writer_opts wopts;
    char errstr[512];
    int rc;

    *out = NULL;
    c->cfg = cfg;
    c->stop = stop;
    atomic_init(&c->cancel, 0);
    if (cfg->topic == NULL) {
        rc = pi_err_set(err, PI_EINVAL,
                        "--topic is required (or PRESENCE_TOPIC)");
        goto cleanup;
    }
    rc = pi_kafka_conf_new(&conf, &settings, cfg, err);
    if (rc)
        goto cleanup;
    c->reset = settings.reset;
    c->cooperative = settings.cooperative;
    c->revoke_budget_ms = settings.revoke_budget_ms;
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_opaque(conf, c);

    pi_writer_opts_init(&wopts);
    wopts.conninfo = cfg->pg;
    wopts.group = cfg->group;
    wopts.on_conflict = strcmp(cfg->on_conflict, "replace") == 0
                            ? PI_ON_CONFLICT_REPLACE
                            : PI_ON_CONFLICT_KEEP;
    wopts.backoff_min_ms = (int)cfg->backoff_min_ms;
    wopts.backoff_max_ms = (int)cfg->backoff_max_ms;
    wopts.tx_timeout_ms = (int)cfg->pg_tx_timeout_ms;
    wopts.cancel = &c->cancel;
    wopts.metrics = cfg->metrics;
    rc = pi_writer_new(&c->w, &wopts, err);
    if (rc)
        goto cleanup;
    wopts.cancel = stop;
    rc = pi_writer_new(&c->meta, &wopts, err);
    if (rc)
        goto cleanup;

    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (c->rk == NULL) {
        rc = pi_err_set(err, PI_EINVAL, "kafka: %s", errstr);
        goto cleanup;
    }
    conf = NULL; /* rd_kafka_new took it */
    rd_kafka_poll_set_consumer(c->rk);
    rc = pi_kafka_check(c->rk, cfg, &c->cause, err);
    if (rc)
        goto cleanup;

    pi_decoder_new(&c->dec, (size_t)cfg->max_message_bytes);
    pi_decoder_set_max_elements(c->dec, (size_t)cfg->max_array_elements);
    pi_commit_log_new(&c->log, COMMIT_LOG_BATCHES);
    pi_batch_new(&c->fill);
    pi_pipeline_new(&c->pipe, c->w, &c->cancel);
    pi_metrics_set_kafka(cfg->metrics, c->rk); /* not before: see metrics.h */
    *out = c;
    return 0;
cleanup:
    if (conf)
        rd_kafka_conf_destroy(conf);
    pi_consumer_destroy(c);
    return rc;
}

static int subscribe(pi_consumer *c, pi_err *err)
{
    const char *p = c->cfg->topic;
    rd_kafka_topic_partition_list_t *list =
        rd_kafka_topic_partition_list_new(4);
    rd_kafka_resp_err_t kerr;

    /* A ^regex is one pattern; otherwise a comma-separated list. */
    if (*p == '^') {
        rd_kafka_topic_partition_list_add(list, p, RD_KAFKA_PARTITION_UA);
    } else {
        while (*p) {
            size_t len = strcspn(p, ",");
            char *name = pi_strndup(p, len);
            rd_kafka_topic_partition_list_add(list, name,
                                              RD_KAFKA_PARTITION_UA);
            free(name);
            p += len;
            if (*p == ',')
                p++;
        }
    }
    kerr = rd_kafka_subscribe(c->rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (kerr)
        return pi_err_set(err, PI_EINVAL, "kafka subscribe to %s: %s",
                          c->cfg->topic, rd_kafka_err2str(kerr));
    return 0;
}

/* Leave the group, serving the revoke through the rebalance callback, but
 * not past deadline: with the brokers down leaving cannot complete, and the
 * group's session timeout then does it for us. */
static void close_bounded(pi_consumer *c, int64_t deadline)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(c->rk);
    rd_kafka_error_t *error = rd_kafka_consumer_close_queue(c->rk, q);

    if (error) {
        pi_warn("kafka close: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else {
        while (!rd_kafka_consumer_closed(c->rk) && now_ms() < deadline)
            rd_kafka_queue_poll_callback(q, 100);
        c->closed = rd_kafka_consumer_closed(c->rk);
        if (!c->closed)
            pi_warn("leaving the consumer group did not complete by the "
                    "shutdown deadline (brokers not answering): the group "
                    "drops this member after session.timeout.ms");
    }
    rd_kafka_queue_destroy(q);
}

static void log_progress(pi_consumer *c, int64_t *last_ms,
                         uint64_t *last_messages)
{
    int64_t now = now_ms();
    double secs = (double)(now - *last_ms) / 1000.0;

    pi_metrics_tick(c->cfg->metrics, now);
    if (c->cfg->stats_interval_ms == 0 ||
        now - *last_ms < c->cfg->stats_interval_ms)
        return;
    pi_info("progress messages=%" PRIu64 " stored=%" PRIu64
            " duplicates=%" PRIu64 " conflicts=%" PRIu64 " rejected=%" PRIu64
            " skipped=%" PRIu64 " rate=%.0f/s",
            c->total.messages, c->total.stored, c->total.duplicates,
            c->total.conflicts, c->total.rejected, c->total.skipped,
            secs > 0 ? (double)(c->total.messages - *last_messages) / secs
                     : 0.0);
    *last_ms = now;
    *last_messages = c->total.messages;
}

static void handle_event(pi_consumer *c, rd_kafka_message_t *rkm)
{
    if (rkm->err == 0) {
        add_message(c, rkm);
        return;
    }
    if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
        return;
    if (rkm->err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[512];
        rd_kafka_fatal_error(c->rk, buf, sizeof(buf));
        pi_err_set(&c->fatal_err, PI_EFATAL, "kafka fatal error: %s", buf);
        c->fatal = 1;
        return;
    }
    if (rkm->rkt)
        pi_log_at(PI_LOG_WARN, rd_kafka_topic_name(rkm->rkt), rkm->partition,
                  rkm->offset, "kafka: %s", rd_kafka_message_errstr(rkm));
    else
        pi_warn("kafka: %s", rd_kafka_message_errstr(rkm));
}

int pi_consumer_run(pi_consumer *c, pi_err *err)
{
    const atomic_int *stop = c->stop;
    int64_t progress_ms = now_ms(), backlog_since = 0;
    uint64_t progress_messages = 0;
    size_t left;
    int rc;

    rc = subscribe(c, err);
    if (rc)
        return rc;
    pi_info("consuming %s as group %s", c->cfg->topic, c->cfg->group);

    while (!atomic_load(stop) && !c->fatal) {
        pi_batch *batch;
        pi_write_stats stats;
        pi_err werr;
        int wrc, wait_ms = 0;
        bool backlog = batch_full(c, c->fill) && !pi_pipeline_idle(c->pipe);

        /* Backpressure. The filling batch is full and the writer busy: wait
         * for the writer rather than fetch more. Pausing costs a re-fetch
         * (librdkafka drops the pre-fetched queue of a paused partition),
         * so it is kept for a writer that stays behind (database slow or
         * down): then the partitions are paused and polling goes on, to
         * stay in the group and serve rebalances. */
        if (backlog) {
            if (backlog_since == 0)
                backlog_since = now_ms();
            if (!c->paused && now_ms() - backlog_since >= PAUSE_AFTER_MS)
                set_paused(c, true);
            wait_ms = 100;
        } else {
            backlog_since = 0;
        }
        if (!backlog || c->paused) {
            rd_kafka_message_t *rkm =
                rd_kafka_consumer_poll(c->rk, backlog ? 0 : 50);
            if (rkm) {
                handle_event(c, rkm);
                rd_kafka_message_destroy(rkm);
            }
        }
        if (pi_pipeline_collect(c->pipe, wait_ms, &batch, &wrc, &stats,
                                &werr) == 0)
            handle_done(c, batch, wrc, &stats, &werr, false);
        maybe_submit(c, false);
        if (c->paused && !batch_full(c, c->fill))
            set_paused(c, false);
        log_progress(c, &progress_ms, &progress_messages);
    }

    if (c->fatal) {
        *err = c->fatal_err;
        pi_error("stopping: %s", c->fatal_err.msg);
    } else {
        pi_info("stopping: flushing %zu buffered message(s)",
                pi_batch_messages(c->fill) +
                    (c->requeue ? pi_batch_messages(c->requeue) : 0));
    }
    /* Stop fetching, flush what is buffered (bounded), commit, leave. */
    set_paused(c, true);
    c->stop_deadline = now_ms() + (c->fatal ? 0 : c->cfg->shutdown_timeout_ms);
    drain(c, c->stop_deadline, true);
    for (int round = 0; round < 2 && !c->fatal && now_ms() < c->stop_deadline;
         round++) {
        maybe_submit(c, true);
        drain(c, c->stop_deadline, true);
    }
    left = pi_batch_messages(c->fill) +
           (c->requeue ? pi_batch_messages(c->requeue) : 0);
    /* A little past the flush's deadline: leaving is worth a moment. */
    close_bounded(
        c, (c->stop_deadline > now_ms() ? c->stop_deadline : now_ms()) + 1000);
    if (left && !c->fatal) {
        pi_err_set(&c->fatal_err, PI_EFATAL,
                   "gave up writing %zu buffered message(s) at the shutdown "
                   "deadline (shutdown-timeout-ms %lld): they are consumed "
                   "again from ingest_offsets",
                   left, (long long)c->cfg->shutdown_timeout_ms);
        c->fatal = 1;
    }
    pi_info("stopped: messages=%" PRIu64 " stored=%" PRIu64
            " duplicates=%" PRIu64 " conflicts=%" PRIu64 " rejected=%" PRIu64
            " skipped=%" PRIu64,
            c->total.messages, c->total.stored, c->total.duplicates,
            c->total.conflicts, c->total.rejected, c->total.skipped);
    if (c->fatal) {
        *err = c->fatal_err;
        return PI_EFATAL;
    }
    return 0;
}

void pi_consumer_totals(const pi_consumer *c, pi_write_stats *out)
{
    *out = c->total;
}

void pi_consumer_destroy(pi_consumer *c)
{
    if (c == NULL)
        return;
    pi_pipeline_destroy(c->pipe);
    /* Not closed (never subscribed, or leaving timed out): destroying must
     * not try to leave the group again, which can block. */
    if (c->rk)
        rd_kafka_destroy_flags(
            c->rk, c->closed ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    pi_writer_destroy(c->w);
    pi_writer_destroy(c->meta);
    pi_decoder_destroy(c->dec);
    pi_batch_destroy(c->fill);
    pi_batch_destroy(c->spare);
    pi_batch_destroy(c->requeue);
    pi_commit_log_destroy(c->log);
    free(c->scratch_pos);
    for (size_t i = 0; i < c->n_parts; i++)
        free(c->parts[i].topic);
    free(c->parts);
    free(c);
}
