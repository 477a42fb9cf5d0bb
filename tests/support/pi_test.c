/* pi_test.c -- finding the harness's services from a test */
#include "pi_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "presence/mem.h"

char *pi_test_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = pi_malloc((size_t)n + 1);
    n = (long)fread(buf, 1, (size_t)n, f);
    fclose(f);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    return buf;
}

static const char *service_file(const char *name, const char *what)
{
    const char *dir = getenv("PI_SERVICES");
    char path[4096];
    char *s;

    if (dir == NULL) {
        fprintf(stderr,
                "PI_SERVICES is not set: run this test through ctest, "
                "which starts the %s fixture\n",
                what);
        exit(1);
    }
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    s = pi_test_read_file(path);
    if (s == NULL || *s == '\0') {
        fprintf(stderr,
                "%s is not running (no %s): the harness must start it\n", what,
                path);
        exit(1);
    }
    return s;
}

const char *pi_test_pg_conninfo(void)
{
    static const char *conninfo;
    if (conninfo == NULL)
        conninfo = service_file("pg/conninfo", "PostgreSQL");
    return conninfo;
}

const char *pi_test_kafka_brokers(void)
{
    static const char *brokers;
    if (brokers == NULL)
        brokers = service_file("kafka/brokers", "Kafka");
    return brokers;
}
