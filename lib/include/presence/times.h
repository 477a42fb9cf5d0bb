/* times.h -- time as the service reads it: RFC 3339, relative times and
 * durations of the command line, and the monotonic clock */
#ifndef PRESENCE_TIMES_H
#define PRESENCE_TIMES_H

#include <stddef.h>
#include <stdint.h>

#include "presence/err.h"

/* Parse an RFC 3339 date-time as CONTRACT §2 says: exactly
 * YYYY-MM-DD, 'T' | 't' | ' ', HH:MM:SS, optional '.' and 1-9 digits, then
 * 'Z' | 'z' | ±HH:MM — nothing before or after. Calendar-valid (Gregorian
 * leap years), hour ≤ 23, minute ≤ 59, second ≤ 60 (60, at any minute, is
 * the next second), offset hours ≤ 23 and minutes ≤ 59 (-00:00 is 0).
 * Fraction digits beyond microseconds are truncated, never rounded. Years
 * 0000-9999: every result fits PostgreSQL timestamptz (4713 BC - 294276 AD).
 * On success returns 0 and sets *time_us (UTC, since 1970-01-01) and
 * *offset_min; else -1 and leaves them alone. */
int pi_rfc3339_parse(const char *s, size_t len, int64_t *time_us,
                     int16_t *offset_min);

/* A TIME option: RFC 3339 (CONTRACT §2's grammar) or relative to now_us,
 * '-' digits and one of s, m, h, d (`-7d` = 7 × 86400 s before now). Sets
 * *out_us; PI_EINVAL with a message naming `what` otherwise. */
PI_MUST_CHECK int pi_time_parse(int64_t *out_us, const char *what,
                                const char *s, int64_t now_us, pi_err *err);

/* A DURATION option: digits and one of s, m, h, d (`90s`, `15m`, `1h`,
 * `7d`), more than zero. Sets *out_s; PI_EINVAL naming `what` otherwise. */
PI_MUST_CHECK int pi_duration_parse(int64_t *out_s, const char *what,
                                    const char *s, pi_err *err);

/* Milliseconds and microseconds of CLOCK_MONOTONIC: for intervals and
 * deadlines, never for times of day. */
int64_t pi_mono_ms(void);
int64_t pi_mono_us(void);

#endif
