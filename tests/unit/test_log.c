/* test_log.c -- log lines (logfmt, JSON, levels) and conninfo masking */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "presence/log.h"

/* Run fn with stderr redirected to a file; return what it wrote. */
static char *capture(void (*fn)(void))
{
    static char buf[8192];
    char path[] = "/tmp/pi_log_XXXXXX";
    int fd = mkstemp(path), saved = dup(STDERR_FILENO);
    ssize_t n;

    assert_true(fd >= 0);
    dup2(fd, STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    lseek(fd, 0, SEEK_SET);
    n = read(fd, buf, sizeof(buf) - 1);
    buf[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
    return buf;
}

static void emit(void)
{
    pi_debug("hidden %d", 1);
    pi_info("stored \"%s\"\nnext", "x");
    pi_log_at(PI_LOG_WARN, "presences", 3, 42, "bad message");
    /* libpq's way: a tab, a carriage return, a backslash, a bell. */
    pi_info("ERROR:\trelation \\x\r\adone");
}

static int evaluated;
static int side_effect(void)
{
    return ++evaluated;
}

static void emit_below_threshold(void)
{
    pi_debug("never %d", side_effect());
}

static void test_log__logfmt(void **state)
{
    char *out;

    (void)state;
    pi_log_setup(PI_LOG_INFO, PI_LOG_LOGFMT);
    out = capture(emit);
    assert_null(strstr(out, "hidden"));
    /* Issue 25: logfmt escapes, not JSON's \u0009: \" \\ \t \n \r, other
     * control characters dropped. */
    assert_non_null(
        strstr(out, " level=info msg=\"stored \\\"x\\\"\\nnext\"\n"));
    assert_non_null(strstr(out, " level=warn msg=\"bad message\" "
                                "topic=\"presences\" partition=3 offset=42\n"));
    assert_non_null(
        strstr(out, " level=info msg=\"ERROR:\\trelation \\\\x\\rdone\"\n"));
    assert_null(strstr(out, "\\u00"));
    assert_int_equal(strncmp(out, "ts=", 3), 0);
}

static void test_log__json(void **state)
{
    char *out;

    (void)state;
    pi_log_setup(PI_LOG_DEBUG, PI_LOG_JSON);
    out = capture(emit);
    assert_non_null(strstr(out, "\"level\":\"debug\",\"msg\":\"hidden 1\"}\n"));
    assert_non_null(strstr(
        out, "\"level\":\"info\",\"msg\":\"stored \\\"x\\\"\\u000anext\"}\n"));
    assert_non_null(strstr(out,
                           "\"msg\":\"bad message\",\"topic\":\"presences\","
                           "\"partition\":3,\"offset\":42}\n"));
    pi_log_setup(PI_LOG_INFO, PI_LOG_LOGFMT);
}

static void test_log__arguments_not_evaluated_below_threshold(void **state)
{
    (void)state;
    pi_log_setup(PI_LOG_WARN, PI_LOG_LOGFMT);
    evaluated = 0;
    assert_string_equal(capture(emit_below_threshold), "");
    assert_int_equal(evaluated, 0);
    pi_log_setup(PI_LOG_INFO, PI_LOG_LOGFMT);
}

static void test_log__parse_names(void **state)
{
    pi_log_level level;
    pi_log_format format;

    (void)state;
    assert_int_equal(pi_log_level_parse("warn", &level), 0);
    assert_int_equal(level, PI_LOG_WARN);
    assert_int_equal(pi_log_level_parse("loud", &level), -1);
    assert_int_equal(pi_log_format_parse("json", &format), 0);
    assert_int_equal(format, PI_LOG_JSON);
    assert_int_equal(pi_log_format_parse("xml", &format), -1);
}

static void expect_masked(const char *in, const char *want)
{
    char out[512];

    pi_log_mask_conninfo(in, out, sizeof(out));
    assert_string_equal(out, want);
}

static void test_log__mask_conninfo(void **state)
{
    (void)state;
    expect_masked("host=db user=u password=secret dbname=x",
                  "host=db user=u password=**** dbname=x");
    expect_masked("password='se cr\\'et' host=db", "password=**** host=db");
    expect_masked("host=db password = secret", "host=db password=****");
    expect_masked("host=db user=u", "host=db user=u");
    expect_masked("postgresql://u:secret@db:5432/x",
                  "postgresql://u:****@db:5432/x");
    expect_masked("postgres://u@db/x?password=secret&sslmode=off",
                  "postgres://u@db/x?password=****&sslmode=off");
    expect_masked("postgresql://db/x", "postgresql://db/x");
    /* The client key's passphrase, and every password of a URI. */
    expect_masked("host=db sslpassword=k3y sslmode=verify-full",
                  "host=db sslpassword=**** sslmode=verify-full");
    expect_masked("sslpassword='a b' password=c",
                  "sslpassword=**** password=****");
    expect_masked(
        "postgresql://u:s1@db/x?sslpassword=s2&password=s3&a=b",
        "postgresql://u:****@db/x?sslpassword=****&password=****&a=b");
    expect_masked("postgresql://db/x?password=",
                  "postgresql://db/x?password=****");
    /* A conninfo nested in dbname (libpq expands it): an unquoted value is
     * masked up to the next blank, the closing quote with it. */
    expect_masked("dbname='host=db password=s4'",
                  "dbname='host=db password=****");
    /* Names that end in "password" but are other keys stay. */
    expect_masked("host=db passfile=/p", "host=db passfile=/p");
}

static void emit_secret(void)
{
    pi_info("sasl.password=Hunter2-pw user=u pw again:Hunter2-pw.");
    pi_info("a short one: abc");
}

static void test_log__redact(void **state)
{
    char out[64];
    char *lines;

    (void)state;
    pi_log_setup(PI_LOG_INFO, PI_LOG_LOGFMT);
    pi_log_redact("Hunter2-pw");
    pi_log_redact("abc"); /* shorter than PI_LOG_SECRET_MIN: not kept */
    pi_log_redact(NULL);
    lines = capture(emit_secret);
    assert_null(strstr(lines, "Hunter2"));
    assert_non_null(
        strstr(lines, "msg=\"sasl.password=**** user=u pw again:****.\""));
    assert_non_null(strstr(lines, "a short one: abc"));
    pi_log_redact_clear();
    lines = capture(emit_secret);
    assert_non_null(strstr(lines, "Hunter2-pw"));

    pi_log_redact_copy(out, sizeof(out), "xsecretysecret", "secret");
    assert_string_equal(out, "x****y****");
    pi_log_redact_copy(out, sizeof(out), "no match", "secret");
    assert_string_equal(out, "no match");
    pi_log_redact_copy(out, 4, "abcdef", "zz");
    assert_string_equal(out, "abc");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log__logfmt),
        cmocka_unit_test(test_log__json),
        cmocka_unit_test(test_log__arguments_not_evaluated_below_threshold),
        cmocka_unit_test(test_log__parse_names),
        cmocka_unit_test(test_log__mask_conninfo),
        cmocka_unit_test(test_log__redact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
