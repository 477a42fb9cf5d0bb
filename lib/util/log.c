/* log.c -- leveled logfmt / JSON-lines logging, secret and conninfo masking
 */
#include "presence/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "presence/mem.h"

pi_log_level pi_log_threshold = PI_LOG_INFO;
static pi_log_format log_format = PI_LOG_LOGFMT;

/* Registered at start-up, read by every thread after. */
static char *secrets[PI_LOG_SECRETS];
static size_t n_secrets;

static const char *const level_names[] = {"debug", "info", "warn", "error",
                                          "off"};

void pi_log_setup(pi_log_level level, pi_log_format format)
{
    pi_log_threshold = level;
    log_format = format;
}

int pi_log_level_parse(const char *s, pi_log_level *out)
{
    for (int i = PI_LOG_DEBUG; i <= PI_LOG_OFF; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (pi_log_level)i;
            return 0;
        }
    }
    return -1;
}

int pi_log_format_parse(const char *s, pi_log_format *out)
{
    if (strcmp(s, "logfmt") == 0)
        *out = PI_LOG_LOGFMT;
    else if (strcmp(s, "json") == 0)
        *out = PI_LOG_JSON;
    else
        return -1;
    return 0;
}

/* Append s quoted for the format: a JSON string (control characters as
 * \uXXXX), or a logfmt value the logfmt way (quotes and backslashes escaped,
 * a tab, newline or carriage return as \t, \n, \r, other control characters
 * dropped: libpq's messages hold tabs and newlines). */
static size_t put_quoted(char *buf, size_t pos, size_t cap, const char *s,
                         int json)
{
    if (pos < cap)
        buf[pos++] = '"';
    for (; *s && pos + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[pos++] = '\\';
            buf[pos++] = (char)c;
        } else if (c < 0x20 && json) {
            pos += (size_t)snprintf(buf + pos, cap - pos, "\\u%04x", c);
        } else if (c == '\t' || c == '\n' || c == '\r') {
            buf[pos++] = '\\';
            buf[pos++] = c == '\t' ? 't' : c == '\n' ? 'n' : 'r';
        } else if (c < 0x20 || c == 0x7f) {
            continue; /* logfmt: dropped */
        } else {
            buf[pos++] = (char)c;
        }
    }
    if (pos < cap)
        buf[pos++] = '"';
    return pos;
}

void pi_log_redact(const char *secret)
{
    if (secret == NULL || strlen(secret) < PI_LOG_SECRET_MIN ||
        n_secrets == PI_LOG_SECRETS)
        return;
    for (size_t i = 0; i < n_secrets; i++) {
        if (strcmp(secrets[i], secret) == 0)
            return;
    }
    secrets[n_secrets++] = pi_strdup(secret);
}

void pi_log_redact_clear(void)
{
    for (size_t i = 0; i < n_secrets; i++)
        free(secrets[i]);
    n_secrets = 0;
}

void pi_log_redact_copy(char *out, size_t outsz, const char *s,
                        const char *secret)
{
    size_t len = strlen(secret), o = 0;

    while (*s && o + 1 < outsz) {
        if (len && strncmp(s, secret, len) == 0) {
            for (int i = 0; i < 4 && o + 1 < outsz; i++)
                out[o++] = '*';
            s += len;
        } else {
            out[o++] = *s++;
        }
    }
    out[o] = '\0';
}

void pi_log_write(pi_log_level level, const char *topic, int32_t partition,
                  int64_t offset, const char *fmt, ...)
{
    char msg[2048], line[4096], ts[80];
    struct timespec now;
    struct tm tm;
    va_list ap;
    size_t pos = 0, cap = sizeof(line) - 2;
    int json = log_format == PI_LOG_JSON;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    for (size_t i = 0; i < n_secrets; i++) {
        if (strstr(msg, secrets[i])) {
            char masked[sizeof(msg)];
            pi_log_redact_copy(masked, sizeof(masked), msg, secrets[i]);
            memcpy(msg, masked, sizeof(msg));
        }
    }

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int)(now.tv_nsec / 1000000));

    if (json)
        pos += (size_t)snprintf(line + pos, cap - pos,
                                "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":", ts,
                                level_names[level]);
    else
        pos += (size_t)snprintf(line + pos, cap - pos,
                                "ts=%s level=%s msg=", ts, level_names[level]);
    pos = put_quoted(line, pos, cap, msg, json);
    if (topic && pos < cap) {
        if (json) {
            pos += (size_t)snprintf(line + pos, cap - pos, ",\"topic\":");
            pos = put_quoted(line, pos, cap, topic, json);
        } else {
            pos += (size_t)snprintf(line + pos, cap - pos, " topic=");
            pos = put_quoted(line, pos, cap, topic, json);
        }
        if (pos < cap)
            pos += (size_t)snprintf(line + pos, cap - pos,
                                    json ? ",\"partition\":%d,\"offset\":%lld"
                                         : " partition=%d offset=%lld",
                                    (int)partition, (long long)offset);
    }
    if (pos > cap)
        pos = cap;
    if (json)
        line[pos++] = '}';
    line[pos++] = '\n';
    /* One write per line; a short write to stderr is not worth a retry. */
    ssize_t rc = write(STDERR_FILENO, line, pos);
    (void)rc;
}

void pi_log_mask_conninfo(const char *conninfo, char *out, size_t outsz)
{
    size_t o = 0;
    const char *p = conninfo;

    if (outsz == 0)
        return;
    if (strncmp(p, "postgresql://", 13) == 0 ||
        strncmp(p, "postgres://", 11) == 0) {
        /* scheme://user:password@host → mask between ':' and '@' of the
         * authority part. */
        const char *auth = strstr(p, "://") + 3;
        const char *at = strchr(auth, '@');
        const char *slash = strchr(auth, '/');
        const char *colon = strchr(auth, ':');
        if (at && (!slash || at < slash) && colon && colon < at) {
            snprintf(out, outsz, "%.*s****%s", (int)(colon + 1 - p), p, at);
        } else {
            snprintf(out, outsz, "%s", p);
        }
        /* Passwords may also come as query parameters (password=,
         * sslpassword=): mask each value up to the next '&'. */
        for (char *q = strchr(out, '?'); q && (q = strstr(q, "password="));) {
            char *end = strchr(q, '&');
            char rest[1024];
            q += 9;
            snprintf(rest, sizeof(rest), "%s", end ? end : "");
            snprintf(q, outsz - (size_t)(q - out), "****%s", rest);
            q += 4;
        }
        return;
    }
    /* key=value form: copy, masking the values of password= and
     * sslpassword= (the client key's passphrase). */
    while (*p && o + 1 < outsz) {
        size_t kw = strncmp(p, "password", 8) == 0       ? 8
                    : strncmp(p, "sslpassword", 11) == 0 ? 11
                                                         : 0;
        if (kw &&
            (p == conninfo || p[-1] == ' ' || p[-1] == '\t' || p[-1] == '\'')) {
            const char *v = p + kw;
            while (*v == ' ')
                v++;
            if (*v == '=') {
                v++;
                while (*v == ' ')
                    v++;
                o += (size_t)snprintf(out + o, outsz - o, "%.*s=****", (int)kw,
                                      p);
                if (o >= outsz) {
                    o = outsz - 1;
                    break;
                }
                if (*v == '\'') {
                    v++;
                    while (*v && *v != '\'') {
                        if (*v == '\\' && v[1])
                            v++;
                        v++;
                    }
                    if (*v == '\'')
                        v++;
                } else {
                    while (*v && *v != ' ' && *v != '\t')
                        v++;
                }
                p = v;
                continue;
            }
        }
        out[o++] = *p++;
    }
    out[o] = '\0';
}
