/* test_watch_pending.c -- watch --offline-for's held changes: one per
 * asset, handed back in deadline order, cancelled by asset */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "watch/watch_int.h"

/* A row of three cells: seq, asset, state. */
static void hold(pi_watch__pending *p, int64_t deadline, const char *seq,
                 const char *asset)
{
    const char *row[3] = {seq, asset, NULL};
    pi_watch__pending_hold(p, deadline, row);
}

/* Pop everything due at now: the seqs, space-separated, into buf. */
static const char *due(pi_watch__pending *p, int64_t now, char *buf, size_t cap)
{
    pi_watch__held *h;
    size_t len = 0;

    buf[0] = '\0';
    while ((h = pi_watch__pending_pop_due(p, now)) != NULL) {
        assert_null(h->row[2]);
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", len ? " " : "",
                                h->row[0]);
        pi_watch__held_free(h);
    }
    return buf;
}

static void test_watch_pending__deadline_order(void **state)
{
    pi_watch__pending *p;
    char buf[256];

    (void)state;
    pi_watch__pending_new(&p, 3, 1);
    assert_true(pi_watch__pending_next(p) == INT64_MAX);
    hold(p, 300, "3", "c");
    hold(p, 100, "1", "a");
    hold(p, 500, "5", "e");
    hold(p, 200, "2", "b");
    hold(p, 400, "4", "d");
    assert_int_equal(pi_watch__pending_count(p), 5);
    assert_true(pi_watch__pending_next(p) == 100);
    assert_string_equal(due(p, 99, buf, sizeof(buf)), "");
    assert_string_equal(due(p, 250, buf, sizeof(buf)), "1 2");
    assert_true(pi_watch__pending_next(p) == 300);
    assert_string_equal(due(p, 1000, buf, sizeof(buf)), "3 4 5");
    assert_int_equal(pi_watch__pending_count(p), 0);
    pi_watch__pending_destroy(p);
}

static void test_watch_pending__one_per_asset(void **state)
{
    pi_watch__pending *p;
    char buf[256];

    (void)state;
    pi_watch__pending_new(&p, 3, 1);
    hold(p, 100, "1", "a");
    hold(p, 200, "2", "b");
    /* a goes offline again (a later disconnect): replaced, new deadline. */
    hold(p, 300, "3", "a");
    assert_int_equal(pi_watch__pending_count(p), 2);
    assert_string_equal(due(p, 250, buf, sizeof(buf)), "2");
    /* b is gone; a reconnects: dropped once, then nothing to drop. */
    assert_int_equal(pi_watch__pending_drop(p, "b"), 0);
    assert_int_equal(pi_watch__pending_drop(p, "a"), 1);
    assert_int_equal(pi_watch__pending_drop(p, "a"), 0);
    assert_string_equal(due(p, 1000, buf, sizeof(buf)), "");
    pi_watch__pending_destroy(p);
}

/* Many assets (the hash grows, the heap reorders): cancelling every other
 * one leaves the rest in deadline order, and memory is per asset. */
static void test_watch_pending__many(void **state)
{
    enum { N = 5000 };
    pi_watch__pending *p;
    pi_watch__held *h;
    char seq[16], asset[16];
    int64_t last = -1;
    size_t n = 0;

    (void)state;
    pi_watch__pending_new(&p, 3, 1);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            snprintf(seq, sizeof(seq), "%d", i);
            snprintf(asset, sizeof(asset), "x%d", i);
            /* Deadlines in a scrambled order. */
            hold(p, (int64_t)((i * 7919) % N), seq, asset);
        }
    }
    assert_int_equal(pi_watch__pending_count(p), N);
    for (int i = 0; i < N; i += 2) {
        snprintf(asset, sizeof(asset), "x%d", i);
        assert_int_equal(pi_watch__pending_drop(p, asset), 1);
    }
    while ((h = pi_watch__pending_pop_due(p, INT64_MAX - 1)) != NULL) {
        assert_true(h->deadline_ms >= last);
        last = h->deadline_ms;
        assert_int_equal(atoi(h->row[0]) % 2, 1);
        assert_int_equal(strcmp(h->asset + 1, h->row[0]), 0);
        pi_watch__held_free(h);
        n++;
    }
    assert_int_equal(n, N / 2);
    pi_watch__pending_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_watch_pending__deadline_order),
        cmocka_unit_test(test_watch_pending__one_per_asset),
        cmocka_unit_test(test_watch_pending__many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
