/* fence.c -- the ingest_offsets rows: lock, skip, compare-and-set,
 * move forward */
#include "presence/writer.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "presence/db.h"
#include "presence/log.h"
#include "presence/mem.h"
#include "presence/metrics.h"
#include "writer_int.h"

/* Fence: make sure the rows exist (a first batch of a partition), then lock
 * them in a fixed order so that two writers of overlapping partitions queue
 * instead of deadlocking. */
static const char fence_insert_sql[] =
    "INSERT INTO ingest_offsets (consumer_group, topic, partition,"
    " next_offset)"
    " SELECT $1, t, p, 0 FROM unnest($2::text[], $3::int4[]) AS u(t, p)"
    " ORDER BY t, p ON CONFLICT DO NOTHING";

static const char fence_lock_sql[] =
    "SELECT o.topic, o.partition, o.next_offset FROM ingest_offsets o"
    " WHERE o.consumer_group = $1 AND (o.topic, o.partition) IN"
    " (SELECT * FROM unnest($2::text[], $3::int4[]))"
    " ORDER BY o.topic, o.partition FOR UPDATE";

static const char offsets_sql[] =
    "INSERT INTO ingest_offsets (consumer_group, topic, partition,"
    " next_offset)"
    " SELECT $1, t, p, n FROM unnest($2::text[], $3::int4[], $4::int8[])"
    " AS u(t, p, n)"
    " ON CONFLICT (consumer_group, topic, partition) DO UPDATE"
    " SET next_offset = EXCLUDED.next_offset, updated_at = now()"
    " WHERE ingest_offsets.next_offset < EXCLUDED.next_offset";

/* PostgreSQL array literal of the batch's position topics or partitions. */
static void array_literal(pi_writer *w, const pi_batch *batch, int what)
{
    size_t n;
    const pi_position *pos = pi_batch_positions(batch, &n);
    char num[32];

    pi_wbuf_put(&w->out, "{", 1);
    for (size_t i = 0; i < n; i++) {
        if (i)
            pi_wbuf_put(&w->out, ",", 1);
        if (what == 0) {
            const char *t = w->topics[pos[i].topic];
            pi_wbuf_put(&w->out, "\"", 1);
            for (; *t; t++) {
                if (*t == '"' || *t == '\\')
                    pi_wbuf_put(&w->out, "\\", 1);
                pi_wbuf_put(&w->out, t, 1);
            }
            pi_wbuf_put(&w->out, "\"", 1);
        } else {
            snprintf(num, sizeof(num), "%" PRId64,
                     what == 1 ? (int64_t)pos[i].partition
                               : pos[i].next_offset);
            pi_wbuf_put(&w->out, num, strlen(num));
        }
    }
    pi_wbuf_put(&w->out, "}", 2); /* with its NUL */
}

/* Parameters $2.. ($3, $4) as array literals, laid out in w->out.ptr. */
static void position_params(pi_writer *w, const pi_batch *batch,
                            const char **params, int n_arrays)
{
    size_t at[3];

    w->out.len = 0;
    for (int i = 0; i < n_arrays; i++) {
        at[i] = w->out.len;
        array_literal(w, batch, i);
    }
    for (int i = 0; i < n_arrays; i++)
        params[1 + i] = w->out.ptr + at[i];
}

int pi_writer__fence(pi_writer *w, const pi_batch *batch, pi_err *err)
{
    const char *params[3] = {w->group};
    size_t n_pos, n_msgs = pi_batch_messages(batch);
    const pi_position *pos = pi_batch_positions(batch, &n_pos);
    PGresult *res;
    int rc = 0;

    position_params(w, batch, params, 2);
    res =
        PQexecParams(w->conn, fence_insert_sql, 3, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        rc = pi_writer__fail(w, res, "creating ingest_offsets rows", err);
        goto cleanup;
    }
    PQclear(res);
    res = PQexecParams(w->conn, fence_lock_sql, 3, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = pi_writer__fail(w, res, "locking ingest_offsets", err);
        /* Cut by statement_timeout while waiting for the rows: whoever
         * holds them may be a frozen instance (pi_writer__reap_stuck). */
        w->fence_blocked = strcmp(w->refused.sqlstate, "57014") == 0;
        goto cleanup;
    }
    pi_grow((void **)&w->stored_next, &w->cap_stored_next, n_pos,
            sizeof(*w->stored_next));
    for (size_t i = 0; i < n_pos; i++)
        w->stored_next[i] = 0;
    for (int r = 0; r < PQntuples(res); r++) {
        const char *t = PQgetvalue(res, r, 0);
        int32_t p = (int32_t)strtol(PQgetvalue(res, r, 1), NULL, 10);
        int64_t next = strtoll(PQgetvalue(res, r, 2), NULL, 10);
        for (size_t i = 0; i < n_pos; i++) {
            if (pos[i].partition == p &&
                strcmp(w->topics[pos[i].topic], t) == 0)
                w->stored_next[i] = next;
        }
    }
    /* The compare-and-set: the caller's belief of what is stored must
     * hold. Lower means commits the caller saw succeed are gone (a crash
     * with synchronous_commit=off, a failover, a restore, an operator's
     * reset): writing on would move next_offset past a hole. Higher is a
     * newer owner's progress, handled by the skip below. */
    for (size_t i = 0; i < n_pos; i++) {
        if (pos[i].expected >= 0 && w->stored_next[i] < pos[i].expected) {
            rc = pi_err_set(err, PI_EBEHIND,
                            "ingest_offsets has %s[%d] at %" PRId64
                            ", behind the %" PRId64
                            " this instance committed: the database lost "
                            "commits (crash with synchronous_commit=off, "
                            "failover, restore) or was reset",
                            w->topics[pos[i].topic], (int)pos[i].partition,
                            w->stored_next[i], pos[i].expected);
            goto cleanup;
        }
    }
    /* A message below its partition's stored next_offset is already in the
     * database: written by us before a lost COMMIT reply, or by the newer
     * owner of a partition we lost. */
    for (size_t m = 0; m < n_msgs; m++) {
        const pi_msg_meta *meta = pi_batch_msg(batch, (uint32_t)m);
        for (size_t i = 0; i < n_pos; i++) {
            if (pos[i].topic == meta->topic &&
                pos[i].partition == meta->partition) {
                w->fenced[m] = meta->offset < w->stored_next[i];
                break;
            }
        }
    }
cleanup:
    PQclear(res);
    return rc;
}

int pi_writer__write_offsets(pi_writer *w, const pi_batch *batch, pi_err *err)
{
    const char *params[4] = {w->group};
    PGresult *res;
    int rc = 0;

    position_params(w, batch, params, 3);
    res = PQexecParams(w->conn, offsets_sql, 4, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = pi_writer__fail(w, res, "updating ingest_offsets", err);
    PQclear(res);
    return rc;
}

void pi_writer__reap_stuck(pi_writer *w)
{
    static const char sql[] =
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        " AND application_name = current_setting('application_name')"
        " AND wait_event = 'ClientRead' AND state <> 'idle'"
        " AND xact_start < now() - make_interval(secs => $1::int / 1000.0)";
    char ms[16];
    const char *params[1] = {ms};
    PGresult *res;

    w->fence_blocked = false;
    if (w->conn == NULL || PQstatus(w->conn) != CONNECTION_OK)
        return;
    snprintf(ms, sizeof(ms), "%d", w->opts.tx_timeout_ms);
    res = PQexecParams(w->conn, sql, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) == PGRES_TUPLES_OK &&
        strcmp(PQgetvalue(res, 0, 0), "0") != 0)
        pi_warn("ended %s session(s) of this service stuck inside a "
                "transaction for over %d ms waiting for their client (a "
                "frozen or vanished instance holding ingest_offsets rows)",
                PQgetvalue(res, 0, 0), w->opts.tx_timeout_ms);
    PQclear(res);
}
