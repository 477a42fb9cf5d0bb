/* test_rollup.c -- the rollup catch-up thread (rollup.h): it catches up
 * what writers mark dirty, leaves a writer's transaction alone, keeps
 * retrying while the database is not there, and stops promptly, cancelling
 * a call in progress */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pi_test.h"
#include "pi_test_db.h"
#include "presence/metrics.h"
#include "presence/rollup.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Wait up to 10 s for SQL to give want. */
static void wait_for(PGconn *conn, const char *sql, int64_t want)
{
    for (int i = 0; i < 200; i++) {
        if (pi_test_db_int(conn, "%s", sql) == want)
            return;
        sleep_ms(50);
    }
    fail_msg("%s: never %lld", sql, (long long)want);
}

/* SQL's one text value equals want. */
static void assert_text(PGconn *conn, const char *sql, const char *want)
{
    char *got = pi_test_db_text(conn, "%s", sql);

    assert_string_equal(got, want);
    free(got);
}

static void test_rollup__catches_up_beside_a_writer(void **state)
{
    char *ci = pi_test_db_create_migrated("rollup");
    PGconn *conn = pi_test_db_connect(ci), *writer = pi_test_db_connect(ci);
    pi_rollup *r;
    double t0;

    (void)state;
    pi_rollup_start(&r, ci, 50, 5000);
    /* Committed rows: caught up within a few intervals. a1 online on conn
     * 10 (connect 10:00); a2 offline (connect 09:00, disconnect 09:30). */
    pi_test_db_exec(
        conn,
        "INSERT INTO presences (id, connection_id, type, reason, asset, time,"
        " time_offset_minutes) VALUES"
        " (1, 10, 'connect', 'cold_boot', 'a1', '2026-03-01 10:00Z', 0),"
        " (2, 20, 'connect', 'cold_boot', 'a2', '2026-03-01 09:00Z', 0),"
        " (3, 20, 'disconnect', 'socket_closed', 'a2', '2026-03-01 09:30Z',"
        " 0)");
    wait_for(conn, "SELECT count(*) FROM presence_dirty", 0);
    assert_text(conn,
                "SELECT string_agg(asset || ' ' || state || ' ' || "
                "connection_id, ', ' ORDER BY asset) FROM asset_state",
                "a1 online 10, a2 offline 20");
    assert_true(pi_rollup_assets(r) >= 2);

    /* A writer's open transaction (rows and their dirty row not committed)
     * is not waited for, and is not lost: caught up once committed. */
    pi_test_db_exec(writer, "BEGIN");
    pi_test_db_exec(writer,
                    "INSERT INTO presences (id, connection_id, type, reason,"
                    " asset, time, time_offset_minutes) VALUES (4, 10,"
                    " 'disconnect', 'network_error', 'a1',"
                    " '2026-03-01 11:00Z', 0)");
    sleep_ms(300);
    assert_text(conn, "SELECT state FROM asset_state WHERE asset = 'a1'",
                "online");
    t0 = now_s();
    pi_test_db_exec(writer, "COMMIT");
    assert_true(now_s() - t0 < 1.0);
    wait_for(conn,
             "SELECT count(*) FROM asset_state WHERE asset = 'a1' AND"
             " state = 'offline'",
             1);
    wait_for(conn, "SELECT count(*) FROM presence_dirty", 0);

    t0 = now_s();
    pi_rollup_stop(r);
    assert_true(now_s() - t0 < 1.0);
    PQfinish(writer);
    PQfinish(conn);
    pi_test_db_drop(ci);
    free(ci);
}

/* Stopped in the middle of a call: the call is cancelled on the server, not
 * left running there (a closed socket alone leaves the backend at work until
 * it next writes, holding the database busy). The catch-up is replaced by
 * one that sleeps 30 s, so only a cancel ends it within the 10 s waited. */
static void test_rollup__stop_cancels_the_call(void **state)
{
    char *ci = pi_test_db_create_migrated("rollup_cancel");
    PGconn *conn = pi_test_db_connect(ci);
    const char *running =
        "SELECT count(*) FROM pg_stat_activity WHERE datname ="
        " current_database() AND state = 'active' AND application_name ="
        " 'presence-ingest rollup'";
    pi_rollup *r;
    double t0;

    (void)state;
    pi_test_db_exec(conn, "CREATE OR REPLACE FUNCTION presence_rollup_refresh("
                          "max_rows int DEFAULT NULL) RETURNS bigint"
                          " LANGUAGE plpgsql AS $$ BEGIN"
                          " PERFORM pg_sleep(30); RETURN 0; END $$");
    pi_rollup_start(&r, ci, 50, 60000);
    wait_for(conn, running, 1);
    t0 = now_s();
    pi_rollup_stop(r);
    assert_true(now_s() - t0 < 1.0);
    wait_for(conn, running, 0);
    PQfinish(conn);
    pi_test_db_drop(ci);
    free(ci);
}

/* presence_rollup_lag_seconds: while another session holds the catch-up
 * lock, a change written 120 s ago (its presence_dirty row's `at` moved
 * back by hand) is pending, and the gauge says about 120; once the lock is
 * released and the change is folded, it says 0. */
static void test_rollup__lag_gauge(void **state)
{
    char *ci = pi_test_db_create_migrated("rollup_lag");
    PGconn *conn = pi_test_db_connect(ci), *holder = pi_test_db_connect(ci);
    pi_metrics *m;
    pi_rollup *r;
    char *text = NULL, *line;
    size_t len = 0;
    FILE *f;
    double lag = -1;

    (void)state;
    pi_metrics_new(&m, "test", 60000);
    pi_test_db_exec(holder, "BEGIN");
    pi_test_db_exec(holder, "SELECT pg_advisory_xact_lock("
                            "presence_rollup_lock_key())");
    pi_test_db_exec(conn, "INSERT INTO presences (id, connection_id, type,"
                          " reason, asset, time, time_offset_minutes) VALUES"
                          " (1, 10, 'connect', 'cold_boot', 'a1',"
                          " '2026-03-01 10:00Z', 0)");
    pi_test_db_exec(conn,
                    "UPDATE presence_dirty SET at = now() - interval '120 s'");
    pi_rollup_start(&r, ci, 50, 5000);
    pi_rollup_set_metrics(r, m);
    for (int i = 0; i < 200 && pi_rollup_lag(r) < 100; i++)
        sleep_ms(50);
    lag = pi_rollup_lag(r);
    assert_true(lag >= 120 && lag < 130);
    f = open_memstream(&text, &len);
    pi_metrics_write(m, f);
    fclose(f);
    line = strstr(text, "\npresence_rollup_lag_seconds 12");
    assert_non_null(line);
    free(text);
    pi_test_db_exec(holder, "COMMIT");
    wait_for(conn, "SELECT count(*) FROM presence_dirty", 0);
    for (int i = 0; i < 200 && pi_rollup_lag(r) != 0; i++)
        sleep_ms(50);
    assert_true(pi_rollup_lag(r) == 0);
    pi_rollup_stop(r);
    pi_metrics_destroy(m);
    PQfinish(holder);
    PQfinish(conn);
    pi_test_db_drop(ci);
    free(ci);
}

/* No such database: it keeps trying (and logs once), and stops at once. */
static void test_rollup__no_database_stops_promptly(void **state)
{
    char ci[512];
    pi_rollup *r;
    double t0;

    (void)state;
    snprintf(ci, sizeof(ci), "%s dbname=pi_rollup_no_such_db",
             pi_test_pg_conninfo());
    pi_rollup_start(&r, ci, 20, 1000);
    sleep_ms(300);
    assert_int_equal(pi_rollup_assets(r), 0);
    t0 = now_s();
    pi_rollup_stop(r);
    assert_true(now_s() - t0 < 1.0);
    pi_rollup_stop(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rollup__catches_up_beside_a_writer),
        cmocka_unit_test(test_rollup__stop_cancels_the_call),
        cmocka_unit_test(test_rollup__lag_gauge),
        cmocka_unit_test(test_rollup__no_database_stops_promptly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
