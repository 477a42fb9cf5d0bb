/* metrics.h -- the service's counters, gauges and histograms, their
 * Prometheus exposition, and the liveness and readiness they imply
 *
 * Threads. Events are recorded where they happen: the consumer thread
 * (poll-loop ticks, rebalances, pause, each batch that comes back from the
 * writer), the writer thread (a write starting, a database error) and the
 * database probe (probe.h). A scrape (pi_metrics_write, pi_metrics_ready …)
 * runs on the HTTP thread and only reads C11 atomics: nothing takes a lock,
 * so a scrape never blocks the consumer or the writer, and a slow scrape
 * client only holds the HTTP thread. Figures recorded by one thread are
 * written with relaxed atomics; a scrape may see one batch's counters
 * half-added, never a torn value.
 *
 * Every pi_metrics_* recording function accepts m == NULL and then does
 * nothing: `load`, the tests and `run --http-listen off` pass NULL.
 *
 * Names are stable (dashboards and alerts depend on them) and documented in
 * docs/operations.md; the exposition is Prometheus text format 0.0.4.
 */
#ifndef PRESENCE_METRICS_H
#define PRESENCE_METRICS_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "presence/batch.h"
#include "presence/writer.h"

typedef struct pi_metrics pi_metrics;

/* At most this many partitions (and topics) are tracked for the lag gauge
 * and messages_total{topic}; more are counted in the totals only. */
#define PI_METRICS_MAX_PARTITIONS 4096
#define PI_METRICS_MAX_TOPICS 64

typedef enum pi_rebalance_kind {
    PI_REBALANCE_ASSIGN = 0,
    PI_REBALANCE_REVOKE,
    PI_REBALANCE_LOST,
    PI_REBALANCE__COUNT
} pi_rebalance_kind;

/* New, empty metrics. version is copied (build_info). stall_ms is the
 * --health-stall-ms threshold of pi_metrics_healthy / pi_metrics_ready.
 * Never fails (aborts on out-of-memory). */
void pi_metrics_new(pi_metrics **out, const char *version, int64_t stall_ms);
void pi_metrics_destroy(pi_metrics *m);

/* The consumer's handle, for the high watermarks of the lag gauge (read at
 * scrape time with rd_kafka_get_watermark_offsets, which does not block).
 * Borrowed: whoever serves scrapes must stop before rk is destroyed, so the
 * consumer sets it only once it can no longer fail (a failed
 * pi_consumer_new destroys its handle itself, under a running server). */
void pi_metrics_set_kafka(pi_metrics *m, rd_kafka_t *rk);

/* ---- recording: consumer thread ---------------------------------------- */

/* The poll loop is alive; now_ms on the monotonic clock. */
void pi_metrics_tick(pi_metrics *m, int64_t now_ms);

/* A rebalance callback (after it was handled: an assigned partition's
 * offset is where consuming starts, <0 when unknown). */
void pi_metrics_rebalance(pi_metrics *m, pi_rebalance_kind kind,
                          const rd_kafka_topic_partition_list_t *parts);

void pi_metrics_paused(pi_metrics *m, bool paused);
/* The consumer found a full batch waiting for a busy writer at now_ms
 * (pi_mono_ms): the writers are the bottleneck. */
void pi_metrics_backlog(pi_metrics *m, int64_t now_ms);
/* When the consumer last found its writers behind (pi_mono_ms); 0: never
 * (or m NULL). */
int64_t pi_metrics_backlog_at(pi_metrics *m);

/* A batch came back from the writer: rc 0 means committed, with stats its
 * figures (messages by topic, presences by outcome, rejects by code, the
 * batch histograms, event lag of its presences, the written positions). */
void pi_metrics_batch_done(pi_metrics *m, const pi_batch *batch, int rc,
                           const pi_write_stats *stats);

/* ---- recording: writer thread and probe -------------------------------- */

/* Writer number slot (pi_writer_opts.metrics_slot) started on a batch, or
 * is done with it (whatever the outcome). /readyz fails while any writer
 * has been on one batch for longer than the stall threshold. */
void pi_metrics_write_begin(pi_metrics *m, unsigned slot);
void pi_metrics_write_end(pi_metrics *m, unsigned slot);

/* A failed database statement or connection: sqlstate as libpq gives it
 * ("" when the connection was lost without one: counted as class 08).
 * retry: it will be retried (db_retries_total). */
void pi_metrics_db_error(pi_metrics *m, const char *sqlstate, bool retry);

/* The readiness probe's outcome: the database answered, or did not. */
void pi_metrics_db_probe(pi_metrics *m, bool ok);

/* The process needs no database (replay --dry-run): /readyz does not wait
 * for one. */
void pi_metrics_set_no_database(pi_metrics *m);

/* The rollup's lag (the rollup thread, as each round starts): the age in
 * seconds of the oldest presence_dirty row, 0 when none is pending.
 * Exported as presence_rollup_lag_seconds. NULL m: nothing. */
void pi_metrics_rollup_lag(pi_metrics *m, double seconds);

/* ---- recording: the rollup thread -------------------------------------- */

/* The fleet's §7 statuses as of the rollup's last catch-up (migration 0008:
 * asset_status_logged) and the last status change's seq, published as
 * presence_fleet_assets{state} and presence_fleet_status_changes_total.
 * Only the instance whose rollup thread holds the fleet lock (rollup.h)
 * publishes them; published false withdraws them (the families' HELP and
 * TYPE lines stay, with no sample), so a sum or max over instances counts
 * the fleet once. */
void pi_metrics_fleet(pi_metrics *m, bool published, int64_t online,
                      int64_t offline, int64_t declared, int64_t changes);

/* ---- reading: any thread ----------------------------------------------- */

/* Write the whole exposition (service metrics, then process_*) to out. */
void pi_metrics_write(pi_metrics *m, FILE *out);

/* Liveness: true while the poll loop ticked within stall_ms. Otherwise
 * false with a one-line reason. */
bool pi_metrics_healthy(pi_metrics *m, char *reason, size_t size);

/* Readiness: in the group (assigned, or idle with no partitions), the
 * database answered within stall_ms and not failed since, the writer not on
 * one batch for longer than stall_ms, and live. Otherwise false with a
 * one-line reason. */
bool pi_metrics_ready(pi_metrics *m, char *reason, size_t size);

#endif
