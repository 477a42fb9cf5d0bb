/* fuzz_config.c -- libFuzzer target: the --config file parser
 *
 * Input: byte 0 picks the subcommand; the rest is the file's text, given
 * to pi_config_parse as `--config FILE` (a memfd, through /proc/self/fd).
 * Whatever the text, the parser either accepts it with every option within
 * its documented range or refuses it with one line (PI_EINVAL); a NUL byte
 * anywhere is refused; nothing leaks (pi_config_fini after each).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "presence/config.h"
#include "presence/err.h"

extern char **environ;

static int fd = -1;
static char path[64];

static void fail(const char *what, const char *msg)
{
    fprintf(stderr, "fuzz_config: invariant broken: %s (%s)\n", what,
            msg ? msg : "");
    abort();
}

static void in_range(int64_t v, int64_t min, int64_t max, const char *name)
{
    if (v < min || v > max)
        fail("option out of range", name);
}

static void one_of(const char *v, const char *const *choices, const char *name)
{
    for (; *choices; choices++) {
        if (strcmp(v, *choices) == 0)
            return;
    }
    fail("enum option not one of its choices", name);
}

/* Only the file counts: no PRESENCE_* variable may set an option. */
static void clear_presence_env(void)
{
    for (;;) {
        char **e = environ;
        while (*e && strncmp(*e, "PRESENCE_", 9) != 0)
            e++;
        if (*e == NULL)
            return;
        char name[256];
        size_t n = strcspn(*e, "=");
        snprintf(name, sizeof(name), "%.*s", (int)n, *e);
        unsetenv(name);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned cmds[] = {PI_CMD_RUN, PI_CMD_LOAD, PI_CMD_REPLAY,
                                    PI_CMD_REPORT, PI_CMD_MIGRATE};
    static const char *const names[] = {"run", "load", "replay", "report",
                                        "migrate"};
    static const char *const conflict[] = {"keep", "replace", NULL};
    static const char *const levels[] = {"debug", "info", "warn", "error",
                                         NULL};
    static const char *const formats[] = {"logfmt", "json", NULL};

    if (size < 1)
        return 0;
    if (fd < 0) {
        clear_presence_env();
        fd = memfd_create("fuzz_config", 0);
        if (fd < 0)
            fail("memfd_create", NULL);
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 ||
        pwrite(fd, data + 1, size - 1, 0) != (ssize_t)(size - 1))
        fail("writing the file", NULL);

    size_t c = data[0] % 5;
    char *argv[] = {(char *)names[c], "--config", path, NULL};
    pi_config cfg;
    pi_err err;
    pi_err_clear(&err);
    pi_config_init(&cfg);
    int rc = pi_config_parse(&cfg, cmds[c], 3, argv, &err);
    /* A NUL byte would cut its line short: never accepted. */
    if (rc == 0 && size > 1 && memchr(data + 1, '\0', size - 1))
        fail("a file with a NUL byte accepted", NULL);
    if (rc == PI_EINVAL) {
        if (err.msg[0] == '\0' || strchr(err.msg, '\n'))
            fail("error message not one line", err.msg);
        if (strlen(err.msg) >= PI_ERR_MSG_MAX)
            fail("error message overflows", err.msg);
    } else if (rc != 0) {
        fail("unexpected return code", err.msg);
    } else {
        in_range(cfg.batch_size, 1, 1000000, "batch-size");
        in_range(cfg.batch_bytes, 1024, 1073741824, "batch-bytes");
        in_range(cfg.linger_ms, 0, 60000, "linger-ms");
        in_range(cfg.max_message_bytes, 16, 104857600, "max-message-bytes");
        in_range(cfg.max_array_elements, 1, 10000000, "max-array-elements");
        in_range(cfg.max_json_depth, 1, 1000, "max-json-depth");
        in_range(cfg.max_decode_memory, 0, 1099511627776, "max-decode-memory");
        in_range(cfg.backoff_min_ms, 1, cfg.backoff_max_ms, "backoff-min-ms");
        in_range(cfg.backoff_max_ms, 1, 3600000, "backoff-max-ms");
        in_range(cfg.dry_run, 0, 1, "dry-run");
        one_of(cfg.on_conflict, conflict, "on-conflict");
        one_of(cfg.log_level, levels, "log-level");
        one_of(cfg.log_format, formats, "log-format");
        for (size_t i = 0; i < cfg.n_kafka; i++) {
            if (cfg.kafka_keys[i] == NULL || cfg.kafka_values[i] == NULL)
                fail("kafka property without key or value", NULL);
        }
        if (cfg.brokers && cfg.brokers[0] == '\0')
            fail("empty string option", "brokers");
    }
    pi_config_fini(&cfg);
    return 0;
}
