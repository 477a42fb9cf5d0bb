/* migrate.c -- apply pending migrations under an advisory lock; schema check */
#include "presence/migrate.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pg_int.h"
#include "presence/db.h"
#include "presence/log.h"
#include "presence/mem.h"

typedef struct migration {
    int version;
    char *file;      /* file name, e.g. 0001_initial.sql */
    const char *sql; /* embedded text; NULL: read file from the directory */
} migration;

/* Version of a file named NNNN_description.sql, or 0 when it is not one. */
static int file_version(const char *name)
{
    size_t len = strlen(name);
    long v = 0;
    const char *p = name;

    if (len < 6 || strcmp(name + len - 4, ".sql") != 0)
        return 0;
    while (*p >= '0' && *p <= '9' && v < 1000000)
        v = v * 10 + (*p++ - '0');
    if (p == name || *p != '_' || v <= 0 || v >= 1000000)
        return 0;
    return (int)v;
}

static int cmp_migration(const void *a, const void *b)
{
    const migration *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

static void free_list(migration *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i].file);
    free(list);
}

/* Sort list by version and hand it out; two files with one version are an
 * error (which one would win is not obvious). Takes list. */
static int check_list(migration **out, size_t *n_out, migration *list, size_t n,
                      pi_err *err)
{
    qsort(list, n, sizeof(*list), cmp_migration);
    for (size_t i = 1; i < n; i++) {
        if (list[i].version == list[i - 1].version) {
            pi_err_set(err, PI_EINVAL,
                       "migrations '%s' and '%s' have the same version",
                       list[i - 1].file, list[i].file);
            free_list(list, n);
            return PI_EINVAL;
        }
    }
    *out = list;
    *n_out = n;
    return 0;
}

/* The migrations of dir. */
static int list_dir(migration **out, size_t *n_out, const char *dir,
                    pi_err *err)
{
    migration *list = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    DIR *d;

    *out = NULL;
    *n_out = 0;
    d = opendir(dir);
    if (d == NULL)
        return pi_err_set(err, PI_EINVAL, "migrations directory '%s': %s", dir,
                          strerror(errno));
    while ((de = readdir(d)) != NULL) {
        int v = file_version(de->d_name);
        if (v == 0)
            continue;
        pi_grow((void **)&list, &cap, n + 1, sizeof(*list));
        list[n].version = v;
        list[n].file = pi_strdup(de->d_name);
        list[n].sql = NULL;
        n++;
    }
    closedir(d);
    return check_list(out, n_out, list, n, err);
}

/* The migrations compiled in. */
static int list_embedded(migration **out, size_t *n_out, pi_err *err)
{
    size_t n = pi_migrations_embedded_count;
    migration *list = pi_calloc(n ? n : 1, sizeof(*list));

    for (size_t i = 0; i < n; i++) {
        list[i].version = file_version(pi_migrations_embedded[i].file);
        list[i].file = pi_strdup(pi_migrations_embedded[i].file);
        list[i].sql = pi_migrations_embedded[i].sql;
    }
    return check_list(out, n_out, list, n, err);
}
static char *read_file(const char *dir, const char *file, pi_err *err)
{
    char path[4096];
    char *buf = NULL;
    size_t len = 0, cap = 0, got;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    f = fopen(path, "rb");
    if (f == NULL) {
        pi_err_set(err, PI_EINVAL, "%s: %s", path, strerror(errno));
        return NULL;
    }
    do {
        pi_grow((void **)&buf, &cap, len + 65536, 1);
        got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
    } while (got > 0);
    if (ferror(f)) {
        pi_err_set(err, PI_EINVAL, "%s: read error", path);
        free(buf);
        buf = NULL;
    } else {
        buf[len] = '\0';
    }
    fclose(f);
    return buf;
}

int pi_migrate_current(int *version, PGconn *conn, pi_err *err)
{
    PGresult *res;
    int rc = 0;

    *version = 0;
    /* to_regclass: no error (and no aborted transaction) when the table is
     * not there yet. */
    res = PQexec(conn, "SELECT CASE WHEN to_regclass('schema_migrations') IS "
                       "NULL THEN -1 ELSE 0 END");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = pi_db_fail(err, conn, res, "reading the schema version");
        goto cleanup;
    }
    if (atoi(PQgetvalue(res, 0, 0)) < 0)
        goto cleanup;
    PQclear(res);
    res = PQexec(conn, "SELECT coalesce(max(version), 0) FROM "
                       "schema_migrations");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = pi_db_fail(err, conn, res, "reading the schema version");
        goto cleanup;
    }
    *version = atoi(PQgetvalue(res, 0, 0));
cleanup:
    PQclear(res);
    return rc;
}

/* Once deploy/sql/roles.sql has made presence_owner the owner of the
 * schema's objects (schema_migrations tells), migrations run as it when the
 * login role may (a member, or a superuser): what they create is owned by it
 * like the rest, and a member that is not a superuser can ALTER what it owns.
 */
static int become_owner(PGconn *conn, pi_err *err)
{
    PGresult *res = PQexec(conn, "SELECT 1 FROM pg_class c JOIN pg_roles r"
                                 " ON r.oid = c.relowner WHERE c.oid ="
                                 " to_regclass('schema_migrations') AND"
                                 " r.rolname = 'presence_owner' AND"
                                 " pg_has_role(r.oid, 'MEMBER')");
    int rc = 0;

    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        rc = pi_db_fail(err, conn, res, "looking for the role presence_owner");
    else if (PQntuples(res) == 1)
        rc = pi_db_exec(conn, "SET ROLE presence_owner", err);
    PQclear(res);
    return rc;
}

int pi_migrate_check(PGconn *conn, pi_err *err)
{
    int version, rc;

    rc = pi_migrate_current(&version, conn, err);
    if (rc)
        return rc;
    if (version < PI_SCHEMA_VERSION)
        return pi_err_set(err, PI_ESCHEMA,
                          "database schema is at version %d, this build needs "
                          "%d: run `presence-ingest migrate`",
                          version, PI_SCHEMA_VERSION);
    return 0;
}

/* Is version recorded? Cheap enough to ask per file: there are few. */
static int is_applied(int *applied, PGconn *conn, int version, pi_err *err)
{
    char v[16];
    const char *params[1] = {v};
    PGresult *res;
    int rc = 0;

    *applied = 0;
    snprintf(v, sizeof(v), "%d", version);
    res =
        PQexecParams(conn, "SELECT 1 FROM schema_migrations WHERE version = $1",
                     1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        rc = pi_db_fail(err, conn, res, "reading schema_migrations");
    else
        *applied = PQntuples(res) > 0;
    PQclear(res);
    return rc;
}

/* One file in its own transaction, recorded in the same transaction. */
static int apply_one(PGconn *conn, const migration *m, const char *sql,
                     pi_err *err)
{
    char v[16], what[512];
    const char *params[2] = {v, m->file};
    PGresult *res = NULL;
    int rc;

    snprintf(v, sizeof(v), "%d", m->version);
    snprintf(what, sizeof(what), "migration %s", m->file);
    rc = pi_db_exec(conn, "BEGIN", err);
    if (rc)
        return rc;
    res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK &&
        PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = pi_db_fail(err, conn, res, what);
        /* A file the server refuses will not pass on a retry either. */
        if (rc == PI_EDATA)
            err->code = rc = PI_EFATAL;
        goto cleanup;
    }
    PQclear(res);
    res = PQexecParams(conn,
                       "INSERT INTO schema_migrations (version, name) "
                       "VALUES ($1, $2)",
                       2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        rc = pi_db_fail(err, conn, res, what);
        goto cleanup;
    }
    PQclear(res);
    res = NULL;
    rc = pi_db_exec(conn, "COMMIT", err);
cleanup:
    PQclear(res);
    if (rc && PQstatus(conn) == CONNECTION_OK) {
        PGresult *rb = PQexec(conn, "ROLLBACK");
        PQclear(rb);
    }
    return rc;
}

/* On a Citus coordinator (the database has the citus extension), lay the
 * schema out for the cluster: migrations/citus/citus.sql, idempotent, in
 * one transaction after the numbered migrations, each time (it lays out
 * what a new migration added). Detected, not switched on: the extension is
 * what makes a database a coordinator, and a flag forgotten once would
 * leave presences local and its triggers on (docs/scale-out.md). */
static int apply_citus(int *done, PGconn *conn, pi_err *err)
{
    PGresult *res = PQexec(conn, "SELECT 1 FROM pg_extension"
                                 " WHERE extname = 'citus'");
    int rc = 0;

    *done = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = pi_db_fail(err, conn, res, "looking for the citus extension");
        PQclear(res);
        return rc;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        return 0;
    }
    PQclear(res);
    rc =
        pi_db_exec(conn, "BEGIN; SET LOCAL client_min_messages = warning", err);
    if (rc)
        return rc;
    res = PQexec(conn, pi_migration_citus);
    if (PQresultStatus(res) != PGRES_COMMAND_OK &&
        PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = pi_db_fail(err, conn, res, "migrations/citus/citus.sql");
        if (rc == PI_EDATA)
            err->code = rc = PI_EFATAL;
    }
    PQclear(res);
    if (rc == 0)
        rc = pi_db_exec(conn, "COMMIT", err);
    if (rc && PQstatus(conn) == CONNECTION_OK) {
        res = PQexec(conn, "ROLLBACK");
        PQclear(res);
    }
    *done = rc == 0;
    return rc;
}

int pi_migrate_apply(int *applied, int *version, const char *conninfo,
                     const char *dir, FILE *out, pi_err *err)
{
    migration *list = NULL;
    size_t n = 0;
    PGconn *conn = NULL;
    char lock[128];
    int rc, locked = 0, citus = 0;

    *applied = 0;
    *version = 0;
    rc = dir ? list_dir(&list, &n, dir, err) : list_embedded(&list, &n, err);
    if (rc)
        return rc;
    if (n == 0 || list[n - 1].version < PI_SCHEMA_VERSION) {
        rc = pi_err_set(err, PI_EINVAL,
                        "migrations in '%s' stop at version %d; this build "
                        "needs %d",
                        dir ? dir : "(compiled in)",
                        n ? list[n - 1].version : 0, PI_SCHEMA_VERSION);
        goto cleanup;
    }
    rc = pi_db_connect(&conn, conninfo, err);
    if (rc)
        goto cleanup;
    rc = become_owner(conn, err);
    if (rc)
        goto cleanup;
    /* Session-level lock: held across the per-file transactions, released
     * explicitly (or by disconnecting, if we die). */
    snprintf(lock, sizeof(lock), "SELECT pg_advisory_lock(%lld)",
             (long long)PI_MIGRATE_LOCK_KEY);
    rc = pi_db_exec(conn, lock, err);
    if (rc)
        goto cleanup;
    locked = 1;
    /* Read after taking the lock: a migrator that held it before us has
     * committed everything it applied. */
    rc = pi_migrate_current(version, conn, err);
    if (rc)
        goto cleanup;
    for (size_t i = 0; i < n; i++) {
        int done = 0;
        char *sql;

        if (*version > 0) {
            rc = is_applied(&done, conn, list[i].version, err);
            if (rc)
                goto cleanup;
        }
        if (done)
            continue;
        sql = list[i].sql ? NULL : read_file(dir, list[i].file, err);
        if (list[i].sql == NULL && sql == NULL) {
            rc = PI_EINVAL;
            goto cleanup;
        }
        rc = apply_one(conn, &list[i], list[i].sql ? list[i].sql : sql, err);
        free(sql);
        if (rc)
            goto cleanup;
        (*applied)++;
        if (list[i].version > *version)
            *version = list[i].version;
        if (out)
            fprintf(out, "applied %s\n", list[i].file);
        else
            pi_info("applied migration %s", list[i].file);
    }
    rc = apply_citus(&citus, conn, err);
    if (rc)
        goto cleanup;
    if (citus && out)
        fprintf(out, "applied the Citus layout (migrations/citus)\n");
    else if (citus)
        pi_info("applied the Citus layout (migrations/citus)");
cleanup:
    if (locked && PQstatus(conn) == CONNECTION_OK) {
        PGresult *res;
        snprintf(lock, sizeof(lock), "SELECT pg_advisory_unlock(%lld)",
                 (long long)PI_MIGRATE_LOCK_KEY);
        res = PQexec(conn, lock);
        PQclear(res);
    }
    PQfinish(conn);
    free_list(list, n);
    return rc;
}
