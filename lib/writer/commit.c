/* commit.c -- COMMIT, and the outcome of one whose reply was lost */
#include "presence/writer.h"

#include <stdio.h>
#include <string.h>

#include "presence/db.h"
#include "presence/log.h"
#include "writer_int.h"

int pi_writer__commit(pi_writer *w, pi_err *err)
{
    PGresult *res = PQexec(w->conn, "SELECT pg_current_xact_id()");
    int rc;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = pi_writer__fail(w, res, "reading the transaction id", err);
        PQclear(res);
        return rc;
    }
    snprintf(w->lost_xid, sizeof(w->lost_xid), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    res = PQexec(w->conn, "COMMIT");
    if (PQresultStatus(res) == PGRES_COMMAND_OK) {
        w->lost_xid[0] = '\0';
        PQclear(res);
        return 0;
    }
    rc = pi_writer__fail(w, res, "COMMIT", err);
    PQclear(res);
    if (rc == PI_ERETRY && PQstatus(w->conn) == CONNECTION_BAD) {
        /* The reply was lost with the connection: the transaction may have
         * committed. Keep its figures; pg_xact_status() will tell. */
        w->lost = w->cur;
    } else {
        w->lost_xid[0] = '\0';
    }
    return rc;
}

/* After a lost COMMIT reply: did it commit? 1 yes, 0 no, <0 failure. */
static int lost_outcome(pi_writer *w, pi_err *err)
{
    const char *params[1] = {w->lost_xid};
    PGresult *res;
    int rc;

    res = PQexecParams(w->conn, "SELECT pg_xact_status($1::xid8)", 1, NULL,
                       params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK &&
        strcmp(pi_db_sqlstate(res), "22023") == 0) {
        /* "transaction ID … is in the future": the server came back from
         * a crash without it (synchronous_commit=off) or is another one (a
         * failover): it did not commit here. */
        rc = 0;
    } else if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = pi_writer__fail(w, res, "asking for the outcome of a lost COMMIT",
                             err);
    } else if (strcmp(PQgetvalue(res, 0, 0), "in progress") == 0) {
        /* The old backend has not noticed the disconnect yet. */
        rc = pi_err_set(err, PI_ERETRY,
                        "transaction %s of the lost COMMIT is still in "
                        "progress",
                        w->lost_xid);
    } else {
        rc = strcmp(PQgetvalue(res, 0, 0), "committed") == 0;
    }
    PQclear(res);
    return rc;
}

void pi_writer__forget_lost(pi_writer *w, const pi_batch *batch)
{
    if (w->lost_xid[0] && (batch != w->lost_batch ||
                           pi_batch_version(batch) != w->lost_version)) {
        pi_warn("the outcome of transaction %s (COMMIT reply lost) no longer "
                "matters: its batch was given up",
                w->lost_xid);
        w->lost_xid[0] = '\0';
    }
}

int pi_writer__resolve_lost(pi_writer *w, unsigned attempt, uint64_t reconnects,
                            pi_write_stats *stats, pi_err *err)
{
    int rc = lost_outcome(w, err);

    if (rc == 1) {
        pi_warn("the COMMIT lost with the connection had succeeded "
                "(transaction %s)",
                w->lost_xid);
        w->lost_xid[0] = '\0';
        w->lost.retries += attempt;
        w->lost.reconnects = reconnects;
        pi_write_stats_add(stats, &w->lost);
    } else if (rc == 0) {
        pi_warn("the COMMIT lost with the connection had not happened "
                "(transaction %s): writing the batch again",
                w->lost_xid);
        w->lost_xid[0] = '\0';
    }
    return rc;
}
