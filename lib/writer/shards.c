/* shards.c -- on Citus, which shard of presences holds an id (the probe's
 * per-shard arrays) */
#include <libpq-fe.h>
#include <stdint.h>
#include <stdlib.h>

#include "presence/mem.h"
#include "writer_int.h"

/* PostgreSQL's hashint8() (hashfunc.c: the int8 folded to 32 bits, then
 * hash_uint32, lookup3's final mix): the hash Citus places a bigint
 * distribution value by. */
static uint32_t rot32(uint32_t x, int k)
{
    return (x << k) | (x >> (32 - k));
}

static int32_t hash_int8(int64_t v)
{
    uint32_t lo = (uint32_t)(uint64_t)v, hi = (uint32_t)((uint64_t)v >> 32);
    uint32_t a, b, c;

    lo ^= v >= 0 ? hi : ~hi;
    a = b = c = 0x9e3779b9u + 4u + 3923095u;
    a += lo;
    c ^= b;
    c -= rot32(b, 14);
    a ^= c;
    a -= rot32(c, 11);
    b ^= a;
    b -= rot32(a, 25);
    c ^= b;
    c -= rot32(b, 16);
    a ^= c;
    a -= rot32(c, 4);
    b ^= a;
    b -= rot32(a, 14);
    c ^= b;
    c -= rot32(b, 24);
    return (int32_t)c;
}

/* The shards' lower hash bounds, from the coordinator's metadata, once per
 * writer. Only the probe's grouping depends on it: a stale map (shards
 * split since) makes a group span shards, which Citus then reads all of;
 * the answer is the same. Not Citus: no map, one group. */
int pi_writer__read_shards(pi_writer *w, pi_err *err)
{
    PGresult *res;
    int rc = 0;

    w->n_shards = 0;
    res = PQexec(w->conn,
                 "SELECT to_regclass('pg_catalog.pg_dist_shard') IS NOT NULL");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        rc = pi_writer__fail(w, res, "looking for Citus's metadata", err);
    else if (PQgetvalue(res, 0, 0)[0] != 't')
        rc = -1;
    PQclear(res);
    if (rc)
        return rc < 0 ? 0 : rc;
    res = PQexec(w->conn, "SELECT shardminvalue::int4 FROM pg_dist_shard"
                          " WHERE logicalrelid = 'presences'::regclass"
                          " ORDER BY 1");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = pi_writer__fail(w, res, "reading presences' shards", err);
    } else {
        int n = PQntuples(res);

        pi_grow((void **)&w->shard_min, &w->cap_shards, (size_t)n + 1,
                sizeof(*w->shard_min));
        for (int r = 0; r < n; r++)
            w->shard_min[r] = (int32_t)strtol(PQgetvalue(res, r, 0), NULL, 10);
        w->n_shards = (size_t)n;
    }
    PQclear(res);
    return rc;
}

size_t pi_writer__shard_of(const pi_writer *w, int64_t id)
{
    int32_t h = hash_int8(id);
    size_t lo = 0, hi = w->n_shards;

    /* The last shard whose lower bound is <= h. */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (w->shard_min[mid] <= h)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}
