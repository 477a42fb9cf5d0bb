/* test_report.c -- report formats (table, CSV, JSON), times, TIME and
 * DURATION options */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "presence/report.h"
#include "presence/times.h"

/* A small result: a time with a fraction, a null, a string that needs
 * quoting in CSV and escaping in JSON, an id, a number, a boolean. */
static const char *const names[] = {"asset", "since", "reason",
                                    "id",    "n",     "ok"};
static const pi_report_col types[] = {PI_COL_TEXT, PI_COL_TIME, PI_COL_TEXT,
                                      PI_COL_ID,   PI_COL_NUM,  PI_COL_BOOL};
static const char *const cells[] = {"a1",
                                    "2013-06-28 09:46:21.5+02",
                                    "say \"hi\", bye",
                                    "461799503595297635",
                                    "1.5",
                                    "t",
                                    "a\xc3\xa9",
                                    NULL,
                                    "plain",
                                    "7",
                                    "12",
                                    "f"};

static char *render(pi_report_format fmt, size_t nrows)
{
    static char buf[4096];
    FILE *f = fmemopen(buf, sizeof(buf), "w");

    assert_non_null(f);
    pi_report_write(f, fmt, 6, names, types, nrows, cells);
    fclose(f);
    return buf;
}

static void test_report__csv(void **state)
{
    (void)state;
    assert_string_equal(
        render(PI_REPORT_CSV, 2),
        "asset,since,reason,id,n,ok\r\n"
        "a1,2013-06-28T09:46:21.5+02:00,\"say \"\"hi\"\", bye\","
        "461799503595297635,1.5,true\r\n"
        "a\xc3\xa9,,plain,7,12,false\r\n");
    assert_string_equal(render(PI_REPORT_CSV, 0),
                        "asset,since,reason,id,n,ok\r\n");
}

static void test_report__json(void **state)
{
    (void)state;
    assert_string_equal(
        render(PI_REPORT_JSON, 2),
        "[\n"
        "{\"asset\":\"a1\",\"since\":\"2013-06-28T09:46:21.5+02:00\","
        "\"reason\":\"say \\\"hi\\\", bye\",\"id\":\"461799503595297635\","
        "\"n\":1.5,\"ok\":true},\n"
        "{\"asset\":\"a\xc3\xa9\",\"since\":null,\"reason\":\"plain\","
        "\"id\":\"7\",\"n\":12,\"ok\":false}\n"
        "]\n");
    assert_string_equal(render(PI_REPORT_JSON, 0), "[]\n");
}

static void test_report__table(void **state)
{
    (void)state;
    unsetenv("COLUMNS");
    /* "aé" is two columns wide; numbers are right-aligned; the time at
     * millisecond precision. */
    assert_string_equal(
        render(PI_REPORT_TABLE, 2),
        "asset  since                          reason         "
        "id                    n  ok\n"
        "a1     2013-06-28T09:46:21.500+02:00  say \"hi\", bye  "
        "461799503595297635  1.5  true\n"
        "a\xc3\xa9                                    plain    "
        "      7                    12  false\n");
}

/* Issue 25: the table for people (durations, ratios, times at one
 * precision); CSV and JSON keep the exact values. */
static void test_report__table_for_people(void **state)
{
    static const char *const n[] = {"asset", "online_s", "ratio", "at"};
    static const pi_report_col t[] = {PI_COL_TEXT, PI_COL_DURATION,
                                      PI_COL_RATIO, PI_COL_TIME};
    static const char *const c[] = {"a",
                                    "52485.929709",
                                    "0.7095988425925925",
                                    "2026-01-02 03:04:05+01",
                                    "b",
                                    "45.9",
                                    "1",
                                    "2026-01-02 03:04:05.123456-05:30",
                                    "c",
                                    "725",
                                    "0",
                                    "2026-01-02 03:04:05.12+00",
                                    "d",
                                    "90061",
                                    NULL,
                                    NULL};
    char buf[1024];
    FILE *f = fmemopen(buf, sizeof(buf), "w");

    (void)state;
    unsetenv("COLUMNS");
    pi_report_write(f, PI_REPORT_TABLE, 4, n, t, 4, c);
    fclose(f);
    assert_string_equal(buf, "asset  online_s   ratio  at\n"
                             "a        14h34m   71.0%  "
                             "2026-01-02T03:04:05.000+01:00\n"
                             "b           45s  100.0%  "
                             "2026-01-02T03:04:05.123-05:30\n"
                             "c        12m05s    0.0%  "
                             "2026-01-02T03:04:05.120+00:00\n"
                             "d         1d01h          \n");
    f = fmemopen(buf, sizeof(buf), "w");
    pi_report_write(f, PI_REPORT_CSV, 4, n, t, 1, c);
    fclose(f);
    assert_string_equal(buf, "asset,online_s,ratio,at\r\n"
                             "a,52485.929709,0.7095988425925925,"
                             "2026-01-02T03:04:05+01:00\r\n");
    f = fmemopen(buf, sizeof(buf), "w");
    pi_report_write(f, PI_REPORT_JSON, 4, n, t, 1, c);
    fclose(f);
    assert_string_equal(buf, "[\n{\"asset\":\"a\",\"online_s\":52485.929709,"
                             "\"ratio\":0.7095988425925925,"
                             "\"at\":\"2026-01-02T03:04:05+01:00\"}\n]\n");
}

/* Text columns are cut with '…' to the terminal's width ($COLUMNS when out
 * is not a terminal); other columns are never cut. */
static void test_report__table_fits_width(void **state)
{
    static const char *const n[] = {"asset", "reason", "n"};
    static const pi_report_col t[] = {PI_COL_TEXT, PI_COL_TEXT, PI_COL_NUM};
    static const char *const c[] = {
        "a", "a very long reason that goes on", "12345", "b", "short", "1"};
    char buf[512];
    FILE *f;

    (void)state;
    setenv("COLUMNS", "27", 1);
    f = fmemopen(buf, sizeof(buf), "w");
    pi_report_write(f, PI_REPORT_TABLE, 3, n, t, 2, c);
    fclose(f);
    /* 5 + 2 + 13 + 2 + 5 = 27: reason narrowed from 31 to 13 columns. */
    assert_string_equal(buf, "asset  reason             n\n"
                             "a      a very long \u2026  12345\n"
                             "b      short              1\n");
    /* Too narrow for the floor (8 columns, or the header): cut no more. */
    setenv("COLUMNS", "5", 1);
    f = fmemopen(buf, sizeof(buf), "w");
    pi_report_write(f, PI_REPORT_TABLE, 3, n, t, 1, c);
    fclose(f);
    assert_string_equal(buf, "asset  reason        n\n"
                             "a      a very \u2026  12345\n");
    unsetenv("COLUMNS");
}

static void test_report__hours_strip(void **state)
{
    static const char *const n[] = {"asset", "hours"};
    static const pi_report_col t[] = {PI_COL_TEXT, PI_COL_HOURS};
    static const char *const c[] = {"a", "{0,0.2,0.5,0.9,1}"};
    char buf[256];
    FILE *f = fmemopen(buf, sizeof(buf), "w");

    (void)state;
    pi_report_write(f, PI_REPORT_TABLE, 2, n, t, 1, c);
    fclose(f);
    assert_string_equal(buf, "asset  hours\n"
                             "a      | \u2591\u2592\u2593\u2588|\n");
    /* Left out of CSV. */
    f = fmemopen(buf, sizeof(buf), "w");
    pi_report_write(f, PI_REPORT_CSV, 2, n, t, 1, c);
    fclose(f);
    assert_string_equal(buf, "asset\r\na\r\n");
}

/* The fleet's sparkline: 20 cells in eighths, scaled to the column's
 * largest (80 here: 4 units an eighth); an empty bar for 0, an eighth at
 * least for any count. DURATION and RATIO are numbers: right-aligned, bare
 * in JSON. SPARK and MARK are left out of CSV and JSON. */
static void test_report__spark_and_mark(void **state)
{
    static const char *const n[] = {"n", "", "r", "mark"};
    static const pi_report_col t[] = {PI_COL_DURATION, PI_COL_SPARK,
                                      PI_COL_RATIO, PI_COL_MARK};
    static const char *const c[] = {"80", "80", "0.5",  "below", "41", "41",
                                    "1",  NULL, "0",    "0",     "1",  NULL,
                                    "1",  "1",  "0.25", NULL};
    char buf[2048];
    FILE *f = fmemopen(buf, sizeof(buf), "w");

    (void)state;
    pi_report_write(f, PI_REPORT_TABLE, 4, n, t, 4, c);
    fclose(f);
    /* 80: 160 eighths = 20 cells; 41: 82 eighths = 10 cells and 2/8; 1: 2
     * eighths; 0: nothing. The table prints the DURATION column as 1m20s …
     * (five wide, right-aligned) and the RATIO column as percentages. */
    assert_string_equal(
        buf,
        "    n                             r  mark\n"
        "1m20s  \u2588\u2588\u2588\u2588\u2588\u2588\u2588\u2588\u2588\u2588"
        "\u2588\u2588\u2588\u2588\u2588\u2588\u2588\u2588\u2588\u2588"
        "   50.0%  below\n"
        "  41s  \u2588\u2588\u2588\u2588\u2588\u2588\u2588\u2588\u2588\u2588"
        "\u258e           100.0%  \n"
        "   0s                        100.0%  \n"
        "   1s  \u258e                      25.0%  \n");
    f = fmemopen(buf, sizeof(buf), "w");
    pi_report_write(f, PI_REPORT_CSV, 4, n, t, 2, c);
    fclose(f);
    assert_string_equal(buf, "n,r\r\n80,0.5\r\n41,1\r\n");
    f = fmemopen(buf, sizeof(buf), "w");
    pi_report_write(f, PI_REPORT_JSON, 4, n, t, 1, c);
    fclose(f);
    assert_string_equal(buf, "[\n{\"n\":80,\"r\":0.5}\n]\n");
}

static void test_report__time_text(void **state)
{
    static const char *const cases[][2] = {
        {"2013-06-28 09:46:21+02", "2013-06-28T09:46:21+02:00"},
        {"2026-03-01 22:00:00+00", "2026-03-01T22:00:00+00:00"},
        {"2026-03-01 22:00:00.000123-05:30",
         "2026-03-01T22:00:00.000123-05:30"},
        {"1890-01-01 00:00:00+00:09:21", "1890-01-01T00:00:00+00:09"},
    };
    char buf[64];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pi_report_time_text(buf, sizeof(buf), cases[i][0]);
        assert_string_equal(buf, cases[i][1]);
    }
}

static void test_report__parse_options(void **state)
{
    const int64_t now = INT64_C(1774742400000000); /* 2026-03-29T00:00Z */
    pi_report_kind kind;
    pi_report_format fmt;
    int64_t v;
    pi_err err;

    (void)state;
    assert_int_equal(pi_time_parse(&v, "--since", "-7d", now, &err), 0);
    assert_int_equal(v, now - INT64_C(7) * 86400 * 1000000);
    assert_int_equal(pi_time_parse(&v, "--since", "-2h", now, &err), 0);
    assert_int_equal(v, now - INT64_C(7200000000));
    assert_int_equal(
        pi_time_parse(&v, "--until", "2026-03-29T01:00:00+01:00", now, &err),
        0);
    assert_int_equal(v, now);
    assert_int_equal(pi_time_parse(&v, "--since", "-7", now, &err), PI_EINVAL);
    assert_int_equal(pi_time_parse(&v, "--since", "-7y", now, &err), PI_EINVAL);
    assert_int_equal(
        pi_time_parse(&v, "--since", "2026-02-30T00:00:00Z", now, &err),
        PI_EINVAL);
    assert_non_null(strstr(err.msg, "--since"));
    assert_int_equal(pi_duration_parse(&v, "--window", "90s", &err), 0);
    assert_int_equal(v, 90);
    assert_int_equal(pi_duration_parse(&v, "--window", "7d", &err), 0);
    assert_int_equal(v, 7 * 86400);
    assert_int_equal(pi_duration_parse(&v, "--window", "0h", &err), PI_EINVAL);
    assert_int_equal(pi_duration_parse(&v, "--window", "1 h", &err), PI_EINVAL);
    assert_int_equal(pi_report_kind_parse("flapping", &kind), 0);
    assert_int_equal(kind, PI_REPORT_FLAPPING);
    assert_int_equal(pi_report_kind_parse("Status", &kind), PI_EINVAL);
    assert_int_equal(pi_report_kind_parse("outages", &kind), 0);
    assert_int_equal(kind, PI_REPORT_OUTAGES);
    assert_int_equal(pi_report_kind_parse("availability", &kind), 0);
    assert_int_equal(kind, PI_REPORT_AVAILABILITY);
    assert_int_equal(pi_report_kind_parse("fleet", &kind), 0);
    assert_int_equal(kind, PI_REPORT_FLEET);
    assert_int_equal(pi_report_format_parse("json", &fmt), 0);
    assert_int_equal(fmt, PI_REPORT_JSON);
    assert_int_equal(pi_report_format_parse("xml", &fmt), PI_EINVAL);
}

/* The kind table: `report --help` and the completion list these. */
static void test_report__kinds(void **state)
{
    const char *want[] = {"status", "sessions", "uptime", "reasons",
                          "flapping"};
    const char *summary = NULL;
    size_t i;

    (void)state;
    for (i = 0; pi_report_kind_at(i, &summary); i++) {
        pi_report_kind kind;
        if (i < sizeof(want) / sizeof(want[0]))
            assert_string_equal(pi_report_kind_at(i, NULL), want[i]);
        assert_true(summary && *summary);
        assert_int_equal(
            pi_report_kind_parse(pi_report_kind_at(i, NULL), &kind), 0);
        assert_int_equal(kind, (pi_report_kind)i);
    }
    assert_true(i >= sizeof(want) / sizeof(want[0]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report__csv),
        cmocka_unit_test(test_report__json),
        cmocka_unit_test(test_report__table),
        cmocka_unit_test(test_report__table_for_people),
        cmocka_unit_test(test_report__table_fits_width),
        cmocka_unit_test(test_report__kinds),
        cmocka_unit_test(test_report__hours_strip),
        cmocka_unit_test(test_report__spark_and_mark),
        cmocka_unit_test(test_report__time_text),
        cmocka_unit_test(test_report__parse_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
