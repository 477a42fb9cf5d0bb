/* rollup.h -- a thread that keeps the reports' rollup caught up
 *
 * Migration 0004 keeps asset_status's rollup (asset_state) off the writer's
 * hot path: the writer's statements only append the assets they touched to
 * presence_dirty, and `SELECT presence_rollup_refresh(n)` recomputes those
 * assets' rows. This thread runs it on its own connection every interval, so
 * `report status` finds little left to catch up. It never touches a lock a
 * writer's batch waits for (the catch-up reads presences and writes only the
 * rollup's tables), runs each call under a statement_timeout, takes at most
 * ROLLUP_MAX_ROWS statements' assets per call, and never blocks longer than
 * a slice of 100 ms (non-blocking libpq), so stopping it is prompt even
 * while the server is frozen; a failed connection or call is retried at the
 * next interval on a new connection. It catches up for at most one interval
 * at a time; while the writers are behind (pi_metrics_backlog_at: a backfill
 * or a backlog) it then rests three times as long as it worked, so it takes
 * at most a quarter of one database backend from them, and otherwise starts
 * again an interval after the last round started (a live stream's changes
 * as fresh as the fold allows). A call in progress when it stops is
 * cancelled on the server.
 */
#ifndef PRESENCE_ROLLUP_H
#define PRESENCE_ROLLUP_H

#include <stdint.h>

typedef struct pi_rollup pi_rollup;
typedef struct pi_metrics pi_metrics; /* metrics.h */

/* Start catching up conninfo's rollup (NULL: libpq's PG* environment;
 * copied) every interval_ms (> 0); a call running past timeout_ms is
 * cancelled by the server (statement_timeout) or abandoned. Never fails
 * (aborts when the thread cannot start). */
void pi_rollup_start(pi_rollup **out, const char *conninfo, int64_t interval_ms,
                     int64_t timeout_ms);

/* Publish the fleet gauges into m (metrics.h: pi_metrics_fleet) after each
 * catch-up while this thread's connection holds the fleet lock, a session
 * advisory lock that one instance at a time holds (tried after each
 * catch-up; it goes with the connection). m borrowed: stop the thread
 * before destroying it. */
void pi_rollup_publish_fleet(pi_rollup *r, pi_metrics *m);

/* Assets recomputed so far (for tests): the sum of what
 * presence_rollup_refresh returned. */
int64_t pi_rollup_assets(const pi_rollup *r);

/* As each round starts, measure the rollup's lag (presence_rollup_lag():
 * the age of the oldest change not caught up with, 0 when none; the most
 * it reached in the cycle) and give it to m (presence_rollup_lag_seconds);
 * m outlives the thread. */
void pi_rollup_set_metrics(pi_rollup *r, pi_metrics *m);

/* The lag last measured, in seconds; -1 before the first measurement. */
double pi_rollup_lag(const pi_rollup *r);

/* Stop the thread, close its connection, free. NULL is a no-op. */
void pi_rollup_stop(pi_rollup *r);

#endif
