/* commit_log.h -- the recent commits of one writer, to undo from its counters
 *
 * A database that loses its last commits (a crash with synchronous_commit=off,
 * a failover to an asynchronous replica, a restore) loses a suffix of them,
 * in commit order. The consumer re-reads the lost messages, and its
 * counters must not count them twice: it remembers, for its last `capacity`
 * committed batches, the positions each reached and the figures it added,
 * and takes back those of every batch from the oldest one the database no
 * longer has. Single-threaded.
 */
#ifndef PRESENCE_COMMIT_LOG_H
#define PRESENCE_COMMIT_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "presence/writer.h"

typedef struct pi_commit_log pi_commit_log;

/* What a batch reached on one partition; `part` is the caller's index. */
typedef struct pi_commit_pos {
    uint32_t part;
    int64_t next_offset;
} pi_commit_pos;

void pi_commit_log_new(pi_commit_log **out, size_t capacity);
void pi_commit_log_destroy(pi_commit_log *log);

/* Remember one committed batch (pos is copied). The oldest entry goes when
 * the log is full. */
void pi_commit_log_add(pi_commit_log *log, const pi_commit_pos *pos, size_t n,
                       const pi_write_stats *stats);

/* stored[part] is what the database now holds for each of the caller's
 * n_parts partitions (-1: no row; INT64_MAX: unknown, never judged). Finds
 * the oldest remembered batch that reached beyond what is stored on one of
 * its partitions, forgets it and every later one, and adds their figures to
 * *undone. Returns how many batches were undone; *overflow is set when the
 * oldest batch still remembered was undone too after older ones had been
 * forgotten (the loss may go further back than the log: the counters may
 * still overstate). */
size_t pi_commit_log_undo(pi_commit_log *log, const int64_t *stored,
                          size_t n_parts, pi_write_stats *undone,
                          int *overflow);

#endif
