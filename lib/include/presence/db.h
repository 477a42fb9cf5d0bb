/* db.h -- PostgreSQL connections, SQLSTATE classification and retry backoff
 *
 * Thin helpers over libpq shared by the writer and the migrator. Every
 * failure is classified from the SQLSTATE alone (never from message text):
 *   class 08 (connection), 53 (resources), 57 (operator intervention, e.g.
 *   admin shutdown), 40001 (serialization), 40P01 (deadlock), and a lost
 *   connection with no SQLSTATE at all            → PI_ERETRY
 *   class 22 (data exception), 23 (integrity)     → PI_EDATA
 *   anything else                                 → PI_EFATAL
 * Messages name the operation, the SQLSTATE and PostgreSQL's primary message;
 * a conninfo is only ever shown masked (pi_log_mask_conninfo).
 */
#ifndef PRESENCE_DB_H
#define PRESENCE_DB_H

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdint.h>

#include "presence/err.h"

/* Connect with conninfo (key=value string or postgresql:// URI; NULL or ""
 * uses libpq's PG* environment), with fallback_application_name
 * "presence-ingest". On success *out owns the connection (PQfinish it).
 * Fails with PI_ERETRY (server unreachable, starting up, shutting down or
 * out of connections: the caller decides whether to wait) or PI_EFATAL
 * (permanent: bad conninfo; authentication refused or no password; no such
 * database or no CONNECT privilege; the server's certificate refused under
 * sslmode verify-ca/verify-full, or no TLS when it is required); the
 * message is one line, shows the conninfo masked and libpq's reason with
 * the server's SQLSTATE when it sent one. */
PI_MUST_CHECK int pi_db_connect(PGconn **out, const char *conninfo,
                                pi_err *err);

/* Classify a failed result (res may be NULL: the connection is gone) as
 * PI_ERETRY, PI_EDATA or PI_EFATAL, per the table above. */
int pi_db_classify(const PGconn *conn, const PGresult *res);

/* The SQLSTATE of res, or "" when there is none (connection lost). */
const char *pi_db_sqlstate(const PGresult *res);

/* Fill err from a failed result: code from pi_db_classify, message
 * "<what>: <SQLSTATE>: <primary message>". Returns the code. */
int pi_db_fail(pi_err *err, const PGconn *conn, const PGresult *res,
               const char *what);

/* Run a statement without parameters that returns no rows (or whose rows are
 * not wanted); PQclear is done here. 0 or the classified failure. */
PI_MUST_CHECK int pi_db_exec(PGconn *conn, const char *sql, pi_err *err);

/* Delay before retry number attempt (1 for the first retry): exponential from
 * min_ms, capped at max_ms, with "equal jitter" (a uniform draw in the upper
 * half of the step) so that many clients restarting together spread out.
 * *seed is the caller's PRNG state (any non-zero start value). */
int pi_db_backoff_ms(unsigned attempt, int min_ms, int max_ms, uint64_t *seed);

/* Sleep ms milliseconds in short slices, returning early (-1) as soon as
 * *cancel becomes non-zero; cancel may be NULL. 0 when the full time passed. */
int pi_db_sleep_ms(int ms, const atomic_int *cancel);

#endif
