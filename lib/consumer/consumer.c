/* consumer.c -- the run loop: librdkafka consumer → decoder → batch → writer */
#include "presence/consumer.h"

#include <assert.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "consumer_int.h"
#include "presence/batch.h"
#include "presence/commit_log.h"
#include "presence/decode.h"
#include "presence/kafka.h"
#include "presence/log.h"
#include "presence/mem.h"
#include "presence/metrics.h"
#include "presence/pipeline.h"

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
    part *p = pi_consumer__find_part(c, topic, rkm->partition, false);

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
    lane *l = pi_consumer__lane(c, rkm->partition);
    if (pi_batch_messages(l->fill) == 0)
        l->fill_since_ms = pi_mono_ms();
    if (c->replay) {
        bool take;
        pi_consumer__replay_message(c, p, rkm->offset, &take);
        if (!take)
            return;
    }
    if (p->stored < 0 && p->origin < 0)
        p->origin = rkm->offset;
    pi_batch_add(l->fill, c->dec, topic, rkm->partition, rkm->offset, rkm->key,
                 rkm->key_len, rkm->payload, rkm->len);
    p->next = rkm->offset + 1;
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
    rd_kafka_conf_set_rebalance_cb(conf, pi_consumer__rebalance_cb);
    rd_kafka_conf_set_opaque(conf, c);
    c->replay = cfg->replay;
    if (c->replay) {
        /* Assigned, never subscribed: the group is never joined and nothing
         * is committed; librdkafka 2.0.2 only wants a group.id to assign.
         * Partition EOF events tell where a range's end is a control record
         * or beyond the last message. */
        char group[96];
        snprintf(group, sizeof(group), "presence-ingest-replay-%ld-%lld",
                 (long)getpid(), (long long)pi_mono_ms());
        if (rd_kafka_conf_set(conf, "group.id", group, errstr,
                              sizeof(errstr)) != RD_KAFKA_CONF_OK ||
            rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr,
                              sizeof(errstr)) != RD_KAFKA_CONF_OK) {
            rc = pi_err_set(err, PI_EINVAL, "kafka: %s", errstr);
            goto cleanup;
        }
    }

    pi_writer_opts_init(&wopts);
    wopts.conninfo = cfg->pg;
    /* A replay never touches ingest_offsets: no fence, no offsets rows,
     * so it can run beside `run` on the same topic and database. */
    wopts.group = c->replay ? NULL : cfg->group;
    wopts.on_conflict = strcmp(cfg->on_conflict, "replace") == 0
                            ? PI_ON_CONFLICT_REPLACE
                            : PI_ON_CONFLICT_KEEP;
    wopts.backoff_min_ms = (int)cfg->backoff_min_ms;
    wopts.backoff_max_ms = (int)cfg->backoff_max_ms;
    wopts.tx_timeout_ms = (int)cfg->pg_tx_timeout_ms;
    wopts.metrics = cfg->metrics;
    /* A dry run needs no database: the pipelines only count. */
    rc = pi_consumer__lanes_new(c, &wopts, c->replay && cfg->dry_run, err);
    if (rc)
        goto cleanup;
    if (!c->replay) {
        wopts.cancel = stop;
        rc = pi_writer_new(&c->meta, &wopts, err);
        if (rc)
            goto cleanup;
    }

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
    pi_decoder_set_max_depth(c->dec, (size_t)cfg->max_json_depth);
    pi_decoder_set_max_memory(c->dec, (size_t)cfg->max_decode_memory);
    pi_commit_log_new(&c->log, COMMIT_LOG_BATCHES);
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
        /* Served as events, not callbacks: the group's queue now forwards
         * here, and what a callback poll cannot serve — a message fetched
         * before the pause, as when a fatal error stops the service while
         * it fetches — makes librdkafka abort (rd_kafka_q_serve: assert res
         * != RD_KAFKA_OP_RES_PASS). Rebalances go to the usual handler;
         * the rest is dropped (nothing of it is committed). */
        while (!rd_kafka_consumer_closed(c->rk) && pi_mono_ms() < deadline) {
            rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 100);

            if (ev && rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
                pi_consumer__rebalance_cb(
                    c->rk, rd_kafka_event_error(ev),
                    rd_kafka_event_topic_partition_list(ev), c);
            rd_kafka_event_destroy(ev);
        }
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
    int64_t now = pi_mono_ms();
    double secs = (double)(now - *last_ms) / 1000.0;

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
    if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (c->replay)
            pi_consumer__replay_eof(c, rkm);
        return;
    }
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
    int64_t progress_ms = pi_mono_ms(), backlog_since = 0;
    uint64_t progress_messages = 0;
    size_t left;
    int rc;

    c->started_ms = pi_mono_ms();
    if (c->replay) {
        rc = pi_consumer__replay_start(c, err);
        if (rc)
            return rc;
    } else {
        rc = subscribe(c, err);
        if (rc)
            return rc;
        pi_info("consuming %s as group %s", c->cfg->topic, c->cfg->group);
    }

    while (!atomic_load(stop) && !c->fatal) {
        if (c->replay && c->parts_done == c->parts_total) {
            /* Every range read: write what is left, then stop. */
            pi_consumer__submit(c, true);
            if (pi_consumer__replay_finished(c))
                break;
        }
        int wait_ms = 0;
        lane *behind = pi_consumer__backlog(c);
        bool backlog = behind != NULL;

        /* Backpressure. The filling batch is full and the writer busy: wait
         * for the writer rather than fetch more. Pausing costs a re-fetch
         * (librdkafka drops the pre-fetched queue of a paused partition),
         * so it is kept for a writer that stays behind (database slow or
         * down): then the partitions are paused and polling goes on, to
         * stay in the group and serve rebalances. */
        if (backlog) {
            pi_metrics_backlog(c->cfg->metrics, pi_mono_ms());
            if (backlog_since == 0)
                backlog_since = pi_mono_ms();
            if (!c->paused && pi_mono_ms() - backlog_since >= PAUSE_AFTER_MS)
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
        pi_consumer__collect(c, behind, wait_ms);
        pi_consumer__submit(c, false);
        if (c->paused && !pi_consumer__any_full(c))
            set_paused(c, false);
        pi_metrics_tick(c->cfg->metrics, pi_mono_ms());
        if (c->replay)
            pi_consumer__replay_progress(c, false);
        else
            log_progress(c, &progress_ms, &progress_messages);
    }
    if (c->replay)
        pi_consumer__replay_progress(c, true);

    if (c->fatal) {
        /* The error itself is the caller's one line, logged once, last. */
        *err = c->fatal_err;
        pi_info("stopping on an error: nothing more is written");
    } else if (!c->replay || atomic_load(stop)) {
        pi_info("stopping: flushing %zu buffered message(s)",
                pi_consumer__buffered(c));
    }
    /* Stop fetching, flush what is buffered (bounded), commit, leave. */
    set_paused(c, true);
    c->stop_deadline =
        pi_mono_ms() + (c->fatal ? 0 : c->cfg->shutdown_timeout_ms);
    pi_consumer__drain(c, c->stop_deadline, true);
    for (int round = 0;
         round < 2 && !c->fatal && pi_mono_ms() < c->stop_deadline; round++) {
        pi_consumer__submit(c, true);
        pi_consumer__drain(c, c->stop_deadline, true);
    }
    left = pi_consumer__buffered(c);
    /* A little past the flush's deadline: leaving is worth a moment. */
    close_bounded(
        c, (c->stop_deadline > pi_mono_ms() ? c->stop_deadline : pi_mono_ms()) +
               1000);
    if (left && !c->fatal) {
        pi_err_set(&c->fatal_err, PI_EFATAL,
                   "gave up writing %zu buffered message(s) at the shutdown "
                   "deadline (shutdown-timeout-ms %lld): they are consumed "
                   "again from ingest_offsets",
                   left, (long long)c->cfg->shutdown_timeout_ms);
        c->fatal = 1;
    }
    if (c->replay && !c->fatal) {
        if (left || c->parts_done < c->parts_total)
            pi_err_set(&c->fatal_err, PI_EFATAL,
                       "replay interrupted: %zu of %zu partition(s) done; run "
                       "the same replay again (what is stored stays stored, "
                       "a replay writes each presence once)",
                       c->parts_done, c->parts_total);
        else if (c->replay_missing)
            pi_err_set(&c->fatal_err, PI_EFATAL,
                       "%" PRId64 " message(s) of the range were no longer on "
                       "the broker (below the log start); the rest is "
                       "replayed",
                       c->replay_missing);
        c->fatal = c->fatal_err.code != 0;
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
    /* The writer threads first: a batch still in flight is given up. */
    pi_consumer__lanes_destroy(c);
    /* Not closed (never subscribed, or leaving timed out): destroying must
     * not try to leave the group again, which can block. */
    if (c->rk)
        rd_kafka_destroy_flags(
            c->rk, c->closed ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    pi_writer_destroy(c->meta);
    pi_decoder_destroy(c->dec);
    pi_commit_log_destroy(c->log);
    free(c->scratch_pos);
    for (size_t i = 0; i < c->n_parts; i++)
        free(c->parts[i].topic);
    free(c->parts);
    free(c);
}
