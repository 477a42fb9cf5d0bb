/* rebalance.c -- answering assignments and revocations */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "consumer_int.h"
#include "presence/log.h"
#include "presence/mem.h"
#include "presence/metrics.h"

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

static void on_assign(pi_consumer *c, rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t kerr = 0;
    bool ok = true;

    for (int i = 0; i < parts->cnt && ok; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        int64_t next = -1;

        ok =
            pi_consumer__stored_offset(c, tp->topic, tp->partition, &next) == 0;
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
    pi_consumer__commit_assigned(c, parts);
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        part *p = pi_consumer__find_part(c, tp->topic, tp->partition, true);

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

/* Drop what is buffered for parts; with free_empty, a requeued batch left
 * empty is freed. */
static void drop_partitions(pi_consumer *c,
                            const rd_kafka_topic_partition_list_t *parts,
                            bool free_empty)
{
    for (int i = 0; i < parts->cnt; i++)
        pi_consumer__drop(c, parts->elems[i].topic, parts->elems[i].partition);
    for (size_t i = 0; i < c->n_lanes && free_empty; i++) {
        lane *l = &c->lanes[i];
        if (l->requeue && pi_batch_messages(l->requeue) == 0) {
            pi_batch_destroy(l->requeue);
            l->requeue = NULL;
        }
    }
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
        drop_partitions(c, parts, false);
    } else {
        /* While stopping, the shutdown's own deadline holds (the flush
         * already happened); otherwise a budget that leaves the group's
         * max.poll.interval.ms to spare. */
        int64_t deadline = c->stop_deadline
                               ? c->stop_deadline
                               : pi_mono_ms() + c->revoke_budget_ms;

        /* Flush in order, in every lane: the batch in flight, one that
         * came back, then what is filling (all of it: a batch is cheap to
         * write early). The revoke completes only after the writers that
         * own the revoked partitions are done with them. */
        pi_consumer__drain(c, deadline, true);
        for (int round = 0; round < 2 && !c->fatal && pi_mono_ms() < deadline;
             round++) {
            pi_consumer__submit(c, true);
            pi_consumer__drain(c, deadline, true);
        }
        drop_partitions(c, parts, true);
    }
    for (int i = 0; i < parts->cnt; i++) {
        part *p = pi_consumer__find_part(c, parts->elems[i].topic,
                                         parts->elems[i].partition, false);
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

void pi_consumer__rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t kerr,
                               rd_kafka_topic_partition_list_t *parts,
                               void *opaque)
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
