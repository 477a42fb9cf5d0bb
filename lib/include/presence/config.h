/* config.h -- options of every subcommand, from one declarative table
 *
 * Each option has one row {name, env, type, field, default, min, max, help}
 * in config.c; the parser of flags, environment and --config files, the
 * --help text and the documented sample file are all generated from it, so
 * they cannot disagree. Precedence: command-line flag > environment variable
 * > --config file > default. `-X key=value` (and `kafka.key=value` lines in a
 * config file) are librdkafka properties passed through verbatim.
 */
#ifndef PRESENCE_CONFIG_H
#define PRESENCE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "presence/err.h"

typedef struct pi_metrics pi_metrics; /* metrics.h */

/* Which subcommands an option applies to (bit set). */
enum {
    PI_CMD_RUN = 1 << 0,
    PI_CMD_LOAD = 1 << 1,
    PI_CMD_MIGRATE = 1 << 2,
    PI_CMD_REPLAY = 1 << 3,
    PI_CMD_REPORT = 1 << 4,
    PI_CMD_RETENTION = 1 << 5,
    PI_CMD_WATCH = 1 << 6,
    PI_CMD_ALL = 0xff
};

/* Bound of --writers: each is a thread, a PostgreSQL connection and up to
 * three batches of memory. */
#define PI_MAX_WRITERS 32

typedef struct pi_config {
    char *brokers;
    char *topic; /* comma-separated list, or one ^regex */
    char *group;
    char *pg; /* conninfo or URI; NULL: libpq's PG* environment */
    char *config_file;
    char *on_conflict; /* "keep" | "replace" */
    char *log_level;
    char *log_format;
    int64_t batch_size;         /* messages per transaction */
    int64_t batch_bytes;        /* value bytes per transaction */
    int64_t writers;            /* writer threads (connections), 1..32 */
    int64_t linger_ms;          /* flush a partial batch after this long */
    int64_t max_message_bytes;  /* larger values are rejected too_large */
    int64_t max_array_elements; /* longer arrays are rejected too_large */
    int64_t max_json_depth;     /* deeper values are rejected too_large */
    int64_t max_decode_memory;  /* bigger json-c trees too; 0: 32 x bytes */
    int64_t backoff_min_ms;
    int64_t backoff_max_ms;
    int64_t pg_tx_timeout_ms; /* statement and idle-in-transaction timeout */
    int64_t shutdown_timeout_ms;
    int64_t stats_interval_ms;  /* periodic progress line; 0: off */
    int64_t rollup_interval_ms; /* rollup catch-up (rollup.h); 0: off */
    char *http_listen;        /* ADDR:PORT of /metrics etc., "off"; NULL: off */
    char *sasl_password_file; /* its first line is sasl.password (kafka.h) */
    int64_t health_stall_ms;  /* /healthz, /readyz thresholds */
    /* Not an option: the service's metrics, set by `run` while it serves
     * them (NULL otherwise); borrowed. */
    pi_metrics *metrics;
    /* replay's range (replay.h) and display */
    int64_t from_beginning;
    char *replay_from, *from_offset, *from_offsets;
    char *replay_to, *to_offset, *to_offsets;
    char *partitions;
    int64_t dry_run;
    char *retention_keep;       /* retention --keep DURATION */
    int64_t partition_check_ms; /* run: the partition keeper's period */
    int64_t move_legacy;        /* migrate --move-legacy */
    int64_t move_batch;         /* its rows per transaction */
    char *progress;             /* "auto" | "always" | "never" */
    /* Not an option: set by `replay` for the consumer (bounded, assigned,
     * no group). */
    bool replay;
    /* report: NULL / 0 when not given (the command applies its defaults
     * and refuses options that do not fit the kind). */
    char *report_asset;
    char *report_since;
    char *report_until;
    char *report_tz;
    char *report_window;
    char *report_format;
    int64_t report_threshold;
    char *report_debounce; /* outages, availability (CONTRACT §8) */
    char *report_period;   /* availability: day | week | month */
    int64_t report_fleet;  /* availability: the fleet's summary */
    char *report_target;   /* availability --fleet */
    char *report_step;     /* fleet */
    /* watch: NULL when not given. */
    char *watch_after;
    /* report status and watch: a state (online | offline | declared) and
     * DURATION, NULL when not given. */
    char *state;
    char *offline_for;
    /* -X key=value pairs, in order. */
    char **kafka_keys;
    char **kafka_values;
    size_t n_kafka;
    /* Positional arguments left after the options (load's FILE). */
    char **args;
    size_t n_args;
} pi_config;

/* pi_config_parse's result when --help was asked for (already printed). */
#define PI_CONFIG_HELP 1

/* Fill cfg with the defaults. */
void pi_config_init(pi_config *cfg);
void pi_config_fini(pi_config *cfg);

/* Parse argv (argv[0] is the subcommand name) for subcommand cmd (a PI_CMD_*
 * bit), then the environment, then the --config file. Returns 0,
 * PI_CONFIG_HELP after printing --help to stdout, or PI_EINVAL with a
 * one-line message naming the option and the problem. */
PI_MUST_CHECK int pi_config_parse(pi_config *cfg, unsigned cmd, int argc,
                                  char **argv, pi_err *err);

/* Print the options of cmd, generated from the table. */
void pi_config_print_help(FILE *out, unsigned cmd, const char *usage);

/* Print a commented sample --config file with every option and default. */
void pi_config_print_sample(FILE *out);

#endif
