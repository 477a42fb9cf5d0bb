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

/* Build the consumer configuration from cfg into *out (the caller owns it
 * until rd_kafka_new takes it) and fill *settings. PI_EINVAL with a one-line
 * message naming the property on any refused value. */
PI_MUST_CHECK int pi_kafka_conf_new(rd_kafka_conf_t **out,
                                    pi_kafka_settings *settings,
                                    const pi_config *cfg, pi_err *err);

/* Fail early, in one line, when the brokers do not answer within 10 s
 * (PI_ERETRY) or a topic named in cfg->topic does not exist (PI_EINVAL). */
PI_MUST_CHECK int pi_kafka_check(rd_kafka_t *rk, const pi_config *cfg,
                                 pi_err *err);

#endif
