/* test_config.c -- the option table: flags, environment, files, errors */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "presence/config.h"

static const char *const env_names[] = {
    "PRESENCE_BROKERS",   "PRESENCE_TOPIC",      "PRESENCE_GROUP",
    "PRESENCE_PG",        "PRESENCE_BATCH_SIZE", "PRESENCE_CONFIG",
    "PRESENCE_LOG_LEVEL", "PRESENCE_ON_CONFLICT"};

static int clear_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(env_names) / sizeof(*env_names); i++)
        unsetenv(env_names[i]);
    return 0;
}

/* Parse a NULL-terminated argument list for `run`. */
static int parse(pi_config *cfg, pi_err *err, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;

    argv[argc++] = "run";
    va_start(ap, err);
    for (char *a; (a = va_arg(ap, char *)) != NULL;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    pi_config_init(cfg);
    pi_err_clear(err);
    return pi_config_parse(cfg, PI_CMD_RUN, argc, argv, err);
}

static char *write_bytes(const char *bytes, size_t len)
{
    static char path[64];
    int fd;

    snprintf(path, sizeof(path), "/tmp/pi_config_XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, bytes, len), (ssize_t)len);
    close(fd);
    return path;
}

static char *write_file(const char *text)
{
    static char path[64];
    int fd;

    snprintf(path, sizeof(path), "/tmp/pi_config_XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_config__defaults(void **state)
{
    pi_config cfg;
    pi_err err;

    (void)state;
    assert_int_equal(parse(&cfg, &err, NULL), 0);
    assert_null(cfg.brokers);
    assert_string_equal(cfg.group, "presence-ingest");
    assert_string_equal(cfg.on_conflict, "keep");
    assert_int_equal(cfg.batch_size, 5000);
    assert_int_equal(cfg.writers, 1);
    assert_int_equal(cfg.max_message_bytes, 1048576);
    assert_int_equal(cfg.n_kafka, 0);
    pi_config_fini(&cfg);
}

static void test_config__flags_both_forms(void **state)
{
    pi_config cfg;
    pi_err err;

    (void)state;
    assert_int_equal(parse(&cfg, &err, "--brokers", "b:9092", "--topic=t1,t2",
                           "--batch-size", "77", "--on-conflict=replace", NULL),
                     0);
    assert_string_equal(cfg.brokers, "b:9092");
    assert_string_equal(cfg.topic, "t1,t2");
    assert_int_equal(cfg.batch_size, 77);
    assert_string_equal(cfg.on_conflict, "replace");
    pi_config_fini(&cfg);
}

static void test_config__precedence(void **state)
{
    pi_config cfg;
    pi_err err;
    char *file = write_file("# comment\n"
                            "brokers = file:1\n"
                            "group = from-file\n"
                            "batch-size = 10\n"
                            "writers = 3\n"
                            "kafka.fetch.wait.max.ms = 5\n");

    (void)state;
    setenv("PRESENCE_GROUP", "from-env", 1);
    setenv("PRESENCE_BATCH_SIZE", "20", 1);
    assert_int_equal(
        parse(&cfg, &err, "--config", file, "--batch-size", "30", NULL), 0);
    assert_string_equal(cfg.brokers, "file:1"); /* file only */
    assert_string_equal(cfg.group, "from-env"); /* env over file */
    assert_int_equal(cfg.batch_size, 30);       /* flag over env */
    assert_int_equal(cfg.writers, 3);           /* file only */
    assert_int_equal(cfg.n_kafka, 1);
    assert_string_equal(cfg.kafka_keys[0], "fetch.wait.max.ms");
    assert_string_equal(cfg.kafka_values[0], "5");
    pi_config_fini(&cfg);
    unlink(file);
}

static void test_config__kafka_passthrough(void **state)
{
    pi_config cfg;
    pi_err err;

    (void)state;
    assert_int_equal(
        parse(&cfg, &err, "-X", "a.b=1", "-Xc=2=3", "-X", "a.b=4", NULL), 0);
    assert_int_equal(cfg.n_kafka, 2);
    assert_string_equal(cfg.kafka_keys[0], "a.b");
    assert_string_equal(cfg.kafka_values[0], "4"); /* later wins */
    assert_string_equal(cfg.kafka_keys[1], "c");
    assert_string_equal(cfg.kafka_values[1], "2=3");
    pi_config_fini(&cfg);
}

/* Every bad input gets PI_EINVAL and one line naming the problem. */
static void expect_error(const char *want, ...)
{
    char *argv[16];
    int argc = 0;
    pi_config cfg;
    pi_err err;
    va_list ap;

    argv[argc++] = "run";
    va_start(ap, want);
    for (char *a; (a = va_arg(ap, char *)) != NULL;)
        argv[argc++] = a;
    va_end(ap);
    pi_config_init(&cfg);
    assert_int_equal(pi_config_parse(&cfg, PI_CMD_RUN, argc, argv, &err),
                     PI_EINVAL);
    if (strstr(err.msg, want) == NULL)
        fail_msg("error '%s' does not contain '%s'", err.msg, want);
    assert_null(strchr(err.msg, '\n'));
    pi_config_fini(&cfg);
}

static void test_config__bad_values(void **state)
{
    (void)state;
    expect_error("--batch-size must be an integer, got 'ten'", "--batch-size",
                 "ten", NULL);
    expect_error("--batch-size must be between 1 and 1000000, got 0",
                 "--batch-size", "0", NULL);
    expect_error("--batch-size must be an integer, got '5x'", "--batch-size=5x",
                 NULL);
    expect_error("--writers must be between 1 and 32, got 0", "--writers", "0",
                 NULL);
    expect_error("--writers must be between 1 and 32, got 33", "--writers",
                 "33", NULL);
    expect_error("--on-conflict must be one of keep|replace, got 'drop'",
                 "--on-conflict", "drop", NULL);
    expect_error("unknown option '--nope'", "--nope", "1", NULL);
    expect_error("unknown option '-q'", "-q", NULL);
    expect_error("--brokers needs a value", "--brokers", NULL);
    expect_error("-X expects key=value", "-X", "novalue", NULL);
    expect_error("--topic must not be empty", "--topic", "", NULL);
    expect_error("backoff-min-ms (500) exceeds backoff-max-ms (100)",
                 "--backoff-min-ms", "500", "--backoff-max-ms", "100", NULL);
    /* An option of another subcommand is unknown here. */
    expect_error("unknown option '--nonexistent'", "--nonexistent=1", NULL);
}

static void test_config__bad_env_and_file(void **state)
{
    char *file;

    (void)state;
    setenv("PRESENCE_BATCH_SIZE", "-3", 1);
    expect_error("PRESENCE_BATCH_SIZE must be between 1 and 1000000, got -3",
                 NULL);
    unsetenv("PRESENCE_BATCH_SIZE");

    file = write_file("brokers = x\nlinger-ms = forever\n");
    expect_error(":2: linger-ms must be an integer, got 'forever'", "--config",
                 file, NULL);
    unlink(file);
    file = write_file("no equals sign here\n");
    expect_error(":1: expected key=value", "--config", file, NULL);
    unlink(file);
    file = write_file("colour = blue\n");
    expect_error(":1: unknown option 'colour'", "--config", file, NULL);
    unlink(file);
    /* A NUL byte would cut the line short: refused, with or without a
     * newline after it (fuzz_config's invariant). */
    static const char nul[] = "brokers = x\nbatch-size = 5\0x\n";
    static const char nul_last[] = "batch-size = 5\0x";
    file = write_bytes(nul, sizeof(nul) - 1);
    expect_error(":2: NUL byte at column 15", "--config", file, NULL);
    unlink(file);
    file = write_bytes(nul_last, sizeof(nul_last) - 1);
    expect_error(":1: NUL byte at column 15", "--config", file, NULL);
    unlink(file);
    /* 4 095 bytes and a newline are a line; 4 096 are too long. */
    char long_line[4200];
    memset(long_line, ' ', sizeof(long_line));
    memcpy(long_line, "linger-ms=7", 11);
    long_line[4095] = '\n';
    file = write_bytes(long_line, 4096);
    pi_config cfg;
    pi_err err;
    assert_int_equal(parse(&cfg, &err, "--config", file, NULL), 0);
    assert_int_equal(cfg.linger_ms, 7);
    pi_config_fini(&cfg);
    unlink(file);
    long_line[4095] = ' ';
    long_line[4096] = '\n';
    file = write_bytes(long_line, 4097);
    expect_error(":1: line too long (max 4095 bytes)", "--config", file, NULL);
    unlink(file);
    expect_error("--config /nonexistent/file: No such file or directory",
                 "--config", "/nonexistent/file", NULL);
}

static void test_config__positional_args(void **state)
{
    pi_config cfg;
    pi_err err;
    char *argv[] = {"load", "--batch-size", "3", "file.txt", "-", NULL};

    (void)state;
    pi_config_init(&cfg);
    assert_int_equal(pi_config_parse(&cfg, PI_CMD_LOAD, 5, argv, &err), 0);
    assert_int_equal(cfg.n_args, 2);
    assert_string_equal(cfg.args[0], "file.txt");
    assert_string_equal(cfg.args[1], "-");
    pi_config_fini(&cfg);
}

/* Issue 25: a replay serves HTTP only when its command line asks, so that it
 * runs beside `run` on one host: the file and environment they share (which
 * name run's port) and the default leave it off; run keeps its default. */
static void test_config__replay_http_only_when_asked(void **state)
{
    pi_config cfg;
    pi_err err;
    char *path = write_file("http-listen = 127.0.0.1:9999\n");
    char *file[] = {"replay", "--config", path, NULL};
    char *flag[] = {"replay",        "--config",    path,
                    "--http-listen", "127.0.0.1:0", NULL};
    char buf[16384];
    FILE *f;

    (void)state;
    setenv("PRESENCE_HTTP_LISTEN", "127.0.0.1:9998", 1);
    pi_config_init(&cfg);
    assert_int_equal(pi_config_parse(&cfg, PI_CMD_REPLAY, 3, file, &err), 0);
    assert_null(cfg.http_listen);
    pi_config_fini(&cfg);
    pi_config_init(&cfg);
    assert_int_equal(pi_config_parse(&cfg, PI_CMD_REPLAY, 5, flag, &err), 0);
    assert_string_equal(cfg.http_listen, "127.0.0.1:0");
    pi_config_fini(&cfg);
    /* run: environment over file over default, as every option. */
    file[0] = "run";
    pi_config_init(&cfg);
    assert_int_equal(pi_config_parse(&cfg, PI_CMD_RUN, 3, file, &err), 0);
    assert_string_equal(cfg.http_listen, "127.0.0.1:9998");
    pi_config_fini(&cfg);
    unsetenv("PRESENCE_HTTP_LISTEN");
    assert_int_equal(parse(&cfg, &err, NULL), 0);
    assert_string_equal(cfg.http_listen, "127.0.0.1:9464");
    pi_config_fini(&cfg);
    unlink(path);

    f = fmemopen(buf, sizeof(buf), "w");
    pi_config_print_help(f, PI_CMD_REPLAY, "replay");
    fclose(f);
    assert_non_null(strstr(buf, "(default: off; only this flag"));
    assert_null(strstr(buf, "127.0.0.1:9464"));
}

static void test_config__help_and_sample_from_table(void **state)
{
    char buf[16384];
    FILE *f = fmemopen(buf, sizeof(buf), "w");

    (void)state;
    pi_config_print_help(f, PI_CMD_LOAD, "load [FILE|-]");
    fclose(f);
    assert_non_null(strstr(buf, "--batch-size N"));
    assert_non_null(strstr(buf, "[env PRESENCE_PG]"));
    assert_null(strstr(buf, "--brokers")); /* not a load option */
    assert_null(strstr(buf, "-X KEY"));

    f = fmemopen(buf, sizeof(buf), "w");
    pi_config_print_sample(f);
    fclose(f);
    assert_non_null(strstr(buf, "#batch-size = 5000\n"));
    assert_non_null(strstr(buf, "#on-conflict = keep\n"));
    assert_non_null(strstr(buf, "#brokers =\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_config__defaults, clear_env),
        cmocka_unit_test_setup(test_config__flags_both_forms, clear_env),
        cmocka_unit_test_setup(test_config__precedence, clear_env),
        cmocka_unit_test_setup(test_config__kafka_passthrough, clear_env),
        cmocka_unit_test_setup(test_config__bad_values, clear_env),
        cmocka_unit_test_setup(test_config__bad_env_and_file, clear_env),
        cmocka_unit_test_setup(test_config__positional_args, clear_env),
        cmocka_unit_test_setup(test_config__help_and_sample_from_table,
                               clear_env),
        cmocka_unit_test_setup(test_config__replay_http_only_when_asked,
                               clear_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
