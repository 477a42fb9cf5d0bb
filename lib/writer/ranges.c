/* ranges.c -- partitions for the ids a batch writes, from a cached table */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "presence/db.h"
#include "presence/log.h"
#include "presence/mem.h"
#include "presence/times.h"
#include "writer_int.h"

/* The cached table is read again at most this often (a partition another
 * process created or retention dropped), and a failed creation is not
 * tried again before this long. */
#define RANGES_TTL_MS 60000
/* ms from 1970-01-01 to 2010-01-01: the epoch of the ids' time (0003). */
#define ID_EPOCH_MS INT64_C(1262304000000)
/* A row follows the id scheme when its time is within a day of its id's
 * (0003's presence_on_scheme); only those get partitions, the others stay
 * in DEFAULT. */
#define DAY_US INT64_C(86400000000)
/* Uncovered ids further apart than this (µs of their times) are created
 * with separate calls: a batch with one id of 2024 and one of 2045 makes
 * two partitions, not the twenty years between them. */
#define GAP_US (INT64_C(32) * DAY_US)

static int64_t id_time_us(int64_t id)
{
    return ((id >> 22) + ID_EPOCH_MS) * 1000;
}

static bool on_scheme(const pi_presence *p)
{
    int64_t t = id_time_us(p->id);

    return (p->id >> 22) < INT64_C(2199023255551) && p->time_us >= t - DAY_US &&
           p->time_us <= t + DAY_US;
}

/* Is id inside a cached range (sorted, disjoint)? */
static bool covered(const pi_writer *w, int64_t id)
{
    size_t lo = 0, hi = w->n_ranges;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (w->ranges[mid].hi <= id)
            lo = mid + 1;
        else if (w->ranges[mid].lo > id)
            hi = mid;
        else
            return true;
    }
    return false;
}

/* Read the non-DEFAULT partitions' id ranges (presence_partitions, 0003),
 * sorted; null bounds are the extremes. */
static int load_ranges(pi_writer *w, pi_err *err)
{
    PGresult *res = PQexec(
        w->conn, "SELECT coalesce(from_id, -9223372036854775808),"
                 " coalesce(to_id, 9223372036854775807)"
                 " FROM presence_partitions WHERE NOT is_default ORDER BY 1");
    int n;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        int rc = pi_db_fail(err, w->conn, res, "presence_partitions");
        PQclear(res);
        return rc;
    }
    n = PQntuples(res);
    pi_grow((void **)&w->ranges, &w->cap_ranges, (size_t)n + 1,
            sizeof(*w->ranges));
    for (int r = 0; r < n; r++) {
        w->ranges[r].lo = strtoll(PQgetvalue(res, r, 0), NULL, 10);
        w->ranges[r].hi = strtoll(PQgetvalue(res, r, 1), NULL, 10);
    }
    w->n_ranges = (size_t)n;
    w->ranges_ms = pi_mono_ms();
    PQclear(res);
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* presence_partitions_ensure for the times [from_us, to_us] (0003: one
 * partition per period, clipped to the gaps, race-safe between callers). */
static int ensure(pi_writer *w, int64_t from_us, int64_t to_us, pi_err *err)
{
    char a[24], b[24];
    const char *params[2] = {a, b};
    PGresult *res;
    int rc = 0;

    snprintf(a, sizeof(a), "%" PRId64, from_us);
    snprintf(b, sizeof(b), "%" PRId64, to_us + 1);
    res = PQexecParams(
        w->conn,
        "SELECT partition FROM presence_partitions_ensure("
        " to_timestamp($1::int8 / 1e6), to_timestamp($2::int8 / 1e6))",
        2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        rc = pi_db_fail(err, w->conn, res, "presence_partitions_ensure()");
    else
        for (int r = 0; r < PQntuples(res); r++)
            pi_debug("created partition %s for rows written",
                     PQgetvalue(res, r, 0));
    PQclear(res);
    return rc;
}

int pi_writer__ensure_ranges(pi_writer *w, const pi_batch *batch, pi_err *err)
{
    const pi_decode_result *dr = pi_batch_result(batch);
    int64_t now = pi_mono_ms();
    size_t n = 0;
    int rc;

    if (w->ranges_failed_ms && now - w->ranges_failed_ms < RANGES_TTL_MS)
        return 0;
    if (w->ranges_ms == 0 || now - w->ranges_ms >= RANGES_TTL_MS) {
        rc = load_ranges(w, err);
        if (rc)
            goto failed;
    }
    for (size_t i = 0; i < dr->n_presences; i++) {
        const pi_presence *p = &dr->presences[i];
        if (on_scheme(p) && !covered(w, p->id)) {
            pi_grow((void **)&w->uncovered, &w->cap_uncovered, n + 1,
                    sizeof(*w->uncovered));
            w->uncovered[n++] = id_time_us(p->id);
        }
    }
    if (n == 0)
        return 0;
    qsort(w->uncovered, n, sizeof(*w->uncovered), cmp_i64);
    for (size_t i = 0, j; i < n; i = j) {
        for (j = i + 1; j < n && w->uncovered[j] - w->uncovered[j - 1] < GAP_US;
             j++)
            ;
        rc = ensure(w, w->uncovered[i], w->uncovered[j - 1], err);
        if (rc)
            goto failed;
    }
    rc = load_ranges(w, err);
    if (rc == 0)
        return 0;
failed:
    /* Not the batch's failure: its rows go to DEFAULT meanwhile (the
     * partition keeper or a later batch makes the partitions). */
    pi_warn("partitions for the rows written: %s (rows without a partition "
            "go to presences_default; trying again in %d s)",
            err->msg, RANGES_TTL_MS / 1000);
    w->ranges_failed_ms = now;
    return 0;
}
