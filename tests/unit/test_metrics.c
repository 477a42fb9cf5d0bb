/* test_metrics.c -- exposition format, counters from batches, health rules */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "presence/metrics.h"

static char *expose(pi_metrics *m)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    pi_metrics_write(m, f);
    fclose(f);
    return buf;
}

/* The value of the sample whose name-and-labels is exactly `series`; fails
 * the test when it is missing. */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);

    for (const char *line = text; *line;) {
        const char *eol = strchr(line, '\n');
        if (strncmp(line, series, n) == 0 && line[n] == ' ')
            return strtod(line + n + 1, NULL);
        if (eol == NULL)
            break;
        line = eol + 1;
    }
    fail_msg("no sample %s in:\n%s", series, text);
    return 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Text format 0.0.4: every line is a HELP, a TYPE, or a sample
 * `name[{k="v",…}] value` whose family was declared by HELP and TYPE just
 * before its first sample; a family is declared once. */
static void test_metrics__format_is_valid_text_0_0_4(void **state)
{
    pi_metrics *m;
    char *text, *save = NULL, *line;
    char family[128] = "", declared[64][128];
    size_t n_declared = 0;

    (void)state;
    pi_metrics_new(&m, "1.2.3", 1000);
    text = expose(m);
    assert_int_equal(text[strlen(text) - 1], '\n');
    for (line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char name[128];
        size_t i = 0;

        if (strncmp(line, "# HELP ", 7) == 0) {
            sscanf(line + 7, "%127s", family);
            for (size_t k = 0; k < n_declared; k++)
                assert_string_not_equal(declared[k], family);
            assert_true(n_declared < 64);
            strcpy(declared[n_declared++], family);
            continue;
        }
        if (strncmp(line, "# TYPE ", 7) == 0) {
            char type[32];
            assert_int_equal(sscanf(line + 7, "%127s %31s", name, type), 2);
            assert_string_equal(name, family);
            assert_true(strcmp(type, "counter") == 0 ||
                        strcmp(type, "gauge") == 0 ||
                        strcmp(type, "histogram") == 0);
            continue;
        }
        assert_true(isalpha((unsigned char)line[0]) || line[0] == '_');
        while (isalnum((unsigned char)line[i]) || line[i] == '_')
            i++;
        memcpy(name, line, i);
        name[i] = '\0';
        /* The sample belongs to the family declared last (a histogram's
         * _bucket, _sum, _count too). */
        assert_true(strncmp(name, family, strlen(family)) == 0);
        if (line[i] == '{') {
            char *close = strchr(line + i, '}');
            assert_non_null(close);
            assert_true(close[-1] == '"');
            i = (size_t)(close - line) + 1;
        }
        assert_int_equal(line[i], ' ');
        char *end;
        strtod(line + i + 1, &end);
        assert_true(end > line + i + 1);
        assert_int_equal(*end, '\0');
    }
    free(text);
    pi_metrics_destroy(m);
}

/* Every name the issue makes stable is there from the start, with every
 * reject code and outcome at 0. */
static void test_metrics__stable_names_present_at_zero(void **state)
{
    static const char *const families[] = {
        "presence_ingest_messages_total",
        "presence_ingest_presences_total",
        "presence_ingest_rejects_total",
        "presence_ingest_batches_total",
        "presence_ingest_batch_messages",
        "presence_ingest_batch_write_seconds",
        "presence_ingest_event_lag_seconds",
        "presence_ingest_consumer_lag_messages",
        "presence_ingest_assigned_partitions",
        "presence_ingest_paused",
        "presence_ingest_rebalances_total",
        "presence_ingest_db_errors_total",
        "presence_ingest_db_retries_total",
        "presence_ingest_last_commit_timestamp_seconds",
        "presence_ingest_build_info",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_start_time_seconds",
        "process_open_fds"};
    pi_metrics *m;
    char *text, series[128];

    (void)state;
    pi_metrics_new(&m, "0.1.0", 1000);
    text = expose(m);
    for (size_t i = 0; i < sizeof(families) / sizeof(*families); i++) {
        snprintf(series, sizeof(series), "# TYPE %s ", families[i]);
        assert_non_null(strstr(text, series));
    }
    for (int i = 0; i < PI_REJ__COUNT; i++) {
        snprintf(series, sizeof(series),
                 "presence_ingest_rejects_total{code=\"%s\"}",
                 pi_reject_code_name((pi_reject_code)i));
        assert_true(sample(text, series) == 0);
    }
    assert_true(sample(text, "presence_ingest_rejects_total{code=\"empty\"}") ==
                0);
    assert_true(sample(text, "presence_ingest_rejects_total{code=\"id_"
                             "conflict\"}") == 0);
    assert_true(
        sample(text, "presence_ingest_presences_total{outcome=\"skipped\"}") ==
        0);
    assert_true(
        sample(text, "presence_ingest_rebalances_total{kind=\"lost\"}") == 0);
    assert_true(sample(text, "presence_ingest_db_errors_total{class=\"08\"}") ==
                0);
    assert_true(sample(text, "presence_ingest_build_info{version=\"0.1.0\"}") ==
                1);
    assert_true(sample(text, "presence_ingest_batch_write_seconds_bucket{le="
                             "\"+Inf\"}") == 0);
    assert_true(sample(text, "presence_ingest_assigned_partitions") == 0);
    assert_true(sample(text, "process_resident_memory_bytes") > 1e5);
    assert_true(sample(text, "process_open_fds") >= 3);
    assert_true(sample(text, "process_start_time_seconds") >
                (double)time(NULL) - 3600);
    assert_true(sample(text, "process_start_time_seconds") <=
                (double)time(NULL) + 1);
    free(text);
    pi_metrics_destroy(m);
}

/* A committed batch: its figures by topic, outcome and code, the
 * histograms, the commit time; a failed one changes nothing. */
static void test_metrics__batch_figures(void **state)
{
    pi_metrics *m;
    pi_batch *batch;
    pi_decoder *dec;
    pi_write_stats stats;
    char *text, value[256];
    time_t now = time(NULL);
    struct tm tm;

    (void)state;
    pi_metrics_new(&m, "x", 1000);
    pi_decoder_new(&dec, 1 << 20);
    pi_batch_new(&batch);
    /* Two presences 100 s old on topic a, one on topic "b\"q". */
    now -= 100;
    gmtime_r(&now, &tm);
    for (int i = 0; i < 3; i++) {
        char when[32];
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        snprintf(value, sizeof(value),
                 "{\"id\":%d,\"connection_id\":7,\"type\":\"connect\","
                 "\"reason\":\"r\",\"asset\":\"a\",\"time\":\"%s\"}",
                 i + 1, when);
        pi_batch_add(batch, dec, i < 2 ? "a" : "b\"q", 0, i, NULL, 0, value,
                     strlen(value));
    }
    memset(&stats, 0, sizeof(stats));
    stats.messages = 3;
    stats.stored = 2;
    stats.duplicates = 1;
    stats.batches = 1;
    stats.write_us = 30000; /* 0.03 s */
    stats.rejects_by_code[PI_REJ_BAD_TIME] = 4;

    pi_metrics_batch_done(m, batch, PI_ERETRY, &stats); /* not committed */
    text = expose(m);
    assert_true(sample(text, "presence_ingest_batches_total") == 0);
    free(text);

    pi_metrics_batch_done(m, batch, 0, &stats);
    pi_metrics_batch_done(m, batch, 0, &stats);
    text = expose(m);
    assert_true(sample(text, "presence_ingest_batches_total") == 2);
    assert_true(sample(text, "presence_ingest_messages_total{topic=\"a\"}") ==
                4);
    assert_true(
        sample(text, "presence_ingest_messages_total{topic=\"b\\\"q\"}") == 2);
    assert_true(
        sample(text, "presence_ingest_presences_total{outcome=\"stored\"}") ==
        4);
    assert_true(sample(text, "presence_ingest_presences_total{outcome="
                             "\"duplicate\"}") == 2);
    assert_true(
        sample(text, "presence_ingest_rejects_total{code=\"bad_time\"}") == 8);
    assert_true(sample(text, "presence_ingest_batch_messages_bucket{le="
                             "\"1\"}") == 0);
    assert_true(sample(text, "presence_ingest_batch_messages_bucket{le="
                             "\"10\"}") == 2);
    assert_true(sample(text, "presence_ingest_batch_messages_sum") == 6);
    assert_true(sample(text, "presence_ingest_batch_messages_count") == 2);
    assert_true(sample(text, "presence_ingest_batch_write_seconds_bucket{le="
                             "\"0.025\"}") == 0);
    assert_true(sample(text, "presence_ingest_batch_write_seconds_bucket{le="
                             "\"0.05\"}") == 2);
    /* 6 presences about 100 s old: above 60, at most 300. */
    assert_true(sample(text, "presence_ingest_event_lag_seconds_bucket{le="
                             "\"60\"}") == 0);
    assert_true(sample(text, "presence_ingest_event_lag_seconds_bucket{le="
                             "\"300\"}") == 6);
    assert_true(sample(text, "presence_ingest_event_lag_seconds_count") == 6);
    assert_true(sample(text, "presence_ingest_event_lag_seconds_sum") > 590);
    assert_true(sample(text, "presence_ingest_event_lag_seconds_sum") < 620);
    assert_true(sample(text, "presence_ingest_last_commit_timestamp_seconds") >=
                (double)now + 99);
    free(text);
    pi_batch_destroy(batch);
    pi_decoder_destroy(dec);
    pi_metrics_destroy(m);
}

static void test_metrics__db_errors_by_class(void **state)
{
    pi_metrics *m;
    char *text;

    (void)state;
    pi_metrics_new(&m, "x", 1000);
    pi_metrics_db_error(m, "23505", false);
    pi_metrics_db_error(m, "57P01", true);
    pi_metrics_db_error(m, "", true); /* connection lost: no SQLSTATE */
    pi_metrics_db_error(NULL, "08006", true);
    text = expose(m);
    assert_true(sample(text, "presence_ingest_db_errors_total{class=\"23\"}") ==
                1);
    assert_true(sample(text, "presence_ingest_db_errors_total{class=\"57\"}") ==
                1);
    assert_true(sample(text, "presence_ingest_db_errors_total{class=\"08\"}") ==
                1);
    assert_null(strstr(text, "class=\"22\""));
    assert_true(sample(text, "presence_ingest_db_retries_total") == 2);
    free(text);
    pi_metrics_destroy(m);
}

/* Assigned partitions and their lag without a Kafka handle: counted, but
 * no lag sample (unknown is not 0); revoke and lost are counted. */
static void test_metrics__rebalances_and_pause(void **state)
{
    pi_metrics *m;
    rd_kafka_topic_partition_list_t *parts =
        rd_kafka_topic_partition_list_new(2);
    char *text;

    (void)state;
    pi_metrics_new(&m, "x", 1000);
    rd_kafka_topic_partition_list_add(parts, "t", 0)->offset = 5;
    rd_kafka_topic_partition_list_add(parts, "t", 1)->offset = -1001;
    pi_metrics_rebalance(m, PI_REBALANCE_ASSIGN, parts);
    pi_metrics_paused(m, true);
    text = expose(m);
    assert_true(sample(text, "presence_ingest_assigned_partitions") == 2);
    assert_true(sample(text, "presence_ingest_paused") == 1);
    assert_null(strstr(text, "presence_ingest_consumer_lag_messages{"));
    free(text);
    rd_kafka_topic_partition_list_del(parts, "t", 1);
    pi_metrics_rebalance(m, PI_REBALANCE_REVOKE, parts);
    pi_metrics_rebalance(m, PI_REBALANCE_LOST, parts);
    text = expose(m);
    assert_true(sample(text, "presence_ingest_assigned_partitions") == 1);
    assert_true(
        sample(text, "presence_ingest_rebalances_total{kind=\"assign\"}") == 1);
    assert_true(
        sample(text, "presence_ingest_rebalances_total{kind=\"revoke\"}") == 1);
    assert_true(
        sample(text, "presence_ingest_rebalances_total{kind=\"lost\"}") == 1);
    free(text);
    rd_kafka_topic_partition_list_destroy(parts);
    pi_metrics_destroy(m);
}

static void test_metrics__health_and_readiness(void **state)
{
    pi_metrics *m;
    rd_kafka_topic_partition_list_t *none =
        rd_kafka_topic_partition_list_new(0);
    pi_write_stats stats;
    char why[256];
    struct timespec ts;

    (void)state;
    pi_metrics_new(&m, "x", 200);
    /* Starting: live for stall_ms, not ready until in the group. */
    assert_true(pi_metrics_healthy(m, why, sizeof(why)));
    assert_false(pi_metrics_ready(m, why, sizeof(why)));
    assert_string_equal(why, "not in the consumer group yet");
    clock_gettime(CLOCK_MONOTONIC, &ts);
    pi_metrics_tick(m, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    /* Idle with no partitions counts as in the group. */
    pi_metrics_rebalance(m, PI_REBALANCE_ASSIGN, none);
    assert_false(pi_metrics_ready(m, why, sizeof(why)));
    assert_string_equal(why, "the database has not answered yet");
    pi_metrics_db_probe(m, true);
    assert_true(pi_metrics_ready(m, why, sizeof(why)));
    assert_string_equal(why, "ok");
    sleep_ms(5);
    pi_metrics_db_probe(m, false);
    assert_false(pi_metrics_ready(m, why, sizeof(why)));
    assert_non_null(strstr(why, "the database failed"));
    sleep_ms(5);
    pi_metrics_db_probe(m, true);
    assert_true(pi_metrics_ready(m, why, sizeof(why)));
    /* A write that takes longer than stall_ms: the writer is stuck. */
    pi_metrics_write_begin(m, 0);
    pi_metrics_write_begin(m, 1);
    sleep_ms(250);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    pi_metrics_tick(m, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    pi_metrics_db_probe(m, true);
    assert_false(pi_metrics_ready(m, why, sizeof(why)));
    assert_non_null(strstr(why, "the writer has been on one batch for"));
    memset(&stats, 0, sizeof(stats));
    /* One of two writers done: the other is still stuck. */
    pi_metrics_write_end(m, 0);
    pi_metrics_batch_done(m, NULL, PI_ERETRY, &stats); /* came back */
    assert_false(pi_metrics_ready(m, why, sizeof(why)));
    assert_non_null(strstr(why, "the writer has been on one batch for"));
    pi_metrics_write_end(m, 1);
    assert_true(pi_metrics_ready(m, why, sizeof(why)));
    /* No tick for stall_ms: neither live nor ready; no answer from the
     * database for stall_ms: not ready. */
    sleep_ms(250);
    assert_false(pi_metrics_healthy(m, why, sizeof(why)));
    assert_non_null(strstr(why, "poll loop has not ticked for"));
    assert_false(pi_metrics_ready(m, why, sizeof(why)));
    clock_gettime(CLOCK_MONOTONIC, &ts);
    pi_metrics_tick(m, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    assert_true(pi_metrics_healthy(m, why, sizeof(why)));
    assert_false(pi_metrics_ready(m, why, sizeof(why)));
    assert_non_null(strstr(why, "the database has not answered for"));
    /* A dry run needs no database: ready once in the group and ticking. */
    pi_metrics_set_no_database(m);
    assert_true(pi_metrics_ready(m, why, sizeof(why)));
    rd_kafka_topic_partition_list_destroy(none);
    pi_metrics_destroy(m);
}

static void test_metrics__null_is_a_no_op(void **state)
{
    pi_write_stats stats;

    (void)state;
    memset(&stats, 0, sizeof(stats));
    pi_metrics_tick(NULL, 1);
    pi_metrics_paused(NULL, true);
    pi_metrics_batch_done(NULL, NULL, 0, &stats);
    pi_metrics_write_begin(NULL, 0);
    pi_metrics_write_end(NULL, 0);
    pi_metrics_db_probe(NULL, true);
    pi_metrics_set_kafka(NULL, NULL);
    pi_metrics_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics__format_is_valid_text_0_0_4),
        cmocka_unit_test(test_metrics__stable_names_present_at_zero),
        cmocka_unit_test(test_metrics__batch_figures),
        cmocka_unit_test(test_metrics__db_errors_by_class),
        cmocka_unit_test(test_metrics__rebalances_and_pause),
        cmocka_unit_test(test_metrics__health_and_readiness),
        cmocka_unit_test(test_metrics__null_is_a_no_op),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
