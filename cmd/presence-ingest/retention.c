/* retention.c -- `presence-ingest retention --keep DURATION [--dry-run]`:
 * partitions ahead, old partitions dropped */
#include <stdio.h>

#include "cmd.h"
#include "presence/config.h"
#include "presence/partition.h"
#include "presence/report.h"
#include "presence/times.h"

int pi_cmd_retention(int argc, char **argv)
{
    pi_config cfg;
    pi_err err;
    int64_t keep_s;
    int rc, code;

    pi_config_init(&cfg);
    code = pi_cmd_setup(&cfg, PI_CMD_RETENTION, argc, argv);
    if (code >= 0)
        goto cleanup;
    code = PI_EXIT_USAGE;
    if (cfg.n_args > 0) {
        fprintf(stderr, "presence-ingest retention: unexpected argument '%s'\n",
                cfg.args[0]);
        goto cleanup;
    }
    if (cfg.retention_keep == NULL) {
        fprintf(stderr, "presence-ingest retention: --keep DURATION is "
                        "required (for example --keep 400d)\n");
        goto cleanup;
    }
    if (pi_duration_parse(&keep_s, "--keep", cfg.retention_keep, &err) != 0) {
        fprintf(stderr, "presence-ingest retention: %s\n", err.msg);
        goto cleanup;
    }
    rc = pi_retention_run(cfg.pg, keep_s, (int)cfg.dry_run, stdout, &err);
    fflush(stdout);
    if (rc)
        fprintf(stderr, "presence-ingest retention: %s\n", err.msg);
    code = pi_cmd_exit_code(rc);
cleanup:
    pi_config_fini(&cfg);
    return code;
}
