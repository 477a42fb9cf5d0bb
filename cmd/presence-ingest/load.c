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
    int64_t line; /* number of the line being read, from 1 */
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

static int add_line(loader *l, const char *p, size_t len, pi_err *err)
{
    pi_batch_add(l->batch, l->dec, l->topic, -1, l->line, NULL, 0, p, len);
    if ((int64_t)pi_batch_messages(l->batch) >= l->batch_size ||
        (int64_t)pi_batch_bytes(l->batch) >= l->batch_bytes)
        return flush(l, err);
    return 0;
}

/* A line longer than max_message_bytes: only its first max_message_bytes
 * are held (memory stays bounded whatever the input), and they are what the
 * too_large reject keeps as payload; the detail gives the full length. */
static int add_too_large(loader *l, const char *prefix, uint64_t total,
                         pi_err *err)
{
    char detail[160];

    snprintf(detail, sizeof(detail),
             "value of %" PRIu64 " bytes is larger than max-message-bytes "
             "%zu; payload holds its first %zu bytes",
             total, l->max_bytes, l->max_bytes);
    pi_batch_add_reject(l->batch, l->topic, -1, l->line, NULL, 0, prefix,
                        l->max_bytes, PI_REJ_TOO_LARGE, detail);
    if ((int64_t)pi_batch_messages(l->batch) >= l->batch_size ||
        (int64_t)pi_batch_bytes(l->batch) >= l->batch_bytes)
        return flush(l, err);
    return 0;
}

/* Split the input into lines and feed them to the batch. A line is a value
 * without its "\n" and one trailing "\r" ("\r\n" files). A final line without
 * a newline is a message; the newline ending the last line does not start
 * another one. */
static int read_all(loader *l, pi_err *err)
{
    size_t cap =
        l->max_bytes + 2 > READ_CHUNK * 2 ? l->max_bytes + 2 : READ_CHUNK * 2;
    char *buf = pi_malloc(cap), *prefix = NULL;
    size_t start = 0, end = 0;
    uint64_t long_len = 0; /* > 0: inside an overlong line */
    int eof = 0, rc = 0;

    l->line = 1;
    while (!atomic_load(&load_cancel)) {
        char *nl = memchr(buf + start, '\n', end - start);

        if (long_len) {
            /* Skip the rest of an overlong line, counting it (a \r before
             * the newline included: the line was too long anyway). */
            size_t n = nl ? (size_t)(nl - (buf + start)) : end - start;
            long_len += n;
            start += n;
            if (nl || (eof && start == end)) {
                if (nl)
                    start++;
                rc = add_too_large(l, prefix, long_len - 1, err);
                long_len = 0;
                l->line++;
                if (rc)
                    break;
                continue;
            }
        } else if (nl) {
            size_t len = (size_t)(nl - (buf + start));
            if (len > 0 && nl[-1] == '\r')
                len--;
            /* Overlong lines get the same reject whether or not they
             * happened to fit in the buffer. */
            if (len > l->max_bytes)
                rc = add_too_large(l, buf + start, len, err);
            else
                rc = add_line(l, buf + start, len, err);
            start = (size_t)(nl - buf) + 1;
            l->line++;
            if (rc)
                break;
            continue;
        } else if (end - start > l->max_bytes + 1 ||
                   (end - start == l->max_bytes + 1 && buf[end - 1] != '\r')) {
            /* No newline within max + 1 bytes (+1: a trailing \r does not
             * count): too large. long_len counts 1 + the bytes seen. */
            if (prefix == NULL)
                prefix = pi_malloc(l->max_bytes);
            memcpy(prefix, buf + start, l->max_bytes);
            long_len = 1 + (end - start);
            start = end;
            continue;
        } else if (eof) {
            size_t len = end - start;
            if (len > 0 && buf[end - 1] == '\r')
                len--;
            if (len > l->max_bytes)
                rc = add_too_large(l, buf + start, len, err);
            else if (end > start)
                rc = add_line(l, buf + start, len, err);
            break;
        }
        if (eof)
            break;
        /* Need more input: keep the partial line at the front. */
        if (start > 0) {
            memmove(buf, buf + start, end - start);
            end -= start;
            start = 0;
        }
        ssize_t n = read(l->fd, buf + end, cap - end);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = pi_err_set(err, PI_EFATAL, "reading %s: %s", l->topic,
                            strerror(errno));
            break;
        }
        if (n == 0)
            eof = 1;
        end += (size_t)n;
    }
    if (rc == 0 && atomic_load(&load_cancel))
        rc =
            pi_err_set(err, PI_ERETRY, "interrupted at line %" PRId64, l->line);
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
    free(prefix);
    free(buf);
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
