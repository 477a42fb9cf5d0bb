/* completion.h -- shell completion generated from the option table
 *
 * The commands are the caller's (cmd/presence-ingest/main.c's table), with
 * the PI_CMD_* bit that selects their options and the words their
 * positional argument takes (report's kinds, from lib/report); the options,
 * their enumerated values and which take a value come from config.c's
 * table. Nothing is kept by hand, so a new option, command or report kind
 * completes at the next build.
 */
#ifndef PRESENCE_COMPLETION_H
#define PRESENCE_COMPLETION_H

#include <stddef.h>
#include <stdio.h>

typedef struct pi_completion_cmd {
    const char *name;
    unsigned opts;            /* PI_CMD_* bit of its options; 0: none */
    const char *const *words; /* NULL-terminated: its positional words */
    int files;                /* its positional argument is a file name */
} pi_completion_cmd;

/* Write a bash completion script for presence-ingest to out: commands,
 * each command's options (--config, --help, and -X for Kafka's), the
 * enumerated values of --format, --log-level…, file names after --config
 * and --sasl-password-file, and the positional words. */
void pi_completion_print_bash(FILE *out, const pi_completion_cmd *cmds,
                              size_t n);

#endif
