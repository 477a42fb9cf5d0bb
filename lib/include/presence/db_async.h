/* db_async.h -- non-blocking libpq calls that a background thread can stop
 *
 * The probe (/readyz), the rollup's catch-up and the partition keeper each
 * run a statement now and then on their own connection, and must stop within a
 * slice of a second when the service stops, and give up at a deadline when
 * PostgreSQL hangs. These connect and wait on the socket in slices of 100 ms,
 * returning early when *quit becomes true or the deadline (pi_mono_ms)
 * passes.
 */
#ifndef PRESENCE_DB_ASYNC_H
#define PRESENCE_DB_ASYNC_H

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "presence/times.h"

/* Sleep in slices until pi_mono_ms() reaches until_ms or *quit is true. */
void pi_sleep_until(int64_t until_ms, const atomic_bool *quit);

/* A connection to conninfo with fallback_application_name app, made
 * without blocking and set non-blocking; NULL when it failed, *quit became
 * true or the deadline passed. */
PGconn *pi_db_connect_async(const char *conninfo, const char *app,
                            int64_t deadline, const atomic_bool *quit);

/* What pi_db_send_wait ended with. */
typedef enum pi_db_wait {
    PI_DB_READY,   /* the results can be read (PQgetResult) */
    PI_DB_STOPPED, /* *quit, or the deadline passed: the call is unfinished */
    PI_DB_LOST     /* libpq failed (PQerrorMessage says why) */
} pi_db_wait;

/* Send sql and wait until its results have all arrived. */
pi_db_wait pi_db_send_wait(PGconn *conn, const char *sql, int64_t deadline,
                           const atomic_bool *quit);

#endif
