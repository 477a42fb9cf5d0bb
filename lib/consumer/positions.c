/* positions.c -- what is stored where: ingest_offsets and Kafka */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "consumer_int.h"
#include "presence/log.h"
#include "presence/mem.h"

/* Commit the positions a written batch reached to Kafka, for the partitions
 * still ours (lag tools read them; the database already has them). */
void pi_consumer__commit_positions(pi_consumer *c, const pi_batch *batch,
                                   bool sync)
{
    size_t n;
    const pi_position *pos = pi_batch_positions(batch, &n);
    rd_kafka_topic_partition_list_t *list;
    rd_kafka_resp_err_t kerr;

    /* A replay commits nothing to Kafka: it has no group. */
    if (n == 0 || c->replay)
        return;
    list = rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; i < n; i++) {
        const char *topic = pi_batch_topic(batch, pos[i].topic);
        part *p = pi_consumer__find_part(c, topic, pos[i].partition, false);
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

/* Stamp each position of batch with what we believe ingest_offsets holds
 * for it: the writer's compare-and-set (writer.h). Done at every submit,
 * when no other batch of its partitions is in flight (they all belong to
 * the one lane, which writes one batch at a time), so the belief is
 * exact. */
void pi_consumer__stamp_expected(pi_consumer *c, pi_batch *batch)
{
    size_t n;
    const pi_position *pos = pi_batch_positions(batch, &n);

    for (size_t i = 0; i < n; i++) {
        part *p = pi_consumer__find_part(c, pi_batch_topic(batch, pos[i].topic),
                                         pos[i].partition, false);
        pi_batch_set_expected(batch, i, p && p->assigned ? p->stored : -1);
    }
}

/* A batch committed: its positions are now stored, and remembered with its
 * figures in case the database loses the commit later. */
void pi_consumer__note_committed(pi_consumer *c, const pi_batch *batch,
                                 const pi_write_stats *stats)
{
    size_t n, k = 0;
    const pi_position *pos = pi_batch_positions(batch, &n);

    pi_grow((void **)&c->scratch_pos, &c->cap_scratch_pos, n ? n : 1,
            sizeof(*c->scratch_pos));
    for (size_t i = 0; i < n; i++) {
        part *p = pi_consumer__find_part(c, pi_batch_topic(batch, pos[i].topic),
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
    pi_consumer__drop(c, p->topic, p->partition);
}

/* The database is the source of truth at every write: after the writer
 * found a partition behind what we committed (PI_EBEHIND) or had to
 * reconnect (the server may have come back without its last commits, or be
 * another one), read every assigned partition's stored offset again. Where
 * it is behind, drop what is buffered for the partition (in batch too, the
 * one that came back), seek back to it, and take the lost batches back from
 * the counters. Non-zero when the offsets could not be read (stopping, or
 * fatal). */
int pi_consumer__resync(pi_consumer *c, pi_batch *batch)
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
        rc = pi_consumer__stored_offset(c, p->topic, p->partition, &s);
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
        pi_consumer__commit_assigned(c, seek);
    }
cleanup:
    rd_kafka_topic_partition_list_destroy(seek);
    free(stored);
    return rc;
}

/* The stored next offset of a partition (-1: no row). The writer retries
 * transient failures until the consumer is told to stop. */
int pi_consumer__stored_offset(pi_consumer *c, const char *topic,
                               int32_t partition, int64_t *next)
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

void pi_consumer__commit_assigned(pi_consumer *c,
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
