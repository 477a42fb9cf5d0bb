/* bench_mock_kafka.c -- what the linked librdkafka's mock cluster and an
 * assign-only consumer can do: the librdkafka traps, re-checked per version
 *
 *   bench-mock-kafka [N]      (default 20000 messages)
 *
 * Prints the consume rate from the mock cluster (rd_kafka_consumer_poll),
 * whether a consumer without group.id may assign, and whether the mock
 * answers offsets-by-timestamp. Run it again with LD_LIBRARY_PATH at
 * another librdkafka1 (same soname) for a baseline in the same run.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TS0 1700000000000LL /* the first message's timestamp, ms */

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static rd_kafka_t *client(rd_kafka_type_t type, const char *bootstraps,
                          const char *group, char *errstr, size_t size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    if (bootstraps)
        rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps, NULL, 0);
    else
        rd_kafka_conf_set(conf, "test.mock.num.brokers", "1", NULL, 0);
    if (group)
        rd_kafka_conf_set(conf, "group.id", group, NULL, 0);
    rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
    return rd_kafka_new(type, conf, errstr, size); /* takes conf, even NULL */
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 20000, got = 0;
    char errstr[512], bootstraps[256], value[128];
    rd_kafka_t *prod, *cons;
    rd_kafka_topic_partition_list_t *list;
    rd_kafka_resp_err_t err;
    char assign_ok[600] = "ok";
    double t0, secs;

    prod = client(RD_KAFKA_PRODUCER, NULL, NULL, errstr, sizeof(errstr));
    if (prod == NULL) {
        fprintf(stderr, "mock producer: %s\n", errstr);
        return 1;
    }
    snprintf(
        bootstraps, sizeof(bootstraps), "%s",
        rd_kafka_mock_cluster_bootstraps(rd_kafka_handle_mock_cluster(prod)));
    rd_kafka_mock_topic_create(rd_kafka_handle_mock_cluster(prod), "t", 1, 1);
    for (long i = 0; i < n; i++) {
        int len = snprintf(value, sizeof(value), "{\"n\":%ld}", i);
        while (rd_kafka_producev(
                   prod, RD_KAFKA_V_TOPIC("t"), RD_KAFKA_V_PARTITION(0),
                   RD_KAFKA_V_VALUE(value, (size_t)len),
                   RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                   RD_KAFKA_V_TIMESTAMP(TS0 + i),
                   RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(prod, 10);
    }
    rd_kafka_flush(prod, 60000);

    /* Assign without a group.id; with one if that is refused. */
    cons = client(RD_KAFKA_CONSUMER, bootstraps, NULL, errstr, sizeof(errstr));
    list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, "t", 0)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
    if (cons == NULL) {
        snprintf(assign_ok, sizeof(assign_ok), "refused by rd_kafka_new: %s",
                 errstr);
    } else {
        rd_kafka_poll_set_consumer(cons);
        err = rd_kafka_assign(cons, list);
        if (err) {
            snprintf(assign_ok, sizeof(assign_ok),
                     "refused by rd_kafka_assign: %s", rd_kafka_err2str(err));
            rd_kafka_destroy(cons);
            cons = NULL;
        }
    }
    if (cons == NULL) {
        cons =
            client(RD_KAFKA_CONSUMER, bootstraps, "g", errstr, sizeof(errstr));
        rd_kafka_poll_set_consumer(cons);
        rd_kafka_assign(cons, list);
    }
    t0 = now_s();
    while (got < n && now_s() - t0 < 120) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(cons, 100);
        if (rkm == NULL)
            continue;
        if (rkm->err == 0)
            got++;
        rd_kafka_message_destroy(rkm);
    }
    secs = now_s() - t0;

    /* The offset of the message stamped TS0 + n/2 is n/2. */
    rd_kafka_topic_partition_list_destroy(list);
    list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, "t", 0)->offset = TS0 + n / 2;
    err = rd_kafka_offsets_for_times(cons, list, 10000);

    printf("librdkafka %s: mock cluster consume %ld/%ld messages in %.2f s "
           "= %.0f messages/s; assign without group.id: %s; "
           "offsets_for_times on the mock: %s, offset %lld (want %ld)\n",
           rd_kafka_version_str(), got, n, secs, (double)got / secs, assign_ok,
           err ? rd_kafka_err2str(err) : rd_kafka_err2str(list->elems[0].err),
           (long long)list->elems[0].offset, n / 2);
    rd_kafka_topic_partition_list_destroy(list);
    rd_kafka_consumer_close(cons);
    rd_kafka_destroy(cons);
    rd_kafka_destroy(prod);
    return got == n ? 0 : 1;
}
