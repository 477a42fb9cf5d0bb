/* migrate_dir.c -- the tree's migrations directory, for the tests
 *
 * A file of its own so that nothing links it but what calls it (the tests):
 * the binary carries no path of the tree it was built in, and two builds of
 * one source in two directories are the same bytes (the Debian package's
 * reproducibility, tests/deploy/package.sh). */
#include "presence/migrate.h"

const char *pi_migrate_source_dir(void)
{
    return PI_MIGRATIONS_DIR;
}
