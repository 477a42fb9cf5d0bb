/* retention.c -- `retention`: partitions ahead, and the old ones dropped */
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "presence/db.h"
#include "presence/mem.h"
#include "presence/migrate.h"
#include "presence/partition.h"

#define ATTEMPTS 5

/* Print the partitions presence_partitions_ensure() creates; in a dry run
 * inside a transaction rolled back, so that what it would create is listed
 * and nothing stays. */
static int create_ahead(int *n_created, PGconn *conn, int dry_run, FILE *out,
                        pi_err *err)
{
    PGresult *res;
    int rc;

    *n_created = 0;
    if (dry_run) {
        rc = pi_db_exec(conn, "BEGIN", err);
        if (rc)
            return rc;
    }
    res = PQexec(conn, "SELECT e.partition, e.from_id, e.to_id, e.moved,"
                       " to_char(presence_id_time(e.from_id),"
                       " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
                       " to_char(presence_id_time(e.to_id),"
                       " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
                       " FROM presence_partitions_ensure() e");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = pi_db_fail(err, conn, res, "presence_partitions_ensure()");
        PQclear(res);
        if (dry_run)
            PQclear(PQexec(conn, "ROLLBACK"));
        return rc;
    }
    for (int r = 0; r < PQntuples(res); r++)
        fprintf(out,
                "%s %s ids [%s, %s) %s..%s (%s rows moved from "
                "presences_default)\n",
                dry_run ? "would create" : "created", PQgetvalue(res, r, 0),
                PQgetvalue(res, r, 1), PQgetvalue(res, r, 2),
                PQgetvalue(res, r, 4), PQgetvalue(res, r, 5),
                PQgetvalue(res, r, 3));
    *n_created = PQntuples(res);
    PQclear(res);
    return dry_run ? pi_db_exec(conn, "ROLLBACK", err) : 0;
}

/* The status change log (migration 0008) is trimmed with the same cutoff:
 * asset_status_changes_trim removes (or counts, in a dry run) the changes
 * recorded before it. */
static int trim_changes(PGconn *conn, const char *cutoff, int dry_run,
                        FILE *out, pi_err *err)
{
    const char *params[2] = {cutoff, dry_run ? "true" : "false"};
    PGresult *res =
        PQexecParams(conn, "SELECT asset_status_changes_trim($1, $2)", 2, NULL,
                     params, NULL, NULL, 0);
    int rc = 0;

    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        rc = pi_db_fail(err, conn, res, "trimming asset_status_changes");
    else
        fprintf(out, "%s=%s status changes recorded before %s\n",
                dry_run ? "would_trim" : "trimmed", PQgetvalue(res, 0, 0),
                cutoff);
    PQclear(res);
    return rc;
}

/* presence_partition_retire for one partition, in its own transaction; a
 * lock wait past its lock_timeout (55P03) is tried again. *verdict is
 * malloc'd. */
static int retire(char **verdict, PGconn *conn, const char *part,
                  const char *cutoff, int dry_run, pi_err *err)
{
    const char *params[3] = {part, cutoff, dry_run ? "true" : "false"};
    PGresult *res = NULL;
    int rc = 0;

    *verdict = NULL;
    for (int attempt = 1; attempt <= ATTEMPTS; attempt++) {
        res = PQexecParams(conn, "SELECT presence_partition_retire($1, $2, $3)",
                           3, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) == PGRES_TUPLES_OK) {
            *verdict = pi_strdup(PQgetvalue(res, 0, 0));
            PQclear(res);
            return 0;
        }
        if (strcmp(pi_db_sqlstate(res), "55P03") != 0 || attempt == ATTEMPTS)
            break;
        PQclear(res);
        res = NULL;
        (void)pi_db_sleep_ms(500 * attempt, NULL);
    }
    rc = pi_db_fail(err, conn, res, part);
    PQclear(res);
    return rc;
}

int pi_retention_run(const char *conninfo, int64_t keep_s, int dry_run,
                     FILE *out, pi_err *err)
{
    char keep[32], cutoff[64] = "";
    const char *params[1] = {keep};
    PGconn *conn = NULL;
    PGresult *res = NULL;
    int rc, n_created = 0, n_dropped = 0, n_kept = 0;

    rc = pi_db_connect(&conn, conninfo, err);
    if (rc)
        goto cleanup;
    rc = pi_migrate_check(conn, err);
    if (rc)
        goto cleanup;
    rc = pi_db_exec(conn, "SET TimeZone = 'UTC'", err);
    if (rc)
        goto cleanup;
    snprintf(keep, sizeof(keep), "%lld", (long long)keep_s);
    res = PQexecParams(conn,
                       "SELECT to_char(now() - make_interval(secs => $1),"
                       " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
                       1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = pi_db_fail(err, conn, res, "computing the cutoff");
        goto cleanup;
    }
    snprintf(cutoff, sizeof(cutoff), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    res = NULL;
    rc = create_ahead(&n_created, conn, dry_run, out, err);
    if (rc)
        goto cleanup;
    /* The list is read once: partitions created meanwhile are new ones. */
    res = PQexec(conn, "SELECT partition, coalesce(from_id::text, 'MINVALUE'),"
                       " coalesce(to_id::text, 'MAXVALUE'),"
                       " coalesce(to_char(from_time,"
                       " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '-infinity'),"
                       " coalesce(to_char(to_time,"
                       " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), 'infinity'),"
                       " est_rows, is_default"
                       " FROM presence_partitions"
                       " ORDER BY is_default, from_id NULLS FIRST");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = pi_db_fail(err, conn, res, "listing partitions");
        goto cleanup;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        const char *part = PQgetvalue(res, r, 0);
        char *verdict;
        int kept;

        rc = retire(&verdict, conn, part, cutoff, dry_run, err);
        if (rc)
            goto cleanup;
        kept = strncmp(verdict, "kept: ", 6) == 0;
        if (strcmp(PQgetvalue(res, r, 6), "t") == 0)
            fprintf(out, "%s %s (~%s rows)%s%s\n", kept ? "kept" : verdict,
                    part, PQgetvalue(res, r, 5), kept ? ": " : "",
                    kept ? verdict + 6 : "");
        else
            fprintf(out, "%s %s ids [%s, %s) %s..%s (~%s rows)%s%s\n",
                    kept ? "kept" : verdict, part, PQgetvalue(res, r, 1),
                    PQgetvalue(res, r, 2), PQgetvalue(res, r, 3),
                    PQgetvalue(res, r, 4), PQgetvalue(res, r, 5),
                    kept ? ": " : "", kept ? verdict + 6 : "");
        if (kept)
            n_kept++;
        else
            n_dropped++;
        free(verdict);
    }
    rc = trim_changes(conn, cutoff, dry_run, out, err);
    if (rc)
        goto cleanup;
    fprintf(out, "retention: cutoff %s: %s=%d %s=%d kept=%d%s\n", cutoff,
            dry_run ? "would_create" : "created", n_created,
            dry_run ? "would_drop" : "dropped", n_dropped, n_kept,
            dry_run ? " (dry run: nothing changed)" : "");
cleanup:
    PQclear(res);
    PQfinish(conn);
    return rc;
}
