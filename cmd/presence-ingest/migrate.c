/* migrate.c -- `presence-ingest migrate [--move-legacy]`: apply pending
 * migrations (then move presences_legacy's rows), then exit */
#include <stdio.h>
#include <stdlib.h>

#include "cmd.h"
#include "presence/config.h"
#include "presence/migrate.h"
#include "presence/partition.h"

/* The migrations are compiled in; $PRESENCE_MIGRATIONS_DIR, when set, names
 * a directory of NNNN_*.sql files to apply instead (trying one out). */
int pi_cmd_migrate(int argc, char **argv)
{
    const char *dir = getenv("PRESENCE_MIGRATIONS_DIR");
    pi_config cfg;
    pi_err err;
    int applied, version, rc, code;

    pi_config_init(&cfg);
    code = pi_cmd_setup(&cfg, PI_CMD_MIGRATE, argc, argv);
    if (code >= 0)
        goto cleanup;
    if (cfg.n_args > 0) {
        fprintf(stderr, "presence-ingest migrate: unexpected argument '%s'\n",
                cfg.args[0]);
        code = PI_EXIT_USAGE;
        goto cleanup;
    }
    if (dir != NULL && *dir == '\0')
        dir = NULL;
    rc = pi_migrate_apply(&applied, &version, cfg.pg, dir, stdout, &err);
    if (rc) {
        fprintf(stderr, "presence-ingest migrate: %s\n", err.msg);
        code = pi_cmd_exit_code(rc);
        goto cleanup;
    }
    if (applied)
        printf("schema at version %d (%d applied)\n", version, applied);
    else
        printf("schema at version %d (up to date, nothing applied)\n", version);
    fflush(stdout);
    if (cfg.move_legacy) {
        rc = pi_legacy_move_run(cfg.pg, cfg.move_batch, stdout, &err);
        fflush(stdout);
        if (rc) {
            fprintf(stderr,
                    "presence-ingest migrate: moving presences_legacy: "
                    "%s\n",
                    err.msg);
            code = pi_cmd_exit_code(rc);
            goto cleanup;
        }
    }
    code = PI_EXIT_OK;
cleanup:
    pi_config_fini(&cfg);
    return code;
}
