/* kafka.c -- librdkafka configuration for `run`, and the start-up check */
#include "presence/kafka.h"

#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "presence/log.h"

/* Properties we set unless -X says otherwise: chosen for an ingest service
 * that must not lose anything and must bound its memory. */
static const char *const kafka_defaults[][2] = {
    {"client.id", "presence-ingest"},
    {"auto.offset.reset", "earliest"},
    {"partition.assignment.strategy", "cooperative-sticky"},
    {"queued.max.messages.kbytes", "16384"},
    {"fetch.max.bytes", "16777216"},
    {"fetch.wait.max.ms", "100"},
    {"session.timeout.ms", "45000"},
    {"enable.partition.eof", "false"},
};

/* Properties the service manages itself: offsets are committed by us, after
 * the database commit, so auto-commit would publish positions not yet
 * stored. */
static const char *const kafka_managed[][2] = {
    {"enable.auto.commit", "false"},
    {"enable.auto.offset.store", "false"},
};

static void log_cb(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf)
{
    /* librdkafka logs a broker it cannot reach at LOG_ERR; for a service
     * that reconnects by itself that is a warning, not an error. */
    pi_log_level l = level <= LOG_WARNING ? PI_LOG_WARN
                     : level <= LOG_INFO  ? PI_LOG_INFO
                                          : PI_LOG_DEBUG;
    (void)rk;
    pi_log(l, "librdkafka %s: %s", fac, buf);
}

static int set_prop(rd_kafka_conf_t *conf, const char *key, const char *value,
                    const char *origin, pi_err *err)
{
    char errstr[512];

    if (rd_kafka_conf_set(conf, key, value, errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK)
        return pi_err_set(err, PI_EINVAL, "%s %s=%s: %s", origin, key, value,
                          errstr);
    return 0;
}

static const char *user_prop(const pi_config *cfg, const char *key)
{
    for (size_t i = 0; i < cfg->n_kafka; i++) {
        if (strcmp(cfg->kafka_keys[i], key) == 0)
            return cfg->kafka_values[i];
    }
    return NULL;
}

int pi_kafka_conf_new(rd_kafka_conf_t **out, pi_kafka_settings *settings,
                      const pi_config *cfg, pi_err *err)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *reset, *strategy, *poll_interval;
    int rc = 0;

    *out = NULL;
    for (size_t i = 0; i < sizeof(kafka_defaults) / sizeof(*kafka_defaults);
         i++) {
        rc = set_prop(conf, kafka_defaults[i][0], kafka_defaults[i][1],
                      "default", err);
        if (rc)
            goto cleanup;
    }
    for (size_t i = 0; i < cfg->n_kafka; i++) {
        for (size_t j = 0; j < sizeof(kafka_managed) / sizeof(*kafka_managed);
             j++) {
            if (strcmp(cfg->kafka_keys[i], kafka_managed[j][0]) == 0 &&
                strcmp(cfg->kafka_values[i], kafka_managed[j][1]) != 0) {
                rc = pi_err_set(err, PI_EINVAL,
                                "-X %s=%s: presence-ingest commits offsets "
                                "itself, after the database; this property "
                                "must stay %s",
                                cfg->kafka_keys[i], cfg->kafka_values[i],
                                kafka_managed[j][1]);
                goto cleanup;
            }
        }
        rc =
            set_prop(conf, cfg->kafka_keys[i], cfg->kafka_values[i], "-X", err);
        if (rc)
            goto cleanup;
    }
    for (size_t j = 0; j < sizeof(kafka_managed) / sizeof(*kafka_managed);
         j++) {
        rc = set_prop(conf, kafka_managed[j][0], kafka_managed[j][1], "managed",
                      err);
        if (rc)
            goto cleanup;
    }
    if (cfg->brokers == NULL && user_prop(cfg, "bootstrap.servers") == NULL) {
        rc = pi_err_set(err, PI_EINVAL,
                        "--brokers is required (or PRESENCE_BROKERS)");
        goto cleanup;
    }
    if (cfg->brokers) {
        rc =
            set_prop(conf, "bootstrap.servers", cfg->brokers, "--brokers", err);
        if (rc)
            goto cleanup;
    }
    rc = set_prop(conf, "group.id", cfg->group, "--group", err);
    if (rc)
        goto cleanup;
    /* librdkafka has checked these values: only their meaning is read
     * here. */
    reset = user_prop(cfg, "auto.offset.reset");
    if (reset == NULL || strcmp(reset, "earliest") == 0 ||
        strcmp(reset, "smallest") == 0 || strcmp(reset, "beginning") == 0)
        settings->reset = RD_KAFKA_OFFSET_BEGINNING;
    else if (strcmp(reset, "error") == 0)
        settings->reset = RD_KAFKA_OFFSET_INVALID;
    else
        settings->reset = RD_KAFKA_OFFSET_END;
    /* One protocol for all the assignors listed (librdkafka requires it). */
    strategy = user_prop(cfg, "partition.assignment.strategy");
    settings->cooperative =
        strategy == NULL || strstr(strategy, "cooperative-sticky") != NULL;
    poll_interval = user_prop(cfg, "max.poll.interval.ms");
    settings->revoke_budget_ms =
        (poll_interval ? atoll(poll_interval) : 300000) / 2;
    if (settings->revoke_budget_ms > cfg->shutdown_timeout_ms)
        settings->revoke_budget_ms = cfg->shutdown_timeout_ms;
    rd_kafka_conf_set_log_cb(conf, log_cb);
    *out = conf;
    conf = NULL;
cleanup:
    if (conf)
        rd_kafka_conf_destroy(conf);
    return rc;
}

int pi_kafka_check(rd_kafka_t *rk, const pi_config *cfg, pi_err *err)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t kerr;
    const char *topics = cfg->topic;
    int rc = 0;

    kerr = rd_kafka_metadata(rk, 1, NULL, &md, 10000);
    if (kerr)
        return pi_err_set(err, PI_ERETRY, "cannot reach Kafka brokers %s: %s",
                          cfg->brokers ? cfg->brokers : "(-X)",
                          rd_kafka_err2str(kerr));
    if (topics[0] != '^') {
        const char *p = topics;
        while (*p && rc == 0) {
            size_t len = strcspn(p, ",");
            bool found = false;
            for (int i = 0; i < md->topic_cnt && !found; i++)
                found = strlen(md->topics[i].topic) == len &&
                        strncmp(md->topics[i].topic, p, len) == 0 &&
                        md->topics[i].err == 0;
            if (!found)
                rc = pi_err_set(err, PI_EINVAL,
                                "--topic: topic '%.*s' does not exist on %s",
                                (int)len, p,
                                cfg->brokers ? cfg->brokers : "(-X)");
            p += len;
            if (*p == ',')
                p++;
        }
    }
    rd_kafka_metadata_destroy(md);
    return rc;
}
