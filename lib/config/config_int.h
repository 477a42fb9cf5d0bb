/* config_int.h -- the option table's rows, for the generators beside config.c
 *
 * config.c holds the one table of options; the parser, --help and the
 * sample file are generated there, the man page (manpage.c) from the same
 * rows through pi_config__options.
 */
#ifndef PRESENCE_CONFIG_INT_H
#define PRESENCE_CONFIG_INT_H

#include <stddef.h>
#include <stdint.h>

/* OPT_FLAG: an int 0/1, set by the bare flag (--dry-run) or by a value
 * true|false|1|0|yes|no (--dry-run=false, or a file line). */
typedef enum opt_type { OPT_STR, OPT_INT, OPT_ENUM, OPT_FLAG } opt_type;

/* One option. `choices` is a '|'-separated list for OPT_ENUM. */
typedef struct pi_opt {
    const char *name; /* flag --name and config-file key */
    const char *env;  /* environment variable, or NULL */
    opt_type type;
    size_t field; /* offsetof(pi_config, …) */
    const char *def;
    int64_t min, max;
    const char *choices;
    unsigned cmds; /* PI_CMD_* bits */
    const char *help;
} pi_opt;

/* The table, in its order (the order of --help and the sample); *n is set
 * to its number of rows. Static storage. */
const pi_opt *pi_config__options(size_t *n);

#endif
