/* pi_test_db.h -- a fresh, migrated database per test, and realistic presences
 */
#ifndef PI_TEST_DB_H
#define PI_TEST_DB_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

/* Create an empty database with a unique name (prefix, pid, counter) on the
 * harness's PostgreSQL and return a conninfo for it (caller frees). Fails
 * the test on error. */
char *pi_test_db_create(const char *prefix);

/* pi_test_db_create, then apply migrations/ to it. */
char *pi_test_db_create_migrated(const char *prefix);

/* Drop the database of conninfo (terminating its other connections). */
void pi_test_db_drop(const char *conninfo);

/* Connect or fail the test. */
PGconn *pi_test_db_connect(const char *conninfo);

/* Run a statement (printf-formatted) that must succeed. */
void pi_test_db_exec(PGconn *conn, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The first column of the first row as an integer (NULL → -1). */
int64_t pi_test_db_int(PGconn *conn, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The first column of the first row as a string, "" when no row, "(null)"
 * for NULL; caller frees. */
char *pi_test_db_text(PGconn *conn, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Write presence number i as one JSON object into buf (NUL-terminated) and
 * return its length: id first_id + i, a connection id, a type, reason and
 * asset drawn deterministically from i, a time with one of several UTC
 * offsets. The shape of CloudConnect's presences (both id forms). */
size_t pi_test_gen_presence(char *buf, size_t cap, int64_t first_id,
                            uint64_t i);
/* The same with timed_ids: message i has id first_id + ((i * 250) << 22), so
 * that id >> 22 is its time, as in production (a time partition holds the
 * ids of its period). */
size_t pi_test_gen_presence_ex(char *buf, size_t cap, int64_t first_id,
                               uint64_t i, int timed_ids);

/* A CloudConnect-like first id: ms since 2010 shifted left by 22 bits. */
#define PI_TEST_FIRST_ID INT64_C(911270996919452058)

#endif
