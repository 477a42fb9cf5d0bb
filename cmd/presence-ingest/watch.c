/* watch.c -- `presence-ingest watch`: status changes as they happen (§8) */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "presence/config.h"
#include "presence/times.h"
#include "presence/watch.h"

static atomic_int stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&stop_flag, 1); /* lock-free: async-signal-safe */
}

/* Options → watch options; PI_EINVAL with the one-line message. */
static int build_opts(pi_watch_opts *o, const pi_config *cfg, pi_err *err)
{
    o->conninfo = cfg->pg;
    o->after = -1;
    o->state = cfg->state;
    o->asset = cfg->report_asset;
    o->tz = cfg->report_tz;
    if (cfg->n_args > 0)
        return pi_err_set(err, PI_EINVAL, "unexpected argument '%s'",
                          cfg->args[0]);
    if (cfg->watch_after) {
        const char *s = cfg->watch_after;
        char *end;

        errno = 0;
        o->after = strtoll(s, &end, 10);
        if (*s < '0' || *s > '9' || *end != '\0' || errno == ERANGE)
            return pi_err_set(err, PI_EINVAL,
                              "--after: '%s' is not a sequence number (digits, "
                              "0 or more)",
                              s);
    }
    if (cfg->offline_for) {
        int64_t secs;
        int rc =
            pi_duration_parse(&secs, "--offline-for", cfg->offline_for, err);
        if (rc)
            return rc;
        o->offline_for_ms = secs * 1000;
    }
    if (cfg->report_format)
        return pi_report_format_parse(cfg->report_format, &o->format);
    o->format = isatty(STDOUT_FILENO) ? PI_REPORT_TABLE : PI_REPORT_CSV;
    return 0;
}

int pi_cmd_watch(int argc, char **argv)
{
    pi_config cfg;
    pi_watch_opts o;
    pi_err err;
    int rc, code;

    memset(&o, 0, sizeof(o));
    pi_config_init(&cfg);
    code = pi_cmd_setup(&cfg, PI_CMD_WATCH, argc, argv);
    if (code >= 0)
        goto cleanup;
    rc = build_opts(&o, &cfg, &err);
    if (rc == 0) {
        /* A reader gone (`watch | head`): the write fails, watch ends. */
        pi_cmd_on_stop(on_signal);
        rc = pi_watch_run(&o, stdout, &stop_flag, &err);
    }
    if (rc)
        fprintf(stderr, "presence-ingest watch: %s\n", err.msg);
    code = pi_cmd_exit_code(rc);
cleanup:
    pi_config_fini(&cfg);
    return code;
}
