/* config_int.h -- what config.c lends the generators beside it (completion.c)
 */
#ifndef PRESENCE_CONFIG_INT_H
#define PRESENCE_CONFIG_INT_H

#include <stddef.h>

/* Option i of the table: its name, its choices ('|'-separated, an enumerated
 * option; else NULL), whether it takes a value (not a bare flag), and the
 * PI_CMD_* bits of its commands. 0 past the last option, else 1. */
int pi_config__option(size_t i, const char **name, const char **choices,
                      int *takes_value, unsigned *cmds);

#endif
