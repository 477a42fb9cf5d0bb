/* kafka.h -- librdkafka configuration for `run`, and the start-up check
 *
 * The consumer's rd_kafka_conf_t is built in three layers: our defaults
 * (chosen for an ingest service that must lose nothing and bound its
 * memory), then every -X / kafka.* property verbatim (librdkafka checks it
 * and its error text is shown as is), then the properties the service
 * manages itself (offsets are committed after the database, never
 * automatically). librdkafka's logs are routed into pi_log.
 */
#ifndef PRESENCE_KAFKA_H
#define PRESENCE_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>

#include "presence/config.h"
#include "presence/err.h"

/* What the consumer needs to know of the configuration it got. */
typedef struct pi_kafka_settings {
    int64_t reset;            /* where a partition with no row in ingest_offsets
                                 starts: RD_KAFKA_OFFSET_BEGINNING, _END, or _INVALID
                                 (auto.offset.reset=error: librdkafka decides) */
    bool cooperative;         /* the assignor's protocol is incremental */
    int64_t revoke_budget_ms; /* longest flush inside a revoke: half of
                                 max.poll.interval.ms, at most the shutdown
                                 timeout */
} pi_kafka_settings;

/* The environment variable that may hold the SASL password. The password
 * comes from one of: this variable, --sasl-password-file (its first line),
 * or -X sasl.password / kafka.sasl.password; given two ways it is refused.
 * It is registered with pi_log_redact: no log line shows it. */
#define PI_KAFKA_PASSWORD_ENV "PRESENCE_KAFKA_SASL_PASSWORD"

/* Whether a librdkafka property holds a secret (a password, a private key,
 * OAuth settings, the SASL user): error messages show its value as ****. */
bool pi_kafka_secret_prop(const char *key);

/* Whether librdkafka `version` (rd_kafka_version()'s 0xMMmmrrpp) cannot
 * log in to a Kafka 4 broker with `mechanisms` (sasl.mechanisms; NULL when
 * not set): older than 2.6.1 and a SCRAM mechanism (librdkafka issue
 * 4895). pi_kafka_conf_new logs one warning when it is so. */
bool pi_kafka_scram_broken(int version, const char *mechanisms);

/* Build the consumer configuration from cfg into *out (the caller owns it
 * until rd_kafka_new takes it) and fill *settings. PI_EINVAL with a one-line
 * message naming the property on any refused value. */
PI_MUST_CHECK int pi_kafka_conf_new(rd_kafka_conf_t **out,
                                    pi_kafka_settings *settings,
                                    const pi_config *cfg, pi_err *err);

/* Why the brokers could not be used, as librdkafka's error events said:
 * the closing line of a failed start names it instead of a bare "transport
 * failure". Filled by the caller's error callback (pi_kafka_cause_note),
 * which runs on the thread that polls. */
typedef enum pi_kafka_cause_kind {
    PI_KAFKA_CAUSE_NONE = 0,
    PI_KAFKA_CAUSE_AUTH,   /* SASL authentication or authorization */
    PI_KAFKA_CAUSE_TLS,    /* TLS handshake, certificate verification */
    PI_KAFKA_CAUSE_RESOLVE /* a host name that does not resolve */
} pi_kafka_cause_kind;

typedef struct pi_kafka_cause {
    pi_kafka_cause_kind kind;
    char reason[256];
} pi_kafka_cause;

/* Keep the first telling error (kerr, librdkafka's reason) in cause. */
void pi_kafka_cause_note(pi_kafka_cause *cause, int kerr, const char *reason);

/* Fail early, in one line, when the brokers do not answer within 10 s or a
 * topic named in cfg->topic does not exist (PI_EINVAL). The line names the
 * cause: authentication failed or TLS handshake failed (PI_EFATAL: waiting
 * will not fix it), host name not resolved or unreachable (PI_ERETRY). */
PI_MUST_CHECK int pi_kafka_check(rd_kafka_t *rk, const pi_config *cfg,
                                 const pi_kafka_cause *cause, pi_err *err);

#endif
