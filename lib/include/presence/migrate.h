/* migrate.h -- apply the numbered SQL files of migrations/ and check the schema
 *
 * A migration is a file NNNN_description.sql (NNNN: its version, a positive
 * integer; files not named so are ignored). Applying runs, on one connection:
 *
 *   SELECT pg_advisory_lock(PI_MIGRATE_LOCK_KEY)   -- one migrator at a time
 *   SELECT version FROM schema_migrations          -- absent table: none yet
 *   for each file with a version not recorded, in version order:
 *       BEGIN; <the file>; INSERT INTO schema_migrations …; COMMIT
 *   SELECT pg_advisory_unlock(PI_MIGRATE_LOCK_KEY)
 *
 * so a second run, or one racing another instance, applies nothing. The first
 * migration creates schema_migrations itself.
 *
 * Where the SQL comes from: the migrations are compiled into the binary
 * (migrate_data.c, generated from migrations/ by migrations/embed.sh at
 * build time), so an installed binary needs no data files.
 * A directory can be given instead (cmd/ reads $PRESENCE_MIGRATIONS_DIR):
 * for trying a migration out before embedding it.
 */
#ifndef PRESENCE_MIGRATE_H
#define PRESENCE_MIGRATE_H

#include <libpq-fe.h>
#include <stdio.h>

#include "presence/err.h"

/* The schema version this build needs: the highest migration it ships. The
 * writer refuses an older database (PI_ESCHEMA). A test checks that it
 * matches the highest file in migrations/ and the highest compiled in. */
#define PI_SCHEMA_VERSION 12

/* Key of the session advisory lock held while migrating ("presence"). */
#define PI_MIGRATE_LOCK_KEY 0x70726573656e6365LL

/* The source tree's migrations/ (for tests). */
const char *pi_migrate_source_dir(void);

/* Apply the pending migrations of dir (NULL: the ones compiled in) to the
 * database at conninfo. Prints "applied NNNN_name.sql" per file to out (NULL:
 * logs it instead) and sets *applied to their number, *version to the
 * resulting schema version. Errors: PI_EINVAL (bad conninfo, unreadable
 * directory, two files with one version, migrations older than this build),
 * PI_ERETRY (cannot connect, connection lost), PI_EFATAL (the server refused
 * a file: the message names it; or a connection refused for good, db.h). A
 * failed file rolls back alone; earlier ones stay applied. Once
 * deploy/sql/roles.sql made presence_owner the owner (of schema_migrations,
 * among the rest) and the login role is a member of it (or a superuser),
 * the migrations run as it (SET ROLE): what they create is owned by it. */
PI_MUST_CHECK int pi_migrate_apply(int *applied, int *version,
                                   const char *conninfo, const char *dir,
                                   FILE *out, pi_err *err);

/* The version recorded in the database on conn: 0 when schema_migrations
 * does not exist. */
PI_MUST_CHECK int pi_migrate_current(int *version, PGconn *conn, pi_err *err);

/* 0 when the database on conn is at PI_SCHEMA_VERSION or newer, else
 * PI_ESCHEMA with a message that says to run `presence-ingest migrate`. */
PI_MUST_CHECK int pi_migrate_check(PGconn *conn, pi_err *err);

#endif
