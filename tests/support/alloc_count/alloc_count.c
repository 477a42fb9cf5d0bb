/* alloc_count.c -- a counting allocator for tests and benchmarks */
#include "alloc_count.h"

#if defined(__SANITIZE_ADDRESS__)
#define PI_NO_ALLOC_COUNT 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PI_NO_ALLOC_COUNT 1
#endif
#endif

#ifdef PI_NO_ALLOC_COUNT

int pi_alloc_count_available(void)
{
    return 0;
}
void pi_alloc_count_mark(void)
{
}
size_t pi_alloc_count_live(void)
{
    return 0;
}
size_t pi_alloc_count_peak(void)
{
    return 0;
}

#else

#include <malloc.h>

void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t n);
void __libc_free(void *p);

/* Single-threaded use: the programs that link this measure one thread. */
static size_t live, peak, base;

static void count_in(void *p)
{
    if (p) {
        live += malloc_usable_size(p) + 8;
        if (live > peak)
            peak = live;
    }
}

static void count_out(void *p)
{
    if (p)
        live -= malloc_usable_size(p) + 8;
}

void *malloc(size_t n)
{
    void *p = __libc_malloc(n);
    count_in(p);
    return p;
}

void *calloc(size_t n, size_t size)
{
    void *p = __libc_calloc(n, size);
    count_in(p);
    return p;
}

void *realloc(void *p, size_t n)
{
    size_t old = p ? malloc_usable_size(p) + 8 : 0;
    void *q = __libc_realloc(p, n);

    if (q == NULL && n > 0)
        return NULL; /* p is still live, counted */
    live -= old;
    /* A move copies: both blocks are live for a moment. */
    if (q != p && p && q && live + old + malloc_usable_size(q) + 8 > peak)
        peak = live + old + malloc_usable_size(q) + 8;
    count_in(q);
    return q;
}

void free(void *p)
{
    count_out(p);
    __libc_free(p);
}

int pi_alloc_count_available(void)
{
    return 1;
}

void pi_alloc_count_mark(void)
{
    base = live;
    peak = live;
}

size_t pi_alloc_count_live(void)
{
    return live - base;
}

size_t pi_alloc_count_peak(void)
{
    return peak - base;
}

#endif
