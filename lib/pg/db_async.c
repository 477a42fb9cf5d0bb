/* db_async.c -- non-blocking libpq calls that a background thread can stop */
#include "presence/db_async.h"

#include <poll.h>
#include <time.h>

#define SLICE_MS 100

void pi_sleep_until(int64_t until_ms, const atomic_bool *quit)
{
    while (!atomic_load(quit) && pi_mono_ms() < until_ms) {
        struct timespec ts = {0, SLICE_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* Wait up to one slice for the connection's socket; false when quitting or
 * past the deadline. */
static bool wait_socket(PGconn *conn, bool write, int64_t deadline,
                        const atomic_bool *quit)
{
    struct pollfd pfd = {.fd = PQsocket(conn),
                         .events = write ? POLLOUT : POLLIN};

    if (pfd.fd < 0 || atomic_load(quit) || pi_mono_ms() >= deadline)
        return false;
    (void)poll(&pfd, 1, SLICE_MS);
    return true;
}

PGconn *pi_db_connect_async(const char *conninfo, const char *app,
                            int64_t deadline, const atomic_bool *quit)
{
    const char *keys[] = {"dbname", "fallback_application_name", NULL};
    const char *vals[] = {conninfo, app, NULL};
    PGconn *conn = PQconnectStartParams(keys, vals, 1);
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;

    if (conn == NULL || PQstatus(conn) == CONNECTION_BAD)
        goto fail;
    while (st != PGRES_POLLING_OK) {
        if (st == PGRES_POLLING_FAILED)
            goto fail;
        if (st == PGRES_POLLING_READING || st == PGRES_POLLING_WRITING) {
            if (!wait_socket(conn, st == PGRES_POLLING_WRITING, deadline, quit))
                goto fail;
        }
        st = PQconnectPoll(conn);
    }
    if (PQsetnonblocking(conn, 1) != 0)
        goto fail;
    return conn;
fail:
    PQfinish(conn);
    return NULL;
}

pi_db_wait pi_db_send_wait(PGconn *conn, const char *sql, int64_t deadline,
                           const atomic_bool *quit)
{
    if (!PQsendQuery(conn, sql))
        return PI_DB_LOST;
    while (PQflush(conn) == 1) {
        if (!wait_socket(conn, true, deadline, quit))
            return PI_DB_STOPPED;
    }
    for (;;) {
        if (!PQconsumeInput(conn))
            return PI_DB_LOST;
        if (!PQisBusy(conn))
            return PI_DB_READY;
        if (!wait_socket(conn, false, deadline, quit))
            return PI_DB_STOPPED;
    }
}
