/* report.c -- connectivity reports: options, and rows as table, CSV, JSON */
#include "presence/report.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "presence/decode.h"
#include "presence/mem.h"

static const char *const kind_names[] = {"status", "sessions", "uptime",
                                         "reasons", "flapping"};

int pi_report_kind_parse(const char *s, pi_report_kind *out)
{
    for (size_t i = 0; i < sizeof(kind_names) / sizeof(kind_names[0]); i++) {
        if (strcmp(s, kind_names[i]) == 0) {
            *out = (pi_report_kind)i;
            return 0;
        }
    }
    return PI_EINVAL;
}

int pi_report_format_parse(const char *s, pi_report_format *out)
{
    if (strcmp(s, "table") == 0)
        *out = PI_REPORT_TABLE;
    else if (strcmp(s, "csv") == 0)
        *out = PI_REPORT_CSV;
    else if (strcmp(s, "json") == 0)
        *out = PI_REPORT_JSON;
    else
        return PI_EINVAL;
    return 0;
}

/* digits + one unit letter → seconds; -1 when it is not that shape. */
static int64_t parse_amount(const char *s)
{
    char *end;
    long long n;
    int64_t unit;

    if (!isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    n = strtoll(s, &end, 10);
    if (errno == ERANGE || end[0] == '\0' || end[1] != '\0')
        return -1;
    switch (end[0]) {
    case 's':
        unit = 1;
        break;
    case 'm':
        unit = 60;
        break;
    case 'h':
        unit = 3600;
        break;
    case 'd':
        unit = 86400;
        break;
    default:
        return -1;
    }
    /* Past 100 000 years: no timestamptz holds it anyway. */
    if (n > INT64_C(3155760000000) / unit)
        return -1;
    return (int64_t)n * unit;
}

int pi_report_parse_time(int64_t *out_us, const char *what, const char *s,
                         int64_t now_us, pi_err *err)
{
    int16_t offset;

    if (s[0] == '-') {
        int64_t secs = parse_amount(s + 1);
        if (secs >= 0) {
            *out_us = now_us - secs * 1000000;
            return 0;
        }
    } else if (pi_rfc3339_parse(s, strlen(s), out_us, &offset) == 0) {
        return 0;
    }
    return pi_err_set(err, PI_EINVAL,
                      "%s must be an RFC 3339 time (2026-03-29T00:00:00+01:00)"
                      " or relative to now (-7d, -2h, -15m, -90s), got '%s'",
                      what, s);
}

int pi_report_parse_duration(int64_t *out_s, const char *what, const char *s,
                             pi_err *err)
{
    int64_t secs = parse_amount(s);

    if (secs <= 0)
        return pi_err_set(err, PI_EINVAL,
                          "%s must be a duration above zero (90s, 15m, 1h, "
                          "7d), got '%s'",
                          what, s);
    *out_s = secs;
    return 0;
}

void pi_report_time_text(char *buf, size_t cap, const char *pg)
{
    /* "YYYY-MM-DD HH:MM:SS[.f]±HH[:MM[:SS]]": the offset starts at the
     * first sign after the time of day. */
    const char *sign = NULL;
    size_t n = strlen(pg);

    for (size_t i = 11; i < n; i++) {
        if (pg[i] == '+' || pg[i] == '-') {
            sign = pg + i;
            break;
        }
    }
    if (n < 19 || pg[10] != ' ' || sign == NULL) {
        snprintf(buf, cap, "%s", pg); /* not ISO style: as it came */
        return;
    }
    /* RFC 3339 offsets have no seconds (only pre-1900 local mean times
     * have them): they are dropped. */
    snprintf(buf, cap, "%.10sT%.*s%.3s:%.2s", pg, (int)(sign - pg - 11),
             pg + 11, sign, strlen(sign) >= 6 ? sign + 4 : "00");
}

/* ---- cells --------------------------------------------------------------- */

/* The text a cell prints as in CSV and the table (NULL: empty). */
static const char *cell_text(char *buf, size_t cap, pi_report_col type,
                             const char *v)
{
    if (v == NULL)
        return "";
    if (type == PI_COL_TIME) {
        pi_report_time_text(buf, cap, v);
        return buf;
    }
    if (type == PI_COL_BOOL)
        return v[0] == 't' ? "true" : "false";
    return v;
}

/* Shade of a share of an hour online: none, under a third, under two
 * thirds, under all of it, all of it. */
static const char *shade(double share)
{
    if (share <= 0)
        return " ";
    if (share < 1.0 / 3)
        return "\u2591";
    if (share < 2.0 / 3)
        return "\u2592";
    if (share < 1)
        return "\u2593";
    return "\u2588";
}

/* "{0,0.5,1}" → "| ▒█|" (malloc'ed). */
static char *hours_strip(const char *v)
{
    size_t cap = 8 + strlen(v) * 3, len = 0;
    char *out = pi_malloc(cap);
    const char *p = v ? v : "";

    out[len++] = '|';
    if (*p == '{')
        p++;
    while (*p && *p != '}') {
        char *end;
        double share = strtod(p, &end);
        const char *s = shade(share);

        if (end == p)
            break;
        memcpy(out + len, s, strlen(s));
        len += strlen(s);
        p = *end == ',' ? end + 1 : end;
    }
    out[len++] = '|';
    out[len] = '\0';
    return out;
}

/* Display width of UTF-8 text: one column per code point. */
static size_t width(const char *s)
{
    size_t w = 0;

    for (; *s; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

/* ---- formats ------------------------------------------------------------- */

static void write_csv_field(FILE *out, const char *s)
{
    if (strpbrk(s, ",\"\r\n") == NULL) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

static void write_csv(FILE *out, size_t ncols, const char *const *names,
                      const pi_report_col *types, size_t nrows,
                      const char *const *cells)
{
    char buf[64];
    int first = 1;

    for (size_t c = 0; c < ncols; c++) {
        if (types[c] == PI_COL_HOURS)
            continue;
        if (!first)
            fputc(',', out);
        write_csv_field(out, names[c]);
        first = 0;
    }
    fputs("\r\n", out);
    for (size_t r = 0; r < nrows; r++) {
        first = 1;
        for (size_t c = 0; c < ncols; c++) {
            if (types[c] == PI_COL_HOURS)
                continue;
            if (!first)
                fputc(',', out);
            write_csv_field(out, cell_text(buf, sizeof(buf), types[c],
                                           cells[r * ncols + c]));
            first = 0;
        }
        fputs("\r\n", out);
    }
}

static void write_json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(out, "\\%c", ch);
        else if (ch == '\n')
            fputs("\\n", out);
        else if (ch == '\r')
            fputs("\\r", out);
        else if (ch == '\t')
            fputs("\\t", out);
        else if (ch < 0x20)
            fprintf(out, "\\u%04x", ch);
        else
            fputc(ch, out);
    }
    fputc('"', out);
}

static void write_json(FILE *out, size_t ncols, const char *const *names,
                       const pi_report_col *types, size_t nrows,
                       const char *const *cells)
{
    char buf[64];

    fputc('[', out);
    for (size_t r = 0; r < nrows; r++) {
        int first = 1;

        fputs(r ? ",\n" : "\n", out);
        fputc('{', out);
        for (size_t c = 0; c < ncols; c++) {
            const char *v = cells[r * ncols + c];

            if (types[c] == PI_COL_HOURS)
                continue;
            if (!first)
                fputc(',', out);
            first = 0;
            write_json_string(out, names[c]);
            fputc(':', out);
            if (v == NULL)
                fputs("null", out);
            else if (types[c] == PI_COL_NUM || types[c] == PI_COL_BOOL)
                fputs(cell_text(buf, sizeof(buf), types[c], v), out);
            else
                write_json_string(out,
                                  cell_text(buf, sizeof(buf), types[c], v));
        }
        fputc('}', out);
    }
    fputs(nrows ? "\n]\n" : "]\n", out);
}

static void pad(FILE *out, size_t n)
{
    while (n-- > 0)
        fputc(' ', out);
}

/* Aligned columns, two spaces apart; numbers to the right. */
static void write_table(FILE *out, size_t ncols, const char *const *names,
                        const pi_report_col *types, size_t nrows,
                        const char *const *cells)
{
    char **text = pi_calloc(nrows * ncols + 1, sizeof(char *));
    size_t *w = pi_calloc(ncols + 1, sizeof(size_t));
    char buf[64];

    for (size_t c = 0; c < ncols; c++)
        w[c] = width(names[c]);
    for (size_t r = 0; r < nrows; r++) {
        for (size_t c = 0; c < ncols; c++) {
            const char *v = cells[r * ncols + c];
            size_t i = r * ncols + c;

            text[i] = types[c] == PI_COL_HOURS
                          ? hours_strip(v)
                          : pi_strdup(cell_text(buf, sizeof(buf), types[c], v));
            if (width(text[i]) > w[c])
                w[c] = width(text[i]);
        }
    }
    for (size_t r = 0; r <= nrows; r++) {
        for (size_t c = 0; c < ncols; c++) {
            const char *s = r == 0 ? names[c] : text[(r - 1) * ncols + c];
            size_t gap = w[c] - width(s);
            int right = types[c] == PI_COL_NUM;

            if (c > 0)
                fputs("  ", out);
            if (right)
                pad(out, gap);
            fputs(s, out);
            if (!right && c + 1 < ncols)
                pad(out, gap);
        }
        fputc('\n', out);
    }
    for (size_t i = 0; i < nrows * ncols; i++)
        free(text[i]);
    free(text);
    free(w);
}

void pi_report_write(FILE *out, pi_report_format fmt, size_t ncols,
                     const char *const *names, const pi_report_col *types,
                     size_t nrows, const char *const *cells)
{
    switch (fmt) {
    case PI_REPORT_CSV:
        write_csv(out, ncols, names, types, nrows, cells);
        break;
    case PI_REPORT_JSON:
        write_json(out, ncols, names, types, nrows, cells);
        break;
    case PI_REPORT_TABLE:
        write_table(out, ncols, names, types, nrows, cells);
        break;
    }
}
