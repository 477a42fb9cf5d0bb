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
#include "writer_int.h"

/* COPY data is sent in pieces of this size. */
#define COPY_CHUNK (256 * 1024)

/* The staging tables: TEMP (no WAL, private to the connection), emptied by
 * every COMMIT. Created again after each reconnect. */
static const char setup_sql[] =
    "SET TimeZone = 'UTC';"
    "CREATE TEMP TABLE IF NOT EXISTS pi_stage ("
    " seq int4, id int8, connection_id int8, type text, reason text,"
    " asset text, time timestamptz, time_offset_minutes int2,"
    " kafka_topic text, kafka_partition int4, kafka_offset int8)"
    " ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS pi_stage_rejects ("
    " topic text, partition int4, \"offset\" int8, element int4, error text,"
    " detail text, payload bytea, key bytea)"
    " ON COMMIT DELETE ROWS;";

static const char rejects_sql[] =
    "INSERT INTO presence_rejects (topic, partition, \"offset\", element,"
    " error, detail, payload, key)"
    " SELECT topic, partition, \"offset\", element, error, detail, payload,"
    " key FROM pi_stage_rejects"
    " ON CONFLICT (topic, partition, \"offset\", element) DO NOTHING";

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

/* A reject made by the writer itself: an id conflict, or a row PostgreSQL
 * refused. */
typedef struct xrej {
    uint32_t presence; /* index in the batch's presences */
    pi_reject_code code;
    pi_str detail; /* in the scratch arena */
} xrej;

/* Why the last statement was refused, kept for the reject's code and
 * detail once bisection has isolated the row. */
typedef struct refusal {
    char sqlstate[8];
    char column[64];
    char constraint[128];
    char msg[256];
} refusal;

struct pi_writer {
    pi_writer_opts opts;
    char *conninfo;
    char *group;
    char masked[1024];
    PGconn *conn;
    /* For pi_writer_interrupt from another thread: the cancel handle of
     * conn, replaced with it under lock. */
    pthread_mutex_t cancel_lock;
    PGcancel *cancel_handle;
    uint64_t seed;
    pi_arena scratch; /* details and payloads of writer rejects */
    /* Per attempt, reused. */
    uint8_t *fenced; /* per message */
    size_t cap_fenced;
    int64_t *stored_next; /* per position: ingest_offsets.next_offset */
    size_t cap_stored_next;
    uint32_t *staged; /* presence indices, in seq order */
    size_t n_staged, cap_staged;
    uint32_t *slots; /* open addressing on id: staged index + 1, 0 empty */
    size_t cap_slots, slot_mask;
    uint8_t *found; /* per staged row: already stored (probe) */
    size_t cap_found;
    uint32_t *subset; /* staged indices to COPY (new rows, or to update) */
    size_t n_subset, cap_subset;
    xrej *xrejs;
    size_t n_xrejs, cap_xrejs;
    const char **topics; /* the batch's topic names, made valid UTF-8 */
    size_t cap_topics;
    pi_wbuf out; /* COPY data or a binary parameter */
    refusal refused;
    pi_write_stats cur;  /* figures of the attempt in progress */
    uint64_t reconnects; /* connections made, the first one included */
    /* A COMMIT whose outcome was lost with the connection: its xid and the
     * figures it would have. */
    char lost_xid[32];
    const pi_batch *lost_batch; /* the batch lost_xid was committing, */
    uint64_t lost_version;      /* as it was then */
    pi_write_stats lost;
};

void pi_writer_opts_init(pi_writer_opts *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->on_conflict = PI_ON_CONFLICT_KEEP;
    opts->backoff_min_ms = 100;
    opts->backoff_max_ms = 10000;
    opts->tx_timeout_ms = 60000;
}

/* The payload of a writer reject: the element as a presence object. The raw
 * value is only kept for messages with decoder rejects (batch.h), and for an
 * array the element alone is what one would re-drive. */
static pi_str element_json(pi_writer *w, const pi_presence *pr)
{
    size_t start = w->out.len; /* w->out holds the COPY being built */
    pi_str out;

    pi_json_presence(&w->out, pr);
    out.len = w->out.len - start;
    out.ptr = pi_arena_memdup(&w->scratch, w->out.ptr + start, out.len);
    w->out.len = start;
    return out;
}

static void add_xrej(pi_writer *w, uint32_t presence, pi_reject_code code,
                     const pi_sbuf *sb)
{
    xrej *x;

    pi_grow((void **)&w->xrejs, &w->cap_xrejs, w->n_xrejs + 1,
            sizeof(*w->xrejs));
    x = &w->xrejs[w->n_xrejs++];
    x->presence = presence;
    x->code = code;
    x->detail = pi_text_clean(&w->scratch, sb->data, sb->len);
    if (x->detail.ptr == sb->data)
        x->detail.ptr = pi_arena_memdup(&w->scratch, sb->data, sb->len);
}

/* ---- connection --------------------------------------------------------- */

static int fail(pi_writer *w, PGresult *res, const char *what, pi_err *err)
{
    const char *f;

    snprintf(w->refused.sqlstate, sizeof(w->refused.sqlstate), "%s",
             pi_db_sqlstate(res));
    f = res ? PQresultErrorField(res, PG_DIAG_COLUMN_NAME) : NULL;
    snprintf(w->refused.column, sizeof(w->refused.column), "%s", f ? f : "");
    f = res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
    snprintf(w->refused.constraint, sizeof(w->refused.constraint), "%s",
             f ? f : "");
    f = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    snprintf(w->refused.msg, sizeof(w->refused.msg), "%s",
             f ? f : PQerrorMessage(w->conn));
    return pi_db_fail(err, w->conn, res, what);
}

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

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
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
    rc = pi_db_exec(w->conn, setup_sql, err);
    if (rc == 0) {
        /* PostgreSQL itself ends a transaction of ours that a frozen or
         * vanished process leaves holding the ingest_offsets locks: a
         * statement cut after the timeout, then the aborted transaction
         * ended after it again (class 57: retried). */
        char sql[160];
        snprintf(sql, sizeof(sql),
                 "SET statement_timeout = %d;"
                 "SET idle_in_transaction_session_timeout = %d",
                 w->opts.tx_timeout_ms, w->opts.tx_timeout_ms);
        rc = pi_db_exec(w->conn, sql, err);
    }
    if (rc)
        set_conn(w, NULL);
    else
        w->reconnects++;
    return rc;
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
    free(w->slots);
    free(w->found);
    free(w->subset);
    free(w->xrejs);
    free(w->topics);
    free(w->out.ptr);
    free(w);
}

/* ---- one attempt -------------------------------------------------------- */

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

static int fence(pi_writer *w, const pi_batch *batch, pi_err *err)
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
        rc = fail(w, res, "creating ingest_offsets rows", err);
        goto cleanup;
    }
    PQclear(res);
    res = PQexecParams(w->conn, fence_lock_sql, 3, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = fail(w, res, "locking ingest_offsets", err);
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

static int same_str(pi_str a, pi_str b)
{
    if (a.ptr == NULL || b.ptr == NULL)
        return a.ptr == b.ptr;
    return a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
}

static uint64_t hash_id(int64_t id)
{
    uint64_t h = (uint64_t)id * 0x9e3779b97f4a7c15ULL;
    return h ^ (h >> 29);
}

/* A one-line description of how b differs from a (both decoded). */
/* Append "<sep>name A<mid>B<end>" for a string field that differs between
 * two presences (mid/end: " vs ", "" or " (here ", ")"). */
static void describe_str(pi_sbuf *sb, const char **sep, const char *name,
                         const char *a, size_t a_len, pi_str b, const char *mid,
                         const char *end)
{
    pi_sbuf_printf(sb, "%s%s ", *sep, name);
    pi_sbuf_value(sb, a, a_len);
    pi_sbuf_printf(sb, "%s", mid);
    pi_sbuf_value(sb, b.ptr, b.len);
    pi_sbuf_printf(sb, "%s", end);
    *sep = ", ";
}

static void describe_diff(pi_sbuf *sb, const pi_presence *a,
                          const pi_presence *b)
{
    const char *sep = "";

    if (a->connection_id != b->connection_id) {
        pi_sbuf_printf(sb, "%sconnection_id %" PRId64 " vs %" PRId64, sep,
                       a->connection_id, b->connection_id);
        sep = ", ";
    }
    if (a->type != b->type) {
        pi_sbuf_printf(sb, "%stype %s vs %s", sep,
                       pi_presence_type_name(a->type),
                       pi_presence_type_name(b->type));
        sep = ", ";
    }
    if (!same_str(a->reason, b->reason))
        describe_str(sb, &sep, "reason", a->reason.ptr, a->reason.len,
                     b->reason, " vs ", "");
    if (!same_str(a->asset, b->asset))
        describe_str(sb, &sep, "asset", a->asset.ptr, a->asset.len, b->asset,
                     " vs ", "");
    if (a->time_us != b->time_us || a->offset_min != b->offset_min) {
        char ta[64], tb[64];
        pi_fmt_time(ta, sizeof(ta), a->time_us, a->offset_min, 1);
        pi_fmt_time(tb, sizeof(tb), b->time_us, b->offset_min, 1);
        pi_sbuf_printf(sb, "%stime %s vs %s", sep, ta, tb);
    }
}

static int same_content(const pi_presence *a, const pi_presence *b)
{
    return a->connection_id == b->connection_id && a->type == b->type &&
           a->time_us == b->time_us && a->offset_min == b->offset_min &&
           same_str(a->reason, b->reason) && same_str(a->asset, b->asset);
}

/* Choose the rows to stage: the unfenced presences, one per id. A repeat of
 * an id inside the batch is a duplicate when identical; otherwise a conflict
 * resolved here, in message order: keep → the first stays staged and the
 * later one is an id_conflict reject; replace → the later one takes the
 * first's place. */
static void plan(pi_writer *w, const pi_batch *batch)
{
    const pi_decode_result *res = pi_batch_result(batch);
    size_t need = 16, mask;

    while (need < res->n_presences * 2)
        need *= 2;
    if (w->cap_slots < need) {
        free(w->slots);
        w->slots = pi_malloc(need * sizeof(*w->slots));
        w->cap_slots = need;
    }
    mask = w->slot_mask = need - 1;
    memset(w->slots, 0, need * sizeof(*w->slots));
    pi_grow((void **)&w->staged, &w->cap_staged, res->n_presences + 1,
            sizeof(*w->staged));
    w->n_staged = 0;
    for (size_t i = 0; i < res->n_presences; i++) {
        const pi_presence *pr = &res->presences[i];
        size_t h;

        if (w->fenced[pr->tag])
            continue;
        for (h = hash_id(pr->id) & mask; w->slots[h]; h = (h + 1) & mask) {
            if (res->presences[w->staged[w->slots[h] - 1]].id == pr->id)
                break;
        }
        if (w->slots[h] == 0) {
            w->staged[w->n_staged++] = (uint32_t)i;
            w->slots[h] = (uint32_t)w->n_staged;
            continue;
        }
        uint32_t k = w->slots[h] - 1;
        const pi_presence *first = &res->presences[w->staged[k]];
        if (same_content(first, pr)) {
            w->cur.duplicates++;
            continue;
        }
        w->cur.conflicts++;
        if (w->opts.on_conflict == PI_ON_CONFLICT_REPLACE) {
            w->staged[k] = (uint32_t)i;
        } else {
            const pi_msg_meta *fm = pi_batch_msg(batch, first->tag);
            pi_sbuf sb = {.len = 0};
            pi_sbuf_printf(&sb,
                           "id %" PRId64
                           " appears earlier in this batch (%s/%d@%" PRId64
                           " element %u) with different content: ",
                           pr->id, w->topics[fm->topic], (int)fm->partition,
                           fm->offset, (unsigned)first->element);
            describe_diff(&sb, first, pr);
            add_xrej(w, (uint32_t)i, PI_REJ_ID_CONFLICT, &sb);
        }
    }
}

static int send_copy(pi_writer *w, const char *sql, const char *what,
                     pi_err *err)
{
    PGresult *res = PQexec(w->conn, sql);
    int rc = 0;

    if (PQresultStatus(res) != PGRES_COPY_IN) {
        rc = fail(w, res, what, err);
        PQclear(res);
        return rc;
    }
    PQclear(res);
    for (size_t off = 0; off < w->out.len; off += COPY_CHUNK) {
        size_t n =
            w->out.len - off < COPY_CHUNK ? w->out.len - off : COPY_CHUNK;
        if (PQputCopyData(w->conn, w->out.ptr + off, (int)n) != 1)
            break;
    }
    /* Always end the COPY so that the connection leaves COPY mode; a failed
     * put shows up as the result's error. */
    PQputCopyEnd(w->conn, NULL);
    res = PQgetResult(w->conn);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = fail(w, res, what, err);
    PQclear(res);
    while ((res = PQgetResult(w->conn)) != NULL)
        PQclear(res);
    return rc;
}

/* Binary COPY rows for staged rows [lo, hi), or for the staged indices in
 * w->subset when subset is set; with_seq adds the seq column of pi_stage. */
static void encode_rows(pi_writer *w, const pi_batch *batch, size_t lo,
                        size_t hi, int subset, int with_seq)
{
    const pi_decode_result *res = pi_batch_result(batch);
    size_t n = subset ? w->n_subset : hi - lo;

    pi_copy_header(&w->out);
    pi_wbuf_need(&w->out, n * 160);
    for (size_t j = 0; j < n; j++) {
        size_t k = subset ? w->subset[j] : lo + j;
        const pi_presence *pr = &res->presences[w->staged[k]];
        const pi_msg_meta *m = pi_batch_msg(batch, pr->tag);
        const char *type = pi_presence_type_name(pr->type);
        const char *topic = w->topics[m->topic];

        pi_wbuf_i16(&w->out, with_seq ? 11 : 10);
        if (with_seq)
            pi_copy_i32(&w->out, (int32_t)k);
        pi_copy_i64(&w->out, pr->id);
        pi_copy_i64(&w->out, pr->connection_id);
        pi_copy_bytes(&w->out, type, strlen(type));
        pi_copy_bytes(&w->out, pr->reason.ptr, pr->reason.len);
        pi_copy_bytes(&w->out, pr->asset.ptr, pr->asset.len);
        pi_copy_i64(&w->out, pr->time_us - PI_PG_EPOCH_US);
        pi_copy_i16(&w->out, pr->offset_min);
        pi_copy_bytes(&w->out, topic, strlen(topic));
        pi_copy_i32(&w->out, m->partition);
        pi_copy_i64(&w->out, m->offset);
    }
    pi_wbuf_i16(&w->out, -1);
}

/* The staged index of id, or -1. */
static long staged_of(pi_writer *w, const pi_decode_result *res, int64_t id)
{
    for (size_t h = hash_id(id) & w->slot_mask; w->slots[h];
         h = (h + 1) & w->slot_mask) {
        if (res->presences[w->staged[w->slots[h] - 1]].id == id)
            return (long)w->slots[h] - 1;
    }
    return -1;
}

/* Compare a stored row (binary columns of probe_sql) with the incoming
 * presence; on a difference, describe it into sb. 1 when they differ. */

static int stored_differs(pi_sbuf *sb, const PGresult *res, int r,
                          const pi_presence *pr)
{
    int64_t conn = pi_be_get(PQgetvalue(res, r, 1), 8);
    const char *type = PQgetvalue(res, r, 2);
    const char *reason = PQgetvalue(res, r, 3);
    size_t reason_len = (size_t)PQgetlength(res, r, 3);
    int asset_null = PQgetisnull(res, r, 4);
    const char *asset = asset_null ? NULL : PQgetvalue(res, r, 4);
    size_t asset_len = (size_t)PQgetlength(res, r, 4);
    int64_t time_us = pi_be_get(PQgetvalue(res, r, 5), 8) + PI_PG_EPOCH_US;
    int off = (int)pi_be_get(PQgetvalue(res, r, 6), 2);
    const char *itype = pi_presence_type_name(pr->type);
    pi_str sreason = {reason, reason_len}, sasset = {asset, asset_len};
    const char *sep = "";
    char ta[64], tb[64];

    if (conn == pr->connection_id && strcmp(type, itype) == 0 &&
        same_str(sreason, pr->reason) && same_str(sasset, pr->asset) &&
        time_us == pr->time_us && off == pr->offset_min)
        return 0;
    pi_sbuf_printf(
        sb, "id %" PRId64 " is stored (from %s/%d@%" PRId64 ") with other ",
        pr->id, PQgetisnull(res, r, 7) ? "" : PQgetvalue(res, r, 7),
        PQgetisnull(res, r, 8) ? 0 : (int)pi_be_get(PQgetvalue(res, r, 8), 4),
        PQgetisnull(res, r, 9) ? 0 : pi_be_get(PQgetvalue(res, r, 9), 8));
    if (conn != pr->connection_id) {
        pi_sbuf_printf(sb, "%sconnection_id %" PRId64 " (here %" PRId64 ")",
                       sep, conn, pr->connection_id);
        sep = ", ";
    }
    if (strcmp(type, itype) != 0) {
        pi_sbuf_printf(sb, "%stype %s (here %s)", sep, type, itype);
        sep = ", ";
    }
    if (!same_str(sreason, pr->reason))
        describe_str(sb, &sep, "reason", reason, reason_len, pr->reason,
                     " (here ", ")");
    if (!same_str(sasset, pr->asset))
        describe_str(sb, &sep, "asset", asset, asset_len, pr->asset, " (here ",
                     ")");
    if (time_us != pr->time_us) {
        pi_fmt_time(ta, sizeof(ta), time_us, 0, 0);
        pi_fmt_time(tb, sizeof(tb), pr->time_us, 0, 0);
        pi_sbuf_printf(sb, "%stime %s (here %s)", sep, ta, tb);
        sep = ", ";
    }
    if (off != pr->offset_min)
        pi_sbuf_printf(sb, "%stime offset %d min (here %d)", sep, off,
                       (int)pr->offset_min);
    return 1;
}

/* Write staged rows [lo, hi) and account for them. One probe fetches the
 * stored rows that share an id with them (binary, by primary key; only ids
 * up to the stored maximum are looked up, so new ids of a time-ordered
 * stream cost one index descent per batch, not one per row); those are
 * compared here, in C: identical → duplicate, nothing written;
 * different → conflict. The others are new: one COPY straight into
 * presences, as fast as a plain COPY and with no staging. Only replace with
 * differing rows goes through the staging table, to UPDATE them. One
 * snapshot per statement: a row another transaction inserted between the
 * probe and the COPY makes the COPY fail on presences_pkey, and the batch is
 * retried (the row is then found). */
static int write_rows(pi_writer *w, const pi_batch *batch, size_t lo, size_t hi,
                      pi_err *err)
{
    const pi_decode_result *dres = pi_batch_result(batch);
    int replace = w->opts.on_conflict == PI_ON_CONFLICT_REPLACE;
    const Oid types[1] = {1016}; /* int8[] */
    const char *params[1];
    int lengths[1], formats[1] = {1};
    PGresult *res;
    size_t n_found = 0, n_diff = 0;
    int rc = 0;

    char slo[24], shi[24];
    const char *range[2] = {slo, shi};

    pi_grow((void **)&w->found, &w->cap_found, w->n_staged + 1, 1);
    memset(w->found, 0, w->n_staged);
    pi_grow((void **)&w->subset, &w->cap_subset, w->n_staged + 1,
            sizeof(*w->subset));
    /* The ids as a binary int8[] parameter: parsing 5000 numbers from text
     * costs the server more than the probe itself. */
    w->out.len = 0;
    pi_wbuf_i32(&w->out, 1);  /* dimensions */
    pi_wbuf_i32(&w->out, 0);  /* no NULLs */
    pi_wbuf_i32(&w->out, 20); /* element type: int8 */
    pi_wbuf_i32(&w->out, (int32_t)(hi - lo));
    pi_wbuf_i32(&w->out, 1); /* lower bound */
    for (size_t k = lo; k < hi; k++)
        pi_copy_i64(&w->out, dres->presences[w->staged[k]].id);
    params[0] = w->out.ptr;
    lengths[0] = (int)w->out.len;
    res = PQexecParams(
        w->conn,
        "SELECT id, connection_id, type, reason, asset, time,"
        " time_offset_minutes, kafka_topic, kafka_partition, kafka_offset"
        " FROM presences WHERE id = ANY(ARRAY(SELECT i FROM unnest($1) AS i"
        " WHERE i <= (SELECT max(id) FROM presences)))",
        1, types, params, lengths, formats, 1);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = fail(w, res, "reading stored presences", err);
        PQclear(res);
        return rc;
    }
    w->n_subset = 0;
    for (int r = 0; r < PQntuples(res); r++) {
        long k = staged_of(w, dres, pi_be_get(PQgetvalue(res, r, 0), 8));
        pi_sbuf sb = {.len = 0};

        if (k < (long)lo || k >= (long)hi || w->found[k])
            continue;
        w->found[k] = 1;
        n_found++;
        if (!stored_differs(&sb, res, r, &dres->presences[w->staged[k]]))
            continue;
        n_diff++;
        if (replace)
            w->subset[w->n_subset++] = (uint32_t)k;
        else
            add_xrej(w, w->staged[k], PI_REJ_ID_CONFLICT, &sb);
    }
    PQclear(res);
    if (replace && w->n_subset) {
        encode_rows(w, batch, 0, 0, 1, 1);
        rc = send_copy(w, "COPY pi_stage FROM STDIN (FORMAT binary)",
                       "COPY into pi_stage", err);
        if (rc)
            return rc;
        /* The seq range: in write_split, rows of earlier ranges are still
         * staged. */
        snprintf(slo, sizeof(slo), "%zu", lo);
        snprintf(shi, sizeof(shi), "%zu", hi);
        res = PQexecParams(
            w->conn,
            "UPDATE presences p SET connection_id = s.connection_id,"
            " type = s.type, reason = s.reason, asset = s.asset,"
            " time = s.time, time_offset_minutes = s.time_offset_minutes,"
            " kafka_topic = s.kafka_topic, kafka_partition ="
            " s.kafka_partition, kafka_offset = s.kafka_offset, ingested_at ="
            " now() FROM pi_stage s WHERE p.id = s.id AND s.seq >= $1 AND"
            " s.seq < $2",
            2, NULL, range, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            rc = fail(w, res, "updating presences", err);
        } else if (strtoull(PQcmdTuples(res), NULL, 10) != w->n_subset) {
            rc = pi_err_set(err, PI_ERETRY,
                            "presences changed during the write (%s updated "
                            "of %zu differing)",
                            PQcmdTuples(res), w->n_subset);
        }
        PQclear(res);
        if (rc)
            return rc;
    }
    w->n_subset = 0;
    for (size_t k = lo; k < hi; k++) {
        if (!w->found[k])
            w->subset[w->n_subset++] = (uint32_t)k;
    }
    if (w->n_subset) {
        encode_rows(w, batch, 0, 0, 1, 0);
        rc = send_copy(w,
                       "COPY presences (id, connection_id, type, reason,"
                       " asset, time, time_offset_minutes, kafka_topic,"
                       " kafka_partition, kafka_offset) FROM STDIN"
                       " (FORMAT binary)",
                       "COPY into presences", err);
        if (rc) {
            if (strcmp(w->refused.sqlstate, "23505") == 0 &&
                strcmp(w->refused.constraint, "presences_pkey") == 0)
                err->code = rc = PI_ERETRY; /* a concurrent insert */
            return rc;
        }
    }
    w->cur.stored += w->n_subset;
    w->cur.duplicates += n_found - n_diff;
    w->cur.conflicts += n_diff;
    return 0;
}

/* The reject code for a row PostgreSQL refused. The contract's list of
 * codes is closed, so pick the field's code when the error names the column
 * (not-null) or a column CHECK constraint (named presences_<column>_check by
 * PostgreSQL's default), else by SQLSTATE, else wrong_type: the value does
 * not fit what the table accepts. The detail always says what happened. */
static pi_reject_code refusal_code(const refusal *rf)
{
    static const struct {
        const char *column;
        pi_reject_code code;
    } by_column[] = {
        {"id", PI_REJ_ID_OUT_OF_RANGE},
        {"connection_id", PI_REJ_CONNECTION_ID_OUT_OF_RANGE},
        {"type", PI_REJ_UNKNOWN_TYPE},
        {"reason", PI_REJ_BAD_REASON},
        {"asset", PI_REJ_BAD_ASSET},
        {"time", PI_REJ_BAD_TIME},
        {"time_offset_minutes", PI_REJ_BAD_TIME},
    };
    char col[128] = "";
    size_t n;

    if (rf->column[0]) {
        snprintf(col, sizeof(col), "%s", rf->column);
    } else if (strncmp(rf->constraint, "presences_", 10) == 0 &&
               (n = strlen(rf->constraint)) > 16 &&
               strcmp(rf->constraint + n - 6, "_check") == 0) {
        snprintf(col, sizeof(col), "%.*s", (int)(n - 16), rf->constraint + 10);
    }
    for (size_t i = 0; i < sizeof(by_column) / sizeof(by_column[0]); i++) {
        if (strcmp(col, by_column[i].column) == 0)
            return by_column[i].code;
    }
    if (strcmp(rf->sqlstate, "22021") == 0 ||
        strcmp(rf->sqlstate, "22P05") == 0)
        return PI_REJ_BAD_ENCODING;
    if (strcmp(rf->sqlstate, "22007") == 0 ||
        strcmp(rf->sqlstate, "22008") == 0)
        return PI_REJ_BAD_TIME;
    return PI_REJ_WRONG_TYPE;
}

/* Write staged rows [lo, hi) under a savepoint; when PostgreSQL refuses the
 * data, roll the range back and bisect until each refused row is alone, then
 * make it a reject. Rows of earlier ranges stay written, so a refusal that
 * depends on another row of the batch is also isolated. */
static int write_split(pi_writer *w, const pi_batch *batch, size_t lo,
                       size_t hi, pi_err *err)
{
    size_t mid, n_xrejs = w->n_xrejs;
    pi_write_stats cur = w->cur;
    int rc;

    if (lo >= hi)
        return 0;
    rc = pi_db_exec(w->conn, "SAVEPOINT pi_split", err);
    if (rc)
        return rc;
    rc = write_rows(w, batch, lo, hi, err);
    if (rc == 0)
        return pi_db_exec(w->conn, "RELEASE SAVEPOINT pi_split", err);
    if (rc != PI_EDATA)
        return rc;
    /* Forget what the failed range had found. */
    w->n_xrejs = n_xrejs;
    w->cur = cur;
    rc = pi_db_exec(w->conn, "ROLLBACK TO SAVEPOINT pi_split", err);
    if (rc == 0)
        rc = pi_db_exec(w->conn, "RELEASE SAVEPOINT pi_split", err);
    if (rc)
        return rc;
    if (hi - lo == 1) {
        const pi_presence *pr =
            &pi_batch_result(batch)->presences[w->staged[lo]];
        const pi_msg_meta *m = pi_batch_msg(batch, pr->tag);
        pi_sbuf sb = {.len = 0};

        pi_sbuf_printf(&sb, "refused by PostgreSQL: %s: %s",
                       w->refused.sqlstate, w->refused.msg);
        add_xrej(w, w->staged[lo], refusal_code(&w->refused), &sb);
        w->cur.rejected++;
        pi_log_at(PI_LOG_WARN, w->topics[m->topic], m->partition, m->offset,
                  "presence id %" PRId64 " element %u refused by PostgreSQL "
                  "(%s: %s): recorded as a reject",
                  pr->id, (unsigned)pr->element, w->refused.sqlstate,
                  w->refused.msg);
        return 0;
    }
    mid = lo + (hi - lo) / 2;
    rc = write_split(w, batch, lo, mid, err);
    if (rc == 0)
        rc = write_split(w, batch, mid, hi, err);
    return rc;
}

static void reject_row(pi_writer *w, const pi_batch *batch, uint32_t tag,
                       uint32_t element, pi_reject_code code, pi_str detail,
                       pi_str payload)
{
    const pi_msg_meta *m = pi_batch_msg(batch, tag);
    const char *topic = w->topics[m->topic];
    const char *name = pi_reject_code_name(code);

    pi_wbuf_i16(&w->out, 8);
    pi_copy_bytes(&w->out, topic, strlen(topic));
    pi_copy_i32(&w->out, m->partition);
    pi_copy_i64(&w->out, m->offset);
    pi_copy_i32(&w->out, (int32_t)element);
    pi_copy_bytes(&w->out, name, strlen(name));
    pi_copy_bytes(&w->out, detail.ptr ? detail.ptr : "", detail.len);
    pi_copy_bytes(&w->out, payload.ptr, payload.len);
    pi_copy_bytes(&w->out, m->key.ptr, m->key.len);
}

static int write_rejects(pi_writer *w, const pi_batch *batch, pi_err *err)
{
    const pi_decode_result *res = pi_batch_result(batch);
    const pi_str none = {NULL, 0};
    PGresult *pres;
    size_t n = 0;
    int rc;

    pi_copy_header(&w->out);
    for (size_t i = 0; i < res->n_rejects; i++) {
        const pi_reject *rj = &res->rejects[i];
        const pi_msg_meta *m = pi_batch_msg(batch, rj->tag);
        if (w->fenced[rj->tag])
            continue;
        /* The raw value once per message (CONTRACT §4): on its first
         * rejected element, the decoder's rejects of a message being
         * consecutive and in element order; NULL on the others. */
        bool first = i == 0 || res->rejects[i - 1].tag != rj->tag;
        reject_row(w, batch, rj->tag, rj->element, rj->code,
                   pi_text_clean(&w->scratch, rj->detail.ptr, rj->detail.len),
                   first ? m->payload : none);
        w->cur.rejected++;
        w->cur.rejects_by_code[rj->code]++;
        n++;
    }
    for (size_t i = 0; i < w->n_xrejs; i++) {
        const pi_presence *pr = &res->presences[w->xrejs[i].presence];
        reject_row(w, batch, pr->tag, pr->element, w->xrejs[i].code,
                   w->xrejs[i].detail, element_json(w, pr));
        w->cur.rejects_by_code[w->xrejs[i].code]++;
        n++;
    }
    if (n == 0)
        return 0;
    pi_wbuf_i16(&w->out, -1);
    rc = send_copy(w, "COPY pi_stage_rejects FROM STDIN (FORMAT binary)",
                   "COPY into pi_stage_rejects", err);
    if (rc)
        return rc;
    pres = PQexec(w->conn, rejects_sql);
    if (PQresultStatus(pres) != PGRES_COMMAND_OK)
        rc = fail(w, pres, "inserting into presence_rejects", err);
    PQclear(pres);
    return rc;
}

static int write_offsets(pi_writer *w, const pi_batch *batch, pi_err *err)
{
    const char *params[4] = {w->group};
    PGresult *res;
    int rc = 0;

    position_params(w, batch, params, 3);
    res = PQexecParams(w->conn, offsets_sql, 4, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = fail(w, res, "updating ingest_offsets", err);
    PQclear(res);
    return rc;
}

static int commit(pi_writer *w, pi_err *err)
{
    PGresult *res = PQexec(w->conn, "SELECT pg_current_xact_id()");
    int rc;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = fail(w, res, "reading the transaction id", err);
        PQclear(res);
        return rc;
    }
    snprintf(w->lost_xid, sizeof(w->lost_xid), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    res = PQexec(w->conn, "COMMIT");
    if (PQresultStatus(res) == PGRES_COMMAND_OK) {
        w->lost_xid[0] = '\0';
        PQclear(res);
        return 0;
    }
    rc = fail(w, res, "COMMIT", err);
    PQclear(res);
    if (rc == PI_ERETRY && PQstatus(w->conn) == CONNECTION_BAD) {
        /* The reply was lost with the connection: the transaction may have
         * committed. Keep its figures; pg_xact_status() will tell. */
        w->lost = w->cur;
    } else {
        w->lost_xid[0] = '\0';
    }
    return rc;
}

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
    rc = pi_db_exec(w->conn, "BEGIN", err);
    if (rc)
        return rc;
    if (w->group && n_pos) {
        rc = fence(w, batch, err);
        if (rc)
            goto cleanup;
    }
    plan(w, batch);
    if (w->n_staged) {
        if (split)
            rc = write_split(w, batch, 0, w->n_staged, err);
        else
            rc = write_rows(w, batch, 0, w->n_staged, err);
        if (rc)
            goto cleanup;
    }
    rc = write_rejects(w, batch, err);
    if (rc) {
        /* The rejects were already bisected out of presences; if their own
         * table refuses them there is nothing left to split. */
        if (rc == PI_EDATA && split)
            err->code = rc = PI_EFATAL;
        goto cleanup;
    }
    if (w->group && n_pos) {
        rc = write_offsets(w, batch, err);
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
    return commit(w, err);
cleanup:
    rollback(w);
    return rc;
}

void pi_write_stats_add(pi_write_stats *to, const pi_write_stats *from)
{
    to->messages += from->messages;
    to->stored += from->stored;
    to->duplicates += from->duplicates;
    to->conflicts += from->conflicts;
    to->rejected += from->rejected;
    to->skipped += from->skipped;
    to->fenced += from->fenced;
    to->batches += from->batches;
    to->retries += from->retries;
    to->splits += from->splits;
    to->reconnects += from->reconnects;
    to->write_us += from->write_us;
    for (int i = 0; i < PI_REJ__COUNT; i++)
        to->rejects_by_code[i] += from->rejects_by_code[i];
}

static void sub_clamped(uint64_t *to, uint64_t from)
{
    *to = *to > from ? *to - from : 0;
}

void pi_write_stats_sub(pi_write_stats *to, const pi_write_stats *from)
{
    sub_clamped(&to->messages, from->messages);
    sub_clamped(&to->stored, from->stored);
    sub_clamped(&to->duplicates, from->duplicates);
    sub_clamped(&to->conflicts, from->conflicts);
    sub_clamped(&to->rejected, from->rejected);
    sub_clamped(&to->skipped, from->skipped);
    sub_clamped(&to->fenced, from->fenced);
    sub_clamped(&to->batches, from->batches);
    sub_clamped(&to->retries, from->retries);
    sub_clamped(&to->splits, from->splits);
    sub_clamped(&to->reconnects, from->reconnects);
    sub_clamped(&to->write_us, from->write_us);
    for (int i = 0; i < PI_REJ__COUNT; i++)
        sub_clamped(&to->rejects_by_code[i], from->rejects_by_code[i]);
}

/* After a lost COMMIT reply: did it commit? 1 yes, 0 no, <0 failure. */
static int lost_commit_outcome(pi_writer *w, pi_err *err)
{
    const char *params[1] = {w->lost_xid};
    PGresult *res;
    int rc;

    res = PQexecParams(w->conn, "SELECT pg_xact_status($1::xid8)", 1, NULL,
                       params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK &&
        strcmp(pi_db_sqlstate(res), "22023") == 0) {
        /* "transaction ID … is in the future": the server came back from
         * a crash without it (synchronous_commit=off) or is another one (a
         * failover): it did not commit here. */
        rc = 0;
    } else if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = fail(w, res, "asking for the outcome of a lost COMMIT", err);
    } else if (strcmp(PQgetvalue(res, 0, 0), "in progress") == 0) {
        /* The old backend has not noticed the disconnect yet. */
        rc = pi_err_set(err, PI_ERETRY,
                        "transaction %s of the lost COMMIT is still in "
                        "progress",
                        w->lost_xid);
    } else {
        rc = strcmp(PQgetvalue(res, 0, 0), "committed") == 0;
    }
    PQclear(res);
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

int pi_writer_write(pi_writer *w, pi_batch *batch, pi_write_stats *stats,
                    pi_err *err)
{
    unsigned attempt = 0;
    uint64_t reconnects = w->reconnects;
    int split = 0, rc;

    /* A COMMIT outcome still unknown belongs to the batch it was
     * committing: if the caller gave that batch up (cancelled, then dropped
     * or changed it), the outcome says nothing about this one, which is
     * written in full; the fence skips whatever that COMMIT did store. */
    if (w->lost_xid[0] && (batch != w->lost_batch ||
                           pi_batch_version(batch) != w->lost_version)) {
        pi_warn("the outcome of transaction %s (COMMIT reply lost) no longer "
                "matters: its batch was given up",
                w->lost_xid);
        w->lost_xid[0] = '\0';
    }
    if (pi_batch_messages(batch) == 0)
        return 0;
    pi_metrics_write_begin(w->opts.metrics);
    for (;;) {
        rc = 0;
        if (w->conn == NULL || PQstatus(w->conn) != CONNECTION_OK)
            rc = connect_db(w, err);
        if (rc == 0 && w->lost_xid[0]) {
            rc = lost_commit_outcome(w, err);
            if (rc == 1) {
                pi_warn("the COMMIT lost with the connection had succeeded "
                        "(transaction %s)",
                        w->lost_xid);
                w->lost_xid[0] = '\0';
                w->lost.retries += attempt;
                w->lost.reconnects = w->reconnects - reconnects;
                pi_write_stats_add(stats, &w->lost);
                return 0;
            }
            if (rc == 0) {
                pi_warn("the COMMIT lost with the connection had not "
                        "happened (transaction %s): writing the batch again",
                        w->lost_xid);
                w->lost_xid[0] = '\0';
            }
        }
        if (rc == 0) {
            pi_arena_reset(&w->scratch);
            prepare_topics(w, batch);
            int64_t t0 = mono_us();
            rc = write_once(w, batch, split, err);
            if (rc == 0) {
                w->cur.write_us = (uint64_t)(mono_us() - t0);
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
        if (rc != PI_ERETRY)
            return rc;
        if (backoff(w, ++attempt, "database write", err) != 0)
            return PI_ERETRY;
    }
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
                rc = fail(w, res, "reading ingest_offsets", err);
            } else if (PQntuples(res) > 0) {
                *next = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
            }
            PQclear(res);
            if (rc == 0)
                return 0;
        }
        if (rc != PI_ERETRY)
            return rc == PI_EDATA ? (err->code = PI_EFATAL) : rc;
        if (backoff(w, ++attempt, "reading ingest_offsets", err) != 0)
            return PI_ERETRY;
    }
}
