/* fuzz_decode.c -- libFuzzer target: the decoder and the RFC 3339 parser */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode/json_strict.h"
#include "presence/decode.h"
#include "presence/times.h"

/* Small enough that too_large is reached, large enough for real arrays;
 * the memory bound too (real presences need ~14 bytes per byte). */
#define FUZZ_MAX_BYTES (64 * 1024)
#define FUZZ_MAX_MEMORY (256 * 1024)
#define FUZZ_MAX_DEPTH 16

/* 0000-01-01T00:00:00+23:59 and 9999-12-31T23:59:60.999999-23:59 */
#define TIME_MIN (-62167305540000000)
#define TIME_MAX 253402387140999999

/* One decoder for the whole run, as a consumer thread keeps one: the
 * tokener must come back clean after any input. Still reachable at exit,
 * so the leak checker does not count it. */
static pi_decoder *dec;
static pi_decode_result res;
static pi_arena arena;
static pi_json_scan scan;

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_decode: invariant broken: %s\n", what);
    abort();
}

static int utf8_ok(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;

    for (size_t i = 0; i < len;) {
        unsigned c = p[i], n, cp;
        if (c == 0)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            n = 1, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            n = 2, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            n = 3, cp = c & 0x07;
        else
            return 0;
        if (len - i <= n)
            return 0;
        for (unsigned k = 1; k <= n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        /* A second, differently written check: overlongs, surrogates. */
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += n + 1;
    }
    return 1;
}

static void check_presence(const pi_presence *p, size_t n)
{
    if (p->id < 1 || p->connection_id < 1)
        fail("id out of range");
    if ((unsigned)p->type > PI_TYPE_DECLARE_ASSET)
        fail("type");
    if (p->reason.ptr == NULL || p->reason.len > 1024 ||
        !utf8_ok(p->reason.ptr, p->reason.len) ||
        p->reason.ptr[p->reason.len] != '\0')
        fail("reason");
    if (p->asset.ptr != NULL && (p->asset.len < 1 || p->asset.len > 64 ||
                                 !utf8_ok(p->asset.ptr, p->asset.len)))
        fail("asset");
    if (p->offset_min < -1439 || p->offset_min > 1439)
        fail("offset");
    if (p->time_us < TIME_MIN || p->time_us > TIME_MAX)
        fail("time");
    if (p->element >= n)
        fail("element index");
}

static void check_reject(const pi_reject *rej, size_t n)
{
    if ((unsigned)rej->code >= PI_REJ__COUNT || rej->code == PI_REJ_ID_CONFLICT)
        fail("reject code");
    if (rej->detail.len == 0 || rej->detail.len > 255 ||
        strlen(rej->detail.ptr) != rej->detail.len)
        fail("detail length");
    for (size_t i = 0; i < rej->detail.len; i++) {
        if (rej->detail.ptr[i] < 0x20 || rej->detail.ptr[i] > 0x7e)
            fail("detail not one line of printable ASCII");
    }
    if (rej->element >= n)
        fail("reject element index");
}

/* The parser alone: whatever it accepts is in range. */
static void check_time(const uint8_t *data, size_t size)
{
    int64_t us = 42;
    int16_t off = 42;

    if (pi_rfc3339_parse((const char *)data, size, &us, &off) == 0) {
        if (off < -1439 || off > 1439 || us < TIME_MIN || us > TIME_MAX)
            fail("rfc3339 result out of range");
    } else if (us != 42 || off != 42) {
        fail("rfc3339 wrote outputs on failure");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (dec == NULL) {
        pi_decoder_new(&dec, FUZZ_MAX_BYTES);
        pi_decoder_set_max_memory(dec, FUZZ_MAX_MEMORY);
        pi_decoder_set_max_depth(dec, FUZZ_MAX_DEPTH);
        pi_decode_result_init(&res);
        pi_arena_init(&arena);
        pi_json_scan_init(&scan);
    }
    pi_decode_result_reset(&res);
    pi_arena_reset(&arena);

    /* A heap copy of exactly size bytes: ASan sees any read past the end,
     * the decoder being promised no NUL terminator. */
    char *buf = malloc(size ? size : 1);
    if (size)
        memcpy(buf, data, size);
    size_t n = pi_decoder_decode(dec, buf, size, 3, &res, &arena);
    /* The memory bound, computed whatever the value: never more than
     * PER_BYTE per byte (the decoder skips the walk on that promise). */
    pi_json_limits all = {SIZE_MAX, 0, SIZE_MAX};
    pi_json_scan_run(&scan, buf, size, &all);
    if (scan.memory > PI_JSON_MEM_PER_BYTE * size + PI_JSON_MEM_FIXED)
        fail("memory bound above PER_BYTE per byte");
    free(buf);

    if (n != res.n_presences + res.n_rejects + res.skipped)
        fail("elements != presences + rejects + skipped");
    /* Every element ends as exactly one outcome. */
    unsigned char *seen = calloc(n ? n : 1, 1);
    for (size_t i = 0; i < res.n_presences; i++) {
        check_presence(&res.presences[i], n);
        if (seen[res.presences[i].element]++)
            fail("element decoded twice");
    }
    for (size_t i = 0; i < res.n_rejects; i++) {
        check_reject(&res.rejects[i], n);
        if (seen[res.rejects[i].element]++)
            fail("element decoded twice");
    }
    free(seen);
    if (res.ids_repaired + res.ids_single > 2 * res.n_presences)
        fail("id counters");
    check_time(data, size);
    return 0;
}
