/* partition.h -- the time partitions of presences: the keeper thread that
 * creates them ahead, and retention, which drops the old ones
 *
 * Both call the SECURITY DEFINER functions of migrations/0003 (the role that
 * runs the service needs EXECUTE on them, nothing else):
 *
 *   SELECT * FROM presence_partitions_ensure()          -- keeper, retention
 *   SELECT presence_partition_retire(name, cutoff, dry) -- retention, one
 *                                                          partition per
 *                                                          transaction
 *   SELECT asset_status_changes_trim(cutoff, dry)       -- retention (0008)
 *   SELECT presence_legacy_move_step(batch)             -- migrate
 *                                                          --move-legacy
 *                                                          (0010)
 *
 * and read the view presence_partitions. Neither is in the path of a batch:
 * an id with no partition yet lands in presences_default, so a keeper that
 * is late or refused costs nothing but a warning.
 */
#ifndef PRESENCE_PARTITION_H
#define PRESENCE_PARTITION_H

#include <stdint.h>
#include <stdio.h>

#include "presence/err.h"

typedef struct pi_partkeep pi_partkeep;

/* Start the keeper: a thread with its own connection to conninfo that calls
 * presence_partitions_ensure() at once, then every every_ms (after a
 * failure: every min(every_ms, 60 s)), logging each partition created at
 * info and each failure at warn. Never fails the caller. */
void pi_partkeep_start(pi_partkeep **out, const char *conninfo,
                       int64_t every_ms);

/* Stop and free; a statement in progress is cancelled. NULL: nothing. */
void pi_partkeep_stop(pi_partkeep *k);

/* Retention: create the next partitions, then for each partition decide
 * with presence_partition_retire whether it goes (ids all before
 * now - keep_s and every row's time too), dropping it unless dry_run.
 * Prints one line per partition to out (created / dropped / would drop /
 * kept: reason), then trims the status change log (migration 0008) at the
 * same cutoff: "trimmed=N status changes recorded before CUTOFF" (or
 * would_trim=N), and a summary line. A drop that waits for its lock past the
 * function's lock_timeout is retried (5 attempts). 0, or PI_ESCHEMA,
 * PI_ERETRY (database unreachable), PI_EFATAL with err set. */
PI_MUST_CHECK int pi_retention_run(const char *conninfo, int64_t keep_s,
                                   int dry_run, FILE *out, pi_err *err);

/* Move presences_legacy's rows into their periods' partitions, online
 * (migration 0010): call presence_legacy_move_step(batch) on its own
 * connection until it says 'done' -- start, copy batch rows per
 * transaction, apply what writers changed meanwhile, then the swap, one
 * short transaction that locks presences (a lock wait past 1 s is retried,
 * 20 attempts). Each step commits alone, so a run killed at any point is
 * resumed by the next; two runs at once take turns. Prints the start, the
 * swap (with the time presences was locked), progress every 5 s and a
 * summary to out. Nothing to do (legacy already moved, or never there):
 * only the summary. 0, or PI_ESCHEMA, PI_ERETRY, PI_EFATAL with err set. */
PI_MUST_CHECK int pi_legacy_move_run(const char *conninfo, int64_t batch,
                                     FILE *out, pi_err *err);

#endif
