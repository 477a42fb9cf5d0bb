/* pi_gen.c -- print realistic presence messages, one per line, for tests
 *
 * usage: pi-gen COUNT [--first-id N] [--shape bare|mixed] [--bad-every K]
 *
 * Message i (0-based) holds presence id FIRST+i (FIRST defaults to a
 * CloudConnect-like id: milliseconds since 2010 shifted left by 22). With
 * --shape mixed, every 5th message is a notification envelope and every 7th
 * an envelope around a skipped `track` event plus the presence, in an array.
 * With --bad-every K, every K-th message (i % K == K-1) is malformed JSON
 * instead, and holds no presence. Deterministic: same arguments, same output.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const types[] = {"connect", "disconnect", "connect",
                                    "failed_connect", "declare_asset"};
static const char *const reasons[] = {
    "cold_boot",
    "idle_out",
    "ppp_lost",
    "socket_closed",
    "network_error",
    "client_disconnect",
    "server_shutdown",
    "network_activity_timeout",
    "Unhandled reason 95074823, please contact maintainer"};
static const char *const offsets[] = {"Z", "+02:00", "-05:30", "+00:00",
                                      "+09:45"};

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void presence(char *buf, size_t cap, int64_t id, uint64_t i)
{
    const char *type = types[i % 5];
    int64_t conn = id - 1000 - (int64_t)(next_rand() % 100000);
    char asset[32];

    if (strcmp(type, "failed_connect") == 0)
        snprintf(asset, sizeof(asset), "null");
    else
        snprintf(asset, sizeof(asset), "\"35%013" PRIu64 "\"",
                 (uint64_t)(next_rand() % 10000000000000ULL));
    snprintf(buf, cap,
             "{\"id\":%" PRId64 ",\"id_str\":\"%" PRId64
             "\",\"connection_id\":%" PRId64 ",\"connection_id_str\":\"%" PRId64
             "\",\"type\":\"%s\",\"reason\":\"%s\",\"asset\":%s,"
             "\"time\":\"2016-%02d-%02dT%02d:%02d:%02d.%03d%s\"}",
             id, id, conn, conn, type, reasons[next_rand() % 9], asset,
             (int)(1 + i % 12), (int)(1 + i % 28), (int)(i % 24), (int)(i % 60),
             (int)((i / 60) % 60), (int)(i % 1000), offsets[i % 5]);
}

int main(int argc, char **argv)
{
    uint64_t count, bad_every = 0;
    int64_t first = (int64_t)(220000000000ULL << 22);
    int mixed = 0;
    char p[1024];

    if (argc < 2) {
        fprintf(stderr, "usage: pi-gen COUNT [--first-id N] "
                        "[--shape bare|mixed] [--bad-every K]\n");
        return 2;
    }
    count = strtoull(argv[1], NULL, 10);
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--first-id") == 0)
            first = strtoll(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--shape") == 0)
            mixed = strcmp(argv[i + 1], "mixed") == 0;
        else if (strcmp(argv[i], "--bad-every") == 0)
            bad_every = strtoull(argv[i + 1], NULL, 10);
        else {
            fprintf(stderr, "pi-gen: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    for (uint64_t i = 0; i < count; i++) {
        if (bad_every && i % bad_every == bad_every - 1) {
            printf("{\"id\":%" PRIu64 ",\"oops\"\n", i);
            continue;
        }
        presence(p, sizeof(p), first + (int64_t)i, i);
        if (mixed && i % 7 == 3)
            printf("[{\"meta\":{\"event\":\"track\"},\"payload\":{\"id\":1}},"
                   "{\"meta\":{\"account\":\"test\",\"event\":\"presence\"},"
                   "\"payload\":%s}]\n",
                   p);
        else if (mixed && i % 5 == 1)
            printf("{\"meta\":{\"event\":\"presence\"},\"payload\":%s}\n", p);
        else
            printf("%s\n", p);
    }
    return 0;
}
