/* run.c -- `presence-ingest run`: consume with a consumer group until signalled
 */
#include "cmd.h"
#include "presence/config.h"

int pi_cmd_run(int argc, char **argv)
{
    return pi_cmd_consume(argc, argv, PI_CMD_RUN, NULL);
}
