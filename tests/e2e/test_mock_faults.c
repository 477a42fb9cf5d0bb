/* test_mock_faults.c -- the consumer under faults only a mock cluster can make
 *
 * librdkafka's mock cluster stands in for the broker (the real one cannot be
 * told to fail a Fetch or an OffsetCommit on demand); PostgreSQL is the
 * harness's real server. Each case produces a small stream, runs the real
 * consumer in a thread while injecting faults, and checks that every presence
 * is stored exactly once and ingest_offsets reached the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pi_test.h"
#include "presence/config.h"
#include "presence/consumer.h"

#define MESSAGES 300

/* Kafka protocol API keys (librdkafka 2.0.2 keeps its RD_KAFKAP_* enum in a
 * private header). */
enum { API_FETCH = 1, API_OFFSET_COMMIT = 8 };
#define PARTITIONS 2

typedef struct fixture {
    rd_kafka_t *rk; /* owns the mock cluster; also the producer */
    rd_kafka_mock_cluster_t *mcluster;
    char topic[64];
    char conninfo[1024];
    PGconn *conn;
    pi_config cfg;
    pi_consumer *c2; /* a second member of the group, when a test needs it */
    atomic_int stop2;
    pthread_t thread2;
    pi_consumer *c;
    atomic_int stop;
    pthread_t thread;
    int rc;
    pi_err err;
} fixture;

static void produce(fixture *f, int64_t first_id, int n)
{
    char buf[512];

    for (int i = 0; i < n; i++) {
        int64_t id = first_id + i;
        int len = snprintf(
            buf, sizeof(buf),
            "{\"id\":%lld,\"id_str\":\"%lld\",\"connection_id\":7,"
            "\"type\":\"connect\",\"reason\":\"cold_boot\","
            "\"asset\":\"357322041802978\",\"time\":\"2016-11-19T15:05:36Z\"}",
            (long long)id, (long long)id);
        rd_kafka_resp_err_t kerr = rd_kafka_producev(
            f->rk, RD_KAFKA_V_TOPIC(f->topic),
            RD_KAFKA_V_PARTITION(i % PARTITIONS),
            RD_KAFKA_V_VALUE(buf, (size_t)len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        assert_int_equal(kerr, 0);
        rd_kafka_poll(f->rk, 0);
    }
    assert_int_equal(rd_kafka_flush(f->rk, 10000), 0);
}

static long long query_ll(fixture *f, const char *sql)
{
    PGresult *res = PQexec(f->conn, sql);
    long long v;

    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    v = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

/* *state may hold a partition.assignment.strategy (prestate) to use. */
static int setup(void **state)
{
    const char *strategy = *state;
    char strategy_prop[128];
    fixture *f = calloc(1, sizeof(*f));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[256], cmd[2048], sql[256];
    PGconn *admin;
    PGresult *res;
    static int seq;

    snprintf(f->topic, sizeof(f->topic), "mock_%d_%d", (int)getpid(), ++seq);
    rd_kafka_conf_set(conf, "test.mock.num.brokers", "3", errstr,
                      sizeof(errstr));
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
    f->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(f->rk);
    f->mcluster = rd_kafka_handle_mock_cluster(f->rk);
    assert_non_null(f->mcluster);
    assert_int_equal(
        rd_kafka_mock_topic_create(f->mcluster, f->topic, PARTITIONS, 1), 0);

    /* A database of its own, migrated by the real binary. */
    admin = PQconnectdb(pi_test_pg_conninfo());
    assert_int_equal(PQstatus(admin), CONNECTION_OK);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", f->topic);
    res = PQexec(admin, sql);
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
    PQfinish(admin);
    snprintf(f->conninfo, sizeof(f->conninfo), "%s dbname=%s",
             pi_test_pg_conninfo(), f->topic);
    snprintf(cmd, sizeof(cmd), "'%s' migrate --pg '%s' >/dev/null",
             getenv("PI_BINARY"), f->conninfo);
    assert_int_equal(system(cmd), 0);
    f->conn = PQconnectdb(f->conninfo);
    assert_int_equal(PQstatus(f->conn), CONNECTION_OK);

    /* Short group timeouts: the mock's coordinator goes down with its
     * brokers, and the consumer must rejoin in seconds, not 45 s. */
    {
        char *argv[] = {"run",
                        "--brokers",
                        (char *)rd_kafka_mock_cluster_bootstraps(f->mcluster),
                        "--topic",
                        f->topic,
                        "--group",
                        f->topic,
                        "--pg",
                        f->conninfo,
                        "--batch-size=50",
                        "--linger-ms=20",
                        "--backoff-max-ms=500",
                        "-X",
                        "session.timeout.ms=6000",
                        "-X",
                        "heartbeat.interval.ms=500",
                        "-X",
                        "reconnect.backoff.max.ms=500",
                        "-X",
                        "log_level=2",
                        "--shutdown-timeout-ms=2000",
                        strategy ? "-X" : NULL,
                        strategy_prop,
                        NULL};
        pi_err err;
        int argc = 0;

        snprintf(strategy_prop, sizeof(strategy_prop),
                 "partition.assignment.strategy=%s", strategy ? strategy : "");
        while (argv[argc])
            argc++;
        pi_config_init(&f->cfg);
        if (pi_config_parse(&f->cfg, PI_CMD_RUN, argc, argv, &err) != 0)
            fail_msg("config: %s", err.msg);
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    pi_consumer_destroy(f->c);
    pi_consumer_destroy(f->c2);
    pi_config_fini(&f->cfg);
    PQfinish(f->conn);
    rd_kafka_destroy(f->rk);
    free(f);
    return 0;
}

static void *consume(void *arg)
{
    fixture *f = arg;
    f->rc = pi_consumer_run(f->c, &f->err);
    return NULL;
}

static void start(fixture *f)
{
    pi_err err;
    int rc;

    atomic_init(&f->stop, 0);
    rc = pi_consumer_new(&f->c, &f->cfg, &f->stop, &err);
    if (rc != 0)
        fail_msg("pi_consumer_new: %s", err.msg);
    assert_int_equal(pthread_create(&f->thread, NULL, consume, f), 0);
}

/* Wait (up to 60 s) until n presences are stored and the offsets reached
 * n + extra messages, then stop the consumer and check that it stopped
 * cleanly. */
static void finish(fixture *f, long long n, long long extra)
{
    long long got = -1;
    char sql[256];

    snprintf(sql, sizeof(sql),
             "SELECT coalesce(sum(next_offset), 0) FROM ingest_offsets "
             "WHERE topic = '%s'",
             f->topic);
    for (int i = 0; i < 600; i++) {
        got = query_ll(f, "SELECT count(*) FROM presences");
        if (got == n && query_ll(f, sql) == n + extra)
            break;
        usleep(100 * 1000);
    }
    atomic_store(&f->stop, 1);
    pthread_join(f->thread, NULL);
    if (f->rc != 0)
        fail_msg("consumer stopped with %d: %s", f->rc, f->err.msg);
    assert_int_equal(got, n);
    assert_int_equal(query_ll(f, sql), n + extra);
    if (extra == 0)
        assert_int_equal(query_ll(f, "SELECT count(*) FROM presence_rejects"),
                         0);
}

static void test_mock_faults__fetch_errors(void **state)
{
    fixture *f = *state;

    produce(f, 1000, MESSAGES);
    rd_kafka_mock_push_request_errors(
        f->mcluster, API_FETCH, 6, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
        RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
    start(f);
    finish(f, MESSAGES, 0);
}

static void test_mock_faults__commit_errors(void **state)
{
    fixture *f = *state;

    /* Kafka commits failing must not matter: the database holds the
     * offsets, and the stream is still stored exactly once. */
    produce(f, 5000, MESSAGES);
    rd_kafka_mock_push_request_errors(
        f->mcluster, API_OFFSET_COMMIT, 4,
        RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
        RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS);
    start(f);
    finish(f, MESSAGES, 0);
}

static void test_mock_faults__broker_down_and_up(void **state)
{
    fixture *f = *state;

    produce(f, 9000, MESSAGES / 2);
    start(f);
    /* Take every broker down mid-stream, produce nothing while down, then
     * bring them back and produce the rest. */
    usleep(500 * 1000);
    for (int b = 1; b <= 3; b++)
        rd_kafka_mock_broker_set_down(f->mcluster, b);
    sleep(3);
    for (int b = 1; b <= 3; b++)
        rd_kafka_mock_broker_set_up(f->mcluster, b);
    produce(f, 9000 + MESSAGES / 2, MESSAGES / 2);
    finish(f, MESSAGES, 0);
}

static void test_mock_faults__restart_resumes_from_database(void **state)
{
    fixture *f = *state;

    /* A first consumer stores half; a second one (same group) must start
     * from ingest_offsets and store only the rest. */
    produce(f, 20000, MESSAGES / 2);
    start(f);
    finish(f, MESSAGES / 2, 0);
    pi_consumer_destroy(f->c);
    f->c = NULL;
    produce(f, 20000 + MESSAGES / 2, MESSAGES / 2);
    start(f);
    finish(f, MESSAGES, 0);
}

static void *consume2(void *arg)
{
    fixture *f = arg;
    pi_err err;

    if (pi_consumer_run(f->c2, &err) != 0)
        fprintf(stderr, "second consumer: %s\n", err.msg);
    return NULL;
}

/* The database stalls (a test transaction locks `presences`): the first
 * member's writer blocks, it pauses its partitions, and then a second member
 * joins, so the partitions are revoked while paused and a write hangs. The
 * revoke must give up the hung write within its budget (cancelling the
 * statement), and the partitions assigned afterwards must not stay paused:
 * once the lock goes, every presence is stored exactly once. */
static void test_mock_faults__rebalance_while_paused(void **state)
{
    fixture *f = *state;
    PGconn *locker = PQconnectdb(f->conninfo);
    PGresult *res;
    pi_err err;

    assert_int_equal(PQstatus(locker), CONNECTION_OK);
    produce(f, 40000, MESSAGES);
    res =
        PQexec(locker, "BEGIN; LOCK TABLE presences IN ACCESS EXCLUSIVE MODE");
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);

    start(f);
    sleep(4); /* joined, first batch hung on the lock, partitions paused */
    atomic_init(&f->stop2, 0);
    assert_int_equal(pi_consumer_new(&f->c2, &f->cfg, &f->stop2, &err), 0);
    assert_int_equal(pthread_create(&f->thread2, NULL, consume2, f), 0);
    sleep(8); /* the rebalance: revoke (hung flush given up), assign */
    res = PQexec(locker, "COMMIT");
    PQclear(res);
    PQfinish(locker);

    produce(f, 40000 + MESSAGES, MESSAGES);
    finish(f, 2 * MESSAGES, 0);
    atomic_store(&f->stop2, 1);
    pthread_join(f->thread2, NULL);
}

static void test_mock_faults__empty_and_bad_values(void **state)
{
    fixture *f = *state;
    const char *bad[] = {NULL, "", "{\"id\":", "[1,2]"};

    /* A tombstone (NULL value), an empty value and two bad ones between
     * good messages: each is recorded, none stalls the partition. */
    produce(f, 30000, 10);
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        assert_int_equal(
            rd_kafka_producev(
                f->rk, RD_KAFKA_V_TOPIC(f->topic), RD_KAFKA_V_PARTITION(0),
                RD_KAFKA_V_VALUE((void *)bad[i], bad[i] ? strlen(bad[i]) : 0),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
            0);
    }
    assert_int_equal(rd_kafka_flush(f->rk, 10000), 0);
    produce(f, 30010, 10);
    start(f);
    finish(f, 20, 4);
    assert_int_equal(
        query_ll(f, "SELECT count(*) FROM presence_rejects WHERE error = "
                    "'empty' AND partition = 0 AND \"offset\" IN (5, 6)"),
        2);
    assert_int_equal(
        query_ll(f, "SELECT count(*) FROM presence_rejects WHERE error = "
                    "'malformed_json' AND \"offset\" = 7"),
        1);
    /* [1,2]: two elements, neither an object. */
    assert_int_equal(
        query_ll(f, "SELECT count(*) FROM presence_rejects WHERE error = "
                    "'not_an_object' AND \"offset\" = 8"),
        2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mock_faults__fetch_errors, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_mock_faults__commit_errors, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_mock_faults__broker_down_and_up,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_mock_faults__restart_resumes_from_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mock_faults__empty_and_bad_values,
                                        setup, teardown),
        cmocka_unit_test_prestate_setup_teardown(
            test_mock_faults__rebalance_while_paused, setup, teardown, "range"),
        cmocka_unit_test_prestate_setup_teardown(
            test_mock_faults__rebalance_while_paused, setup, teardown,
            "cooperative-sticky"),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
