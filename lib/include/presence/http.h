/* http.h -- the HTTP endpoint of `run`: /metrics, /healthz, /readyz
 *
 * Served by libmicrohttpd from one internal thread polling every
 * connection (non-blocking), so a slow or idle client holds a connection
 * slot (at most 32, dropped after 10 s without progress) but neither other
 * clients nor the service. Every answer reads pi_metrics only:
 *
 *   GET /metrics  200, Prometheus text format 0.0.4
 *   GET /healthz  200 "ok", or 503 and a one-line reason (pi_metrics_healthy)
 *   GET /readyz   200 "ok", or 503 and a one-line reason (pi_metrics_ready)
 *   anything else 404; a method other than GET or HEAD 405.
 */
#ifndef PRESENCE_HTTP_H
#define PRESENCE_HTTP_H

#include "presence/err.h"
#include "presence/metrics.h"

typedef struct pi_http pi_http;

/* Parse an --http-listen value: "HOST:PORT" or "[V6ADDR]:PORT" (HOST may be
 * a name or an address; PORT 0 picks a free one). PI_EINVAL with a message
 * naming the value when it is malformed. */
PI_MUST_CHECK int pi_http_parse_listen(const char *spec, char *host,
                                       size_t host_size, char *port,
                                       size_t port_size, pi_err *err);

/* Listen on spec and start serving m (borrowed: stop the server before
 * destroying m or the consumer whose Kafka handle m holds). Errors:
 * PI_EINVAL (malformed spec), PI_EFATAL (cannot listen: address in use, not
 * ours...), one line naming the address and the reason. */
PI_MUST_CHECK int pi_http_start(pi_http **out, const char *spec, pi_metrics *m,
                                pi_err *err);

/* The port actually bound (useful with port 0). */
int pi_http_port(const pi_http *h);

/* Stop serving (open connections are closed) and free. NULL is a no-op. */
void pi_http_stop(pi_http *h);

#endif
