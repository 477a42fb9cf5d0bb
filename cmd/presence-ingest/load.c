/* load.c -- `presence-ingest load [FILE|-]`: one message value per line */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "presence/batch.h"
#include "presence/config.h"
#include "presence/lines.h"
#include "presence/log.h"
#include "presence/mem.h"
#include "presence/writer.h"
#include "presence/writer_pool.h"

/* Reads at least this much at a time. */
#define READ_CHUNK (1024 * 1024)

static atomic_int load_cancel;

/* First SIGINT/SIGTERM: stop reading and stop retrying; what is committed
 * stays (each batch is one transaction), the summary is printed, exit 1.
 * Second: exit at once, still safe. */
static void on_signal(int sig)
{
    if (atomic_exchange(&load_cancel, 1)) {
        static const char msg[] = "second signal: exiting now\n";
        ssize_t rc = write(STDERR_FILENO, msg, sizeof(msg) - 1);
        (void)rc;
        _exit(128 + sig);
    }
}

typedef struct loader {
    const char *topic; /* the path as given, "-" for stdin */
    int fd;
    pi_batch *batch; /* being filled */
    pi_decoder *dec;
    pi_writer_pool *pool;
    pi_write_stats stats; /* the pool's totals, at the end */
    int64_t batch_size, batch_bytes;
    size_t max_bytes;
} loader;

/* Hand the batch to the writers (it is written while the next one fills). */
static int flush(loader *l, pi_err *err)
{
    int rc;

    if (pi_batch_messages(l->batch) == 0)
        return 0;
    rc = pi_writer_pool_submit(l->pool, l->batch, err);
    l->batch = pi_writer_pool_take(l->pool);
    return rc;
}

static int add_line(loader *l, const pi_line *line, pi_err *err)
{
    pi_batch_add(l->batch, l->dec, l->topic, -1, line->number, NULL, 0,
                 line->ptr, line->len);
    if ((int64_t)pi_batch_messages(l->batch) >= l->batch_size ||
        (int64_t)pi_batch_bytes(l->batch) >= l->batch_bytes)
        return flush(l, err);
    return 0;
}

/* A line longer than max_message_bytes: only its first max_message_bytes
 * are held (memory stays bounded whatever the input, lines.h), and they are
 * what the too_large reject keeps as payload; the detail gives the full
 * length. */
static int add_too_large(loader *l, const pi_line *line, pi_err *err)
{
    char detail[160];

    snprintf(detail, sizeof(detail),
             "value of %" PRIu64 " bytes is larger than max-message-bytes "
             "%zu; payload holds its first %zu bytes",
             line->total, l->max_bytes, l->max_bytes);
    pi_batch_add_reject(l->batch, l->topic, -1, line->number, NULL, 0,
                        line->ptr, line->len, PI_REJ_TOO_LARGE, detail);
    if ((int64_t)pi_batch_messages(l->batch) >= l->batch_size ||
        (int64_t)pi_batch_bytes(l->batch) >= l->batch_bytes)
        return flush(l, err);
    return 0;
}

/* Feed the input's lines (lines.h) to the batch. */
static int read_all(loader *l, pi_err *err)
{
    pi_lines *lines;
    pi_line line = {NULL, 0, 0, 0}; /* number: of the last line read */
    int rc = 0;

    pi_lines_new(&lines, l->max_bytes, READ_CHUNK * 2);
    while (rc == 0 && !atomic_load(&load_cancel)) {
        pi_lines_status st = pi_lines_next(lines, &line);
        if (st == PI_LINES_LINE) {
            rc = add_line(l, &line, err);
        } else if (st == PI_LINES_TOO_LONG) {
            rc = add_too_large(l, &line, err);
        } else if (st == PI_LINES_END) {
            break;
        } else {
            char *p;
            size_t n;
            pi_lines_space(lines, &p, &n);
            ssize_t got = read(l->fd, p, n);
            if (got < 0 && errno == EINTR)
                continue;
            if (got < 0) {
                rc = pi_err_set(err, PI_EFATAL, "reading %s: %s", l->topic,
                                strerror(errno));
                break;
            }
            pi_lines_fill(lines, (size_t)got);
        }
    }
    if (rc == 0 && atomic_load(&load_cancel))
        rc = pi_err_set(err, PI_ERETRY, "interrupted at line %" PRId64,
                        line.number + 1);
    if (rc == 0)
        rc = flush(l, err);
    if (rc == 0) {
        rc = pi_writer_pool_finish(l->pool, err);
    } else {
        /* Still wait for what is in flight (cancelled, if interrupted):
         * the summary is what committed. */
        pi_err later;
        int later_rc = pi_writer_pool_finish(l->pool, &later);
        (void)later_rc; /* err already says why it stopped */
    }
    pi_lines_destroy(lines);
    return rc;
}

int pi_cmd_load(int argc, char **argv)
{
    pi_config cfg;
    pi_writer_opts opts;
    loader l;
    pi_err err;
    struct sigaction sa;
    struct timespec t0, t1;
    int rc, code;

    memset(&l, 0, sizeof(l));
    l.fd = -1;
    pi_config_init(&cfg);
    code = pi_cmd_setup(&cfg, PI_CMD_LOAD, argc, argv);
    if (code >= 0)
        goto cleanup;
    code = PI_EXIT_USAGE;
    if (cfg.n_args > 1) {
        fprintf(stderr, "presence-ingest load: unexpected argument '%s'\n",
                cfg.args[1]);
        goto cleanup;
    }
    l.topic = cfg.n_args ? cfg.args[0] : "-";
    if (strcmp(l.topic, "-") == 0) {
        l.fd = STDIN_FILENO;
    } else {
        struct stat st;
        l.fd = open(l.topic, O_RDONLY | O_CLOEXEC);
        if (l.fd < 0) {
            fprintf(stderr, "presence-ingest load: cannot open '%s': %s\n",
                    l.topic, strerror(errno));
            goto cleanup;
        }
        if (fstat(l.fd, &st) == 0 && S_ISDIR(st.st_mode)) {
            fprintf(stderr, "presence-ingest load: cannot read '%s': %s\n",
                    l.topic, strerror(EISDIR));
            goto cleanup;
        }
    }
    l.batch_size = cfg.batch_size;
    l.batch_bytes = cfg.batch_bytes;
    l.max_bytes = (size_t)cfg.max_message_bytes;

    pi_writer_opts_init(&opts);
    opts.conninfo = cfg.pg;
    opts.group = NULL; /* load writes no ingest_offsets */
    opts.on_conflict = strcmp(cfg.on_conflict, "replace") == 0
                           ? PI_ON_CONFLICT_REPLACE
                           : PI_ON_CONFLICT_KEEP;
    opts.backoff_min_ms = (int)cfg.backoff_min_ms;
    opts.backoff_max_ms = (int)cfg.backoff_max_ms;
    opts.tx_timeout_ms = (int)cfg.pg_tx_timeout_ms;
    rc = pi_writer_pool_new(&l.pool, &opts, (size_t)cfg.writers, &load_cancel,
                            &err);
    if (rc) {
        fprintf(stderr, "presence-ingest load: %s\n", err.msg);
        code = pi_cmd_exit_code(rc);
        goto cleanup;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    l.batch = pi_writer_pool_take(l.pool);
    pi_decoder_new(&l.dec, l.max_bytes);
    pi_decoder_set_max_elements(l.dec, (size_t)cfg.max_array_elements);
    pi_decoder_set_max_depth(l.dec, (size_t)cfg.max_json_depth);
    pi_decoder_set_max_memory(l.dec, (size_t)cfg.max_decode_memory);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = read_all(&l, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    pi_writer_pool_totals(l.pool, &l.stats);
    /* The summary goes out even after a failure: it is what was committed. */
    printf("messages=%" PRIu64 " stored=%" PRIu64 " duplicates=%" PRIu64
           " conflicts=%" PRIu64 " rejected=%" PRIu64 " skipped=%" PRIu64 "\n",
           l.stats.messages, l.stats.stored, l.stats.duplicates,
           l.stats.conflicts, l.stats.rejected, l.stats.skipped);
    fflush(stdout);
    if (rc) {
        fprintf(stderr, "presence-ingest load: %s\n", err.msg);
        code = PI_EXIT_FAILURE;
        goto cleanup;
    }
    {
        double s = (double)(t1.tv_sec - t0.tv_sec) +
                   (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        pi_info("load of %s done: %" PRIu64 " messages in %" PRIu64
                " transactions, %.1f s (%.0f messages/s), %" PRIu64
                " retries, %" PRIu64 " split",
                l.topic, l.stats.messages, l.stats.batches, s,
                s > 0 ? (double)l.stats.messages / s : 0.0, l.stats.retries,
                l.stats.splits);
    }
    code = PI_EXIT_OK;
cleanup:
    if (l.fd > STDIN_FILENO)
        close(l.fd);
    pi_batch_destroy(l.batch);
    pi_decoder_destroy(l.dec);
    pi_writer_pool_destroy(l.pool);
    pi_config_fini(&cfg);
    return code;
}
