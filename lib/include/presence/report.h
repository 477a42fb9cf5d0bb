/* report.h -- connectivity and fleet reports (CONTRACT §7, §8): query the
 * database's views and functions, format their rows as table, CSV or JSON
 *
 * The definitions live in the database (migrations/0002_reports.sql,
 * 0004_rollup.sql and 0005_session_days.sql: asset_status, sessions_in,
 * daily_uptime, daily_uptime_hours, reason_counts, flapping_assets); this
 * module only picks the function for a kind, passes the options as parameters,
 * adds the contract's sort order and formats what comes back. Every report runs
 * on one connection as:
 *
 *   [SELECT presence_rollup_refresh()]         -- below
 *   BEGIN; SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL extra_float_digits = 1;
 *   SET LOCAL jit = off; SET LOCAL work_mem = '64MB'
 *   SELECT set_config('TimeZone', tz, true)    -- 22023: unknown zone
 *   SELECT <columns> FROM <view or function>($since, $until, …)
 *          [WHERE asset = $asset] ORDER BY <§7's order>
 *   COMMIT
 *
 * (one transaction, nothing left on the session: PgBouncer's transaction
 * pooling, docs/packaging.md)
 * so that times come back in the zone of --tz and numbers in their shortest
 * exact form; the formatter turns PostgreSQL's ISO times into RFC 3339.
 * status, uptime and flapping of every asset read the rollup (migrations 0004
 * and 0005): `SELECT presence_rollup_refresh()` first (its catch-up; a
 * failure is only logged). Status's and uptime's rows are sorted here
 * byte-wise (asset, then day);
 * for one asset, status is `asset_status_of($asset)`.
 *
 * CONTRACT §8's kinds (migrations/0009_fleet_reports.sql): outages reads
 * asset_outages, availability asset_availability (fleet_availability with
 * --fleet), fleet fleet_timeline; for one asset, their *_for(ARRAY[$asset],
 * …) variants. status --state / --offline-for filter asset_status's rows.
 */
#ifndef PRESENCE_REPORT_H
#define PRESENCE_REPORT_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "presence/err.h"

typedef enum pi_report_kind {
    PI_REPORT_STATUS,
    PI_REPORT_SESSIONS,
    PI_REPORT_UPTIME,
    PI_REPORT_REASONS,
    PI_REPORT_FLAPPING,
    PI_REPORT_OUTAGES,
    PI_REPORT_AVAILABILITY,
    PI_REPORT_FLEET
} pi_report_kind;

typedef enum pi_report_format {
    PI_REPORT_TABLE,
    PI_REPORT_CSV,
    PI_REPORT_JSON
} pi_report_format;

/* How a column's PostgreSQL text value is printed. */
typedef enum pi_report_col {
    PI_COL_TEXT,  /* a string */
    PI_COL_ID,    /* a 64-bit id: a string in JSON */
    PI_COL_NUM,   /* a number (PostgreSQL's shortest exact text) */
    PI_COL_BOOL,  /* 't' / 'f' → true / false */
    PI_COL_TIME,  /* timestamptz in ISO style → RFC 3339 */
    PI_COL_DAY,   /* date, YYYY-MM-DD */
    PI_COL_HOURS, /* float8[] of hourly shares: a strip, table format only */
    /* Numbers (exact in CSV and JSON) that the table prints for people: */
    PI_COL_DURATION, /* seconds → 45s, 12m05s, 14h34m, 3d04h (floored) */
    PI_COL_RATIO,    /* a share 0..1 → 71.0% */
    PI_COL_SPARK,    /* a count drawn as a bar scaled to the column's largest:
                        table format only */
    PI_COL_MARK      /* a word that flags a row for people: table format only */
} pi_report_col;

/* What to report. Times are microseconds since 1970-01-01 UTC. */
typedef struct pi_report_query {
    pi_report_kind kind;
    const char *asset; /* NULL: every asset */
    int64_t since_us, until_us;
    const char *tz;   /* IANA zone name */
    int64_t window_s; /* flapping window, > 0 */
    int64_t threshold;
    int64_t debounce_s;    /* outages, availability: ≥ 0 */
    const char *period;    /* availability: "day" | "week" | "month" | NULL */
    int fleet;             /* availability: the fleet's summary */
    double target;         /* availability --fleet: 0 … 1 */
    int64_t step_s;        /* fleet: > 0 */
    const char *state;     /* status: only this state, or NULL */
    int64_t offline_for_s; /* status: offline since ≤ until - this; < 0: off */
} pi_report_query;

/* The i-th kind's name (the i-th pi_report_kind) and in *summary (may be
 * NULL) one line saying what it lists; NULL past the last kind. */
const char *pi_report_kind_at(size_t i, const char **summary);

/* "status" … "fleet" → *out; PI_EINVAL for anything else. */
PI_MUST_CHECK int pi_report_kind_parse(const char *s, pi_report_kind *out);

/* "table" | "csv" | "json" → *out; PI_EINVAL for anything else. */
PI_MUST_CHECK int pi_report_format_parse(const char *s, pi_report_format *out);

/* Write one result set to out in fmt. names/types: ncols columns; cells:
 * nrows × ncols PostgreSQL text values, row-major, NULL for SQL NULL.
 * Columns of type PI_COL_HOURS are drawn in the table format only (a cell an
 * hour, shaded ' ░▒▓█' by the share online) and left out of CSV and JSON;
 * so are PI_COL_SPARK (a bar of up to 20 cells in eighths, '▏' … '█', its
 * length the value over the column's largest) and PI_COL_MARK.
 * The table is for people: PI_COL_TIME at millisecond precision, durations
 * and ratios as their types say, numbers to the right, and text columns
 * narrowed (cut with '…') to fit the terminal's width (out's, else
 * $COLUMNS, else no limit). CSV and JSON keep PostgreSQL's exact values.
 * CSV: RFC 4180 (CRLF, quoted when needed) with a header line; JSON: one
 * array of objects, one per line, ids as strings, null for NULL. */
void pi_report_write(FILE *out, pi_report_format fmt, size_t ncols,
                     const char *const *names, const pi_report_col *types,
                     size_t nrows, const char *const *cells);

/* The same rows as lines that can be written as they come (`watch`): CSV
 * lines (the header first when header is set), JSON lines (one object per
 * line, no array: a stream for `jq` or a shell loop), or table lines whose
 * columns are padded to widths[c] (ncols entries, caller-owned, start at 0),
 * which grow to fit the widest cell seen so far (the header when header is
 * set). */
void pi_report_write_lines(FILE *out, pi_report_format fmt, size_t ncols,
                           const char *const *names, const pi_report_col *types,
                           size_t nrows, const char *const *cells,
                           size_t *widths, int header);

/* PostgreSQL's ISO timestamptz text ("2013-06-28 09:46:21.5+02") as RFC 3339
 * ("2013-06-28T09:46:21.5+02:00") into buf (cap ≥ 40). */
void pi_report_time_text(char *buf, size_t cap, const char *pg);

/* A report notes the rollup's lag when it is above this many seconds: the
 * assets not caught up with are computed from presences, exact but slower. */
#define PI_REPORT_LAG_NOTICE_S 60.0

/* The rollup's lag on conn (presence_rollup_lag(): the age in seconds of
 * the oldest change not caught up with, 0 when none) into *out, and the
 * number of pending changes (presence_dirty rows) into *pending. */
PI_MUST_CHECK int pi_report_rollup_lag(double *out, int64_t *pending,
                                       PGconn *conn, pi_err *err);

/* Run report q on conn and write it to out in fmt; *rows (rows may be NULL)
 * is how many rows it wrote. PI_EINVAL for an unknown
 * --tz (message: "--tz: unknown time zone 'X'"), PI_ESCHEMA when the
 * reports' migration is missing, else what pi_db_fail says. Nothing is
 * written to out on failure. */
PI_MUST_CHECK int pi_report_run(size_t *rows, PGconn *conn,
                                const pi_report_query *q, pi_report_format fmt,
                                FILE *out, pi_err *err);

#endif
