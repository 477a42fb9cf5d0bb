/* jobs_int.h -- inside lib/jobs/: the fleet gauges the rollup thread
 * publishes (fleet.c)
 */
#ifndef PI_JOBS_INT_H
#define PI_JOBS_INT_H

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "presence/metrics.h"

/* Session advisory lock (on the rollup thread's connection) whose holder
 * publishes the fleet gauges: one instance at a time, the next one taking
 * over within a catch-up interval of the holder's connection closing.
 * (SQL text: it is only ever sent to the server.) */
#define PI_FLEET_LOCK_KEY "7304169482913377009"

typedef struct pi_jobs__fleet {
    bool leader;      /* this connection holds PI_FLEET_LOCK_KEY */
    int64_t last_seq; /* the seq the counts are of; -1: none yet */
    int64_t counts[3];
} pi_jobs__fleet;

/* After a catch-up on conn (idle, non-blocking): take the fleet lock if
 * not held yet; when held, count the fleet again if a change was recorded
 * since the last count, and publish into m. Gives up at deadline or on
 * *quit; a failure is only logged (debug): the next catch-up tries again.
 * m NULL: nothing is done. */
void pi_jobs__fleet_update(pi_jobs__fleet *f, PGconn *conn, pi_metrics *m,
                           int64_t deadline, const atomic_bool *quit);

/* conn was closed (the lock went with it): stop publishing. */
void pi_jobs__fleet_lost(pi_jobs__fleet *f, pi_metrics *m);

#endif
