/* writer_int.h -- the writer's internals, shared by its files
 *
 * writer.c owns the connection, a transaction's order of statements and the
 * retries; commit.c the COMMIT and the outcome of a lost one;
 * fence.c the ingest_offsets rows; rows.c the batch's rows
 * (one per id, probe and compare, COPY); split.c the bisection of a
 * batch PostgreSQL refused; rejects.c the rejects; statement.c sends COPY
 * data and records why the server refused a statement; stats.c adds up
 * the figures; enc.c the encoders (binary COPY, details, JSON); shards.c
 * which shard of presences holds an id (Citus). Calls go one way: writer.c
 * on top, then split.c, rows.c, rejects.c, fence.c, commit.c, then
 * shards.c, and statement.c, stats.c and enc.c below them all. Not a
 * public module.
 */
#ifndef PRESENCE_WRITER_INT_H
#define PRESENCE_WRITER_INT_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "presence/batch.h"
#include "presence/decode.h"
#include "presence/err.h"
#include "presence/mem.h"
#include "presence/writer.h"

/* COPY data is sent in pieces of this size. */
#define COPY_CHUNK (256 * 1024)

/* Microseconds from 1970-01-01 to 2000-01-01, PostgreSQL's timestamp epoch. */
#define PI_PG_EPOCH_US INT64_C(946684800000000)

/* A growable byte buffer, reused from batch to batch (never shrinks). */
typedef struct pi_wbuf {
    char *ptr;
    size_t len, cap;
} pi_wbuf;

void pi_wbuf_need(pi_wbuf *b, size_t n); /* room for n more bytes */
void pi_wbuf_put(pi_wbuf *b, const void *p, size_t n);
/* Big-endian integers, as PostgreSQL's binary formats want them. */
void pi_wbuf_i16(pi_wbuf *b, int16_t v);
void pi_wbuf_i32(pi_wbuf *b, int32_t v);
void pi_wbuf_i64(pi_wbuf *b, int64_t v);
/* Read a big-endian signed integer of 2, 4 or 8 bytes. */
int64_t pi_be_get(const char *p, int bytes);

/* Binary COPY: reset b to the file header; fields are a length word and the
 * value (pi_copy_bytes with p NULL: SQL NULL). Tuples start with
 * pi_wbuf_i16(field count) and the data ends with pi_wbuf_i16(-1). */
void pi_copy_header(pi_wbuf *b);
void pi_copy_i16(pi_wbuf *b, int16_t v);
void pi_copy_i32(pi_wbuf *b, int32_t v);
void pi_copy_i64(pi_wbuf *b, int64_t v);
void pi_copy_bytes(pi_wbuf *b, const char *p, size_t n);

/* s as text PostgreSQL accepts: valid UTF-8 without NUL. Returned as is when
 * it already is (the usual case), else a copy in arena with each bad byte
 * replaced by '?'. For strings the decoder did not vouch for: topic names (a
 * `load` path), details. */
pi_str pi_text_clean(pi_arena *arena, const char *s, size_t n);

/* A one-line detail being built; silently cut at its size. */
typedef struct pi_sbuf {
    char data[1024];
    size_t len;
} pi_sbuf;

void pi_sbuf_printf(pi_sbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A quoted value (null for NULL), cut to a readable length. */
void pi_sbuf_value(pi_sbuf *sb, const char *s, size_t n);

/* time as RFC 3339 in its original offset (rfc3339 = 1), or the way
 * PostgreSQL prints a timestamptz in UTC (rfc3339 = 0). */
void pi_fmt_time(char *out, size_t cap, int64_t time_us, int offset_min,
                 int rfc3339);

/* Append pr as a presence object (both id forms, time in its offset): the
 * payload of a reject the writer makes, which re-drives as the element. */
void pi_json_presence(pi_wbuf *b, const pi_presence *pr);

/* ---- the writer's state (writer.c) ------------------------------------ */

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

/* A staged row's id beside its presence index, for sorting. */
typedef struct pi_staged_id {
    int64_t id;
    uint32_t presence;
} pi_staged_id;

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
    uint32_t *staged; /* presence indices, in seq order: by id */
    size_t n_staged, cap_staged;
    pi_staged_id *order; /* for sorting staged */
    size_t cap_order;
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
    pi_write_stats cur; /* figures of the attempt in progress */
    bool fence_blocked; /* the last fence timed out waiting for its rows */
    /* presences has no rollup trigger (Citus): the writer records the
     * rollup's marks of the rows it inserts or replaces, and bounds its
     * probe by ids_max instead of asking max(id) of every shard. */
    bool marks;
    /* Citus: no stored id is above ids_max as far as this writer knows
     * (max(id) read once, then raised by the ids it writes); ids above it
     * are not probed. Cleared by a failed attempt: a concurrent writer's
     * id there makes the COPY fail on the primary key, and the retry reads
     * max(id) again. */
    int64_t ids_max;
    bool ids_max_known;
    /* Citus (shards.c): the shards' lower hash bounds, ascending, and the
     * probe's per-shard arrays in out: offset and length of each. */
    int32_t *shard_min;
    size_t n_shards, cap_shards;
    uint32_t *shard_of; /* per staged row */
    size_t cap_shard_of;
    size_t *group_off, *group_len;
    size_t cap_groups;
    uint64_t reconnects; /* connections made, the first one included */
    /* A COMMIT whose outcome was lost with the connection: its xid and the
     * figures it would have. */
    char lost_xid[32];
    const pi_batch *lost_batch; /* the batch lost_xid was committing, */
    uint64_t lost_version;      /* as it was then */
    /* ranges.c: presences' partitions (non-DEFAULT), [lo, hi) sorted, read
     * at ranges_ms (0: never); a creation failed at ranges_failed_ms. */
    struct pi_id_range {
        int64_t lo, hi;
    } * ranges;
    size_t n_ranges, cap_ranges;
    int64_t ranges_ms, ranges_failed_ms;
    int64_t *uncovered; /* times (µs) of the batch's ids not covered */
    size_t cap_uncovered;
    pi_write_stats lost;
};

/* statement.c: record why a statement failed (for the refusal of a row) and
 * classify it (db.h). */
int pi_writer__fail(pi_writer *w, PGresult *res, const char *what, pi_err *err);
/* statement.c: send w->out as the COPY data of sql. */
int pi_writer__send_copy(pi_writer *w, const char *sql, const char *what,
                         pi_err *err);

/* fence.c: lock the batch's ingest_offsets rows, mark fenced
 * messages, check the compare-and-set (PI_EBEHIND); move them forward. */
int pi_writer__fence(pi_writer *w, const pi_batch *batch, pi_err *err);
/* After the fence timed out waiting for its rows: end the sessions of
 * this service (same application_name and database) that have been inside
 * a transaction for longer than the transaction timeout while waiting for
 * their own client (wait_event ClientRead): a frozen or vanished instance.
 * PostgreSQL's timeouts cannot end those while a COPY waits for data. */
void pi_writer__reap_stuck(pi_writer *w);
int pi_writer__write_offsets(pi_writer *w, const pi_batch *batch, pi_err *err);

/* commit.c: read the transaction id, then COMMIT; a reply lost
 * with the connection leaves lost_xid set, with the figures in w->lost. */
int pi_writer__commit(pi_writer *w, pi_err *err);
/* A lost COMMIT's outcome belongs to its batch: forget it when batch is
 * another one (or was changed since). */
void pi_writer__forget_lost(pi_writer *w, const pi_batch *batch);
/* Ask pg_xact_status() about lost_xid (set): 1 it committed (its figures,
 * with attempt retries and reconnects, added to stats), 0 it did not (write
 * the batch again), else the error of asking. */
int pi_writer__resolve_lost(pi_writer *w, unsigned attempt, uint64_t reconnects,
                            pi_write_stats *stats, pi_err *err);

/* shards.c: read the shard map of presences (Citus); which shard of it
 * (an index in the map; 0 without one) holds id. */
int pi_writer__read_shards(pi_writer *w, pi_err *err);
size_t pi_writer__shard_of(const pi_writer *w, int64_t id);

/* rows.c: whether the failed COPY into presences hit a primary key
 * (of presences or of one of its partitions): another writer got there
 * first. */
bool pi_writer__key_race(const pi_writer *w);
/* rows.c: choose the rows to stage (one per id); write rows [lo, hi)
 * of them (probe, compare, COPY). */
void pi_writer__plan(pi_writer *w, const pi_batch *batch);

/* ranges.c: before a batch's transaction, create the partitions of its
 * rows' ids that no partition covers (rows on the id scheme only; a cached
 * table of the partitions' ranges, read again every minute). Always 0: a
 * failure is logged, and the rows go to DEFAULT. */
int pi_writer__ensure_ranges(pi_writer *w, const pi_batch *batch, pi_err *err);
int pi_writer__write_rows(pi_writer *w, const pi_batch *batch, size_t lo,
                          size_t hi, pi_err *err);

/* split.c: write rows [lo, hi) under savepoints, bisecting a range
 * PostgreSQL refuses until each refused row is alone: a reject. */
int pi_writer__write_split(pi_writer *w, const pi_batch *batch, size_t lo,
                           size_t hi, pi_err *err);

/* rejects.c: add a reject of the writer's own (detail copied into
 * the scratch arena); COPY every reject of the batch (the decoder's and the
 * writer's, fenced messages' left out) into presence_rejects. */
void pi_writer__add_xrej(pi_writer *w, uint32_t presence, pi_reject_code code,
                         const pi_sbuf *sb);
int pi_writer__write_rejects(pi_writer *w, const pi_batch *batch, pi_err *err);

#endif
