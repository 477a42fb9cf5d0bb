/* report.c -- `presence-ingest report KIND`: connectivity reports (§7, §8) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "presence/config.h"
#include "presence/db.h"
#include "presence/report.h"
#include "presence/times.h"

/* The most rows `report fleet` prints (CONTRACT §8: a longer --step). */
#define FLEET_MAX_ROWS 100000

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
    int status = kind == PI_REPORT_STATUS;
    int avail = kind == PI_REPORT_AVAILABILITY;
    const char *bad = NULL;

    if (status && cfg->report_since)
        bad = "--since";
    else if (status && cfg->report_until && !cfg->offline_for)
        bad = "--until";
    else if (kind == PI_REPORT_REASONS && cfg->report_asset)
        bad = "--asset";
    else if (kind != PI_REPORT_FLAPPING && cfg->report_window)
        bad = "--window";
    else if (kind != PI_REPORT_FLAPPING && cfg->report_threshold)
        bad = "--threshold";
    else if (kind != PI_REPORT_OUTAGES && !avail && cfg->report_debounce)
        bad = "--debounce";
    else if (!avail && cfg->report_period)
        bad = "--period";
    else if (!avail && cfg->report_fleet)
        bad = "--fleet";
    else if (!avail && cfg->report_target)
        bad = "--target";
    else if (kind != PI_REPORT_FLEET && cfg->report_step)
        bad = "--step";
    else if (!status && cfg->state)
        bad = "--state";
    else if (!status && cfg->offline_for)
        bad = "--offline-for";
    if (bad)
        return pi_err_set(err, PI_EINVAL, "%s does not apply to 'report %s'",
                          bad, pi_report_kind_at((size_t)kind, NULL));
    if (avail && cfg->report_target && !cfg->report_fleet)
        return pi_err_set(err, PI_EINVAL,
                          "--target applies to 'report availability --fleet' "
                          "only");
    if (avail && cfg->report_fleet && cfg->report_asset)
        return pi_err_set(err, PI_EINVAL,
                          "--asset does not apply to 'report availability "
                          "--fleet'");
    if (cfg->offline_for && cfg->state && strcmp(cfg->state, "offline") != 0)
        return pi_err_set(err, PI_EINVAL,
                          "--offline-for keeps offline assets only: --state "
                          "%s contradicts it",
                          cfg->state);
    return 0;
}

/* --debounce: 0, or a duration (30s, 5m). */
static int debounce_parse(int64_t *out_s, const char *s, pi_err *err)
{
    size_t zeros = strspn(s, "0");

    if (zeros > 0 && (s[zeros] == '\0' ||
                      (strchr("smhd", s[zeros]) && s[zeros + 1] == '\0'))) {
        *out_s = 0;
        return 0;
    }
    if (pi_duration_parse(out_s, "--debounce", s, err))
        return pi_err_set(err, PI_EINVAL,
                          "--debounce must be a duration of zero or more (0, "
                          "30s, 5m, 1h), got '%s'",
                          s);
    return 0;
}

/* --target: a ratio in [0, 1]. */
static int target_parse(double *out, const char *s, pi_err *err)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (end == s || *end != '\0' || errno != 0 || !(v >= 0 && v <= 1))
        return pi_err_set(err, PI_EINVAL,
                          "--target must be a ratio from 0 to 1 (0.99), got "
                          "'%s'",
                          s);
    *out = v;
    return 0;
}

/* The §8 options → q. */
static int build_fleet_options(pi_report_query *q, const pi_config *cfg,
                               pi_err *err)
{
    int rc;

    q->period = cfg->report_period;
    q->fleet = cfg->report_fleet != 0;
    q->state = cfg->state;
    q->debounce_s = 0;
    if (cfg->report_debounce) {
        rc = debounce_parse(&q->debounce_s, cfg->report_debounce, err);
        if (rc)
            return rc;
    }
    q->target = 0.99;
    if (cfg->report_target) {
        rc = target_parse(&q->target, cfg->report_target, err);
        if (rc)
            return rc;
    }
    q->offline_for_s = -1;
    if (cfg->offline_for) {
        rc = pi_duration_parse(&q->offline_for_s, "--offline-for",
                               cfg->offline_for, err);
        if (rc)
            return rc;
    }
    q->step_s = 3600;
    if (cfg->report_step) {
        rc = pi_duration_parse(&q->step_s, "--step", cfg->report_step, err);
        if (rc)
            return rc;
    }
    if (q->kind == PI_REPORT_FLEET) {
        int64_t span_us = q->until_us - q->since_us;
        int64_t step_us = q->step_s * 1000000;
        int64_t rows = span_us / step_us + (span_us % step_us != 0);

        if (rows > FLEET_MAX_ROWS)
            return pi_err_set(err, PI_EINVAL,
                              "--step %s gives %lld rows from --since to "
                              "--until, more than %d: take a longer step or "
                              "a shorter span",
                              cfg->report_step ? cfg->report_step : "1h",
                              (long long)rows, FLEET_MAX_ROWS);
    }
    return 0;
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
    rc = build_fleet_options(q, cfg, err);
    if (rc)
        return rc;
    if (cfg->report_format)
        return pi_report_format_parse(cfg->report_format, fmt);
    *fmt = isatty(STDOUT_FILENO) ? PI_REPORT_TABLE : PI_REPORT_CSV;
    return 0;
}

/* A rollup far behind makes a report slow (exact, but the assets it has not
 * caught up with are computed from presences): say so on stderr, with what
 * to look at. Nothing when the lag cannot be read (a schema before 0007 is
 * refused later, with its own message). */
static void note_lag(PGconn *conn)
{
    double lag;
    int64_t pending;
    pi_err err;

    if (pi_report_rollup_lag(&lag, &pending, conn, &err) != 0 ||
        lag <= PI_REPORT_LAG_NOTICE_S)
        return;
    fprintf(stderr,
            "presence-ingest report: note: the rollup is %.0f s behind "
            "(%lld statements pending): this report computes the assets "
            "not caught up from presences, exact but slower; is `run` "
            "catching up (presence_rollup_lag_seconds)?\n",
            lag, (long long)pending);
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
        note_lag(conn);
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
