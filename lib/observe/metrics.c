/* metrics.c -- lock-free counters and histograms, and the health rules */
#include "presence/metrics.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "observe_int.h"
#include "presence/mem.h"
#include "presence/times.h"

static const double batch_messages_bounds[] = {
    1, 10, 100, 500, 1000, 2500, 5000, 10000, 100000, 1000000};
static const double write_seconds_bounds[] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
static const double event_lag_bounds[] = {
    0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400};

static double wall_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static void hist_init(histogram *h, const double *bounds, size_t n)
{
    h->bounds = bounds;
    h->n_bounds = n;
    for (size_t i = 0; i <= N_BOUNDS_MAX; i++)
        atomic_init(&h->counts[i], 0);
    atomic_init(&h->sum, 0.0);
}

static size_t hist_bucket(const histogram *h, double v)
{
    size_t i = 0;

    while (i < h->n_bounds && v > h->bounds[i])
        i++;
    return i;
}

/* Add local per-bucket counts and their sum (one writer thread). */
static void hist_add(histogram *h, const uint64_t *counts, double sum)
{
    for (size_t i = 0; i <= h->n_bounds; i++) {
        if (counts[i])
            add(&h->counts[i], counts[i]);
    }
    atomic_store_explicit(
        &h->sum, atomic_load_explicit(&h->sum, memory_order_relaxed) + sum,
        memory_order_relaxed);
}

static void hist_observe(histogram *h, double v)
{
    uint64_t counts[N_BOUNDS_MAX + 1] = {0};

    counts[hist_bucket(h, v)] = 1;
    hist_add(h, counts, v);
}

/* The process's start from /proc (field 22 of /proc/self/stat, in clock
 * ticks since boot, plus the boot time); now when it cannot be read. */
static double process_start_time(void)
{
    char buf[1024], *p;
    unsigned long long start = 0, btime = 0;
    FILE *f = fopen("/proc/self/stat", "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    long hz = sysconf(_SC_CLK_TCK);

    if (f)
        fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (p == NULL ||
        sscanf(p + 2,
               "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u "
               "%*d %*d %*d %*d %*d %*d %llu",
               &start) != 1)
        return wall_seconds();
    f = fopen("/proc/stat", "r");
    if (f == NULL)
        return wall_seconds();
    while (fgets(buf, sizeof(buf), f)) {
        if (sscanf(buf, "btime %llu", &btime) == 1)
            break;
    }
    fclose(f);
    if (btime == 0 || hz <= 0)
        return wall_seconds();
    return (double)btime + (double)start / (double)hz;
}

void pi_metrics_new(pi_metrics **out, const char *version, int64_t stall_ms)
{
    pi_metrics *m = pi_calloc(1, sizeof(*m));

    m->version = pi_strdup(version);
    m->stall_ms = stall_ms;
    m->start_time = process_start_time();
    m->parts = pi_calloc(PI_METRICS_MAX_PARTITIONS, sizeof(*m->parts));
    hist_init(&m->batch_messages, batch_messages_bounds,
              sizeof(batch_messages_bounds) / sizeof(double));
    hist_init(&m->write_seconds, write_seconds_bounds,
              sizeof(write_seconds_bounds) / sizeof(double));
    hist_init(&m->event_lag, event_lag_bounds,
              sizeof(event_lag_bounds) / sizeof(double));
    atomic_store(&m->created_ms, pi_mono_ms());
    *out = m;
}

void pi_metrics_destroy(pi_metrics *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < atomic_load(&m->n_topics); i++)
        free(m->topics[i].name);
    free(m->parts);
    free(m->version);
    free(m);
}

void pi_metrics_set_kafka(pi_metrics *m, rd_kafka_t *rk)
{
    if (m)
        atomic_store(&m->rk, rk);
}

/* ---- consumer thread ---------------------------------------------------- */

void pi_metrics_tick(pi_metrics *m, int64_t now_ms)
{
    if (m)
        atomic_store_explicit(&m->tick_ms, now_ms, memory_order_relaxed);
}

/* The topic's slot, created if there is room; -1 when there is none. */
static int topic_index(pi_metrics *m, const char *name)
{
    size_t n = atomic_load_explicit(&m->n_topics, memory_order_relaxed);

    for (size_t i = 0; i < n; i++) {
        if (strcmp(m->topics[i].name, name) == 0)
            return (int)i;
    }
    if (n == PI_METRICS_MAX_TOPICS)
        return -1;
    m->topics[n].name = pi_strdup(name);
    atomic_init(&m->topics[n].messages, 0);
    atomic_store_explicit(&m->n_topics, n + 1, memory_order_release);
    return (int)n;
}

static part_slot *part_find(pi_metrics *m, const char *topic, int32_t partition,
                            bool create)
{
    int t = topic_index(m, topic);
    size_t n = atomic_load_explicit(&m->n_parts, memory_order_relaxed);
    part_slot *p;

    if (t < 0)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (m->parts[i].topic == (uint32_t)t &&
            m->parts[i].partition == partition)
            return &m->parts[i];
    }
    if (!create || n == PI_METRICS_MAX_PARTITIONS)
        return NULL;
    p = &m->parts[n];
    p->topic = (uint32_t)t;
    p->partition = partition;
    atomic_init(&p->assigned, false);
    atomic_init(&p->next, -1);
    atomic_store_explicit(&m->n_parts, n + 1, memory_order_release);
    return p;
}

void pi_metrics_rebalance(pi_metrics *m, pi_rebalance_kind kind,
                          const rd_kafka_topic_partition_list_t *parts)
{
    if (m == NULL)
        return;
    add(&m->rebalances[kind], 1);
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &parts->elems[i];
        part_slot *p =
            part_find(m, tp->topic, tp->partition, kind == PI_REBALANCE_ASSIGN);
        if (p == NULL)
            continue;
        if (kind == PI_REBALANCE_ASSIGN)
            atomic_store(&p->next, tp->offset >= 0 ? tp->offset : -1);
        atomic_store(&p->assigned, kind == PI_REBALANCE_ASSIGN);
    }
}

void pi_metrics_paused(pi_metrics *m, bool paused)
{
    if (m)
        atomic_store(&m->paused, paused);
}

void pi_metrics_backlog(pi_metrics *m, int64_t now_ms)
{
    if (m)
        atomic_store(&m->backlog_at, now_ms);
}

int64_t pi_metrics_backlog_at(pi_metrics *m)
{
    return m ? atomic_load(&m->backlog_at) : 0;
}

static void count_batch(pi_metrics *m, const pi_batch *batch, double now)
{
    const pi_decode_result *res = pi_batch_result(batch);
    size_t n_msgs = pi_batch_messages(batch), n_pos;
    const pi_position *pos = pi_batch_positions(batch, &n_pos);
    uint64_t counts[N_BOUNDS_MAX + 1] = {0};
    uint64_t per_topic[8] = {0};
    double sum = 0;

    /* Messages by topic: a batch seldom holds more than a few topics; the
     * rare ones past the eighth are looked up one by one. */
    for (size_t i = 0; i < n_msgs; i++) {
        uint32_t t = pi_batch_msg(batch, (uint32_t)i)->topic;
        if (t < 8) {
            per_topic[t]++;
        } else {
            int k = topic_index(m, pi_batch_topic(batch, t));
            if (k >= 0)
                add(&m->topics[k].messages, 1);
        }
    }
    for (uint32_t t = 0; t < 8; t++) {
        int k;
        if (per_topic[t] == 0)
            continue;
        k = topic_index(m, pi_batch_topic(batch, t));
        if (k >= 0)
            add(&m->topics[k].messages, per_topic[t]);
    }
    for (size_t i = 0; i < res->n_presences; i++) {
        double lag = now - (double)res->presences[i].time_us / 1e6;
        if (lag < 0)
            lag = 0; /* a clock ahead of ours */
        counts[hist_bucket(&m->event_lag, lag)]++;
        sum += lag;
    }
    hist_add(&m->event_lag, counts, sum);
    for (size_t i = 0; i < n_pos; i++) {
        part_slot *p = part_find(m, pi_batch_topic(batch, pos[i].topic),
                                 pos[i].partition, false);
        /* Batches of a partition are written in order, so the latest is
         * the position, even one below the last (read again after the
         * database lost commits). */
        if (p)
            atomic_store(&p->next, pos[i].next_offset);
    }
}

void pi_metrics_batch_done(pi_metrics *m, const pi_batch *batch, int rc,
                           const pi_write_stats *stats)
{
    double now;

    if (m == NULL)
        return;
    if (rc != 0 || stats->batches == 0)
        return;
    now = wall_seconds();
    add(&m->stored, stats->stored);
    add(&m->duplicates, stats->duplicates);
    add(&m->conflicts, stats->conflicts);
    add(&m->rejected, stats->rejected);
    add(&m->skipped, stats->skipped);
    for (int i = 0; i < PI_REJ__COUNT; i++) {
        if (stats->rejects_by_code[i])
            add(&m->rejects[i], stats->rejects_by_code[i]);
    }
    add(&m->batches, stats->batches);
    hist_observe(&m->batch_messages, (double)stats->messages);
    hist_observe(&m->write_seconds, (double)stats->write_us / 1e6);
    count_batch(m, batch, now);
    atomic_store(&m->last_commit, now);
    atomic_store(&m->db_ok_ms, pi_mono_ms());
}

/* ---- writer thread and probe ------------------------------------------- */

void pi_metrics_write_begin(pi_metrics *m, unsigned slot)
{
    if (m)
        atomic_store(&m->writing_ms[slot % PI_METRICS_WRITERS], pi_mono_ms());
}

void pi_metrics_write_end(pi_metrics *m, unsigned slot)
{
    if (m)
        atomic_store(&m->writing_ms[slot % PI_METRICS_WRITERS], 0);
}

static int class_index(const char *sqlstate)
{
    int idx = 0;

    if (sqlstate == NULL || strlen(sqlstate) < 2)
        sqlstate = "08";
    for (int i = 0; i < 2; i++) {
        char ch = sqlstate[i];
        int d = ch >= '0' && ch <= '9'   ? ch - '0'
                : ch >= 'A' && ch <= 'Z' ? ch - 'A' + 10
                                         : -1;
        if (d < 0)
            return 8; /* not a SQLSTATE: a connection problem */
        idx = idx * 36 + d;
    }
    return idx;
}

void pi_metrics_db_error(pi_metrics *m, const char *sqlstate, bool retry)
{
    int idx;

    if (m == NULL)
        return;
    idx = class_index(sqlstate);
    add(&m->db_errors[idx], 1);
    if (retry)
        add(&m->db_retries, 1);
    atomic_store(&m->db_err_ms, pi_mono_ms());
}

void pi_metrics_db_probe(pi_metrics *m, bool ok)
{
    if (m)
        atomic_store(ok ? &m->db_ok_ms : &m->db_err_ms, pi_mono_ms());
}

void pi_metrics_rollup_lag(pi_metrics *m, double seconds)
{
    if (m)
        atomic_store(&m->rollup_lag, seconds);
}

void pi_metrics_set_no_database(pi_metrics *m)
{
    if (m)
        atomic_store(&m->no_database, true);
}

void pi_metrics_fleet(pi_metrics *m, bool published, int64_t online,
                      int64_t offline, int64_t declared, int64_t changes)
{
    if (m == NULL)
        return;
    atomic_store(&m->fleet[0], online);
    atomic_store(&m->fleet[1], offline);
    atomic_store(&m->fleet[2], declared);
    atomic_store(&m->fleet_changes, changes);
    atomic_store(&m->fleet_published, published);
}

/* ---- health -------------------------------------------------------------- */

bool pi_metrics_healthy(pi_metrics *m, char *reason, size_t size)
{
    int64_t now = pi_mono_ms(), tick = atomic_load(&m->tick_ms);

    if (tick == 0)
        tick = atomic_load(&m->created_ms); /* starting: grace of stall_ms */
    if (now - tick > m->stall_ms) {
        snprintf(reason, size, "poll loop has not ticked for %" PRId64 " ms",
                 now - tick);
        return false;
    }
    snprintf(reason, size, "ok");
    return true;
}

bool pi_metrics_ready(pi_metrics *m, char *reason, size_t size)
{
    int64_t now = pi_mono_ms(), ok = atomic_load(&m->db_ok_ms);
    int64_t bad = atomic_load(&m->db_err_ms);
    int64_t writing = 0;

    for (int i = 0; i < PI_METRICS_WRITERS; i++) {
        int64_t t = atomic_load(&m->writing_ms[i]);
        if (t && (writing == 0 || t < writing))
            writing = t;
    }
    if (!pi_metrics_healthy(m, reason, size))
        return false;
    if (mx_get(&m->rebalances[PI_REBALANCE_ASSIGN]) == 0) {
        snprintf(reason, size, "not in the consumer group yet");
        return false;
    }
    if (atomic_load(&m->no_database))
        ok = bad = now; /* nothing to wait for */
    if (ok == 0) {
        snprintf(reason, size, "the database has not answered yet");
        return false;
    }
    if (bad > ok) {
        snprintf(reason, size,
                 "the database failed %" PRId64 " ms ago and has not "
                 "answered since",
                 now - bad);
        return false;
    }
    if (now - ok > m->stall_ms) {
        snprintf(reason, size,
                 "the database has not answered for %" PRId64 " ms", now - ok);
        return false;
    }
    if (writing && now - writing > m->stall_ms) {
        snprintf(reason, size,
                 "the writer has been on one batch for %" PRId64 " ms",
                 now - writing);
        return false;
    }
    snprintf(reason, size, "ok");
    return true;
}
