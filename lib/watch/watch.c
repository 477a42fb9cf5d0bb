/* watch.c -- `watch`: LISTEN, read the change log from the last seq on,
 * reconnect and resume; hold offline changes for --offline-for */
#include "presence/watch.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "presence/db.h"
#include "presence/log.h"
#include "presence/mem.h"
#include "presence/migrate.h"
#include "presence/times.h"
#include "watch_int.h"

/* Rows per fetch; a full one is followed by the next at once. */
#define FETCH_ROWS 1000
/* Read even without a notification this often: a connection that died
 * without a word (a network gone) shows up here. */
#define IDLE_FETCH_MS 10000
/* Longest wait in one poll(): how soon *stop is noticed. */
#define SLICE_MS 200
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

/* The printed columns (CONTRACT §8), then the one that is not printed. */
#define NCOLS 9
#define COL_ASSET 2
#define COL_STATE 3
#define COL_DUE 9

static const char *const names[NCOLS] = {
    "seq",    "recorded_at",   "asset",          "state",         "since",
    "reason", "connection_id", "previous_state", "previous_since"};
static const pi_report_col types[NCOLS] = {
    PI_COL_NUM,  PI_COL_TIME, PI_COL_TEXT, PI_COL_TEXT, PI_COL_TIME,
    PI_COL_TEXT, PI_COL_ID,   PI_COL_TEXT, PI_COL_TIME};

static const char fetch_sql[] =
    "SELECT seq, recorded_at, asset, state, since, reason, connection_id,"
    " previous_state, previous_since,"
    " CASE WHEN state = 'offline' THEN greatest(0, ceil(extract(epoch FROM"
    " since + $2::bigint * interval '1 millisecond' - clock_timestamp())"
    " * 1000))::bigint END"
    " FROM asset_status_changes"
    " WHERE seq > $1"
    " ORDER BY seq LIMIT 1000";

typedef struct watch {
    const pi_watch_opts *o;
    FILE *out;
    PGconn *conn;
    int64_t last;
    pi_watch__pending *pending;
    size_t widths[NCOLS];
    bool header_done;
    /* Rows to print, collected per fetch (pointers into res or held). */
    const char **cells;
    size_t nrows, cap;
} watch;

/* ---- output -------------------------------------------------------------- */

static void add_row(watch *w, const char *const *row)
{
    const char *state = row[COL_STATE];

    if (w->o->state != NULL &&
        (state == NULL || strcmp(state, w->o->state) != 0))
        return;
    pi_grow((void **)&w->cells, &w->cap, (w->nrows + 1) * NCOLS,
            sizeof(*w->cells));
    memcpy(w->cells + w->nrows * NCOLS, row, NCOLS * sizeof(*row));
    w->nrows++;
}

static int flush_rows(watch *w, pi_err *err)
{
    if (w->nrows > 0 || !w->header_done)
        pi_report_write_lines(w->out, w->o->format, NCOLS, names, types,
                              w->nrows, w->cells, w->widths, !w->header_done);
    w->header_done = true;
    w->nrows = 0;
    if (fflush(w->out) != 0 || ferror(w->out))
        return pi_err_set(err, PI_EFATAL, "cannot write the output");
    return 0;
}

/* Print the held changes that are due. */
static int release_due(watch *w, pi_err *err)
{
    pi_watch__held *h, **done = NULL;
    size_t n = 0, cap = 0;
    int rc;

    while ((h = pi_watch__pending_pop_due(w->pending, pi_mono_ms())) != NULL) {
        pi_grow((void **)&done, &cap, n + 1, sizeof(*done));
        done[n++] = h;
        add_row(w, (const char *const *)h->row);
    }
    rc = n ? flush_rows(w, err) : 0;
    for (size_t i = 0; i < n; i++)
        pi_watch__held_free(done[i]);
    free(done);
    return rc;
}

/* One change read: print it, hold it, or drop it (--offline-for). */
static void take_change(watch *w, const char *const *row, const char *due)
{
    const char *state = row[COL_STATE];

    if (w->o->offline_for_ms > 0) {
        if (state != NULL && strcmp(state, "offline") == 0) {
            int64_t wait_ms = due ? strtoll(due, NULL, 10) : 0;

            if (wait_ms > 0) {
                pi_watch__pending_hold(w->pending, pi_mono_ms() + wait_ms, row);
                return;
            }
            pi_watch__pending_drop(w->pending, row[COL_ASSET]);
        } else if (pi_watch__pending_drop(w->pending, row[COL_ASSET])) {
            /* Back within D: neither the offline change nor this one. */
            return;
        }
    }
    add_row(w, row);
}

/* ---- the database ------------------------------------------------------- */

/* Read and print everything after w->last. */
static int fetch(watch *w, pi_err *err)
{
    for (;;) {
        char last[24], wait[24];
        const char *params[2] = {last, wait};
        PGresult *res;
        int n, rc;

        snprintf(last, sizeof(last), "%" PRId64, w->last);
        snprintf(wait, sizeof(wait), "%" PRId64, w->o->offline_for_ms);
        res = PQexecParams(w->conn, fetch_sql, 2, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            rc = pi_db_fail(err, w->conn, res, "reading asset_status_changes");
            PQclear(res);
            return rc;
        }
        n = PQntuples(res);
        for (int r = 0; r < n; r++) {
            const char *row[NCOLS];

            for (int c = 0; c < NCOLS; c++)
                row[c] = PQgetisnull(res, r, c) ? NULL : PQgetvalue(res, r, c);
            /* --asset filters here, not in SQL: the rows of other assets
             * still move $last on (a filtered read from an old $last would
             * scan them again and again). */
            if (w->o->asset && strcmp(row[COL_ASSET], w->o->asset) != 0)
                continue;
            take_change(w, row,
                        PQgetisnull(res, r, COL_DUE)
                            ? NULL
                            : PQgetvalue(res, r, COL_DUE));
        }
        if (n > 0)
            w->last = strtoll(PQgetvalue(res, n - 1, 0), NULL, 10);
        /* The rows point into res: print before clearing it. */
        rc = flush_rows(w, err);
        PQclear(res);
        if (rc)
            return rc;
        if (n < FETCH_ROWS)
            return 0;
    }
}

/* The server's messages outside a query (the FATAL of a shutdown): logged,
 * not printed on stderr by libpq. */
static void on_notice(void *arg, const char *msg)
{
    (void)arg;
    pi_debug("watch: server says: %.*s", (int)strcspn(msg, "\n"), msg);
}

/* Connect, check the schema, set the session up, LISTEN; the first time
 * without --after, start from the highest seq (read after LISTEN: a change
 * committed in between is read, not lost). */
static int open_conn(watch *w, pi_err *err)
{
    const char *params[1] = {w->o->tz};
    PGresult *res;
    int rc;

    rc = pi_db_connect(&w->conn, w->o->conninfo, err);
    if (rc == 0) {
        PQsetNoticeProcessor(w->conn, on_notice, NULL);
        rc = pi_migrate_check(w->conn, err);
    }
    if (rc == 0)
        rc = pi_db_exec(w->conn, "SET DateStyle = 'ISO, YMD'", err);
    if (rc)
        return rc;
    res = PQexecParams(w->conn, "SELECT set_config('TimeZone', $1, false)", 1,
                       NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = strcmp(pi_db_sqlstate(res), "22023") == 0
                 ? pi_err_set(err, PI_EINVAL, "--tz: unknown time zone '%s'",
                              w->o->tz)
                 : pi_db_fail(err, w->conn, res, "setting the time zone");
        PQclear(res);
        return rc;
    }
    PQclear(res);
    rc = pi_db_exec(w->conn, "LISTEN presence_status", err);
    if (rc || w->last >= 0)
        return rc;
    res = PQexec(w->conn,
                 "SELECT coalesce(max(seq), 0) FROM asset_status_changes");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = pi_db_fail(err, w->conn, res, "reading asset_status_changes");
        PQclear(res);
        return rc;
    }
    w->last = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return 0;
}

/* Wait for a notification, a held change's deadline or the idle fetch, in
 * slices. 1: something to read; 0: a held change may be due, or stop; a
 * failure when the connection is gone. */
static int wait_input(watch *w, int64_t idle_until, const atomic_int *stop,
                      pi_err *err)
{
    struct pollfd pfd = {.fd = PQsocket(w->conn), .events = POLLIN};

    while (!atomic_load(stop)) {
        int64_t now = pi_mono_ms(), until = pi_watch__pending_next(w->pending);
        int64_t ms = SLICE_MS;
        PGnotify *nf;
        bool notified = false;

        /* Notifications that came in while a fetch was running are queued
         * by libpq already: the socket has nothing more to say about them. */
        while ((nf = PQnotifies(w->conn)) != NULL) {
            notified = true;
            PQfreemem(nf);
        }
        if (notified)
            return 1;
        if (until <= now)
            return 0;
        if (now >= idle_until)
            return 1;
        if (until - now < ms)
            ms = until - now;
        if (poll(&pfd, 1, (int)ms) < 0 ||
            !(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        if (!PQconsumeInput(w->conn) || PQstatus(w->conn) != CONNECTION_OK)
            return pi_db_fail(err, w->conn, NULL, "waiting for changes");
        while ((nf = PQnotifies(w->conn)) != NULL) {
            notified = true;
            PQfreemem(nf);
        }
        if (notified)
            return 1;
    }
    return 0;
}

int pi_watch_run(const pi_watch_opts *o, FILE *out, const atomic_int *stop,
                 pi_err *err)
{
    watch w;
    uint64_t seed = (uint64_t)pi_mono_us() | 1;
    unsigned attempt = 0;
    int64_t resumed;
    int rc;

    memset(&w, 0, sizeof(w));
    w.o = o;
    w.out = out;
    w.last = o->after;
    /* Table columns as wide as their usual text from the start. */
    for (size_t c = 0; c < NCOLS; c++)
        w.widths[c] = types[c] == PI_COL_TIME ? 25 : c == COL_STATE ? 8 : 0;
    pi_watch__pending_new(&w.pending, NCOLS, COL_ASSET);
    rc = open_conn(&w, err);
    if (rc == 0)
        rc = fetch(&w, err);
    while (rc == 0 && !atomic_load(stop)) {
        int64_t idle_until = pi_mono_ms() + IDLE_FETCH_MS;

        rc = release_due(&w, err);
        if (rc)
            break;
        rc = wait_input(&w, idle_until, stop, err);
        if (rc == 1)
            rc = fetch(&w, err);
        if (rc == 0 || rc == PI_EFATAL || atomic_load(stop))
            continue;
        /* The connection is gone (or the server refused for now): again,
         * from w.last, after a pause. */
        err->msg[strcspn(err->msg, "\n\t")] = '\0';
        resumed = w.last;
        pi_warn("watch: %s; reconnecting (after seq %" PRId64 ")", err->msg,
                resumed);
        PQfinish(w.conn);
        w.conn = NULL;
        do {
            attempt++;
            if (pi_db_sleep_ms(pi_db_backoff_ms(attempt, BACKOFF_MIN_MS,
                                                BACKOFF_MAX_MS, &seed),
                               stop) < 0)
                break;
            PQfinish(w.conn);
            w.conn = NULL;
            rc = open_conn(&w, err);
            if (rc == 0)
                rc = fetch(&w, err);
        } while (rc != 0 && rc != PI_EFATAL && rc != PI_ESCHEMA &&
                 !atomic_load(stop));
        if (rc == 0) {
            pi_info("watch: reconnected after %u attempts, read on after seq "
                    "%" PRId64 " (now at %" PRId64 ")",
                    attempt, resumed, w.last);
            attempt = 0;
        }
    }
    if (atomic_load(stop) && rc != PI_EFATAL)
        rc = 0;
    PQfinish(w.conn);
    pi_watch__pending_destroy(w.pending);
    free(w.cells);
    return rc;
}
