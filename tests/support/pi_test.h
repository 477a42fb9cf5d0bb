/* pi_test.h -- what tests share: finding the harness's services */
#ifndef PI_TEST_H
#define PI_TEST_H

#include <stddef.h>

/* The conninfo of the harness's PostgreSQL (database "postgres"), read from
 * $PI_SERVICES/pg/conninfo. Fails the test (exit 1) with a clear line when
 * the service is not there: tests never assume a running server. */
const char *pi_test_pg_conninfo(void);

/* bootstrap.servers of the harness's Kafka broker, read from
 * $PI_SERVICES/kafka/brokers; fails the test the same way. */
const char *pi_test_kafka_brokers(void);

/* Read a whole small file into a static-lifetime string (trailing newline
 * removed); NULL when it cannot be read. Caller frees. */
char *pi_test_read_file(const char *path);

#endif
