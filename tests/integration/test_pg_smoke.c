/* test_pg_smoke.c -- the harness's PostgreSQL is really there, and is 15.x */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "pi_test.h"

static void test_select_version(void **state)
{
    PGconn *conn;
    PGresult *res;

    (void)state;
    conn = PQconnectdb(pi_test_pg_conninfo());
    if (PQstatus(conn) != CONNECTION_OK)
        fail_msg("cannot connect to %s: %s", pi_test_pg_conninfo(),
                 PQerrorMessage(conn));

    res = PQexec(conn, "SELECT version()");
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(res), 1);
    print_message("%s\n", PQgetvalue(res, 0, 0));
    assert_true(strncmp(PQgetvalue(res, 0, 0), "PostgreSQL 15.", 14) == 0);
    PQclear(res);

    /* The libpq side agrees: a 15.x server reports 150000 … 159999. */
    assert_in_range(PQserverVersion(conn), 150000, 159999);
    PQfinish(conn);
}

/* The harness promises room for many concurrent connections (the writer
 * tests open several pools at once). */
static void test_max_connections(void **state)
{
    PGconn *conn;
    PGresult *res;

    (void)state;
    conn = PQconnectdb(pi_test_pg_conninfo());
    assert_int_equal(PQstatus(conn), CONNECTION_OK);
    res = PQexec(conn, "SHOW max_connections");
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    assert_true(atoi(PQgetvalue(res, 0, 0)) >= 100);
    PQclear(res);
    PQfinish(conn);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_select_version),
        cmocka_unit_test(test_max_connections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
