/* lines.h -- `load`'s input split into message values, one per line
 *
 * A line is the bytes before a "\n", without one trailing "\r" ("\r\n"
 * files). A last line without a newline is a line too unless it is empty;
 * the newline ending the last line does not start another one. A line of
 * more than max_bytes bytes is returned as too long: its first max_bytes
 * bytes (what the too_large reject keeps as payload) and its full length,
 * whether or not it fits the buffer, so that memory stays bounded whatever
 * the input: the reader holds max(max_bytes + 2, chunk) bytes of buffer and
 * max_bytes of prefix, never more.
 *
 * The reader does no I/O: pi_lines_next returns PI_LINES_NEED_INPUT when it
 * needs more bytes, and the caller reads into pi_lines_space and reports
 * with pi_lines_fill (0 bytes: the input ended). So signals, EINTR and the
 * source stay the caller's, and a test can feed it any way it likes.
 */
#ifndef PRESENCE_LINES_H
#define PRESENCE_LINES_H

#include <stddef.h>
#include <stdint.h>

typedef struct pi_lines pi_lines;

typedef enum pi_lines_status {
    PI_LINES_NEED_INPUT = 0,
    PI_LINES_LINE,     /* line->ptr, len: the whole line */
    PI_LINES_TOO_LONG, /* line->ptr, len: its first max_bytes bytes */
    PI_LINES_END       /* the input ended and every line was returned */
} pi_lines_status;

typedef struct pi_line {
    const char *ptr; /* valid until the next call on the reader */
    size_t len;
    uint64_t total; /* the line's length (len unless too long) */
    int64_t number; /* from 1 */
} pi_line;

/* A reader of lines of at most max_bytes (≥ 1) bytes, reading at least
 * chunk bytes at a time when it can. Never fails (aborts on out of
 * memory). */
void pi_lines_new(pi_lines **out, size_t max_bytes, size_t chunk);
void pi_lines_destroy(pi_lines *lines);

/* The next line, or PI_LINES_NEED_INPUT, or PI_LINES_END (again and again
 * once the input ended). */
pi_lines_status pi_lines_next(pi_lines *lines, pi_line *line);

/* Where the caller reads the next bytes to (*n ≥ 1), after
 * PI_LINES_NEED_INPUT. */
void pi_lines_space(pi_lines *lines, char **buf, size_t *n);

/* n bytes were read to pi_lines_space's buffer; 0: the input ended. */
void pi_lines_fill(pi_lines *lines, size_t n);

#endif
