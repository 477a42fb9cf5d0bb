/* common.c -- what every command shares: options and logging set up, exit
 * codes */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "presence/config.h"
#include "presence/err.h"
#include "presence/log.h"

/* Map a module error code to the process exit code. */
int pi_cmd_exit_code(int rc)
{
    switch (rc) {
    case 0:
        return PI_EXIT_OK;
    case PI_EINVAL:
        return PI_EXIT_USAGE;
    case PI_ESCHEMA:
        return PI_EXIT_SCHEMA;
    default:
        return PI_EXIT_FAILURE;
    }
}

/* Parse options and set up logging; returns -1 to go on, else an exit
 * code. */
int pi_cmd_setup(pi_config *cfg, unsigned cmd, int argc, char **argv)
{
    pi_log_level level;
    pi_log_format format;
    pi_err err;
    int rc = pi_config_parse(cfg, cmd, argc, argv, &err);

    if (rc == PI_CONFIG_HELP)
        return PI_EXIT_OK;
    if (rc != 0) {
        fprintf(stderr, "presence-ingest %s: %s\n", argv[0], err.msg);
        return PI_EXIT_USAGE;
    }
    /* Both values were checked against their choices by the parser. */
    pi_log_level_parse(cfg->log_level, &level);
    pi_log_format_parse(cfg->log_format, &format);
    pi_log_setup(level, format);
    /* libpq's own password variable: no line of ours shows it (the SASL
     * password is registered where it is read, kafka.c). */
    pi_log_redact(getenv("PGPASSWORD"));
    return -1;
}

void pi_cmd_on_stop(void (*handler)(int))
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    /* A reader or server gone: the write fails with EPIPE and is handled
     * there, instead of the signal ending the process. */
    signal(SIGPIPE, SIG_IGN);
}
