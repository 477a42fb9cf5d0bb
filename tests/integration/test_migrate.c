/* test_migrate.c -- migrations: the tables of CONTRACT §4, idempotent, locked
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pi_test.h"
#include "pi_test_db.h"
#include "presence/migrate.h"

/* How many migration files there are (versions may have gaps: another
 * branch's number not merged yet). */
static int migration_files(void)
{
    DIR *d = opendir(pi_migrate_source_dir());
    struct dirent *de;
    int n = 0;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        n += atoi(de->d_name) > 0 && strstr(de->d_name, ".sql") != NULL;
    closedir(d);
    return n;
}

static void test_migrate__schema_version_matches_files(void **state)
{
    DIR *d = opendir(pi_migrate_source_dir());
    struct dirent *de;
    int highest = 0;

    (void)state;
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        int v = atoi(de->d_name);
        if (v > highest && strstr(de->d_name, ".sql"))
            highest = v;
    }
    closedir(d);
    assert_int_equal(highest, PI_SCHEMA_VERSION);
    /* The same directory, read at run time, gives the same schema. */
    {
        char *ci = pi_test_db_create("migrate");
        int applied, version;
        pi_err err;

        assert_int_equal(pi_migrate_apply(&applied, &version, ci,
                                          pi_migrate_source_dir(), NULL, &err),
                         0);
        assert_int_equal(version, PI_SCHEMA_VERSION);
        assert_int_equal(applied, migration_files());
        pi_test_db_drop(ci);
        free(ci);
    }
}

/* Columns of a table as "name type nullable", in order. */
static char *columns(PGconn *conn, const char *table)
{
    return pi_test_db_text(
        conn,
        "SELECT string_agg(column_name || ' ' || data_type || ' ' || "
        "is_nullable, ', ' ORDER BY ordinal_position) FROM "
        "information_schema.columns WHERE table_schema = 'public' AND "
        "table_name = '%s'",
        table);
}

static void test_migrate__creates_contract_tables(void **state)
{
    char *ci = pi_test_db_create("migrate");
    PGconn *conn;
    int applied, version;
    pi_err err;
    char *s;

    (void)state;
    assert_int_equal(pi_migrate_apply(&applied, &version, ci, NULL, NULL, &err),
                     0);
    assert_int_equal(applied, migration_files());
    assert_int_equal(version, PI_SCHEMA_VERSION);
    conn = pi_test_db_connect(ci);

    s = columns(conn, "presences");
    assert_string_equal(
        s, "id bigint NO, connection_id bigint NO, type text NO, reason text "
           "NO, asset text YES, time timestamp with time zone NO, "
           "time_offset_minutes smallint NO, kafka_topic text YES, "
           "kafka_partition integer YES, kafka_offset bigint YES, ingested_at "
           "timestamp with time zone NO");
    free(s);
    s = columns(conn, "presence_rejects");
    assert_string_equal(
        s, "topic text NO, partition integer NO, offset bigint NO, element "
           "integer NO, error text NO, detail text NO, payload bytea YES, key "
           "bytea YES, rejected_at timestamp with time zone NO");
    free(s);
    s = columns(conn, "ingest_offsets");
    assert_string_equal(s, "consumer_group text NO, topic text NO, partition "
                           "integer NO, next_offset bigint NO, updated_at "
                           "timestamp with time zone NO");
    free(s);
    s = columns(conn, "schema_migrations");
    assert_string_equal(s, "version integer NO, name text NO, applied_at "
                           "timestamp with time zone NO");
    free(s);

    /* Keys: presences(id), rejects unique on the message element,
     * ingest_offsets(group, topic, partition). */
    s = pi_test_db_text(conn, "SELECT string_agg(indexdef, '; ' ORDER BY "
                              "indexname) FROM pg_indexes WHERE schemaname = "
                              "'public'");
    print_message("%s\n", s);
    /* 0003: presences is partitioned, its indexes are partitioned ones. */
    assert_non_null(strstr(s, "UNIQUE INDEX presences_pkey ON ONLY "
                              "public.presences USING btree (id)"));
    assert_non_null(strstr(s, "UNIQUE INDEX presence_rejects_message_key ON "
                              "public.presence_rejects USING btree (topic, "
                              "partition, \"offset\", element)"));
    assert_non_null(strstr(s, "UNIQUE INDEX ingest_offsets_pkey ON "
                              "public.ingest_offsets USING btree "
                              "(consumer_group, topic, partition)"));
    /* 0002 replaced 0001's (asset, time) by one index the reports walk. */
    assert_non_null(strstr(s, "presences USING btree (asset, type, \"time\", "
                              "id) INCLUDE (connection_id)"));
    assert_null(strstr(s, "presences_asset_time_idx"));
    assert_non_null(strstr(s, "presences USING btree (connection_id)"));
    free(s);
    /* The invariants the tables enforce on their own. */
    pi_test_db_exec(conn, "INSERT INTO presence_rejects (topic, partition, "
                          "\"offset\", element, error, detail) VALUES "
                          "('t', 0, 1, 0, 'empty', '')");
    {
        PGresult *res = PQexec(conn, "INSERT INTO presence_rejects (topic, "
                                     "partition, \"offset\", element, error, "
                                     "detail) VALUES ('t', 0, 1, 0, 'x', '')");
        assert_string_equal(PQresultErrorField(res, PG_DIAG_SQLSTATE), "23505");
        PQclear(res);
        res = PQexec(conn, "INSERT INTO presences (id, connection_id, type, "
                           "reason, time, time_offset_minutes) VALUES (0, 1, "
                           "'connect', '', now(), 0)");
        assert_string_equal(PQresultErrorField(res, PG_DIAG_SQLSTATE), "23514");
        PQclear(res);
    }
    assert_int_equal(pi_test_db_int(conn, "SELECT count(*) FROM "
                                          "schema_migrations WHERE version = "
                                          "1 AND name = '0001_initial.sql'"),
                     1);
    PQfinish(conn);
    pi_test_db_drop(ci);
    free(ci);
}

static void test_migrate__twice_is_a_noop(void **state)
{
    char *ci = pi_test_db_create("migrate");
    PGconn *conn;
    int applied, version;
    pi_err err;
    char *before, *after;
    FILE *out;
    char line[256] = "";

    (void)state;
    assert_int_equal(pi_migrate_apply(&applied, &version, ci, NULL, NULL, &err),
                     0);
    conn = pi_test_db_connect(ci);
    before = pi_test_db_text(conn, "SELECT string_agg(xmin::text || ctid::text"
                                   ", ',') FROM schema_migrations");
    out = tmpfile();
    assert_int_equal(pi_migrate_apply(&applied, &version, ci, NULL, out, &err),
                     0);
    assert_int_equal(applied, 0);
    assert_int_equal(version, PI_SCHEMA_VERSION);
    rewind(out);
    assert_null(fgets(line, sizeof(line), out)); /* printed nothing */
    fclose(out);
    after = pi_test_db_text(conn, "SELECT string_agg(xmin::text || ctid::text"
                                  ", ',') FROM schema_migrations");
    assert_string_equal(before, after);
    free(before);
    free(after);
    PQfinish(conn);
    pi_test_db_drop(ci);
    free(ci);
}

typedef struct racer {
    const char *conninfo;
    int rc, applied, version;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    pi_err err;

    r->rc = pi_migrate_apply(&r->applied, &r->version, r->conninfo, NULL, NULL,
                             &err);
    if (r->rc)
        fprintf(stderr, "migrate: %s\n", err.msg);
    return NULL;
}

static void test_migrate__concurrent_runs_apply_once(void **state)
{
    char *ci = pi_test_db_create("migrate");
    racer r[4];
    pthread_t th[4];
    int total = 0;
    PGconn *conn;

    (void)state;
    for (int i = 0; i < 4; i++) {
        r[i].conninfo = ci;
        pthread_create(&th[i], NULL, race, &r[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(r[i].rc, 0);
        assert_int_equal(r[i].version, PI_SCHEMA_VERSION);
        total += r[i].applied;
    }
    assert_int_equal(total, migration_files());
    conn = pi_test_db_connect(ci);
    assert_int_equal(
        pi_test_db_int(conn, "SELECT count(*) FROM schema_migrations"),
        migration_files());
    PQfinish(conn);
    pi_test_db_drop(ci);
    free(ci);
}

static void test_migrate__check_refuses_older_schema(void **state)
{
    char *ci = pi_test_db_create("migrate");
    PGconn *conn = pi_test_db_connect(ci);
    int applied, version;
    pi_err err;

    (void)state;
    assert_int_equal(pi_migrate_check(conn, &err), PI_ESCHEMA);
    assert_non_null(strstr(err.msg, "run `presence-ingest migrate`"));
    assert_int_equal(pi_migrate_apply(&applied, &version, ci, NULL, NULL, &err),
                     0);
    assert_int_equal(pi_migrate_check(conn, &err), 0);
    /* A database whose last migration was rolled back by hand. */
    pi_test_db_exec(conn, "DELETE FROM schema_migrations WHERE version = %d",
                    PI_SCHEMA_VERSION);
    assert_int_equal(pi_migrate_check(conn, &err), PI_ESCHEMA);
    PQfinish(conn);
    pi_test_db_drop(ci);
    free(ci);
}

static void test_migrate__bad_directory_and_bad_sql(void **state)
{
    char dir[] = "/tmp/pi_migrate_XXXXXX";
    char path[512], *ci;
    int applied, version;
    pi_err err;
    FILE *f;

    (void)state;
    assert_int_equal(pi_migrate_apply(&applied, &version, "dbname=x",
                                      "/nonexistent/dir", NULL, &err),
                     PI_EINVAL);
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/0001_initial.sql", dir);
    f = fopen(path, "w");
    fputs("CREATE TABLE schema_migrations (version int PRIMARY KEY, name "
          "text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());"
          "CREATE TABLE ok (a int);",
          f);
    fclose(f);
    /* The highest version, or the build refuses the directory first. */
    snprintf(path, sizeof(path), "%s/%04d_broken.sql", dir, PI_SCHEMA_VERSION);
    f = fopen(path, "w");
    fputs("CREATE TABLE broken (a int); SELEKT 1;", f);
    fclose(f);
    ci = pi_test_db_create("migrate");
    assert_int_equal(pi_migrate_apply(&applied, &version, ci, dir, NULL, &err),
                     PI_EFATAL);
    assert_non_null(strstr(err.msg, strrchr(path, '/') + 1));
    /* The good one stays applied, the broken one left nothing behind. */
    assert_int_equal(applied, 1);
    {
        PGconn *conn = pi_test_db_connect(ci);
        assert_int_equal(pi_test_db_int(conn, "SELECT count(*) FROM "
                                              "pg_tables WHERE tablename IN "
                                              "('ok', 'broken')"),
                         1);
        PQfinish(conn);
    }
    pi_test_db_drop(ci);
    free(ci);
    remove(path);
    snprintf(path, sizeof(path), "%s/0001_initial.sql", dir);
    remove(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrate__schema_version_matches_files),
        cmocka_unit_test(test_migrate__creates_contract_tables),
        cmocka_unit_test(test_migrate__twice_is_a_noop),
        cmocka_unit_test(test_migrate__concurrent_runs_apply_once),
        cmocka_unit_test(test_migrate__check_refuses_older_schema),
        cmocka_unit_test(test_migrate__bad_directory_and_bad_sql),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
