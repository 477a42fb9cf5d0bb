/* pi_gen.c -- print realistic presence messages, one per line, for tests
 *
 * usage: pi-gen COUNT [--first-id N] [--shape bare|mixed] [--bad-every K]
 *                    [--ids seq|time]
 *        pi-gen COUNT --shape fleet [--assets N] [--end MS|now] [--days D]
 *               [--seed S] [--incidents H]
 *
 * Message i (0-based) holds presence id FIRST+i (FIRST defaults to a
 * CloudConnect-like id: milliseconds since 2010 shifted left by 22), made by
 * the same generator as the C tests and benchmarks (pi_test_gen_presence).
 * With --ids time, message i holds id FIRST + ((i * 250) << 22) instead: its
 * top bits are its time, four messages a second, as CloudConnect's are.
 * With
 * --shape mixed, every 5th message is a notification envelope and every 7th
 * an envelope around a skipped `track` event plus the presence, in an array.
 * With --bad-every K, every K-th message (i % K == K-1) is malformed JSON
 * instead, and holds no presence. Deterministic: same arguments, same output.
 *
 * --shape fleet prints about COUNT presences (at most COUNT) of a realistic
 * fleet of N assets (default 1000) instead, sessions and all, ending around
 * --end (ms since 1970, or now; default 2026-03-30T00:00:00Z) and starting
 * --days before it if that is earlier than the events need, from the
 * generator of pi_test_fleet.h (deterministic for a given --end and --seed).
 * --incidents H adds what a quickstart shows (pi_fleet_incidents): a server
 * restart H hours before the end that disconnects every online asset at
 * once, one asset that flaps, one offline for the last 3 days.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pi_test_db.h"
#include "pi_test_fleet.h"

#include <time.h>

int main(int argc, char **argv)
{
    uint64_t count, bad_every = 0;
    int64_t first = (int64_t)(220000000000ULL << 22);
    int mixed = 0, fleet = 0, timed = 0;
    uint64_t assets = 1000, seed = 1;
    int64_t end_ms = INT64_C(1774828800000), days = 0, incidents_h = 0;
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
        else if (strcmp(argv[i], "--shape") == 0) {
            mixed = strcmp(argv[i + 1], "mixed") == 0;
            fleet = strcmp(argv[i + 1], "fleet") == 0;
        } else if (strcmp(argv[i], "--ids") == 0)
            timed = strcmp(argv[i + 1], "time") == 0;
        else if (strcmp(argv[i], "--assets") == 0)
            assets = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--days") == 0)
            days = strtoll(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--incidents") == 0)
            incidents_h = strtoll(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--seed") == 0)
            seed = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--end") == 0) {
            if (strcmp(argv[i + 1], "now") == 0)
                end_ms = (int64_t)time(NULL) * 1000;
            else
                end_ms = strtoll(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--bad-every") == 0)
            bad_every = strtoull(argv[i + 1], NULL, 10);
        else {
            fprintf(stderr, "pi-gen: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (fleet) {
        pi_fleet *f =
            pi_fleet_new(assets, count, end_ms, days * 86400000, seed);
        size_t n;
        if (incidents_h > 0)
            pi_fleet_incidents(f, end_ms - incidents_h * 3600000,
                               INT64_C(3) * 86400000);
        while ((n = pi_fleet_next(f, p, sizeof(p))) > 0)
            printf("%.*s\n", (int)n, p);
        pi_fleet_destroy(f);
        return 0;
    }
    for (uint64_t i = 0; i < count; i++) {
        if (bad_every && i % bad_every == bad_every - 1) {
            printf("{\"id\":%" PRIu64 ",\"oops\"\n", i);
            continue;
        }
        pi_test_gen_presence_ex(p, sizeof(p), first, i, timed);
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
