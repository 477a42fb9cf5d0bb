/* watch_int.h -- inside lib/watch/: the offline changes held back by
 * `watch --offline-for` (pending.c)
 *
 * At most one entry per asset: holding an asset that is already held
 * replaces its entry. An entry is the change's row (its cells copied into
 * one allocation) and a deadline on the monotonic clock; the entries are in
 * a binary heap by deadline (the next one due in O(1), insert and removal
 * in O(log n)) and a hash table by asset (a reconnect cancels in O(1)).
 * Memory: one allocation per held asset (about 100 bytes plus the row's
 * text) and two pointers of index, so it is bounded by the number of
 * assets that went offline less than D ago, never by the number of
 * changes.
 */
#ifndef PI_WATCH_INT_H
#define PI_WATCH_INT_H

#include <stddef.h>
#include <stdint.h>

typedef struct pi_watch__pending pi_watch__pending;

/* A held change, handed back when due. */
typedef struct pi_watch__held {
    int64_t deadline_ms;
    size_t heap_idx;
    struct pi_watch__held *next; /* hash chain */
    const char *asset;           /* = row[asset_col] */
    char **row;                  /* ncols cells, NULL for SQL NULL */
} pi_watch__held;

void pi_watch__pending_new(pi_watch__pending **out, size_t ncols,
                           size_t asset_col);
void pi_watch__pending_destroy(pi_watch__pending *p);

/* Hold row (ncols cells, copied; row[asset_col] not NULL) until
 * deadline_ms, replacing the asset's entry if it has one. */
void pi_watch__pending_hold(pi_watch__pending *p, int64_t deadline_ms,
                            const char *const *row);

/* Drop asset's entry: 1 when it had one, else 0. */
int pi_watch__pending_drop(pi_watch__pending *p, const char *asset);

/* The earliest deadline, INT64_MAX when nothing is held. */
int64_t pi_watch__pending_next(const pi_watch__pending *p);

/* The earliest entry if its deadline is at or before now_ms (removed: the
 * caller frees it with pi_watch__held_free), else NULL. */
pi_watch__held *pi_watch__pending_pop_due(pi_watch__pending *p, int64_t now_ms);

void pi_watch__held_free(pi_watch__held *h);

/* Entries held. */
size_t pi_watch__pending_count(const pi_watch__pending *p);

#endif
