/* writer_int.h -- the writer's encoders: binary COPY, details, JSON, UTF-8
 *
 * Internal to the writer (writer.c, writer_enc.c); not a public module.
 */
#ifndef PRESENCE_WRITER_INT_H
#define PRESENCE_WRITER_INT_H

#include <stddef.h>
#include <stdint.h>

#include "presence/decode.h"
#include "presence/mem.h"

/* Microseconds from 1970-01-01 to 2000-01-01, PostgreSQL's timestamp epoch. */
#define PI_PG_EPOCH_US INT64_C(946684800000000)

/* A growable byte buffer, reused from batch to batch (never shrinks). */
typedef struct pi_wbuf {
    char *ptr;
    size_t len, cap;
} pi_wbuf;

void pi_wbuf_need(pi_wbuf *b, size_t n); /* room for n more bytes */
void pi_wbuf_put(pi_wbuf *b, const void *p, size_t n);
/* Big-endian integers, as PostgreSQL's binary formats want them. */
void pi_wbuf_i16(pi_wbuf *b, int16_t v);
void pi_wbuf_i32(pi_wbuf *b, int32_t v);
void pi_wbuf_i64(pi_wbuf *b, int64_t v);
/* Read a big-endian signed integer of 2, 4 or 8 bytes. */
int64_t pi_be_get(const char *p, int bytes);

/* Binary COPY: reset b to the file header; fields are a length word and the
 * value (pi_copy_bytes with p NULL: SQL NULL). Tuples start with
 * pi_wbuf_i16(field count) and the data ends with pi_wbuf_i16(-1). */
void pi_copy_header(pi_wbuf *b);
void pi_copy_i16(pi_wbuf *b, int16_t v);
void pi_copy_i32(pi_wbuf *b, int32_t v);
void pi_copy_i64(pi_wbuf *b, int64_t v);
void pi_copy_bytes(pi_wbuf *b, const char *p, size_t n);

/* s as text PostgreSQL accepts: valid UTF-8 without NUL. Returned as is when
 * it already is (the usual case), else a copy in arena with each bad byte
 * replaced by '?'. For strings the decoder did not vouch for: topic names (a
 * `load` path), details. */
pi_str pi_text_clean(pi_arena *arena, const char *s, size_t n);

/* A one-line detail being built; silently cut at its size. */
typedef struct pi_sbuf {
    char data[1024];
    size_t len;
} pi_sbuf;

void pi_sbuf_printf(pi_sbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A quoted value (null for NULL), cut to a readable length. */
void pi_sbuf_value(pi_sbuf *sb, const char *s, size_t n);

/* time as RFC 3339 in its original offset (rfc3339 = 1), or the way
 * PostgreSQL prints a timestamptz in UTC (rfc3339 = 0). */
void pi_fmt_time(char *out, size_t cap, int64_t time_us, int offset_min,
                 int rfc3339);

/* Append pr as a presence object (both id forms, time in its offset): the
 * payload of a reject the writer makes, which re-drives as the element. */
void pi_json_presence(pi_wbuf *b, const pi_presence *pr);

#endif
