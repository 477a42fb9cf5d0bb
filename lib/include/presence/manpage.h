/* manpage.h -- presence-ingest(1), generated from the option table
 *
 * Like --help and the sample config (config.h), the man page is written
 * from the rows of the one option table, so it lists every option with its
 * environment variable, default and range, and cannot fall behind it. The
 * build runs `presence-ingest --print-manpage` and installs the result in
 * share/man/man1.
 */
#ifndef PRESENCE_MANPAGE_H
#define PRESENCE_MANPAGE_H

#include <stdio.h>

/* One subcommand as the command table of main.c knows it. */
typedef struct pi_manpage_cmd {
    const char *name;    /* "load" */
    const char *args;    /* what follows OPTIONS in its synopsis, or NULL */
    unsigned bit;        /* its PI_CMD_* bit (config.h); 0: no options */
    const char *summary; /* one line, as `presence-ingest --help` prints */
} pi_manpage_cmd;

/* Write the man page in roff (man macros) to out: NAME, SYNOPSIS,
 * DESCRIPTION, COMMANDS (each with its options), OPTIONS (every row of the
 * table), ENVIRONMENT, EXIT STATUS, FILES, EXAMPLES, SEE ALSO. version is
 * printed in the title line. */
void pi_manpage_print(FILE *out, const pi_manpage_cmd *cmds, size_t n_cmds,
                      const char *version);

#endif
