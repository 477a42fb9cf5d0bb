/* mem.c -- allocation that aborts on out-of-memory, and the per-batch arena */
#include "presence/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PI_ARENA_BLOCK_MIN (64 * 1024)

struct pi_arena_block {
    pi_arena_block *next;
    size_t size; /* usable bytes in data */
    size_t used;
    _Alignas(16) unsigned char data[];
};

static void oom(size_t size)
{
    fprintf(stderr, "presence-ingest: out of memory allocating %zu bytes\n",
            size);
    abort();
}

void *pi_malloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (p == NULL)
        oom(size);
    return p;
}

void *pi_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        oom(n * size);
    return p;
}

void *pi_realloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (p == NULL)
        oom(size);
    return p;
}

char *pi_strndup(const char *s, size_t len)
{
    char *p = pi_malloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *pi_strdup(const char *s)
{
    return pi_strndup(s, strlen(s));
}

void pi_grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    size_t n;

    if (need <= *cap)
        return;
    n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    *arr = pi_realloc(*arr, n * elem);
    *cap = n;
}

void pi_arena_init(pi_arena *arena)
{
    arena->head = NULL;
    arena->first = NULL;
    arena->used = 0;
}

void pi_arena_fini(pi_arena *arena)
{
    pi_arena_block *b = arena->first;

    while (b) {
        pi_arena_block *next = b->next;
        free(b);
        b = next;
    }
    pi_arena_init(arena);
}

void pi_arena_reset(pi_arena *arena)
{
    for (pi_arena_block *b = arena->first; b; b = b->next)
        b->used = 0;
    arena->head = arena->first;
    arena->used = 0;
}

void *pi_arena_alloc(pi_arena *arena, size_t size)
{
    pi_arena_block *b = arena->head;
    size_t need = (size + 7) & ~(size_t)7;

    /* Walk the kept blocks first: after a reset they are all empty. */
    while (b && b->used + need > b->size) {
        if (b->next == NULL)
            break;
        b = b->next;
    }
    if (b == NULL || b->used + need > b->size) {
        size_t sz = need > PI_ARENA_BLOCK_MIN ? need : PI_ARENA_BLOCK_MIN;
        pi_arena_block *nb = pi_malloc(sizeof(*nb) + sz);
        nb->next = NULL;
        nb->size = sz;
        nb->used = 0;
        if (b)
            b->next = nb;
        else
            arena->first = nb;
        b = nb;
    }
    arena->head = b;
    void *p = b->data + b->used;
    b->used += need;
    arena->used += need;
    return p;
}

char *pi_arena_memdup(pi_arena *arena, const void *src, size_t len)
{
    char *p = pi_arena_alloc(arena, len + 1);
    if (len)
        memcpy(p, src, len);
    p[len] = '\0';
    return p;
}
