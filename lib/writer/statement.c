/* statement.c -- what the writer sends that the server may refuse: COPY data,
 * and the refusal recorded (SQLSTATE, column, constraint) for the rejects */
#include <libpq-fe.h>
#include <stdio.h>

#include "presence/db.h"
#include "writer_int.h"

int pi_writer__fail(pi_writer *w, PGresult *res, const char *what, pi_err *err)
{
    const char *f;

    snprintf(w->refused.sqlstate, sizeof(w->refused.sqlstate), "%s",
             pi_db_sqlstate(res));
    f = res ? PQresultErrorField(res, PG_DIAG_COLUMN_NAME) : NULL;
    snprintf(w->refused.column, sizeof(w->refused.column), "%s", f ? f : "");
    f = res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
    snprintf(w->refused.constraint, sizeof(w->refused.constraint), "%s",
             f ? f : "");
    f = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    snprintf(w->refused.msg, sizeof(w->refused.msg), "%s",
             f ? f : PQerrorMessage(w->conn));
    return pi_db_fail(err, w->conn, res, what);
}

int pi_writer__send_copy(pi_writer *w, const char *sql, const char *what,
                         pi_err *err)
{
    PGresult *res = PQexec(w->conn, sql);
    int rc = 0;

    if (PQresultStatus(res) != PGRES_COPY_IN) {
        rc = pi_writer__fail(w, res, what, err);
        PQclear(res);
        return rc;
    }
    PQclear(res);
    for (size_t off = 0; off < w->out.len; off += COPY_CHUNK) {
        size_t n =
            w->out.len - off < COPY_CHUNK ? w->out.len - off : COPY_CHUNK;
        if (PQputCopyData(w->conn, w->out.ptr + off, (int)n) != 1)
            break;
    }
    /* Always end the COPY so that the connection leaves COPY mode; a failed
     * put shows up as the result's error. */
    PQputCopyEnd(w->conn, NULL);
    res = PQgetResult(w->conn);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = pi_writer__fail(w, res, what, err);
    PQclear(res);
    while ((res = PQgetResult(w->conn)) != NULL)
        PQclear(res);
    return rc;
}
