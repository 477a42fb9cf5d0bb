/* pending.c -- watch --offline-for: offline changes held back until due */
#include <stdlib.h>
#include <string.h>

#include "presence/mem.h"
#include "watch_int.h"

struct pi_watch__pending {
    size_t ncols, asset_col;
    pi_watch__held **heap; /* by deadline_ms */
    size_t n, cap;
    pi_watch__held **buckets; /* by asset; nbuckets a power of two */
    size_t nbuckets;
};

/* FNV-1a. */
static size_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (size_t)h;
}

void pi_watch__pending_new(pi_watch__pending **out, size_t ncols,
                           size_t asset_col)
{
    pi_watch__pending *p = pi_calloc(1, sizeof(*p));

    p->ncols = ncols;
    p->asset_col = asset_col;
    p->nbuckets = 64;
    p->buckets = pi_calloc(p->nbuckets, sizeof(*p->buckets));
    *out = p;
}

void pi_watch__held_free(pi_watch__held *h)
{
    free(h);
}

void pi_watch__pending_destroy(pi_watch__pending *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n; i++)
        pi_watch__held_free(p->heap[i]);
    free(p->heap);
    free(p->buckets);
    free(p);
}

/* ---- heap ---------------------------------------------------------------- */

static void heap_set(pi_watch__pending *p, size_t i, pi_watch__held *h)
{
    p->heap[i] = h;
    h->heap_idx = i;
}

static void sift_up(pi_watch__pending *p, size_t i)
{
    pi_watch__held *h = p->heap[i];

    while (i > 0 && p->heap[(i - 1) / 2]->deadline_ms > h->deadline_ms) {
        heap_set(p, i, p->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(p, i, h);
}

static void sift_down(pi_watch__pending *p, size_t i)
{
    pi_watch__held *h = p->heap[i];

    for (;;) {
        size_t c = 2 * i + 1;

        if (c >= p->n)
            break;
        if (c + 1 < p->n &&
            p->heap[c + 1]->deadline_ms < p->heap[c]->deadline_ms)
            c++;
        if (p->heap[c]->deadline_ms >= h->deadline_ms)
            break;
        heap_set(p, i, p->heap[c]);
        i = c;
    }
    heap_set(p, i, h);
}

static void heap_remove(pi_watch__pending *p, pi_watch__held *h)
{
    size_t i = h->heap_idx;
    pi_watch__held *last = p->heap[--p->n];

    if (last == h)
        return;
    heap_set(p, i, last);
    sift_down(p, i);
    sift_up(p, last->heap_idx);
}

/* ---- hash ---------------------------------------------------------------- */

static pi_watch__held **slot(pi_watch__pending *p, const char *asset)
{
    pi_watch__held **s = &p->buckets[hash(asset) & (p->nbuckets - 1)];

    while (*s != NULL && strcmp((*s)->asset, asset) != 0)
        s = &(*s)->next;
    return s;
}

/* Double the buckets once there are more entries than buckets. */
static void grow(pi_watch__pending *p)
{
    size_t n = p->nbuckets * 2;
    pi_watch__held **b = pi_calloc(n, sizeof(*b));

    for (size_t i = 0; i < p->nbuckets; i++) {
        pi_watch__held *h = p->buckets[i], *next;

        for (; h != NULL; h = next) {
            size_t j = hash(h->asset) & (n - 1);

            next = h->next;
            h->next = b[j];
            b[j] = h;
        }
    }
    free(p->buckets);
    p->buckets = b;
    p->nbuckets = n;
}

/* ---- entries ------------------------------------------------------------- */

/* One allocation: the entry, the cell pointers, the cells' text. */
static pi_watch__held *held_new(const pi_watch__pending *p, int64_t deadline,
                                const char *const *row)
{
    size_t bytes = sizeof(pi_watch__held) + p->ncols * sizeof(char *);
    pi_watch__held *h;
    char *text;

    for (size_t c = 0; c < p->ncols; c++)
        bytes += row[c] ? strlen(row[c]) + 1 : 0;
    h = pi_malloc(bytes);
    h->deadline_ms = deadline;
    h->heap_idx = 0;
    h->next = NULL;
    h->row = (char **)(h + 1);
    text = (char *)(h->row + p->ncols);
    for (size_t c = 0; c < p->ncols; c++) {
        if (row[c] == NULL) {
            h->row[c] = NULL;
            continue;
        }
        size_t n = strlen(row[c]) + 1;
        memcpy(text, row[c], n);
        h->row[c] = text;
        text += n;
    }
    h->asset = h->row[p->asset_col];
    return h;
}

/* Unlink asset's entry from both indexes and return it (NULL: none). */
static pi_watch__held *take(pi_watch__pending *p, const char *asset)
{
    pi_watch__held **s = slot(p, asset), *h = *s;

    if (h == NULL)
        return NULL;
    *s = h->next;
    heap_remove(p, h);
    return h;
}

void pi_watch__pending_hold(pi_watch__pending *p, int64_t deadline_ms,
                            const char *const *row)
{
    pi_watch__held *h = held_new(p, deadline_ms, row);

    pi_watch__held_free(take(p, h->asset));
    if (p->n + 1 > p->nbuckets)
        grow(p);
    {
        pi_watch__held **s = slot(p, h->asset);
        *s = h;
    }
    pi_grow((void **)&p->heap, &p->cap, p->n + 1, sizeof(*p->heap));
    heap_set(p, p->n, h);
    p->n++;
    sift_up(p, p->n - 1);
}

int pi_watch__pending_drop(pi_watch__pending *p, const char *asset)
{
    pi_watch__held *h = take(p, asset);

    pi_watch__held_free(h);
    return h != NULL;
}

int64_t pi_watch__pending_next(const pi_watch__pending *p)
{
    return p->n ? p->heap[0]->deadline_ms : INT64_MAX;
}

pi_watch__held *pi_watch__pending_pop_due(pi_watch__pending *p, int64_t now_ms)
{
    if (p->n == 0 || p->heap[0]->deadline_ms > now_ms)
        return NULL;
    return take(p, p->heap[0]->asset);
}

size_t pi_watch__pending_count(const pi_watch__pending *p)
{
    return p->n;
}
