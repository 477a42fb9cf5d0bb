/* format.c -- connectivity reports: options, and rows as table, CSV, JSON */
#include "presence/report.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "presence/decode.h"
#include "presence/mem.h"

static const char *const kind_names[] = {"status",       "sessions", "uptime",
                                         "reasons",      "flapping", "outages",
                                         "availability", "fleet"};

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

/* Length of RFC 3339 text for PostgreSQL's ISO pg (n bytes) into buf, or 0
 * when pg is not ISO style or buf is too small. */
static size_t time_text(char *buf, size_t cap, const char *pg, size_t n)
{
    /* "YYYY-MM-DD HH:MM:SS[.f]±HH[:MM[:SS]]": the offset starts at the
     * first sign after the time of day. */
    size_t sign = 0, clock, len;

    if (n < 19 || pg[10] != ' ')
        return 0;
    for (size_t i = 11; i < n; i++) {
        if (pg[i] == '+' || pg[i] == '-') {
            sign = i;
            break;
        }
    }
    if (sign == 0 || n - sign < 3)
        return 0;
    clock = sign - 11;
    len = 10 + 1 + clock + 6;
    if (len + 1 > cap)
        return 0;
    memcpy(buf, pg, 10);
    buf[10] = 'T';
    memcpy(buf + 11, pg + 11, clock);
    memcpy(buf + 11 + clock, pg + sign, 3);
    buf[14 + clock] = ':';
    /* RFC 3339 offsets have no seconds (only pre-1900 local mean times
     * have them): they are dropped. */
    if (n - sign >= 6)
        memcpy(buf + 15 + clock, pg + sign + 4, 2);
    else
        memcpy(buf + 15 + clock, "00", 2);
    buf[len] = '\0';
    return len;
}

void pi_report_time_text(char *buf, size_t cap, const char *pg)
{
    if (time_text(buf, cap, pg, strlen(pg)) == 0)
        snprintf(buf, cap, "%s", pg); /* not ISO style: as it came */
}

/* ---- output -------------------------------------------------------------- */

/* Output goes through one buffer, written with fwrite when full: a report
 * of 100 000 rows is millions of small pieces, and stdio's per-call locking
 * and the formatting of each piece cost as much as the query (measured). */
#define OUT_CAP 65536

typedef struct outbuf {
    FILE *f;
    size_t len;
    char b[OUT_CAP];
} outbuf;

static void out_flush(outbuf *o)
{
    if (o->len > 0)
        fwrite(o->b, 1, o->len, o->f);
    o->len = 0;
}

static void out_put(outbuf *o, const char *s, size_t n)
{
    if (n > OUT_CAP - o->len) {
        out_flush(o);
        if (n > OUT_CAP) {
            fwrite(s, 1, n, o->f);
            return;
        }
    }
    memcpy(o->b + o->len, s, n);
    o->len += n;
}

static void out_str(outbuf *o, const char *s)
{
    out_put(o, s, strlen(s));
}

static void out_chr(outbuf *o, char c)
{
    if (o->len == OUT_CAP)
        out_flush(o);
    o->b[o->len++] = c;
}

/* ---- cells --------------------------------------------------------------- */

/* The text a cell prints as in CSV and the table (NULL: empty); its length
 * in *n. */
static const char *cell_text(char *buf, size_t cap, pi_report_col type,
                             const char *v, size_t *n)
{
    if (v == NULL) {
        *n = 0;
        return "";
    }
    if (type == PI_COL_BOOL) {
        *n = v[0] == 't' ? 4 : 5;
        return v[0] == 't' ? "true" : "false";
    }
    *n = strlen(v);
    if (type == PI_COL_TIME) {
        size_t len = time_text(buf, cap, v, *n);
        if (len > 0) {
            *n = len;
            return buf;
        }
    }
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
    size_t cap = 8 + (v ? strlen(v) : 0) * 3, len = 0;
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

/* Columns drawn for people only, left out of CSV and JSON. */
static int table_only(pi_report_col type)
{
    return type == PI_COL_HOURS || type == PI_COL_SPARK || type == PI_COL_MARK;
}

/* Numbers, aligned to the right in the table. */
static int numeric(pi_report_col type)
{
    return type == PI_COL_NUM || type == PI_COL_SECONDS || type == PI_COL_RATIO;
}

/* The bar of value v over the column's largest, max: up to SPARK_CELLS
 * cells, in eighths of a cell ("" when v ≤ 0; at least an eighth when v >
 * 0, so that a small count still shows). malloc'ed. */
#define SPARK_CELLS 20

static char *spark_bar(const char *v, double max)
{
    static const char *const eighths[] = {"",       "\u258f", "\u258e",
                                          "\u258d", "\u258c", "\u258b",
                                          "\u258a", "\u2589"};
    double x = v ? strtod(v, NULL) : 0;
    long n = 0;
    char *out = pi_malloc(SPARK_CELLS * 3 + 4), *p = out;

    if (x > 0 && max > 0) {
        n = (long)(x / max * SPARK_CELLS * 8 + 0.5);
        if (n < 1)
            n = 1;
    }
    for (long i = 0; i < n / 8; i++) {
        memcpy(p, "\u2588", 3);
        p += 3;
    }
    memcpy(p, eighths[n % 8], strlen(eighths[n % 8]));
    p += strlen(eighths[n % 8]);
    *p = '\0';
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

static void write_csv_field(outbuf *o, const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        char c = s[i];
        if (c == ',' || c == '"' || c == '\r' || c == '\n')
            break;
    }
    if (i == n) {
        out_put(o, s, n);
        return;
    }
    out_chr(o, '"');
    for (i = 0; i < n; i++) {
        if (s[i] == '"')
            out_chr(o, '"');
        out_chr(o, s[i]);
    }
    out_chr(o, '"');
}

/* The header (row NULL) or one row as a CSV line. */
static void write_csv_line(outbuf *o, size_t ncols, const char *const *names,
                           const pi_report_col *types, const char *const *row)
{
    char buf[64];
    int first = 1;

    for (size_t c = 0; c < ncols; c++) {
        const char *t;
        size_t n;

        if (table_only(types[c]))
            continue;
        if (!first)
            out_chr(o, ',');
        if (row == NULL) {
            t = names[c];
            n = strlen(t);
        } else
            t = cell_text(buf, sizeof(buf), types[c], row[c], &n);
        write_csv_field(o, t, n);
        first = 0;
    }
    out_put(o, "\r\n", 2);
}

static void write_csv(outbuf *o, size_t ncols, const char *const *names,
                      const pi_report_col *types, size_t nrows,
                      const char *const *cells)
{
    write_csv_line(o, ncols, names, types, NULL);
    for (size_t r = 0; r < nrows; r++)
        write_csv_line(o, ncols, names, types, cells + r * ncols);
}

static void write_json_string(outbuf *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0; /* s[run … i) needs no escape */

    out_chr(o, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t len = 2;

        if (ch == '"' || ch == '\\')
            esc[1] = (char)ch;
        else if (ch == '\n')
            esc[1] = 'n';
        else if (ch == '\r')
            esc[1] = 'r';
        else if (ch == '\t')
            esc[1] = 't';
        else if (ch < 0x20) {
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[ch >> 4];
            esc[5] = hex[ch & 15];
            len = 6;
        } else
            continue;
        out_put(o, s + run, i - run);
        out_put(o, esc, len);
        run = i + 1;
    }
    out_put(o, s + run, n - run);
    out_chr(o, '"');
}

/* One row as a JSON object (no newline). */
static void write_json_object(outbuf *o, size_t ncols, const char *const *names,
                              const pi_report_col *types,
                              const char *const *row)
{
    char buf[64];
    int first = 1;

    out_chr(o, '{');
    for (size_t c = 0; c < ncols; c++) {
        const char *v = row[c], *t;
        size_t n;

        if (table_only(types[c]))
            continue;
        if (!first)
            out_chr(o, ',');
        first = 0;
        write_json_string(o, names[c], strlen(names[c]));
        out_chr(o, ':');
        t = cell_text(buf, sizeof(buf), types[c], v, &n);
        if (v == NULL)
            out_put(o, "null", 4);
        else if (numeric(types[c]) || types[c] == PI_COL_BOOL)
            out_put(o, t, n);
        else
            write_json_string(o, t, n);
    }
    out_chr(o, '}');
}

static void write_json(outbuf *o, size_t ncols, const char *const *names,
                       const pi_report_col *types, size_t nrows,
                       const char *const *cells)
{
    out_chr(o, '[');
    for (size_t r = 0; r < nrows; r++) {
        out_str(o, r ? ",\n" : "\n");
        write_json_object(o, ncols, names, types, cells + r * ncols);
    }
    out_str(o, nrows ? "\n]\n" : "]\n");
}

static void pad(outbuf *o, size_t n)
{
    while (n-- > 0)
        out_chr(o, ' ');
}

/* Aligned columns, two spaces apart; numbers to the right. */
static void write_table(outbuf *o, size_t ncols, const char *const *names,
                        const pi_report_col *types, size_t nrows,
                        const char *const *cells)
{
    char **text = pi_calloc(nrows * ncols + 1, sizeof(char *));
    size_t *w = pi_calloc(ncols + 1, sizeof(size_t));
    double *max = pi_calloc(ncols + 1, sizeof(double));
    char buf[64];

    for (size_t c = 0; c < ncols; c++) {
        w[c] = width(names[c]);
        for (size_t r = 0; types[c] == PI_COL_SPARK && r < nrows; r++) {
            const char *v = cells[r * ncols + c];
            if (v && strtod(v, NULL) > max[c])
                max[c] = strtod(v, NULL);
        }
    }
    for (size_t r = 0; r < nrows; r++) {
        for (size_t c = 0; c < ncols; c++) {
            const char *v = cells[r * ncols + c];
            size_t i = r * ncols + c, n;

            if (types[c] == PI_COL_HOURS)
                text[i] = hours_strip(v);
            else if (types[c] == PI_COL_SPARK)
                text[i] = spark_bar(v, max[c]);
            else
                text[i] =
                    pi_strdup(cell_text(buf, sizeof(buf), types[c], v, &n));
            if (width(text[i]) > w[c])
                w[c] = width(text[i]);
        }
    }
    for (size_t r = 0; r <= nrows; r++) {
        for (size_t c = 0; c < ncols; c++) {
            const char *s = r == 0 ? names[c] : text[(r - 1) * ncols + c];
            size_t gap = w[c] - width(s);
            int right = numeric(types[c]);

            if (c > 0)
                out_put(o, "  ", 2);
            if (right)
                pad(o, gap);
            out_str(o, s);
            if (!right && c + 1 < ncols)
                pad(o, gap);
        }
        out_chr(o, '\n');
    }
    for (size_t i = 0; i < nrows * ncols; i++)
        free(text[i]);
    free(text);
    free(w);
    free(max);
}

void pi_report_write(FILE *out, pi_report_format fmt, size_t ncols,
                     const char *const *names, const pi_report_col *types,
                     size_t nrows, const char *const *cells)
{
    outbuf *o = pi_malloc(sizeof(*o));

    o->f = out;
    o->len = 0;
    switch (fmt) {
    case PI_REPORT_CSV:
        write_csv(o, ncols, names, types, nrows, cells);
        break;
    case PI_REPORT_JSON:
        write_json(o, ncols, names, types, nrows, cells);
        break;
    case PI_REPORT_TABLE:
        write_table(o, ncols, names, types, nrows, cells);
        break;
    }
    out_flush(o);
    free(o);
}

/* One table line (row NULL: the header), each column padded to widths[c],
 * which grows to fit. */
static void write_table_line(outbuf *o, size_t ncols, const char *const *names,
                             const pi_report_col *types, const char *const *row,
                             size_t *widths)
{
    char buf[64];

    for (size_t c = 0; c < ncols; c++) {
        const char *t = names[c];
        size_t n, w;
        int right = numeric(types[c]);

        if (table_only(types[c]))
            continue;
        if (row != NULL)
            t = cell_text(buf, sizeof(buf), types[c], row[c], &n);
        w = width(t);
        if (w > widths[c])
            widths[c] = w;
        if (c > 0)
            out_put(o, "  ", 2);
        if (right)
            pad(o, widths[c] - w);
        out_str(o, t);
        if (!right && c + 1 < ncols)
            pad(o, widths[c] - w);
    }
    out_chr(o, '\n');
}

void pi_report_write_lines(FILE *out, pi_report_format fmt, size_t ncols,
                           const char *const *names, const pi_report_col *types,
                           size_t nrows, const char *const *cells,
                           size_t *widths, int header)
{
    outbuf *o = pi_malloc(sizeof(*o));

    o->f = out;
    o->len = 0;
    if (header && fmt == PI_REPORT_CSV)
        write_csv_line(o, ncols, names, types, NULL);
    else if (header && fmt == PI_REPORT_TABLE)
        write_table_line(o, ncols, names, types, NULL, widths);
    for (size_t r = 0; r < nrows; r++) {
        const char *const *row = cells + r * ncols;

        if (fmt == PI_REPORT_CSV)
            write_csv_line(o, ncols, names, types, row);
        else if (fmt == PI_REPORT_JSON) {
            write_json_object(o, ncols, names, types, row);
            out_chr(o, '\n');
        } else
            write_table_line(o, ncols, names, types, row, widths);
    }
    out_flush(o);
    free(o);
}
