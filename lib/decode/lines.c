/* lines.c -- `load`'s input split into message values, one per line */
#include "presence/lines.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "presence/mem.h"

struct pi_lines {
    char *buf;
    size_t cap, start, end; /* buf[start, end) not yet returned */
    size_t max;
    char *prefix;   /* the first max bytes of a line too long to hold */
    bool skipping;  /* inside that line: counting, not keeping */
    uint64_t total; /* its bytes so far */
    char last;      /* its last byte so far */
    bool eof;
    int64_t number; /* of the next line */
};

void pi_lines_new(pi_lines **out, size_t max_bytes, size_t chunk)
{
    pi_lines *lr = pi_calloc(1, sizeof(*lr));

    lr->max = max_bytes ? max_bytes : 1;
    /* max + 1 bytes tell a line too long from one of max bytes and a
     * "\r"; one more is room to read into. */
    lr->cap = lr->max + 2 > chunk ? lr->max + 2 : chunk;
    lr->buf = pi_malloc(lr->cap);
    lr->number = 1;
    *out = lr;
}

void pi_lines_destroy(pi_lines *lr)
{
    if (lr == NULL)
        return;
    free(lr->buf);
    free(lr->prefix);
    free(lr);
}

/* Return the line at ptr of len bytes (its "\r" already off). */
static pi_lines_status emit(pi_lines *lr, pi_line *line, const char *ptr,
                            size_t len)
{
    line->number = lr->number++;
    line->ptr = ptr;
    line->total = len;
    if (len > lr->max) {
        line->len = lr->max;
        return PI_LINES_TOO_LONG;
    }
    line->len = len;
    return PI_LINES_LINE;
}

pi_lines_status pi_lines_next(pi_lines *lr, pi_line *line)
{
    char *p = lr->buf + lr->start;
    size_t avail = lr->end - lr->start;
    char *nl = memchr(p, '\n', avail);

    if (lr->skipping) {
        /* The rest of a line too long to hold: counted, then dropped. */
        size_t n = nl ? (size_t)(nl - p) : avail;
        if (n > 0)
            lr->last = p[n - 1];
        lr->total += n;
        lr->start += n + (nl != NULL);
        if (nl == NULL && !lr->eof)
            return PI_LINES_NEED_INPUT;
        lr->skipping = false;
        return emit(lr, line, lr->prefix, lr->total - (lr->last == '\r'));
    }
    if (nl) {
        size_t len = (size_t)(nl - p);
        lr->start += len + 1;
        if (len > 0 && nl[-1] == '\r')
            len--;
        return emit(lr, line, p, len);
    }
    /* No newline within max + 1 bytes (+1: a "\r" before the newline does
     * not count): too long, whatever follows. */
    if (avail > lr->max + 1 ||
        (avail == lr->max + 1 && lr->buf[lr->end - 1] != '\r')) {
        if (lr->prefix == NULL)
            lr->prefix = pi_malloc(lr->max);
        memcpy(lr->prefix, p, lr->max);
        lr->skipping = true;
        lr->total = avail;
        lr->last = lr->buf[lr->end - 1];
        lr->start = lr->end;
        if (!lr->eof)
            return PI_LINES_NEED_INPUT;
        lr->skipping = false;
        return emit(lr, line, lr->prefix, lr->total - (lr->last == '\r'));
    }
    if (!lr->eof)
        return PI_LINES_NEED_INPUT;
    if (avail == 0)
        return PI_LINES_END;
    lr->start = lr->end;
    return emit(lr, line, p, avail - (p[avail - 1] == '\r'));
}

void pi_lines_space(pi_lines *lr, char **buf, size_t *n)
{
    /* Keep the partial line at the front. */
    if (lr->start > 0) {
        memmove(lr->buf, lr->buf + lr->start, lr->end - lr->start);
        lr->end -= lr->start;
        lr->start = 0;
    }
    *buf = lr->buf + lr->end;
    *n = lr->cap - lr->end;
}

void pi_lines_fill(pi_lines *lr, size_t n)
{
    if (n == 0)
        lr->eof = true;
    lr->end += n;
}
