/* test_writer_pool.c -- several writers: which writer a partition goes to,
 * and input order kept for an id written in many batches */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/consumer_int.h"
#include "pi_test_db.h"
#include "presence/writer_pool.h"

/* The id written in every batch, in one version per batch. */
#define SHARED_ID INT64_C(922746890000000000)
#define BATCHES 16
#define PER_BATCH 50

typedef struct fixture {
    char *conninfo;
    PGconn *conn;
    pi_decoder *dec;
    atomic_int stop;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));

    f->conninfo = pi_test_db_create_migrated("writer_pool");
    f->conn = pi_test_db_connect(f->conninfo);
    pi_decoder_new(&f->dec, PI_DECODE_DEFAULT_MAX_BYTES);
    atomic_init(&f->stop, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    pi_decoder_destroy(f->dec);
    PQfinish(f->conn);
    pi_test_db_drop(f->conninfo);
    free(f->conninfo);
    free(f);
    return 0;
}

/* Partition p goes to writer p mod N, worked out by hand for N = 1, 2, 3
 * and 4; -1 (a message with no partition) to writer 0. */
static void test_writer_pool__partition_to_writer(void **state)
{
    static const struct {
        int32_t partition;
        size_t n, lane;
    } cases[] = {
        {0, 1, 0},  {5, 1, 0},    {0, 2, 0},   {1, 2, 1},  {2, 2, 0},
        {3, 2, 1},  {11, 2, 1},   {0, 3, 0},   {4, 3, 1},  {5, 3, 2},
        {6, 3, 0},  {7, 4, 3},    {8, 4, 0},   {13, 4, 1}, {-1, 3, 0},
        {-1, 1, 0}, {31, 32, 31}, {32, 32, 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t got = pi_consumer__lane_index(cases[i].partition, cases[i].n);
        if (got != cases[i].lane)
            fail_msg("partition %d of %zu writers: writer %zu, want %zu",
                     (int)cases[i].partition, cases[i].n, got, cases[i].lane);
    }
}

static void add_presence(fixture *f, pi_batch *batch, int64_t line, int64_t id,
                         int64_t connection_id)
{
    char buf[512];
    int n = snprintf(buf, sizeof(buf),
                     "{\"id\":%" PRId64 ",\"id_str\":\"%" PRId64
                     "\",\"connection_id\":%" PRId64
                     ",\"connection_id_str\":\"%" PRId64
                     "\",\"type\":\"connect\",\"reason\":"
                     "\"client_disconnect\",\"asset\":\"358084525962000\","
                     "\"time\":\"2016-12-21T07:06:40.000Z\"}",
                     id, id, connection_id, connection_id);

    pi_batch_add(batch, f->dec, "pool.txt", -1, line, NULL, 0, buf, (size_t)n);
}

/* 16 batches of 50 through two writers, batch b holding version b of
 * SHARED_ID (connection_id 1000 + b, line 50 b + 1) first and then 49 ids
 * of its own. Written in input order, keep stores version 0 and makes the
 * 15 later versions id_conflict rejects; replace stores version 15 (line
 * 751). */
static void load_versions(fixture *f, pi_on_conflict on_conflict,
                          pi_write_stats *totals)
{
    pi_writer_pool *pool;
    pi_writer_opts opts;
    pi_err err;
    int64_t line = 1, own = SHARED_ID + 1;

    pi_writer_opts_init(&opts);
    opts.conninfo = f->conninfo;
    opts.on_conflict = on_conflict;
    opts.backoff_min_ms = 10;
    opts.backoff_max_ms = 100;
    if (pi_writer_pool_new(&pool, &opts, 2, &f->stop, &err) != 0)
        fail_msg("pi_writer_pool_new: %s", err.msg);
    for (int b = 0; b < BATCHES; b++) {
        pi_batch *batch = pi_writer_pool_take(pool);

        add_presence(f, batch, line++, SHARED_ID, 1000 + b);
        for (int i = 1; i < PER_BATCH; i++)
            add_presence(f, batch, line++, own++, 7);
        if (pi_writer_pool_submit(pool, batch, &err) != 0)
            fail_msg("pi_writer_pool_submit: %s", err.msg);
    }
    if (pi_writer_pool_finish(pool, &err) != 0)
        fail_msg("pi_writer_pool_finish: %s", err.msg);
    pi_writer_pool_totals(pool, totals);
    pi_writer_pool_destroy(pool);
}

static void test_writer_pool__keep_is_first_in_input_order(void **state)
{
    fixture *f = *state;
    pi_write_stats t;

    load_versions(f, PI_ON_CONFLICT_KEEP, &t);
    assert_int_equal(t.messages, 800);
    assert_int_equal(t.stored, 785);
    assert_int_equal(t.conflicts, 15);
    assert_int_equal(t.duplicates, 0);
    assert_int_equal(t.batches, 16);
    assert_int_equal(t.rejects_by_code[PI_REJ_ID_CONFLICT], 15);
    assert_int_equal(pi_test_db_int(f->conn,
                                    "SELECT connection_id FROM presences "
                                    "WHERE id = %" PRId64,
                                    SHARED_ID),
                     1000);
    /* The rejects are the versions of lines 51, 101, …, 751. */
    assert_int_equal(pi_test_db_int(f->conn,
                                    "SELECT count(*) FROM presence_rejects "
                                    "WHERE error = 'id_conflict' AND "
                                    "\"offset\" %% 50 = 1 AND \"offset\" > 1"),
                     15);
    assert_int_equal(pi_test_db_int(f->conn, "SELECT count(*) FROM presences"),
                     785);
    /* Loading it again: everything is a duplicate or a known conflict. */
    load_versions(f, PI_ON_CONFLICT_KEEP, &t);
    assert_int_equal(t.stored, 0);
    assert_int_equal(t.duplicates, 785);
    assert_int_equal(t.conflicts, 15);
    assert_int_equal(
        pi_test_db_int(f->conn, "SELECT count(*) FROM presence_rejects"), 15);
}

static void test_writer_pool__replace_is_last_in_input_order(void **state)
{
    fixture *f = *state;
    pi_write_stats t;

    load_versions(f, PI_ON_CONFLICT_REPLACE, &t);
    assert_int_equal(t.stored, 785);
    assert_int_equal(t.conflicts, 15);
    assert_int_equal(t.rejects_by_code[PI_REJ_ID_CONFLICT], 0);
    assert_int_equal(pi_test_db_int(f->conn,
                                    "SELECT connection_id FROM presences "
                                    "WHERE id = %" PRId64,
                                    SHARED_ID),
                     1015);
    assert_int_equal(pi_test_db_int(f->conn,
                                    "SELECT kafka_offset FROM presences "
                                    "WHERE id = %" PRId64,
                                    SHARED_ID),
                     751);
    assert_int_equal(
        pi_test_db_int(f->conn, "SELECT count(*) FROM presence_rejects"), 0);
}

/* Once stop is set, nothing more is submitted. */
static void test_writer_pool__stop_refuses_more(void **state)
{
    fixture *f = *state;
    pi_writer_pool *pool;
    pi_writer_opts opts;
    pi_batch *batch;
    pi_err err;

    pi_writer_opts_init(&opts);
    opts.conninfo = f->conninfo;
    if (pi_writer_pool_new(&pool, &opts, 2, &f->stop, &err) != 0)
        fail_msg("pi_writer_pool_new: %s", err.msg);
    atomic_store(&f->stop, 1);
    batch = pi_writer_pool_take(pool);
    add_presence(f, batch, 1, SHARED_ID, 1);
    assert_int_equal(pi_writer_pool_submit(pool, batch, &err), PI_ERETRY);
    assert_int_equal(pi_writer_pool_finish(pool, &err), PI_ERETRY);
    pi_writer_pool_destroy(pool);
    assert_int_equal(pi_test_db_int(f->conn, "SELECT count(*) FROM presences"),
                     0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writer_pool__partition_to_writer),
        cmocka_unit_test_setup_teardown(
            test_writer_pool__keep_is_first_in_input_order, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_writer_pool__replace_is_last_in_input_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_pool__stop_refuses_more,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
