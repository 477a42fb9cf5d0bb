/* fleet.c -- the fleet gauges, counted after a catch-up by the one instance
 * holding the fleet lock */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs_int.h"
#include "presence/db_async.h"
#include "presence/log.h"

/* One statement's single row into vals (ncols values); 0 or -1. */
static int row(PGconn *conn, const char *sql, int64_t deadline,
               const atomic_bool *quit, char vals[][24], int ncols)
{
    PGresult *res;
    int rc = -1;

    if (pi_db_send_wait(conn, sql, deadline, quit) != PI_DB_READY)
        return -1;
    while ((res = PQgetResult(conn)) != NULL) {
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
            PQnfields(res) == ncols) {
            for (int c = 0; c < ncols; c++)
                snprintf(vals[c], 24, "%s", PQgetvalue(res, 0, c));
            rc = 0;
        } else if (PQresultStatus(res) != PGRES_TUPLES_OK)
            pi_debug("fleet gauges: %s", PQresultErrorMessage(res));
        PQclear(res);
    }
    return rc;
}

void pi_jobs__fleet_update(pi_jobs__fleet *f, PGconn *conn, pi_metrics *m,
                           int64_t deadline, const atomic_bool *quit)
{
    char v[4][24];
    int64_t seq;

    if (m == NULL || conn == NULL)
        return;
    if (!f->leader) {
        if (row(conn, "SELECT pg_try_advisory_lock(" PI_FLEET_LOCK_KEY ")",
                deadline, quit, v, 1) != 0 ||
            strcmp(v[0], "t") != 0)
            return;
        f->leader = true;
        f->last_seq = -1;
        pi_info("this instance publishes the fleet gauges");
    }
    /* The last seq by the primary key; the fleet counted again (a scan of
     * asset_status_logged) only when a change was recorded since. */
    if (row(conn, "SELECT coalesce(max(seq), 0) FROM asset_status_changes",
            deadline, quit, v, 1) != 0)
        return;
    seq = strtoll(v[0], NULL, 10);
    if (seq != f->last_seq) {
        if (row(conn,
                "SELECT count(*) FILTER (WHERE state = 'online'),"
                " count(*) FILTER (WHERE state = 'offline'),"
                " count(*) FILTER (WHERE state = 'declared'),"
                " (SELECT coalesce(max(seq), 0) FROM asset_status_changes)"
                " FROM asset_status_logged",
                deadline, quit, v, 4) != 0)
            return;
        for (int i = 0; i < 3; i++)
            f->counts[i] = strtoll(v[i], NULL, 10);
        f->last_seq = strtoll(v[3], NULL, 10);
    }
    pi_metrics_fleet(m, true, f->counts[0], f->counts[1], f->counts[2],
                     f->last_seq);
}

void pi_jobs__fleet_lost(pi_jobs__fleet *f, pi_metrics *m)
{
    if (f->leader)
        pi_metrics_fleet(m, false, 0, 0, 0, 0);
    f->leader = false;
}
