/* config.c -- the option table and its parser, --help and sample generators */
#include "presence/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "presence/mem.h"

#include "config_int.h"

#define F(x) offsetof(pi_config, x)
#define KAFKA (PI_CMD_RUN | PI_CMD_REPLAY)
#define WRITE (PI_CMD_RUN | PI_CMD_REPLAY | PI_CMD_LOAD)
#define REPLAY PI_CMD_REPLAY

static const pi_opt options[] = {
    {"brokers", "PRESENCE_BROKERS", OPT_STR, F(brokers), NULL, 0, 0, NULL,
     KAFKA, "Kafka bootstrap servers, host:port[,host:port…] (required)"},
    {"topic", "PRESENCE_TOPIC", OPT_STR, F(topic), NULL, 0, 0, NULL, KAFKA,
     "topic(s) to consume: a comma-separated list, or one ^regex (required)"},
    {"group", "PRESENCE_GROUP", OPT_STR, F(group), "presence-ingest", 0, 0,
     NULL, PI_CMD_RUN,
     "consumer group; also the key of its rows in ingest_offsets"},
    {"pg", "PRESENCE_PG", OPT_STR, F(pg), NULL, 0, 0, NULL, PI_CMD_ALL,
     "libpq conninfo or postgresql:// URI (default: libpq's PG* "
     "environment)"},
    {"on-conflict", "PRESENCE_ON_CONFLICT", OPT_ENUM, F(on_conflict), "keep", 0,
     0, "keep|replace", WRITE,
     "same id, different content: keep the stored row (and record an "
     "id_conflict reject) or replace it"},
    {"batch-size", "PRESENCE_BATCH_SIZE", OPT_INT, F(batch_size), "5000", 1,
     1000000, NULL, WRITE, "messages per database transaction, at most"},
    {"batch-bytes", "PRESENCE_BATCH_BYTES", OPT_INT, F(batch_bytes), "8388608",
     1024, 1073741824, NULL, WRITE,
     "message bytes per database transaction, at most"},
    {"writers", "PRESENCE_WRITERS", OPT_INT, F(writers), "1", 1, PI_MAX_WRITERS,
     NULL, PI_CMD_RUN | PI_CMD_LOAD,
     "writer threads, each with its own PostgreSQL connection; run: Kafka "
     "partition P is always written by writer P mod N, in order"},
    {"linger-ms", "PRESENCE_LINGER_MS", OPT_INT, F(linger_ms), "200", 0, 60000,
     NULL, PI_CMD_RUN | PI_CMD_REPLAY,
     "write a partial batch once its oldest message is this old"},
    {"max-message-bytes", "PRESENCE_MAX_MESSAGE_BYTES", OPT_INT,
     F(max_message_bytes), "1048576", 16, 104857600, NULL, WRITE,
     "larger message values are rejected as too_large"},
    {"max-array-elements", "PRESENCE_MAX_ARRAY_ELEMENTS", OPT_INT,
     F(max_array_elements), "10000", 1, 10000000, NULL, WRITE,
     "a message that is an array of more elements is rejected as "
     "too_large"},
    {"max-json-depth", "PRESENCE_MAX_JSON_DEPTH", OPT_INT, F(max_json_depth),
     "32", 1, 1000, NULL, WRITE,
     "a message nested deeper is rejected as too_large (the top-level value "
     "is at depth 1: a presence needs 2, an array of envelopes 4)"},
    {"max-decode-memory", "PRESENCE_MAX_DECODE_MEMORY", OPT_INT,
     F(max_decode_memory), "0", 0, 1099511627776, NULL, WRITE,
     "a message whose JSON tree could take more bytes of memory is rejected "
     "as too_large before it is parsed (0: 32 x max-message-bytes)"},
    {"backoff-min-ms", "PRESENCE_BACKOFF_MIN_MS", OPT_INT, F(backoff_min_ms),
     "100", 1, 600000, NULL, WRITE,
     "first delay before retrying a failed database write"},
    {"backoff-max-ms", "PRESENCE_BACKOFF_MAX_MS", OPT_INT, F(backoff_max_ms),
     "10000", 1, 3600000, NULL, WRITE,
     "longest delay between database retries (they go on forever)"},
    {"pg-tx-timeout-ms", "PRESENCE_PG_TX_TIMEOUT_MS", OPT_INT,
     F(pg_tx_timeout_ms), "60000", 1000, 86400000, NULL, WRITE,
     "PostgreSQL ends a writer statement running, or a writer transaction "
     "left idle, this long (statement_timeout and "
     "idle_in_transaction_session_timeout): a frozen instance then releases "
     "its locks"},
    {"shutdown-timeout-ms", "PRESENCE_SHUTDOWN_TIMEOUT_MS", OPT_INT,
     F(shutdown_timeout_ms), "30000", 0, 3600000, NULL,
     PI_CMD_RUN | PI_CMD_REPLAY,
     "on SIGTERM, time allowed to flush and leave the group"},
    {"stats-interval-ms", "PRESENCE_STATS_INTERVAL_MS", OPT_INT,
     F(stats_interval_ms), "60000", 0, 86400000, NULL,
     PI_CMD_RUN | PI_CMD_REPLAY, "log a progress line this often (0: never)"},
    {"rollup-interval-ms", "PRESENCE_ROLLUP_INTERVAL_MS", OPT_INT,
     F(rollup_interval_ms), "1000", 0, 86400000, NULL,
     PI_CMD_RUN | PI_CMD_REPLAY,
     "catch the reports' rollup (asset_state) up this often, on its own "
     "connection (0: never; `report status` then catches up itself)"},
    {"http-listen", "PRESENCE_HTTP_LISTEN", OPT_STR, F(http_listen),
     "127.0.0.1:9464", 0, 0, NULL, PI_CMD_RUN | PI_CMD_REPLAY,
     "ADDR:PORT serving /metrics, /healthz and /readyz, or off"},
    {"sasl-password-file", "PRESENCE_SASL_PASSWORD_FILE", OPT_STR,
     F(sasl_password_file), NULL, 0, 0, NULL, KAFKA,
     "file whose first line is the SASL password (librdkafka's "
     "sasl.password), kept off the command line; or put the password in "
     "PRESENCE_KAFKA_SASL_PASSWORD"},
    {"health-stall-ms", "PRESENCE_HEALTH_STALL_MS", OPT_INT, F(health_stall_ms),
     "10000", 100, 3600000, NULL, PI_CMD_RUN | PI_CMD_REPLAY,
     "/healthz fails when the poll loop has not ticked for this long; "
     "/readyz when the database or the writer has not answered for it"},
    {"from-beginning", NULL, OPT_FLAG, F(from_beginning), "0", 0, 1, NULL,
     REPLAY, "start at each partition's log start (the default)"},
    {"from", NULL, OPT_STR, F(replay_from), NULL, 0, 0, NULL, REPLAY,
     "start at the first message whose Kafka timestamp is at or after "
     "TIME (RFC 3339, or relative: -90s, -15m, -2h, -7d)"},
    {"from-offset", NULL, OPT_STR, F(from_offset), NULL, 0, 0, NULL, REPLAY,
     "start at this offset in every partition"},
    {"from-offsets", NULL, OPT_STR, F(from_offsets), NULL, 0, 0, NULL, REPLAY,
     "start offsets per partition, P:N[,P:N…] (others: the log start)"},
    {"to", NULL, OPT_STR, F(replay_to), NULL, 0, 0, NULL, REPLAY,
     "end (exclusive) at the first message whose Kafka timestamp is at or "
     "after TIME (default: each partition's high watermark at start)"},
    {"to-offset", NULL, OPT_STR, F(to_offset), NULL, 0, 0, NULL, REPLAY,
     "end (exclusive) at this offset in every partition"},
    {"to-offsets", NULL, OPT_STR, F(to_offsets), NULL, 0, 0, NULL, REPLAY,
     "end offsets per partition, P:N[,P:N…] (others: the high watermark)"},
    {"partitions", NULL, OPT_STR, F(partitions), NULL, 0, 0, NULL, REPLAY,
     "only these partitions, P[,P…] (default: all)"},
    {"dry-run", NULL, OPT_FLAG, F(dry_run), "0", 0, 1, NULL,
     REPLAY | PI_CMD_RETENTION,
     "replay: decode and count, write nothing (no database needed); "
     "retention: list what would be created and dropped, change nothing"},
    {"keep", NULL, OPT_STR, F(retention_keep), NULL, 0, 0, NULL,
     PI_CMD_RETENTION,
     "retention: keep this much, 400d, 12h (partitions whose ids and rows' "
     "times are all older go; required)"},
    {"move-legacy", NULL, OPT_FLAG, F(move_legacy), "0", 0, 1, NULL,
     PI_CMD_MIGRATE,
     "migrate: then move presences_legacy's rows into their periods' "
     "partitions, online (docs/history.md)"},
    {"move-batch", "PRESENCE_MOVE_BATCH", OPT_INT, F(move_batch), "20000", 1,
     10000000, NULL, PI_CMD_MIGRATE,
     "migrate --move-legacy: rows copied per transaction"},
    {"partition-check-ms", "PRESENCE_PARTITION_CHECK_MS", OPT_INT,
     F(partition_check_ms), "3600000", 0, 86400000, NULL,
     PI_CMD_RUN | PI_CMD_REPLAY,
     "create presences' partitions ahead this often, on a connection of "
     "its own (0: never; migrate and retention also do)"},
    {"progress", "PRESENCE_PROGRESS", OPT_ENUM, F(progress), "auto", 0, 0,
     "auto|always|never", REPLAY,
     "a self-updating progress line on stderr: auto is on a terminal only "
     "(otherwise a progress log line every stats-interval-ms)"},
    {"asset", NULL, OPT_STR, F(report_asset), NULL, 0, 0, NULL,
     PI_CMD_REPORT | PI_CMD_WATCH, "report, watch: only this asset"},
    {"since", NULL, OPT_STR, F(report_since), NULL, 0, 0, NULL, PI_CMD_REPORT,
     "report: from this time, RFC 3339 or relative (-7d, -2h; default: "
     "until - 7d)"},
    {"until", NULL, OPT_STR, F(report_until), NULL, 0, 0, NULL, PI_CMD_REPORT,
     "report: up to this time, excluded (default: now)"},
    {"tz", "PRESENCE_TZ", OPT_STR, F(report_tz), "UTC", 0, 0, NULL,
     PI_CMD_REPORT | PI_CMD_WATCH,
     "report, watch: IANA time zone of printed times and days"},
    {"window", NULL, OPT_STR, F(report_window), NULL, 0, 0, NULL, PI_CMD_REPORT,
     "report flapping: window, 90s, 15m, 1h, 7d (default: 1h)"},
    {"threshold", NULL, OPT_INT, F(report_threshold), NULL, 1, 1000000, NULL,
     PI_CMD_REPORT,
     "report flapping: list assets with this many disconnects in a window "
     "(default: 5)"},
    {"debounce", NULL, OPT_STR, F(report_debounce), NULL, 0, 0, NULL,
     PI_CMD_REPORT,
     "report outages, availability: an outage shorter than this is none "
     "(0, 30s, 5m; default: 0)"},
    {"period", NULL, OPT_ENUM, F(report_period), NULL, 0, 0, "day|week|month",
     PI_CMD_REPORT,
     "report availability: one row per local day, ISO week or month "
     "(default: the whole of --since … --until)"},
    {"fleet", NULL, OPT_FLAG, F(report_fleet), "0", 0, 1, NULL, PI_CMD_REPORT,
     "report availability: the fleet's summary per period"},
    {"target", NULL, OPT_STR, F(report_target), NULL, 0, 0, NULL, PI_CMD_REPORT,
     "report availability --fleet: count the assets below this ratio "
     "(0 … 1; default: 0.99)"},
    {"step", NULL, OPT_STR, F(report_step), NULL, 0, 0, NULL, PI_CMD_REPORT,
     "report fleet: one row this often (default: 1h)"},
    {"state", NULL, OPT_ENUM, F(state), NULL, 0, 0, "online|offline|declared",
     PI_CMD_REPORT | PI_CMD_WATCH,
     "report status: only the assets in this state; watch: only the "
     "changes to it"},
    {"offline-for", NULL, OPT_STR, F(offline_for), NULL, 0, 0, NULL,
     PI_CMD_REPORT | PI_CMD_WATCH,
     "report status: only the assets offline since at least this long "
     "before --until (default: now); watch: print a change to offline only "
     "once the asset has been offline this long, 90s, 15m, 1h (a reconnect "
     "before cancels both)"},
    {"format", NULL, OPT_ENUM, F(report_format), NULL, 0, 0, "table|csv|json",
     PI_CMD_REPORT | PI_CMD_WATCH,
     "report, watch: output format (default: table on a terminal, "
     "else csv; watch's json is one object per line)"},
    {"after", NULL, OPT_STR, F(watch_after), NULL, 0, 0, NULL, PI_CMD_WATCH,
     "watch: print the changes after this sequence number, 0 for all that "
     "are kept (default: from now on)"},
    {"log-level", "PRESENCE_LOG_LEVEL", OPT_ENUM, F(log_level), "info", 0, 0,
     "debug|info|warn|error", PI_CMD_ALL, "log threshold"},
    {"log-format", "PRESENCE_LOG_FORMAT", OPT_ENUM, F(log_format), "logfmt", 0,
     0, "logfmt|json", PI_CMD_ALL, "log line format on stderr"},
};

#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

const pi_opt *pi_config__options(size_t *n)
{
    *n = N_OPTIONS;
    return options;
}

/* Options that, for some commands, only a flag sets: no default, no
 * environment, no file line. A one-shot command's port: the file or the
 * environment it shares with `run` would make it collide with the service
 * it runs beside. */
static const struct {
    const char *name;
    unsigned cmds; /* PI_CMD_* bits */
} flag_only_opts[] = {{"http-listen", PI_CMD_REPLAY}};

static int flag_only(const pi_opt *o, unsigned cmd)
{
    for (size_t i = 0; i < sizeof(flag_only_opts) / sizeof(flag_only_opts[0]);
         i++) {
        if ((flag_only_opts[i].cmds & cmd) &&
            strcmp(flag_only_opts[i].name, o->name) == 0)
            return 1;
    }
    return 0;
}

/* Where a value came from: a later source only fills what an earlier one
 * (higher precedence) left unset. */
typedef enum { SRC_DEFAULT = 0, SRC_FILE, SRC_ENV, SRC_FLAG } src;

static char **str_field(pi_config *cfg, const pi_opt *o)
{
    return (char **)((char *)cfg + o->field);
}

static int64_t *int_field(pi_config *cfg, const pi_opt *o)
{
    return (int64_t *)((char *)cfg + o->field);
}

static int enum_ok(const char *choices, const char *v)
{
    size_t n = strlen(v);
    const char *p = choices;

    while (*p) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, v, n) == 0)
            return 1;
        if (bar == NULL)
            break;
        p = bar + 1;
    }
    return 0;
}

static int set_value(pi_config *cfg, const pi_opt *o, const char *v,
                     const char *where, pi_err *err)
{
    if (o->type == OPT_FLAG) {
        int on = strcmp(v, "true") == 0 || strcmp(v, "1") == 0 ||
                 strcmp(v, "yes") == 0;
        if (!on && strcmp(v, "false") != 0 && strcmp(v, "0") != 0 &&
            strcmp(v, "no") != 0)
            return pi_err_set(err, PI_EINVAL,
                              "%s must be true or false, got '%s'", where, v);
        *int_field(cfg, o) = on;
        return 0;
    }
    if (o->type == OPT_INT) {
        char *end;
        long long n;

        errno = 0;
        n = strtoll(v, &end, 10);
        if (*v == '\0' || *end != '\0' || errno == ERANGE || isspace(*v))
            return pi_err_set(err, PI_EINVAL, "%s must be an integer, got '%s'",
                              where, v);
        if (n < o->min || n > o->max)
            return pi_err_set(err, PI_EINVAL,
                              "%s must be between %lld and %lld, got %lld",
                              where, (long long)o->min, (long long)o->max, n);
        *int_field(cfg, o) = n;
        return 0;
    }
    if (o->type == OPT_ENUM && !enum_ok(o->choices, v))
        return pi_err_set(err, PI_EINVAL, "%s must be one of %s, got '%s'",
                          where, o->choices, v);
    if (o->type == OPT_STR && *v == '\0')
        return pi_err_set(err, PI_EINVAL, "%s must not be empty", where);
    free(*str_field(cfg, o));
    *str_field(cfg, o) = pi_strdup(v);
    return 0;
}

static const pi_opt *find_opt(const char *name, size_t len)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        if (strlen(options[i].name) == len &&
            strncmp(options[i].name, name, len) == 0)
            return &options[i];
    }
    return NULL;
}

static void add_kafka(pi_config *cfg, const char *key, size_t key_len,
                      const char *value)
{
    /* A later setting of the same key wins, as with rd_kafka_conf_set. */
    for (size_t i = 0; i < cfg->n_kafka; i++) {
        if (strlen(cfg->kafka_keys[i]) == key_len &&
            strncmp(cfg->kafka_keys[i], key, key_len) == 0) {
            free(cfg->kafka_values[i]);
            cfg->kafka_values[i] = pi_strdup(value);
            return;
        }
    }
    cfg->kafka_keys =
        pi_realloc(cfg->kafka_keys, (cfg->n_kafka + 1) * sizeof(char *));
    cfg->kafka_values =
        pi_realloc(cfg->kafka_values, (cfg->n_kafka + 1) * sizeof(char *));
    cfg->kafka_keys[cfg->n_kafka] = pi_strndup(key, key_len);
    cfg->kafka_values[cfg->n_kafka] = pi_strdup(value);
    cfg->n_kafka++;
}

static int parse_kafka_pair(pi_config *cfg, const char *kv, const char *where,
                            pi_err *err)
{
    const char *eq = strchr(kv, '=');

    if (eq == NULL || eq == kv)
        return pi_err_set(err, PI_EINVAL,
                          "%s: -X expects key=value (a librdkafka property), "
                          "got '%s'",
                          where, kv);
    add_kafka(cfg, kv, (size_t)(eq - kv), eq + 1);
    return 0;
}

void pi_config_init(pi_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const pi_opt *o = &options[i];
        if (o->def == NULL)
            continue;
        if (o->type == OPT_INT || o->type == OPT_FLAG)
            *int_field(cfg, o) = strtoll(o->def, NULL, 10);
        else
            *str_field(cfg, o) = pi_strdup(o->def);
    }
}

void pi_config_fini(pi_config *cfg)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        if (options[i].type != OPT_INT && options[i].type != OPT_FLAG)
            free(*str_field(cfg, &options[i]));
    }
    free(cfg->config_file);
    for (size_t i = 0; i < cfg->n_kafka; i++) {
        free(cfg->kafka_keys[i]);
        free(cfg->kafka_values[i]);
    }
    free(cfg->kafka_keys);
    free(cfg->kafka_values);
    free(cfg->args);
    memset(cfg, 0, sizeof(*cfg));
}

static char *trim(char *s)
{
    char *end;

    while (isspace((unsigned char)*s))
        s++;
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

/* One line of f, without its "\n", NUL-terminated in line[cap]: its length,
 * or -1 at the end of the file, -2 when longer than cap - 1 bytes. A NUL
 * byte in it is the caller's to find (it would cut the line short). */
static long next_line(FILE *f, char *line, size_t cap)
{
    size_t n = 0;
    int c;

    while ((c = getc(f)) != EOF && c != '\n') {
        if (n + 1 >= cap)
            return -2;
        line[n++] = (char)c;
    }
    if (c == EOF && n == 0)
        return -1;
    line[n] = '\0';
    return (long)n;
}

/* Read key=value lines; '#' starts a comment line. `kafka.X=v` is a
 * librdkafka property. Options already set from flags or environment
 * (seen[i] != SRC_DEFAULT) keep their value. */
static int read_file(pi_config *cfg, unsigned cmd, const char *path, src *seen,
                     pi_err *err)
{
    FILE *f = fopen(path, "r");
    char line[4096], where[8300];
    int lineno = 0, rc = 0;
    long len;

    if (f == NULL)
        return pi_err_set(err, PI_EINVAL, "--config %s: %s", path,
                          strerror(errno));
    while ((len = next_line(f, line, sizeof(line))) != -1) {
        char *s, *eq, *key, *value;
        const pi_opt *o;

        lineno++;
        snprintf(where, sizeof(where), "%s:%d", path, lineno);
        if (len == -2) {
            rc = pi_err_set(err, PI_EINVAL, "%s: line too long (max %zu bytes)",
                            where, sizeof(line) - 1);
            break;
        }
        if (memchr(line, '\0', (size_t)len)) {
            rc = pi_err_set(err, PI_EINVAL, "%s: NUL byte at column %zu", where,
                            strlen(line) + 1);
            break;
        }
        s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        eq = strchr(s, '=');
        if (eq == NULL) {
            rc = pi_err_set(err, PI_EINVAL, "%s: expected key=value, got '%s'",
                            where, s);
            break;
        }
        *eq = '\0';
        key = trim(s);
        value = trim(eq + 1);
        if (strncmp(key, "kafka.", 6) == 0) {
            if (cmd & (PI_CMD_RUN | PI_CMD_REPLAY))
                add_kafka(cfg, key + 6, strlen(key + 6), value);
            continue;
        }
        o = find_opt(key, strlen(key));
        if (o == NULL) {
            rc = pi_err_set(err, PI_EINVAL, "%s: unknown option '%s'", where,
                            key);
            break;
        }
        /* A shared file may hold options of other subcommands. */
        if (!(o->cmds & cmd) || flag_only(o, cmd) ||
            seen[o - options] != SRC_DEFAULT)
            continue;
        snprintf(where, sizeof(where), "%s:%d: %s", path, lineno, o->name);
        rc = set_value(cfg, o, value, where, err);
        if (rc != 0)
            break;
        seen[o - options] = SRC_FILE;
    }
    if (rc == 0 && ferror(f))
        rc = pi_err_set(err, PI_EINVAL, "--config %s: %s", path,
                        strerror(errno));
    fclose(f);
    return rc;
}

int pi_config_parse(pi_config *cfg, unsigned cmd, int argc, char **argv,
                    pi_err *err)
{
    src seen[N_OPTIONS] = {0};
    const char *file = NULL;
    int rc;

    cfg->args = pi_calloc((size_t)argc + 1, sizeof(char *));
    for (size_t i = 0; i < N_OPTIONS; i++) {
        if (flag_only(&options[i], cmd)) {
            free(*str_field(cfg, &options[i]));
            *str_field(cfg, &options[i]) = NULL;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *value = NULL, *name;
        size_t name_len;
        const pi_opt *o;

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            pi_config_print_help(stdout, cmd, argv[0]);
            return PI_CONFIG_HELP;
        }
        if (strcmp(a, "--") == 0) {
            while (++i < argc)
                cfg->args[cfg->n_args++] = argv[i];
            break;
        }
        if (strcmp(a, "-X") == 0 || strncmp(a, "-X", 2) == 0) {
            const char *kv = a[2] ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);
            if (!(cmd & (PI_CMD_RUN | PI_CMD_REPLAY)))
                return pi_err_set(err, PI_EINVAL,
                                  "-X: '%s' does not talk to Kafka", argv[0]);
            if (kv == NULL)
                return pi_err_set(err, PI_EINVAL, "-X needs key=value");
            rc = parse_kafka_pair(cfg, kv, "-X", err);
            if (rc != 0)
                return rc;
            continue;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            if (a[0] == '-' && a[1] != '\0')
                return pi_err_set(err, PI_EINVAL,
                                  "unknown option '%s' (try --help)", a);
            cfg->args[cfg->n_args++] = argv[i];
            continue;
        }
        name = a + 2;
        value = strchr(name, '=');
        name_len = value ? (size_t)(value - name) : strlen(name);
        if (value)
            value++;
        if (name_len == 6 && strncmp(name, "config", 6) == 0) {
            file = value ? value : (i + 1 < argc ? argv[++i] : NULL);
            if (file == NULL)
                return pi_err_set(err, PI_EINVAL, "--config needs a file");
            continue;
        }
        o = find_opt(name, name_len);
        if (o == NULL || !(o->cmds & cmd))
            return pi_err_set(err, PI_EINVAL,
                              "unknown option '--%.*s' for '%s' (try --help)",
                              (int)name_len, name, argv[0]);
        if (value == NULL && o->type == OPT_FLAG)
            value = "true";
        if (value == NULL) {
            if (i + 1 >= argc)
                return pi_err_set(err, PI_EINVAL, "--%s needs a value",
                                  o->name);
            value = argv[++i];
        }
        char where[128];
        snprintf(where, sizeof(where), "--%s", o->name);
        rc = set_value(cfg, o, value, where, err);
        if (rc != 0)
            return rc;
        seen[o - options] = SRC_FLAG;
    }

    for (size_t i = 0; i < N_OPTIONS; i++) {
        const pi_opt *o = &options[i];
        const char *v;

        if (seen[i] != SRC_DEFAULT || o->env == NULL || !(o->cmds & cmd) ||
            flag_only(o, cmd))
            continue;
        v = getenv(o->env);
        if (v == NULL || *v == '\0')
            continue;
        rc = set_value(cfg, o, v, o->env, err);
        if (rc != 0)
            return rc;
        seen[i] = SRC_ENV;
    }

    if (file == NULL)
        file = getenv("PRESENCE_CONFIG");
    if (file && *file) {
        cfg->config_file = pi_strdup(file);
        rc = read_file(cfg, cmd, file, seen, err);
        if (rc != 0)
            return rc;
    }

    if (cfg->backoff_min_ms > cfg->backoff_max_ms)
        return pi_err_set(err, PI_EINVAL,
                          "backoff-min-ms (%lld) exceeds backoff-max-ms (%lld)",
                          (long long)cfg->backoff_min_ms,
                          (long long)cfg->backoff_max_ms);
    return 0;
}

static void print_default(FILE *out, const pi_opt *o)
{
    if (o->def && o->type != OPT_FLAG)
        fprintf(out, " (default: %s)", o->def);
}

void pi_config_print_help(FILE *out, unsigned cmd, const char *usage)
{
    fprintf(out, "usage: presence-ingest %s [OPTIONS]\n\noptions:\n", usage);
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const pi_opt *o = &options[i];
        char flag[64];

        if (!(o->cmds & cmd))
            continue;
        snprintf(flag, sizeof(flag), "--%s%s%s", o->name,
                 o->type == OPT_FLAG ? "" : " ",
                 o->type == OPT_INT    ? "N"
                 : o->type == OPT_ENUM ? o->choices
                 : o->type == OPT_FLAG ? ""
                                       : "VALUE");
        fprintf(out, "  %-34s %s", flag, o->help);
        if (flag_only(o, cmd)) {
            fprintf(out, " (default: off; only this flag turns it on, not "
                         "the environment or --config)\n");
            continue;
        }
        print_default(out, o);
        if (o->type == OPT_INT)
            fprintf(out, " [%lld..%lld]", (long long)o->min, (long long)o->max);
        if (o->env)
            fprintf(out, " [env %s]", o->env);
        fputc('\n', out);
    }
    fprintf(out, "  %-34s %s\n", "--config FILE",
            "read key=value lines with the same names; kafka.KEY=VALUE "
            "lines are librdkafka properties [env PRESENCE_CONFIG]");
    if (cmd & (PI_CMD_RUN | PI_CMD_REPLAY))
        fprintf(out, "  %-34s %s\n", "-X KEY=VALUE",
                "any librdkafka property, passed through (as kcat does)");
    fprintf(out, "\nprecedence: flag > environment > --config file > "
                 "default\n");
}

void pi_config_print_sample(FILE *out)
{
    fprintf(out, "# presence-ingest configuration (--config FILE).\n"
                 "# key = value; flags and PRESENCE_* environment variables "
                 "override these.\n"
                 "# Generated by `presence-ingest run --print-config`.\n");
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const pi_opt *o = &options[i];

        fprintf(out, "\n# %s", o->help);
        if (o->type == OPT_INT)
            fprintf(out, " [%lld..%lld]", (long long)o->min, (long long)o->max);
        if (o->type == OPT_ENUM)
            fprintf(out, " [%s]", o->choices);
        if (o->env)
            fprintf(out, " (env %s)", o->env);
        fputc('\n', out);
        if (o->type == OPT_FLAG)
            fprintf(out, "#%s = %s\n", o->name,
                    strcmp(o->def, "1") == 0 ? "true" : "false");
        else if (o->def)
            fprintf(out, "#%s = %s\n", o->name, o->def);
        else
            fprintf(out, "#%s =\n", o->name);
    }
    fprintf(out, "\n# Any librdkafka property, prefixed with kafka.:\n"
                 "#kafka.fetch.max.bytes = 52428800\n"
                 "#kafka.security.protocol = plaintext\n");
}
