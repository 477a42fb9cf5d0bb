/* report.c -- `presence-ingest report KIND`: connectivity reports (§7) */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "presence/config.h"
#include "presence/db.h"
#include "presence/report.h"
#include "presence/times.h"

/* Until minus this when --since is not given. */
#define DEFAULT_SPAN_US (INT64_C(7) * 86400 * 1000000)

static int64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The kinds' names, from lib/report's table: "status, sessions, …" (sep
 * ", ") or "status|sessions|…" (sep "|"). */
static void kind_list(char *buf, size_t cap, const char *sep)
{
    size_t len = 0;

    buf[0] = '\0';
    for (size_t i = 0; pi_report_kind_at(i, NULL) && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? sep : "",
                                pi_report_kind_at(i, NULL));
}

/* After the options of `report --help`: the kinds, one line each. */
static void print_kinds(FILE *out)
{
    const char *name, *summary;

    fprintf(out, "\nreports (KIND):\n");
    for (size_t i = 0; (name = pi_report_kind_at(i, &summary)) != NULL; i++)
        fprintf(out, "  %-10s %s\n", name, summary);
}

/* An option given that the kind has no use for is a mistake, not a no-op. */
static int refuse(const pi_config *cfg, pi_report_kind kind, pi_err *err)
{
    const char *bad = NULL;

    if (kind == PI_REPORT_STATUS && (cfg->report_since || cfg->report_until))
        bad = cfg->report_since ? "--since" : "--until";
    else if (kind == PI_REPORT_REASONS && cfg->report_asset)
        bad = "--asset";
    else if (kind != PI_REPORT_FLAPPING && cfg->report_window)
        bad = "--window";
    else if (kind != PI_REPORT_FLAPPING && cfg->report_threshold)
        bad = "--threshold";
    if (bad == NULL)
        return 0;
    return pi_err_set(err, PI_EINVAL, "%s does not apply to 'report %s'", bad,
                      pi_report_kind_at((size_t)kind, NULL));
}

/* Options → query and format; PI_EINVAL with the one-line message. */
static int build_query(pi_report_query *q, pi_report_format *fmt,
                       const pi_config *cfg, pi_err *err)
{
    int64_t now = now_us();
    char list[256];
    int rc;

    if (cfg->n_args == 0) {
        kind_list(list, sizeof(list), "|");
        return pi_err_set(err, PI_EINVAL,
                          "which report? presence-ingest report %s", list);
    }
    if (cfg->n_args != 1)
        return pi_err_set(err, PI_EINVAL, "one report expected, got '%s' too",
                          cfg->args[1]);
    if (pi_report_kind_parse(cfg->args[0], &q->kind)) {
        kind_list(list, sizeof(list), ", ");
        return pi_err_set(err, PI_EINVAL, "unknown report '%s' (%s)",
                          cfg->args[0], list);
    }
    rc = refuse(cfg, q->kind, err);
    if (rc)
        return rc;
    q->asset = cfg->report_asset;
    q->tz = cfg->report_tz;
    q->until_us = now;
    if (cfg->report_until) {
        rc =
            pi_time_parse(&q->until_us, "--until", cfg->report_until, now, err);
        if (rc)
            return rc;
    }
    q->since_us = q->until_us - DEFAULT_SPAN_US;
    if (cfg->report_since) {
        rc =
            pi_time_parse(&q->since_us, "--since", cfg->report_since, now, err);
        if (rc)
            return rc;
    }
    if (q->since_us >= q->until_us)
        return pi_err_set(err, PI_EINVAL, "--since must be before --until");
    q->window_s = 3600;
    if (cfg->report_window) {
        rc = pi_duration_parse(&q->window_s, "--window", cfg->report_window,
                               err);
        if (rc)
            return rc;
    }
    q->threshold = cfg->report_threshold ? cfg->report_threshold : 5;
    if (cfg->report_format)
        return pi_report_format_parse(cfg->report_format, fmt);
    *fmt = isatty(STDOUT_FILENO) ? PI_REPORT_TABLE : PI_REPORT_CSV;
    return 0;
}

int pi_cmd_report(int argc, char **argv)
{
    pi_config cfg;
    pi_report_query q;
    pi_report_format fmt;
    PGconn *conn = NULL;
    size_t rows = 0;
    pi_err err;
    int rc, code;

    memset(&q, 0, sizeof(q));
    pi_config_init(&cfg);
    code = pi_cmd_setup(&cfg, PI_CMD_REPORT, argc, argv);
    if (code == PI_EXIT_OK) /* --help: the options were printed */
        print_kinds(stdout);
    if (code >= 0)
        goto cleanup;
    rc = build_query(&q, &fmt, &cfg, &err);
    if (rc == 0)
        rc = pi_db_connect(&conn, cfg.pg, &err);
    if (rc == 0)
        rc = pi_report_run(&rows, conn, &q, fmt, stdout, &err);
    if (rc == 0 && fflush(stdout) != 0)
        rc = pi_err_set(&err, PI_EFATAL, "cannot write the report");
    if (rc)
        fprintf(stderr, "presence-ingest report: %s\n", err.msg);
    /* An asset's status is one row when it has ever sent a presence: none
     * is an unknown asset (a typo, most often), which the header alone would
     * not tell. */
    if (rc == 0 && rows == 0 && q.kind == PI_REPORT_STATUS && q.asset)
        fprintf(stderr,
                "presence-ingest report: no presence of asset '%s' is "
                "stored\n",
                q.asset);
    code = pi_cmd_exit_code(rc);
cleanup:
    PQfinish(conn);
    pi_config_fini(&cfg);
    return code;
}
