/* rows.c -- the batch's rows: one per id, new or stored (probe and
 * compare), COPY */
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

/* The COPY into presences failed on the primary key of presences or of one
 * of its partitions (presences_<partition>_pkey, 0003): another transaction
 * inserted one of the ids the probe had not found. */
bool pi_writer__key_race(const pi_writer *w)
{
    const char *c = w->refused.constraint;
    size_t n = strlen(c);

    /* On Citus the constraint is a shard's: its name ends in _<shard id>. */
    if (w->marks) {
        while (n > 0 && c[n - 1] >= '0' && c[n - 1] <= '9')
            n--;
        if (n > 0 && c[n - 1] == '_')
            n--;
    }
    return strcmp(w->refused.sqlstate, "23505") == 0 &&
           strncmp(c, "presences", 9) == 0 && n >= 14 &&
           strncmp(c + n - 5, "_pkey", 5) == 0;
}

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

static int cmp_staged(const void *a, const void *b)
{
    const pi_staged_id *x = a, *y = b;

    return (x->id > y->id) - (x->id < y->id);
}

/* Order the staged rows by id, so that concurrent transactions (two
 * writers, or two instances, whose batches share ids: the same presence
 * produced to two partitions) take presences_pkey's locks in the same
 * order and wait for each other instead of deadlocking. A time-ordered
 * stream's batch usually is in order already: one pass tells. */
static void sort_staged(pi_writer *w, const pi_decode_result *res)
{
    size_t n = w->n_staged, k;

    for (k = 1; k < n; k++) {
        if (res->presences[w->staged[k - 1]].id >
            res->presences[w->staged[k]].id)
            break;
    }
    if (k >= n)
        return;
    pi_grow((void **)&w->order, &w->cap_order, n, sizeof(*w->order));
    for (k = 0; k < n; k++) {
        w->order[k].id = res->presences[w->staged[k]].id;
        w->order[k].presence = w->staged[k];
    }
    qsort(w->order, n, sizeof(*w->order), cmp_staged);
    memset(w->slots, 0, (w->slot_mask + 1) * sizeof(*w->slots));
    for (k = 0; k < n; k++) {
        size_t h = hash_id(w->order[k].id) & w->slot_mask;

        while (w->slots[h])
            h = (h + 1) & w->slot_mask;
        w->staged[k] = w->order[k].presence;
        w->slots[h] = (uint32_t)(k + 1);
    }
}

/* Choose the rows to stage: the unfenced presences, one per id. A repeat of
 * an id inside the batch is a duplicate when identical; otherwise a conflict
 * resolved here, in message order: keep → the first stays staged and the
 * later one is an id_conflict reject; replace → the later one takes the
 * first's place. The staged rows are then ordered by id. */
void pi_writer__plan(pi_writer *w, const pi_batch *batch)
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
            pi_writer__add_xrej(w, (uint32_t)i, PI_REJ_ID_CONFLICT, &sb);
        }
    }
    sort_staged(w, res);
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

/* On Citus, after the COPY into presences (w->out still holds its rows):
 * the rollup's marks, then a no-op UPDATE that enlists every shard written
 * in the two-phase commit.
 *
 * The marks: the same rows into the coordinator's temporary pi_fresh, then
 * presence_rollup_mark_fresh_ids() (migrations/citus/citus.sql), which
 * marks them as presence_rollup_mark_fresh() does and returns one of their
 * ids per shard of presences. Only the rows inserted: a replay of stored
 * rows marks nothing.
 *
 * The UPDATE matches no row (connection_id > 0 is a CHECK). Citus 13.2.2
 * does not count a COPY over a connection that an earlier SELECT of the
 * transaction opened as a write: that connection is left out of the
 * two-phase commit and committed on its own after the coordinator's, so a
 * worker whose connection breaks before then loses the batch's rows there
 * while ingest_offsets moves on (measured: tests/citus/run_exactly_once.sh
 * lost 258 of 28 000 rows; docs/scale-out.md has the three-statement
 * reproduction). A DML statement on the same placements enlists those
 * connections: a break then fails the COMMIT, and the batch is retried.
 * One id per shard is enough for that, and costs each shard one index
 * lookup instead of one per row (docs/scale-out.md, measured). */
static int mark_and_enlist(pi_writer *w, pi_err *err)
{
    const Oid types[1] = {1016}; /* int8[] */
    const char *params[1];
    int lengths[1], formats[1] = {1};
    PGresult *res, *upd;
    int rc = pi_writer__send_copy(w,
                                  "COPY pi_fresh (id, connection_id, type,"
                                  " reason, asset, time, time_offset_minutes,"
                                  " kafka_topic, kafka_partition,"
                                  " kafka_offset) FROM STDIN (FORMAT binary)",
                                  "COPY into pi_fresh", err);

    if (rc)
        return rc;
    res = PQexecParams(w->conn, "SELECT presence_rollup_mark_fresh_ids()", 0,
                       NULL, NULL, NULL, NULL, 1);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        rc = pi_writer__fail(w, res, "marking the rollup", err);
        PQclear(res);
        return rc;
    }
    if (PQgetisnull(res, 0, 0)) {
        PQclear(res);
        return pi_err_set(err, PI_EFATAL,
                          "marking the rollup: no shard for the rows written");
    }
    /* The binary int8[] back as the UPDATE's parameter, as it came. */
    params[0] = PQgetvalue(res, 0, 0);
    lengths[0] = PQgetlength(res, 0, 0);
    upd = PQexecParams(w->conn,
                       "UPDATE presences SET connection_id = connection_id"
                       " WHERE id = ANY($1) AND connection_id < 0",
                       1, types, params, lengths, formats, 0);
    if (PQresultStatus(upd) != PGRES_COMMAND_OK)
        rc = pi_writer__fail(w, upd, "enlisting the shards written", err);
    PQclear(upd);
    PQclear(res);
    return rc;
}

/* On Citus: w->ids_max, read from presences when not known (a fan-out:
 * once per writer, and again after a failed attempt). */
static int read_ids_max(pi_writer *w, pi_err *err)
{
    PGresult *res;
    int rc = 0;

    if (w->ids_max_known)
        return 0;
    res = PQexecParams(w->conn, "SELECT coalesce(max(id), 0) FROM presences", 0,
                       NULL, NULL, NULL, NULL, 1);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        rc = pi_writer__fail(w, res, "reading max(id) of presences", err);
    } else {
        w->ids_max = pi_be_get(PQgetvalue(res, 0, 0), 8);
        w->ids_max_known = true;
    }
    PQclear(res);
    return rc;
}

/* The probe's statement: the stored rows of the ids in $1 (binary int8[]).
 * One server bounds it by max(id): new ids of a time-ordered stream then
 * cost one index descent per batch, not one per row. */
static const char probe_sql[] =
    "SELECT id, connection_id, type, reason, asset, time,"
    " time_offset_minutes, kafka_topic, kafka_partition, kafka_offset"
    " FROM presences WHERE id = ANY(ARRAY(SELECT i FROM unnest($1) AS i"
    " WHERE i <= (SELECT max(id) FROM presences)))";
static const char probe_sql_citus[] =
    "SELECT id, connection_id, type, reason, asset, time,"
    " time_offset_minutes, kafka_topic, kafka_partition, kafka_offset"
    " FROM presences WHERE id = ANY($1)";

/* Start a binary int8[] of n elements in w->out (the ids follow). */
static void array_header(pi_writer *w, size_t n)
{
    pi_wbuf_i32(&w->out, 1);  /* dimensions */
    pi_wbuf_i32(&w->out, 0);  /* no NULLs */
    pi_wbuf_i32(&w->out, 20); /* element type: int8 */
    pi_wbuf_i32(&w->out, (int32_t)n);
    pi_wbuf_i32(&w->out, 1); /* lower bound */
}

/* The probe's stored rows of staged rows [lo, hi): identical → duplicate;
 * different → a conflict (w->subset to replace, or a reject). */
static void take_stored(pi_writer *w, const pi_decode_result *dres,
                        const PGresult *res, size_t lo, size_t hi,
                        size_t *n_found, size_t *n_diff)
{
    for (int r = 0; r < PQntuples(res); r++) {
        long k = staged_of(w, dres, pi_be_get(PQgetvalue(res, r, 0), 8));
        pi_sbuf sb = {.len = 0};

        if (k < (long)lo || k >= (long)hi || w->found[k])
            continue;
        w->found[k] = 1;
        (*n_found)++;
        if (!stored_differs(&sb, res, r, &dres->presences[w->staged[k]]))
            continue;
        (*n_diff)++;
        if (w->opts.on_conflict == PI_ON_CONFLICT_REPLACE)
            w->subset[w->n_subset++] = (uint32_t)k;
        else
            pi_writer__add_xrej(w, w->staged[k], PI_REJ_ID_CONFLICT, &sb);
    }
}

/* One server: one probe of all the ids, as a binary int8[] parameter
 * (parsing 5000 numbers from text costs the server more than the probe
 * itself). */
static int probe_one(pi_writer *w, const pi_decode_result *dres, size_t lo,
                     size_t hi, size_t *n_found, size_t *n_diff, pi_err *err)
{
    const Oid types[1] = {1016}; /* int8[] */
    const char *params[1];
    int lengths[1], formats[1] = {1};
    PGresult *res;
    int rc = 0;

    w->out.len = 0;
    array_header(w, hi - lo);
    for (size_t k = lo; k < hi; k++)
        pi_copy_i64(&w->out, dres->presences[w->staged[k]].id);
    params[0] = w->out.ptr;
    lengths[0] = (int)w->out.len;
    res =
        PQexecParams(w->conn, probe_sql, 1, types, params, lengths, formats, 1);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        rc = pi_writer__fail(w, res, "reading stored presences", err);
    else
        take_stored(w, dres, res, lo, hi, n_found, n_diff);
    PQclear(res);
    return rc;
}

/* Citus: each shard is sent the whole array of an `id = ANY($1)` and looks
 * every id up, so the ids go in one array per shard (shards.c), each its
 * own statement, all in one round trip (libpq's pipeline mode), and only
 * those up to w->ids_max: a batch of new time-ordered ids needs no probe at
 * all. Each shard then looks up its own ids, as one server looks up all. */
static int probe_shards(pi_writer *w, const pi_decode_result *dres, size_t lo,
                        size_t hi, size_t *n_found, size_t *n_diff, pi_err *err)
{
    const Oid types[1] = {1016}; /* int8[] */
    int formats[1] = {1};
    size_t n_groups = w->n_shards ? w->n_shards : 1, sent = 0, got = 0;
    PGresult *res;
    int rc = read_ids_max(w, err);

    if (rc)
        return rc;
    pi_grow((void **)&w->shard_of, &w->cap_shard_of, w->n_staged + 1,
            sizeof(*w->shard_of));
    pi_grow((void **)&w->group_off, &w->cap_groups, n_groups,
            sizeof(*w->group_off));
    w->group_len = pi_realloc(w->group_len, w->cap_groups * sizeof(size_t));
    memset(w->group_len, 0, n_groups * sizeof(size_t));
    for (size_t k = lo; k < hi; k++) {
        int64_t id = dres->presences[w->staged[k]].id;

        w->shard_of[k] = UINT32_MAX;
        if (id > w->ids_max)
            continue;
        w->shard_of[k] = (uint32_t)pi_writer__shard_of(w, id);
        w->group_len[w->shard_of[k]]++;
    }
    w->out.len = 0;
    for (size_t g = 0; g < n_groups; g++) {
        size_t n = w->group_len[g];

        w->group_off[g] = w->out.len;
        if (n == 0)
            continue;
        array_header(w, n);
        for (size_t k = lo; k < hi; k++) {
            if (w->shard_of[k] == g)
                pi_copy_i64(&w->out, dres->presences[w->staged[k]].id);
        }
        w->group_len[g] = w->out.len - w->group_off[g];
    }
    if (w->out.len == 0)
        return 0;
    if (!PQenterPipelineMode(w->conn))
        return pi_writer__fail(w, NULL, "probing stored presences", err);
    for (size_t g = 0; g < n_groups && rc == 0; g++) {
        const char *params[1] = {w->out.ptr + w->group_off[g]};
        int lengths[1] = {(int)w->group_len[g]};

        if (w->group_len[g] == 0)
            continue;
        if (PQsendQueryParams(w->conn, probe_sql_citus, 1, types, params,
                              lengths, formats, 1))
            sent++;
        else
            rc = pi_writer__fail(w, NULL, "probing stored presences", err);
    }
    if (PQpipelineSync(w->conn) != 1 && rc == 0)
        rc = pi_writer__fail(w, NULL, "probing stored presences", err);
    /* Each statement's result then NULL; after them, the sync. A statement
     * after a failed one is aborted; the first error is the one told. */
    while (got < sent && PQstatus(w->conn) == CONNECTION_OK) {
        res = PQgetResult(w->conn);
        if (res == NULL) {
            got++;
            continue;
        }
        if (PQresultStatus(res) == PGRES_TUPLES_OK)
            take_stored(w, dres, res, lo, hi, n_found, n_diff);
        else if (rc == 0)
            rc = pi_writer__fail(w, res, "reading stored presences", err);
        PQclear(res);
    }
    while (PQstatus(w->conn) == CONNECTION_OK &&
           (res = PQgetResult(w->conn)) != NULL) {
        ExecStatusType st = PQresultStatus(res);

        PQclear(res);
        if (st == PGRES_PIPELINE_SYNC)
            break;
    }
    if (PQstatus(w->conn) != CONNECTION_OK) {
        if (rc == 0)
            rc = pi_writer__fail(w, NULL, "reading stored presences", err);
        return rc;
    }
    if (!PQexitPipelineMode(w->conn) && rc == 0)
        rc = pi_writer__fail(w, NULL, "probing stored presences", err);
    return rc;
}

/* Write staged rows [lo, hi) and account for them. The probe fetches the
 * stored rows that share an id with them (binary, by primary key; only ids
 * up to the stored maximum are looked up, so new ids of a time-ordered
 * stream cost one index descent per batch, not one per row; on Citus one
 * array per shard, bounded by w->ids_max: probe_shards); those are
 * compared here, in C: identical → duplicate, nothing written;
 * different → conflict. The others are new: one COPY straight into
 * presences, as fast as a plain COPY and with no staging. Only replace with
 * differing rows goes through the staging table, to UPDATE them. One
 * snapshot per statement: a row another transaction inserted between the
 * probe and the COPY makes the COPY fail on presences_pkey, and the batch is
 * retried (the row is then found). */
int pi_writer__write_rows(pi_writer *w, const pi_batch *batch, size_t lo,
                          size_t hi, pi_err *err)
{
    const pi_decode_result *dres = pi_batch_result(batch);
    int replace = w->opts.on_conflict == PI_ON_CONFLICT_REPLACE;
    PGresult *res;
    size_t n_found = 0, n_diff = 0;
    int rc = 0;

    char slo[24], shi[24];
    const char *range[2] = {slo, shi};

    pi_grow((void **)&w->found, &w->cap_found, w->n_staged + 1, 1);
    memset(w->found, 0, w->n_staged);
    pi_grow((void **)&w->subset, &w->cap_subset, w->n_staged + 1,
            sizeof(*w->subset));
    w->n_subset = 0;
    rc = w->marks ? probe_shards(w, dres, lo, hi, &n_found, &n_diff, err)
                  : probe_one(w, dres, lo, hi, &n_found, &n_diff, err);
    if (rc)
        return rc;
    if (replace && w->n_subset) {
        encode_rows(w, batch, 0, 0, 1, 1);
        rc = pi_writer__send_copy(w, "COPY pi_stage FROM STDIN (FORMAT binary)",
                                  "COPY into pi_stage", err);
        if (rc)
            return rc;
        /* The seq range: in write_split, rows of earlier ranges are still
         * staged. */
        snprintf(slo, sizeof(slo), "%zu", lo);
        snprintf(shi, sizeof(shi), "%zu", hi);
        if (w->marks) {
            res = PQexecParams(w->conn,
                               "SELECT presence_rollup_mark_replaced($1, $2)",
                               2, NULL, range, NULL, NULL, 0);
            if (PQresultStatus(res) != PGRES_TUPLES_OK)
                rc = pi_writer__fail(w, res, "marking the rollup", err);
            PQclear(res);
            if (rc)
                return rc;
        }
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
            rc = pi_writer__fail(w, res, "updating presences", err);
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
        rc = pi_writer__send_copy(
            w,
            "COPY presences (id, connection_id, type, reason,"
            " asset, time, time_offset_minutes, kafka_topic,"
            " kafka_partition, kafka_offset) FROM STDIN"
            " (FORMAT binary)",
            "COPY into presences", err);
        if (rc) {
            if (pi_writer__key_race(w))
                err->code = rc = PI_ERETRY; /* a concurrent insert */
            return rc;
        }
        if (w->marks) {
            /* Ids above it are now stored (or the attempt fails). */
            for (size_t j = 0; j < w->n_subset; j++) {
                int64_t id = dres->presences[w->staged[w->subset[j]]].id;
                if (id > w->ids_max)
                    w->ids_max = id;
            }
            rc = mark_and_enlist(w, err);
        }
        if (rc)
            return rc;
    }
    w->cur.stored += w->n_subset;
    w->cur.duplicates += n_found - n_diff;
    w->cur.conflicts += n_diff;
    return 0;
}
