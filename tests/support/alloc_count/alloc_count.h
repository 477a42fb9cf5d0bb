/* alloc_count.h -- a counting allocator for tests and benchmarks
 *
 * alloc_count.c replaces malloc, calloc, realloc and free for the whole
 * program (glibc supports replacing them; json-c's calls go through them
 * too) and counts the bytes of the chunks live: malloc_usable_size plus
 * the 8-byte chunk header, what the heap really gives. Link it into one
 * program only, never into a library. Under AddressSanitizer, which owns
 * malloc, it counts nothing and pi_alloc_count_available() is 0.
 */
#ifndef PI_ALLOC_COUNT_H
#define PI_ALLOC_COUNT_H

#include <stddef.h>

int pi_alloc_count_available(void);

/* Start measuring: the peak is set to what is live now. */
void pi_alloc_count_mark(void);

/* Bytes live now, and the most live since the mark, minus what was live at
 * the mark. */
size_t pi_alloc_count_live(void);
size_t pi_alloc_count_peak(void);

#endif
