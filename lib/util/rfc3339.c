/* rfc3339.c -- the strict RFC 3339 date-time parser behind presence `time` */
#include "presence/times.h"

#include <stdbool.h>

/* The shortest form: YYYY-MM-DDTHH:MM:SSZ. */
#define RFC3339_MIN_LEN 20

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* n decimal digits at s, or -1 when one of them is not a digit. */
static int digits(const char *s, int n)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30,
                                          31, 31, 30, 31, 30, 31};

    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (H. Hinnant's days_from_civil; exact for every year we accept). */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + doe - 719468;
}

/* Parse "HH:MM" of a numeric offset at s (exactly 5 bytes). */
static int parse_offset(const char *s, int *minutes)
{
    int hh = digits(s, 2), mm = digits(s + 3, 2);

    if (hh < 0 || mm < 0 || s[2] != ':' || hh > 23 || mm > 59)
        return -1;
    *minutes = hh * 60 + mm;
    return 0;
}

/* Parse ".d{1,9}" at *p, advancing it; microseconds are truncated, never
 * rounded, so that a value never moves into the next second. */
static int parse_fraction(const char **p, const char *end, int64_t *us)
{
    const char *s = *p + 1;
    int n = 0, v = 0;

    while (s < end && is_digit(*s)) {
        if (n == 9)
            return -1;
        if (n < 6)
            v = v * 10 + (*s - '0');
        n++;
        s++;
    }
    if (n == 0)
        return -1;
    for (int i = n; i < 6; i++)
        v *= 10;
    *us = v;
    *p = s;
    return 0;
}

/* The time zone: Z, z or ±HH:MM, and nothing after it. */
static int parse_zone(const char *s, const char *end, int *offset)
{
    if (end - s == 1 && (*s == 'Z' || *s == 'z')) {
        *offset = 0;
        return 0;
    }
    if (end - s != 6 || (*s != '+' && *s != '-'))
        return -1;
    if (parse_offset(s + 1, offset) < 0)
        return -1;
    if (*s == '-')
        *offset = -*offset;
    return 0;
}

int pi_rfc3339_parse(const char *s, size_t len, int64_t *time_us,
                     int16_t *offset_min)
{
    const char *end = s + len, *p = s + 19;
    int64_t frac_us = 0;
    int offset;

    if (len < RFC3339_MIN_LEN)
        return -1;
    int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
    int h = digits(s + 11, 2), mi = digits(s + 14, 2), sec = digits(s + 17, 2);
    if (y < 0 || mo < 0 || d < 0 || h < 0 || mi < 0 || sec < 0)
        return -1;
    if (s[4] != '-' || s[7] != '-' || s[13] != ':' || s[16] != ':')
        return -1;
    if (s[10] != 'T' && s[10] != 't' && s[10] != ' ')
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return -1;
    /* A leap second (:60) is accepted anywhere and, like PostgreSQL does,
     * stored as the second that follows it. */
    if (h > 23 || mi > 59 || sec > 60)
        return -1;
    if (*p == '.' && parse_fraction(&p, end, &frac_us) < 0)
        return -1;
    if (parse_zone(p, end, &offset) < 0)
        return -1;

    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 +
                   sec - (int64_t)offset * 60;
    *time_us = secs * 1000000 + frac_us;
    *offset_min = (int16_t)offset;
    return 0;
}
