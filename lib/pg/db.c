/* db.c -- PostgreSQL connections, SQLSTATE classification and retry backoff */
#include "presence/db.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "presence/log.h"

/* The SQLSTATE in a verbose libpq message ("...failed: FATAL:  28P01:
 * password ..."), the code after the severity's "<SEVERITY>:  ", which the
 * server words in its own language but libpq always lays out this way.
 * Copied into sqlstate[6]; 0 when there is none (a client-side failure). */
static int message_sqlstate(const char *msg, char sqlstate[6])
{
    for (const char *p = strstr(msg, ":  "); p; p = strstr(p + 1, ":  ")) {
        const char *c = p + 3;
        int ok = 1;

        for (int i = 0; i < 5 && ok; i++)
            ok = (c[i] >= '0' && c[i] <= '9') || (c[i] >= 'A' && c[i] <= 'Z');
        if (ok && c[5] == ':') {
            memcpy(sqlstate, c, 5);
            sqlstate[5] = '\0';
            return 1;
        }
    }
    return 0;
}

/* Why a connection failed, as one code, and libpq's message without the
 * LOCATION line of verbose errors (into why).
 *
 * The server said why (a SQLSTATE): class 08 (connection), 53 (too many
 * connections, also after authentication), 57 (starting up, shutting down,
 * in recovery) pass; anything else — 28P01 wrong password, 28000 no
 * pg_hba.conf entry, 3D000 no such database, 42501 no CONNECT privilege —
 * does not.
 *
 * The client gave up by itself: no password to send, or it refused the
 * server's certificate (sslmode verify-ca/verify-full: not signed by
 * sslrootcert, or for another host name) or a server without TLS. libpq has
 * no code for these, only its own messages, which are in English here (this
 * program never sets LC_MESSAGES); anything else it says (refused, timed
 * out, no route, connection closed) means the server is not there yet. */
static int connect_failure(const PGconn *conn, char *why, size_t cap)
{
    static const char *const tls_refusals[] = {
        "server certificate for", /* ... does not match host name */
        "could not get server's host name from server certificate",
        "certificate verify failed", "root certificate file",
        "server does not support SSL"};
    const char *msg = PQerrorMessage(conn), *loc;
    char sqlstate[6];
    size_t len;

    loc = strstr(msg, "\nLOCATION:");
    len = loc ? (size_t)(loc - msg) : strlen(msg);
    while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
        len--;
    snprintf(why, cap, "%.*s", (int)len, msg);
    if (message_sqlstate(why, sqlstate))
        return strncmp(sqlstate, "08", 2) == 0 ||
                       strncmp(sqlstate, "53", 2) == 0 ||
                       strncmp(sqlstate, "57", 2) == 0
                   ? PI_ERETRY
                   : PI_EFATAL;
    if (PQconnectionNeedsPassword(conn))
        return PI_EFATAL;
    for (size_t i = 0; i < sizeof(tls_refusals) / sizeof(*tls_refusals); i++) {
        if (strstr(why, tls_refusals[i]))
            return PI_EFATAL;
    }
    return PI_ERETRY;
}

int pi_db_connect(PGconn **out, const char *conninfo, pi_err *err)
{
    /* Defaults that bound how long a dead or unreachable server can hold
     * us: the conninfo given comes after them (expanded from dbname) and
     * overrides any of them. */
    static const char *const defaults[][2] = {
        {"connect_timeout", "10"},
        {"keepalives", "1"},
        {"keepalives_idle", "30"},
        {"keepalives_interval", "10"},
        {"keepalives_count", "3"},
        {"tcp_user_timeout", "60000"},
        {"fallback_application_name", "presence-ingest"}};
    const char *keys[16], *vals[16];
    char masked[1024], *perr = NULL;
    PQconninfoOption *opts;
    PGconn *conn;
    int n = 0;

    *out = NULL;
    for (size_t i = 0; i < sizeof(defaults) / sizeof(*defaults); i++) {
        keys[n] = defaults[i][0];
        vals[n++] = defaults[i][1];
    }
    pi_log_mask_conninfo(conninfo ? conninfo : "", masked, sizeof(masked));
    if (conninfo && *conninfo) {
        /* Parse first: a malformed conninfo is a configuration error that no
         * amount of waiting will fix. */
        opts = PQconninfoParse(conninfo, &perr);
        if (opts == NULL) {
            pi_err_set(err, PI_EINVAL, "bad PostgreSQL conninfo '%s': %s",
                       masked, perr ? perr : "out of memory");
            PQfreemem(perr);
            return PI_EINVAL;
        }
        PQconninfoFree(opts);
        keys[n] = "dbname";
        vals[n++] = conninfo;
    }
    keys[n] = NULL;
    vals[n] = NULL;
    /* Started, given verbose errors, then made again in full by PQreset:
     * the only way to have libpq print the SQLSTATE of an error the server
     * sends while connecting (there is no PGresult to ask). The first
     * attempt has sent nothing yet (at most a TCP connect): the server
     * drops a connection that closes before its startup packet without an
     * error (log_connections shows one more "connection received"). The
     * reset is a full, blocking PQconnectdb: connect_timeout per host,
     * multiple hosts, target_session_attrs. */
    conn = PQconnectStartParams(keys, vals, 1);
    if (conn == NULL)
        return pi_err_set(err, PI_EFATAL, "PostgreSQL: out of memory");
    PQsetErrorVerbosity(conn, PQERRORS_VERBOSE);
    PQreset(conn);
    if (PQstatus(conn) != CONNECTION_OK) {
        char why[PI_ERR_MSG_MAX];
        int code = connect_failure(conn, why, sizeof(why));
        pi_err_set(err, code, "cannot connect to PostgreSQL '%s': %s", masked,
                   why);
        PQfinish(conn);
        return code;
    }
    PQsetErrorVerbosity(conn, PQERRORS_DEFAULT);
    *out = conn;
    return 0;
}

const char *pi_db_sqlstate(const PGresult *res)
{
    const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return s ? s : "";
}

/* Citus relays a worker's broken connection as an internal error (XX000)
 * with the worker's words: the same outage as class 08 or 57 on one server,
 * so it is retried too (a coordinator's own XX000 is not). */
static int citus_remote_failure(const PGresult *res)
{
    static const char *const phrases[] = {
        "terminating connection due to administrator command",
        "connection to the remote node",
        "server closed the connection unexpectedly",
        "SSL connection has been closed unexpectedly",
        "the database system is shutting down",
        "the database system is starting up",
        "failed to prepare transaction",
        "failure on connection marked as essential",
        "could not establish any connections to the node",
    };
    const char *msg =
        res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

    if (msg == NULL)
        return 0;
    for (size_t i = 0; i < sizeof(phrases) / sizeof(*phrases); i++) {
        if (strstr(msg, phrases[i]))
            return 1;
    }
    return 0;
}

int pi_db_classify(const PGconn *conn, const PGresult *res)
{
    const char *s = pi_db_sqlstate(res);

    if (*s == '\0') {
        /* No SQLSTATE: libpq generated the error itself, which means the
         * connection broke (or never existed). */
        return PI_ERETRY;
    }
    if (strncmp(s, "08", 2) == 0 || strncmp(s, "53", 2) == 0 ||
        strncmp(s, "57", 2) == 0 || strcmp(s, "40001") == 0 ||
        strcmp(s, "40P01") == 0)
        return PI_ERETRY;
    if (strncmp(s, "22", 2) == 0 || strncmp(s, "23", 2) == 0)
        return PI_EDATA;
    if (strcmp(s, "XX000") == 0 && citus_remote_failure(res))
        return PI_ERETRY;
    /* A statement failing while the connection is gone (e.g. 25P02 after a
     * broken COPY) is still about the connection. */
    if (PQstatus(conn) == CONNECTION_BAD)
        return PI_ERETRY;
    return PI_EFATAL;
}

int pi_db_fail(pi_err *err, const PGconn *conn, const PGresult *res,
               const char *what)
{
    const char *msg =
        res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *s = pi_db_sqlstate(res);
    int code = pi_db_classify(conn, res);

    if (msg == NULL)
        msg = PQerrorMessage(conn);
    return pi_err_set(err, code, "%s: %s%s%s", what, s, *s ? ": " : "", msg);
}

int pi_db_exec(PGconn *conn, const char *sql, pi_err *err)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    int rc = 0;

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        rc = pi_db_fail(err, conn, res, sql);
    PQclear(res);
    return rc;
}

/* xorshift64*: plenty for spreading retry delays. */
static uint64_t next_rand(uint64_t *seed)
{
    uint64_t x = *seed ? *seed : 0x9e3779b97f4a7c15ULL;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *seed = x;
    return x * 0x2545f4914f6cdd1dULL;
}

int pi_db_backoff_ms(unsigned attempt, int min_ms, int max_ms, uint64_t *seed)
{
    int64_t step = min_ms > 0 ? min_ms : 1;
    int64_t half;

    if (max_ms < step)
        max_ms = (int)step;
    for (unsigned i = 1; i < attempt && step < max_ms; i++)
        step *= 2;
    if (step > max_ms)
        step = max_ms;
    half = step / 2;
    return (int)(step - half +
                 (int64_t)(next_rand(seed) % (uint64_t)(half + 1)));
}

int pi_db_sleep_ms(int ms, const atomic_int *cancel)
{
    while (ms > 0) {
        int slice = ms < 50 ? ms : 50;
        struct timespec ts = {slice / 1000, (long)(slice % 1000) * 1000000L};

        if (cancel && atomic_load(cancel))
            return -1;
        nanosleep(&ts, NULL);
        ms -= slice;
    }
    return cancel && atomic_load(cancel) ? -1 : 0;
}
