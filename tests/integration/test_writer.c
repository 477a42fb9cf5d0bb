/* test_writer.c -- the writer against a real PostgreSQL: exactly once, fenced
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pi_test.h"
#include "pi_test_db.h"
#include "presence/batch.h"
#include "presence/decode.h"
#include "presence/writer.h"

typedef struct fixture {
    char *conninfo;
    PGconn *conn; /* for checks */
    pi_decoder *dec;
    pi_batch *batch;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));

    f->conninfo = pi_test_db_create_migrated("writer");
    f->conn = pi_test_db_connect(f->conninfo);
    pi_decoder_new(&f->dec, PI_DECODE_DEFAULT_MAX_BYTES);
    pi_batch_new(&f->batch);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    PQfinish(f->conn);
    pi_test_db_drop(f->conninfo);
    pi_batch_destroy(f->batch);
    pi_decoder_destroy(f->dec);
    free(f->conninfo);
    free(f);
    return 0;
}

static pi_writer *new_writer(fixture *f, const char *group,
                             pi_on_conflict policy)
{
    pi_writer_opts opts;
    pi_writer *w;
    pi_err err;

    pi_writer_opts_init(&opts);
    opts.conninfo = f->conninfo;
    opts.group = group;
    opts.on_conflict = policy;
    opts.backoff_min_ms = 10;
    opts.backoff_max_ms = 100;
    if (pi_writer_new(&w, &opts, &err) != 0)
        fail_msg("pi_writer_new: %s", err.msg);
    return w;
}

static void add(fixture *f, const char *topic, int32_t partition,
                int64_t offset, const char *value)
{
    pi_batch_add(f->batch, f->dec, topic, partition, offset, "k", 1, value,
                 strlen(value));
}

/* Presence i of the generator as a message value. */
static void add_gen(fixture *f, const char *topic, int32_t partition,
                    int64_t offset, uint64_t i)
{
    char buf[1024];

    pi_test_gen_presence(buf, sizeof(buf), PI_TEST_FIRST_ID, i);
    add(f, topic, partition, offset, buf);
}

static pi_write_stats write_ok(pi_writer *w, pi_batch *batch)
{
    pi_write_stats st;
    pi_err err;

    memset(&st, 0, sizeof(st));
    if (pi_writer_write(w, batch, &st, &err) != 0)
        fail_msg("pi_writer_write: %s", err.msg);
    return st;
}

static void assert_stats(const pi_write_stats *st, uint64_t messages,
                         uint64_t stored, uint64_t duplicates,
                         uint64_t conflicts, uint64_t rejected,
                         uint64_t skipped)
{
    print_message("messages=%" PRIu64 " stored=%" PRIu64 " duplicates=%" PRIu64
                  " conflicts=%" PRIu64 " rejected=%" PRIu64 " skipped=%" PRIu64
                  " fenced=%" PRIu64 "\n",
                  st->messages, st->stored, st->duplicates, st->conflicts,
                  st->rejected, st->skipped, st->fenced);
    assert_int_equal(st->messages, messages);
    assert_int_equal(st->stored, stored);
    assert_int_equal(st->duplicates, duplicates);
    assert_int_equal(st->conflicts, conflicts);
    assert_int_equal(st->rejected, rejected);
    assert_int_equal(st->skipped, skipped);
}

/* A fingerprint of every row version: changes if any row is rewritten. */
static char *xmins(PGconn *conn, const char *table)
{
    return pi_test_db_text(conn,
                           "SELECT count(*) || ':' || coalesce(md5(string_agg("
                           "xmin::text || ctid::text, ',' ORDER BY ctid)), '') "
                           "FROM %s",
                           table);
}

static const char track[] =
    "{\"meta\":{\"event\":\"track\"},\"payload\":{\"id\":1}}";

static void test_writer__stores_then_replay_changes_nothing(void **state)
{
    fixture *f = *state;
    pi_writer *w = new_writer(f, NULL, PI_ON_CONFLICT_KEEP);
    pi_write_stats st;
    char *before, *rbefore, *after, *rafter;

    for (int i = 0; i < 200; i++)
        add_gen(f, "file.txt", -1, i + 1, (uint64_t)i);
    add(f, "file.txt", -1, 201, "{not json");
    add(f, "file.txt", -1, 202, track);
    add(f, "file.txt", -1, 203, "");
    st = write_ok(w, f->batch);
    assert_stats(&st, 203, 200, 0, 0, 2, 1);
    assert_int_equal(st.fenced, 0);

    assert_int_equal(pi_test_db_int(f->conn, "SELECT count(*) FROM presences"),
                     200);
    /* Provenance per CONTRACT §4 (load: path, -1, line number). */
    assert_int_equal(pi_test_db_int(f->conn,
                                    "SELECT count(*) FROM presences WHERE "
                                    "kafka_topic = 'file.txt' AND "
                                    "kafka_partition = -1 AND kafka_offset = "
                                    "id - %" PRId64 " + 1",
                                    PI_TEST_FIRST_ID),
                     200);
    /* The rejects keep the raw value and the key, untouched. */
    assert_int_equal(pi_test_db_int(f->conn,
                                    "SELECT count(*) FROM presence_rejects "
                                    "WHERE topic = 'file.txt' AND partition = "
                                    "-1 AND \"offset\" = 201 AND element = 0 "
                                    "AND error = 'malformed_json' AND payload "
                                    "= '{not json'::bytea AND key = 'k'"),
                     1);
    assert_int_equal(pi_test_db_int(f->conn,
                                    "SELECT count(*) FROM presence_rejects "
                                    "WHERE \"offset\" = 203 AND error = "
                                    "'empty' AND payload = ''::bytea"),
                     1);
    /* No ingest_offsets without a group. */
    assert_int_equal(
        pi_test_db_int(f->conn, "SELECT count(*) FROM ingest_offsets"), 0);

    before = xmins(f->conn, "presences");
    rbefore = xmins(f->conn, "presence_rejects");
    st = write_ok(w, f->batch);
    assert_stats(&st, 203, 0, 200, 0, 2, 1);
    after = xmins(f->conn, "presences");
    rafter = xmins(f->conn, "presence_rejects");
    assert_string_equal(before, after);
    assert_string_equal(rbefore, rafter);
    /* No dead tuple either: nothing was updated or deleted. */
    pi_test_db_exec(f->conn, "SELECT pg_stat_force_next_flush()");
    assert_int_equal(pi_test_db_int(f->conn,
                                    "SELECT n_tup_upd + n_tup_del FROM "
                                    "pg_stat_user_tables WHERE relname = "
                                    "'presences'"),
                     0);
    free(before);
    free(after);
    free(rbefore);
    free(rafter);
    pi_writer_destroy(w);
}

static void test_writer__stored_values_are_exact(void **state)
{
    fixture *f = *state;
    pi_writer *w = new_writer(f, NULL, PI_ON_CONFLICT_KEEP);
    pi_write_stats st;
    char *row;

    add(f, "t", 3, 42,
        "[{\"meta\":{\"account\":\"municio\",\"event\":\"presence\"},"
        "\"payload\":{\"id\":911270996919452058,\"connection_id\":"
        "911270996911063452,\"id_str\":\"911270996919452058\","
        "\"connection_id_str\":\"911270996911063452\",\"asset\":"
        "\"356156060353505\",\"time\":\"2016-11-19T16:05:36.123456789+01:00\","
        "\"type\":\"connect\",\"reason\":\"idle_out\"}},"
        "{\"id_str\":\"7\",\"connection_id_str\":\"8\",\"type\":"
        "\"failed_connect\",\"reason\":\"x\",\"asset\":null,\"time\":"
        "\"2020-02-29T23:59:60-05:30\"}]");
    st = write_ok(w, f->batch);
    assert_stats(&st, 1, 2, 0, 0, 0, 0);
    row = pi_test_db_text(
        f->conn, "SELECT concat_ws('|', id, connection_id, type, reason, "
                 "asset, to_char(time AT TIME ZONE 'UTC', "
                 "'YYYY-MM-DD HH24:MI:SS.US'), time_offset_minutes, "
                 "kafka_topic, kafka_partition, kafka_offset) FROM presences "
                 "WHERE id = 911270996919452058");
    assert_string_equal(row, "911270996919452058|911270996911063452|connect|"
                             "idle_out|356156060353505|2016-11-19 "
                             "15:05:36.123456|60|t|3|42");
    free(row);
    row = pi_test_db_text(
        f->conn, "SELECT concat_ws('|', id, type, coalesce(asset, 'NULL'), "
                 "to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), "
                 "time_offset_minutes) FROM presences WHERE id = 7");
    assert_string_equal(row, "7|failed_connect|NULL|2020-03-01 05:30:00|-330");
    free(row);
    pi_writer_destroy(w);
}

static const char base[] =
    "{\"id_str\":\"100\",\"connection_id_str\":\"5\",\"type\":\"connect\","
    "\"reason\":\"%s\",\"asset\":\"357322041802978\",\"time\":"
    "\"2016-11-19T15:05:36Z\"}";

static void add_reason(fixture *f, int64_t offset, const char *reason)
{
    char buf[512];

    snprintf(buf, sizeof(buf), base, reason);
    add(f, "t", 0, offset, buf);
}

static void test_writer__conflict_keep_records_reject(void **state)
{
    fixture *f = *state;
    pi_writer *w = new_writer(f, NULL, PI_ON_CONFLICT_KEEP);
    pi_write_stats st;
    char *before, *after, *detail;

    add_reason(f, 1, "idle_out");
    st = write_ok(w, f->batch);
    assert_stats(&st, 1, 1, 0, 0, 0, 0);
    before = xmins(f->conn, "presences");

    pi_batch_reset(f->batch);
    add_reason(f, 2, "ppp_lost");
    st = write_ok(w, f->batch);
    assert_stats(&st, 1, 0, 0, 1, 0, 0);
    after = xmins(f->conn, "presences");
    assert_string_equal(before, after);
    assert_int_equal(pi_test_db_int(f->conn, "SELECT count(*) FROM presences "
                                             "WHERE reason = 'idle_out'"),
                     1);
    detail =
        pi_test_db_text(f->conn, "SELECT detail FROM presence_rejects WHERE "
                                 "error = 'id_conflict' AND \"offset\" = 2");
    print_message("detail: %s\n", detail);
    assert_non_null(strstr(detail, "reason \"idle_out\" (here \"ppp_lost\")"));
    assert_non_null(strstr(detail, "t/0@1"));
    free(detail);
    /* The payload of an id_conflict is the element, re-encoded: it decodes
     * to the incoming presence, so it can be re-driven. */
    assert_int_equal(
        pi_test_db_int(f->conn,
                       "SELECT count(*) FROM presence_rejects WHERE "
                       "convert_from(payload, 'UTF8')::json->>'reason' = "
                       "'ppp_lost' AND convert_from(payload, "
                       "'UTF8')::json->>'id_str' = '100' AND key = 'k'"),
        1);

    /* Replayed: counted again, recorded once. */
    st = write_ok(w, f->batch);
    assert_stats(&st, 1, 0, 0, 1, 0, 0);
    assert_int_equal(
        pi_test_db_int(f->conn, "SELECT count(*) FROM presence_rejects"), 1);
    free(before);
    free(after);
    pi_writer_destroy(w);
}

static void test_writer__conflict_replace_overwrites(void **state)
{
    fixture *f = *state;
    pi_writer *w = new_writer(f, NULL, PI_ON_CONFLICT_REPLACE);
    pi_write_stats st;
    char *before, *after;

    add_reason(f, 1, "idle_out");
    st = write_ok(w, f->batch);
    assert_stats(&st, 1, 1, 0, 0, 0, 0);

    pi_batch_reset(f->batch);
    add_reason(f, 2, "ppp_lost");
    st = write_ok(w, f->batch);
    assert_stats(&st, 1, 0, 0, 1, 0, 0);
    assert_int_equal(pi_test_db_int(f->conn,
                                    "SELECT count(*) FROM presences WHERE "
                                    "reason = 'ppp_lost' AND kafka_offset = 2"),
                     1);
    assert_int_equal(
        pi_test_db_int(f->conn, "SELECT count(*) FROM presence_rejects"), 0);

    /* Identical again under replace: no UPDATE. */
    before = xmins(f->conn, "presences");
    st = write_ok(w, f->batch);
    assert_stats(&st, 1, 0, 1, 0, 0, 0);
    after = xmins(f->conn, "presences");
    assert_string_equal(before, after);
    free(before);
    free(after);
    pi_writer_destroy(w);
}

static void test_writer__same_id_twice_in_a_batch(void **state)
{
    fixture *f = *state;
    pi_writer *keep = new_writer(f, NULL, PI_ON_CONFLICT_KEEP);
    pi_writer *replace;
    pi_write_stats st;

    add_reason(f, 1, "idle_out");
    add_reason(f, 2, "idle_out");
    add_reason(f, 3, "ppp_lost");
    st = write_ok(keep, f->batch);
    assert_stats(&st, 3, 1, 1, 1, 0, 0);
    assert_int_equal(pi_test_db_int(f->conn,
                                    "SELECT count(*) FROM presences WHERE "
                                    "reason = 'idle_out' AND kafka_offset = 1"),
                     1);
    assert_int_equal(pi_test_db_int(f->conn,
                                    "SELECT count(*) FROM presence_rejects "
                                    "WHERE error = 'id_conflict' AND "
                                    "\"offset\" = 3"),
                     1);
    {
        /* The detail names the differing field: kept vs incoming. */
        char *detail = pi_test_db_text(
            f->conn,
            "SELECT detail FROM presence_rejects WHERE \"offset\" = 3");
        if (strstr(detail, "reason \"idle_out\" vs \"ppp_lost\"") == NULL)
            fail_msg("id_conflict detail: %s", detail);
        free(detail);
    }
    pi_writer_destroy(keep);

    /* replace, on an empty table: the later message wins. */
    pi_test_db_exec(f->conn, "TRUNCATE presences, presence_rejects");
    replace = new_writer(f, NULL, PI_ON_CONFLICT_REPLACE);
    st = write_ok(replace, f->batch);
    assert_stats(&st, 3, 1, 1, 1, 0, 0);
    assert_int_equal(pi_test_db_int(f->conn,
                                    "SELECT count(*) FROM presences WHERE "
                                    "reason = 'ppp_lost' AND kafka_offset = 3"),
                     1);
    assert_int_equal(
        pi_test_db_int(f->conn, "SELECT count(*) FROM presence_rejects"), 0);
    pi_writer_destroy(replace);
}

static void test_writer__refused_row_is_isolated(void **state)
{
    fixture *f = *state;
    pi_writer *w = new_writer(f, "g", PI_ON_CONFLICT_KEEP);
    pi_write_stats st;
    char buf[1024];
    char *detail;

    /* The test's own rule: PostgreSQL refuses one specific row (23514). */
    pi_test_db_exec(f->conn, "ALTER TABLE presences ADD CONSTRAINT "
                             "presences_reason_check CHECK (reason <> "
                             "'poison')");
    for (int i = 0; i < 1000; i++) {
        if (i == 617) {
            snprintf(buf, sizeof(buf),
                     "{\"id\":5,\"connection_id\":6,\"type\":\"connect\","
                     "\"reason\":\"poison\",\"asset\":\"a\",\"time\":"
                     "\"2016-11-19T15:05:36Z\"}");
            add(f, "t", 0, i, buf);
        } else {
            add_gen(f, "t", 0, i, (uint64_t)i);
        }
    }
    add(f, "t", 0, 1000, "[1]");
    st = write_ok(w, f->batch);
    assert_stats(&st, 1001, 999, 0, 0, 2, 0);
    assert_int_equal(st.splits, 1);
    assert_int_equal(pi_test_db_int(f->conn, "SELECT count(*) FROM presences"),
                     999);
    assert_int_equal(
        pi_test_db_int(f->conn, "SELECT count(*) FROM presences WHERE id = 5"),
        0);
    detail = pi_test_db_text(f->conn, "SELECT error || ': ' || detail FROM "
                                      "presence_rejects WHERE \"offset\" = "
                                      "617 AND element = 0");
    print_message("%s\n", detail);
    assert_non_null(strstr(detail, "bad_reason: refused by PostgreSQL: 23514"));
    free(detail);
    assert_int_equal(pi_test_db_int(f->conn,
                                    "SELECT next_offset FROM ingest_offsets "
                                    "WHERE consumer_group = 'g' AND topic = "
                                    "'t' AND partition = 0"),
                     1001);

    /* Replayed: fenced whole, nothing written. */
    st = write_ok(w, f->batch);
    assert_int_equal(st.fenced, 1001);
    assert_int_equal(st.stored + st.duplicates + st.rejected, 0);
    pi_writer_destroy(w);
}

static void test_writer__offsets_only_move_forward(void **state)
{
    fixture *f = *state;
    pi_writer *w = new_writer(f, "g", PI_ON_CONFLICT_KEEP);
    pi_writer *stale = new_writer(f, "g", PI_ON_CONFLICT_REPLACE);
    pi_write_stats st;
    int64_t next;
    pi_err err;
    char *before, *after;

    assert_int_equal(pi_writer_next_offset(w, "t", 0, &next, &err), 0);
    assert_int_equal(next, -1);
    for (int i = 0; i < 10; i++)
        add_gen(f, "t", 0, i, (uint64_t)i);
    for (int i = 0; i < 4; i++)
        add_gen(f, "u", 1, 100 + i, (uint64_t)(50 + i));
    st = write_ok(w, f->batch);
    assert_stats(&st, 14, 14, 0, 0, 0, 0);
    assert_int_equal(pi_writer_next_offset(w, "t", 0, &next, &err), 0);
    assert_int_equal(next, 10);
    assert_int_equal(pi_writer_next_offset(w, "u", 1, &next, &err), 0);
    assert_int_equal(next, 104);

    /* A stale owner replays offsets 0-9 with other content (replace!):
     * nothing is written, the offset stays. */
    before = xmins(f->conn, "presences");
    pi_batch_reset(f->batch);
    for (int i = 0; i < 10; i++)
        add_reason(f, i, "stale");
    st = write_ok(stale, f->batch);
    assert_int_equal(st.fenced, 10);
    assert_int_equal(st.messages, 10);
    assert_int_equal(st.stored + st.duplicates + st.conflicts + st.rejected, 0);
    after = xmins(f->conn, "presences");
    assert_string_equal(before, after);
    assert_int_equal(pi_writer_next_offset(w, "t", 0, &next, &err), 0);
    assert_int_equal(next, 10);

    /* Overlapping batch: 5-9 fenced, 10-14 written. */
    pi_batch_reset(f->batch);
    for (int i = 5; i < 15; i++)
        add_gen(f, "t", 0, i, (uint64_t)i);
    st = write_ok(w, f->batch);
    assert_int_equal(st.fenced, 5);
    assert_int_equal(st.stored, 5);
    assert_int_equal(pi_writer_next_offset(w, "t", 0, &next, &err), 0);
    assert_int_equal(next, 15);

    /* Another owner went further: a lower batch never moves it back. */
    pi_test_db_exec(f->conn, "UPDATE ingest_offsets SET next_offset = 100 "
                             "WHERE topic = 't'");
    pi_batch_reset(f->batch);
    for (int i = 15; i < 20; i++)
        add_gen(f, "t", 0, i, (uint64_t)i);
    st = write_ok(stale, f->batch);
    assert_int_equal(st.fenced, 5);
    assert_int_equal(pi_writer_next_offset(w, "t", 0, &next, &err), 0);
    assert_int_equal(next, 100);
    assert_int_equal(pi_test_db_int(f->conn, "SELECT count(*) FROM presences"),
                     19);
    free(before);
    free(after);
    pi_writer_destroy(stale);
    pi_writer_destroy(w);
}

static void test_writer__old_schema_refused(void **state)
{
    fixture *f = *state;
    char *empty = pi_test_db_create("writer_empty");
    pi_writer_opts opts;
    pi_writer *w = NULL;
    pi_err err;

    (void)f;
    pi_writer_opts_init(&opts);
    opts.conninfo = empty;
    assert_int_equal(pi_writer_new(&w, &opts, &err), PI_ESCHEMA);
    assert_null(w);
    assert_non_null(strstr(err.msg, "presence-ingest migrate"));
    pi_test_db_drop(empty);
    free(empty);

    /* Not reachable: PI_ERETRY (the caller decides), password masked. */
    opts.conninfo = "host=127.0.0.1 port=1 password=secret connect_timeout=2";
    assert_int_equal(pi_writer_new(&w, &opts, &err), PI_ERETRY);
    assert_null(strstr(err.msg, "secret"));
    opts.conninfo = "this is = not valid";
    assert_int_equal(pi_writer_new(&w, &opts, &err), PI_EINVAL);

    /* Refused by the server for good (its SQLSTATE in the one line): no
     * such database, no such role. Stop, do not wait. */
    char conninfo[1024];
    snprintf(conninfo, sizeof(conninfo), "%s dbname=pi_no_such_db",
             f->conninfo);
    opts.conninfo = conninfo;
    assert_int_equal(pi_writer_new(&w, &opts, &err), PI_EFATAL);
    assert_non_null(strstr(err.msg, "3D000: database \"pi_no_such_db\""));
    assert_null(strchr(err.msg, '\n'));
    snprintf(conninfo, sizeof(conninfo), "%s user=pi_no_such_role",
             f->conninfo);
    assert_int_equal(pi_writer_new(&w, &opts, &err), PI_EFATAL);
    assert_non_null(strstr(err.msg, "28000: role \"pi_no_such_role\""));
    assert_null(strstr(err.msg, "LOCATION"));
}

static void test_writer__reconnects_and_cancel(void **state)
{
    fixture *f = *state;
    pi_writer_opts opts;
    pi_writer *w;
    pi_write_stats st;
    atomic_int cancel = 0;
    PGconn *admin;
    pi_err err;

    pi_writer_opts_init(&opts);
    opts.conninfo = f->conninfo;
    opts.cancel = &cancel;
    opts.backoff_min_ms = 10;
    opts.backoff_max_ms = 20;
    assert_int_equal(pi_writer_new(&w, &opts, &err), 0);
    add_gen(f, "t", 0, 1, 1);
    /* Kill our own backend: the write must retry (reconnect) and succeed. */
    pi_test_db_exec(f->conn,
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> "
                    "pg_backend_pid()");
    memset(&st, 0, sizeof(st));
    assert_int_equal(pi_writer_write(w, f->batch, &st, &err), 0);
    assert_int_equal(st.stored, 1);
    assert_true(st.retries >= 1);

    /* Again, with the database closed to new connections and cancel set:
     * the write gives up with PI_ERETRY and commits nothing. */
    pi_batch_reset(f->batch);
    add_gen(f, "t", 0, 2, 2);
    admin = pi_test_db_connect(pi_test_pg_conninfo());
    pi_test_db_exec(admin, "ALTER DATABASE %s ALLOW_CONNECTIONS false",
                    PQdb(f->conn));
    pi_test_db_exec(f->conn,
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> "
                    "pg_backend_pid()");
    atomic_store(&cancel, 1);
    assert_int_equal(pi_writer_write(w, f->batch, &st, &err), PI_ERETRY);
    pi_test_db_exec(admin, "ALTER DATABASE %s ALLOW_CONNECTIONS true",
                    PQdb(f->conn));
    PQfinish(admin);
    assert_int_equal(pi_test_db_int(f->conn, "SELECT count(*) FROM presences"),
                     1);
    pi_writer_destroy(w);
}

/* Two rows that are fine alone but not together (a unique index the test
 * adds): the second is isolated, the first stays. Under replace, with a
 * conflict in the same batch, whose figures must survive the bisection. */
static void test_writer__refusal_between_rows_is_isolated(void **state)
{
    fixture *f = *state;
    pi_writer *w = new_writer(f, NULL, PI_ON_CONFLICT_REPLACE);
    pi_write_stats st;

    add_reason(f, 1, "idle_out");
    st = write_ok(w, f->batch);
    assert_stats(&st, 1, 1, 0, 0, 0, 0);
    /* On the partition these ids go to (a unique index on the partitioned
     * table would have to hold id): DEFAULT, as ids 8 and 9 are off the id
     * scheme and 0007 leaves a fresh presences_legacy no id range. */
    pi_test_db_exec(f->conn, "CREATE UNIQUE INDEX test_one_per_asset ON "
                             "presences_default (asset, time)");
    pi_batch_reset(f->batch);
    for (int i = 0; i < 300; i++)
        add_gen(f, "t", 0, 10 + i, (uint64_t)i);
    add(f, "t", 0, 400,
        "{\"id\":8,\"connection_id\":6,\"type\":\"connect\",\"reason\":"
        "\"r\",\"asset\":\"same\",\"time\":\"2016-11-19T15:05:36Z\"}");
    add_reason(f, 401, "ppp_lost"); /* id 100: replaces */
    add(f, "t", 0, 402,
        "{\"id\":9,\"connection_id\":6,\"type\":\"connect\",\"reason\":"
        "\"r\",\"asset\":\"same\",\"time\":\"2016-11-19T15:05:36Z\"}");
    st = write_ok(w, f->batch);
    assert_stats(&st, 303, 301, 0, 1, 1, 0);
    assert_int_equal(st.splits, 1);
    assert_int_equal(pi_test_db_int(f->conn, "SELECT count(*) FROM presences "
                                             "WHERE id IN (8, 9)"),
                     1);
    assert_int_equal(pi_test_db_int(f->conn,
                                    "SELECT count(*) FROM "
                                    "presence_rejects WHERE \"offset\" "
                                    "= 402 AND error = 'wrong_type' "
                                    "AND detail LIKE '%%23505%%'"),
                     1);
    assert_int_equal(pi_test_db_int(f->conn, "SELECT count(*) FROM presences "
                                             "WHERE id = 100 AND reason = "
                                             "'ppp_lost'"),
                     1);
    pi_writer_destroy(w);
}

typedef struct racer {
    fixture *f;
    pi_batch *batch;
    pi_write_stats st;
    int rc;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    pi_writer *w = new_writer(r->f, NULL, PI_ON_CONFLICT_KEEP);
    pi_err err;

    memset(&r->st, 0, sizeof(r->st));
    r->rc = pi_writer_write(w, r->batch, &r->st, &err);
    pi_writer_destroy(w);
    return NULL;
}

/* Two writers with the same ids at the same time: each id is stored once and
 * the figures add up exactly (the loser of a race retries, then finds). */
static void test_writer__concurrent_writers_count_exactly(void **state)
{
    fixture *f = *state;
    racer r[2];
    pthread_t th[2];

    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 2; i++) {
            r[i].f = f;
            pi_batch_new(&r[i].batch);
            for (int k = 0; k < 3000; k++) {
                char buf[1024];
                size_t n =
                    pi_test_gen_presence(buf, sizeof(buf), PI_TEST_FIRST_ID,
                                         (uint64_t)(round * 3000 + k));
                pi_batch_add(r[i].batch, f->dec, i ? "b" : "a", 0, k, NULL, 0,
                             buf, n);
            }
            pthread_create(&th[i], NULL, race, &r[i]);
        }
        for (int i = 0; i < 2; i++) {
            pthread_join(th[i], NULL);
            assert_int_equal(r[i].rc, 0);
            pi_batch_destroy(r[i].batch);
        }
        assert_int_equal(r[0].st.stored + r[1].st.stored, 3000);
        assert_int_equal(r[0].st.duplicates + r[1].st.duplicates, 3000);
    }
    assert_int_equal(pi_test_db_int(f->conn, "SELECT count(*) FROM presences"),
                     15000);
}

typedef struct killer {
    const char *conninfo;
    int killed;
} killer;

/* Terminate the backend that sleeps in the test's commit-time trigger. */
static void *kill_at_commit(void *arg)
{
    killer *k = arg;
    PGconn *conn = pi_test_db_connect(k->conninfo);

    for (int i = 0; i < 400 && !k->killed; i++) {
        if (pi_test_db_int(conn, "SELECT count(*) FROM pg_stat_activity "
                                 "WHERE datname = current_database() AND "
                                 "wait_event = 'PgSleep'") == 0) {
            usleep(25000);
            continue;
        }
        /* The retry must not sleep again. */
        pi_test_db_exec(conn, "INSERT INTO slept VALUES (1)");
        k->killed = (int)pi_test_db_int(
            conn, "SELECT count(pg_terminate_backend(pid)) FROM "
                  "pg_stat_activity WHERE datname = current_database() AND "
                  "wait_event = 'PgSleep'");
    }
    PQfinish(conn);
    return NULL;
}

/* The connection dies during COMMIT: the writer asks pg_xact_status() what
 * became of its transaction (here: aborted) and writes the batch again;
 * the figures count each row once. */
static void test_writer__connection_lost_during_commit(void **state)
{
    fixture *f = *state;
    pi_writer *w = new_writer(f, "g", PI_ON_CONFLICT_KEEP);
    pi_write_stats st;
    pthread_t th;
    killer k = {f->conninfo, 0};

    /* A deferred trigger runs inside COMMIT: it sleeps once, long enough to
     * be killed there. */
    pi_test_db_exec(f->conn,
                    "CREATE TABLE slept (once int PRIMARY KEY);"
                    "CREATE FUNCTION sleep_once() RETURNS trigger LANGUAGE "
                    "plpgsql AS $$ BEGIN IF NOT EXISTS (SELECT 1 FROM slept) "
                    "THEN PERFORM pg_sleep(10); END IF; RETURN NULL; END $$;"
                    "CREATE CONSTRAINT TRIGGER sleep_at_commit AFTER INSERT "
                    "ON presences DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
                    "EXECUTE FUNCTION sleep_once()");
    for (int i = 0; i < 3; i++)
        add_gen(f, "t", 0, i, (uint64_t)i);
    pthread_create(&th, NULL, kill_at_commit, &k);
    st = write_ok(w, f->batch);
    pthread_join(th, NULL);
    assert_int_equal(k.killed, 1);
    assert_stats(&st, 3, 3, 0, 0, 0, 0);
    assert_true(st.retries >= 1);
    assert_int_equal(pi_test_db_int(f->conn, "SELECT count(*) FROM presences"),
                     3);
    assert_int_equal(
        pi_test_db_int(f->conn, "SELECT next_offset FROM ingest_offsets"), 3);
    pi_writer_destroy(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_writer__stores_then_replay_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer__stored_values_are_exact,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_writer__conflict_keep_records_reject, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_writer__conflict_replace_overwrites, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer__same_id_twice_in_a_batch,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer__refused_row_is_isolated,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer__offsets_only_move_forward,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer__old_schema_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_writer__reconnects_and_cancel,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_writer__refusal_between_rows_is_isolated, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_writer__concurrent_writers_count_exactly, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_writer__connection_lost_during_commit, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
