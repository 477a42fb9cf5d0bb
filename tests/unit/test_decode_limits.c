/* test_decode_limits.c -- the decoder's input limits at, below and above
 * each bound: message bytes, array elements, nesting depth, memory
 *
 * The memory bound's figures are worked out by hand from the costs
 * json_strict.h documents; that those costs bound what json-c really
 * allocates is checked with a counting allocator (tests/support/
 * alloc_count, linked into this program only; under AddressSanitizer it
 * counts nothing and those checks are skipped).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <json-c/json_object.h>
#include <json-c/json_tokener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_count.h"
#include "decode/json_strict.h"
#include "presence/decode.h"
#include "presence/mem.h"

/* 237 bytes. */
#define SAMPLE                                                                 \
    "{\"id\":461799503595297635,\"id_str\":\"461799503595297635\","            \
    "\"connection_id\":461799503595298293,"                                    \
    "\"connection_id_str\":\"461799503595298293\",\"type\":\"disconnect\","    \
    "\"reason\":\"socket_closed\",\"asset\":\"357322041802978\","              \
    "\"time\":\"2013-06-28T09:46:21+02:00\"}"
#define ENV(payload)                                                           \
    "{\"meta\":{\"account\":\"municio\",\"event\":\"presence\"},"              \
    "\"payload\":" payload "}"

typedef struct fix {
    pi_decoder *dec;
    pi_decode_result res;
    pi_arena arena;
} fix;

static void fix_init(fix *f, size_t max_bytes)
{
    pi_decoder_new(&f->dec, max_bytes);
    pi_decode_result_init(&f->res);
    pi_arena_init(&f->arena);
}

static void fix_fini(fix *f)
{
    pi_decode_result_fini(&f->res);
    pi_arena_fini(&f->arena);
    pi_decoder_destroy(f->dec);
}

/* Decode from a clean result; returns the element count. */
static size_t dec(fix *f, const char *buf, size_t len)
{
    pi_decode_result_reset(&f->res);
    pi_arena_reset(&f->arena);
    return pi_decoder_decode(f->dec, buf, len, 1, &f->res, &f->arena);
}

static void assert_stored(fix *f, const char *buf, size_t n)
{
    assert_int_equal(dec(f, buf, strlen(buf)), n);
    assert_int_equal(f->res.n_presences, n);
    assert_int_equal(f->res.n_rejects, 0);
}

static void assert_too_large(fix *f, const char *buf, size_t len,
                             const char *detail)
{
    assert_int_equal(dec(f, buf, len), 1);
    assert_int_equal(f->res.n_presences, 0);
    assert_int_equal(f->res.n_rejects, 1);
    assert_int_equal(f->res.rejects[0].code, PI_REJ_TOO_LARGE);
    assert_int_equal(f->res.rejects[0].element, 0);
    assert_string_equal(f->res.rejects[0].detail.ptr, detail);
}

/* n copies of item, comma-separated, between open and close. */
static char *repeat(const char *open, const char *item, size_t n,
                    const char *close, size_t *len)
{
    size_t il = strlen(item), ol = strlen(open), cl = strlen(close);
    char *buf = pi_malloc(ol + n * (il + 1) + cl + 1), *p = buf;

    memcpy(p, open, ol);
    p += ol;
    for (size_t i = 0; i < n; i++) {
        if (i)
            *p++ = ',';
        memcpy(p, item, il);
        p += il;
    }
    memcpy(p, close, cl + 1);
    *len = (size_t)(p - buf) + cl;
    return buf;
}

static void test_decode_limits__message_bytes(void **state)
{
    fix f;

    (void)state;
    fix_init(&f, 237); /* at: SAMPLE is 237 bytes */
    assert_stored(&f, SAMPLE, 1);
    fix_fini(&f);
    fix_init(&f, 238); /* below */
    assert_stored(&f, SAMPLE, 1);
    fix_fini(&f);
    fix_init(&f, 236); /* above */
    assert_too_large(&f, SAMPLE, 237,
                     "message value of 237 bytes exceeds the maximum of 236");
    assert_int_equal(dec(&f, "{}", 2), 1); /* the next one is decoded */
    assert_int_equal(f.res.rejects[0].code, PI_REJ_MISSING_FIELD);
    fix_fini(&f);
}

static void test_decode_limits__array_elements(void **state)
{
    fix f;

    (void)state;
    fix_init(&f, 0);
    pi_decoder_set_max_elements(f.dec, 3);
    assert_stored(&f, "[" SAMPLE "," SAMPLE "]", 2);            /* below */
    assert_stored(&f, "[" SAMPLE "," SAMPLE "," SAMPLE "]", 3); /* at */
    const char *four =
        "[" SAMPLE "," SAMPLE "," SAMPLE "," SAMPLE "]"; /* above */
    assert_too_large(&f, four, strlen(four),
                     "array of 4 elements exceeds the maximum of 3");
    assert_stored(&f, SAMPLE, 1);
    fix_fini(&f);
}

/* The top-level value is at depth 1, its members at 2: a presence needs 2;
 * an array (1) of envelopes (2) whose meta and payload (3) hold members
 * (4) needs 4. json-c stops at the first value too deep: in [ENV(…)] that
 * is "municio", at byte 20; in SAMPLE the id's value, at byte 6. */
static void test_decode_limits__depth(void **state)
{
    const char *arr = "[" ENV(SAMPLE) "]";
    fix f;

    (void)state;
    fix_init(&f, 0);
    pi_decoder_set_max_depth(f.dec, 5); /* below */
    assert_stored(&f, arr, 1);
    pi_decoder_set_max_depth(f.dec, 4); /* at */
    assert_stored(&f, arr, 1);
    pi_decoder_set_max_depth(f.dec, 3); /* above */
    assert_too_large(&f, arr, strlen(arr),
                     "nesting deeper than the maximum of 3 levels at byte 20");
    assert_stored(&f, SAMPLE, 1); /* the tokener comes back clean */
    pi_decoder_set_max_depth(f.dec, 2);
    assert_stored(&f, SAMPLE, 1);
    pi_decoder_set_max_depth(f.dec, 1);
    assert_too_large(&f, SAMPLE, strlen(SAMPLE),
                     "nesting deeper than the maximum of 1 levels at byte 6");
    fix_fini(&f);
}

/* The option's ceiling, 1 000: 1 000 nested arrays are parsed (and freed:
 * json_object_put recurses once per level), 1 001 are refused at the
 * 1 001st bracket. */
static void test_decode_limits__depth_ceiling(void **state)
{
    size_t n = 1001;
    char *buf = pi_malloc(2 * n);
    fix f;

    (void)state;
    fix_init(&f, 0);
    pi_decoder_set_max_depth(f.dec, 5000); /* clamped to 1 000 */
    memset(buf, '[', n);
    memset(buf + n, ']', n);
    assert_too_large(&f, buf, 2 * n,
                     "nesting deeper than the maximum of 1000 levels at byte "
                     "1000");
    /* 1 000 levels: the outer array's one element is an array. */
    assert_int_equal(dec(&f, buf + 1, 2 * n - 2), 1);
    assert_int_equal(f.res.rejects[0].code, PI_REJ_NOT_AN_OBJECT);
    pi_decoder_set_max_depth(f.dec, 0); /* the default, 32 */
    assert_too_large(&f, buf, 2 * n,
                     "nesting deeper than the maximum of 32 levels at byte 32");
    free(buf);
    fix_fini(&f);
}

/* No limit stops the scan: it walks and counts every value. */
static const pi_json_limits all = {SIZE_MAX, 0, SIZE_MAX};

/* 100 000 nested arrays (200 000 bytes, long enough to be walked): json-c
 * stops at the 33rd, so the memory bound counts 32 levels only and the
 * reject is the nesting, not the memory json-c would have needed for all
 * of them: 32 arrays, each an element of the one around it but the first,
 * 32 × 160 + 31 × 24 = 5 864; buffer 16; 32 levels × 304 = 9 728; 512:
 * 16 120. */
static void test_decode_limits__depth_before_memory(void **state)
{
    size_t n = 100000;
    char *buf = pi_malloc(2 * n);
    pi_json_limits lim = {SIZE_MAX, 0, 32};
    pi_json_scan s;
    fix f;

    (void)state;
    memset(buf, '[', n);
    memset(buf + n, ']', n);
    pi_json_scan_init(&s);
    pi_json_scan_run(&s, buf, 2 * n, &lim);
    assert_int_equal(s.memory, 16120);
    pi_json_scan_fini(&s);
    fix_init(&f, 0);
    assert_too_large(&f, buf, 2 * n,
                     "nesting deeper than the maximum of 32 levels at byte 32");
    free(buf);
    fix_fini(&f);
}

static size_t scan_memory(const char *json)
{
    pi_json_scan s;
    size_t mem;

    pi_json_scan_init(&s);
    pi_json_scan_run(&s, json, strlen(json), &all);
    mem = s.memory;
    pi_json_scan_fini(&s);
    return mem;
}

/* The bound by hand, from json_strict.h's costs; every value also pays
 * the parse's 512 and (32 + 272) per level of nesting.
 *   [[{},{},{}]]: three objects in an array 3 × (800 + 24); the outer array
 *     160, the inner one 160 + 24 (an element of the outer); no bytes, no
 *     names; the tokener's buffer 2 × (0 + 8); three levels × 304; 512:
 *     4256.
 *   {"a":"xy","b":1}: the object 800; two names 2 × 32; "xy" 80 (a member,
 *     no slot); 1 96; bytes 3 + 4 + 3 + 1 (quotes included); buffer
 *     2 × (4 + 8); names' bytes 3 + 3; one level 304; 512: 1897.
 *   12 members "a":1 … "l":1: 800 + 12 × 32 + 12 × 96; bytes 12 × (3 + 1);
 *     buffer 2 × (3 + 8); names 12 × 3; 304; 512; the table doubles to 32
 *     entries at the 12th member (11 ≥ 16 × 0.66): 40 × (32 + 16 - 16):
 *     4538. */
static void test_decode_limits__memory_bound_by_hand(void **state)
{
    (void)state;
    assert_int_equal(scan_memory("[[{},{},{}]]"), 4256);
    assert_int_equal(scan_memory("{\"a\":\"xy\",\"b\":1}"), 1897);
    assert_int_equal(scan_memory("{\"a\":1,\"b\":1,\"c\":1,\"d\":1,\"e\":1,"
                                 "\"f\":1,\"g\":1,\"h\":1,\"i\":1,\"j\":1,"
                                 "\"k\":1,\"l\":1}"),
                     4538);
    /* Found by fuzz_decode: unclosed objects cost more per byte than any
     * closed value. '[' 160; 14 '{' 800 each, the first an element (24);
     * 15 levels × 304; buffer 16; 512: 16 472, within PER_BYTE. */
    assert_int_equal(scan_memory("[{{{{{{{{{{{{{{"), 16472);
    assert_true(16472 <= PI_JSON_MEM_PER_BYTE * 15 + PI_JSON_MEM_FIXED);
    /* One member fewer: no doubling, 4538 - 1280 - 32 - 96 - 4 - 3 =
     * 3123. */
    assert_int_equal(scan_memory("{\"a\":1,\"b\":1,\"c\":1,\"d\":1,\"e\":1,"
                                 "\"f\":1,\"g\":1,\"h\":1,\"i\":1,\"j\":1,"
                                 "\"k\":1}"),
                     3123);
}

static void test_decode_limits__memory_at_bound(void **state)
{
    const char *v = "[[{},{},{}]]"; /* 4256, above */
    fix f;

    (void)state;
    fix_init(&f, 0);
    pi_decoder_set_max_memory(f.dec, 4257); /* below the bound */
    assert_int_equal(dec(&f, v, strlen(v)), 1);
    assert_int_equal(f.res.rejects[0].code, PI_REJ_NOT_AN_OBJECT);
    pi_decoder_set_max_memory(f.dec, 4256); /* at */
    assert_int_equal(dec(&f, v, strlen(v)), 1);
    assert_int_equal(f.res.rejects[0].code, PI_REJ_NOT_AN_OBJECT);
    pi_decoder_set_max_memory(f.dec, 4255); /* above */
    assert_too_large(&f, v, strlen(v),
                     "decoding would take up to 4256 bytes of memory, more "
                     "than the maximum of 4255");
    fix_fini(&f);
}

/* 0 is 32 × max_bytes: 32 768 for 1 024. [[{},…]] of n objects costs
 * 824 n + 160 + 184 + 16 + 3 × 304 + 512 = 824 n + 1784: 37 fit (32 272),
 * 38 do not (33 096); both are far below 1 024 bytes (3 n + 3). */
static void test_decode_limits__memory_default(void **state)
{
    size_t len;
    char *fits = repeat("[[", "{}", 37, "]]", &len);
    fix f;

    (void)state;
    fix_init(&f, 1024);
    assert_int_equal(dec(&f, fits, len), 1);
    assert_int_equal(f.res.rejects[0].code, PI_REJ_NOT_AN_OBJECT);
    free(fits);
    char *over = repeat("[[", "{}", 38, "]]", &len);
    assert_too_large(&f, over, len,
                     "decoding would take up to 33096 bytes of memory, more "
                     "than the maximum of 32768");
    free(over);
    fix_fini(&f);
}

typedef struct shape {
    const char *open, *item, *close;
} shape;

/* The worst shapes per byte, and real ones. */
static const shape shapes[] = {
    {"[[", "{}", "]]"},
    {"[[", "[]", "]]"},
    {"[[", "\"\"", "]]"},
    {"[[", "\"abcdefghijklmnopqrstuvwxyz\"", "]]"},
    {"[[", "1", "]]"},
    {"[[", "-1.5e300", "]]"},
    {"[[", "true", "]]"},
    {"[[", "null", "]]"},
    {"[[", "{\"a\":{}}", "]]"},
    {"[[",
     "{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8,"
     "\"i\":9,\"j\":10,\"k\":11,\"l\":12,\"m\":13}",
     "]]"},
    {"[[", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
     "]]"},
    {"[", SAMPLE, "]"},
    {"[", ENV(SAMPLE), "]"},
    {"[{\"a\":[", "{\"b\":[\"x\",{\"c\":{\"d\":[1,2,{}]}}]}", "]}]"},
};

/* The bound is never below what json-c takes at its peak (a counting
 * allocator), nor far above it for long values (at most twice: else it
 * would refuse real messages it need not), nor above PER_BYTE per byte. */
static void test_decode_limits__memory_bound_covers_peak(void **state)
{
    struct json_tokener *tok = json_tokener_new_ex(PI_DECODE_MAX_DEPTH_LIMIT);
    pi_json_scan s;

    (void)state;
    if (!pi_alloc_count_available()) {
        json_tokener_free(tok);
        skip();
    }
    pi_json_scan_init(&s);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        for (size_t n = 1; n <= 8000; n *= 20) {
            size_t len;
            char *buf = repeat(shapes[i].open, shapes[i].item, n,
                               shapes[i].close, &len);
            pi_json_scan_run(&s, buf, len, &all);
            json_tokener_reset(tok);
            pi_alloc_count_mark();
            struct json_object *root =
                json_tokener_parse_ex(tok, buf, (int)len);
            size_t peak = pi_alloc_count_peak();
            /* Tight where it matters: long values (short ones pay fixed
             * costs), null aside (json-c allocates nothing for it). */
            int loose = n < 8000 || strcmp(shapes[i].item, "null") == 0;
            if (root == NULL || s.memory < peak ||
                (!loose && s.memory > 2 * peak) ||
                s.memory > PI_JSON_MEM_PER_BYTE * len + PI_JSON_MEM_FIXED)
                fail_msg("shape %zu × %zu (%zu bytes): peak %zu, bound %zu", i,
                         n, len, peak, s.memory);
            json_object_put(root);
            free(buf);
        }
    }
    pi_json_scan_fini(&s);
    json_tokener_free(tok);
}

/* A 1 MiB message json-c would need 278 MB for: one too_large, and the
 * decoder allocates (next to) nothing for it; the next message is stored. */
static void test_decode_limits__memory_reject_allocates_nothing(void **state)
{
    size_t n = (1024 * 1024 - 4) / 3, len;
    char *buf = repeat("[[", "{}", n, "]]", &len);
    fix f;

    (void)state;
    fix_init(&f, 0);
    assert_stored(&f, SAMPLE, 1); /* the arena and result are warm */
    pi_decode_result_reset(&f.res);
    pi_arena_reset(&f.arena);
    pi_alloc_count_mark();
    assert_int_equal(pi_decoder_decode(f.dec, buf, len, 1, &f.res, &f.arena),
                     1);
    size_t peak = pi_alloc_count_peak();
    assert_int_equal(f.res.rejects[0].code, PI_REJ_TOO_LARGE);
    assert_non_null(strstr(f.res.rejects[0].detail.ptr,
                           "more than the maximum of 33554432"));
    if (pi_alloc_count_available())
        assert_true(peak < 1024);
    assert_stored(&f, SAMPLE, 1);
    free(buf);
    fix_fini(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_limits__message_bytes),
        cmocka_unit_test(test_decode_limits__array_elements),
        cmocka_unit_test(test_decode_limits__depth),
        cmocka_unit_test(test_decode_limits__depth_ceiling),
        cmocka_unit_test(test_decode_limits__depth_before_memory),
        cmocka_unit_test(test_decode_limits__memory_bound_by_hand),
        cmocka_unit_test(test_decode_limits__memory_at_bound),
        cmocka_unit_test(test_decode_limits__memory_default),
        cmocka_unit_test(test_decode_limits__memory_bound_covers_peak),
        cmocka_unit_test(test_decode_limits__memory_reject_allocates_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
