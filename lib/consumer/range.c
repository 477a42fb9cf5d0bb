/* range.c -- a replay's range: options to per-partition [start, end) */
#include "presence/replay.h"
#include "presence/times.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "presence/mem.h"
#include "presence/report.h"

#define BROKER_TIMEOUT_MS 10000

int64_t pi_replay_parse_time(const char *s, int64_t now_ms)
{
    pi_err err;
    int64_t us;

    /* The reports' TIME syntax, one parser for both commands; Kafka
     * timestamps start at the epoch (below it are its special values). */
    if (pi_time_parse(&us, "TIME", s, now_ms * 1000, &err) != 0 || us < 0)
        return -1;
    return us / 1000;
}

/* A non-negative decimal integer, the whole of s. */
static int parse_u63(const char *s, size_t len, int64_t *out)
{
    int64_t v = 0;

    if (len == 0 || len > 18)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* "0:100,2:300" */
static int parse_pairs(const char *s, const char *name, pi_replay_end *e,
                       pi_err *err)
{
    size_t cap = 0;

    while (*s) {
        size_t len = strcspn(s, ","), colon = strcspn(s, ":");
        int64_t p, off;

        if (colon >= len || parse_u63(s, colon, &p) != 0 || p > INT32_MAX ||
            parse_u63(s + colon + 1, len - colon - 1, &off) != 0)
            return pi_err_set(err, PI_EINVAL,
                              "--%s: expected PARTITION:OFFSET[,…], got '%.*s'",
                              name, (int)len, s);
        for (size_t i = 0; i < e->n_list; i++) {
            if (e->list[i].partition == (int32_t)p)
                return pi_err_set(err, PI_EINVAL,
                                  "--%s: partition %" PRId64 " given twice",
                                  name, p);
        }
        pi_grow((void **)&e->list, &cap, e->n_list + 1, sizeof(*e->list));
        e->list[e->n_list++] = (pi_replay_pair){(int32_t)p, off};
        s += len;
        if (*s == ',')
            s++;
    }
    if (e->n_list == 0)
        return pi_err_set(err, PI_EINVAL, "--%s: empty list", name);
    return 0;
}

/* One end from its three spellings (time, offset, offsets); at most one. */
static int parse_end(pi_replay_end *e, const char *which, const char *time,
                     const char *offset, const char *offsets, int64_t now_ms,
                     pi_err *err)
{
    int given = (time != NULL) + (offset != NULL) + (offsets != NULL);

    memset(e, 0, sizeof(*e));
    if (given > 1)
        return pi_err_set(err, PI_EINVAL,
                          "--%s, --%s-offset and --%s-offsets exclude each "
                          "other: give one",
                          which, which, which);
    if (time) {
        e->kind = PI_REPLAY_TIME;
        e->time_ms = pi_replay_parse_time(time, now_ms);
        if (e->time_ms < 0)
            return pi_err_set(err, PI_EINVAL,
                              "--%s: '%s' is not an RFC 3339 time or a "
                              "relative one like -2h or -7d",
                              which, time);
    } else if (offset) {
        e->kind = PI_REPLAY_OFFSET;
        if (parse_u63(offset, strlen(offset), &e->offset) != 0)
            return pi_err_set(err, PI_EINVAL,
                              "--%s-offset: '%s' is not an offset", which,
                              offset);
    } else if (offsets) {
        char name[16];
        snprintf(name, sizeof(name), "%s-offsets", which);
        e->kind = PI_REPLAY_OFFSETS;
        return parse_pairs(offsets, name, e, err);
    }
    return 0;
}

static int parse_partitions(pi_replay_spec *spec, const char *s, pi_err *err)
{
    size_t cap = 0;

    while (*s) {
        size_t len = strcspn(s, ",");
        int64_t p;

        if (parse_u63(s, len, &p) != 0 || p > INT32_MAX)
            return pi_err_set(err, PI_EINVAL,
                              "--partitions: expected a list like 0,2,5, got "
                              "'%.*s'",
                              (int)len, s);
        pi_grow((void **)&spec->partitions, &cap, spec->n_partitions + 1,
                sizeof(*spec->partitions));
        spec->partitions[spec->n_partitions++] = (int32_t)p;
        s += len;
        if (*s == ',')
            s++;
    }
    if (spec->n_partitions == 0)
        return pi_err_set(err, PI_EINVAL, "--partitions: empty list");
    return 0;
}

/* The offset an OFFSETS end gives partition p, or -1 (not listed). */
static int64_t listed(const pi_replay_end *e, int32_t p)
{
    for (size_t i = 0; i < e->n_list; i++) {
        if (e->list[i].partition == p)
            return e->list[i].offset;
    }
    return -1;
}

int pi_replay_spec_parse(pi_replay_spec *spec, const pi_config *cfg,
                         int64_t now_ms, pi_err *err)
{
    int rc;

    memset(spec, 0, sizeof(*spec));
    if (cfg->from_beginning &&
        (cfg->replay_from || cfg->from_offset || cfg->from_offsets))
        return pi_err_set(err, PI_EINVAL,
                          "--from-beginning excludes --from, --from-offset "
                          "and --from-offsets");
    rc = parse_end(&spec->from, "from", cfg->replay_from, cfg->from_offset,
                   cfg->from_offsets, now_ms, err);
    if (rc == 0)
        rc = parse_end(&spec->to, "to", cfg->replay_to, cfg->to_offset,
                       cfg->to_offsets, now_ms, err);
    if (rc == 0 && cfg->partitions)
        rc = parse_partitions(spec, cfg->partitions, err);
    if (rc)
        return rc;
    if (spec->from.kind == PI_REPLAY_TIME && spec->to.kind == PI_REPLAY_TIME &&
        spec->to.time_ms < spec->from.time_ms)
        return pi_err_set(err, PI_EINVAL, "--to (%s) is before --from (%s)",
                          cfg->replay_to, cfg->replay_from);
    if (spec->from.kind == PI_REPLAY_OFFSET &&
        spec->to.kind == PI_REPLAY_OFFSET &&
        spec->to.offset < spec->from.offset)
        return pi_err_set(err, PI_EINVAL,
                          "--to-offset %" PRId64
                          " is before --from-offset %" PRId64,
                          spec->to.offset, spec->from.offset);
    for (size_t i = 0; i < spec->to.n_list; i++) {
        int32_t p = spec->to.list[i].partition;
        int64_t from = spec->from.kind == PI_REPLAY_OFFSET
                           ? spec->from.offset
                           : listed(&spec->from, p);
        if (from > spec->to.list[i].offset)
            return pi_err_set(err, PI_EINVAL,
                              "--to-offsets %d:%" PRId64
                              " is before its start offset %" PRId64,
                              (int)p, spec->to.list[i].offset, from);
    }
    if (spec->to.kind == PI_REPLAY_OFFSET) {
        for (size_t i = 0; i < spec->from.n_list; i++) {
            if (spec->from.list[i].offset > spec->to.offset)
                return pi_err_set(err, PI_EINVAL,
                                  "--to-offset %" PRId64
                                  " is before --from-offsets %d:%" PRId64,
                                  spec->to.offset,
                                  (int)spec->from.list[i].partition,
                                  spec->from.list[i].offset);
        }
    }
    return 0;
}

void pi_replay_spec_fini(pi_replay_spec *spec)
{
    free(spec->from.list);
    free(spec->to.list);
    free(spec->partitions);
    memset(spec, 0, sizeof(*spec));
}

/* The offsets of the first messages at or after time_ms, for every range;
 * -1 where there is none (the caller uses the high watermark). */
static int offsets_at(rd_kafka_t *rk, const char *topic, int64_t time_ms,
                      const pi_replay_range *ranges, size_t n, int64_t *out,
                      pi_err *err)
{
    rd_kafka_topic_partition_list_t *list =
        rd_kafka_topic_partition_list_new((int)n);
    rd_kafka_resp_err_t kerr;

    for (size_t i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(list, topic, ranges[i].partition)
            ->offset = time_ms;
    kerr = rd_kafka_offsets_for_times(rk, list, BROKER_TIMEOUT_MS);
    if (kerr) {
        rd_kafka_topic_partition_list_destroy(list);
        return pi_err_set(err, PI_ERETRY,
                          "kafka: looking up offsets by time in %s: %s", topic,
                          rd_kafka_err2str(kerr));
    }
    for (size_t i = 0; i < n; i++) {
        const rd_kafka_topic_partition_t *tp = &list->elems[i];
        out[i] = tp->err ? -1 : tp->offset;
    }
    rd_kafka_topic_partition_list_destroy(list);
    return 0;
}

static int64_t clamp(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Which partitions: all the topic has, or the listed ones (each must
 * exist). */
static int select_partitions(const struct rd_kafka_metadata_topic *mt,
                             const char *topic, const pi_replay_spec *spec,
                             pi_replay_range **out, size_t *n, pi_err *err)
{
    size_t want =
        spec->n_partitions ? spec->n_partitions : (size_t)mt->partition_cnt;
    pi_replay_range *r = pi_calloc(want ? want : 1, sizeof(*r));

    for (size_t i = 0; i < want; i++) {
        int32_t p =
            spec->n_partitions ? spec->partitions[i] : mt->partitions[i].id;
        bool found = false;
        for (int j = 0; j < mt->partition_cnt && !found; j++)
            found = mt->partitions[j].id == p;
        if (!found) {
            free(r);
            return pi_err_set(err, PI_EINVAL,
                              "--partitions: topic %s has no partition %d "
                              "(it has %d: 0 to %d)",
                              topic, (int)p, mt->partition_cnt,
                              mt->partition_cnt - 1);
        }
        r[i].partition = p;
    }
    /* In partition order, for a stable summary and progress. */
    for (size_t i = 1; i < want; i++) {
        for (size_t j = i; j > 0 && r[j - 1].partition > r[j].partition; j--) {
            pi_replay_range t = r[j];
            r[j] = r[j - 1];
            r[j - 1] = t;
        }
    }
    *out = r;
    *n = want;
    return 0;
}

int pi_replay_resolve(rd_kafka_t *rk, const char *topic,
                      const pi_replay_spec *spec, pi_replay_range **out,
                      size_t *n_out, pi_err *err)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t kerr;
    pi_replay_range *r = NULL;
    int64_t *lo = NULL, *hi = NULL, *at = NULL;
    size_t n = 0;
    int rc = 0;

    *out = NULL;
    *n_out = 0;
    kerr = rd_kafka_metadata(rk, 0, rkt, &md, BROKER_TIMEOUT_MS);
    if (kerr) {
        rc = pi_err_set(err, PI_ERETRY, "kafka: metadata of %s: %s", topic,
                        rd_kafka_err2str(kerr));
        goto cleanup;
    }
    if (md->topic_cnt != 1 || md->topics[0].err) {
        rc = pi_err_set(err, PI_EINVAL, "--topic: topic '%s' does not exist",
                        topic);
        goto cleanup;
    }
    rc = select_partitions(&md->topics[0], topic, spec, &r, &n, err);
    if (rc)
        goto cleanup;
    lo = pi_calloc(n ? n : 1, sizeof(*lo));
    hi = pi_calloc(n ? n : 1, sizeof(*hi));
    at = pi_calloc(n ? n : 1, sizeof(*at));
    for (size_t i = 0; i < n; i++) {
        kerr = rd_kafka_query_watermark_offsets(
            rk, topic, r[i].partition, &lo[i], &hi[i], BROKER_TIMEOUT_MS);
        if (kerr) {
            rc = pi_err_set(err, PI_ERETRY, "kafka: watermarks of %s[%d]: %s",
                            topic, (int)r[i].partition, rd_kafka_err2str(kerr));
            goto cleanup;
        }
    }
    /* Start, then end (exclusive), at most the high watermark taken now. */
    for (int end = 0; end < 2; end++) {
        const pi_replay_end *e = end ? &spec->to : &spec->from;
        if (e->kind == PI_REPLAY_TIME) {
            rc = offsets_at(rk, topic, e->time_ms, r, n, at, err);
            if (rc)
                goto cleanup;
        }
        for (size_t i = 0; i < n; i++) {
            int64_t o = end ? hi[i] : lo[i];
            if (e->kind == PI_REPLAY_TIME)
                o = at[i] >= 0 ? at[i] : hi[i];
            else if (e->kind == PI_REPLAY_OFFSET)
                o = e->offset;
            else if (e->kind == PI_REPLAY_OFFSETS &&
                     listed(e, r[i].partition) >= 0)
                o = listed(e, r[i].partition);
            if (end) {
                r[i].end = clamp(o, lo[i], hi[i]);
            } else {
                if (o < lo[i])
                    r[i].missing = lo[i] - o;
                r[i].start = clamp(o, lo[i], hi[i]);
            }
        }
    }
    *out = r;
    *n_out = n;
    r = NULL;
cleanup:
    free(r);
    free(lo);
    free(hi);
    free(at);
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return rc;
}
