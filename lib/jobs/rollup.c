/* rollup.c -- presence_rollup_refresh on its own connection, every interval */
#include "presence/rollup.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs_int.h"
#include "presence/db_async.h"
#include "presence/log.h"
#include "presence/mem.h"
#include "presence/metrics.h"

/* presence_dirty rows (one per writer statement) per call: bounds a call's
 * work after a long outage or a large load; the next call goes on. */
#define ROLLUP_MAX_ROWS 200
/* Rest after a busy round while the writers are behind, as a multiple of
 * its length. */
#define ROLLUP_REST 3

struct pi_rollup {
    char *conninfo;
    int64_t interval_ms, timeout_ms;
    atomic_bool quit;
    atomic_int_fast64_t assets;
    _Atomic double lag;                  /* seconds; -1: not measured yet */
    _Atomic(pi_metrics *) metrics;       /* the lag's, or NULL */
    _Atomic(pi_metrics *) fleet_metrics; /* the fleet gauges' (fleet.c) */
    pthread_t thread;
};

/* One catch-up call: the assets it recomputed (0: nothing dirty, -1:
 * another catch-up holds the lock), or -2 on any failure (*why set). */
static int64_t refresh(pi_rollup *r, PGconn *conn, int64_t deadline, char *why,
                       size_t cap)
{
    char sql[160];
    PGresult *res;
    int64_t n = -2;

    /* The server ends the call at the timeout whatever this thread does.
     * SET LOCAL: one implicit transaction with the call, nothing left on
     * the session (PgBouncer's transaction pooling, docs/packaging.md). */
    snprintf(sql, sizeof(sql),
             "SET LOCAL statement_timeout = %lld; "
             "SELECT presence_rollup_refresh(%d)",
             (long long)r->timeout_ms, ROLLUP_MAX_ROWS);
    snprintf(why, cap, "no answer within %lld ms", (long long)r->timeout_ms);
    switch (pi_db_send_wait(conn, sql, deadline, &r->quit)) {
    case PI_DB_READY:
        break;
    case PI_DB_STOPPED:
        return -2;
    case PI_DB_LOST:
        goto lost;
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

/* presence_rollup_lag() into r->lag and the metrics; quietly nothing when
 * it fails (the next round's refresh reports an outage). */
static void measure_lag(pi_rollup *r, PGconn *conn)
{
    int64_t deadline = pi_mono_ms() + r->timeout_ms;
    PGresult *res;
    double lag = -1;

    if (pi_db_send_wait(conn, "SELECT presence_rollup_lag()", deadline,
                        &r->quit) != PI_DB_READY)
        return;
    while ((res = PQgetResult(conn)) != NULL) {
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
            lag = strtod(PQgetvalue(res, 0, 0), NULL);
        PQclear(res);
    }
    if (lag < 0)
        return;
    atomic_store(&r->lag, lag);
    pi_metrics_rollup_lag(atomic_load(&r->metrics), lag);
}

/* Stopping mid-call: ask the server to cancel it. A closed connection alone
 * leaves the backend catching up (a backfill's catch-up runs for seconds)
 * until it next writes to the socket, and the database busy meanwhile. */
static void cancel_call(PGconn *conn)
{
    PGcancel *c;
    char buf[256];

    if (conn == NULL || PQtransactionStatus(conn) != PQTRANS_ACTIVE)
        return;
    c = PQgetCancel(conn);
    if (c != NULL && !PQcancel(c, buf, sizeof(buf)))
        pi_debug("rollup: cancel on stop: %s", buf);
    PQfreeCancel(c);
}

static void *rollup_main(void *arg)
{
    pi_rollup *r = arg;
    PGconn *conn = NULL;
    bool failing = false;
    pi_jobs__fleet fleet = {.leader = false, .last_seq = -1};

    while (!atomic_load(&r->quit)) {
        int64_t start = pi_mono_ms(), n = 0, folded = 0, calls = 0;
        char why[512];

        /* The lag as the round starts: the age the oldest pending change
         * reached in this cycle (after the round it is 0 whenever the
         * catch-up keeps up, which would hide it). */
        if (conn != NULL)
            measure_lag(r, conn);
        /* Catch up until nothing is left, for at most one interval. */
        do {
            int64_t deadline = pi_mono_ms() + r->timeout_ms;

            snprintf(why, sizeof(why), "cannot connect");
            if (conn == NULL)
                conn = pi_db_connect_async(
                    r->conninfo, "presence-ingest rollup", deadline, &r->quit);
            n = conn ? refresh(r, conn, deadline, why, sizeof(why)) : -2;
            calls++;
            if (n > 0) {
                atomic_fetch_add(&r->assets, n);
                folded += n;
            }
        } while (n > 0 && !atomic_load(&r->quit) &&
                 pi_mono_ms() - start < r->interval_ms);
        if (atomic_load(&r->quit))
            break;
        if (n == -2) {
            /* A call left unfinished would confuse the next one: start
             * over on a new connection. Logged once per outage. */
            PQfinish(conn);
            conn = NULL;
            pi_jobs__fleet_lost(&fleet, atomic_load(&r->fleet_metrics));
            if (!failing) {
                why[strcspn(why, "\n")] = '\0';
                pi_warn("rollup catch-up failed (retrying every %lld ms): %s",
                        (long long)r->interval_ms, why);
            }
            failing = true;
        } else {
            if (failing)
                pi_info("rollup catch-up works again");
            failing = false;
            pi_jobs__fleet_update(&fleet, conn, atomic_load(&r->fleet_metrics),
                                  pi_mono_ms() + r->timeout_ms, &r->quit);
        }

        /* While the writers are the bottleneck (the consumer found a full
         * batch waiting for a busy writer during the round: a backfill, a
         * backlog after an outage), a busy round is followed by a rest
         * three times its length, so that the catch-up takes at most a
         * quarter of a backend from them; the reports stay exact
         * meanwhile. Otherwise (a live stream) the next round starts an
         * interval after this one started, or at once when it took
         * longer: status changes are as fresh as the fold allows. */
        {
            int64_t end = pi_mono_ms(), next = start + r->interval_ms;
            bool pressed =
                pi_metrics_backlog_at(atomic_load(&r->metrics)) >= start;
            if (pressed && next < end + ROLLUP_REST * (end - start))
                next = end + ROLLUP_REST * (end - start);
            if (folded > 0)
                pi_debug("rollup round: %lld assets in %lld calls, %lld ms; "
                         "next in %lld ms",
                         (long long)folded, (long long)calls,
                         (long long)(end - start), (long long)(next - end));
            pi_sleep_until(next, &r->quit);
        }
    }
    cancel_call(conn);
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
    atomic_init(&r->lag, -1.0);
    atomic_init(&r->metrics, NULL);
    atomic_init(&r->fleet_metrics, NULL);
    if (pthread_create(&r->thread, NULL, rollup_main, r) != 0) {
        fprintf(stderr, "presence-ingest: cannot start the rollup thread\n");
        abort();
    }
    *out = r;
}

void pi_rollup_publish_fleet(pi_rollup *r, pi_metrics *m)
{
    atomic_store(&r->fleet_metrics, m);
}

int64_t pi_rollup_assets(const pi_rollup *r)
{
    return atomic_load(&((pi_rollup *)r)->assets);
}

void pi_rollup_set_metrics(pi_rollup *r, pi_metrics *m)
{
    atomic_store(&r->metrics, m);
}

double pi_rollup_lag(const pi_rollup *r)
{
    return atomic_load(&((pi_rollup *)r)->lag);
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
