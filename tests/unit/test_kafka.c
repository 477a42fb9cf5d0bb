/* test_kafka.c -- the consumer's librdkafka configuration, without a broker */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

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
    expect_refused("-X no.such=1: No such configuration property", "no.such=1");
    expect_refused("-X fetch.wait.max.ms=soon: ", "fetch.wait.max.ms=soon");
    expect_refused("-X enable.auto.commit=true: presence-ingest commits "
                   "offsets itself",
                   "enable.auto.commit=true");
    expect_refused("-X enable.auto.offset.store=true",
                   "enable.auto.offset.store=true");
    expect_refused("--brokers is required", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kafka__defaults),
        cmocka_unit_test(test_kafka__passthrough_overrides),
        cmocka_unit_test(test_kafka__refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
