/* fuzz_lines.c -- libFuzzer target: load's line reader against a
 * reference splitter
 *
 * Input: byte 0 picks max_bytes (1-32), byte 1 seeds the sizes of the
 * reads (1 byte to all the room there is), byte 2 the buffer size (the
 * smallest, max + 2, or more); the rest is the input text. The reader,
 * fed piece by piece, must return exactly what splitting the whole text at
 * once gives (lines.h's rules written differently), and never ask for a
 * read with no room.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "presence/lines.h"

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_lines: invariant broken: %s\n", what);
    abort();
}

/* The next expected line of text[*at, len): returns 0 at the end. */
static int reference(const uint8_t *text, size_t len, size_t *at, size_t max,
                     const uint8_t **ptr, size_t *line_len, uint64_t *total)
{
    size_t start = *at, end;
    const uint8_t *nl;

    if (start >= len)
        return 0;
    nl = memchr(text + start, '\n', len - start);
    end = nl ? (size_t)(nl - text) : len;
    *at = nl ? end + 1 : len;
    *total = end - start;
    if (*total > 0 && text[end - 1] == '\r')
        (*total)--;
    *ptr = text + start;
    *line_len = *total > max ? max : *total;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    size_t max = 1 + data[0] % 32;
    uint32_t rng = data[1] * 2654435761u + 1;
    size_t chunk = data[2] % 2 ? 0 : max + 2 + data[2] % 64;
    const uint8_t *text = data + 3;
    size_t len = size - 3, fed = 0, ref_at = 0;
    int64_t number = 0;
    pi_lines *lines;
    pi_line line;

    pi_lines_new(&lines, max, chunk);
    for (;;) {
        pi_lines_status st = pi_lines_next(lines, &line);
        if (st == PI_LINES_NEED_INPUT) {
            char *p;
            size_t room;
            pi_lines_space(lines, &p, &room);
            if (room == 0)
                fail("no room to read into");
            rng = rng * 1103515245u + 12345u;
            size_t n = 1 + (rng >> 8) % room;
            n = n < len - fed ? n : len - fed;
            memcpy(p, text + fed, n);
            fed += n;
            pi_lines_fill(lines, n);
            continue;
        }
        const uint8_t *want;
        size_t want_len;
        uint64_t want_total;
        int more =
            reference(text, len, &ref_at, max, &want, &want_len, &want_total);
        if (st == PI_LINES_END) {
            if (more)
                fail("ended before the last line");
            if (fed != len)
                fail("ended before the input did");
            break;
        }
        if (!more)
            fail("a line after the last one");
        if (line.number != ++number)
            fail("line number");
        if (line.total != want_total || line.len != want_len ||
            memcmp(line.ptr, want, want_len) != 0)
            fail("line differs from the reference");
        if ((st == PI_LINES_TOO_LONG) != (want_total > max))
            fail("too long or not");
    }
    if (pi_lines_next(lines, &line) != PI_LINES_END)
        fail("not ended for good");
    pi_lines_destroy(lines);
    return 0;
}
