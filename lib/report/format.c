/* format.c -- connectivity reports: options, and rows as table, CSV, JSON */
#include "presence/report.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "presence/decode.h"
#include "presence/mem.h"

/* The kinds, in pi_report_kind's order: `report --help`, the shell
 * completion and the command's messages list them from here. */
static const struct {
    const char *name, *summary;
} kinds[] = {
    {"status", "each asset's state now: online or offline, since when, why"},
    {"sessions", "sessions in [--since, --until): start, end, duration, "
                 "both reasons"},
    {"uptime", "each asset's time online per day in --tz, and its ratio"},
    {"reasons", "connect and disconnect reasons counted, documented or not"},
    {"flapping", "assets with --threshold disconnects within a --window"},
    {"outages", "gaps that began with a disconnect: when, how long, both "
                "sides' reasons"},
    {"availability", "online over observed time per asset and --period; "
                     "--fleet sums it up"},
    {"fleet", "assets online, offline, declared every --step, and the "
              "events between"},
};

#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

const char *pi_report_kind_at(size_t i, const char **summary)
{
    if (i >= N_KINDS)
        return NULL;
    if (summary)
        *summary = kinds[i].summary;
    return kinds[i].name;
}

int pi_report_kind_parse(const char *s, pi_report_kind *out)
{
    for (size_t i = 0; i < N_KINDS; i++) {
        if (strcmp(s, kinds[i].name) == 0) {
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

/* Numbers: aligned to the right in the table, numbers in JSON. */
static int numeric(pi_report_col type)
{
    return type == PI_COL_NUM || type == PI_COL_DURATION ||
           type == PI_COL_RATIO;
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

/* ---- the table's cells, for people ----------------------------------------
 */

/* RFC 3339 at one precision, milliseconds (truncated, as times are read):
 * "2013-06-28T09:46:21.5+02:00" → "2013-06-28T09:46:21.500+02:00". */
static void time_ms(char *buf, size_t cap, const char *pg)
{
    char rfc[64];
    size_t n = time_text(rfc, sizeof(rfc), pg, strlen(pg)), digits = 0;

    if (n < 20) {
        snprintf(buf, cap, "%s", pg); /* not ISO style: as it came */
        return;
    }
    if (rfc[19] == '.')
        while (isdigit((unsigned char)rfc[20 + digits]))
            digits++;
    snprintf(buf, cap, "%.19s.%.*s%.*s%s", rfc, (int)(digits < 3 ? digits : 3),
             rfc + 20, (int)(digits < 3 ? 3 - digits : 0), "000",
             rfc + 19 + (digits ? digits + 1 : 0));
}

/* Seconds as the two largest units, floored: 45s, 12m05s, 14h34m, 3d04h. */
static void duration_text(char *buf, size_t cap, const char *v)
{
    char *end;
    double d = strtod(v, &end);
    const char *sign = "";
    long long s;

    if (end == v) {
        snprintf(buf, cap, "%s", v);
        return;
    }
    if (d < 0) {
        sign = "-";
        d = -d;
    }
    s = (long long)d;
    if (s >= 86400)
        snprintf(buf, cap, "%s%lldd%02lldh", sign, s / 86400, s % 86400 / 3600);
    else if (s >= 3600)
        snprintf(buf, cap, "%s%lldh%02lldm", sign, s / 3600, s % 3600 / 60);
    else if (s >= 60)
        snprintf(buf, cap, "%s%lldm%02llds", sign, s / 60, s % 60);
    else
        snprintf(buf, cap, "%s%llds", sign, s);
}

/* A share as a percentage with one decimal: 0.7095988 → "71.0%". */
static void ratio_text(char *buf, size_t cap, const char *v)
{
    char *end;
    double r = strtod(v, &end);

    if (end == v)
        snprintf(buf, cap, "%s", v);
    else
        snprintf(buf, cap, "%.1f%%", r * 100);
}

/* A cell as the table prints it (malloc'ed). */
static char *table_text(pi_report_col type, const char *v)
{
    char buf[128]; /* time_ms writes up to 71 bytes */
    size_t n;

    if (v == NULL)
        return pi_strdup("");
    switch (type) {
    case PI_COL_HOURS:
        return hours_strip(v);
    case PI_COL_TIME:
        time_ms(buf, sizeof(buf), v);
        return pi_strdup(buf);
    case PI_COL_DURATION:
        duration_text(buf, sizeof(buf), v);
        return pi_strdup(buf);
    case PI_COL_RATIO:
        ratio_text(buf, sizeof(buf), v);
        return pi_strdup(buf);
    default:
        return pi_strdup(cell_text(buf, sizeof(buf), type, v, &n));
    }
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

/* Columns the table may use: the terminal's width when out is one, else
 * $COLUMNS when set, else no limit (0). */
static size_t table_limit(FILE *out)
{
    struct winsize ws;
    const char *env = getenv("COLUMNS");
    int fd = fileno(out);

    if (fd >= 0 && isatty(fd) && ioctl(fd, TIOCGWINSZ, &ws) == 0 &&
        ws.ws_col > 0)
        return ws.ws_col;
    if (env && *env) {
        long n = strtol(env, NULL, 10);
        if (n > 0)
            return (size_t)n;
    }
    return 0;
}

/* Narrow the widest text columns, one column at a time, until the row fits
 * in limit (never a column under its header or MIN_TEXT_WIDTH). */
#define MIN_TEXT_WIDTH 8

static void fit(size_t *w, size_t ncols, const char *const *names,
                const pi_report_col *types, size_t limit)
{
    size_t total = 2 * (ncols - 1);

    for (size_t c = 0; c < ncols; c++)
        total += w[c];
    while (limit > 0 && total > limit) {
        size_t widest = ncols;
        for (size_t c = 0; c < ncols; c++) {
            size_t floor = width(names[c]) > MIN_TEXT_WIDTH ? width(names[c])
                                                            : MIN_TEXT_WIDTH;
            if (types[c] == PI_COL_TEXT && w[c] > floor &&
                (widest == ncols || w[c] > w[widest]))
                widest = c;
        }
        if (widest == ncols)
            return; /* nothing left to narrow */
        w[widest]--;
        total--;
    }
}

/* s cut to at most w columns, its last one "…" when cut (malloc'ed). */
static char *cut(const char *s, size_t w)
{
    size_t cols = 0, i = 0;
    char *out;

    if (width(s) <= w)
        return pi_strdup(s);
    /* Keep w - 1 code points, then the ellipsis. */
    while (s[i] && cols < w - 1) {
        i++;
        while (((unsigned char)s[i] & 0xC0) == 0x80)
            i++;
        cols++;
    }
    out = pi_malloc(i + 4);
    memcpy(out, s, i);
    memcpy(out + i, "\u2026", 4);
    return out;
}

/* Aligned columns, two spaces apart; numbers to the right; for people:
 * durations, ratios and times made readable, text cut to the terminal. */
static void write_table(outbuf *o, size_t ncols, const char *const *names,
                        const pi_report_col *types, size_t nrows,
                        const char *const *cells)
{
    char **text = pi_calloc(nrows * ncols + 1, sizeof(char *));
    size_t *w = pi_calloc(ncols + 1, sizeof(size_t));
    double *max = pi_calloc(ncols + 1, sizeof(double));

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
            size_t i = r * ncols + c;

            text[i] = types[c] == PI_COL_SPARK ? spark_bar(cells[i], max[c])
                                               : table_text(types[c], cells[i]);
            if (width(text[i]) > w[c])
                w[c] = width(text[i]);
        }
    }
    fit(w, ncols, names, types, table_limit(o->f));
    for (size_t r = 0; r <= nrows; r++) {
        for (size_t c = 0; c < ncols; c++) {
            char *s = cut(r == 0 ? names[c] : text[(r - 1) * ncols + c], w[c]);
            size_t gap = w[c] - width(s);
            int right = numeric(types[c]);

            if (c > 0)
                out_put(o, "  ", 2);
            if (right)
                pad(o, gap);
            out_str(o, s);
            if (!right && c + 1 < ncols)
                pad(o, gap);
            free(s);
        }
        out_chr(o, '\n');
    }
    for (size_t i = 0; i < nrows * ncols; i++)
        free(text[i]);
    free(text);
    free(w);
    free(max);
}

/* The header (row NULL) or one row as a table line, widths growing as
 * wider cells come (a stream has no last row to measure first). */
static void write_table_line(outbuf *o, size_t ncols, const char *const *names,
                             const pi_report_col *types, const char *const *row,
                             size_t *widths)
{
    for (size_t c = 0; c < ncols; c++) {
        char *t;
        size_t w;
        int right = numeric(types[c]);

        if (table_only(types[c]))
            continue;
        t = row ? table_text(types[c], row[c]) : pi_strdup(names[c]);
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
        free(t);
    }
    out_chr(o, '\n');
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
