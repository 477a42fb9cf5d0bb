/* kafka.c -- librdkafka configuration for `run`, and the start-up check */
#include "presence/kafka.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
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
    /* New partitions of a subscribed topic are noticed within this (the
     * librdkafka default, 5 minutes, is too slow for an operator who just
     * added some). */
    {"topic.metadata.refresh.interval.ms", "30000"},
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

bool pi_kafka_secret_prop(const char *key)
{
    static const char *const secret_keys[] = {
        "ssl.key.pem", "ssl_key", "sasl.oauthbearer.config", "sasl.username"};

    if (strstr(key, "password") || strstr(key, "secret"))
        return true;
    for (size_t i = 0; i < sizeof(secret_keys) / sizeof(*secret_keys); i++) {
        if (strcmp(key, secret_keys[i]) == 0)
            return true;
    }
    return false;
}

/* librdkafka's error text is shown verbatim, except that the value of a
 * secret property is never shown, nor that of an unknown one (a secret
 * under a misspelt key). */
static int set_prop(rd_kafka_conf_t *conf, const char *key, const char *value,
                    const char *origin, pi_err *err)
{
    char errstr[512], masked[512];
    rd_kafka_conf_res_t res;

    res = rd_kafka_conf_set(conf, key, value, errstr, sizeof(errstr));
    if (res == RD_KAFKA_CONF_OK)
        return 0;
    if (res == RD_KAFKA_CONF_UNKNOWN)
        return pi_err_set(err, PI_EINVAL, "%s %s: %s", origin, key, errstr);
    if (pi_kafka_secret_prop(key)) {
        pi_log_redact_copy(masked, sizeof(masked), errstr, value);
        return pi_err_set(err, PI_EINVAL, "%s %s=****: %s", origin, key,
                          masked);
    }
    return pi_err_set(err, PI_EINVAL, "%s %s=%s: %s", origin, key, value,
                      errstr);
}

static const char *user_prop(const pi_config *cfg, const char *key)
{
    for (size_t i = 0; i < cfg->n_kafka; i++) {
        if (strcmp(cfg->kafka_keys[i], key) == 0)
            return cfg->kafka_values[i];
    }
    return NULL;
}

/* One host:port of --brokers, an optional proto:// before it and the host
 * possibly [an IPv6 address]: librdkafka takes a bad port as 0 and only
 * reports it unreachable later, so it is refused here. */
static int check_broker(const char *s, size_t len, pi_err *err)
{
    const char *end = s + len, *scheme = NULL, *colon = NULL;

    for (const char *p = s; p + 2 < end; p++) {
        if (p[0] == ':' && p[1] == '/' && p[2] == '/') {
            scheme = p + 3;
            break;
        }
    }
    if (scheme)
        s = scheme;
    if (s < end && *s == '[') {
        const char *close = memchr(s, ']', (size_t)(end - s));
        if (close == NULL)
            goto bad;
        colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
        if (close + 1 < end && colon == NULL)
            goto bad;
    } else {
        for (const char *p = s; p < end; p++) {
            if (*p == ':')
                colon = p;
        }
    }
    if (s == end || s == colon)
        goto bad;
    if (colon) {
        long port = 0;
        if (colon + 1 == end || end - colon > 6)
            goto bad;
        for (const char *p = colon + 1; p < end; p++) {
            if (*p < '0' || *p > '9')
                goto bad;
            port = port * 10 + (*p - '0');
        }
        if (port < 1 || port > 65535)
            goto bad;
    }
    return 0;
bad:
    return pi_err_set(err, PI_EINVAL,
                      "--brokers: '%.*s' is not host:port (port 1-65535)",
                      (int)len, s);
}

static int check_brokers(const char *list, pi_err *err)
{
    const char *p = list;

    for (;;) {
        size_t len = strcspn(p, ",");
        while (len && (p[len - 1] == ' '))
            len--;
        int rc = check_broker(p, len, err);
        if (rc)
            return rc;
        p += strcspn(p, ",");
        if (*p == '\0')
            return 0;
        p++;
        while (*p == ' ')
            p++;
    }
}

bool pi_kafka_scram_broken(int version, const char *mechanisms)
{
    /* 0xMMmmrrpp: the pre-release byte does not matter here. */
    return (version >> 8) < 0x020601 && mechanisms != NULL &&
           strncasecmp(mechanisms, "SCRAM-", 6) == 0;
}

/* The first line of path, without its line end, into buf: PI_EINVAL naming
 * the file (never its content) when it cannot be read or the line is empty
 * or too long. */
static int read_password_file(const char *path, char *buf, size_t size,
                              pi_err *err)
{
    FILE *f = fopen(path, "r");
    struct stat st;
    size_t len;
    int rc = 0;

    if (f == NULL)
        return pi_err_set(err, PI_EINVAL, "--sasl-password-file %s: %s", path,
                          strerror(errno));
    if (fgets(buf, (int)size, f) == NULL)
        buf[0] = '\0';
    len = strcspn(buf, "\r\n");
    if (buf[len] == '\0' && len == size - 1 && !feof(f))
        rc = pi_err_set(err, PI_EINVAL,
                        "--sasl-password-file %s: first line longer than %zu "
                        "bytes",
                        path, size - 2);
    else if (len == 0)
        rc = pi_err_set(err, PI_EINVAL,
                        "--sasl-password-file %s: the first line (the "
                        "password) is empty",
                        path);
    buf[len] = '\0';
    if (rc == 0 && fstat(fileno(f), &st) == 0 && (st.st_mode & 077))
        pi_warn("--sasl-password-file %s can be read by other users (mode "
                "%04o): chmod 600 it",
                path, (unsigned)(st.st_mode & 07777));
    fclose(f);
    return rc;
}

/* sasl.password from one of: -X sasl.password (or kafka.sasl.password),
 * PRESENCE_KAFKA_SASL_PASSWORD, --sasl-password-file. Given twice is an
 * error (which one would win is not obvious). The password is registered
 * with the logger, which then never shows it. */
static int set_password(rd_kafka_conf_t *conf, const pi_config *cfg,
                        pi_err *err)
{
    const char *x = user_prop(cfg, "sasl.password");
    const char *env = getenv(PI_KAFKA_PASSWORD_ENV);
    const char *file = cfg->sasl_password_file;
    char buf[1026];
    int rc;

    if (env && *env == '\0')
        env = NULL;
    if ((x != NULL) + (env != NULL) + (file != NULL) > 1)
        return pi_err_set(err, PI_EINVAL,
                          "the SASL password is given more than once (%s%s%s%s"
                          "%s): give it one way",
                          x ? "-X sasl.password" : "", x && env ? ", " : "",
                          env ? PI_KAFKA_PASSWORD_ENV : "",
                          file && (x || env) ? ", " : "",
                          file ? "--sasl-password-file" : "");
    if (x) {
        pi_log_redact(x);
        return 0;
    }
    if (env) {
        pi_log_redact(env);
        return set_prop(conf, "sasl.password", env, PI_KAFKA_PASSWORD_ENV, err);
    }
    if (file == NULL)
        return 0;
    rc = read_password_file(file, buf, sizeof(buf), err);
    if (rc == 0) {
        pi_log_redact(buf);
        rc = set_prop(conf, "sasl.password", buf, "--sasl-password-file", err);
    }
    explicit_bzero(buf, sizeof(buf));
    return rc;
}

int pi_kafka_conf_new(rd_kafka_conf_t **out, pi_kafka_settings *settings,
                      const pi_config *cfg, pi_err *err)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *reset, *strategy, *poll_interval, *mechanisms;
    int rc = 0;

    *out = NULL;
    for (size_t i = 0; i < sizeof(kafka_defaults) / sizeof(*kafka_defaults);
         i++) {
        rc = set_prop(conf, kafka_defaults[i][0], kafka_defaults[i][1],
                      "default", err);
        if (rc)
            goto cleanup;
    }
    /* With several writers: librdkafka hands a fetch out partition by
     * partition, up to this much of each, and the consumer waits for a
     * writer whose batch is full. Smaller pieces interleave the writers'
     * partitions, so that their batches fill, and are written, at the same
     * time (librdkafka's default, 1 MiB, is about a whole batch). */
    if (cfg->writers > 1) {
        rc = set_prop(conf, "max.partition.fetch.bytes", "262144", "default",
                      err);
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
    rc = set_password(conf, cfg, err);
    if (rc)
        goto cleanup;
    for (size_t j = 0; j < sizeof(kafka_managed) / sizeof(*kafka_managed);
         j++) {
        rc = set_prop(conf, kafka_managed[j][0], kafka_managed[j][1], "managed",
                      err);
        if (rc)
            goto cleanup;
    }
    mechanisms = user_prop(cfg, "sasl.mechanisms");
    if (mechanisms == NULL)
        mechanisms = user_prop(cfg, "sasl.mechanism");
    if (pi_kafka_scram_broken(rd_kafka_version(), mechanisms))
        pi_warn("librdkafka %s cannot log in with %s to Kafka 4 brokers: "
                "older than 2.6.1, it repeats the client nonce in the SCRAM "
                "client-final-message and Kafka 4 refuses it as invalid "
                "credentials (librdkafka issue 4895); install librdkafka >= "
                "2.6.1 (on Debian 12: deploy/install-deps.sh builds Debian "
                "13's 2.8.0)",
                rd_kafka_version_str(), mechanisms);
    if (cfg->brokers == NULL && user_prop(cfg, "bootstrap.servers") == NULL) {
        rc = pi_err_set(err, PI_EINVAL,
                        "--brokers is required (or PRESENCE_BROKERS)");
        goto cleanup;
    }
    if (cfg->brokers) {
        rc = check_brokers(cfg->brokers, err);
        if (rc)
            goto cleanup;
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

void pi_kafka_cause_note(pi_kafka_cause *cause, int kerr, const char *reason)
{
    pi_kafka_cause_kind kind;

    switch (kerr) {
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
        kind = PI_KAFKA_CAUSE_AUTH;
        break;
    case RD_KAFKA_RESP_ERR__SSL:
        kind = PI_KAFKA_CAUSE_TLS;
        break;
    case RD_KAFKA_RESP_ERR__RESOLVE:
        kind = PI_KAFKA_CAUSE_RESOLVE;
        break;
    default:
        return;
    }
    /* The first telling one: later ones are usually its echoes. */
    if (cause->kind != PI_KAFKA_CAUSE_NONE)
        return;
    cause->kind = kind;
    snprintf(cause->reason, sizeof(cause->reason), "%s", reason);
}

static int report_cause(const pi_kafka_cause *cause, const pi_config *cfg,
                        rd_kafka_resp_err_t kerr, pi_err *err)
{
    const char *brokers = cfg->brokers ? cfg->brokers : "(-X)";

    switch (cause->kind) {
    case PI_KAFKA_CAUSE_AUTH:
        return pi_err_set(err, PI_EFATAL,
                          "cannot connect to Kafka brokers %s: authentication "
                          "failed (check the SASL mechanism, user and "
                          "password): %s",
                          brokers, cause->reason);
    case PI_KAFKA_CAUSE_TLS:
        return pi_err_set(err, PI_EFATAL,
                          "cannot connect to Kafka brokers %s: TLS handshake "
                          "failed (%s): %s",
                          brokers,
                          strstr(cause->reason, "certificate verify failed")
                              ? "certificate verify failed: is ssl.ca.location "
                                "the CA that signed the broker's certificate?"
                              : "check security.protocol and the ssl.* "
                                "properties",
                          cause->reason);
    case PI_KAFKA_CAUSE_RESOLVE:
        return pi_err_set(err, PI_ERETRY,
                          "cannot reach Kafka brokers %s: host name not "
                          "resolved: %s",
                          brokers, cause->reason);
    default:
        return pi_err_set(err, PI_ERETRY,
                          "cannot reach Kafka brokers %s: unreachable (%s)",
                          brokers, rd_kafka_err2str(kerr));
    }
}

int pi_kafka_check(rd_kafka_t *rk, const pi_config *cfg,
                   const pi_kafka_cause *cause, pi_err *err)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t kerr;
    const char *topics = cfg->topic;
    int rc = 0;

    kerr = rd_kafka_metadata(rk, 1, NULL, &md, 10000);
    if (kerr) {
        /* The error events that say why (authentication, TLS) are served
         * by a poll: let them reach the error callback first. */
        for (int i = 0; i < 10 && cause->kind == PI_KAFKA_CAUSE_NONE; i++) {
            rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 100);
            if (rkm)
                rd_kafka_message_destroy(rkm);
        }
        return report_cause(cause, cfg, kerr, err);
    }
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
