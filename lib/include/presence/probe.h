/* probe.h -- a thread that checks the database answers, for /readyz
 *
 * An idle service writes nothing, so the writer alone cannot tell whether
 * the database is there. The probe keeps its own connection and runs
 * `SELECT 1` every interval, recording the outcome with
 * pi_metrics_db_probe. It never blocks longer than a slice of 100 ms on
 * anything (connect and query are non-blocking libpq), so stopping it is
 * prompt even while the server is frozen.
 */
#ifndef PRESENCE_PROBE_H
#define PRESENCE_PROBE_H

#include <stdint.h>

#include "presence/metrics.h"

typedef struct pi_probe pi_probe;

/* Start probing conninfo (NULL: libpq's PG* environment; copied) every
 * interval_ms; an attempt that takes longer than timeout_ms counts as a
 * failure. m is borrowed and must outlive the probe. Never fails (aborts
 * when the thread cannot start). */
void pi_probe_start(pi_probe **out, const char *conninfo, int64_t interval_ms,
                    int64_t timeout_ms, pi_metrics *m);

/* Stop the thread, close its connection, free. NULL is a no-op. */
void pi_probe_stop(pi_probe *p);

#endif
