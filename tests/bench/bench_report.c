/* bench_report.c -- each connectivity report timed against SELECT count(*)
 *
 * usage: bench_report CONNINFO [ROUNDS] [FILTER]
 *
 * On a database already holding presences (bench_report.sh loads a
 * generated fleet), times on one connection, warm cache (one round first,
 * untimed), ROUNDS rounds (default 5) of: SELECT count(*) FROM presences,
 * then each report of the issues (CONTRACT §7 and §8) through pi_report_run
 * (the command's own code, output to /dev/null as CSV). "Now" is the newest
 * event's time, so -30d / -1d mean the data's last 30 days / day. Prints each
 * figure's median and its ratio to the median count(*) of the same run.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "presence/db.h"
#include "presence/report.h"

#define MAX_ROUNDS 50
#define DAY_US (INT64_C(86400) * 1000000)

typedef struct bench_case {
    const char *name;
    pi_report_query q;
    double secs[MAX_ROUNDS];
} bench_case;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Does name contain one of filter's '|'-separated parts? ("" : yes) */
static int wanted(const char *name, const char *filter)
{
    char part[128];

    if (*filter == '\0')
        return 1;
    while (*filter) {
        size_t n = strcspn(filter, "|");

        snprintf(part, sizeof(part), "%.*s", (int)n, filter);
        if (n > 0 && strstr(name, part))
            return 1;
        filter += n + (filter[n] == '|');
    }
    return 0;
}

static char *one_value(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    char *v;

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        fprintf(stderr, "bench_report: %s: %s", sql, PQerrorMessage(conn));
        exit(1);
    }
    v = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

int main(int argc, char **argv)
{
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    double count_s[MAX_ROUNDS];
    PGconn *conn;
    FILE *devnull = fopen("/dev/null", "w");
    char *rows, *asset, *last;
    int64_t until, day;
    pi_err err;
    const char *filter = argc > 3 ? argv[3] : "";

    if (argc < 2 || rounds < 1 || rounds > MAX_ROUNDS) {
        fprintf(stderr,
                "usage: bench_report CONNINFO [ROUNDS 1..50] [FILTER]\n");
        return 2;
    }
    if (pi_db_connect(&conn, argv[1], &err)) {
        fprintf(stderr, "bench_report: %s\n", err.msg);
        return 1;
    }
    rows = one_value(conn, "SELECT count(*) FROM presences");
    asset = one_value(conn, "SELECT min(asset) FROM presences");
    last = one_value(conn, "SELECT (extract(epoch FROM max(time)) * 1e6)::int8 "
                           "FROM presences");
    until = strtoll(last, NULL, 10) + 1;
    /* The last whole UTC day before the newest event. */
    day = (until / DAY_US - 1) * DAY_US;
    /* Q(kind, asset, since, until): the defaults of the command line. */
#define Q(k, a, s, u)                                                          \
    {.kind = (k),                                                              \
     .asset = (a),                                                             \
     .since_us = (s),                                                          \
     .until_us = (u),                                                          \
     .tz = "UTC",                                                              \
     .window_s = 3600,                                                         \
     .threshold = 5,                                                           \
     .target = 0.99,                                                           \
     .step_s = 3600,                                                           \
     .offline_for_s = -1}
    pi_report_query offline_1h = Q(PI_REPORT_STATUS, NULL, 0, until);
    pi_report_query avail_month =
        Q(PI_REPORT_AVAILABILITY, NULL, until - 30 * DAY_US, until);
    pi_report_query avail_fleet =
        Q(PI_REPORT_AVAILABILITY, NULL, until - 30 * DAY_US, until);
    pi_report_query avail_one =
        Q(PI_REPORT_AVAILABILITY, asset, until - 30 * DAY_US, until);
    pi_report_query fleet_one =
        Q(PI_REPORT_FLEET, asset, until - 7 * DAY_US, until);

    offline_1h.offline_for_s = 3600;
    avail_month.period = "month";
    avail_fleet.fleet = 1;
    avail_one.period = "month";
    bench_case cases[] = {
        {"status (all assets)", Q(PI_REPORT_STATUS, NULL, 0, until), {0}},
        {"status --asset A", Q(PI_REPORT_STATUS, asset, 0, until), {0}},
        {"sessions --asset A --since -30d",
         Q(PI_REPORT_SESSIONS, asset, until - 30 * DAY_US, until),
         {0}},
        {"uptime (all assets, one day)",
         Q(PI_REPORT_UPTIME, NULL, day, day + DAY_US),
         {0}},
        {"reasons --since -1d",
         Q(PI_REPORT_REASONS, NULL, until - DAY_US, until),
         {0}},
        {"flapping (one day)",
         Q(PI_REPORT_FLAPPING, NULL, day, day + DAY_US),
         {0}},
        {"status --offline-for 1h", offline_1h, {0}},
        {"availability -30d --period month", avail_month, {0}},
        {"availability --fleet -30d", avail_fleet, {0}},
        {"outages --since -1d",
         Q(PI_REPORT_OUTAGES, NULL, until - DAY_US, until),
         {0}},
        {"fleet --since -7d --step 1h",
         Q(PI_REPORT_FLEET, NULL, until - 7 * DAY_US, until),
         {0}},
        {"outages --asset A --since -1d",
         Q(PI_REPORT_OUTAGES, asset, until - DAY_US, until),
         {0}},
        {"availability --asset A -30d month", avail_one, {0}},
        {"fleet --asset A --since -7d", fleet_one, {0}},
    };
#undef Q
    size_t n_cases = sizeof(cases) / sizeof(cases[0]);

    printf("presences: %s, asset A: %s, last event: %s us\n", rows, asset,
           last);
    for (int r = -1; r < rounds; r++) {
        double t0 = now_s();
        free(one_value(conn, "SELECT count(*) FROM presences"));
        if (r >= 0)
            count_s[r] = now_s() - t0;
        for (size_t i = 0; i < n_cases; i++) {
            if (!wanted(cases[i].name, filter))
                continue;
            t0 = now_s();
            if (pi_report_run(NULL, conn, &cases[i].q, PI_REPORT_CSV, devnull,
                              &err)) {
                fprintf(stderr, "bench_report: %s: %s\n", cases[i].name,
                        err.msg);
                return 1;
            }
            if (r >= 0)
                cases[i].secs[r] = now_s() - t0;
        }
    }
    double base = median(count_s, rounds);
    printf("%-36s %10s %8s\n", "what", "median s", "ratio");
    printf("%-36s %10.4f %8s\n", "SELECT count(*) FROM presences", base, "1");
    for (size_t i = 0; i < n_cases; i++) {
        double m;

        if (!wanted(cases[i].name, filter))
            continue;
        m = median(cases[i].secs, rounds);
        printf("%-36s %10.4f %8.4f\n", cases[i].name, m, m / base);
    }
    fclose(devnull);
    PQfinish(conn);
    free(rows);
    free(asset);
    free(last);
    return 0;
}
