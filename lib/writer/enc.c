/* enc.c -- the writer's encoders: binary COPY, details, JSON, UTF-8 */
#include "writer_int.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "presence/utf8.h"

void pi_wbuf_need(pi_wbuf *b, size_t n)
{
    pi_grow((void **)&b->ptr, &b->cap, b->len + n, 1);
}

void pi_wbuf_put(pi_wbuf *b, const void *p, size_t n)
{
    pi_wbuf_need(b, n);
    memcpy(b->ptr + b->len, p, n);
    b->len += n;
}

void pi_wbuf_i16(pi_wbuf *w, int16_t v)
{
    uint16_t u = (uint16_t)v;
    unsigned char b[2] = {(unsigned char)(u >> 8), (unsigned char)u};
    pi_wbuf_put(w, b, 2);
}

void pi_wbuf_i32(pi_wbuf *w, int32_t v)
{
    uint32_t u = (uint32_t)v;
    unsigned char b[4] = {(unsigned char)(u >> 24), (unsigned char)(u >> 16),
                          (unsigned char)(u >> 8), (unsigned char)u};
    pi_wbuf_put(w, b, 4);
}

void pi_wbuf_i64(pi_wbuf *w, int64_t v)
{
    uint64_t u = (uint64_t)v;
    unsigned char b[8];
    for (int i = 7; i >= 0; i--) {
        b[i] = (unsigned char)u;
        u >>= 8;
    }
    pi_wbuf_put(w, b, 8);
}

/* Binary COPY fields: a length word, then the value. */
void pi_copy_i16(pi_wbuf *w, int16_t v)
{
    pi_wbuf_i32(w, 2);
    pi_wbuf_i16(w, v);
}

void pi_copy_i32(pi_wbuf *w, int32_t v)
{
    pi_wbuf_i32(w, 4);
    pi_wbuf_i32(w, v);
}

void pi_copy_i64(pi_wbuf *w, int64_t v)
{
    pi_wbuf_i32(w, 8);
    pi_wbuf_i64(w, v);
}

void pi_copy_bytes(pi_wbuf *w, const char *p, size_t n)
{
    if (p == NULL) {
        pi_wbuf_i32(w, -1); /* SQL NULL */
        return;
    }
    pi_wbuf_i32(w, (int32_t)n);
    pi_wbuf_put(w, p, n);
}

/* s as text PostgreSQL accepts: valid UTF-8 without NUL. Returned as is when
 * it already is (the usual case), else a copy in the arena with each bad byte
 * replaced by '?'. Used for strings the decoder did not vouch for: topic
 * names (a `load` path), details. */
pi_str pi_text_clean(pi_arena *arena, const char *s, size_t n)
{
    pi_str out = {s, n};
    size_t i = 0, k;
    char *copy;

    while (i < n && (k = pi_utf8_seq((const unsigned char *)s + i, n - i)) > 0)
        i += k;
    if (i == n)
        return out;
    copy = pi_arena_memdup(arena, s, n);
    while (i < n) {
        k = pi_utf8_seq((const unsigned char *)s + i, n - i);
        if (k == 0) {
            copy[i] = '?';
            k = 1;
        }
        i += k;
    }
    out.ptr = copy;
    return out;
}

void pi_sbuf_printf(pi_sbuf *sb, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (sb->len >= sizeof(sb->data) - 1)
        return;
    va_start(ap, fmt);
    n = vsnprintf(sb->data + sb->len, sizeof(sb->data) - sb->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        sb->len += (size_t)n;
    if (sb->len > sizeof(sb->data) - 1)
        sb->len = sizeof(sb->data) - 1;
}

/* Quote a value for a detail, cut to a readable length. */
void pi_sbuf_value(pi_sbuf *sb, const char *s, size_t n)
{
    if (s == NULL) {
        pi_sbuf_printf(sb, "null");
        return;
    }
    if (n > 40)
        pi_sbuf_printf(sb, "\"%.40s…\"", s);
    else
        pi_sbuf_printf(sb, "\"%.*s\"", (int)n, s);
}

/* civil date from days since 1970-01-01 (Howard Hinnant's algorithm): valid
 * for any year, unlike gmtime on a 32-bit time_t. */
static void civil(int64_t days, int *y, int *m, int *d)
{
    int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;

    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

/* time as RFC 3339 in its original offset (rfc3339=1), or as PostgreSQL
 * prints a timestamptz in UTC (rfc3339=0), for comparing with stored text. */
void pi_fmt_time(char *out, size_t cap, int64_t time_us, int offset_min,
                 int rfc3339)
{
    int64_t local = time_us + (rfc3339 ? (int64_t)offset_min * 60000000 : 0);
    int64_t secs =
        local >= 0 ? local / 1000000 : -((-local + 999999) / 1000000);
    int64_t frac = local - secs * 1000000;
    int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    int64_t sod = secs - days * 86400;
    char fs[16] = "";
    int y, m, d, n;

    civil(days, &y, &m, &d);
    if (frac) {
        snprintf(fs, sizeof(fs), ".%06d", (int)frac);
        for (n = (int)strlen(fs); fs[n - 1] == '0'; n--)
            fs[n - 1] = '\0';
    }
    if (!rfc3339) {
        snprintf(out, cap, "%04d-%02d-%02d %02d:%02d:%02d%s+00", y, m, d,
                 (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60), fs);
    } else if (offset_min == 0) {
        snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d%sZ", y, m, d,
                 (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60), fs);
    } else {
        int a = offset_min < 0 ? -offset_min : offset_min;
        snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d%s%c%02d:%02d", y, m,
                 d, (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60),
                 fs, offset_min < 0 ? '-' : '+', a / 60, a % 60);
    }
}

static void json_string(pi_wbuf *w, const char *s, size_t n)
{
    pi_wbuf_put(w, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            pi_wbuf_put(w, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            pi_wbuf_put(w, esc, 6);
        } else {
            pi_wbuf_put(w, &s[i], 1);
        }
    }
    pi_wbuf_put(w, "\"", 1);
}

void pi_json_presence(pi_wbuf *b, const pi_presence *pr)
{
    const char *type = pi_presence_type_name(pr->type);
    char num[160], t[64];

    snprintf(num, sizeof(num),
             "{\"id\":%" PRId64 ",\"id_str\":\"%" PRId64
             "\",\"connection_id\":%" PRId64 ",\"connection_id_str\":\"%" PRId64
             "\",\"type\":",
             pr->id, pr->id, pr->connection_id, pr->connection_id);
    pi_wbuf_put(b, num, strlen(num));
    json_string(b, type, strlen(type));
    pi_wbuf_put(b, ",\"reason\":", 10);
    json_string(b, pr->reason.ptr, pr->reason.len);
    pi_wbuf_put(b, ",\"asset\":", 9);
    if (pr->asset.ptr)
        json_string(b, pr->asset.ptr, pr->asset.len);
    else
        pi_wbuf_put(b, "null", 4);
    pi_fmt_time(t, sizeof(t), pr->time_us, pr->offset_min, 1);
    pi_wbuf_put(b, ",\"time\":", 8);
    json_string(b, t, strlen(t));
    pi_wbuf_put(b, "}", 1);
}

void pi_copy_header(pi_wbuf *w)
{
    static const char sig[11] = "PGCOPY\n\377\r\n";

    w->len = 0;
    pi_wbuf_put(w, sig, 11);
    pi_wbuf_i32(w, 0); /* flags */
    pi_wbuf_i32(w, 0); /* header extension length */
}

int64_t pi_be_get(const char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = (v << 8) | (unsigned char)p[i];
    if (bytes == 2)
        return (int16_t)v;
    if (bytes == 4)
        return (int32_t)v;
    return (int64_t)v;
}
