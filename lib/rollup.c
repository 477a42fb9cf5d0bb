/* rollup.c -- presence_rollup_refresh on its own connection, every interval */
#include "presence/rollup.h"

#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "presence/log.h"
#include "presence/mem.h"

#define SLICE_MS 100
/* presence_dirty rows (one per writer statement) per call: bounds a call's
 * work after a long outage or a large load; the next call goes on. */
#define ROLLUP_MAX_ROWS 200

struct pi_rollup {
    char *conninfo;
    int64_t interval_ms, timeout_ms;
    atomic_bool quit;
    atomic_int_fast64_t assets;
    pthread_t thread;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait up to one slice for the connection's socket; false when quitting or
 * past the deadline. */
static bool wait_socket(pi_rollup *r, PGconn *conn, bool write,
                        int64_t deadline)
{
    struct pollfd pfd = {.fd = PQsocket(conn),
                         .events = write ? POLLOUT : POLLIN};

    if (pfd.fd < 0 || atomic_load(&r->quit) || mono_ms() >= deadline)
        return false;
    (void)poll(&pfd, 1, SLICE_MS);
    return true;
}

static PGconn *connect_db(pi_rollup *r, int64_t deadline)
{
    const char *keys[] = {"dbname", "fallback_application_name", NULL};
    const char *vals[] = {r->conninfo, "presence-ingest rollup", NULL};
    PGconn *conn = PQconnectStartParams(keys, vals, 1);
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;

    if (conn == NULL || PQstatus(conn) == CONNECTION_BAD)
        goto fail;
    while (st != PGRES_POLLING_OK) {
        if (st == PGRES_POLLING_FAILED)
            goto fail;
        if (st == PGRES_POLLING_READING || st == PGRES_POLLING_WRITING) {
            if (!wait_socket(r, conn, st == PGRES_POLLING_WRITING, deadline))
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

/* One catch-up call: the assets it recomputed (0: nothing dirty, -1:
 * another catch-up holds the lock), or -2 on any failure (*why set). */
static int64_t refresh(pi_rollup *r, PGconn *conn, int64_t deadline, char *why,
                       size_t cap)
{
    char sql[160];
    PGresult *res;
    int64_t n = -2;

    /* The server ends the call at the timeout whatever this thread does. */
    snprintf(sql, sizeof(sql),
             "SET statement_timeout = %lld; "
             "SELECT presence_rollup_refresh(%d)",
             (long long)r->timeout_ms, ROLLUP_MAX_ROWS);
    snprintf(why, cap, "no answer within %lld ms", (long long)r->timeout_ms);
    if (!PQsendQuery(conn, sql))
        goto lost;
    while (PQflush(conn) == 1) {
        if (!wait_socket(r, conn, true, deadline))
            return -2;
    }
    for (;;) {
        if (!PQconsumeInput(conn))
            goto lost;
        if (!PQisBusy(conn))
            break;
        if (!wait_socket(r, conn, false, deadline))
            return -2;
    }
    while ((res = PQgetResult(conn)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_TUPLES_OK && PQntuples(res) == 1)
            n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        else if (st != PGRES_COMMAND_OK) {
            snprintf(why, cap, "%s", PQresultErrorMessage(res));
            n = -2;
        }
        PQclear(res);
    }
    return n;
lost:
    snprintf(why, cap, "%s", PQerrorMessage(conn));
    return -2;
}

static void *rollup_main(void *arg)
{
    pi_rollup *r = arg;
    PGconn *conn = NULL;
    bool failing = false;

    while (!atomic_load(&r->quit)) {
        int64_t start = mono_ms(), n = 0;
        char why[512];

        /* Catch up until nothing is left, for at most one interval. */
        do {
            int64_t deadline = mono_ms() + r->timeout_ms;

            snprintf(why, sizeof(why), "cannot connect");
            if (conn == NULL)
                conn = connect_db(r, deadline);
            n = conn ? refresh(r, conn, deadline, why, sizeof(why)) : -2;
            if (n > 0)
                atomic_fetch_add(&r->assets, n);
        } while (n > 0 && !atomic_load(&r->quit) &&
                 mono_ms() - start < r->interval_ms);
        if (atomic_load(&r->quit))
            break;
        if (n == -2) {
            /* A call left unfinished would confuse the next one: start
             * over on a new connection. Logged once per outage. */
            PQfinish(conn);
            conn = NULL;
            if (!failing) {
                why[strcspn(why, "\n")] = '\0';
                pi_warn("rollup catch-up failed (retrying every %lld ms): %s",
                        (long long)r->interval_ms, why);
            }
            failing = true;
        } else if (failing) {
            pi_info("rollup catch-up works again");
            failing = false;
        }
        while (!atomic_load(&r->quit) && mono_ms() - start < r->interval_ms) {
            struct timespec ts = {0, SLICE_MS * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    PQfinish(conn);
    return NULL;
}

void pi_rollup_start(pi_rollup **out, const char *conninfo, int64_t interval_ms,
                     int64_t timeout_ms)
{
    pi_rollup *r = pi_calloc(1, sizeof(*r));

    r->conninfo = pi_strdup(conninfo ? conninfo : "");
    r->interval_ms = interval_ms;
    r->timeout_ms = timeout_ms;
    atomic_init(&r->quit, false);
    atomic_init(&r->assets, 0);
    if (pthread_create(&r->thread, NULL, rollup_main, r) != 0) {
        fprintf(stderr, "presence-ingest: cannot start the rollup thread\n");
        abort();
    }
    *out = r;
}

int64_t pi_rollup_assets(const pi_rollup *r)
{
    return atomic_load(&((pi_rollup *)r)->assets);
}

void pi_rollup_stop(pi_rollup *r)
{
    if (r == NULL)
        return;
    atomic_store(&r->quit, true);
    pthread_join(r->thread, NULL);
    free(r->conninfo);
    free(r);
}
