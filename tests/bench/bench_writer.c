/* bench_writer.c -- the writer's rows/s against plain COPY and row-at-a-time
 *
 * usage: bench_writer CONNINFO [ROWS [BATCH [RUNS]]]   (1000000 5000 3)
 *
 * CONNINFO is an admin connection (database "postgres" of a server started
 * with tests/support/pg.sh). Each run creates a fresh database, migrates it,
 * then times, on the same generated realistic presences:
 *   first   pi_writer_write of every batch into the empty presences table
 *           (the batches are decoded before the clock starts: decoding is
 *           timed on its own, it overlaps the write in `run`)
 *   copy    interleaved with first, batch by batch: a plain binary COPY of
 *           the same rows into presences_copy, a table LIKE presences
 *           INCLUDING ALL (same indexes), one transaction per batch: the
 *           ceiling of any batching writer
 *   text    the same, interleaved too, as COPY text into presences_text:
 *           what the binary format buys
 *   replay  the same batches again through the writer: all duplicates
 *   naive   INSERT … ON CONFLICT DO NOTHING, one row per transaction, on a
 *           sample of 20000 rows: what a naive consumer does
 * and prints rows/s and the ratios to plain COPY, then the medians.
 */
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pi_test_db.h"
#include "presence/batch.h"
#include "presence/decode.h"
#include "presence/mem.h"
#include "presence/migrate.h"
#include "presence/writer.h"

#define NAIVE_SAMPLE 20000
#define PG_EPOCH_US INT64_C(946684800000000)

#define FIRST_ID PI_TEST_FIRST_ID

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, PGconn *conn)
{
    fprintf(stderr, "bench_writer: %s: %s\n", what,
            conn ? PQerrorMessage(conn) : "");
    exit(1);
}

static void exec_ok(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK &&
        PQresultStatus(res) != PGRES_TUPLES_OK)
        die(sql, conn);
    PQclear(res);
}

/* conninfo of database name on the same server. */
static char *with_db(const char *admin, const char *name)
{
    size_t n = strlen(admin) + strlen(name) + 16;
    char *s = pi_malloc(n);
    snprintf(s, n, "%s dbname=%s", admin, name);
    return s;
}

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static void put(buf *b, const void *p, size_t n)
{
    pi_grow((void **)&b->p, &b->cap, b->len + n, 1);
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void put_be(buf *b, uint64_t v, int bytes)
{
    unsigned char x[8];
    for (int i = bytes - 1; i >= 0; i--) {
        x[i] = (unsigned char)v;
        v >>= 8;
    }
    put(b, x, (size_t)bytes);
}

static void field_int(buf *b, uint64_t v, int bytes)
{
    put_be(b, (uint64_t)bytes, 4);
    put_be(b, v, bytes);
}

static void field_str(buf *b, const char *p, size_t n)
{
    if (p == NULL) {
        put_be(b, UINT32_MAX, 4);
        return;
    }
    put_be(b, n, 4);
    put(b, p, n);
}

/* Plain binary COPY of one batch's presences into presences_copy, in its
 * own transaction (COPY alone is one): the time it took. */
static double plain_copy(PGconn *conn, buf *b, pi_batch *batch,
                         const char *topic)
{
    const pi_decode_result *r = pi_batch_result(batch);
    PGresult *res;
    double t0;

    b->len = 0;
    put(b, "PGCOPY\n\377\r\n", 11);
    put_be(b, 0, 4);
    put_be(b, 0, 4);
    for (size_t i = 0; i < r->n_presences; i++) {
        const pi_presence *pr = &r->presences[i];
        const pi_msg_meta *m = pi_batch_msg(batch, pr->tag);
        const char *type = pi_presence_type_name(pr->type);
        put_be(b, 10, 2);
        field_int(b, (uint64_t)pr->id, 8);
        field_int(b, (uint64_t)pr->connection_id, 8);
        field_str(b, type, strlen(type));
        field_str(b, pr->reason.ptr, pr->reason.len);
        field_str(b, pr->asset.ptr, pr->asset.len);
        field_int(b, (uint64_t)(pr->time_us - PG_EPOCH_US), 8);
        field_int(b, (uint64_t)(uint16_t)pr->offset_min, 2);
        field_str(b, topic, strlen(topic));
        field_int(b, (uint64_t)(uint32_t)m->partition, 4);
        field_int(b, (uint64_t)m->offset, 8);
    }
    put_be(b, UINT16_MAX, 2);
    /* The clock includes the encoding, as the writer's does. */
    t0 = now_s();
    res = PQexec(conn, "COPY presences_copy (id, connection_id, type, reason, "
                       "asset, time, time_offset_minutes, kafka_topic, "
                       "kafka_partition, kafka_offset) FROM STDIN "
                       "(FORMAT binary)");
    if (PQresultStatus(res) != PGRES_COPY_IN)
        die("COPY", conn);
    PQclear(res);
    for (size_t off = 0; off < b->len; off += 1 << 18) {
        size_t n = b->len - off < (1 << 18) ? b->len - off : (1 << 18);
        if (PQputCopyData(conn, b->p + off, (int)n) != 1)
            die("COPY data", conn);
    }
    if (PQputCopyEnd(conn, NULL) != 1)
        die("COPY end", conn);
    res = PQgetResult(conn);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        die("COPY result", conn);
    PQclear(res);
    while ((res = PQgetResult(conn)) != NULL)
        PQclear(res);
    return now_s() - t0;
}

/* The same batch as COPY text (what a writer without binary encoding
 * sends): the cost of the format, not of the writer. */
static void text_field(buf *b, const char *p, size_t n)
{
    if (p == NULL) {
        put(b, "\\N", 2);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\\' || c == '\t' || c == '\n' || c == '\r') {
            char esc[2] = {'\\', c == '\t'   ? 't'
                                 : c == '\n' ? 'n'
                                 : c == '\r' ? 'r'
                                             : '\\'};
            put(b, esc, 2);
        } else {
            put(b, &c, 1);
        }
    }
}

static double text_copy(PGconn *conn, buf *b, pi_batch *batch,
                        const char *topic)
{
    const pi_decode_result *r = pi_batch_result(batch);
    PGresult *res;
    double t0 = now_s();

    b->len = 0;
    for (size_t i = 0; i < r->n_presences; i++) {
        const pi_presence *pr = &r->presences[i];
        const pi_msg_meta *m = pi_batch_msg(batch, pr->tag);
        char line[128];
        int n;

        n = snprintf(line, sizeof(line), "%" PRId64 "\t%" PRId64 "\t%s\t",
                     pr->id, pr->connection_id,
                     pi_presence_type_name(pr->type));
        put(b, line, (size_t)n);
        text_field(b, pr->reason.ptr, pr->reason.len);
        put(b, "\t", 1);
        text_field(b, pr->asset.ptr, pr->asset.len);
        /* Epoch microseconds: to_timestamp in a text COPY is not possible, so
         * the time goes as an ISO string the server parses. */
        {
            time_t secs = (time_t)(pr->time_us / 1000000);
            struct tm tm;
            gmtime_r(&secs, &tm);
            n = snprintf(line, sizeof(line),
                         "\t%04d-%02d-%02d %02d:%02d:%02d.%06d+00\t%d\t",
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                         tm.tm_hour, tm.tm_min, tm.tm_sec,
                         (int)(pr->time_us % 1000000), (int)pr->offset_min);
        }
        put(b, line, (size_t)n);
        text_field(b, topic, strlen(topic));
        n = snprintf(line, sizeof(line), "\t%d\t%" PRId64 "\n",
                     (int)m->partition, m->offset);
        put(b, line, (size_t)n);
    }
    res = PQexec(conn, "COPY presences_text (id, connection_id, type, reason, "
                       "asset, time, time_offset_minutes, kafka_topic, "
                       "kafka_partition, kafka_offset) FROM STDIN");
    if (PQresultStatus(res) != PGRES_COPY_IN)
        die("COPY text", conn);
    PQclear(res);
    if (PQputCopyData(conn, b->p, (int)b->len) != 1 ||
        PQputCopyEnd(conn, NULL) != 1)
        die("COPY text data", conn);
    res = PQgetResult(conn);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        die("COPY text result", conn);
    PQclear(res);
    while ((res = PQgetResult(conn)) != NULL)
        PQclear(res);
    return now_s() - t0;
}

/* n rows, one INSERT … ON CONFLICT DO NOTHING per transaction. */
static double naive(PGconn *conn, pi_batch **batches, size_t n_batches,
                    size_t n, const char *topic)
{
    PGresult *res;
    double t0;
    size_t done = 0;

    res = PQprepare(conn, "ins",
                    "INSERT INTO presences_naive (id, connection_id, type, "
                    "reason, asset, time, time_offset_minutes, kafka_topic, "
                    "kafka_partition, kafka_offset) VALUES ($1, $2, $3, $4, "
                    "$5, to_timestamp($6::float8 / 1e6), $7, $8, $9, $10) "
                    "ON CONFLICT (id) DO NOTHING",
                    10, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        die("prepare", conn);
    PQclear(res);
    t0 = now_s();
    for (size_t k = 0; k < n_batches && done < n; k++) {
        const pi_decode_result *r = pi_batch_result(batches[k]);
        for (size_t i = 0; i < r->n_presences && done < n; i++, done++) {
            const pi_presence *pr = &r->presences[i];
            const pi_msg_meta *m = pi_batch_msg(batches[k], pr->tag);
            char v[10][64];
            char *reason = pi_strndup(pr->reason.ptr, pr->reason.len);
            char *asset =
                pr->asset.ptr ? pi_strndup(pr->asset.ptr, pr->asset.len) : NULL;
            const char *p[10] = {v[0],   v[1],  pi_presence_type_name(pr->type),
                                 reason, asset, v[5],
                                 v[6],   topic, v[8],
                                 v[9]};
            snprintf(v[0], 64, "%" PRId64, pr->id);
            snprintf(v[1], 64, "%" PRId64, pr->connection_id);
            snprintf(v[5], 64, "%" PRId64, pr->time_us);
            snprintf(v[6], 64, "%d", (int)pr->offset_min);
            snprintf(v[8], 64, "%d", (int)m->partition);
            snprintf(v[9], 64, "%" PRId64, m->offset);
            res = PQexecPrepared(conn, "ins", 10, p, NULL, NULL, 0);
            if (PQresultStatus(res) != PGRES_COMMAND_OK)
                die("insert", conn);
            PQclear(res);
            free(reason);
            free(asset);
        }
    }
    return now_s() - t0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    const char *admin_ci;
    size_t rows = 1000000, batch_size = 5000, n_batches;
    int runs = 3;
    const char *topic = "bench.txt";
    pi_batch **batches;
    pi_decoder *dec;
    double decode_s, r_first[16], r_replay[16], r_copy[16], r_naive[16];
    double r_text[16];
    char line[1024];

    if (argc < 2) {
        fprintf(stderr, "usage: bench_writer CONNINFO [ROWS [BATCH [RUNS]]]\n");
        return 2;
    }
    admin_ci = argv[1];
    if (argc > 2)
        rows = strtoull(argv[2], NULL, 10);
    if (argc > 3)
        batch_size = strtoull(argv[3], NULL, 10);
    if (argc > 4)
        runs = atoi(argv[4]);
    if (runs < 1 || runs > 16 || rows == 0 || batch_size == 0)
        return 2;

    /* Generate and decode once: every run writes the same batches. */
    n_batches = (rows + batch_size - 1) / batch_size;
    batches = pi_calloc(n_batches, sizeof(*batches));
    pi_decoder_new(&dec, PI_DECODE_DEFAULT_MAX_BYTES);
    decode_s = now_s();
    for (size_t i = 0; i < rows; i++) {
        size_t k = i / batch_size;
        size_t len = pi_test_gen_presence(line, sizeof(line), FIRST_ID, i);
        if (batches[k] == NULL)
            pi_batch_new(&batches[k]);
        pi_batch_add(batches[k], dec, topic, -1, (int64_t)i + 1, NULL, 0, line,
                     len);
    }
    decode_s = now_s() - decode_s;
    printf("rows=%zu batch=%zu runs=%d  generate+decode %.0f rows/s\n", rows,
           batch_size, runs, (double)rows / decode_s);

    for (int run = 0; run < runs; run++) {
        char name[64], *ci;
        PGconn *admin, *conn;
        pi_writer_opts opts;
        pi_writer *w;
        pi_write_stats st;
        pi_err err;
        int applied, version;
        double t, t_copy, t_text;
        buf cb = {0};

        snprintf(name, sizeof(name), "pi_bench_%d_%d", (int)getpid(), run);
        admin = PQconnectdb(admin_ci);
        if (PQstatus(admin) != CONNECTION_OK)
            die("connect", admin);
        snprintf(line, sizeof(line), "CREATE DATABASE %s", name);
        exec_ok(admin, line);
        ci = with_db(admin_ci, name);
        if (pi_migrate_apply(&applied, &version, ci, NULL, NULL, &err) != 0) {
            fprintf(stderr, "bench_writer: migrate: %s\n", err.msg);
            return 1;
        }
        conn = PQconnectdb(ci);
        if (PQstatus(conn) != CONNECTION_OK)
            die("connect", conn);
        exec_ok(conn, "CREATE TABLE presences_copy (LIKE presences INCLUDING "
                      "ALL); CREATE TABLE presences_naive (LIKE presences "
                      "INCLUDING ALL); CREATE TABLE presences_text (LIKE "
                      "presences INCLUDING ALL); CHECKPOINT");

        pi_writer_opts_init(&opts);
        opts.conninfo = ci;
        if (pi_writer_new(&w, &opts, &err) != 0) {
            fprintf(stderr, "bench_writer: %s\n", err.msg);
            return 1;
        }
        /* First load and plain COPY interleaved batch by batch: both tables
         * grow together, and whatever else the machine is doing weighs on
         * both alike. */
        memset(&st, 0, sizeof(st));
        t = 0;
        t_copy = 0;
        t_text = 0;
        for (size_t k = 0; k < n_batches; k++) {
            double t0 = now_s();
            if (pi_writer_write(w, batches[k], &st, &err) != 0) {
                fprintf(stderr, "bench_writer: %s\n", err.msg);
                return 1;
            }
            t += now_s() - t0;
            t_copy += plain_copy(conn, &cb, batches[k], topic);
            t_text += text_copy(conn, &cb, batches[k], topic);
        }
        r_first[run] = (double)st.stored / t;
        r_copy[run] = (double)rows / t_copy;
        r_text[run] = (double)rows / t_text;
        if (st.stored != rows) {
            fprintf(stderr, "bench_writer: stored %" PRIu64 " of %zu\n",
                    st.stored, rows);
            return 1;
        }
        exec_ok(conn, "CHECKPOINT");

        memset(&st, 0, sizeof(st));
        t = now_s();
        for (size_t k = 0; k < n_batches; k++) {
            if (pi_writer_write(w, batches[k], &st, &err) != 0) {
                fprintf(stderr, "bench_writer: %s\n", err.msg);
                return 1;
            }
        }
        t = now_s() - t;
        r_replay[run] = (double)st.duplicates / t;
        if (st.duplicates != rows) {
            fprintf(stderr, "bench_writer: %" PRIu64 " duplicates of %zu\n",
                    st.duplicates, rows);
            return 1;
        }
        pi_writer_destroy(w);

        size_t sample = rows < NAIVE_SAMPLE ? rows : NAIVE_SAMPLE;
        r_naive[run] =
            (double)sample / naive(conn, batches, n_batches, sample, topic);

        printf("run %d: first %.0f rows/s (%.2f of COPY)  replay %.0f rows/s "
               "(%.2f)  plain COPY %.0f rows/s (text format: %.0f)  "
               "row-at-a-time %.0f rows/s (%.3f)\n",
               run + 1, r_first[run], r_first[run] / r_copy[run], r_replay[run],
               r_replay[run] / r_copy[run], r_copy[run], r_text[run],
               r_naive[run], r_naive[run] / r_copy[run]);
        fflush(stdout);
        PQfinish(conn);
        free(cb.p);
        snprintf(line, sizeof(line), "DROP DATABASE %s", name);
        exec_ok(admin, line);
        PQfinish(admin);
        free(ci);
    }
    {
        double first = median(r_first, runs), replay = median(r_replay, runs);
        double copy = median(r_copy, runs), nv = median(r_naive, runs);
        double text = median(r_text, runs);
        printf("median of %d: first %.0f rows/s (%.2f of COPY)  replay %.0f "
               "rows/s (%.2f of COPY, %.2f of first)  plain COPY %.0f rows/s "
               "(text format %.0f, %.2f)  row-at-a-time %.0f rows/s (%.3f of "
               "COPY)\n",
               runs, first, first / copy, replay, replay / copy, replay / first,
               copy, text, text / copy, nv, nv / copy);
    }
    for (size_t k = 0; k < n_batches; k++)
        pi_batch_destroy(batches[k]);
    free(batches);
    pi_decoder_destroy(dec);
    return 0;
}
