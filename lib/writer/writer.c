/* writer.c -- a batch into PostgreSQL: fence, probe, COPY, exactly once */
#include "presence/writer.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "presence/db.h"
#include "presence/log.h"
#include "presence/mem.h"
#include "presence/metrics.h"
#include "presence/migrate.h"
#include "presence/times.h"
#include "writer_int.h"

/* Retries at once (no backoff) of a batch that lost a race for an id with
 * another writer, before the usual backoff takes over. */
#define RACE_RETRIES 5

/* Every transaction's first statements: its settings, SET LOCAL, and
 * whether this server connection has the staging tables (TEMP: no WAL,
 * private to the connection, emptied by every COMMIT), which stage_sql then
 * creates in the transaction. Nothing is left on the session, so that the
 * writer works through PgBouncer's transaction pooling (each transaction
 * may be on another server connection; a setting left there would reach
 * other clients): docs/packaging.md. Looked up, not created IF NOT EXISTS
 * each time: that halved load's rate at 100 messages a batch, and a DO
 * block doing the same still cost a quarter (measured,
 * docs/benchmarks.md). PostgreSQL itself ends a transaction of
 * ours that a frozen or vanished process leaves holding the ingest_offsets
 * locks: a statement cut after the timeout, then the aborted transaction
 * ended after it again (class 57: retried). */
static const char begin_fmt[] =
    "BEGIN;"
    "SET LOCAL TimeZone = 'UTC';"
    "SET LOCAL statement_timeout = %d;"
    "SET LOCAL idle_in_transaction_session_timeout = %d;"
    "%s"
    "SELECT to_regclass('pg_temp.pi_stage') IS NOT NULL AND"
    " to_regclass('pg_temp.pi_stage_rejects') IS NOT NULL%s";

static const char stage_sql[] =
    "SET LOCAL client_min_messages = warning;"
    "CREATE TEMP TABLE IF NOT EXISTS pi_stage ("
    " seq int4, id int8, connection_id int8, type text, reason text,"
    " asset text, time timestamptz, time_offset_minutes int2,"
    " kafka_topic text, kafka_partition int4, kafka_offset int8)"
    " ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS pi_stage_rejects ("
    " topic text, partition int4, \"offset\" int8, element int4, error text,"
    " detail text, payload bytea, key bytea)"
    " ON COMMIT DELETE ROWS";

/* The new rows again, only where the writer marks the rollup itself (on
 * Citus: rows.c): elsewhere a third ON COMMIT DELETE ROWS table would be
 * emptied at every commit for nothing. */
static const char fresh_check[] =
    " AND to_regclass('pg_temp.pi_fresh') IS NOT NULL";
static const char fresh_sql[] =
    "SET LOCAL client_min_messages = warning;"
    "CREATE TEMP TABLE IF NOT EXISTS pi_fresh ("
    " id int8, connection_id int8, type text, reason text, asset text,"
    " time timestamptz, time_offset_minutes int2, kafka_topic text,"
    " kafka_partition int4, kafka_offset int8)"
    " ON COMMIT DELETE ROWS";

/* BEGIN, the settings, and the staging tables when this server connection
 * has none. */
static int begin(pi_writer *w, pi_err *err)
{
    /* On Citus: one connection per worker, so one two-phase commit per
     * worker a batch writes to, not one per shard (docs/scale-out.md). */
    static const char citus_sql[] =
        "SET LOCAL citus.max_adaptive_executor_pool_size = 1;";
    char sql[sizeof(begin_fmt) + sizeof(citus_sql) + sizeof(fresh_check) + 32];
    PGresult *res;
    int rc = 0, staged;

    snprintf(sql, sizeof(sql), begin_fmt, w->opts.tx_timeout_ms,
             w->opts.tx_timeout_ms, w->marks ? citus_sql : "",
             w->marks ? fresh_check : "");
    res = PQexec(w->conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        rc = pi_db_fail(err, w->conn, res, "BEGIN");
        PQclear(res);
        return rc;
    }
    staged = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (staged)
        return 0;
    rc = pi_db_exec(w->conn, stage_sql, err);
    return rc == 0 && w->marks ? pi_db_exec(w->conn, fresh_sql, err) : rc;
}

void pi_writer_opts_init(pi_writer_opts *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->on_conflict = PI_ON_CONFLICT_KEEP;
    opts->backoff_min_ms = 100;
    opts->backoff_max_ms = 10000;
    opts->tx_timeout_ms = 60000;
}

/* ---- connection --------------------------------------------------------- */

/* Replace the connection (conn may be NULL), keeping its cancel handle in
 * step for pi_writer_interrupt. */
static void set_conn(pi_writer *w, PGconn *conn)
{
    pthread_mutex_lock(&w->cancel_lock);
    if (w->cancel_handle)
        PQfreeCancel(w->cancel_handle);
    w->cancel_handle = conn ? PQgetCancel(conn) : NULL;
    pthread_mutex_unlock(&w->cancel_lock);
    PQfinish(w->conn);
    w->conn = conn;
}

static int connect_db(pi_writer *w, pi_err *err)
{
    PGconn *conn;
    int rc;

    w->refused.sqlstate[0] = '\0'; /* a failed connect has none */
    set_conn(w, NULL);
    rc = pi_db_connect(&conn, w->conninfo, err);
    if (rc)
        return rc;
    set_conn(w, conn);
    w->reconnects++;
    return 0;
}

void pi_writer_interrupt(pi_writer *w)
{
    char errbuf[256];

    pthread_mutex_lock(&w->cancel_lock);
    /* Best effort: if the request does not get through, the statement ends
     * by itself (or by the connection's TCP timeouts). */
    if (w->cancel_handle)
        (void)PQcancel(w->cancel_handle, errbuf, sizeof(errbuf));
    pthread_mutex_unlock(&w->cancel_lock);
}

static void rollback(pi_writer *w)
{
    PGTransactionStatusType ts;

    if (w->conn == NULL || PQstatus(w->conn) != CONNECTION_OK)
        return;
    ts = PQtransactionStatus(w->conn);
    if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
        PGresult *res = PQexec(w->conn, "ROLLBACK");
        PQclear(res);
    }
}

/* Who records the rollup's marks: presences' statement triggers, or (on a
 * Citus cluster, where migrations/citus/citus.sql drops them: Citus runs no
 * triggers on a distributed table) the writer, from the rows it inserted.
 * Exactly one of them: the writer marks when the insert trigger is gone. */
static int detect_marks(pi_writer *w, pi_err *err)
{
    PGresult *res = PQexec(w->conn, "SELECT NOT EXISTS (SELECT 1 FROM"
                                    " pg_trigger WHERE tgrelid ="
                                    " 'presences'::regclass AND tgname ="
                                    " 'presences_rollup_insert')");
    int rc = 0;

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        rc = pi_db_fail(err, w->conn, res, "looking for the rollup trigger");
    else
        w->marks = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (rc == 0 && w->marks)
        pi_info("presences has no rollup trigger (Citus): the writer "
                "records the rollup's marks");
    return rc;
}

int pi_writer_new(pi_writer **out, const pi_writer_opts *opts, pi_err *err)
{
    pi_writer *w = pi_calloc(1, sizeof(*w));
    int rc;

    *out = NULL;
    w->opts = *opts;
    w->conninfo = opts->conninfo ? pi_strdup(opts->conninfo) : NULL;
    w->group = opts->group ? pi_strdup(opts->group) : NULL;
    w->opts.conninfo = w->conninfo;
    w->opts.group = w->group;
    /* 0 means the default (opts zeroed rather than pi_writer_opts_init). */
    if (w->opts.backoff_min_ms <= 0)
        w->opts.backoff_min_ms = 100;
    if (w->opts.backoff_max_ms <= 0)
        w->opts.backoff_max_ms = 10000;
    if (w->opts.backoff_max_ms < w->opts.backoff_min_ms)
        w->opts.backoff_max_ms = w->opts.backoff_min_ms;
    pi_log_mask_conninfo(w->conninfo ? w->conninfo : "(PG* environment)",
                         w->masked, sizeof(w->masked));
    w->seed = (uint64_t)time(NULL) ^ ((uint64_t)(uintptr_t)w << 16);
    pi_arena_init(&w->scratch);
    pthread_mutex_init(&w->cancel_lock, NULL);
    rc = connect_db(w, err);
    if (rc == 0)
        rc = pi_migrate_check(w->conn, err);
    if (rc == 0)
        rc = detect_marks(w, err);
    if (rc == 0 && w->marks)
        rc = pi_writer__read_shards(w, err);
    if (rc) {
        pi_writer_destroy(w);
        return rc;
    }
    *out = w;
    return 0;
}

void pi_writer_destroy(pi_writer *w)
{
    if (w == NULL)
        return;
    set_conn(w, NULL);
    pthread_mutex_destroy(&w->cancel_lock);
    pi_arena_fini(&w->scratch);
    free(w->conninfo);
    free(w->group);
    free(w->fenced);
    free(w->stored_next);
    free(w->staged);
    free(w->order);
    free(w->slots);
    free(w->found);
    free(w->shard_min);
    free(w->shard_of);
    free(w->group_off);
    free(w->group_len);
    free(w->subset);
    free(w->xrejs);
    free(w->topics);
    free(w->ranges);
    free(w->uncovered);
    free(w->out.ptr);
    free(w);
}

/* ---- one attempt -------------------------------------------------------- */

static int write_once(pi_writer *w, const pi_batch *batch, int split,
                      pi_err *err)
{
    size_t n_msgs = pi_batch_messages(batch), n_pos;
    int rc;

    memset(&w->cur, 0, sizeof(w->cur));
    w->n_xrejs = 0;
    pi_grow((void **)&w->fenced, &w->cap_fenced, n_msgs + 1, 1);
    memset(w->fenced, 0, n_msgs + 1);
    pi_batch_positions(batch, &n_pos);
    rc = begin(w, err);
    if (rc)
        goto cleanup; /* a statement after BEGIN may have failed */
    if (w->group && n_pos) {
        rc = pi_writer__fence(w, batch, err);
        if (rc)
            goto cleanup;
    }
    pi_writer__plan(w, batch);
    if (w->n_staged) {
        if (split)
            rc = pi_writer__write_split(w, batch, 0, w->n_staged, err);
        else
            rc = pi_writer__write_rows(w, batch, 0, w->n_staged, err);
        if (rc)
            goto cleanup;
    }
    rc = pi_writer__write_rejects(w, batch, err);
    if (rc) {
        /* The rejects were already bisected out of presences; if their own
         * table refuses them there is nothing left to split. */
        if (rc == PI_EDATA && split)
            err->code = rc = PI_EFATAL;
        goto cleanup;
    }
    if (w->group && n_pos) {
        rc = pi_writer__write_offsets(w, batch, err);
        if (rc)
            goto cleanup;
    }
    for (size_t m = 0; m < n_msgs; m++) {
        const pi_msg_meta *meta = pi_batch_msg(batch, (uint32_t)m);
        if (w->fenced[m])
            w->cur.fenced++;
        else
            w->cur.skipped += meta->skipped;
    }
    w->cur.messages = n_msgs;
    w->cur.batches = 1;
    w->lost_batch = batch;
    w->lost_version = pi_batch_version(batch);
    return pi_writer__commit(w, err);
cleanup:
    rollback(w);
    return rc;
}

/* Make the topic names of batch safe as text, indexed like the batch's. */
static void prepare_topics(pi_writer *w, const pi_batch *batch)
{
    size_t n_msgs = pi_batch_messages(batch), n_pos, n_topics = 0;
    const pi_position *pos = pi_batch_positions(batch, &n_pos);

    for (size_t i = 0; i < n_pos; i++) {
        if (pos[i].topic + 1 > n_topics)
            n_topics = pos[i].topic + 1;
    }
    for (size_t m = 0; m < n_msgs; m++) {
        uint32_t t = pi_batch_msg(batch, (uint32_t)m)->topic;
        if (t + 1 > n_topics)
            n_topics = t + 1;
    }
    pi_grow((void **)&w->topics, &w->cap_topics, n_topics + 1,
            sizeof(*w->topics));
    for (size_t t = 0; t < n_topics; t++) {
        const char *name = pi_batch_topic(batch, (uint32_t)t);
        pi_str s = pi_text_clean(&w->scratch, name, strlen(name));
        w->topics[t] =
            s.ptr == name ? name : pi_arena_memdup(&w->scratch, s.ptr, s.len);
    }
}

/* PostgreSQL refused a statement for want of a privilege (42501): it names
 * the table, not the privilege. Add the privileges this writer uses that its
 * role lacks, asked after the rollback. Best effort: the message stays as
 * it is when the question fails. */
static void explain_denied(pi_writer *w, pi_err *err)
{
    char sql[1024], lacks[256] = "";
    PGresult *res;
    int n;

    /* What the statements of this mode need (writer.h documents them). */
    n = snprintf(sql, sizeof(sql),
                 "SELECT current_user, coalesce(string_agg(p || ' on ' || t,"
                 " ', ' ORDER BY k), '') FROM (VALUES"
                 " (1, 'schema_migrations', 'SELECT'),"
                 " (2, 'presences', 'SELECT'), (3, 'presences', 'INSERT'),"
                 " (4, 'presences', '%s'), (5, 'presence_rejects', 'SELECT'),"
                 " (6, 'presence_rejects', 'INSERT')%s)"
                 " AS v(k, t, p) WHERE to_regclass(t) IS NOT NULL AND NOT"
                 " has_table_privilege(t, p)",
                 w->opts.on_conflict == PI_ON_CONFLICT_REPLACE ? "UPDATE"
                                                               : "SELECT",
                 w->group ? ", (7, 'ingest_offsets', 'SELECT'),"
                            " (8, 'ingest_offsets', 'INSERT'),"
                            " (9, 'ingest_offsets', 'UPDATE')"
                          : "");
    if (n < 0 || (size_t)n >= sizeof(sql) || w->conn == NULL)
        return;
    rollback(w);
    res = PQexec(w->conn, sql);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        const char *list = PQgetvalue(res, 0, 1);
        if (*list)
            snprintf(lacks, sizeof(lacks),
                     "role %s lacks %s: ", PQgetvalue(res, 0, 0), list);
    }
    PQclear(res);
    size_t len = strlen(err->msg);
    snprintf(err->msg + len, sizeof(err->msg) - len,
             " (%sdeploy/sql/roles.sql grants presence_writer what the "
             "service needs)",
             lacks);
}

/* After a transient failure: say so, and wait before attempt number
 * `attempt`. Non-zero when opts.cancel is set (before or during the wait):
 * give up. */
static int backoff(pi_writer *w, unsigned attempt, const char *what,
                   const pi_err *err)
{
    int delay;

    if (w->opts.cancel && atomic_load(w->opts.cancel))
        return -1;
    pi_metrics_db_error(w->opts.metrics, w->refused.sqlstate, true);
    delay = pi_db_backoff_ms(attempt, w->opts.backoff_min_ms,
                             w->opts.backoff_max_ms, &w->seed);
    pi_warn("%s failed (attempt %u), retrying in %d ms: %s [%s]", what, attempt,
            delay, err->msg, w->masked);
    return pi_db_sleep_ms(delay, w->opts.cancel);
}

static int write_batch(pi_writer *w, pi_batch *batch, pi_write_stats *stats,
                       pi_err *err)
{
    unsigned attempt = 0, races = 0;
    uint64_t reconnects = w->reconnects;
    int split = 0, rc;

    /* A COMMIT outcome still unknown belongs to the batch it was
     * committing: if the caller gave that batch up (cancelled, then dropped
     * or changed it), the outcome says nothing about this one, which is
     * written in full; the fence skips whatever that COMMIT did store. */
    pi_writer__forget_lost(w, batch);
    for (;;) {
        rc = 0;
        if (w->conn == NULL || PQstatus(w->conn) != CONNECTION_OK)
            rc = connect_db(w, err);
        if (rc == 0 && w->lost_xid[0]) {
            rc = pi_writer__resolve_lost(w, attempt, w->reconnects - reconnects,
                                         stats, err);
            if (rc == 1)
                return 0;
        }
        if (rc == 0) {
            pi_arena_reset(&w->scratch);
            prepare_topics(w, batch);
            (void)pi_writer__ensure_ranges(w, batch, err);
            int64_t t0 = pi_mono_us();
            rc = write_once(w, batch, split, err);
            if (rc)
                w->ids_max_known = false; /* rows.c: read it again */
            if (rc == 0) {
                w->cur.write_us = (uint64_t)(pi_mono_us() - t0);
                w->cur.retries = attempt;
                w->cur.reconnects = w->reconnects - reconnects;
                w->cur.splits = (uint64_t)split;
                pi_write_stats_add(stats, &w->cur);
                return 0;
            }
        }
        if (rc == PI_EDATA || rc == PI_EFATAL)
            pi_metrics_db_error(w->opts.metrics, w->refused.sqlstate, false);
        if (rc == PI_EDATA && !split) {
            pi_warn("PostgreSQL refused data in a batch of %zu messages (%s): "
                    "writing it again in bisected parts to isolate the rows",
                    pi_batch_messages(batch), err->msg);
            split = 1;
            continue;
        }
        if (rc == PI_EDATA)
            err->code = rc = PI_EFATAL;
        /* Not about the data: no bisecting, no rejects; stop. */
        if (rc == PI_EFATAL && strcmp(w->refused.sqlstate, "42501") == 0)
            explain_denied(w, err);
        if (rc != PI_ERETRY)
            return rc;
        if (pi_writer__key_race(w) && races < RACE_RETRIES &&
            !(w->opts.cancel && atomic_load(w->opts.cancel))) {
            /* Another writer committed one of our new ids after our probe
             * (we waited for its lock): no outage, so no pause; the next
             * probe finds the row. */
            races++;
            attempt++;
            pi_metrics_db_error(w->opts.metrics, w->refused.sqlstate, true);
            pi_debug("a concurrent transaction stored one of the batch's ids "
                     "first: writing the batch again at once (%s)",
                     err->msg);
            continue;
        }
        if (w->fence_blocked)
            pi_writer__reap_stuck(w);
        if (backoff(w, ++attempt, "database write", err) != 0)
            return PI_ERETRY;
    }
}

int pi_writer_write(pi_writer *w, pi_batch *batch, pi_write_stats *stats,
                    pi_err *err)
{
    int rc;

    if (pi_batch_messages(batch) == 0) {
        pi_writer__forget_lost(w, batch);
        return 0;
    }
    pi_metrics_write_begin(w->opts.metrics, w->opts.metrics_slot);
    rc = write_batch(w, batch, stats, err);
    pi_metrics_write_end(w->opts.metrics, w->opts.metrics_slot);
    return rc;
}

int pi_writer_next_offset(pi_writer *w, const char *topic, int32_t partition,
                          int64_t *next, pi_err *err)
{
    char p[16];
    const char *params[3] = {w->group ? w->group : "", topic, p};
    unsigned attempt = 0;
    int rc;

    *next = -1;
    snprintf(p, sizeof(p), "%d", (int)partition);
    for (;;) {
        PGresult *res;

        rc = 0;
        if (w->conn == NULL || PQstatus(w->conn) != CONNECTION_OK)
            rc = connect_db(w, err);
        if (rc == 0) {
            res = PQexecParams(w->conn,
                               "SELECT next_offset FROM ingest_offsets WHERE "
                               "consumer_group = $1 AND topic = $2 AND "
                               "partition = $3",
                               3, NULL, params, NULL, NULL, 0);
            if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                rc = pi_writer__fail(w, res, "reading ingest_offsets", err);
            } else if (PQntuples(res) > 0) {
                *next = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
            }
            PQclear(res);
            if (rc == 0)
                return 0;
        }
        if (rc == PI_EFATAL && strcmp(w->refused.sqlstate, "42501") == 0)
            explain_denied(w, err);
        if (rc != PI_ERETRY)
            return rc == PI_EDATA ? (err->code = PI_EFATAL) : rc;
        if (backoff(w, ++attempt, "reading ingest_offsets", err) != 0)
            return PI_ERETRY;
    }
}
