/* reltime.c -- the command line's times (RFC 3339 or -7d) and durations (90s)
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "presence/times.h"

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

int pi_time_parse(int64_t *out_us, const char *what, const char *s,
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

int pi_duration_parse(int64_t *out_s, const char *what, const char *s,
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
