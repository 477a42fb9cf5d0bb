/* bounded.c -- the bounded mode: assign ranges, stop at their ends */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "consumer_int.h"
#include "presence/log.h"
#include "presence/mem.h"
#include "presence/metrics.h"
#include "presence/replay.h"

/* How often the terminal line is redrawn. */
#define TTY_REFRESH_MS 250

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int pi_consumer__replay_start(pi_consumer *c, pi_err *err)
{
    const char *topic = c->cfg->topic;
    pi_replay_spec spec;
    pi_replay_range *ranges = NULL;
    rd_kafka_topic_partition_list_t *list = NULL;
    rd_kafka_error_t *error;
    size_t n = 0;
    int rc;

    if (strchr(topic, ',') || topic[0] == '^')
        return pi_err_set(err, PI_EINVAL,
                          "--topic: replay reads one topic, got '%s'", topic);
    rc = pi_replay_spec_parse(&spec, c->cfg, wall_ms(), err);
    if (rc)
        return rc;
    rc = pi_replay_resolve(c->rk, topic, &spec, &ranges, &n, err);
    pi_replay_spec_fini(&spec);
    if (rc)
        return rc;
    list = rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; i < n; i++) {
        const pi_replay_range *r = &ranges[i];
        part *p = pi_consumer__find_part(c, topic, r->partition, true);

        p->start = r->start;
        p->end = r->end;
        p->next = r->start;
        p->assigned = true;
        p->done = r->start >= r->end;
        c->parts_total++;
        if (p->done) {
            c->parts_done++;
        } else {
            c->replay_total += r->end - r->start;
            rd_kafka_topic_partition_list_add(list, topic, r->partition)
                ->offset = r->start;
        }
        if (r->missing) {
            pi_log_at(PI_LOG_WARN, topic, r->partition, r->start,
                      "%" PRId64 " message(s) of the range are no longer on "
                      "the broker (below the log start): starting at %" PRId64,
                      r->missing, r->start);
            c->replay_missing += r->missing;
        }
        pi_info("replay %s[%d] offsets [%" PRId64 ", %" PRId64 "): %" PRId64
                " message(s)",
                topic, (int)r->partition, r->start, r->end,
                r->end > r->start ? r->end - r->start : 0);
    }
    free(ranges);
    error = list->cnt ? rd_kafka_incremental_assign(c->rk, list) : NULL;
    if (error == NULL) /* the partitions are ours: /readyz, lag */
        pi_metrics_rebalance(c->cfg->metrics, PI_REBALANCE_ASSIGN, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (error) {
        rc = pi_err_set(err, PI_EFATAL, "kafka assign failed: %s",
                        rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        return rc;
    }
    c->progress_tty =
        strcmp(c->cfg->progress, "always") == 0 ||
        (strcmp(c->cfg->progress, "auto") == 0 && isatty(STDERR_FILENO));
    c->progress_shown = pi_mono_ms();
    return 0;
}

/* A partition reached its end: stop fetching it. */
static void finish_part(pi_consumer *c, part *p)
{
    rd_kafka_topic_partition_list_t *list;
    rd_kafka_error_t *error;

    if (p->done)
        return;
    p->done = true;
    c->parts_done++;
    list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, p->topic, p->partition);
    error = rd_kafka_incremental_unassign(c->rk, list);
    if (error) {
        pi_warn("kafka unassign of %s[%d]: %s", p->topic, (int)p->partition,
                rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        rd_kafka_pause_partitions(c->rk, list);
    }
    rd_kafka_topic_partition_list_destroy(list);
    pi_debug("replay of %s[%d] reached offset %" PRId64, p->topic,
             (int)p->partition, p->end);
}

void pi_consumer__replay_message(pi_consumer *c, part *p, int64_t offset,
                                 bool *take)
{
    *take = !p->done && offset < p->end;
    if (p->done)
        return;
    /* The last one of the range, or past it (the end was a control record
     * or a gap). */
    if (offset + 1 >= p->end)
        finish_part(c, p);
}

void pi_consumer__replay_eof(pi_consumer *c, const rd_kafka_message_t *rkm)
{
    part *p;

    if (rkm->rkt == NULL)
        return;
    p = pi_consumer__find_part(c, rd_kafka_topic_name(rkm->rkt), rkm->partition,
                               false);
    /* The log ends at or past the range's end: nothing more to read in it
     * (the offsets left were control records). */
    if (p && !p->done && rkm->offset >= p->end)
        finish_part(c, p);
}

bool pi_consumer__replay_finished(pi_consumer *c)
{
    return c->parts_done == c->parts_total && pi_consumer__buffered(c) == 0 &&
           pi_consumer__idle(c);
}

/* Messages of the ranges consumed so far. */
static int64_t consumed(const pi_consumer *c)
{
    int64_t sum = 0;

    for (size_t i = 0; i < c->n_parts; i++) {
        const part *p = &c->parts[i];
        if (p->end < 0 || p->end <= p->start)
            continue;
        sum += p->done ? p->end - p->start
                       : (p->next > p->start ? p->next - p->start : 0);
    }
    return sum;
}

void pi_consumer__replay_progress(pi_consumer *c, bool last)
{
    int64_t now = pi_mono_ms(), interval = c->progress_tty
                                               ? TTY_REFRESH_MS
                                               : c->cfg->stats_interval_ms;
    int64_t done = consumed(c), secs_x10;
    double pct, rate, eta;

    if (!last && (interval == 0 || now - c->progress_shown < interval))
        return;
    c->progress_shown = now;
    pct = c->replay_total ? 100.0 * (double)done / (double)c->replay_total
                          : 100.0;
    secs_x10 = (now - c->started_ms) / 100;
    rate = secs_x10 > 0 ? (double)done * 10.0 / (double)secs_x10 : 0.0;
    eta = rate > 0 ? (double)(c->replay_total - done) / rate : 0.0;
    if (c->progress_tty) {
        fprintf(stderr,
                "\rreplay %5.1f%%  %" PRId64 "/%" PRId64
                " messages  %.0f msg/s  ETA %02d:%02d  partitions %zu/%zu "
                "done\033[K%s",
                pct, done, c->replay_total, rate, (int)(eta / 60),
                (int)eta % 60, c->parts_done, c->parts_total, last ? "\n" : "");
        fflush(stderr);
        return;
    }
    pi_info("replay progress percent=%.1f messages=%" PRId64 " total=%" PRId64
            " rate=%.0f/s eta_s=%.0f partitions_done=%zu partitions=%zu "
            "stored=%" PRIu64 " duplicates=%" PRIu64 " rejected=%" PRIu64,
            pct, done, c->replay_total, rate, eta, c->parts_done,
            c->parts_total, c->total.stored, c->total.duplicates,
            c->total.rejected);
}
