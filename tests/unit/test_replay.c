/* test_replay.c -- a replay's options to its range spec */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "presence/config.h"
#include "presence/replay.h"

/* 2026-12-01T00:00:00Z in ms */
#define NOW 1796083200000LL

static int parse(pi_replay_spec *spec, pi_err *err, const char *const *argv)
{
    pi_config cfg;
    int argc = 0, rc;

    while (argv[argc])
        argc++;
    pi_config_init(&cfg);
    rc = pi_config_parse(&cfg, PI_CMD_REPLAY, argc, (char **)argv, err);
    if (rc == 0)
        rc = pi_replay_spec_parse(spec, &cfg, NOW, err);
    pi_config_fini(&cfg);
    return rc;
}

static void test_replay__times(void **state)
{
    (void)state;
    assert_int_equal(pi_replay_parse_time("-90s", NOW), NOW - 90000);
    assert_int_equal(pi_replay_parse_time("-15m", NOW), NOW - 900000);
    assert_int_equal(pi_replay_parse_time("-2h", NOW), NOW - 7200000);
    assert_int_equal(pi_replay_parse_time("-7d", NOW), NOW - 604800000);
    /* 2013-06-28T09:46:21+02:00 = 07:46:21Z = 1372405581 s */
    assert_int_equal(pi_replay_parse_time("2013-06-28T09:46:21+02:00", NOW),
                     1372405581000LL);
    assert_int_equal(pi_replay_parse_time("2013-06-28T07:46:21.250Z", NOW),
                     1372405581250LL);
    assert_int_equal(pi_replay_parse_time("-2w", NOW), -1);
    assert_int_equal(pi_replay_parse_time("-h", NOW), -1);
    assert_int_equal(pi_replay_parse_time("yesterday", NOW), -1);
    assert_int_equal(pi_replay_parse_time("-2h ", NOW), -1);
}

static void test_replay__default_is_the_whole_log(void **state)
{
    const char *argv[] = {"replay", NULL};
    pi_replay_spec spec;
    pi_err err;

    (void)state;
    assert_int_equal(parse(&spec, &err, argv), 0);
    assert_int_equal(spec.from.kind, PI_REPLAY_EDGE);
    assert_int_equal(spec.to.kind, PI_REPLAY_EDGE);
    assert_null(spec.partitions);
    pi_replay_spec_fini(&spec);
}

static void test_replay__offsets_and_partitions(void **state)
{
    const char *argv[] = {
        "replay", "--from-offsets", "0:100,2:300", "--to-offset",
        "400",    "--partitions",   "2,0",         NULL};
    pi_replay_spec spec;
    pi_err err;

    (void)state;
    assert_int_equal(parse(&spec, &err, argv), 0);
    assert_int_equal(spec.from.kind, PI_REPLAY_OFFSETS);
    assert_int_equal(spec.from.n_list, 2);
    assert_int_equal(spec.from.list[1].partition, 2);
    assert_int_equal(spec.from.list[1].offset, 300);
    assert_int_equal(spec.to.kind, PI_REPLAY_OFFSET);
    assert_int_equal(spec.to.offset, 400);
    assert_int_equal(spec.n_partitions, 2);
    assert_int_equal(spec.partitions[0], 2);
    pi_replay_spec_fini(&spec);
}

typedef struct bad {
    const char *argv[8];
    const char *msg;
} bad;

static const bad bads[] = {
    {{"replay", "--from", "-1h", "--from-offset", "5"},
     "--from, --from-offset and --from-offsets exclude each other: give one"},
    {{"replay", "--to-offset", "5", "--to-offsets", "0:6"},
     "--to, --to-offset and --to-offsets exclude each other: give one"},
    {{"replay", "--from-beginning", "--from", "-1h"},
     "--from-beginning excludes --from, --from-offset and --from-offsets"},
    {{"replay", "--from-offset", "20", "--to-offset", "10"},
     "--to-offset 10 is before --from-offset 20"},
    {{"replay", "--from", "2026-01-02T00:00:00Z", "--to",
      "2026-01-01T00:00:00Z"},
     "--to (2026-01-01T00:00:00Z) is before --from (2026-01-02T00:00:00Z)"},
    {{"replay", "--from-offsets", "1:50", "--to-offsets", "1:40"},
     "--to-offsets 1:40 is before its start offset 50"},
    {{"replay", "--from-offsets", "1:50", "--to-offset", "40"},
     "--to-offset 40 is before --from-offsets 1:50"},
    {{"replay", "--from", "yesterday"},
     "--from: 'yesterday' is not an RFC 3339 time or a relative one like -2h "
     "or -7d"},
    {{"replay", "--from-offset", "-5"}, "--from-offset: '-5' is not an offset"},
    {{"replay", "--from-offsets", "0:1,0:2"},
     "--from-offsets: partition 0 given twice"},
    {{"replay", "--to-offsets", "0-1"},
     "--to-offsets: expected PARTITION:OFFSET[,…], got '0-1'"},
    {{"replay", "--partitions", "0,x"},
     "--partitions: expected a list like 0,2,5, got 'x'"},
    {{"replay", "--dry-run=maybe"},
     "--dry-run must be true or false, got 'maybe'"},
};

static void test_replay__bad_ranges(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bads) / sizeof(*bads); i++) {
        pi_replay_spec spec;
        pi_err err;
        assert_int_equal(parse(&spec, &err, bads[i].argv), PI_EINVAL);
        assert_string_equal(err.msg, bads[i].msg);
        pi_replay_spec_fini(&spec);
    }
}

static void test_replay__flags(void **state)
{
    const char *argv[] = {"replay", "--dry-run", "--progress", "always", NULL};
    pi_config cfg;
    pi_err err;

    (void)state;
    pi_config_init(&cfg);
    assert_int_equal(cfg.dry_run, 0);
    assert_int_equal(
        pi_config_parse(&cfg, PI_CMD_REPLAY, 4, (char **)argv, &err), 0);
    assert_int_equal(cfg.dry_run, 1);
    assert_string_equal(cfg.progress, "always");
    pi_config_fini(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay__times),
        cmocka_unit_test(test_replay__default_is_the_whole_log),
        cmocka_unit_test(test_replay__offsets_and_partitions),
        cmocka_unit_test(test_replay__bad_ranges),
        cmocka_unit_test(test_replay__flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
