/* pg_int.h -- the migrations compiled into the binary (migrate_data.c) */
#ifndef PRESENCE_PG_INT_H
#define PRESENCE_PG_INT_H

#include <stddef.h>

typedef struct pi_migration_src {
    const char *file; /* NNNN_description.sql */
    const char *sql;
} pi_migration_src;

/* Generated from migrations/ by migrations/embed.sh, in file name order. */
extern const pi_migration_src pi_migrations_embedded[];
extern const size_t pi_migrations_embedded_count;
/* migrations/citus/citus.sql: the layout on a Citus coordinator, applied
 * after the numbered migrations when the database has the citus extension. */
extern const char pi_migration_citus[];

#endif
