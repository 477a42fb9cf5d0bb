/* mem.h -- allocation wrappers that abort on out-of-memory, and a bump arena */
#ifndef PRESENCE_MEM_H
#define PRESENCE_MEM_H

#include <stddef.h>

/* Allocation that never returns NULL: on failure it prints one line to
 * stderr and aborts (Redis zmalloc). Free with free(). */
void *pi_malloc(size_t size);
void *pi_calloc(size_t n, size_t size);
void *pi_realloc(void *ptr, size_t size);
char *pi_strndup(const char *s, size_t len);
char *pi_strdup(const char *s);

/* Grow an array so that it holds at least `need` elements of `elem` bytes;
 * *cap is updated. Geometric growth. */
void pi_grow(void **arr, size_t *cap, size_t need, size_t elem);

/* A bump allocator for per-batch strings: pointers stay valid until
 * pi_arena_reset() or pi_arena_fini(). Storage is owned by the caller
 * (init/fini). Blocks are kept across resets so that a steady-state batch
 * does no malloc at all. */
typedef struct pi_arena_block pi_arena_block;
typedef struct pi_arena {
    pi_arena_block *head;  /* block being filled */
    pi_arena_block *first; /* first block; later ones are chained */
    size_t used;           /* bytes handed out since the last reset */
} pi_arena;

void pi_arena_init(pi_arena *arena);
void pi_arena_fini(pi_arena *arena);
/* Forget every allocation, keep the memory for reuse. */
void pi_arena_reset(pi_arena *arena);
/* Return `size` bytes aligned to 8; never NULL. */
void *pi_arena_alloc(pi_arena *arena, size_t size);
/* Copy len bytes into the arena and return the copy (NUL-terminated for
 * convenience; the terminator is not counted in len). */
char *pi_arena_memdup(pi_arena *arena, const void *src, size_t len);

#endif
