/* log.h -- leveled one-line logging in logfmt or JSON lines, to stderr
 *
 * The logger is process-wide (configured once at start-up by cmd/, read by
 * every thread): a log line is the one thing every module emits, and threading
 * a context through each call would buy nothing. Lines are written with one
 * write(2) so that threads never interleave inside a line.
 */
#ifndef PRESENCE_LOG_H
#define PRESENCE_LOG_H

#include <stddef.h>
#include <stdint.h>

typedef enum pi_log_level {
    PI_LOG_DEBUG = 0,
    PI_LOG_INFO,
    PI_LOG_WARN,
    PI_LOG_ERROR,
    PI_LOG_OFF
} pi_log_level;

typedef enum pi_log_format { PI_LOG_LOGFMT = 0, PI_LOG_JSON } pi_log_format;

/* Set the threshold and the format (defaults: info, logfmt). */
void pi_log_setup(pi_log_level level, pi_log_format format);

/* Parse "debug|info|warn|error|off" / "logfmt|json"; 0 or -1. */
int pi_log_level_parse(const char *s, pi_log_level *out);
int pi_log_format_parse(const char *s, pi_log_format *out);

/* The current threshold: the macros test it before evaluating arguments. */
extern pi_log_level pi_log_threshold;

void pi_log_write(pi_log_level level, const char *topic, int32_t partition,
                  int64_t offset, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#define pi_log(level, ...)                                                     \
    do {                                                                       \
        if ((level) >= pi_log_threshold)                                       \
            pi_log_write((level), NULL, -1, -1, __VA_ARGS__);                  \
    } while (0)

/* Same, with topic/partition@offset fields (pgbouncer's slog_*). */
#define pi_log_at(level, topic, partition, offset, ...)                        \
    do {                                                                       \
        if ((level) >= pi_log_threshold)                                       \
            pi_log_write((level), (topic), (partition), (offset),              \
                         __VA_ARGS__);                                         \
    } while (0)

#define pi_debug(...) pi_log(PI_LOG_DEBUG, __VA_ARGS__)
#define pi_info(...) pi_log(PI_LOG_INFO, __VA_ARGS__)
#define pi_warn(...) pi_log(PI_LOG_WARN, __VA_ARGS__)
#define pi_error(...) pi_log(PI_LOG_ERROR, __VA_ARGS__)

/* Register a secret (a password) that no log line may show: from now on
 * every occurrence of it in a line's message, librdkafka's lines included,
 * is written as "****". Called at start-up, before other threads log; the
 * string is copied. Secrets shorter than PI_LOG_SECRET_MIN bytes are not
 * registered (masking them would garble every line, and they protect
 * nothing); at most PI_LOG_SECRETS are kept. NULL does nothing. */
#define PI_LOG_SECRET_MIN 4
#define PI_LOG_SECRETS 8
void pi_log_redact(const char *secret);

/* Forget every registered secret (tests). */
void pi_log_redact_clear(void);

/* Copy s into out (outsz > 0, always NUL-terminated) with every
 * occurrence of secret replaced by "****". */
void pi_log_redact_copy(char *out, size_t outsz, const char *s,
                        const char *secret);

/* Copy conninfo (key=value or URI) into out with any password replaced by
 * "****". Always NUL-terminates. */
void pi_log_mask_conninfo(const char *conninfo, char *out, size_t outsz);

#endif
