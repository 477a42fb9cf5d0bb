/* test_http.c -- the endpoint: routes, status codes, listen errors */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "presence/http.h"

/* One request on a new connection; returns the whole response (status
 * line, headers, body), which the caller frees. */
static char *request(int port, const char *method, const char *path)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap), req[256];
    ssize_t n;

    assert_true(fd >= 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    snprintf(req, sizeof(req),
             "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", method,
             path);
    assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (len + 1 == cap)
            buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    close(fd);
    return buf;
}

static void expect(int port, const char *method, const char *path,
                   const char *status, const char *part)
{
    char *resp = request(port, method, path);

    if (strncmp(resp, status, strlen(status)) != 0 ||
        strstr(resp, part) == NULL)
        fail_msg("%s %s: expected '%s' and '%s', got:\n%s", method, path,
                 status, part, resp);
    free(resp);
}

static void test_http__routes(void **state)
{
    pi_metrics *m;
    pi_http *h;
    pi_err err;
    int port;

    (void)state;
    pi_metrics_new(&m, "9.9.9", 60000);
    assert_int_equal(pi_http_start(&h, "127.0.0.1:0", m, &err), 0);
    port = pi_http_port(h);
    assert_true(port > 0);
    expect(port, "GET", "/metrics", "HTTP/1.1 200",
           "Content-Type: text/plain; version=0.0.4; charset=utf-8");
    expect(port, "GET", "/metrics", "HTTP/1.1 200",
           "presence_ingest_build_info{version=\"9.9.9\"} 1\n");
    expect(port, "GET", "/healthz", "HTTP/1.1 200", "\r\n\r\nok\n");
    expect(port, "GET", "/readyz", "HTTP/1.1 503",
           "\r\n\r\nnot in the consumer group yet\n");
    expect(port, "HEAD", "/healthz", "HTTP/1.1 200", "\r\n\r\n");
    expect(port, "GET", "/", "HTTP/1.1 404", "not found");
    expect(port, "POST", "/metrics", "HTTP/1.1 405", "only GET and HEAD");
    pi_http_stop(h);
    pi_metrics_destroy(m);
}

static void test_http__port_in_use_is_one_line(void **state)
{
    pi_metrics *m;
    pi_http *h, *h2 = NULL;
    pi_err err;
    char spec[64];

    (void)state;
    pi_metrics_new(&m, "x", 1000);
    assert_int_equal(pi_http_start(&h, "127.0.0.1:0", m, &err), 0);
    snprintf(spec, sizeof(spec), "127.0.0.1:%d", pi_http_port(h));
    assert_int_equal(pi_http_start(&h2, spec, m, &err), PI_EFATAL);
    assert_null(h2);
    assert_non_null(strstr(err.msg, spec));
    assert_non_null(strstr(err.msg, "Address already in use"));
    assert_null(strchr(err.msg, '\n'));
    pi_http_stop(h);
    /* Stopping released the port. */
    assert_int_equal(pi_http_start(&h2, spec, m, &err), 0);
    pi_http_stop(h2);
    pi_http_stop(NULL);
    pi_metrics_destroy(m);
}

static void test_http__listen_specs(void **state)
{
    static const char *const bad[] = {
        "9464",        ":9464",           "127.0.0.1:",
        "127.0.0.1:x", "127.0.0.1:65536", "::1:9464",
        "[::1]9464",   "127.0.0.1:-1",    "h:1 "};
    char host[64], port[8];
    pi_err err;

    (void)state;
    assert_int_equal(pi_http_parse_listen("0.0.0.0:9464", host, sizeof(host),
                                          port, sizeof(port), &err),
                     0);
    assert_string_equal(host, "0.0.0.0");
    assert_string_equal(port, "9464");
    assert_int_equal(pi_http_parse_listen("[::1]:80", host, sizeof(host), port,
                                          sizeof(port), &err),
                     0);
    assert_string_equal(host, "::1");
    assert_string_equal(port, "80");
    assert_int_equal(pi_http_parse_listen("localhost:0", host, sizeof(host),
                                          port, sizeof(port), &err),
                     0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        int rc = pi_http_parse_listen(bad[i], host, sizeof(host), port,
                                      sizeof(port), &err);
        if (rc != PI_EINVAL)
            fail_msg("'%s' accepted", bad[i]);
        assert_non_null(strstr(err.msg, bad[i]));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http__routes),
        cmocka_unit_test(test_http__port_in_use_is_one_line),
        cmocka_unit_test(test_http__listen_specs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
