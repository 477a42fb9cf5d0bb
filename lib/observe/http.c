/* http.c -- /metrics, /healthz and /readyz over libmicrohttpd */
#include "presence/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "presence/mem.h"

#define CONNECTION_LIMIT 32
#define CONNECTION_TIMEOUT_S 10

struct pi_http {
    struct MHD_Daemon *daemon;
    pi_metrics *m;
    int port;
};

int pi_http_parse_listen(const char *spec, char *host, size_t host_size,
                         char *port, size_t port_size, pi_err *err)
{
    const char *colon, *h = spec, *p;
    size_t hlen;
    char *end;
    long n;

    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (close == NULL || close[1] != ':')
            goto bad;
        h = spec + 1;
        hlen = (size_t)(close - h);
        p = close + 2;
    } else {
        colon = strrchr(spec, ':');
        if (colon == NULL || strchr(spec, ':') != colon)
            goto bad;
        hlen = (size_t)(colon - spec);
        p = colon + 1;
    }
    errno = 0;
    n = strtol(p, &end, 10);
    if (hlen == 0 || hlen >= host_size || *p == '\0' || *end != '\0' || errno ||
        n < 0 || n > 65535 || strlen(p) >= port_size)
        goto bad;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    snprintf(port, port_size, "%ld", n);
    return 0;
bad:
    return pi_err_set(err, PI_EINVAL,
                      "--http-listen must be HOST:PORT, [ADDR]:PORT or off, "
                      "got '%s'",
                      spec);
}

static int listen_on(const char *spec, const char *host, const char *port,
                     pi_err *err)
{
    struct addrinfo hints, *res = NULL;
    int fd = -1, one = 1, gai, saved = 0;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0)
        return pi_err_set(err, PI_EFATAL, "--http-listen %s: %s", spec,
                          gai_strerror(gai));
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 64) == 0)
            break;
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return pi_err_set(err, PI_EFATAL, "--http-listen %s: cannot listen: %s",
                          spec, strerror(saved));
    return fd;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status,
                             const char *type, char *body, size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    enum MHD_Result ret;

    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned status,
                                  const char *text)
{
    size_t len = strlen(text);
    char *body = pi_malloc(len + 1);

    memcpy(body, text, len);
    body[len] = '\n';
    return reply(conn, status, "text/plain; charset=utf-8", body, len + 1);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn,
                              const char *url, const char *method,
                              const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    pi_http *h = cls;
    char reason[256];

    (void)version;
    (void)upload_data;
    (void)con_cls;
    if (*upload_data_size != 0) {
        *upload_data_size = 0; /* a body is not wanted: ignore it */
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                          "only GET and HEAD");
    if (strcmp(url, "/metrics") == 0) {
        char *body = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&body, &len);

        if (f == NULL)
            return MHD_NO;
        pi_metrics_write(h->m, f);
        fclose(f);
        return reply(conn, MHD_HTTP_OK,
                     "text/plain; version=0.0.4; "
                     "charset=utf-8",
                     body, len);
    }
    if (strcmp(url, "/healthz") == 0) {
        bool ok = pi_metrics_healthy(h->m, reason, sizeof(reason));
        return reply_text(conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                          reason);
    }
    if (strcmp(url, "/readyz") == 0) {
        bool ok = pi_metrics_ready(h->m, reason, sizeof(reason));
        return reply_text(conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                          reason);
    }
    return reply_text(conn, MHD_HTTP_NOT_FOUND,
                      "not found: try /metrics, /healthz or /readyz");
}

int pi_http_start(pi_http **out, const char *spec, pi_metrics *m, pi_err *err)
{
    char host[256], port[8];
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    pi_http *h;
    int rc, fd;

    *out = NULL;
    rc =
        pi_http_parse_listen(spec, host, sizeof(host), port, sizeof(port), err);
    if (rc)
        return rc;
    fd = listen_on(spec, host, port, err);
    if (fd < 0)
        return fd;
    h = pi_calloc(1, sizeof(*h));
    h->m = m;
    if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0)
        h->port = ntohs(ss.ss_family == AF_INET6
                            ? ((struct sockaddr_in6 *)&ss)->sin6_port
                            : ((struct sockaddr_in *)&ss)->sin_port);
    h->daemon = MHD_start_daemon(
        MHD_USE_AUTO_INTERNAL_THREAD, 0, NULL, NULL, handle, h,
        MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)CONNECTION_TIMEOUT_S, MHD_OPTION_END);
    if (h->daemon == NULL) {
        close(fd);
        free(h);
        return pi_err_set(err, PI_EFATAL,
                          "--http-listen %s: libmicrohttpd did not start",
                          spec);
    }
    *out = h;
    return 0;
}

int pi_http_port(const pi_http *h)
{
    return h->port;
}

void pi_http_stop(pi_http *h)
{
    if (h == NULL)
        return;
    MHD_stop_daemon(h->daemon); /* closes the listening socket too */
    free(h);
}
