/* consume.c -- the loop `run` and `replay` share: signals, the watchdog, the
 * HTTP endpoint and the database jobs around one consumer */
#include <inttypes.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "presence/config.h"
#include "presence/consumer.h"
#include "presence/http.h"
#include "presence/log.h"
#include "presence/metrics.h"
#include "presence/partition.h"
#include "presence/probe.h"
#include "presence/rollup.h"

/* How long past --shutdown-timeout-ms the watchdog lets a stop run. */
#define WATCHDOG_GRACE_MS 3000

static atomic_int stop_requested;
static sem_t stop_sem; /* posted by the first signal, for the watchdog */

/* First SIGTERM/SIGINT: stop fetching, flush, commit, leave the group.
 * Second: exit at once. That is still safe: a transaction not committed is
 * rolled back and its messages are consumed again from ingest_offsets. */
static void on_signal(int sig)
{
    if (atomic_exchange(&stop_requested, 1)) {
        static const char msg[] = "second signal: exiting now\n";
        ssize_t rc = write(STDERR_FILENO, msg, sizeof(msg) - 1);
        (void)rc;
        _exit(128 + sig);
    }
    sem_post(&stop_sem); /* async-signal-safe */
}

/* The stop is bounded whatever PostgreSQL or Kafka do: a frozen server
 * can block a statement, a cancel request (PQcancel waits for the server)
 * or leaving the group forever. Past the timeout and a grace the process
 * exits, which is safe: nothing is committed that is not whole, and what
 * is not committed is consumed again from ingest_offsets. */
static void *watchdog_main(void *arg)
{
    const pi_config *cfg = arg;
    struct timespec ts;
    int64_t ms = cfg->shutdown_timeout_ms + WATCHDOG_GRACE_MS;

    while (sem_wait(&stop_sem) != 0)
        ; /* EINTR */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0)
        ;
    pi_error("stop did not complete within shutdown-timeout-ms (%lld ms) + "
             "%d ms: PostgreSQL or Kafka is not answering; exiting without "
             "waiting (what was not committed is consumed again)",
             (long long)cfg->shutdown_timeout_ms, WATCHDOG_GRACE_MS);
    _exit(PI_EXIT_FAILURE);
    return NULL;
}

/* Unless --http-listen is off or not given (replay: only the flag sets it,
 * so that a replay beside `run` needs no port of its own): metrics, the
 * endpoint and the database probe of /readyz, started before connecting
 * anywhere so that a port in use fails at once and /healthz answers while the
 * consumer starts. */
static int serve_http(pi_config *cfg, pi_metrics **metrics, pi_http **http,
                      pi_probe **probe, pi_err *err)
{
    int64_t interval = cfg->health_stall_ms / 3;
    int rc;

    /* Kept without the server too: the rollup reads the writers' backlog
     * from it (rollup.h). */
    pi_metrics_new(metrics, PI_VERSION, cfg->health_stall_ms);
    cfg->metrics = *metrics;
    if (cfg->http_listen == NULL || strcmp(cfg->http_listen, "off") == 0)
        return 0;
    rc = pi_http_start(http, cfg->http_listen, *metrics, err);
    if (rc)
        return rc;
    pi_info("serving /metrics, /healthz and /readyz on %s (port %d)",
            cfg->http_listen, pi_http_port(*http));
    if (interval > 1000)
        interval = 1000;
    /* A dry run needs no database: nothing to probe, nothing to wait for. */
    if (cfg->replay && cfg->dry_run)
        pi_metrics_set_no_database(*metrics);
    else
        pi_probe_start(probe, cfg->pg, interval, cfg->health_stall_ms / 2,
                       *metrics);
    return 0;
}

int pi_cmd_consume(int argc, char **argv, unsigned cmd, pi_cmd_finish_fn finish)
{
    const char *name = cmd == PI_CMD_REPLAY ? "replay" : "run";
    pi_config cfg;
    pi_consumer *c = NULL;
    pi_metrics *metrics = NULL;
    pi_http *http = NULL;
    pi_probe *probe = NULL;
    pi_partkeep *keeper = NULL;
    pi_rollup *rollup = NULL;
    pi_err err;
    pthread_t watchdog;
    int rc, code;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--print-config") == 0) {
            pi_config_print_sample(stdout);
            return PI_EXIT_OK;
        }
    }
    pi_config_init(&cfg);
    cfg.replay = cmd == PI_CMD_REPLAY;
    code = pi_cmd_setup(&cfg, cmd, argc, argv);
    if (code >= 0)
        goto cleanup;
    if (cfg.n_args > 0) {
        fprintf(stderr, "presence-ingest %s: unexpected argument '%s'\n", name,
                cfg.args[0]);
        code = PI_EXIT_USAGE;
        goto cleanup;
    }

    sem_init(&stop_sem, 0, 0);
    if (pthread_create(&watchdog, NULL, watchdog_main, &cfg) == 0)
        pthread_detach(watchdog);
    pi_cmd_on_stop(on_signal);

    rc = serve_http(&cfg, &metrics, &http, &probe, &err);
    if (rc == 0)
        rc = pi_consumer_new(&c, &cfg, &stop_requested, &err);
    /* Partitions ahead, on the keeper's own connection, never in a batch's
     * way (partition.h). After the consumer connected: a database that
     * refuses the service is one error line, not a keeper's warning too. */
    if (rc == 0 && cfg.partition_check_ms > 0 && !(cfg.replay && cfg.dry_run))
        pi_partkeep_start(&keeper, cfg.pg, cfg.partition_check_ms);
    /* After the consumer checked the schema; a dry run writes nothing. */
    if (rc == 0 && cfg.rollup_interval_ms > 0 && !cfg.dry_run) {
        pi_rollup_start(&rollup, cfg.pg, cfg.rollup_interval_ms,
                        cfg.pg_tx_timeout_ms);
        pi_rollup_set_metrics(rollup, metrics);
    }
    /* run's /metrics carries the fleet gauges (one instance publishes). */
    if (rollup != NULL && cmd == PI_CMD_RUN)
        pi_rollup_publish_fleet(rollup, metrics);
    if (rc == 0) {
        rc = pi_consumer_run(c, &err);
        if (finish)
            finish(c, &cfg);
    }
    if (rc != 0)
        pi_error("%s: %s", name, err.msg);
    code = pi_cmd_exit_code(rc);
cleanup:
    /* The server reads the consumer's Kafka handle: stop it first. */
    pi_http_stop(http);
    pi_probe_stop(probe);
    pi_partkeep_stop(keeper);
    pi_rollup_stop(rollup);
    pi_consumer_destroy(c);
    pi_metrics_destroy(metrics);
    pi_config_fini(&cfg);
    return code;
}
