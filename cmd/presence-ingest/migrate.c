/* migrate.c -- placeholder while the subcommand is being written (replaced) */
#include <stdio.h>

#include "cmd.h"

int pi_cmd_migrate(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "presence-ingest: 'migrate' is not built yet\n");
    return PI_EXIT_FAILURE;
}
