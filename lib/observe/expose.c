/* expose.c -- pi_metrics as Prometheus text format 0.0.4 */
#include <dirent.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "observe_int.h"

static void class_name(int idx, char out[3])
{
    static const char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

    out[0] = digits[idx / 36];
    out[1] = digits[idx % 36];
    out[2] = '\0';
}

static void header(FILE *out, const char *name, const char *type,
                   const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value, escaped as the text format wants (\\, \", \n). */
static void label_value(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            fputc('\\', out), fputc(*s, out);
        else if (*s == '\n')
            fputs("\\n", out);
        else
            fputc(*s, out);
    }
}

static void write_hist(FILE *out, histogram *h, const char *name,
                       const char *help)
{
    uint64_t cum = 0;

    header(out, name, "histogram", help);
    for (size_t i = 0; i <= h->n_bounds; i++) {
        cum += mx_get(&h->counts[i]);
        if (i < h->n_bounds)
            fprintf(out, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name,
                    h->bounds[i], cum);
        else
            fprintf(out, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, cum);
    }
    fprintf(out, "%s_sum %.15g\n%s_count %" PRIu64 "\n", name,
            atomic_load_explicit(&h->sum, memory_order_relaxed), name, cum);
}

static void write_lag(pi_metrics *m, FILE *out)
{
    rd_kafka_t *rk = atomic_load(&m->rk);
    size_t n = atomic_load_explicit(&m->n_parts, memory_order_acquire);
    uint64_t assigned = 0;

    header(out, "presence_ingest_consumer_lag_messages", "gauge",
           "High watermark minus the next offset to write, per assigned "
           "partition.");
    for (size_t i = 0; i < n; i++) {
        part_slot *p = &m->parts[i];
        int64_t lo = -1, hi = -1, next = atomic_load(&p->next);

        if (!atomic_load(&p->assigned))
            continue;
        assigned++;
        if (rk == NULL ||
            rd_kafka_get_watermark_offsets(rk, m->topics[p->topic].name,
                                           p->partition, &lo, &hi) != 0 ||
            hi < 0)
            continue; /* not fetched yet: unknown, not 0 */
        if (next < 0)
            next = lo >= 0 ? lo : 0;
        fputs("presence_ingest_consumer_lag_messages{topic=\"", out);
        label_value(out, m->topics[p->topic].name);
        fprintf(out, "\",partition=\"%d\"} %" PRId64 "\n", (int)p->partition,
                hi > next ? hi - next : 0);
    }
    header(out, "presence_ingest_assigned_partitions", "gauge",
           "Partitions assigned to this instance.");
    fprintf(out, "presence_ingest_assigned_partitions %" PRIu64 "\n", assigned);
}

static void write_process(pi_metrics *m, FILE *out)
{
    struct rusage ru;
    long page = sysconf(_SC_PAGESIZE);
    unsigned long long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    DIR *dir;
    int fds = 0;

    if (f) {
        if (fscanf(f, "%llu %llu", &size, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    header(out, "process_resident_memory_bytes", "gauge",
           "Resident memory size in bytes.");
    fprintf(out, "process_resident_memory_bytes %llu\n",
            resident * (unsigned long long)page);
    getrusage(RUSAGE_SELF, &ru);
    header(out, "process_cpu_seconds_total", "counter",
           "Total user and system CPU time spent in seconds.");
    fprintf(out, "process_cpu_seconds_total %.6f\n",
            (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    header(out, "process_start_time_seconds", "gauge",
           "Start time of the process since unix epoch in seconds.");
    fprintf(out, "process_start_time_seconds %.3f\n", m->start_time);
    dir = opendir("/proc/self/fd");
    if (dir) {
        while (readdir(dir))
            fds++;
        closedir(dir);
        fds -= 3; /* ".", ".." and the directory's own descriptor */
    }
    header(out, "process_open_fds", "gauge",
           "Number of open file descriptors.");
    fprintf(out, "process_open_fds %d\n", fds > 0 ? fds : 0);
}

/* The fleet gauges: samples only from the instance that publishes them. */
static void write_fleet(pi_metrics *m, FILE *out)
{
    static const char *const states[] = {"online", "offline", "declared"};
    bool on = atomic_load(&m->fleet_published);

    header(out, "presence_fleet_assets", "gauge",
           "Assets by CONTRACT 7 status as of the rollup's last catch-up "
           "(only the instance holding the fleet lock publishes it).");
    for (int i = 0; on && i < 3; i++)
        fprintf(out, "presence_fleet_assets{state=\"%s\"} %" PRId64 "\n",
                states[i], atomic_load(&m->fleet[i]));
    header(out, "presence_fleet_status_changes_total", "counter",
           "Sequence number of the last recorded status change "
           "(asset_status_changes.seq; same instance).");
    if (on)
        fprintf(out, "presence_fleet_status_changes_total %" PRId64 "\n",
                atomic_load(&m->fleet_changes));
}

void pi_metrics_write(pi_metrics *m, FILE *out)
{
    static const char *const outcomes[] = {"stored", "duplicate", "conflict",
                                           "rejected", "skipped"};
    static const char *const kinds[] = {"assign", "revoke", "lost"};
    _Atomic uint64_t *by_outcome[] = {&m->stored, &m->duplicates, &m->conflicts,
                                      &m->rejected, &m->skipped};
    size_t n_topics = atomic_load_explicit(&m->n_topics, memory_order_acquire);
    char cls[3];

    header(out, "presence_ingest_messages_total", "counter",
           "Kafka messages written (in committed batches), by topic.");
    for (size_t i = 0; i < n_topics; i++) {
        fputs("presence_ingest_messages_total{topic=\"", out);
        label_value(out, m->topics[i].name);
        fprintf(out, "\"} %" PRIu64 "\n", mx_get(&m->topics[i].messages));
    }
    header(out, "presence_ingest_presences_total", "counter",
           "Presences (array elements) written, by outcome.");
    for (size_t i = 0; i < 5; i++)
        fprintf(out,
                "presence_ingest_presences_total{outcome=\"%s\"} %" PRIu64 "\n",
                outcomes[i], mx_get(by_outcome[i]));
    header(out, "presence_ingest_rejects_total", "counter",
           "Rows recorded in presence_rejects, by CONTRACT code.");
    for (int i = 0; i < PI_REJ__COUNT; i++)
        fprintf(out, "presence_ingest_rejects_total{code=\"%s\"} %" PRIu64 "\n",
                pi_reject_code_name((pi_reject_code)i), mx_get(&m->rejects[i]));
    header(out, "presence_ingest_batches_total", "counter",
           "Batches committed (one transaction each).");
    fprintf(out, "presence_ingest_batches_total %" PRIu64 "\n",
            mx_get(&m->batches));
    write_hist(out, &m->batch_messages, "presence_ingest_batch_messages",
               "Messages per committed batch.");
    write_hist(out, &m->write_seconds, "presence_ingest_batch_write_seconds",
               "Duration of a batch's transaction, BEGIN to COMMIT.");
    write_hist(out, &m->event_lag, "presence_ingest_event_lag_seconds",
               "Commit time minus the presence's time, per presence.");
    write_lag(m, out);
    header(out, "presence_ingest_paused", "gauge",
           "1 while fetching is paused because the writer is behind.");
    fprintf(out, "presence_ingest_paused %d\n",
            atomic_load(&m->paused) ? 1 : 0);
    header(out, "presence_ingest_rebalances_total", "counter",
           "Consumer group rebalance callbacks, by kind.");
    for (int i = 0; i < PI_REBALANCE__COUNT; i++)
        fprintf(out,
                "presence_ingest_rebalances_total{kind=\"%s\"} %" PRIu64 "\n",
                kinds[i], mx_get(&m->rebalances[i]));
    header(out, "presence_ingest_db_errors_total", "counter",
           "Failed database statements or connections, by SQLSTATE class.");
    for (int i = 0; i < N_CLASSES; i++) {
        uint64_t v = mx_get(&m->db_errors[i]);
        if (v == 0 && i != 8) /* class 08 always, for rate() */
            continue;
        class_name(i, cls);
        fprintf(out,
                "presence_ingest_db_errors_total{class=\"%s\"} %" PRIu64 "\n",
                cls, v);
    }
    header(out, "presence_ingest_db_retries_total", "counter",
           "Database operations retried after a transient failure.");
    fprintf(out, "presence_ingest_db_retries_total %" PRIu64 "\n",
            mx_get(&m->db_retries));
    header(out, "presence_ingest_last_commit_timestamp_seconds", "gauge",
           "When the last batch committed, seconds since the epoch (0: none "
           "yet).");
    fprintf(out, "presence_ingest_last_commit_timestamp_seconds %.3f\n",
            atomic_load(&m->last_commit));
    header(out, "presence_rollup_lag_seconds", "gauge",
           "Age of the oldest change the rollup has not caught up with "
           "(presence_rollup_lag(); 0: none pending or no catch-up here).");
    fprintf(out, "presence_rollup_lag_seconds %.3f\n",
            atomic_load(&m->rollup_lag));
    header(out, "presence_ingest_build_info", "gauge",
           "Always 1; the version is a label.");
    fputs("presence_ingest_build_info{version=\"", out);
    label_value(out, m->version);
    fputs("\"} 1\n", out);
    write_fleet(m, out);
    write_process(m, out);
}
