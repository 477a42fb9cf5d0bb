/* report.c -- one connectivity or fleet report: its SQL call, then the
 * formatter */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "presence/db.h"
#include "presence/log.h"
#include "presence/mem.h"
#include "presence/report.h"

/* One kind: the SELECT (parameters $1 since, $2 until, $3 tz, $4 window in
 * seconds, $5 threshold, $6 asset, $7 debounce in seconds, $8 period, $9
 * target, $10 step in seconds, $11 state, $12 offline-for in seconds (NULL:
 * no filter); each kind uses some of them), and its §7 or §8 columns. The
 * definitions are the database's; only the column list and order are here. */
typedef struct report_sql {
    const char *select;     /* every asset: SELECT … FROM … */
    const char *select_one; /* --asset ($6); NULL: select WHERE asset = $6 */
    const char *order;      /* "" when sorted here (by_first) */
    int by_first;           /* sort here, byte-wise on the first two columns */
    int catch_up;           /* reads the rollup: let it catch up first */
    size_t ncols;
    const char *names[9];
    pi_report_col types[9];
} report_sql;

/* Every asset: asset_status's rows (the rollup, caught up first), the
 * caught-up assets in asset order from an index, then the few a live
 * writer changed since (0006). One asset: its rows in presences, whatever
 * the rollup's lag (three index probes). Sorted here, byte-wise like
 * COLLATE "C" (asset is unique): one comparison a row when they came in
 * order. --state and --offline-for (§8) filter the rows as they come. */
#define STATUS_FILTER                                                          \
    " WHERE ($11::text IS NULL OR state = $11)"                                \
    " AND ($12::int8 IS NULL OR (state = 'offline'"                            \
    " AND since <= $2 - make_interval(secs => $12)))"

static const report_sql status_sql = {
    "SELECT asset, state, since, reason, connection_id "
    "FROM asset_status_by_asset()" STATUS_FILTER,
    "SELECT asset, state, since, reason, connection_id "
    "FROM asset_status_of($6)" STATUS_FILTER,
    "",
    1,
    1,
    5,
    {"asset", "state", "since", "reason", "connection_id"},
    {PI_COL_TEXT, PI_COL_TEXT, PI_COL_TIME, PI_COL_TEXT, PI_COL_ID}};

static const report_sql sessions_sql = {
    "SELECT asset, connection_id, connected_at, ended_at, end_kind, "
    "duration_s, connect_reason, disconnect_reason "
    "FROM sessions_in($1, $2)",
    NULL,
    " ORDER BY asset COLLATE \"C\", coalesce(connected_at, ended_at), "
    "connection_id",
    0,
    0,
    8,
    {"asset", "connection_id", "connected_at", "ended_at", "end_kind",
     "duration_s", "connect_reason", "disconnect_reason"},
    {PI_COL_TEXT, PI_COL_ID, PI_COL_TIME, PI_COL_TIME, PI_COL_TEXT,
     PI_COL_DURATION, PI_COL_TEXT, PI_COL_TEXT}};

/* Every asset: day after day, a whole UTC day from the rollup's days merged
 * in asset order with the open sessions (0006); sorted here by asset and
 * day. One asset: the filter reaches daily_uptime's index scans. */
static const report_sql uptime_sql = {
    "SELECT asset, day, online_s, sessions, ratio "
    "FROM daily_uptime_by_asset($3, $1, $2)",
    "SELECT asset, day, online_s, sessions, ratio "
    "FROM daily_uptime($3, $1, $2) WHERE asset = $6",
    "",
    1,
    1,
    5,
    {"asset", "day", "online_s", "sessions", "ratio"},
    {PI_COL_TEXT, PI_COL_DAY, PI_COL_DURATION, PI_COL_NUM, PI_COL_RATIO}};

/* The table format's uptime: the same rows and a strip of hours. */
static const report_sql uptime_strip_sql = {
    "SELECT u.asset, u.day, u.online_s, u.sessions, u.ratio, h.hours "
    "FROM daily_uptime($3, $1, $2) u "
    "JOIN daily_uptime_hours($3, $1, $2) h USING (asset, day)",
    NULL,
    "",
    1,
    1,
    6,
    {"asset", "day", "online_s", "sessions", "ratio", "hours"},
    {PI_COL_TEXT, PI_COL_DAY, PI_COL_DURATION, PI_COL_NUM, PI_COL_RATIO,
     PI_COL_HOURS}};

static const report_sql reasons_sql = {
    "SELECT type, reason, side, documented, count "
    "FROM reason_counts($1, $2)",
    NULL,
    " ORDER BY count DESC, type COLLATE \"C\", reason COLLATE \"C\"",
    0,
    0,
    5,
    {"type", "reason", "side", "documented", "count"},
    {PI_COL_TEXT, PI_COL_TEXT, PI_COL_TEXT, PI_COL_BOOL, PI_COL_NUM}};

static const report_sql flapping_sql = {
    "SELECT asset, disconnects, window_start, window_end "
    "FROM flapping_assets(make_interval(secs => $4), $5::int4, $1, $2)",
    NULL,
    " ORDER BY disconnects DESC, asset COLLATE \"C\"",
    0,
    1,
    4,
    {"asset", "disconnects", "window_start", "window_end"},
    {PI_COL_TEXT, PI_COL_NUM, PI_COL_TIME, PI_COL_TIME}};

/* CONTRACT §8. Outages of every asset, or (--asset) of one: the _for
 * variant reads that asset's sessions only. */
static const report_sql outages_sql = {
    "SELECT asset, started_at, ended_at, duration_s, disconnect_reason, "
    "reconnect_reason "
    "FROM asset_outages($1, $2, make_interval(secs => $7))",
    "SELECT asset, started_at, ended_at, duration_s, disconnect_reason, "
    "reconnect_reason "
    "FROM asset_outages_for(ARRAY[$6], $1, $2, make_interval(secs => $7))",
    " ORDER BY asset COLLATE \"C\", started_at",
    0,
    0,
    6,
    {"asset", "started_at", "ended_at", "duration_s", "disconnect_reason",
     "reconnect_reason"},
    {PI_COL_TEXT, PI_COL_TIME, PI_COL_TIME, PI_COL_DURATION, PI_COL_TEXT,
     PI_COL_TEXT}};

static const report_sql availability_sql = {
    "SELECT asset, period_start, observed_s, online_s, availability, "
    "outages, downtime_s, longest_outage_s "
    "FROM asset_availability($3, $1, $2, $8, make_interval(secs => $7))",
    "SELECT asset, period_start, observed_s, online_s, availability, "
    "outages, downtime_s, longest_outage_s "
    "FROM asset_availability_for(ARRAY[$6], $3, $1, $2, $8, "
    "make_interval(secs => $7))",
    " ORDER BY asset COLLATE \"C\", period_start",
    0,
    0,
    8,
    {"asset", "period_start", "observed_s", "online_s", "availability",
     "outages", "downtime_s", "longest_outage_s"},
    {PI_COL_TEXT, PI_COL_TIME, PI_COL_DURATION, PI_COL_DURATION, PI_COL_RATIO,
     PI_COL_NUM, PI_COL_DURATION, PI_COL_DURATION}};

#define FLEET_AVAILABILITY_SELECT                                              \
    "SELECT period_start, assets, mean, p50, p05, below_target"
#define FLEET_AVAILABILITY_FROM                                                \
    " FROM fleet_availability($3, $1, $2, $8, make_interval(secs => $7), "     \
    "$9)"

static const report_sql fleet_availability_sql = {
    FLEET_AVAILABILITY_SELECT FLEET_AVAILABILITY_FROM,
    NULL,
    " ORDER BY period_start",
    0,
    0,
    6,
    {"period_start", "assets", "mean", "p50", "p05", "below_target"},
    {PI_COL_TIME, PI_COL_NUM, PI_COL_RATIO, PI_COL_RATIO, PI_COL_RATIO,
     PI_COL_NUM}};

/* The table format's: a period whose mean is below the target is marked. */
static const report_sql fleet_availability_mark_sql = {
    FLEET_AVAILABILITY_SELECT
    ", CASE WHEN mean < $9 THEN 'below' END" FLEET_AVAILABILITY_FROM,
    NULL,
    " ORDER BY period_start",
    0,
    0,
    7,
    {"period_start", "assets", "mean", "p50", "p05", "below_target", "target"},
    {PI_COL_TIME, PI_COL_NUM, PI_COL_RATIO, PI_COL_RATIO, PI_COL_RATIO,
     PI_COL_NUM, PI_COL_MARK}};

static const report_sql fleet_sql = {
    "SELECT time, online, offline, declared, connects, disconnects, "
    "failed_connects, assets_disconnected "
    "FROM fleet_timeline(make_interval(secs => $10), $1, $2)",
    "SELECT time, online, offline, declared, connects, disconnects, "
    "failed_connects, assets_disconnected "
    "FROM fleet_timeline_for(ARRAY[$6], make_interval(secs => $10), $1, $2)",
    " ORDER BY time",
    0,
    0,
    8,
    {"time", "online", "offline", "declared", "connects", "disconnects",
     "failed_connects", "assets_disconnected"},
    {PI_COL_TIME, PI_COL_NUM, PI_COL_NUM, PI_COL_NUM, PI_COL_NUM, PI_COL_NUM,
     PI_COL_NUM, PI_COL_NUM}};

/* The table format's: the online count drawn beside the numbers, so that a
 * mass disconnect shows at a glance. */
static const report_sql fleet_spark_sql = {
    "SELECT time, online, online, offline, declared, connects, disconnects, "
    "failed_connects, assets_disconnected "
    "FROM fleet_timeline(make_interval(secs => $10), $1, $2)",
    "SELECT time, online, online, offline, declared, connects, disconnects, "
    "failed_connects, assets_disconnected "
    "FROM fleet_timeline_for(ARRAY[$6], make_interval(secs => $10), $1, $2)",
    " ORDER BY time",
    0,
    0,
    9,
    {"time", "online", "", "offline", "declared", "connects", "disconnects",
     "failed_connects", "assets_disconnected"},
    {PI_COL_TIME, PI_COL_NUM, PI_COL_SPARK, PI_COL_NUM, PI_COL_NUM, PI_COL_NUM,
     PI_COL_NUM, PI_COL_NUM, PI_COL_NUM}};

static const report_sql *sql_of(const pi_report_query *q, pi_report_format fmt)
{
    int table = fmt == PI_REPORT_TABLE;

    switch (q->kind) {
    case PI_REPORT_STATUS:
        return &status_sql;
    case PI_REPORT_SESSIONS:
        return &sessions_sql;
    case PI_REPORT_UPTIME:
        return table ? &uptime_strip_sql : &uptime_sql;
    case PI_REPORT_REASONS:
        return &reasons_sql;
    case PI_REPORT_FLAPPING:
        return &flapping_sql;
    case PI_REPORT_OUTAGES:
        return &outages_sql;
    case PI_REPORT_AVAILABILITY:
        if (q->fleet)
            return table ? &fleet_availability_mark_sql
                         : &fleet_availability_sql;
        return &availability_sql;
    case PI_REPORT_FLEET:
        return table ? &fleet_spark_sql : &fleet_sql;
    }
    return NULL;
}

/* µs since 1970 → "YYYY-MM-DDTHH:MM:SS.ffffffZ" (PostgreSQL reads it). */
static void utc_text(char *buf, size_t cap, int64_t us)
{
    int64_t secs = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
    int64_t frac = us - secs * 1000000;
    time_t t = (time_t)secs;
    struct tm tm;

    gmtime_r(&t, &tm);
    snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)frac);
}

/* The settings every report needs, and the zone: SET LOCAL, in the report's
 * own transaction, so that nothing is left on the session (through
 * PgBouncer's transaction pooling each transaction may be on another server
 * connection, where a session setting would reach other clients and another
 * client's could reach this report: docs/packaging.md). */
static int setup_session(PGconn *conn, const char *tz, pi_err *err)
{
    const char *params[1] = {tz};
    PGresult *res;
    int rc;

    /* jit off: compiling these plans cost more than running them (1.5 s
     * of 2.3 s for a day's uptime of 2 000 assets, measured). work_mem for
     * this session only: the sessions' sorts spill to disk at the default
     * 4 MB. */
    rc =
        pi_db_exec(conn,
                   "BEGIN; SET LOCAL DateStyle = 'ISO, YMD'; "
                   "SET LOCAL extra_float_digits = 1; "
                   "SET LOCAL IntervalStyle = 'postgres'; SET LOCAL jit = off; "
                   "SET LOCAL work_mem = '64MB'",
                   err);
    if (rc)
        return rc;
    res = PQexecParams(conn, "SELECT set_config('TimeZone', $1, true)", 1, NULL,
                       params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        if (strcmp(pi_db_sqlstate(res), "22023") == 0)
            rc = pi_err_set(err, PI_EINVAL,
                            "--tz: unknown time zone '%s' (an IANA name such "
                            "as Europe/Paris or UTC)",
                            tz);
        else
            rc = pi_db_fail(err, conn, res, "report: set time zone");
    }
    PQclear(res);
    return rc;
}

/* A row and its first two columns, to sort rows byte-wise on them (asset,
 * then a day as YYYY-MM-DD, which sorts as text). */
typedef struct row_key {
    const char *key, *key2;
    int row;
} row_key;

static int cmp_keys(const void *a, const void *b)
{
    const row_key *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : strcmp(x->key2, y->key2);
}

/* Sort the rows, unless they came in order already (asset_state's heap
 * usually is: checking costs one comparison a row, sorting 17). */
static void sort_rows(row_key *order, size_t nrows)
{
    for (size_t r = 1; r < nrows; r++) {
        if (cmp_keys(&order[r - 1], &order[r]) > 0) {
            qsort(order, nrows, sizeof(*order), cmp_keys);
            return;
        }
    }
}

/* Let the rollup behind asset_status, daily_uptime and flapping_assets
 * catch up before a report of every asset (it is exact without: the
 * assets it has not caught up with are computed from presences, which is
 * what makes a report slow after a large load with no service running). A
 * user who may only read, or a catch-up already running elsewhere, is fine:
 * the report goes on. */
static void catch_up(PGconn *conn)
{
    PGresult *res = PQexec(conn, "SELECT presence_rollup_refresh()");

    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        pi_debug("report: rollup not caught up: %s", PQerrorMessage(conn));
    PQclear(res);
}

int pi_report_rollup_lag(double *out, int64_t *pending, PGconn *conn,
                         pi_err *err)
{
    PGresult *res = PQexec(conn, "SELECT presence_rollup_lag(), "
                                 "(SELECT count(*) FROM presence_dirty)");
    int rc = 0;

    *out = 0;
    *pending = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        rc = pi_db_fail(err, conn, res, "presence_rollup_lag()");
    else {
        *out = strtod(PQgetvalue(res, 0, 0), NULL);
        *pending = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    }
    PQclear(res);
    return rc;
}

int pi_report_run(size_t *rows, PGconn *conn, const pi_report_query *q,
                  pi_report_format fmt, FILE *out, pi_err *err)
{
    const report_sql *s = sql_of(q, fmt);
    char since[64], until[64], window[24], threshold[24], debounce[24];
    char target[32], step[24], offline_for[24], *sql;
    const char *params[12];
    /* timestamptz, timestamptz, text, int8, int8, text, int8, text, float8,
     * int8, text, int8: typed, so that a kind need not use them all. */
    static const Oid param_types[12] = {1184, 1184, 25,  20, 20, 25,
                                        20,   25,   701, 20, 25, 20};
    const char **cells = NULL;
    row_key *order = NULL;
    PGresult *res = NULL;
    size_t len, nrows;
    int rc;

    if (rows)
        *rows = 0;
    /* Before the report's transaction: a catch-up that fails (a role that
     * may only read) must not abort it. */
    if (s->catch_up && q->asset == NULL)
        catch_up(conn);
    rc = setup_session(conn, q->tz, err);
    if (rc)
        goto cleanup;
    utc_text(since, sizeof(since), q->since_us);
    utc_text(until, sizeof(until), q->until_us);
    snprintf(window, sizeof(window), "%" PRId64, q->window_s);
    snprintf(threshold, sizeof(threshold), "%" PRId64, q->threshold);
    params[0] = since;
    params[1] = until;
    params[2] = q->tz;
    params[3] = window;
    params[4] = threshold;
    params[5] = q->asset;
    snprintf(debounce, sizeof(debounce), "%" PRId64, q->debounce_s);
    snprintf(target, sizeof(target), "%.17g", q->target);
    snprintf(step, sizeof(step), "%" PRId64, q->step_s);
    snprintf(offline_for, sizeof(offline_for), "%" PRId64, q->offline_for_s);
    params[6] = debounce;
    params[7] = q->period;
    params[8] = target;
    params[9] = step;
    params[10] = q->state;
    params[11] = q->offline_for_s >= 0 ? offline_for : NULL;

    /* The asset filter is a parameter; PostgreSQL pushes it down to the
     * index scans through the inlined SQL functions. */
    {
        const char *select =
            q->asset && s->select_one ? s->select_one : s->select;
        const char *filter =
            q->asset && !s->select_one ? " WHERE asset = $6" : "";

        len = strlen(select) + strlen(filter) + strlen(s->order) + 1;
        sql = pi_malloc(len);
        snprintf(sql, len, "%s%s%s", select, filter, s->order);
    }
    res = PQexecParams(conn, sql, 12, param_types, params, NULL, NULL, 0);
    free(sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        /* 42883 undefined function, 42P01 undefined table: 0002 missing. */
        const char *state = pi_db_sqlstate(res);
        if (strcmp(state, "42883") == 0 || strcmp(state, "42P01") == 0)
            rc = pi_err_set(err, PI_ESCHEMA,
                            "the database has no reports yet: run "
                            "`presence-ingest migrate`");
        else
            rc = pi_db_fail(err, conn, res, "report");
        goto cleanup;
    }
    if ((size_t)PQnfields(res) != s->ncols) {
        rc = pi_err_set(err, PI_EFATAL, "report: %d columns, expected %zu",
                        PQnfields(res), s->ncols);
        goto cleanup;
    }
    nrows = (size_t)PQntuples(res);
    cells = pi_calloc(nrows * s->ncols + 1, sizeof(char *));
    order = pi_calloc(nrows + 1, sizeof(*order));
    for (size_t r = 0; r < nrows; r++) {
        order[r].key = PQgetvalue(res, (int)r, 0);
        order[r].key2 = PQgetvalue(res, (int)r, 1); /* every kind has 4+ */
        order[r].row = (int)r;
    }
    if (s->by_first)
        sort_rows(order, nrows);
    for (size_t r = 0; r < nrows; r++) {
        int row = order[r].row;
        for (size_t c = 0; c < s->ncols; c++) {
            cells[r * s->ncols + c] = PQgetisnull(res, row, (int)c)
                                          ? NULL
                                          : PQgetvalue(res, row, (int)c);
        }
    }
    pi_report_write(out, fmt, s->ncols, s->names, s->types, nrows, cells);
    if (rows)
        *rows = nrows;
cleanup:
    free(order);
    free(cells);
    PQclear(res);
    /* Read only: ending the transaction either way changes nothing; the
     * connection is left as it came, for the next report. */
    if (PQtransactionStatus(conn) != PQTRANS_IDLE)
        PQclear(PQexec(conn, rc ? "ROLLBACK" : "COMMIT"));
    return rc;
}
