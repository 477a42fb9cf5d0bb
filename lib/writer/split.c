/* split.c -- a batch PostgreSQL refused, bisected under savepoints down
 * to the refused rows, which become rejects */
#include "presence/writer.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "presence/db.h"
#include "presence/log.h"
#include "presence/mem.h"
#include "writer_int.h"

/* The reject code for a row PostgreSQL refused. The contract's list of
 * codes is closed, so pick the field's code when the error names the column
 * (not-null) or a column CHECK constraint (named presences_<column>_check by
 * PostgreSQL's default), else by SQLSTATE, else wrong_type: the value does
 * not fit what the table accepts. The detail always says what happened. */
static pi_reject_code refusal_code(const refusal *rf)
{
    static const struct {
        const char *column;
        pi_reject_code code;
    } by_column[] = {
        {"id", PI_REJ_ID_OUT_OF_RANGE},
        {"connection_id", PI_REJ_CONNECTION_ID_OUT_OF_RANGE},
        {"type", PI_REJ_UNKNOWN_TYPE},
        {"reason", PI_REJ_BAD_REASON},
        {"asset", PI_REJ_BAD_ASSET},
        {"time", PI_REJ_BAD_TIME},
        {"time_offset_minutes", PI_REJ_BAD_TIME},
    };
    char col[128] = "";
    size_t n;

    if (rf->column[0]) {
        snprintf(col, sizeof(col), "%s", rf->column);
    } else if (strncmp(rf->constraint, "presences_", 10) == 0 &&
               (n = strlen(rf->constraint)) > 16 &&
               strcmp(rf->constraint + n - 6, "_check") == 0) {
        snprintf(col, sizeof(col), "%.*s", (int)(n - 16), rf->constraint + 10);
    }
    for (size_t i = 0; i < sizeof(by_column) / sizeof(by_column[0]); i++) {
        if (strcmp(col, by_column[i].column) == 0)
            return by_column[i].code;
    }
    if (strcmp(rf->sqlstate, "22021") == 0 ||
        strcmp(rf->sqlstate, "22P05") == 0)
        return PI_REJ_BAD_ENCODING;
    if (strcmp(rf->sqlstate, "22007") == 0 ||
        strcmp(rf->sqlstate, "22008") == 0)
        return PI_REJ_BAD_TIME;
    return PI_REJ_WRONG_TYPE;
}

/* Write staged rows [lo, hi) under a savepoint; when PostgreSQL refuses the
 * data, roll the range back and bisect until each refused row is alone, then
 * make it a reject. Rows of earlier ranges stay written, so a refusal that
 * depends on another row of the batch is also isolated. */
int pi_writer__write_split(pi_writer *w, const pi_batch *batch, size_t lo,
                           size_t hi, pi_err *err)
{
    size_t mid, n_xrejs = w->n_xrejs;
    pi_write_stats cur = w->cur;
    int rc;

    if (lo >= hi)
        return 0;
    rc = pi_db_exec(w->conn, "SAVEPOINT pi_split", err);
    if (rc)
        return rc;
    rc = pi_writer__write_rows(w, batch, lo, hi, err);
    if (rc == 0)
        return pi_db_exec(w->conn, "RELEASE SAVEPOINT pi_split", err);
    if (rc != PI_EDATA)
        return rc;
    /* Forget what the failed range had found. */
    w->n_xrejs = n_xrejs;
    w->cur = cur;
    rc = pi_db_exec(w->conn, "ROLLBACK TO SAVEPOINT pi_split", err);
    if (rc == 0)
        rc = pi_db_exec(w->conn, "RELEASE SAVEPOINT pi_split", err);
    if (rc)
        return rc;
    if (hi - lo == 1) {
        const pi_presence *pr =
            &pi_batch_result(batch)->presences[w->staged[lo]];
        const pi_msg_meta *m = pi_batch_msg(batch, pr->tag);
        pi_sbuf sb = {.len = 0};

        pi_sbuf_printf(&sb, "refused by PostgreSQL: %s: %s",
                       w->refused.sqlstate, w->refused.msg);
        pi_writer__add_xrej(w, w->staged[lo], refusal_code(&w->refused), &sb);
        w->cur.rejected++;
        pi_log_at(PI_LOG_WARN, w->topics[m->topic], m->partition, m->offset,
                  "presence id %" PRId64 " element %u refused by PostgreSQL "
                  "(%s: %s): recorded as a reject",
                  pr->id, (unsigned)pr->element, w->refused.sqlstate,
                  w->refused.msg);
        return 0;
    }
    mid = lo + (hi - lo) / 2;
    rc = pi_writer__write_split(w, batch, lo, mid, err);
    if (rc == 0)
        rc = pi_writer__write_split(w, batch, mid, hi, err);
    return rc;
}
