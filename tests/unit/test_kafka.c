/* test_kafka.c -- the consumer's librdkafka configuration, without a broker */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "presence/kafka.h"

/* Build from a run command line (NULL-terminated after "run"). Returns the
 * rc; on success *settings is filled and the conf's value of key (if any)
 * is copied into value. */
static int build(pi_kafka_settings *settings, pi_err *err, const char *key,
                 char *value, size_t value_size, ...)
{
    char *argv[32];
    int argc = 0, rc;
    pi_config cfg;
    rd_kafka_conf_t *conf = NULL;
    va_list ap;

    argv[argc++] = "run";
    va_start(ap, value_size);
    for (char *a; (a = va_arg(ap, char *)) != NULL;)
        argv[argc++] = a;
    va_end(ap);
    pi_config_init(&cfg);
    assert_int_equal(pi_config_parse(&cfg, PI_CMD_RUN, argc, argv, err), 0);
    rc = pi_kafka_conf_new(&conf, settings, &cfg, err);
    if (rc == 0) {
        assert_non_null(conf);
        if (key)
            assert_int_equal(rd_kafka_conf_get(conf, key, value, &value_size),
                             RD_KAFKA_CONF_OK);
        rd_kafka_conf_destroy(conf);
    } else {
        assert_null(conf);
    }
    pi_config_fini(&cfg);
    return rc;
}

static void test_kafka__defaults(void **state)
{
    pi_kafka_settings st;
    pi_err err;
    char v[256];

    (void)state;
    assert_int_equal(build(&st, &err, "partition.assignment.strategy", v,
                           sizeof(v), "--brokers", "b:1", NULL),
                     0);
    assert_string_equal(v, "cooperative-sticky");
    assert_true(st.cooperative);
    assert_int_equal(st.reset, RD_KAFKA_OFFSET_BEGINNING);
    /* Half of max.poll.interval.ms (300 s), capped by the 30 s shutdown. */
    assert_int_equal(st.revoke_budget_ms, 30000);
    assert_int_equal(build(&st, &err, "enable.auto.commit", v, sizeof(v),
                           "--brokers", "b:1", NULL),
                     0);
    assert_string_equal(v, "false");
    assert_int_equal(build(&st, &err, "group.id", v, sizeof(v), "--brokers",
                           "b:1", "--group", "g7", NULL),
                     0);
    assert_string_equal(v, "g7");
}

static void test_kafka__passthrough_overrides(void **state)
{
    pi_kafka_settings st;
    pi_err err;
    char v[256];

    (void)state;
    assert_int_equal(
        build(&st, &err, "fetch.wait.max.ms", v, sizeof(v), "--brokers", "b:1",
              "-X", "partition.assignment.strategy=range", "-X",
              "auto.offset.reset=latest", "-X", "fetch.wait.max.ms=7", "-X",
              "max.poll.interval.ms=20000", NULL),
        0);
    assert_string_equal(v, "7");
    assert_false(st.cooperative);
    assert_int_equal(st.reset, RD_KAFKA_OFFSET_END);
    assert_int_equal(st.revoke_budget_ms, 10000);
    assert_int_equal(build(&st, &err, NULL, NULL, 0, "--brokers", "b:1", "-X",
                           "auto.offset.reset=error", NULL),
                     0);
    assert_int_equal(st.reset, RD_KAFKA_OFFSET_INVALID);
    /* bootstrap.servers through -X stands in for --brokers. */
    assert_int_equal(build(&st, &err, "bootstrap.servers", v, sizeof(v), "-X",
                           "bootstrap.servers=x:2", NULL),
                     0);
    assert_string_equal(v, "x:2");
}

static void expect_refused(const char *want, const char *x)
{
    pi_kafka_settings st;
    pi_err err;

    if (x)
        assert_int_equal(
            build(&st, &err, NULL, NULL, 0, "--brokers", "b:1", "-X", x, NULL),
            PI_EINVAL);
    else
        assert_int_equal(build(&st, &err, NULL, NULL, 0, NULL), PI_EINVAL);
    if (strstr(err.msg, want) == NULL)
        fail_msg("'%s' does not contain '%s'", err.msg, want);
}

static void test_kafka__refused(void **state)
{
    (void)state;
    /* An unknown key's value is not shown: it may be a misplaced secret. */
    expect_refused("-X no.such: No such configuration property", "no.such=1");
    expect_refused("-X fetch.wait.max.ms=soon: ", "fetch.wait.max.ms=soon");
    expect_refused("-X enable.auto.commit=true: presence-ingest commits "
                   "offsets itself",
                   "enable.auto.commit=true");
    expect_refused("-X enable.auto.offset.store=true",
                   "enable.auto.offset.store=true");
    expect_refused("--brokers is required", NULL);
}

static void test_kafka__scram_broken(void **state)
{
    static const struct {
        int version;
        const char *mechanisms;
        bool broken;
    } cases[] = {
        {0x020002ff, "SCRAM-SHA-512", true}, /* Debian 12's 2.0.2 */
        {0x020002ff, "SCRAM-SHA-256", true},
        {0x020002ff, "scram-sha-512", true},
        {0x020600ff, "SCRAM-SHA-512", true},  /* 2.6.0 still has the bug */
        {0x020601ff, "SCRAM-SHA-512", false}, /* fixed in 2.6.1 */
        {0x020800ff, "SCRAM-SHA-256", false}, /* Debian 13's 2.8.0 */
        {0x030000ff, "SCRAM-SHA-512", false},
        {0x020002ff, "PLAIN", false},
        {0x020002ff, "GSSAPI", false},
        {0x020002ff, "OAUTHBEARER", false},
        {0x020002ff, NULL, false},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (pi_kafka_scram_broken(cases[i].version, cases[i].mechanisms) !=
            cases[i].broken)
            fail_msg("version %#x %s: expected %s", cases[i].version,
                     cases[i].mechanisms ? cases[i].mechanisms : "(none)",
                     cases[i].broken ? "broken" : "fine");
    }
}

static void test_kafka__secret_props(void **state)
{
    (void)state;
    assert_true(pi_kafka_secret_prop("sasl.password"));
    assert_true(pi_kafka_secret_prop("ssl.key.password"));
    assert_true(pi_kafka_secret_prop("ssl.keystore.password"));
    assert_true(pi_kafka_secret_prop("sasl.oauthbearer.client.secret"));
    assert_true(pi_kafka_secret_prop("ssl.key.pem"));
    assert_true(pi_kafka_secret_prop("sasl.oauthbearer.config"));
    assert_false(pi_kafka_secret_prop("sasl.mechanisms"));
    assert_false(pi_kafka_secret_prop("ssl.ca.location"));
    assert_false(pi_kafka_secret_prop("fetch.wait.max.ms"));
}

/* The error for a misspelt password key shows neither the value nor a
 * part of it. */
static void test_kafka__secret_not_in_errors(void **state)
{
    pi_kafka_settings st;
    pi_err err;

    (void)state;
    assert_int_equal(build(&st, &err, NULL, NULL, 0, "--brokers", "b:1", "-X",
                           "sasl.pasword=Hunter2-secret", NULL),
                     PI_EINVAL);
    assert_non_null(strstr(err.msg, "sasl.pasword"));
    assert_null(strstr(err.msg, "Hunter2"));
}

static void write_file(const char *path, const char *content, mode_t mode)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(content, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_kafka__password_sources(void **state)
{
    char path[] = "/tmp/test_kafka_pw.XXXXXX", opt[64], v[256];
    pi_kafka_settings st;
    pi_err err;
    int fd = mkstemp(path);

    (void)state;
    assert_true(fd >= 0);
    close(fd);
    snprintf(opt, sizeof(opt), "--sasl-password-file=%s", path);

    /* The first line, without its CRLF; the rest of the file is ignored. */
    write_file(path, "s3cret-from-file\r\nsecond line\n", 0600);
    assert_int_equal(build(&st, &err, "sasl.password", v, sizeof(v),
                           "--brokers", "b:1", opt, NULL),
                     0);
    assert_string_equal(v, "s3cret-from-file");

    write_file(path, "\n", 0600);
    assert_int_equal(
        build(&st, &err, NULL, NULL, 0, "--brokers", "b:1", opt, NULL),
        PI_EINVAL);
    assert_non_null(strstr(err.msg, "is empty"));

    assert_int_equal(setenv(PI_KAFKA_PASSWORD_ENV, "s3cret-from-env", 1), 0);
    assert_int_equal(build(&st, &err, "sasl.password", v, sizeof(v),
                           "--brokers", "b:1", NULL),
                     0);
    assert_string_equal(v, "s3cret-from-env");
    /* Two ways at once is refused, naming both, showing neither. */
    write_file(path, "s3cret-from-file\n", 0600);
    assert_int_equal(
        build(&st, &err, NULL, NULL, 0, "--brokers", "b:1", opt, NULL),
        PI_EINVAL);
    assert_non_null(strstr(err.msg, PI_KAFKA_PASSWORD_ENV));
    assert_non_null(strstr(err.msg, "--sasl-password-file"));
    assert_null(strstr(err.msg, "s3cret"));
    assert_int_equal(build(&st, &err, NULL, NULL, 0, "--brokers", "b:1", "-X",
                           "sasl.password=s3cret-x", NULL),
                     PI_EINVAL);
    assert_non_null(strstr(err.msg, "-X sasl.password"));
    assert_int_equal(unsetenv(PI_KAFKA_PASSWORD_ENV), 0);

    unlink(path);
    assert_int_equal(
        build(&st, &err, NULL, NULL, 0, "--brokers", "b:1", opt, NULL),
        PI_EINVAL);
    assert_non_null(strstr(err.msg, "No such file"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kafka__defaults),
        cmocka_unit_test(test_kafka__passthrough_overrides),
        cmocka_unit_test(test_kafka__refused),
        cmocka_unit_test(test_kafka__scram_broken),
        cmocka_unit_test(test_kafka__secret_props),
        cmocka_unit_test(test_kafka__secret_not_in_errors),
        cmocka_unit_test(test_kafka__password_sources),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
