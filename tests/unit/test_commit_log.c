/* test_commit_log.c -- which recent commits a database that went back lost */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "presence/commit_log.h"

/* A batch of `messages` messages that reached next_offset on part. */
static void add(pi_commit_log *log, uint32_t part, int64_t next,
                uint64_t messages)
{
    pi_commit_pos pos = {part, next};
    pi_write_stats st;

    memset(&st, 0, sizeof(st));
    st.messages = messages;
    st.stored = messages;
    st.batches = 1;
    pi_commit_log_add(log, &pos, 1, &st);
}

static void test_commit_log__undoes_the_lost_suffix(void **state)
{
    pi_commit_log *log;
    pi_write_stats undone;
    int overflow;

    (void)state;
    pi_commit_log_new(&log, 8);
    /* Partition 0: batches to 100, 200, 300; partition 1: to 50, 90;
     * interleaved in commit order 0:100 1:50 0:200 1:90 0:300. */
    add(log, 0, 100, 100);
    add(log, 1, 50, 50);
    add(log, 0, 200, 100);
    add(log, 1, 90, 40);
    add(log, 0, 300, 100);
    /* The database kept 0 up to 200 and 1 up to 50: the last two commits
     * (1:90, 0:300) are gone, 140 messages. */
    int64_t stored[2] = {200, 50};
    memset(&undone, 0, sizeof(undone));
    assert_int_equal(pi_commit_log_undo(log, stored, 2, &undone, &overflow), 2);
    assert_int_equal(undone.messages, 140);
    assert_int_equal(undone.batches, 2);
    assert_int_equal(overflow, 0);
    /* Asked again with the same positions: nothing more to undo. */
    memset(&undone, 0, sizeof(undone));
    assert_int_equal(pi_commit_log_undo(log, stored, 2, &undone, &overflow), 0);
    assert_int_equal(undone.messages, 0);
    pi_commit_log_destroy(log);
}

static void test_commit_log__unknown_and_ahead_are_not_lost(void **state)
{
    pi_commit_log *log;
    pi_write_stats undone;
    int overflow;

    (void)state;
    pi_commit_log_new(&log, 8);
    add(log, 0, 100, 100);
    add(log, 1, 50, 50);
    /* Partition 1 is no longer ours (unknown), partition 0 moved ahead (a
     * newer owner): nothing was lost. */
    int64_t stored[2] = {150, INT64_MAX};
    memset(&undone, 0, sizeof(undone));
    assert_int_equal(pi_commit_log_undo(log, stored, 2, &undone, &overflow), 0);
    /* No row at all any more (-1): everything of partition 0 is gone. */
    stored[0] = -1;
    assert_int_equal(pi_commit_log_undo(log, stored, 2, &undone, &overflow), 2);
    assert_int_equal(undone.messages, 150);
    pi_commit_log_destroy(log);
}

static void test_commit_log__overflow_is_reported(void **state)
{
    pi_commit_log *log;
    pi_write_stats undone;
    int overflow;

    (void)state;
    pi_commit_log_new(&log, 2);
    add(log, 0, 10, 10);
    add(log, 0, 20, 10);
    add(log, 0, 30, 10); /* pushes out the first */
    int64_t stored[1] = {0};
    memset(&undone, 0, sizeof(undone));
    /* Everything is gone, more than the log holds. */
    assert_int_equal(pi_commit_log_undo(log, stored, 1, &undone, &overflow), 2);
    assert_int_equal(undone.messages, 20);
    assert_int_equal(overflow, 1);
    /* A loss inside what the log holds is exact. */
    add(log, 0, 10, 10);
    add(log, 0, 20, 10);
    add(log, 0, 30, 10);
    stored[0] = 20;
    memset(&undone, 0, sizeof(undone));
    assert_int_equal(pi_commit_log_undo(log, stored, 1, &undone, &overflow), 1);
    assert_int_equal(overflow, 0);
    pi_commit_log_destroy(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commit_log__undoes_the_lost_suffix),
        cmocka_unit_test(test_commit_log__unknown_and_ahead_are_not_lost),
        cmocka_unit_test(test_commit_log__overflow_is_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
