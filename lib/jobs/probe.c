/* probe.c -- SELECT 1 on its own connection, every interval, for /readyz */
#include "presence/probe.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "presence/db_async.h"
#include "presence/mem.h"

struct pi_probe {
    char *conninfo;
    int64_t interval_ms, timeout_ms;
    pi_metrics *m;
    atomic_bool quit;
    pthread_t thread;
};

static bool query(pi_probe *p, PGconn *conn, int64_t deadline)
{
    PGresult *res;
    bool ok = false;

    if (pi_db_send_wait(conn, "SELECT 1", deadline, &p->quit) != PI_DB_READY)
        return false;
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
        int64_t start = pi_mono_ms(), deadline = start + p->timeout_ms;
        bool ok;

        if (conn == NULL)
            conn = pi_db_connect_async(p->conninfo, "presence-ingest probe",
                                       deadline, &p->quit);
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
        pi_sleep_until(start + p->interval_ms, &p->quit);
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
