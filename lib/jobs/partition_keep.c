/* partition_keep.c -- create presences' partitions ahead, from a timer */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "presence/db.h"
#include "presence/db_async.h"
#include "presence/log.h"
#include "presence/mem.h"
#include "presence/partition.h"

#define RETRY_MS 60000

struct pi_partkeep {
    char *conninfo;
    int64_t every_ms;
    atomic_bool quit;
    pthread_mutex_t mu; /* guards cancel */
    PGcancel *cancel;   /* of the connection in use, or NULL */
    pthread_t thread;
};

static void set_cancel(pi_partkeep *k, PGconn *conn)
{
    pthread_mutex_lock(&k->mu);
    PQfreeCancel(k->cancel);
    k->cancel = conn ? PQgetCancel(conn) : NULL;
    pthread_mutex_unlock(&k->mu);
}

/* One call of presence_partitions_ensure(); 0 or the failure in err. */
static int ensure(pi_partkeep *k, PGconn **conn, pi_err *err)
{
    PGresult *res;
    int rc;

    if (*conn == NULL) {
        rc = pi_db_connect(conn, k->conninfo, err);
        if (rc)
            return rc;
        set_cancel(k, *conn);
    }
    /* Bounded: a statement the server cannot finish (a frozen server, a
     * lock held for long) does not keep this thread forever. SET LOCAL:
     * one implicit transaction with the call, nothing left on the session
     * (PgBouncer's transaction pooling, docs/packaging.md); PQexec returns
     * the last statement's result. */
    res = PQexec(*conn, "SET LOCAL statement_timeout = '30s'; "
                        "SELECT partition, from_id, to_id, moved FROM "
                        "presence_partitions_ensure()");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = pi_db_fail(err, *conn, res, "presence_partitions_ensure()");
        PQclear(res);
        return rc;
    }
    for (int r = 0; r < PQntuples(res); r++)
        pi_info("created partition %s for ids [%s, %s) (%s rows moved from "
                "presences_default)",
                PQgetvalue(res, r, 0), PQgetvalue(res, r, 1),
                PQgetvalue(res, r, 2), PQgetvalue(res, r, 3));
    PQclear(res);
    return 0;
}

static void *keep_main(void *arg)
{
    pi_partkeep *k = arg;
    PGconn *conn = NULL;

    while (!atomic_load(&k->quit)) {
        int64_t start = pi_mono_ms(), wait = k->every_ms;
        pi_err err;

        if (ensure(k, &conn, &err) != 0) {
            if (!atomic_load(&k->quit))
                pi_warn("partitions ahead: %s (ids past the last partition "
                        "go to presences_default meanwhile; trying again)",
                        err.msg);
            set_cancel(k, NULL);
            PQfinish(conn);
            conn = NULL;
            if (wait > RETRY_MS)
                wait = RETRY_MS;
        }
        pi_sleep_until(start + wait, &k->quit);
    }
    set_cancel(k, NULL);
    PQfinish(conn);
    return NULL;
}

void pi_partkeep_start(pi_partkeep **out, const char *conninfo,
                       int64_t every_ms)
{
    pi_partkeep *k = pi_calloc(1, sizeof(*k));

    *out = NULL;
    k->conninfo = pi_strdup(conninfo ? conninfo : "");
    k->every_ms = every_ms;
    atomic_init(&k->quit, false);
    pthread_mutex_init(&k->mu, NULL);
    if (pthread_create(&k->thread, NULL, keep_main, k) != 0) {
        fprintf(stderr, "presence-ingest: cannot start the partition "
                        "keeper thread\n");
        abort();
    }
    *out = k;
}

void pi_partkeep_stop(pi_partkeep *k)
{
    char buf[256];

    if (k == NULL)
        return;
    atomic_store(&k->quit, true);
    pthread_mutex_lock(&k->mu);
    if (k->cancel)
        (void)PQcancel(k->cancel, buf, sizeof(buf));
    pthread_mutex_unlock(&k->mu);
    pthread_join(k->thread, NULL);
    pthread_mutex_destroy(&k->mu);
    free(k->conninfo);
    free(k);
}
