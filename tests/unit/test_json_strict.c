/* test_json_strict.c -- the RFC 8259 scan, and the decoder's element limit */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "decode/json_strict.h"
#include "presence/decode.h"
#include "presence/mem.h"

static void scan(pi_json_scan *s, const char *json)
{
    pi_json_limits lim = {SIZE_MAX, 0, SIZE_MAX};
    pi_json_scan_run(s, json, strlen(json), &lim);
}

static void test_json_strict__counts_top_level_elements(void **state)
{
    pi_json_scan s;

    (void)state;
    pi_json_scan_init(&s);
    scan(&s, "[]");
    assert_int_equal(s.elements, 0);
    scan(&s, " [ ] ");
    assert_int_equal(s.elements, 0);
    scan(&s, "[1]");
    assert_int_equal(s.elements, 1);
    scan(&s, "[1,2,3]");
    assert_int_equal(s.elements, 3);
    /* Commas inside strings, nested arrays and objects are not elements. */
    scan(&s, "[\"a,b\",[1,2],{\"x\":1,\"y\":[3,4]}]");
    assert_int_equal(s.elements, 3);
    scan(&s, "[\"\\\",\"]"); /* an escaped quote does not end the string */
    assert_int_equal(s.elements, 1);
    scan(&s, "{\"a\":[1,2,3]}");
    assert_int_equal(s.elements, 1);
    assert_int_equal(s.syntax_at, SIZE_MAX);
    assert_int_equal(s.n_flaws, 0);
    pi_json_scan_fini(&s);
}

static void test_json_strict__syntax_flaws_outside_strings(void **state)
{
    pi_json_scan s;

    (void)state;
    pi_json_scan_init(&s);
    scan(&s, "{'a':1}");
    assert_int_equal(s.syntax_at, 1);
    assert_string_equal(s.syntax_what, "single quote outside a string");
    scan(&s, "[1, NaN]");
    assert_int_equal(s.syntax_at, 4);
    scan(&s, "[-Infinity]");
    assert_int_equal(s.syntax_at, 2);
    scan(&s, "[1.]");
    assert_int_equal(s.syntax_at, 2);
    assert_string_equal(s.syntax_what,
                        "digit expected after the decimal point");
    /* The same characters inside strings are data. */
    scan(&s, "[\"It's NaN. Infinity.\", 1.5, 2e3]");
    assert_int_equal(s.syntax_at, SIZE_MAX);
    assert_int_equal(s.n_flaws, 0);
    pi_json_scan_fini(&s);
}

static void test_json_strict__string_flaws_by_element(void **state)
{
    pi_json_scan s;

    (void)state;
    pi_json_scan_init(&s);
    /* element 0 fine (a valid pair), 1 lone high, 2 two flaws (one kept),
     * 3 a raw tab, 4 a lone low inside a nested member name. */
    scan(&s, "[\"\\ud83d\\ude00\",\"x\\ud800\",\"\\udc00\\u0001\x02\","
             "\"a\tb\",{\"\\udfff\":1}]");
    assert_int_equal(s.elements, 5);
    assert_int_equal(s.n_flaws, 4);
    assert_int_equal(s.flaws[0].element, 1);
    assert_string_equal(s.flaws[0].what, "lone surrogate");
    assert_int_equal(s.flaws[0].code, 0xd800);
    assert_int_equal(s.flaws[0].at, 18);
    assert_int_equal(s.flaws[1].element, 2);
    assert_int_equal(s.flaws[1].code, 0xdc00);
    assert_int_equal(s.flaws[2].element, 3);
    assert_string_equal(s.flaws[2].what, "raw control character");
    assert_int_equal(s.flaws[2].code, '\t');
    assert_int_equal(s.flaws[3].element, 4);
    assert_int_equal(s.flaws[3].code, 0xdfff);
    /* Every surrogate pair form that is valid. */
    scan(&s, "{\"a\":\"\\uD83D\\uDE00\\udbff\\udfff\"}");
    assert_int_equal(s.n_flaws, 0);
    /* A high surrogate at the very end of a string. */
    scan(&s, "{\"a\":\"x\\ud800\"}");
    assert_int_equal(s.n_flaws, 1);
    assert_int_equal(s.flaws[0].element, 0);
    assert_int_equal(s.flaws[0].at, 7);
    pi_json_scan_fini(&s);
}

static void test_json_strict__truncated_input_is_harmless(void **state)
{
    static const char *const inputs[] = {
        "\"", "\"\\", "\"\\u", "\"\\ud8", "[\"\\ud800", "[1,", "{", "]]]]"};
    pi_json_scan s;

    (void)state;
    pi_json_scan_init(&s);
    for (size_t i = 0; i < sizeof(inputs) / sizeof(*inputs); i++)
        scan(&s, inputs[i]); /* ASan checks the reads */
    pi_json_scan_fini(&s);
}

/* The decoder refuses an array of too many elements whole, before parsing,
 * and accepts one at the limit. */
static void test_json_strict__decoder_element_limit(void **state)
{
    pi_decoder *dec;
    pi_decode_result res;
    pi_arena arena;

    (void)state;
    pi_decoder_new(&dec, 0);
    pi_decoder_set_max_elements(dec, 3);
    pi_decode_result_init(&res);
    pi_arena_init(&arena);
    assert_int_equal(pi_decoder_decode(dec, "[1,1,1,1]", 9, 5, &res, &arena),
                     1);
    assert_int_equal(res.n_rejects, 1);
    assert_int_equal(res.rejects[0].code, PI_REJ_TOO_LARGE);
    assert_int_equal(res.rejects[0].element, 0);
    assert_string_equal(res.rejects[0].detail.ptr,
                        "array of 4 elements exceeds the maximum of 3");
    pi_decode_result_reset(&res);
    assert_int_equal(pi_decoder_decode(dec, "[1,1,1]", 7, 5, &res, &arena), 3);
    assert_int_equal(res.n_rejects, 3);
    assert_int_equal(res.rejects[2].code, PI_REJ_NOT_AN_OBJECT);
    pi_decode_result_reset(&res);
    /* 0 restores the default, 10 000. */
    pi_decoder_set_max_elements(dec, 0);
    size_t n = 10001, len = 2 * n + 1;
    char *buf = pi_malloc(len);
    buf[0] = '[';
    for (size_t i = 0; i < n; i++) {
        buf[1 + 2 * i] = '1';
        buf[2 + 2 * i] = i + 1 < n ? ',' : ']';
    }
    assert_int_equal(pi_decoder_decode(dec, buf, len, 5, &res, &arena), 1);
    assert_int_equal(res.rejects[0].code, PI_REJ_TOO_LARGE);
    assert_string_equal(res.rejects[0].detail.ptr,
                        "array of 10001 elements exceeds the maximum of 10000");
    pi_decode_result_reset(&res);
    buf[len - 3] = ']'; /* 10 000 elements */
    assert_int_equal(pi_decoder_decode(dec, buf, len - 2, 5, &res, &arena),
                     10000);
    free(buf);
    pi_decode_result_fini(&res);
    pi_arena_fini(&arena);
    pi_decoder_destroy(dec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_strict__counts_top_level_elements),
        cmocka_unit_test(test_json_strict__syntax_flaws_outside_strings),
        cmocka_unit_test(test_json_strict__string_flaws_by_element),
        cmocka_unit_test(test_json_strict__truncated_input_is_harmless),
        cmocka_unit_test(test_json_strict__decoder_element_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
