/* writer.c -- a batch into PostgreSQL: fence, staged COPY, idempotent upsert */
#include "presence/writer.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "presence/db.h"
#include "presence/log.h"
#include "presence/mem.h"
#include "presence/migrate.h"

/* Microseconds from 1970-01-01 to 2000-01-01, PostgreSQL's timestamp epoch. */
#define PG_EPOCH_US INT64_C(946684800000000)

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

/* The stored rows that share an id with the staged range, compared column by
 * column (e), the insert of the others (ins), and, for replace, the update of
 * the differing ones (upd). One statement, so e and ins see one snapshot:
 * every staged row is either found or inserted, and the counts are exact. A
 * plain INSERT, not ON CONFLICT: speculative insertion costs an extra WAL
 * record per row, and a conflict can only come from another transaction that
 * inserted one of our ids since the snapshot — a unique violation on the
 * primary key that write_once turns into a retry. The LEFT JOIN always
 * yields one row carrying the counts, plus one per differing row. */
#define UPSERT_E                                                               \
    "WITH e AS MATERIALIZED ("                                                 \
    " SELECT s.seq, s.id,"                                                     \
    "  (p.connection_id, p.type, p.reason, p.asset, p.time,"                   \
    "   p.time_offset_minutes) IS DISTINCT FROM (s.connection_id, s.type,"     \
    "   s.reason, s.asset, s.time, s.time_offset_minutes) AS differs,"         \
    "  p.connection_id <> s.connection_id AS d_conn,"                          \
    "  p.type <> s.type AS d_type, p.reason <> s.reason AS d_reason,"          \
    "  p.asset IS DISTINCT FROM s.asset AS d_asset,"                           \
    "  p.time <> s.time AS d_time,"                                            \
    "  p.time_offset_minutes <> s.time_offset_minutes AS d_off,"               \
    "  p.connection_id AS p_conn, p.type AS p_type, p.reason AS p_reason,"     \
    "  p.asset AS p_asset, p.time AS p_time,"                                  \
    "  p.time_offset_minutes AS p_off, p.kafka_topic AS p_topic,"              \
    "  p.kafka_partition AS p_partition, p.kafka_offset AS p_offset,"          \
    "  s.connection_id AS s_conn, s.type AS s_type, s.reason AS s_reason,"     \
    "  s.asset AS s_asset, s.time AS s_time,"                                  \
    "  s.time_offset_minutes AS s_off, s.kafka_topic AS s_topic,"              \
    "  s.kafka_partition AS s_partition, s.kafka_offset AS s_offset"           \
    " FROM pi_stage s JOIN presences p ON p.id = s.id"                         \
    " WHERE s.seq >= $1 AND s.seq < $2),"                                      \
    " ins AS ("                                                                \
    " INSERT INTO presences (id, connection_id, type, reason, asset, time,"    \
    "  time_offset_minutes, kafka_topic, kafka_partition, kafka_offset)"       \
    " SELECT s.id, s.connection_id, s.type, s.reason, s.asset, s.time,"        \
    "  s.time_offset_minutes, s.kafka_topic, s.kafka_partition,"               \
    "  s.kafka_offset"                                                         \
    " FROM pi_stage s WHERE s.seq >= $1 AND s.seq < $2"                        \
    "  AND NOT EXISTS (SELECT 1 FROM e WHERE e.seq = s.seq)"                   \
    " RETURNING 1)"

#define UPSERT_SELECT(n_upd)                                                   \
    " SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM e), " n_upd     \
    ", d.seq, d.d_conn, d.d_type, d.d_reason, d.d_asset, d.d_time, d.d_off,"   \
    " d.p_conn, d.p_type, d.p_reason, d.p_asset, d.p_time, d.p_off,"           \
    " d.p_topic, d.p_partition, d.p_offset"                                    \
    " FROM (SELECT 1) AS one LEFT JOIN (SELECT * FROM e WHERE differs) AS d"   \
    " ON true"

static const char upsert_keep_sql[] = UPSERT_E UPSERT_SELECT("0");

static const char upsert_replace_sql[] =
    UPSERT_E ", upd AS ("
             " UPDATE presences p SET connection_id = e.s_conn,"
             "  type = e.s_type, reason = e.s_reason, asset = e.s_asset,"
             "  time = e.s_time, time_offset_minutes = e.s_off,"
             "  kafka_topic = e.s_topic, kafka_partition = e.s_partition,"
             "  kafka_offset = e.s_offset, ingested_at = now()"
             " FROM e WHERE p.id = e.id AND e.differs RETURNING 1)"
    UPSERT_SELECT("(SELECT count(*) FROM upd)");

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
    char *buf; /* COPY data or parameter text */
    size_t len, cap;
    refusal refused;
    pi_write_stats cur; /* figures of the attempt in progress */
    /* A COMMIT whose outcome was lost with the connection: its xid and the
     * figures it would have. */
    char lost_xid[32];
    pi_write_stats lost;
};

void pi_writer_opts_init(pi_writer_opts *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->on_conflict = PI_ON_CONFLICT_KEEP;
    opts->backoff_min_ms = 100;
    opts->backoff_max_ms = 10000;
}

/* ---- small helpers ------------------------------------------------------ */

static void buf_need(pi_writer *w, size_t n)
{
    pi_grow((void **)&w->buf, &w->cap, w->len + n, 1);
}

static void put_raw(pi_writer *w, const void *p, size_t n)
{
    buf_need(w, n);
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static void put_i16(pi_writer *w, int16_t v)
{
    uint16_t u = (uint16_t)v;
    unsigned char b[2] = {(unsigned char)(u >> 8), (unsigned char)u};
    put_raw(w, b, 2);
}

static void put_i32(pi_writer *w, int32_t v)
{
    uint32_t u = (uint32_t)v;
    unsigned char b[4] = {(unsigned char)(u >> 24), (unsigned char)(u >> 16),
                          (unsigned char)(u >> 8), (unsigned char)u};
    put_raw(w, b, 4);
}

static void put_i64(pi_writer *w, int64_t v)
{
    uint64_t u = (uint64_t)v;
    unsigned char b[8];
    for (int i = 7; i >= 0; i--) {
        b[i] = (unsigned char)u;
        u >>= 8;
    }
    put_raw(w, b, 8);
}

/* Binary COPY fields: a length word, then the value. */
static void field_i16(pi_writer *w, int16_t v)
{
    put_i32(w, 2);
    put_i16(w, v);
}

static void field_i32(pi_writer *w, int32_t v)
{
    put_i32(w, 4);
    put_i32(w, v);
}

static void field_i64(pi_writer *w, int64_t v)
{
    put_i32(w, 8);
    put_i64(w, v);
}

static void field_bytes(pi_writer *w, const char *p, size_t n)
{
    if (p == NULL) {
        put_i32(w, -1); /* SQL NULL */
        return;
    }
    put_i32(w, (int32_t)n);
    put_raw(w, p, n);
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 when it is
 * not one (overlong, surrogate, beyond U+10FFFF, truncated) or is U+0000. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    uint32_t cp;

    if (c == 0)
        return 0;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

/* s as text PostgreSQL accepts: valid UTF-8 without NUL. Returned as is when
 * it already is (the usual case), else a copy in the arena with each bad byte
 * replaced by '?'. Used for strings the decoder did not vouch for: topic
 * names (a `load` path), details. */
static pi_str clean_text(pi_arena *arena, const char *s, size_t n)
{
    pi_str out = {s, n};
    size_t i = 0, k;
    char *copy;

    while (i < n && (k = utf8_seq((const unsigned char *)s + i, n - i)) > 0)
        i += k;
    if (i == n)
        return out;
    copy = pi_arena_memdup(arena, s, n);
    while (i < n) {
        k = utf8_seq((const unsigned char *)s + i, n - i);
        if (k == 0) {
            copy[i] = '?';
            k = 1;
        }
        i += k;
    }
    out.ptr = copy;
    return out;
}

/* A bounded, growable string in the scratch arena for details. */
typedef struct sbuf {
    char data[1024];
    size_t len;
} sbuf;

static void sb_printf(sbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void sb_printf(sbuf *sb, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (sb->len >= sizeof(sb->data) - 1)
        return;
    va_start(ap, fmt);
    n = vsnprintf(sb->data + sb->len, sizeof(sb->data) - sb->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        sb->len += (size_t)n;
    if (sb->len > sizeof(sb->data) - 1)
        sb->len = sizeof(sb->data) - 1;
}

/* Quote a value for a detail, cut to a readable length. */
static void sb_value(sbuf *sb, const char *s, size_t n)
{
    if (s == NULL) {
        sb_printf(sb, "null");
        return;
    }
    if (n > 40)
        sb_printf(sb, "\"%.40s…\"", s);
    else
        sb_printf(sb, "\"%.*s\"", (int)n, s);
}

/* civil date from days since 1970-01-01 (Howard Hinnant's algorithm): valid
 * for any year, unlike gmtime on a 32-bit time_t. */
static void civil(int64_t days, int *y, int *m, int *d)
{
    int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;

    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

/* time as RFC 3339 in its original offset (rfc3339=1), or as PostgreSQL
 * prints a timestamptz in UTC (rfc3339=0), for comparing with stored text. */
static void fmt_time(char *out, size_t cap, int64_t time_us, int offset_min,
                     int rfc3339)
{
    int64_t local = time_us + (rfc3339 ? (int64_t)offset_min * 60000000 : 0);
    int64_t secs = local >= 0 ? local / 1000000 : -((-local + 999999) / 1000000);
    int64_t frac = local - secs * 1000000;
    int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    int64_t sod = secs - days * 86400;
    char fs[16] = "";
    int y, m, d, n;

    civil(days, &y, &m, &d);
    if (frac) {
        snprintf(fs, sizeof(fs), ".%06d", (int)frac);
        for (n = (int)strlen(fs); fs[n - 1] == '0'; n--)
            fs[n - 1] = '\0';
    }
    if (!rfc3339) {
        snprintf(out, cap, "%04d-%02d-%02d %02d:%02d:%02d%s+00", y, m, d,
                 (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60), fs);
    } else if (offset_min == 0) {
        snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d%sZ", y, m, d,
                 (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60), fs);
    } else {
        int a = offset_min < 0 ? -offset_min : offset_min;
        snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d%s%c%02d:%02d", y, m,
                 d, (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60),
                 fs, offset_min < 0 ? '-' : '+', a / 60, a % 60);
    }
}

static void json_string(pi_writer *w, const char *s, size_t n)
{
    put_raw(w, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put_raw(w, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            put_raw(w, esc, 6);
        } else {
            put_raw(w, &s[i], 1);
        }
    }
    put_raw(w, "\"", 1);
}

/* The payload of a writer reject: the element as a presence object. The raw
 * value is only kept for messages with decoder rejects (batch.h), and for an
 * array the element alone is what one would re-drive. */
static pi_str element_json(pi_writer *w, const pi_presence *pr)
{
    size_t start = w->len;
    char num[160], t[64];
    pi_str out;

    snprintf(num, sizeof(num),
             "{\"id\":%" PRId64 ",\"id_str\":\"%" PRId64
             "\",\"connection_id\":%" PRId64
             ",\"connection_id_str\":\"%" PRId64 "\",\"type\":",
             pr->id, pr->id, pr->connection_id, pr->connection_id);
    put_raw(w, num, strlen(num));
    json_string(w, pi_presence_type_name(pr->type),
                strlen(pi_presence_type_name(pr->type)));
    put_raw(w, ",\"reason\":", 10);
    json_string(w, pr->reason.ptr, pr->reason.len);
    put_raw(w, ",\"asset\":", 9);
    if (pr->asset.ptr)
        json_string(w, pr->asset.ptr, pr->asset.len);
    else
        put_raw(w, "null", 4);
    fmt_time(t, sizeof(t), pr->time_us, pr->offset_min, 1);
    put_raw(w, ",\"time\":", 8);
    json_string(w, t, strlen(t));
    put_raw(w, "}", 1);
    out.len = w->len - start;
    out.ptr = pi_arena_memdup(&w->scratch, w->buf + start, out.len);
    w->len = start;
    return out;
}

static void add_xrej(pi_writer *w, uint32_t presence, pi_reject_code code,
                     const sbuf *sb)
{
    xrej *x;

    pi_grow((void **)&w->xrejs, &w->cap_xrejs, w->n_xrejs + 1,
            sizeof(*w->xrejs));
    x = &w->xrejs[w->n_xrejs++];
    x->presence = presence;
    x->code = code;
    x->detail = clean_text(&w->scratch, sb->data, sb->len);
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

static int connect_db(pi_writer *w, pi_err *err)
{
    int rc;

    PQfinish(w->conn);
    w->conn = NULL;
    rc = pi_db_connect(&w->conn, w->conninfo, err);
    if (rc)
        return rc;
    rc = pi_db_exec(w->conn, setup_sql, err);
    if (rc) {
        PQfinish(w->conn);
        w->conn = NULL;
    }
    return rc;
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
    if (w->opts.backoff_min_ms <= 0)
        w->opts.backoff_min_ms = 100;
    if (w->opts.backoff_max_ms < w->opts.backoff_min_ms)
        w->opts.backoff_max_ms = w->opts.backoff_min_ms;
    pi_log_mask_conninfo(w->conninfo ? w->conninfo : "(PG* environment)",
                         w->masked, sizeof(w->masked));
    w->seed = (uint64_t)time(NULL) ^ ((uint64_t)(uintptr_t)w << 16);
    pi_arena_init(&w->scratch);
    rc = pi_db_connect(&w->conn, w->conninfo, err);
    if (rc == 0)
        rc = pi_migrate_check(w->conn, err);
    if (rc == 0)
        rc = pi_db_exec(w->conn, setup_sql, err);
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
    PQfinish(w->conn);
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
    free(w->buf);
    free(w);
}

/* ---- one attempt -------------------------------------------------------- */

/* PostgreSQL array literal of the batch's position topics or partitions. */
static void array_literal(pi_writer *w, const pi_batch *batch, int what)
{
    size_t n;
    const pi_position *pos = pi_batch_positions(batch, &n);
    char num[32];

    put_raw(w, "{", 1);
    for (size_t i = 0; i < n; i++) {
        if (i)
            put_raw(w, ",", 1);
        if (what == 0) {
            const char *t = w->topics[pos[i].topic];
            put_raw(w, "\"", 1);
            for (; *t; t++) {
                if (*t == '"' || *t == '\\')
                    put_raw(w, "\\", 1);
                put_raw(w, t, 1);
            }
            put_raw(w, "\"", 1);
        } else {
            snprintf(num, sizeof(num), "%" PRId64,
                     what == 1 ? (int64_t)pos[i].partition
                               : pos[i].next_offset);
            put_raw(w, num, strlen(num));
        }
    }
    put_raw(w, "}", 2); /* with its NUL */
}

/* Parameters $2.. ($3, $4) as array literals, laid out in w->buf. */
static void position_params(pi_writer *w, const pi_batch *batch,
                            const char **params, int n_arrays)
{
    size_t at[3];

    w->len = 0;
    for (int i = 0; i < n_arrays; i++) {
        at[i] = w->len;
        array_literal(w, batch, i);
    }
    for (int i = 0; i < n_arrays; i++)
        params[1 + i] = w->buf + at[i];
}

static int fence(pi_writer *w, const pi_batch *batch, pi_err *err)
{
    const char *params[3] = {w->group};
    size_t n_pos, n_msgs = pi_batch_messages(batch);
    const pi_position *pos = pi_batch_positions(batch, &n_pos);
    PGresult *res;
    int rc = 0;

    position_params(w, batch, params, 2);
    res = PQexecParams(w->conn, fence_insert_sql, 3, NULL, params, NULL, NULL,
                       0);
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
            if (pos[i].partition == p && strcmp(w->topics[pos[i].topic], t) == 0)
                w->stored_next[i] = next;
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
static void describe_diff(sbuf *sb, const pi_presence *a, const pi_presence *b)
{
    const char *sep = "";

    if (a->connection_id != b->connection_id) {
        sb_printf(sb, "%sconnection_id %" PRId64 " vs %" PRId64, sep,
                  a->connection_id, b->connection_id);
        sep = ", ";
    }
    if (a->type != b->type) {
        sb_printf(sb, "%stype %s vs %s", sep, pi_presence_type_name(a->type),
                  pi_presence_type_name(b->type));
        sep = ", ";
    }
    if (!same_str(a->reason, b->reason)) {
        sb_printf(sb, "%sreason ", sep);
        sb_value(sb, a->reason.ptr, a->reason.len);
        sb_printf(sb, " vs ");
        sb_value(sb, b->reason.ptr, b->reason.len);
        sep = ", ";
    }
    if (!same_str(a->asset, b->asset)) {
        sb_printf(sb, "%sasset ", sep);
        sb_value(sb, a->asset.ptr, a->asset.len);
        sb_printf(sb, " vs ");
        sb_value(sb, b->asset.ptr, b->asset.len);
        sep = ", ";
    }
    if (a->time_us != b->time_us || a->offset_min != b->offset_min) {
        char ta[64], tb[64];
        fmt_time(ta, sizeof(ta), a->time_us, a->offset_min, 1);
        fmt_time(tb, sizeof(tb), b->time_us, b->offset_min, 1);
        sb_printf(sb, "%stime %s vs %s", sep, ta, tb);
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
            sbuf sb = {.len = 0};
            sb_printf(&sb,
                      "id %" PRId64 " appears earlier in this batch (%s/%d@%" PRId64
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
    for (size_t off = 0; off < w->len; off += COPY_CHUNK) {
        size_t n = w->len - off < COPY_CHUNK ? w->len - off : COPY_CHUNK;
        if (PQputCopyData(w->conn, w->buf + off, (int)n) != 1)
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

static void copy_header(pi_writer *w)
{
    static const char sig[11] = "PGCOPY\n\377\r\n";

    w->len = 0;
    put_raw(w, sig, 11);
    put_i32(w, 0); /* flags */
    put_i32(w, 0); /* header extension length */
}

/* Binary COPY rows for staged rows [lo, hi), or for the staged indices in
 * w->subset when subset is set; with_seq adds the seq column of pi_stage. */
static void encode_rows(pi_writer *w, const pi_batch *batch, size_t lo,
                        size_t hi, int subset, int with_seq)
{
    const pi_decode_result *res = pi_batch_result(batch);
    size_t n = subset ? w->n_subset : hi - lo;

    copy_header(w);
    buf_need(w, n * 160);
    for (size_t j = 0; j < n; j++) {
        size_t k = subset ? w->subset[j] : lo + j;
        const pi_presence *pr = &res->presences[w->staged[k]];
        const pi_msg_meta *m = pi_batch_msg(batch, pr->tag);
        const char *type = pi_presence_type_name(pr->type);
        const char *topic = w->topics[m->topic];

        put_i16(w, with_seq ? 11 : 10);
        if (with_seq)
            field_i32(w, (int32_t)k);
        field_i64(w, pr->id);
        field_i64(w, pr->connection_id);
        field_bytes(w, type, strlen(type));
        field_bytes(w, pr->reason.ptr, pr->reason.len);
        field_bytes(w, pr->asset.ptr, pr->asset.len);
        field_i64(w, pr->time_us - PG_EPOCH_US);
        field_i16(w, pr->offset_min);
        field_bytes(w, topic, strlen(topic));
        field_i32(w, m->partition);
        field_i64(w, m->offset);
    }
    put_i16(w, -1);
}

static int stage_rows(pi_writer *w, const pi_batch *batch, size_t lo,
                      size_t hi, pi_err *err)
{
    encode_rows(w, batch, lo, hi, 0, 1);
    return send_copy(w, "COPY pi_stage FROM STDIN (FORMAT binary)",
                     "COPY into pi_stage", err);
}

static int64_t get_be(const char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = (v << 8) | (unsigned char)p[i];
    if (bytes == 2)
        return (int16_t)v;
    if (bytes == 4)
        return (int32_t)v;
    return (int64_t)v;
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
static int stored_differs(sbuf *sb, const PGresult *res, int r,
                          const pi_presence *pr)
{
    int64_t conn = get_be(PQgetvalue(res, r, 1), 8);
    const char *type = PQgetvalue(res, r, 2);
    const char *reason = PQgetvalue(res, r, 3);
    size_t reason_len = (size_t)PQgetlength(res, r, 3);
    int asset_null = PQgetisnull(res, r, 4);
    const char *asset = asset_null ? NULL : PQgetvalue(res, r, 4);
    size_t asset_len = (size_t)PQgetlength(res, r, 4);
    int64_t time_us = get_be(PQgetvalue(res, r, 5), 8) + PG_EPOCH_US;
    int off = (int)get_be(PQgetvalue(res, r, 6), 2);
    const char *itype = pi_presence_type_name(pr->type);
    pi_str sreason = {reason, reason_len}, sasset = {asset, asset_len};
    const char *sep = "";
    char ta[64], tb[64];

    if (conn == pr->connection_id && strcmp(type, itype) == 0 &&
        same_str(sreason, pr->reason) && same_str(sasset, pr->asset) &&
        time_us == pr->time_us && off == pr->offset_min)
        return 0;
    sb_printf(sb, "id %" PRId64 " is stored (from %s/%d@%" PRId64
                  ") with other ",
              pr->id, PQgetisnull(res, r, 7) ? "" : PQgetvalue(res, r, 7),
              PQgetisnull(res, r, 8) ? 0
                                     : (int)get_be(PQgetvalue(res, r, 8), 4),
              PQgetisnull(res, r, 9) ? 0 : get_be(PQgetvalue(res, r, 9), 8));
    if (conn != pr->connection_id) {
        sb_printf(sb, "%sconnection_id %" PRId64 " (here %" PRId64 ")", sep,
                  conn, pr->connection_id);
        sep = ", ";
    }
    if (strcmp(type, itype) != 0) {
        sb_printf(sb, "%stype %s (here %s)", sep, type, itype);
        sep = ", ";
    }
    if (!same_str(sreason, pr->reason)) {
        sb_printf(sb, "%sreason ", sep);
        sb_value(sb, reason, reason_len);
        sb_printf(sb, " (here ");
        sb_value(sb, pr->reason.ptr, pr->reason.len);
        sb_printf(sb, ")");
        sep = ", ";
    }
    if (!same_str(sasset, pr->asset)) {
        sb_printf(sb, "%sasset ", sep);
        sb_value(sb, asset, asset_len);
        sb_printf(sb, " (here ");
        sb_value(sb, pr->asset.ptr, pr->asset.len);
        sb_printf(sb, ")");
        sep = ", ";
    }
    if (time_us != pr->time_us) {
        fmt_time(ta, sizeof(ta), time_us, 0, 0);
        fmt_time(tb, sizeof(tb), pr->time_us, 0, 0);
        sb_printf(sb, "%stime %s (here %s)", sep, ta, tb);
        sep = ", ";
    }
    if (off != pr->offset_min)
        sb_printf(sb, "%stime offset %d min (here %d)", sep, off,
                  (int)pr->offset_min);
    return 1;
}

/* The fast path, used unless a data error sent the batch to write_split.
 * One probe fetches the stored rows that share an id with the staged ones
 * (binary, by primary key); they are compared here, in C. The others are
 * new: one COPY straight into presences, as fast as a plain COPY. Only
 * replace with differing rows touches the staging table, to UPDATE them.
 * A row inserted by another transaction between the probe and the COPY
 * makes the COPY fail on presences_pkey: the batch is retried, and the row is
 * then found. */
static int write_fast(pi_writer *w, const pi_batch *batch, pi_err *err)
{
    const pi_decode_result *dres = pi_batch_result(batch);
    int replace = w->opts.on_conflict == PI_ON_CONFLICT_REPLACE;
    const Oid types[1] = {1016}; /* int8[] */
    const char *params[1];
    int lengths[1], formats[1] = {1};
    PGresult *res;
    size_t n_found = 0, n_diff = 0;
    int rc = 0;

    pi_grow((void **)&w->found, &w->cap_found, w->n_staged + 1, 1);
    memset(w->found, 0, w->n_staged);
    pi_grow((void **)&w->subset, &w->cap_subset, w->n_staged + 1,
            sizeof(*w->subset));
    /* The ids as a binary int8[] parameter: parsing 5000 numbers from text
     * costs the server more than the probe itself. */
    w->len = 0;
    put_i32(w, 1);  /* dimensions */
    put_i32(w, 0);  /* no NULLs */
    put_i32(w, 20); /* element type: int8 */
    put_i32(w, (int32_t)w->n_staged);
    put_i32(w, 1); /* lower bound */
    for (size_t k = 0; k < w->n_staged; k++)
        field_i64(w, dres->presences[w->staged[k]].id);
    params[0] = w->buf;
    lengths[0] = (int)w->len;
    res = PQexecParams(w->conn,
                       "SELECT id, connection_id, type, reason, asset, time,"
                       " time_offset_minutes, kafka_topic, kafka_partition,"
                       " kafka_offset FROM presences WHERE id = ANY($1)",
                       1, types, params, lengths, formats, 1);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = fail(w, res, "reading stored presences", err);
        PQclear(res);
        return rc;
    }
    w->n_subset = 0;
    for (int r = 0; r < PQntuples(res); r++) {
        long k = staged_of(w, dres, get_be(PQgetvalue(res, r, 0), 8));
        sbuf sb = {.len = 0};

        if (k < 0 || w->found[k])
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
        res = PQexec(w->conn,
                     "UPDATE presences p SET connection_id = s.connection_id,"
                     " type = s.type, reason = s.reason, asset = s.asset,"
                     " time = s.time, time_offset_minutes ="
                     " s.time_offset_minutes, kafka_topic = s.kafka_topic,"
                     " kafka_partition = s.kafka_partition, kafka_offset ="
                     " s.kafka_offset, ingested_at = now() FROM pi_stage s"
                     " WHERE p.id = s.id");
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
    for (size_t k = 0; k < w->n_staged; k++) {
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

/* Run the upsert over staged rows [lo, hi) and account for them. */
static int upsert(pi_writer *w, const pi_batch *batch, size_t lo, size_t hi,
                  pi_err *err)
{
    const pi_decode_result *dres = pi_batch_result(batch);
    int replace = w->opts.on_conflict == PI_ON_CONFLICT_REPLACE;
    char slo[24], shi[24];
    const char *params[2] = {slo, shi};
    PGresult *res;
    int64_t n_ins, n_found, n_upd, n_diff = 0;
    int rc = 0;

    snprintf(slo, sizeof(slo), "%zu", lo);
    snprintf(shi, sizeof(shi), "%zu", hi);
    res = PQexecParams(w->conn, replace ? upsert_replace_sql : upsert_keep_sql,
                       2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = fail(w, res, "inserting into presences", err);
        if (strcmp(w->refused.sqlstate, "23505") == 0 &&
            strcmp(w->refused.constraint, "presences_pkey") == 0) {
            /* Not the data: another transaction inserted one of our ids
             * after our snapshot (ids were deduplicated and existing ones
             * excluded). Again, and it will be found. */
            err->code = rc = PI_ERETRY;
        }
        goto cleanup;
    }
    n_ins = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    n_found = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    n_upd = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    if (n_ins + n_found != (int64_t)(hi - lo)) {
        /* Cannot happen with one snapshot; if it ever does, the figures
         * would be wrong, so do it again rather than report them. */
        rc = pi_err_set(err, PI_ERETRY,
                        "a concurrent transaction inserted ids of this batch "
                        "(%" PRId64 " inserted + %" PRId64
                        " found of %zu staged)",
                        n_ins, n_found, hi - lo);
        goto cleanup;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        const pi_presence *pr;
        sbuf sb = {.len = 0};
        const char *sep = "";
        char t[64];
        size_t k;

        if (PQgetisnull(res, r, 3))
            continue;
        n_diff++;
        if (replace)
            continue;
        k = (size_t)strtoul(PQgetvalue(res, r, 3), NULL, 10);
        pr = &dres->presences[w->staged[k]];
        sb_printf(&sb, "id %" PRId64 " is stored (from %s/%s@%s) with other ",
                  pr->id, PQgetvalue(res, r, 16), PQgetvalue(res, r, 17),
                  PQgetvalue(res, r, 18));
        if (*PQgetvalue(res, r, 4) == 't') {
            sb_printf(&sb, "%sconnection_id %s (here %" PRId64 ")", sep,
                      PQgetvalue(res, r, 10), pr->connection_id);
            sep = ", ";
        }
        if (*PQgetvalue(res, r, 5) == 't') {
            sb_printf(&sb, "%stype %s (here %s)", sep, PQgetvalue(res, r, 11),
                      pi_presence_type_name(pr->type));
            sep = ", ";
        }
        if (*PQgetvalue(res, r, 6) == 't') {
            sb_printf(&sb, "%sreason ", sep);
            sb_value(&sb, PQgetvalue(res, r, 12),
                     (size_t)PQgetlength(res, r, 12));
            sb_printf(&sb, " (here ");
            sb_value(&sb, pr->reason.ptr, pr->reason.len);
            sb_printf(&sb, ")");
            sep = ", ";
        }
        if (*PQgetvalue(res, r, 7) == 't') {
            sb_printf(&sb, "%sasset ", sep);
            sb_value(&sb,
                     PQgetisnull(res, r, 13) ? NULL : PQgetvalue(res, r, 13),
                     (size_t)PQgetlength(res, r, 13));
            sb_printf(&sb, " (here ");
            sb_value(&sb, pr->asset.ptr, pr->asset.len);
            sb_printf(&sb, ")");
            sep = ", ";
        }
        if (*PQgetvalue(res, r, 8) == 't') {
            fmt_time(t, sizeof(t), pr->time_us, 0, 0);
            sb_printf(&sb, "%stime %s (here %s)", sep, PQgetvalue(res, r, 14),
                      t);
            sep = ", ";
        }
        if (*PQgetvalue(res, r, 9) == 't')
            sb_printf(&sb, "%stime offset %s min (here %d)", sep,
                      PQgetvalue(res, r, 15), (int)pr->offset_min);
        add_xrej(w, w->staged[k], PI_REJ_ID_CONFLICT, &sb);
    }
    if (replace && n_upd != n_diff) {
        /* A differing row deleted under us: retry for exact figures. */
        rc = pi_err_set(err, PI_ERETRY,
                        "presences changed during the write (%" PRId64
                        " updated of %" PRId64 " differing)",
                        n_upd, n_diff);
        goto cleanup;
    }
    w->cur.stored += (uint64_t)n_ins;
    w->cur.duplicates += (uint64_t)(n_found - n_diff);
    w->cur.conflicts += (uint64_t)n_diff;
cleanup:
    PQclear(res);
    return rc;
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
        snprintf(col, sizeof(col), "%.*s", (int)(n - 16),
                 rf->constraint + 10);
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
    size_t mid;
    int rc;

    if (lo >= hi)
        return 0;
    rc = pi_db_exec(w->conn, "SAVEPOINT pi_split", err);
    if (rc)
        return rc;
    rc = stage_rows(w, batch, lo, hi, err);
    if (rc == 0)
        rc = upsert(w, batch, lo, hi, err);
    if (rc == 0)
        return pi_db_exec(w->conn, "RELEASE SAVEPOINT pi_split", err);
    if (rc != PI_EDATA)
        return rc;
    rc = pi_db_exec(w->conn, "ROLLBACK TO SAVEPOINT pi_split", err);
    if (rc == 0)
        rc = pi_db_exec(w->conn, "RELEASE SAVEPOINT pi_split", err);
    if (rc)
        return rc;
    if (hi - lo == 1) {
        const pi_presence *pr =
            &pi_batch_result(batch)->presences[w->staged[lo]];
        const pi_msg_meta *m = pi_batch_msg(batch, pr->tag);
        sbuf sb = {.len = 0};

        sb_printf(&sb, "refused by PostgreSQL: %s: %s", w->refused.sqlstate,
                  w->refused.msg);
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

    put_i16(w, 8);
    field_bytes(w, topic, strlen(topic));
    field_i32(w, m->partition);
    field_i64(w, m->offset);
    field_i32(w, (int32_t)element);
    field_bytes(w, name, strlen(name));
    field_bytes(w, detail.ptr ? detail.ptr : "", detail.len);
    field_bytes(w, payload.ptr, payload.len);
    field_bytes(w, m->key.ptr, m->key.len);
}

static int write_rejects(pi_writer *w, const pi_batch *batch, pi_err *err)
{
    const pi_decode_result *res = pi_batch_result(batch);
    PGresult *pres;
    size_t n = 0;
    int rc;

    copy_header(w);
    for (size_t i = 0; i < res->n_rejects; i++) {
        const pi_reject *rj = &res->rejects[i];
        const pi_msg_meta *m = pi_batch_msg(batch, rj->tag);
        if (w->fenced[rj->tag])
            continue;
        reject_row(w, batch, rj->tag, rj->element, rj->code,
                   clean_text(&w->scratch, rj->detail.ptr, rj->detail.len),
                   m->payload);
        w->cur.rejected++;
        n++;
    }
    for (size_t i = 0; i < w->n_xrejs; i++) {
        const pi_presence *pr = &res->presences[w->xrejs[i].presence];
        reject_row(w, batch, pr->tag, pr->element, w->xrejs[i].code,
                   w->xrejs[i].detail, element_json(w, pr));
        n++;
    }
    if (n == 0)
        return 0;
    put_i16(w, -1);
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
            rc = write_fast(w, batch, err);
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
    return commit(w, err);
cleanup:
    rollback(w);
    return rc;
}

static void add_stats(pi_write_stats *to, const pi_write_stats *from)
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
}

/* After a lost COMMIT reply: did it commit? 1 yes, 0 no, <0 failure. */
static int lost_commit_outcome(pi_writer *w, pi_err *err)
{
    const char *params[1] = {w->lost_xid};
    PGresult *res;
    int rc;

    res = PQexecParams(w->conn, "SELECT pg_xact_status($1::xid8)", 1, NULL,
                       params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
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
        pi_str s = clean_text(&w->scratch, name, strlen(name));
        w->topics[t] = s.ptr == name ? name
                                     : pi_arena_memdup(&w->scratch, s.ptr,
                                                       s.len);
    }
}

int pi_writer_write(pi_writer *w, pi_batch *batch, pi_write_stats *stats,
                    pi_err *err)
{
    unsigned attempt = 0;
    int split = 0, rc;

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
                add_stats(stats, &w->lost);
                return 0;
            }
            if (rc == 0)
                w->lost_xid[0] = '\0';
        }
        if (rc == 0) {
            pi_arena_reset(&w->scratch);
            prepare_topics(w, batch);
            rc = write_once(w, batch, split, err);
            if (rc == 0) {
                w->cur.retries = attempt;
                w->cur.splits = (uint64_t)split;
                add_stats(stats, &w->cur);
                return 0;
            }
        }
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
        attempt++;
        if (w->opts.cancel && atomic_load(w->opts.cancel))
            return rc;
        int delay = pi_db_backoff_ms(attempt, w->opts.backoff_min_ms,
                                     w->opts.backoff_max_ms, &w->seed);
        pi_warn("database write failed (attempt %u), retrying in %d ms: %s "
                "[%s]",
                attempt, delay, err->msg, w->masked);
        if (pi_db_sleep_ms(delay, w->opts.cancel) != 0)
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
        attempt++;
        if (w->opts.cancel && atomic_load(w->opts.cancel))
            return rc;
        int delay = pi_db_backoff_ms(attempt, w->opts.backoff_min_ms,
                                     w->opts.backoff_max_ms, &w->seed);
        pi_warn("reading ingest_offsets failed (attempt %u), retrying in %d "
                "ms: %s [%s]",
                attempt, delay, err->msg, w->masked);
        if (pi_db_sleep_ms(delay, w->opts.cancel) != 0)
            return PI_ERETRY;
    }
}
