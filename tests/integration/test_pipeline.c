/* test_pipeline.c -- the writer thread: hand-off, timeouts, cancel, destroy */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pi_test_db.h"
#include "presence/pipeline.h"

typedef struct fixture {
    char *conninfo;
    PGconn *conn;   /* the test's own connection */
    PGconn *locker; /* holds a lock on presences when a test needs a stall */
    pi_decoder *dec;
    pi_writer *w;
    atomic_int cancel;
    pi_pipeline *pipe;
} fixture;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    pi_writer_opts opts;
    pi_err err;

    f->conninfo = pi_test_db_create_migrated("pipeline");
    f->conn = pi_test_db_connect(f->conninfo);
    pi_decoder_new(&f->dec, PI_DECODE_DEFAULT_MAX_BYTES);
    atomic_init(&f->cancel, 0);
    pi_writer_opts_init(&opts);
    opts.conninfo = f->conninfo;
    opts.group = "g";
    opts.backoff_min_ms = 10;
    opts.backoff_max_ms = 100;
    opts.cancel = &f->cancel;
    if (pi_writer_new(&f->w, &opts, &err) != 0)
        fail_msg("pi_writer_new: %s", err.msg);
    pi_pipeline_new(&f->pipe, f->w, &f->cancel);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    pi_pipeline_destroy(f->pipe);
    pi_writer_destroy(f->w);
    PQfinish(f->locker);
    PQfinish(f->conn);
    pi_test_db_drop(f->conninfo);
    pi_decoder_destroy(f->dec);
    free(f->conninfo);
    free(f);
    return 0;
}

/* A batch of n generated presences at offsets first..first+n-1. */
static pi_batch *make_batch(fixture *f, int64_t first, int n)
{
    pi_batch *batch;
    char buf[1024];

    pi_batch_new(&batch);
    for (int i = 0; i < n; i++) {
        size_t len = pi_test_gen_presence(buf, sizeof(buf), PI_TEST_FIRST_ID,
                                          (uint64_t)(first + i));
        pi_batch_add(batch, f->dec, "t", 0, first + i, NULL, 0, buf, len);
    }
    return batch;
}

static void lock_presences(fixture *f)
{
    f->locker = pi_test_db_connect(f->conninfo);
    pi_test_db_exec(f->locker,
                    "BEGIN; LOCK TABLE presences IN ACCESS EXCLUSIVE MODE");
}

static void unlock_presences(fixture *f)
{
    pi_test_db_exec(f->locker, "COMMIT");
}

static void test_pipeline__submit_then_collect(void **state)
{
    fixture *f = *state;
    pi_batch *batch = make_batch(f, 0, 10), *back;
    pi_write_stats st;
    pi_err err;
    int rc = -99;

    assert_true(pi_pipeline_idle(f->pipe));
    /* Nothing in flight: nothing to collect. */
    assert_int_equal(pi_pipeline_collect(f->pipe, 0, &back, &rc, &st, &err),
                     PI_ERETRY);
    assert_null(back);
    pi_pipeline_submit(f->pipe, batch);
    assert_false(pi_pipeline_idle(f->pipe));
    assert_int_equal(pi_pipeline_collect(f->pipe, -1, &back, &rc, &st, &err),
                     0);
    assert_ptr_equal(back, batch); /* the same batch comes back */
    assert_int_equal(rc, 0);
    assert_int_equal(st.messages, 10);
    assert_int_equal(st.stored, 10);
    assert_true(pi_pipeline_idle(f->pipe));
    assert_int_equal(pi_test_db_int(f->conn, "SELECT count(*) FROM presences"),
                     10);
    pi_batch_destroy(back);
}

static void test_pipeline__stalled_write_times_out_then_cancels(void **state)
{
    fixture *f = *state;
    pi_batch *batch = make_batch(f, 0, 10), *back;
    pi_write_stats st;
    pi_err err;
    int64_t t0;
    int rc = -99;

    lock_presences(f);
    pi_pipeline_submit(f->pipe, batch);
    /* The write waits on the lock: a bounded collect comes back empty. */
    t0 = now_ms();
    assert_int_equal(pi_pipeline_collect(f->pipe, 300, &back, &rc, &st, &err),
                     PI_ERETRY);
    assert_true(now_ms() - t0 >= 250);
    assert_false(pi_pipeline_idle(f->pipe));

    /* Cancel: the statement is interrupted and the batch comes back
     * unwritten, at once, although the lock is still held. */
    t0 = now_ms();
    pi_pipeline_cancel(f->pipe);
    assert_int_equal(pi_pipeline_collect(f->pipe, 10000, &back, &rc, &st, &err),
                     0);
    assert_true(now_ms() - t0 < 5000);
    assert_ptr_equal(back, batch);
    assert_int_equal(rc, PI_ERETRY);
    assert_int_equal(st.stored, 0);
    unlock_presences(f);
    assert_int_equal(pi_test_db_int(f->conn, "SELECT count(*) FROM presences"),
                     0);

    /* Submitted again (the cancel flag is cleared), it is written. */
    pi_pipeline_submit(f->pipe, back);
    assert_int_equal(pi_pipeline_collect(f->pipe, -1, &back, &rc, &st, &err),
                     0);
    assert_int_equal(rc, 0);
    assert_int_equal(st.stored, 10);
    pi_batch_destroy(back);
}

static void test_pipeline__destroy_gives_up_a_stalled_write(void **state)
{
    fixture *f = *state;
    int64_t t0;

    lock_presences(f);
    pi_pipeline_submit(f->pipe, make_batch(f, 0, 10));
    t0 = now_ms();
    pi_pipeline_destroy(f->pipe); /* frees the batch it still holds */
    f->pipe = NULL;
    assert_true(now_ms() - t0 < 5000);
    unlock_presences(f);
    assert_int_equal(pi_test_db_int(f->conn, "SELECT count(*) FROM presences"),
                     0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pipeline__submit_then_collect,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_pipeline__stalled_write_times_out_then_cancels, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_pipeline__destroy_gives_up_a_stalled_write, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
