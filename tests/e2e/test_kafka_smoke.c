/* test_kafka_smoke.c -- a message kcat produces into the harness's real broker
 * is read back through librdkafka */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pi_test.h"

/* Run a shell command, failing the test when it does not exit 0. */
static void run(const char *cmd)
{
    int rc = system(cmd);
    if (rc != 0)
        fail_msg("command failed (status %d): %s", rc, cmd);
}

static void conf_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK)
        fail_msg("%s=%s: %s", name, value, errstr);
}

static void test_kcat_to_librdkafka(void **state)
{
    const char *brokers = pi_test_kafka_brokers();
    const char *support = getenv("PI_SUPPORT_DIR");
    const char *services = getenv("PI_SERVICES");
    char topic[128], payload[160], cmd[1024], errstr[512];
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *parts;
    rd_kafka_message_t *rkm;
    time_t deadline;
    int found = 0;

    (void)state;
    assert_non_null(support);
    assert_non_null(services);

    /* A fresh topic per run: auto-creation is off in the harness, so this
     * also proves the harness creates topics. */
    snprintf(topic, sizeof(topic), "smoke-%ld-%d", (long)time(NULL),
             (int)getpid());
    snprintf(payload, sizeof(payload), "{\"smoke\":\"%s\"}", topic);
    snprintf(cmd, sizeof(cmd), "bash '%s/kafka.sh' topic '%s/kafka' '%s' 1",
             support, services, topic);
    run(cmd);
    snprintf(cmd, sizeof(cmd),
             "printf '%%s\\n' '%s' | kcat -P -b '%s' -t '%s' -p 0 -k smoke",
             payload, brokers, topic);
    run(cmd);

    conf = rd_kafka_conf_new();
    conf_set(conf, "bootstrap.servers", brokers);
    conf_set(conf, "group.id", topic);
    conf_set(conf, "enable.auto.commit", "false");
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == NULL)
        fail_msg("rd_kafka_new: %s", errstr);
    conf = NULL; /* rd_kafka_new took it */
    rd_kafka_poll_set_consumer(rk);

    parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic, 0)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(rk, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(parts);

    deadline = time(NULL) + 30;
    while (!found && time(NULL) < deadline) {
        rkm = rd_kafka_consumer_poll(rk, 500);
        if (rkm == NULL)
            continue;
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            rd_kafka_message_destroy(rkm);
            continue;
        }
        if (rkm->err)
            fail_msg("consume: %s", rd_kafka_message_errstr(rkm));
        assert_int_equal(rkm->len, strlen(payload));
        assert_memory_equal(rkm->payload, payload, rkm->len);
        assert_int_equal(rkm->key_len, 5);
        assert_memory_equal(rkm->key, "smoke", 5);
        assert_int_equal(rkm->offset, 0);
        found = 1;
        rd_kafka_message_destroy(rkm);
    }
    assert_true(found);

    assert_int_equal(rd_kafka_consumer_close(rk), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(rk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kcat_to_librdkafka),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
