/* probe.c -- SELECT 1 on its own connection, every interval, for /readyz */
#include "presence/probe.h"

#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "presence/mem.h"

#define SLICE_MS 100

struct pi_probe {
    char *conninfo;
    int64_t interval_ms, timeout_ms;
    pi_metrics *m;
    atomic_bool quit;
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
static bool wait_socket(pi_probe *p, PGconn *conn, bool write, int64_t deadline)
{
    struct pollfd pfd = {.fd = PQsocket(conn),
                         .events = write ? POLLOUT : POLLIN};

    if (pfd.fd < 0 || atomic_load(&p->quit) || mono_ms() >= deadline)
        return false;
    (void)poll(&pfd, 1, SLICE_MS);
    return true;
}

static PGconn *connect_db(pi_probe *p, int64_t deadline)
{
    const char *keys[] = {"dbname", "fallback_application_name", NULL};
    const char *vals[] = {p->conninfo, "presence-ingest probe", NULL};
    PGconn *conn = PQconnectStartParams(keys, vals, 1);
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;

    if (conn == NULL || PQstatus(conn) == CONNECTION_BAD)
        goto fail;
    while (st != PGRES_POLLING_OK) {
        if (st == PGRES_POLLING_FAILED)
            goto fail;
        if (st == PGRES_POLLING_READING || st == PGRES_POLLING_WRITING) {
            if (!wait_socket(p, conn, st == PGRES_POLLING_WRITING, deadline))
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

static bool query(pi_probe *p, PGconn *conn, int64_t deadline)
{
    PGresult *res;
    bool ok = false;

    if (!PQsendQuery(conn, "SELECT 1"))
        return false;
    while (PQflush(conn) == 1) {
        if (!wait_socket(p, conn, true, deadline))
            return false;
    }
    for (;;) {
        if (!PQconsumeInput(conn))
            return false;
        if (!PQisBusy(conn))
            break;
        if (!wait_socket(p, conn, false, deadline))
            return false;
    }
    while ((res = PQgetResult(conn)) != NULL) {
        ok = ok || PQresultStatus(res) == PGRES_TUPLES_OK;
        PQclear(res);
    }
    return ok;
}

static void *probe_main(void *arg)
{
    pi_probe *p = arg;
    PGconn *conn = NULL;

    while (!atomic_load(&p->quit)) {
        int64_t start = mono_ms(), deadline = start + p->timeout_ms;
        bool ok;

        if (conn == NULL)
            conn = connect_db(p, deadline);
        ok = conn && query(p, conn, deadline);
        if (atomic_load(&p->quit))
            break;
        pi_metrics_db_probe(p->m, ok);
        if (!ok) {
            /* A query left unfinished would confuse the next one: start
             * over on a new connection. */
            PQfinish(conn);
            conn = NULL;
        }
        while (!atomic_load(&p->quit) && mono_ms() - start < p->interval_ms) {
            struct timespec ts = {0, SLICE_MS * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    PQfinish(conn);
    return NULL;
}

void pi_probe_start(pi_probe **out, const char *conninfo, int64_t interval_ms,
                    int64_t timeout_ms, pi_metrics *m)
{
    pi_probe *p = pi_calloc(1, sizeof(*p));

    p->conninfo = pi_strdup(conninfo ? conninfo : "");
    p->interval_ms = interval_ms;
    p->timeout_ms = timeout_ms;
    p->m = m;
    atomic_init(&p->quit, false);
    if (pthread_create(&p->thread, NULL, probe_main, p) != 0) {
        fprintf(stderr, "presence-ingest: cannot start the probe thread\n");
        abort();
    }
    *out = p;
}

void pi_probe_stop(pi_probe *p)
{
    if (p == NULL)
        return;
    atomic_store(&p->quit, true);
    pthread_join(p->thread, NULL);
    free(p->conninfo);
    free(p);
}
