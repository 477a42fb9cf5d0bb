/* legacy_move.c -- `migrate --move-legacy`: presences_legacy's rows moved
 * into their periods' partitions, one step per transaction */
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "presence/db.h"
#include "presence/mem.h"
#include "presence/migrate.h"
#include "presence/partition.h"

/* A swap that waits past its lock_timeout (1 s: writers queue behind a
 * waiting ACCESS EXCLUSIVE request) is tried again this often, the wait
 * between attempts growing to 5 s: about a minute and a half of a server
 * that never lets go. */
#define SWAP_ATTEMPTS 20

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One call of presence_legacy_move_step; *what is malloc'd. A lock wait
 * past the step's lock_timeout (55P03) is tried again. */
static int step(char **what, PGconn *conn, const char *batch, pi_err *err)
{
    const char *params[1] = {batch};
    PGresult *res = NULL;
    int rc;

    *what = NULL;
    for (int attempt = 1; attempt <= SWAP_ATTEMPTS; attempt++) {
        res = PQexecParams(conn, "SELECT presence_legacy_move_step($1)", 1,
                           NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) == PGRES_TUPLES_OK) {
            *what = pi_strdup(PQgetvalue(res, 0, 0));
            PQclear(res);
            return 0;
        }
        if (strcmp(pi_db_sqlstate(res), "55P03") != 0 ||
            attempt == SWAP_ATTEMPTS)
            break;
        PQclear(res);
        res = NULL;
        (void)pi_db_sleep_ms(attempt < 10 ? 500 * attempt : 5000, NULL);
    }
    rc = pi_db_fail(err, conn, res, "presence_legacy_move_step");
    PQclear(res);
    return rc;
}

int pi_legacy_move_run(const char *conninfo, int64_t batch, FILE *out,
                       pi_err *err)
{
    char nbatch[32], *what = NULL;
    PGconn *conn = NULL;
    int64_t copied = 0, applied = 0, t0 = now_ms(), shown = t0;
    int rc;

    snprintf(nbatch, sizeof(nbatch), "%lld", (long long)batch);
    rc = pi_db_connect(&conn, conninfo, err);
    if (rc)
        goto cleanup;
    rc = pi_migrate_check(conn, err);
    if (rc)
        goto cleanup;
    for (;;) {
        free(what);
        rc = step(&what, conn, nbatch, err);
        if (rc)
            goto cleanup;
        if (strncmp(what, "copied ", 7) == 0)
            copied += strtoll(what + 7, NULL, 10);
        else if (strncmp(what, "caught up ", 10) == 0)
            applied += strtoll(what + 10, NULL, 10);
        else if (strcmp(what, "done") == 0)
            break;
        else {
            if (strncmp(what, "ready (caught up ", 17) == 0)
                applied += strtoll(what + 17, NULL, 10);
            fprintf(out, "move-legacy: %s\n", what);
        }
        if (now_ms() - shown >= 5000) {
            shown = now_ms();
            fprintf(out,
                    "move-legacy: %lld rows copied, %lld changed ids "
                    "applied\n",
                    (long long)copied, (long long)applied);
        }
        fflush(out);
    }
    fprintf(out,
            "move-legacy: done (%lld rows copied, %lld changed ids applied "
            "by this run in %.1f s)\n",
            (long long)copied, (long long)applied, (now_ms() - t0) / 1000.0);
cleanup:
    free(what);
    PQfinish(conn);
    return rc;
}
