/* commit_log.c -- a ring of recent commits: positions reached, figures added */
#include "presence/commit_log.h"

#include <stdlib.h>
#include <string.h>

#include "presence/mem.h"

typedef struct entry {
    pi_commit_pos *pos;
    size_t n, cap;
    pi_write_stats stats;
} entry;

struct pi_commit_log {
    entry *ring;
    size_t capacity;
    size_t head;  /* index of the oldest entry */
    size_t count; /* entries held */
    int forgot;   /* an entry was pushed out since the last undo */
};

void pi_commit_log_new(pi_commit_log **out, size_t capacity)
{
    pi_commit_log *log = pi_calloc(1, sizeof(*log));

    log->capacity = capacity ? capacity : 1;
    log->ring = pi_calloc(log->capacity, sizeof(*log->ring));
    *out = log;
}

void pi_commit_log_destroy(pi_commit_log *log)
{
    if (log == NULL)
        return;
    for (size_t i = 0; i < log->capacity; i++)
        free(log->ring[i].pos);
    free(log->ring);
    free(log);
}

void pi_commit_log_add(pi_commit_log *log, const pi_commit_pos *pos, size_t n,
                       const pi_write_stats *stats)
{
    entry *e;

    if (log->count == log->capacity) {
        log->head = (log->head + 1) % log->capacity;
        log->count--;
        log->forgot = 1;
    }
    e = &log->ring[(log->head + log->count) % log->capacity];
    pi_grow((void **)&e->pos, &e->cap, n ? n : 1, sizeof(*e->pos));
    if (n)
        memcpy(e->pos, pos, n * sizeof(*pos));
    e->n = n;
    e->stats = *stats;
    log->count++;
}

static int lost(const entry *e, const int64_t *stored, size_t n_parts)
{
    for (size_t i = 0; i < e->n; i++) {
        uint32_t p = e->pos[i].part;
        if (p < n_parts && stored[p] != INT64_MAX &&
            stored[p] < e->pos[i].next_offset)
            return 1;
    }
    return 0;
}

size_t pi_commit_log_undo(pi_commit_log *log, const int64_t *stored,
                          size_t n_parts, pi_write_stats *undone, int *overflow)
{
    size_t first = log->count, n;

    *overflow = 0;
    for (size_t k = 0; k < log->count; k++) {
        if (lost(&log->ring[(log->head + k) % log->capacity], stored,
                 n_parts)) {
            first = k;
            break;
        }
    }
    n = log->count - first;
    for (size_t k = first; k < log->count; k++)
        pi_write_stats_add(undone,
                           &log->ring[(log->head + k) % log->capacity].stats);
    if (n && first == 0 && log->forgot)
        *overflow = 1;
    log->count = first;
    if (n)
        log->forgot = 0;
    return n;
}
