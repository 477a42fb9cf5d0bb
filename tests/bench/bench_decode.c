/* bench_decode.c -- decoder throughput against json-c's bare parse */
#include <json-c/json_object.h>
#include <json-c/json_tokener.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "presence/decode.h"

/* Results and the arena are reset like a batch of this many messages. */
#define BATCH 1000
#define MAX_ROUNDS 31

static const char *const reasons[] = {
    "cold_boot",
    "suspend_boot",
    "idle_out",
    "ppp_lost",
    "modem_reset",
    "sim_error",
    "write_error",
    "read_error",
    "closed_by_server",
    "socket_closed",
    "network_error",
    "client_disconnect",
    "network_activity_timeout",
    "message_ack_timeout",
    "basevalue_ack_timeout",
    "unknown_channel",
    "unknown_dynamic_channel",
    "server_shutdown",
    "Unhandled reason 95074823, please contact maintainer",
};

static const char *const offsets[] = {"Z",      "+02:00", "+01:00", "-05:00",
                                      "+05:30", "-03:00", "+00:00", "z"};

typedef struct corpus {
    char *buf;
    size_t len, cap;
    size_t *off; /* message i is buf[off[i]] .. buf[off[i + 1]] */
    size_t n;
    size_t elements; /* presences the messages hold */
} corpus;

static uint64_t rng = 0x9e3779b97f4a7c15ull;

/* xorshift64*: deterministic, so every run decodes the same messages. */
static uint64_t next(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545f4914f6cdd1dull;
}

static unsigned pick(unsigned n)
{
    return (unsigned)(next() % n);
}

static void put(corpus *c, const char *s, size_t n)
{
    void *buf = c->buf;

    pi_grow(&buf, &c->cap, c->len + n, 1);
    c->buf = buf;
    memcpy(c->buf + c->len, s, n);
    c->len += n;
}

/* One presence as CloudConnect writes it: ids near 9.1e17 whose top bits
 * are the time, a reason from the documented lists, an IMEI-like asset. */
static void put_presence(corpus *c)
{
    static const char *const types[] = {"connect",        "disconnect",
                                        "connect",        "disconnect",
                                        "failed_connect", "declare_asset"};
    char s[512], asset[32], frac[8] = "";
    uint64_t id = 911270996919452058ull + (next() % 4000000000000000ull);
    uint64_t cid = id - (next() % 10000000000ull);
    unsigned t = pick(6);
    time_t secs = (time_t)(1262304000 + (id >> 22) / 1000);
    struct tm tm;
    char when[32];

    gmtime_r(&secs, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    if (pick(4) == 0)
        snprintf(frac, sizeof(frac), ".%03u", pick(1000));
    if (t == 4)
        snprintf(asset, sizeof(asset), "null");
    else
        snprintf(asset, sizeof(asset), "\"35%06u%07u\"", pick(1000000),
                 pick(10000000));
    int n = snprintf(s, sizeof(s),
                     "{\"id\":%llu,\"connection_id\":%llu,\"id_str\":\"%llu\","
                     "\"connection_id_str\":\"%llu\",\"asset\":%s,"
                     "\"time\":\"%s%s%s\",\"type\":\"%s\",\"reason\":\"%s\"}",
                     (unsigned long long)id, (unsigned long long)cid,
                     (unsigned long long)id, (unsigned long long)cid, asset,
                     when, frac, offsets[pick(8)], types[t],
                     reasons[pick(sizeof(reasons) / sizeof(reasons[0]))]);
    put(c, s, (size_t)n);
    c->elements++;
}

static void put_envelope(corpus *c)
{
    static const char head[] =
        "{\"meta\":{\"account\":\"municio\",\"event\":\"presence\"},"
        "\"payload\":";

    put(c, head, sizeof(head) - 1);
    put_presence(c);
    put(c, "}", 1);
}

/* 70% bare, 20% envelope, 10% arrays of 2-5 of either. */
static void put_message(corpus *c)
{
    unsigned r = pick(10);

    if (r < 7) {
        put_presence(c);
    } else if (r < 9) {
        put_envelope(c);
    } else {
        unsigned k = 2 + pick(4);
        put(c, "[", 1);
        for (unsigned i = 0; i < k; i++) {
            if (i)
                put(c, ",", 1);
            if (pick(2))
                put_envelope(c);
            else
                put_presence(c);
        }
        put(c, "]", 1);
    }
}

static void build(corpus *c, size_t n)
{
    memset(c, 0, sizeof(*c));
    c->off = pi_malloc((n + 1) * sizeof(size_t));
    for (size_t i = 0; i < n; i++) {
        c->off[i] = c->len;
        put_message(c);
    }
    c->off[n] = c->len;
    c->n = n;
}

/* CPU time of this thread: the machine may be shared, and time spent
 * descheduled is nobody's throughput. Figures are per CPU second. */
static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Messages are timed in chunks, the three contenders taking turns on each
 * chunk, so that load from other processes hits all of them alike. */
#define CHUNK 5000

typedef struct contenders {
    struct json_tokener *tok;        /* bare, default flags */
    struct json_tokener *tok_strict; /* bare, the decoder's flags */
    pi_decoder *dec;
    pi_decode_result res;
    pi_arena arena;
    double t_bare, t_strict, t_dec;
    size_t stored;
} contenders;

/* json-c alone: parse each message into a tree and free it. */
static double time_bare(struct json_tokener *tok, const corpus *c, size_t lo,
                        size_t hi)
{
    size_t ok = 0;
    double t0 = now();

    for (size_t i = lo; i < hi; i++) {
        json_tokener_reset(tok);
        struct json_object *obj = json_tokener_parse_ex(
            tok, c->buf + c->off[i], (int)(c->off[i + 1] - c->off[i]));
        ok += obj != NULL;
        json_object_put(obj);
    }
    double dt = now() - t0;
    if (ok != hi - lo) {
        fprintf(stderr, "bare parse failed on %zu messages\n", hi - lo - ok);
        exit(1);
    }
    return dt;
}

static void check_batch(contenders *k)
{
    if (k->res.n_rejects > 0) {
        fprintf(stderr, "unexpected reject: %s %s\n",
                pi_reject_code_name(k->res.rejects[0].code),
                k->res.rejects[0].detail.ptr);
        exit(1);
    }
    k->stored += k->res.n_presences;
}

/* The decoder as a consumer uses it: results and arena reset per batch. */
static double time_decoder(contenders *k, const corpus *c, size_t lo, size_t hi)
{
    double t0 = now();

    for (size_t i = lo; i < hi; i++) {
        if (i % BATCH == 0) {
            check_batch(k);
            pi_decode_result_reset(&k->res);
            pi_arena_reset(&k->arena);
        }
        pi_decoder_decode(k->dec, c->buf + c->off[i], c->off[i + 1] - c->off[i],
                          (uint32_t)(i % BATCH), &k->res, &k->arena);
    }
    return now() - t0;
}

static void round_run(contenders *k, const corpus *c, int r, double *bare,
                      double *strict, double *dec)
{
    k->t_bare = k->t_strict = k->t_dec = 0;
    k->stored = 0;
    pi_decode_result_reset(&k->res);
    for (size_t lo = 0, j = 0; lo < c->n; lo += CHUNK, j++) {
        size_t hi = lo + CHUNK < c->n ? lo + CHUNK : c->n;
        if ((j + (size_t)r) % 2 == 0) {
            k->t_bare += time_bare(k->tok, c, lo, hi);
            k->t_strict += time_bare(k->tok_strict, c, lo, hi);
            k->t_dec += time_decoder(k, c, lo, hi);
        } else {
            k->t_dec += time_decoder(k, c, lo, hi);
            k->t_strict += time_bare(k->tok_strict, c, lo, hi);
            k->t_bare += time_bare(k->tok, c, lo, hi);
        }
    }
    check_batch(k);
    if (k->stored != c->elements) {
        fprintf(stderr, "stored %zu presences, expected %zu\n", k->stored,
                c->elements);
        exit(1);
    }
    *bare = (double)c->n / k->t_bare;
    *strict = (double)c->n / k->t_strict;
    *dec = (double)c->n / k->t_dec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    double bare[MAX_ROUNDS], strict[MAX_ROUNDS], dec[MAX_ROUNDS];
    corpus c;

    if (n == 0 || rounds < 1 || rounds > MAX_ROUNDS) {
        fprintf(stderr, "usage: bench_decode [messages] [rounds 1-%d]\n",
                MAX_ROUNDS);
        return 2;
    }
    build(&c, n);
    printf("%zu messages, %zu presences, %.1f MB, avg %.0f bytes/message\n",
           c.n, c.elements, (double)c.len / 1e6, (double)c.len / (double)c.n);
    contenders k;
    k.tok = json_tokener_new();
    k.tok_strict = json_tokener_new_ex(32);
    json_tokener_set_flags(k.tok_strict, JSON_TOKENER_STRICT);
    pi_decoder_new(&k.dec, 0);
    pi_decode_result_init(&k.res);
    pi_arena_init(&k.arena);
    for (int r = 0; r < rounds; r++) {
        round_run(&k, &c, r, &bare[r], &strict[r], &dec[r]);
        printf("round %d: bare %.0f msgs/s, bare strict %.0f msgs/s, "
               "decoder %.0f msgs/s, ratio %.3f\n",
               r + 1, bare[r], strict[r], dec[r], dec[r] / bare[r]);
    }
    json_tokener_free(k.tok);
    json_tokener_free(k.tok_strict);
    pi_decoder_destroy(k.dec);
    pi_decode_result_fini(&k.res);
    pi_arena_fini(&k.arena);
    double mb = median(bare, rounds), ms = median(strict, rounds);
    double md = median(dec, rounds);
    printf("median of %d (msgs per CPU second, one thread): bare "
           "json_tokener_parse_ex+json_object_put %.0f msgs/s, bare strict "
           "%.0f msgs/s, pi_decoder_decode %.0f msgs/s\n",
           rounds, mb, ms, md);
    printf("ratio decoder/bare %.3f (goal >= 0.8), decoder/bare strict "
           "%.3f\n",
           md / mb, md / ms);
    free(c.buf);
    free(c.off);
    return 0;
}
