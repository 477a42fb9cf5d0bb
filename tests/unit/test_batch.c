/* test_batch.c -- tags, provenance, positions and dropping partitions */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "presence/batch.h"
#include "presence/decode.h"

static const char good[] =
    "{\"id_str\":\"%d\",\"connection_id_str\":\"5\",\"type\":\"connect\","
    "\"reason\":\"idle_out\",\"asset\":\"357322041802978\",\"time\":"
    "\"2016-11-19T15:05:36Z\"}";

typedef struct fixture {
    pi_decoder *dec;
    pi_batch *batch;
} fixture;

static int setup(void **state)
{
    static fixture f;

    pi_decoder_new(&f.dec, 1024);
    pi_batch_new(&f.batch);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    pi_batch_destroy(f->batch);
    pi_decoder_destroy(f->dec);
    return 0;
}

static void add_good(fixture *f, const char *topic, int32_t partition,
                     int64_t offset, int id)
{
    char buf[512];
    int n = snprintf(buf, sizeof(buf), good, id);

    pi_batch_add(f->batch, f->dec, topic, partition, offset, "key", 3, buf,
                 (size_t)n);
}

static void add_raw(fixture *f, const char *topic, int32_t partition,
                    int64_t offset, const char *value)
{
    pi_batch_add(f->batch, f->dec, topic, partition, offset, NULL, 0, value,
                 strlen(value));
}

static void test_batch__tags_index_messages(void **state)
{
    fixture *f = *state;
    const pi_decode_result *res;
    const pi_msg_meta *m;

    add_good(f, "a", 0, 10, 1);
    add_raw(f, "b", 2, 7, "{oops");
    add_good(f, "a", 0, 11, 2);
    assert_int_equal(pi_batch_messages(f->batch), 3);
    res = pi_batch_result(f->batch);
    assert_int_equal(res->n_presences, 2);
    assert_int_equal(res->n_rejects, 1);
    assert_int_equal(res->presences[1].tag, 2);
    assert_int_equal(res->rejects[0].tag, 1);
    assert_int_equal(res->rejects[0].code, PI_REJ_MALFORMED_JSON);

    m = pi_batch_msg(f->batch, res->presences[0].tag);
    assert_string_equal(pi_batch_topic(f->batch, m->topic), "a");
    assert_int_equal(m->partition, 0);
    assert_int_equal(m->offset, 10);
    /* Keys are kept for every message, values only with a reject. */
    assert_int_equal(m->key.len, 3);
    assert_memory_equal(m->key.ptr, "key", 3);
    assert_null(m->payload.ptr);

    m = pi_batch_msg(f->batch, 1);
    assert_string_equal(pi_batch_topic(f->batch, m->topic), "b");
    assert_null(m->key.ptr);
    assert_int_equal(m->payload.len, 5);
    assert_memory_equal(m->payload.ptr, "{oops", 5);
    assert_int_equal(pi_batch_bytes(f->batch), 2 * (strlen(good) - 1) + 5);
}

static void test_batch__positions_per_partition(void **state)
{
    fixture *f = *state;
    const pi_position *pos;
    size_t n;

    add_good(f, "a", 0, 10, 1);
    add_good(f, "a", 1, 5, 2);
    add_good(f, "a", 0, 12, 3);
    add_good(f, "b", 0, 100, 4);
    add_good(f, "a", 1, 6, 5);
    pos = pi_batch_positions(f->batch, &n);
    assert_int_equal(n, 3);
    assert_string_equal(pi_batch_topic(f->batch, pos[0].topic), "a");
    assert_int_equal(pos[0].partition, 0);
    assert_int_equal(pos[0].first_offset, 10);
    assert_int_equal(pos[0].next_offset, 13);
    assert_int_equal(pos[1].partition, 1);
    assert_int_equal(pos[1].first_offset, 5);
    assert_int_equal(pos[1].next_offset, 7);
    assert_string_equal(pi_batch_topic(f->batch, pos[2].topic), "b");
    assert_int_equal(pos[2].next_offset, 101);
}

static void test_batch__skipped_counted_per_message(void **state)
{
    fixture *f = *state;

    add_raw(f, "a", 0, 1,
            "[{\"meta\":{\"event\":\"track\"},\"payload\":{}},"
            "{\"meta\":{\"event\":\"message\"},\"payload\":{}}]");
    add_good(f, "a", 0, 2, 9);
    assert_int_equal(pi_batch_skipped(f->batch), 2);
    assert_int_equal(pi_batch_msg(f->batch, 0)->skipped, 2);
    assert_int_equal(pi_batch_msg(f->batch, 1)->skipped, 0);
}

static void test_batch__drop_partition_retags(void **state)
{
    fixture *f = *state;
    const pi_decode_result *res;
    const pi_position *pos;
    size_t n;

    add_good(f, "a", 0, 10, 1);
    add_raw(f, "a", 1, 20, "");
    add_raw(f, "a", 1, 21, "[{\"meta\":{\"event\":\"track\"}}]");
    add_good(f, "a", 0, 11, 2);
    add_raw(f, "a", 0, 12, "7");
    pi_batch_drop_partition(f->batch, "a", 1);
    pi_batch_drop_partition(f->batch, "zzz", 1); /* unknown: no-op */
    assert_int_equal(pi_batch_messages(f->batch), 3);
    assert_int_equal(pi_batch_skipped(f->batch), 0);
    res = pi_batch_result(f->batch);
    assert_int_equal(res->n_presences, 2);
    assert_int_equal(res->n_rejects, 1);
    assert_int_equal(pi_batch_msg(f->batch, res->presences[1].tag)->offset, 11);
    assert_int_equal(pi_batch_msg(f->batch, res->rejects[0].tag)->offset, 12);
    assert_int_equal(res->rejects[0].code, PI_REJ_NOT_AN_OBJECT);
    pos = pi_batch_positions(f->batch, &n);
    assert_int_equal(n, 1);
    assert_int_equal(pos[0].partition, 0);
    assert_int_equal(pi_batch_bytes(f->batch), 2 * (strlen(good) - 1) + 1);
}

static void test_batch__reject_without_decoding(void **state)
{
    fixture *f = *state;
    const pi_decode_result *res;

    pi_batch_add_reject(f->batch, "file", -1, 3, NULL, 0, "abcdef", 4,
                        PI_REJ_TOO_LARGE, "value of 9 bytes");
    res = pi_batch_result(f->batch);
    assert_int_equal(res->n_rejects, 1);
    assert_int_equal(res->rejects[0].code, PI_REJ_TOO_LARGE);
    assert_int_equal(res->rejects[0].element, 0);
    assert_memory_equal(res->rejects[0].detail.ptr, "value of 9 bytes", 16);
    assert_int_equal(pi_batch_msg(f->batch, 0)->payload.len, 4);
    assert_int_equal(pi_batch_msg(f->batch, 0)->offset, 3);
    assert_int_equal(pi_batch_bytes(f->batch), 4);
}

static void test_batch__reset_forgets(void **state)
{
    fixture *f = *state;
    size_t n;

    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 1000; i++)
            add_good(f, i % 2 ? "a" : "b", i % 3, i, i + 1);
        assert_int_equal(pi_batch_messages(f->batch), 1000);
        assert_int_equal(pi_batch_result(f->batch)->n_presences, 1000);
        pi_batch_reset(f->batch);
        assert_int_equal(pi_batch_messages(f->batch), 0);
        assert_int_equal(pi_batch_bytes(f->batch), 0);
        assert_int_equal(pi_batch_result(f->batch)->n_presences, 0);
        pi_batch_positions(f->batch, &n);
        assert_int_equal(n, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_batch__tags_index_messages, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_batch__positions_per_partition,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch__skipped_counted_per_message,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch__drop_partition_retags,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch__reject_without_decoding,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch__reset_forgets, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
