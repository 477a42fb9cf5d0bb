/* pi_test_db.c -- a fresh, migrated database per test, and realistic presences
 */
#include "pi_test_db.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pi_test.h"
#include "presence/mem.h"
#include "presence/migrate.h"

/* conninfo with dbname replaced (either form of conninfo in, key=value out). */
static char *with_dbname(const char *conninfo, const char *dbname)
{
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    size_t cap = 1024, len = 0;
    char *out = pi_malloc(cap);

    if (opts == NULL)
        fail_msg("cannot parse conninfo %s", conninfo);
    out[0] = '\0';
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        const char *v = strcmp(o->keyword, "dbname") == 0 ? dbname : o->val;
        if (v == NULL)
            continue;
        while (len + strlen(o->keyword) + 2 * strlen(v) + 8 > cap)
            out = pi_realloc(out, cap *= 2);
        len += (size_t)sprintf(out + len, "%s%s='", len ? " " : "", o->keyword);
        for (; *v; v++) {
            if (*v == '\'' || *v == '\\')
                out[len++] = '\\';
            out[len++] = *v;
        }
        out[len++] = '\'';
        out[len] = '\0';
    }
    PQconninfoFree(opts);
    return out;
}

static char *vquery(PGconn *conn, int want_rows, const char *fmt, va_list ap)
{
    char sql[8192];
    PGresult *res;
    char *out = NULL;

    vsnprintf(sql, sizeof(sql), fmt, ap);
    res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK &&
        PQresultStatus(res) != PGRES_COMMAND_OK)
        fail_msg("SQL failed: %s: %s", sql, PQerrorMessage(conn));
    if (want_rows) {
        if (PQntuples(res) == 0)
            out = pi_strdup("");
        else if (PQgetisnull(res, 0, 0))
            out = pi_strdup("(null)");
        else
            out = pi_strdup(PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    return out;
}

void pi_test_db_exec(PGconn *conn, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vquery(conn, 0, fmt, ap);
    va_end(ap);
}

int64_t pi_test_db_int(PGconn *conn, const char *fmt, ...)
{
    va_list ap;
    char *s;
    int64_t v;

    va_start(ap, fmt);
    s = vquery(conn, 1, fmt, ap);
    va_end(ap);
    v = strcmp(s, "(null)") == 0 || *s == '\0' ? -1 : strtoll(s, NULL, 10);
    free(s);
    return v;
}

char *pi_test_db_text(PGconn *conn, const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    s = vquery(conn, 1, fmt, ap);
    va_end(ap);
    return s;
}

PGconn *pi_test_db_connect(const char *conninfo)
{
    PGconn *conn = PQconnectdb(conninfo);

    if (PQstatus(conn) != CONNECTION_OK)
        fail_msg("cannot connect to %s: %s", conninfo, PQerrorMessage(conn));
    return conn;
}

char *pi_test_db_create(const char *prefix)
{
    static unsigned counter;
    char name[64];
    PGconn *admin = pi_test_db_connect(pi_test_pg_conninfo());

    snprintf(name, sizeof(name), "pi_%s_%d_%u", prefix, (int)getpid(),
             ++counter);
    pi_test_db_exec(admin, "CREATE DATABASE %s", name);
    PQfinish(admin);
    return with_dbname(pi_test_pg_conninfo(), name);
}

char *pi_test_db_create_migrated(const char *prefix)
{
    char *conninfo = pi_test_db_create(prefix);
    int applied, version;
    pi_err err;

    pi_err_clear(&err);
    if (pi_migrate_apply(&applied, &version, conninfo, NULL, NULL, &err) != 0)
        fail_msg("migrate: %s", err.msg);
    return conninfo;
}

void pi_test_db_drop(const char *conninfo)
{
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    const char *dbname = NULL;
    PGconn *admin;

    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (strcmp(o->keyword, "dbname") == 0)
            dbname = o->val;
    }
    if (dbname) {
        admin = pi_test_db_connect(pi_test_pg_conninfo());
        pi_test_db_exec(admin, "DROP DATABASE IF EXISTS %s WITH (FORCE)",
                        dbname);
        PQfinish(admin);
    }
    PQconninfoFree(opts);
}

size_t pi_test_gen_presence(char *buf, size_t cap, int64_t first_id, uint64_t i)
{
    return pi_test_gen_presence_ex(buf, cap, first_id, i, 0);
}

size_t pi_test_gen_presence_ex(char *buf, size_t cap, int64_t first_id,
                               uint64_t i, int timed_ids)
{
    static const char *const types[] = {"connect",        "disconnect",
                                        "connect",        "disconnect",
                                        "failed_connect", "declare_asset"};
    static const char *const reasons[] = {
        "cold_boot",
        "idle_out",
        "ppp_lost",
        "modem_reset",
        "socket_closed",
        "network_error",
        "closed_by_server",
        "client_disconnect",
        "Unhandled reason 95074823, please contact maintainer"};
    static const char *const offsets[] = {"Z",      "+01:00", "+02:00",
                                          "-05:30", "+00:00", "+09:45"};
    uint64_t h = (i + 1) * 0x9e3779b97f4a7c15ULL;
    /* timed_ids: the id's top bits are the message's own time (below), as
     * CloudConnect's are: one id per 250 ms. */
    int64_t id = timed_ids ? first_id + (((int64_t)i * 250) << 22)
                           : first_id + (int64_t)i;
    int64_t conn = id - 4096 - (int64_t)(h % 100000);
    const char *type = types[i % 6];
    /* A time from the first id's own (ms since 2010 in the top bits), four
     * events a second: increasing with i, as in production. */
    int64_t ms = (first_id >> 22) + INT64_C(1262304000000) + (int64_t)i * 250;
    int64_t secs = ms / 1000, days = secs / 86400, sod = secs % 86400;
    char asset[40];
    int n;

    if (strcmp(type, "failed_connect") == 0)
        snprintf(asset, sizeof(asset), "null");
    else
        snprintf(asset, sizeof(asset), "\"35%013" PRIu64 "\"",
                 (uint64_t)(h >> 7) % UINT64_C(10000000000000) / 1000 * 1000 +
                     i % 1000);
    {
        /* days since 1970 → y-m-d */
        int64_t z = days + 719468, era = z / 146097;
        int64_t doe = z - era * 146097;
        int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        int64_t mp = (5 * doy + 2) / 153;
        int d = (int)(doy - (153 * mp + 2) / 5 + 1);
        int m = (int)(mp < 10 ? mp + 3 : mp - 9);
        int y = (int)(yoe + era * 400 + (m <= 2));
        const char *off = offsets[i % 6];
        /* Express the same instant in the offset's local time. */
        int om = 0;
        if (off[0] == '+' || off[0] == '-') {
            om = atoi(off + 1) * 60 + atoi(off + 4);
            if (off[0] == '-')
                om = -om;
        }
        int64_t lsod = sod + om * 60;
        if (lsod < 0 || lsod >= 86400) {
            /* Keep it simple: stay in UTC when the day would change. */
            off = "Z";
            lsod = sod;
        }
        n = snprintf(buf, cap,
                     "{\"id\":%" PRId64 ",\"id_str\":\"%" PRId64
                     "\",\"connection_id\":%" PRId64
                     ",\"connection_id_str\":\"%" PRId64
                     "\",\"type\":\"%s\",\"reason\":\"%s\",\"asset\":%s,"
                     "\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03d%s\"}",
                     id, id, conn, conn, type, reasons[h % 9], asset, y, m, d,
                     (int)(lsod / 3600), (int)(lsod / 60 % 60),
                     (int)(lsod % 60), (int)(ms % 1000), off);
    }
    return n < 0 ? 0 : (size_t)n;
}
