/* test_decode.c -- the decoder against CONTRACT §1-2, one table row per rule */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pi_test.h"
#include "presence/decode.h"
#include "presence/times.h"

/* Every decode is stamped with this tag; every output must carry it. */
#define TAG 7u

/* The example of presences-format.txt, field by field, so that a row can
 * replace one field and keep the others. */
#define F_ID "\"id\":461799503595297635,\"id_str\":\"461799503595297635\""
#define F_CID                                                                  \
    "\"connection_id\":461799503595298293,"                                    \
    "\"connection_id_str\":\"461799503595298293\""
#define F_TYPE "\"type\":\"disconnect\""
#define F_REASON "\"reason\":\"socket_closed\""
#define F_ASSET "\"asset\":\"357322041802978\""
#define F_TIME "\"time\":\"2013-06-28T09:46:21+02:00\""
/* Stands in for a field a row leaves out. */
#define F_NONE "\"unrelated\":0"

#define OBJ(a, b, c, d, e, f) "{" a "," b "," c "," d "," e "," f "}"
#define SAMPLE OBJ(F_ID, F_CID, F_TYPE, F_REASON, F_ASSET, F_TIME)
#define WITH_ID(x) OBJ(x, F_CID, F_TYPE, F_REASON, F_ASSET, F_TIME)
#define WITH_CID(x) OBJ(F_ID, x, F_TYPE, F_REASON, F_ASSET, F_TIME)
#define WITH_TYPE(x) OBJ(F_ID, F_CID, x, F_REASON, F_ASSET, F_TIME)
#define WITH_REASON(x) OBJ(F_ID, F_CID, F_TYPE, x, F_ASSET, F_TIME)
#define WITH_ASSET(x) OBJ(F_ID, F_CID, F_TYPE, F_REASON, x, F_TIME)
#define WITH_TIME(x) OBJ(F_ID, F_CID, F_TYPE, F_REASON, F_ASSET, x)
#define ENV(event, payload)                                                    \
    "{\"meta\":{\"account\":\"municio\",\"event\":\"" event "\"},"             \
    "\"payload\":" payload "}"

#define X16 "xxxxxxxxxxxxxxxx"
#define X64 X16 X16 X16 X16
#define X256 X64 X64 X64 X64
#define X1024 X256 X256 X256 X256

#define ID_V 461799503595297635
#define CID_V 461799503595298293
/* 2013-06-28T07:46:21Z */
#define T_SAMPLE 1372405581000000
#define RANGE "(must be 1 to 9223372036854775807)"
#define RFC "expected an RFC 3339 date-time"

/* What a stored presence must hold; reason_len 0 means strlen(reason). */
typedef struct want {
    int64_t id;
    int64_t connection_id;
    pi_presence_type type;
    const char *reason;
    size_t reason_len;
    const char *asset; /* NULL: SQL NULL */
    int64_t time_us;
    int16_t offset_min;
} want;

#define W(id, cid, type, reason, asset, us, off)                               \
    {                                                                          \
        id, cid, type, reason, 0, asset, us, off                               \
    }
#define W_SAMPLE                                                               \
    W(ID_V, CID_V, PI_TYPE_DISCONNECT, "socket_closed", "357322041802978",     \
      T_SAMPLE, 120)
#define W_ID(id)                                                               \
    W(id, CID_V, PI_TYPE_DISCONNECT, "socket_closed", "357322041802978",       \
      T_SAMPLE, 120)
#define W_CID(cid)                                                             \
    W(ID_V, cid, PI_TYPE_DISCONNECT, "socket_closed", "357322041802978",       \
      T_SAMPLE, 120)
#define W_TYPE(t)                                                              \
    W(ID_V, CID_V, t, "socket_closed", "357322041802978", T_SAMPLE, 120)
#define W_REASON(r)                                                            \
    W(ID_V, CID_V, PI_TYPE_DISCONNECT, r, "357322041802978", T_SAMPLE, 120)
#define W_REASON_LEN(r, n)                                                     \
    {                                                                          \
        ID_V, CID_V, PI_TYPE_DISCONNECT, r, n, "357322041802978", T_SAMPLE,    \
            120                                                                \
    }
#define W_ASSET(a)                                                             \
    W(ID_V, CID_V, PI_TYPE_DISCONNECT, "socket_closed", a, T_SAMPLE, 120)
#define W_TIME(us, off)                                                        \
    W(ID_V, CID_V, PI_TYPE_DISCONNECT, "socket_closed", "357322041802978", us, \
      off)

/* One message value and everything it must become. */
typedef struct row {
    const char *name;
    const char *json;
    size_t len;           /* 0: strlen(json) */
    size_t max_bytes;     /* 0: the default */
    const char *outcomes; /* per element: P stored, R rejected, S skipped */
    pi_reject_code code;  /* of the first reject */
    const char *detail;   /* of the first reject, exact */
    want want;            /* every stored presence */
    unsigned repaired;
    unsigned single;
} row;

#define NAME(n) "test_decode__" #n
#define OK(n, j, w)                                                            \
    {                                                                          \
        NAME(n), j, 0, 0, "P", 0, NULL, w, 0, 0                                \
    }
#define OKC(n, j, w, rep, single)                                              \
    {                                                                          \
        NAME(n), j, 0, 0, "P", 0, NULL, w, rep, single                         \
    }
#define REJ(n, j, c, d)                                                        \
    {                                                                          \
        NAME(n), j, 0, 0, "R", c, d, {0}, 0, 0                                 \
    }
#define MULTI(n, j, o, c, d)                                                   \
    {                                                                          \
        NAME(n), j, 0, 0, o, c, d, W_SAMPLE, 0, 0                              \
    }
/* A value with embedded NUL bytes: the length comes from the literal. */
#define REJ_BIN(n, j, c, d)                                                    \
    {                                                                          \
        NAME(n), j, sizeof(j) - 1, 0, "R", c, d, {0}, 0, 0                     \
    }

static const row rows[] = {
    /* Shapes (§1). */
    OK(bare_sample, SAMPLE, W_SAMPLE),
    OK(envelope_presence, ENV("presence", SAMPLE), W_SAMPLE),
    OK(envelope_payload_before_meta,
       "{\"payload\":" SAMPLE ",\"meta\":{\"event\":\"presence\"}}", W_SAMPLE),
    MULTI(envelope_message_skipped, ENV("message", SAMPLE), "S", 0, NULL),
    MULTI(envelope_track_without_payload_skipped,
          "{\"meta\":{\"event\":\"track\"}}", "S", 0, NULL),
    MULTI(envelope_event_case_sensitive_skipped, ENV("Presence", SAMPLE), "S",
          0, NULL),
    MULTI(envelope_non_presence_bad_payload_skipped,
          "{\"meta\":{\"event\":\"poke\"},\"payload\":[1]}", "S", 0, NULL),
    REJ(envelope_meta_not_object,
        "{\"meta\":\"presence\",\"payload\":" SAMPLE "}", PI_REJ_WRONG_TYPE,
        "wrong type for meta: expected object, got string"),
    REJ(envelope_meta_null, "{\"meta\":null,\"payload\":" SAMPLE "}",
        PI_REJ_WRONG_TYPE, "wrong type for meta: expected object, got null"),
    REJ(envelope_event_missing,
        "{\"meta\":{\"account\":\"a\"},\"payload\":" SAMPLE "}",
        PI_REJ_MISSING_FIELD, "missing field meta.event"),
    REJ(envelope_event_not_string,
        "{\"meta\":{\"event\":1},\"payload\":" SAMPLE "}", PI_REJ_WRONG_TYPE,
        "wrong type for meta.event: expected string, got number"),
    REJ(envelope_event_null,
        "{\"meta\":{\"event\":null},\"payload\":" SAMPLE "}", PI_REJ_WRONG_TYPE,
        "wrong type for meta.event: expected string, got null"),
    REJ(envelope_payload_missing, "{\"meta\":{\"event\":\"presence\"}}",
        PI_REJ_MISSING_FIELD, "missing field payload"),
    REJ(envelope_payload_array, ENV("presence", "[" SAMPLE "]"),
        PI_REJ_WRONG_TYPE,
        "wrong type for payload: expected object, got array"),
    REJ(envelope_payload_null, ENV("presence", "null"), PI_REJ_WRONG_TYPE,
        "wrong type for payload: expected object, got null"),
    REJ(envelope_payload_string, ENV("presence", "\"{}\""), PI_REJ_WRONG_TYPE,
        "wrong type for payload: expected object, got string"),
    REJ(envelope_payload_bad_presence, ENV("presence", WITH_TYPE(F_NONE)),
        PI_REJ_MISSING_FIELD, "missing field type"),
    REJ(envelope_nested_in_payload, ENV("presence", ENV("presence", SAMPLE)),
        PI_REJ_MISSING_FIELD, "missing field id (neither id nor id_str given)"),
    MULTI(array_of_two_bare, "[" SAMPLE "," SAMPLE "]", "PP", 0, NULL),
    MULTI(array_of_envelopes,
          "[" ENV("presence", SAMPLE) "," ENV("message", "{}") "," ENV(
              "presence", SAMPLE) "]",
          "PSP", 0, NULL),
    MULTI(array_mixed_bare_and_envelopes,
          "[" SAMPLE "," ENV("track", "{}") "," ENV("presence", SAMPLE) "]",
          "PSP", 0, NULL),
    MULTI(array_empty, "[]", "", 0, NULL),
    MULTI(array_empty_with_whitespace, " [ \n ] ", "", 0, NULL),
    MULTI(array_one_bad_among_good,
          "[" SAMPLE "," WITH_REASON(F_NONE) "," SAMPLE "]", "PRP",
          PI_REJ_MISSING_FIELD, "missing field reason"),
    MULTI(array_bad_envelope_among_good,
          "[" ENV("presence", SAMPLE) "," ENV("presence", "7") "," SAMPLE "]",
          "PRP", PI_REJ_WRONG_TYPE,
          "wrong type for payload: expected object, got number"),
    MULTI(array_nested_array_element, "[" SAMPLE ",[" SAMPLE "]]", "PR",
          PI_REJ_NOT_AN_OBJECT,
          "array element 1: expected an object, got array"),
    MULTI(array_number_element, "[1," SAMPLE "]", "RP", PI_REJ_NOT_AN_OBJECT,
          "array element 0: expected an object, got number"),
    MULTI(array_null_element, "[" SAMPLE ",null]", "PR", PI_REJ_NOT_AN_OBJECT,
          "array element 1: expected an object, got null"),
    MULTI(array_string_and_bool_elements, "[\"x\",true]", "RR",
          PI_REJ_NOT_AN_OBJECT,
          "array element 0: expected an object, got string"),
    MULTI(array_u0000_element_isolated,
          "[" WITH_REASON("\"reason\":\"a\\u0000\"") "," SAMPLE "]", "RP",
          PI_REJ_BAD_ENCODING, "bad encoding in reason: U+0000 at byte 1"),
    MULTI(array_invalid_utf8_element_isolated,
          "[" SAMPLE "," WITH_ASSET("\"asset\":\"35\xff\"") "]", "PR",
          PI_REJ_BAD_ENCODING,
          "bad encoding in asset: invalid UTF-8 at byte 2"),
    MULTI(array_every_element_bad,
          "[" WITH_ID("\"id\":0") "," WITH_TIME("\"time\":\"x\"") "]", "RR",
          PI_REJ_ID_OUT_OF_RANGE, "id out of range: 0 " RANGE),
    REJ(top_level_number, "42", PI_REJ_NOT_AN_OBJECT,
        "expected an object or an array, got number"),
    REJ(top_level_negative_number, "-5", PI_REJ_NOT_AN_OBJECT,
        "expected an object or an array, got number"),
    REJ(top_level_string, "\"x\"", PI_REJ_NOT_AN_OBJECT,
        "expected an object or an array, got string"),
    REJ(top_level_null, "null", PI_REJ_NOT_AN_OBJECT,
        "expected an object or an array, got null"),
    REJ(top_level_true, " true ", PI_REJ_NOT_AN_OBJECT,
        "expected an object or an array, got boolean"),

    /* Whole-message rejects. */
    REJ(empty, "", PI_REJ_EMPTY, "empty message value"),
    {NAME(too_large_small_max),
     SAMPLE,
     0,
     16,
     "R",
     PI_REJ_TOO_LARGE,
     "message value of 237 bytes exceeds the maximum of 16",
     {0},
     0,
     0},
    {NAME(too_large_not_parsed),
     "{{{{ not json",
     0,
     4,
     "R",
     PI_REJ_TOO_LARGE,
     "message value of 13 bytes exceeds the maximum of 4",
     {0},
     0,
     0},
    {NAME(exactly_max_bytes_ok), SAMPLE, 0, 237, "P", 0, NULL, W_SAMPLE, 0, 0},
    REJ(malformed_truncated, "{\"id\":", PI_REJ_MALFORMED_JSON,
        "malformed JSON at byte 6: unexpected end of data"),
    REJ(malformed_truncated_sample, "[" SAMPLE, PI_REJ_MALFORMED_JSON,
        "malformed JSON at byte 238: unexpected end of data"),
    REJ(malformed_trailing_garbage, SAMPLE "x", PI_REJ_MALFORMED_JSON,
        "malformed JSON at byte 237: unexpected character"),
    REJ(malformed_two_values, SAMPLE SAMPLE, PI_REJ_MALFORMED_JSON,
        "malformed JSON at byte 237: unexpected character"),
    REJ(malformed_number_then_garbage, "1 2", PI_REJ_MALFORMED_JSON,
        "malformed JSON at byte 2: unexpected character"),
    REJ_BIN(malformed_trailing_nul_byte, SAMPLE "\0", PI_REJ_MALFORMED_JSON,
            "malformed JSON at byte 237: data after the JSON value"),
    REJ_BIN(malformed_raw_nul_in_string, "{\"reason\":\"a\0b\"}",
            PI_REJ_MALFORMED_JSON,
            "malformed JSON at byte 13: unexpected end of data"),
    REJ(malformed_whitespace_only, " \n\t ", PI_REJ_MALFORMED_JSON,
        "malformed JSON at byte 4: unexpected end of data"),
    /* json-c accepts 'name' as a member name even when strict; a
     * single-quoted value (what Python's repr prints) is refused. */
    REJ(malformed_single_quotes, "{\"id\":'1'}", PI_REJ_MALFORMED_JSON,
        "malformed JSON at byte 6: unexpected character"),
    REJ(malformed_single_quoted_name, "{'id':1}", PI_REJ_MALFORMED_JSON,
        "malformed JSON at byte 1: single quote outside a string"),
    REJ(malformed_comment, "/* c */" SAMPLE, PI_REJ_MALFORMED_JSON,
        "malformed JSON at byte 0: unexpected character"),
    REJ(malformed_trailing_comma, "[" SAMPLE ",]", PI_REJ_MALFORMED_JSON,
        "malformed JSON at byte 239: unexpected character"),
    REJ(malformed_leading_zero, WITH_ID("\"id\":0123"), PI_REJ_MALFORMED_JSON,
        "malformed JSON at byte 10: number expected"),
    REJ(malformed_bad_escape, WITH_REASON("\"reason\":\"\\x\""),
        PI_REJ_MALFORMED_JSON,
        "malformed JSON at byte 162: invalid string sequence"),
    REJ(malformed_byte_order_mark, "\xef\xbb\xbf" SAMPLE, PI_REJ_MALFORMED_JSON,
        "malformed JSON at byte 0: unexpected character"),
    REJ(malformed_capitalised_null, WITH_ASSET("\"asset\":Null"),
        PI_REJ_MALFORMED_JSON, "malformed JSON at byte 185: null expected"),
    /* 40 arrays: the 33rd, at byte 32, would be at depth 33. */
    REJ(too_deep_default,
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
        "]]"
        "]]]]]]]]",
        PI_REJ_TOO_LARGE,
        "nesting deeper than the maximum of 32 levels at byte 32"),

    /* id / id_str (§2). */
    OKC(id_only_number, WITH_ID("\"id\":461799503595297635"), W_SAMPLE, 0, 1),
    OKC(id_only_string, WITH_ID("\"id_str\":\"461799503595297635\""), W_SAMPLE,
        0, 1),
    REJ(id_neither, WITH_ID(F_NONE), PI_REJ_MISSING_FIELD,
        "missing field id (neither id nor id_str given)"),
    OKC(id_js_double_repaired,
        WITH_ID("\"id\":461799503595297660,\"id_str\":\"461799503595297635\""),
        W_SAMPLE, 1, 0),
    OKC(id_str_first_then_number_repaired,
        WITH_ID("\"id_str\":\"461799503595297635\",\"id\":461799503595297664"),
        W_SAMPLE, 1, 0),
    REJ(id_mismatch_other_double,
        WITH_ID("\"id\":461799503595298293,\"id_str\":\"461799503595297635\""),
        PI_REJ_ID_MISMATCH,
        "id 461799503595298293 does not match id_str 461799503595297635"),
    REJ(id_mismatch_small, WITH_ID("\"id\":1,\"id_str\":\"2\""),
        PI_REJ_ID_MISMATCH, "id 1 does not match id_str 2"),
    REJ(id_mismatch_negative, WITH_ID("\"id\":-5,\"id_str\":\"5\""),
        PI_REJ_ID_MISMATCH, "id -5 does not match id_str 5"),
    OK(id_one, WITH_ID("\"id\":1,\"id_str\":\"1\""), W_ID(1)),
    OK(id_2p53,
       WITH_ID("\"id\":9007199254740992,\"id_str\":\"9007199254740992\""),
       W_ID(9007199254740992)),
    OKC(id_2p53_plus_1_repaired,
        WITH_ID("\"id\":9007199254740992,\"id_str\":\"9007199254740993\""),
        W_ID(9007199254740993), 1, 0),
    REJ(id_2p53_plus_2_vs_plus_1_mismatch,
        WITH_ID("\"id\":9007199254740994,\"id_str\":\"9007199254740993\""),
        PI_REJ_ID_MISMATCH,
        "id 9007199254740994 does not match id_str 9007199254740993"),
    OKC(id_2p53_plus_1_number_only, WITH_ID("\"id\":9007199254740993"),
        W_ID(9007199254740993), 0, 1),
    OK(id_int64_max,
       WITH_ID("\"id\":9223372036854775807,\"id_str\":\"9223372036854775807\""),
       W_ID(INT64_MAX)),
    OKC(id_int64_max_js_repaired,
        WITH_ID(
            "\"id\":9223372036854776000,\"id_str\":\"9223372036854775807\""),
        W_ID(INT64_MAX), 1, 0),
    OKC(id_int64_max_number_only, WITH_ID("\"id\":9223372036854775807"),
        W_ID(INT64_MAX), 0, 1),
    REJ(id_str_2p63_out_of_range,
        WITH_ID(
            "\"id\":9223372036854775807,\"id_str\":\"9223372036854775808\""),
        PI_REJ_ID_OUT_OF_RANGE,
        "id_str out of range: 9223372036854775808 " RANGE),
    REJ(id_2p63_number_only, WITH_ID("\"id\":9223372036854775808"),
        PI_REJ_ID_OUT_OF_RANGE, "id out of range: 9223372036854775808 " RANGE),
    REJ(id_uint64_max_number_only, WITH_ID("\"id\":18446744073709551615"),
        PI_REJ_ID_OUT_OF_RANGE,
        "id out of range: >= 18446744073709551615 " RANGE),
    REJ(id_beyond_64_bits_number_only,
        WITH_ID("\"id\":99999999999999999999999"), PI_REJ_ID_OUT_OF_RANGE,
        "id out of range: >= 18446744073709551615 " RANGE),
    REJ(id_zero_number_only, WITH_ID("\"id\":0"), PI_REJ_ID_OUT_OF_RANGE,
        "id out of range: 0 " RANGE),
    REJ(id_negative_zero_number_only, WITH_ID("\"id\":-0"),
        PI_REJ_ID_OUT_OF_RANGE, "id out of range: 0 " RANGE),
    REJ(id_negative_number_only, WITH_ID("\"id\":-1"), PI_REJ_ID_OUT_OF_RANGE,
        "id out of range: -1 " RANGE),
    REJ(id_int64_min_number_only, WITH_ID("\"id\":-9223372036854775808"),
        PI_REJ_ID_OUT_OF_RANGE,
        "id out of range: <= -9223372036854775808 " RANGE),
    REJ(id_str_zero, WITH_ID("\"id_str\":\"0\""), PI_REJ_ID_OUT_OF_RANGE,
        "id_str out of range: 0 " RANGE),
    REJ(id_both_zero, WITH_ID("\"id\":0,\"id_str\":\"0\""),
        PI_REJ_ID_OUT_OF_RANGE, "id_str out of range: 0 " RANGE),
    REJ(id_str_20_digits, WITH_ID("\"id_str\":\"12345678901234567890\""),
        PI_REJ_ID_OUT_OF_RANGE, "id_str out of range: 20 digits " RANGE),
    REJ(id_str_uint64_max_with_number,
        WITH_ID(
            "\"id\":18446744073709551615,\"id_str\":\"18446744073709551615\""),
        PI_REJ_ID_OUT_OF_RANGE, "id_str out of range: 20 digits " RANGE),
    OK(id_str_leading_zeros,
       WITH_ID(
           "\"id\":461799503595297635,\"id_str\":\"000461799503595297635\""),
       W_SAMPLE),
    REJ(id_str_empty, WITH_ID("\"id\":1,\"id_str\":\"\""), PI_REJ_INVALID_ID,
        "invalid id_str: empty string"),
    REJ(id_str_plus_sign, WITH_ID("\"id_str\":\"+5\""), PI_REJ_INVALID_ID,
        "invalid id_str: not a decimal integer (digits only, no sign or "
        "spaces)"),
    REJ(id_str_minus_sign, WITH_ID("\"id_str\":\"-5\""), PI_REJ_INVALID_ID,
        "invalid id_str: not a decimal integer (digits only, no sign or "
        "spaces)"),
    REJ(id_str_leading_space, WITH_ID("\"id\":5,\"id_str\":\" 5\""),
        PI_REJ_INVALID_ID,
        "invalid id_str: not a decimal integer (digits only, no sign or "
        "spaces)"),
    REJ(id_str_trailing_space, WITH_ID("\"id_str\":\"5 \""), PI_REJ_INVALID_ID,
        "invalid id_str: not a decimal integer (digits only, no sign or "
        "spaces)"),
    REJ(id_str_hex, WITH_ID("\"id_str\":\"0x10\""), PI_REJ_INVALID_ID,
        "invalid id_str: not a decimal integer (digits only, no sign or "
        "spaces)"),
    REJ(id_str_exponent, WITH_ID("\"id_str\":\"4.6e17\""), PI_REJ_INVALID_ID,
        "invalid id_str: not a decimal integer (digits only, no sign or "
        "spaces)"),
    REJ(id_str_number_type, WITH_ID("\"id_str\":5"), PI_REJ_WRONG_TYPE,
        "wrong type for id_str: expected string, got number"),
    REJ(id_str_u0000, WITH_ID("\"id\":5,\"id_str\":\"5\\u0000\""),
        PI_REJ_BAD_ENCODING, "bad encoding in id_str: U+0000 at byte 1"),
    REJ(id_str_invalid_utf8, WITH_ID("\"id_str\":\"46\xc3\""),
        PI_REJ_BAD_ENCODING, "bad encoding in id_str: invalid UTF-8 at byte 2"),
    REJ(id_fraction, WITH_ID("\"id\":5.0,\"id_str\":\"5\""), PI_REJ_WRONG_TYPE,
        "wrong type for id: expected integer, got number with a fraction or "
        "exponent"),
    REJ(id_exponent, WITH_ID("\"id\":4.617995035952977e+17"), PI_REJ_WRONG_TYPE,
        "wrong type for id: expected integer, got number with a fraction or "
        "exponent"),
    /* json-c accepts these even when strict; RFC 8259 does not. */
    REJ(id_nan_literal, WITH_ID("\"id\":NaN"), PI_REJ_MALFORMED_JSON,
        "malformed JSON at byte 6: NaN and Infinity are not JSON numbers"),
    REJ(id_infinity_literal, WITH_ID("\"id\":Infinity"), PI_REJ_MALFORMED_JSON,
        "malformed JSON at byte 6: NaN and Infinity are not JSON numbers"),
    REJ(id_minus_infinity_literal, WITH_ID("\"id\":-Infinity"),
        PI_REJ_MALFORMED_JSON,
        "malformed JSON at byte 7: NaN and Infinity are not JSON numbers"),
    REJ(id_trailing_dot, WITH_ID("\"id\":1."), PI_REJ_MALFORMED_JSON,
        "malformed JSON at byte 7: digit expected after the decimal point"),
    REJ(id_string_type, WITH_ID("\"id\":\"5\""), PI_REJ_WRONG_TYPE,
        "wrong type for id: expected integer, got string"),
    REJ(id_null, WITH_ID("\"id\":null,\"id_str\":\"5\""), PI_REJ_WRONG_TYPE,
        "wrong type for id: expected integer, got null"),
    REJ(id_boolean, WITH_ID("\"id\":true"), PI_REJ_WRONG_TYPE,
        "wrong type for id: expected integer, got boolean"),
    REJ(id_object, WITH_ID("\"id\":{}"), PI_REJ_WRONG_TYPE,
        "wrong type for id: expected integer, got object"),

    /* connection_id / connection_id_str: the same rules, their own codes. */
    OKC(connection_id_only_number,
        WITH_CID("\"connection_id\":461799503595298293"), W_SAMPLE, 0, 1),
    OKC(connection_id_only_string,
        WITH_CID("\"connection_id_str\":\"461799503595298293\""), W_SAMPLE, 0,
        1),
    REJ(connection_id_neither, WITH_CID(F_NONE), PI_REJ_MISSING_FIELD,
        "missing field connection_id (neither connection_id nor "
        "connection_id_str given)"),
    OKC(connection_id_js_double_repaired,
        WITH_CID("\"connection_id\":461799503595298300,"
                 "\"connection_id_str\":\"461799503595298293\""),
        W_SAMPLE, 1, 0),
    REJ(connection_id_mismatch,
        WITH_CID("\"connection_id\":461799503595297635,"
                 "\"connection_id_str\":\"461799503595298293\""),
        PI_REJ_CONNECTION_ID_MISMATCH,
        "connection_id 461799503595297635 does not match connection_id_str "
        "461799503595298293"),
    REJ(connection_id_zero, WITH_CID("\"connection_id\":0"),
        PI_REJ_CONNECTION_ID_OUT_OF_RANGE,
        "connection_id out of range: 0 " RANGE),
    REJ(connection_id_negative, WITH_CID("\"connection_id\":-42"),
        PI_REJ_CONNECTION_ID_OUT_OF_RANGE,
        "connection_id out of range: -42 " RANGE),
    REJ(connection_id_str_2p63,
        WITH_CID("\"connection_id_str\":\"9223372036854775808\""),
        PI_REJ_CONNECTION_ID_OUT_OF_RANGE,
        "connection_id_str out of range: 9223372036854775808 " RANGE),
    OK(connection_id_int64_max,
       WITH_CID("\"connection_id\":9223372036854775807,"
                "\"connection_id_str\":\"9223372036854775807\""),
       W_CID(INT64_MAX)),
    REJ(connection_id_str_invalid, WITH_CID("\"connection_id_str\":\"12a\""),
        PI_REJ_INVALID_ID,
        "invalid connection_id_str: not a decimal integer (digits only, no "
        "sign or spaces)"),
    REJ(connection_id_fraction, WITH_CID("\"connection_id\":1.5"),
        PI_REJ_WRONG_TYPE,
        "wrong type for connection_id: expected integer, got number with a "
        "fraction or exponent"),
    REJ(connection_id_str_null, WITH_CID("\"connection_id_str\":null"),
        PI_REJ_WRONG_TYPE,
        "wrong type for connection_id_str: expected string, got null"),
    OKC(both_ids_single,
        OBJ("\"id_str\":\"461799503595297635\"",
            "\"connection_id\":461799503595298293", F_TYPE, F_REASON, F_ASSET,
            F_TIME),
        W_SAMPLE, 0, 2),
    OKC(both_ids_repaired,
        OBJ("\"id\":461799503595297660,\"id_str\":\"461799503595297635\"",
            "\"connection_id\":461799503595298300,"
            "\"connection_id_str\":\"461799503595298293\"",
            F_TYPE, F_REASON, F_ASSET, F_TIME),
        W_SAMPLE, 2, 0),
    /* Counters move only when the element is stored. */
    REJ(repair_not_counted_when_rejected,
        OBJ("\"id\":461799503595297660,\"id_str\":\"461799503595297635\"",
            F_CID, F_TYPE, F_REASON, F_ASSET, "\"time\":\"never\""),
        PI_REJ_BAD_TIME, "bad time \"never\": " RFC),

    /* type. */
    OK(type_connect, WITH_TYPE("\"type\":\"connect\""),
       W_TYPE(PI_TYPE_CONNECT)),
    OK(type_disconnect, SAMPLE, W_TYPE(PI_TYPE_DISCONNECT)),
    OK(type_failed_connect, WITH_TYPE("\"type\":\"failed_connect\""),
       W_TYPE(PI_TYPE_FAILED_CONNECT)),
    OK(type_declare_asset, WITH_TYPE("\"type\":\"declare_asset\""),
       W_TYPE(PI_TYPE_DECLARE_ASSET)),
    REJ(type_capitalised, WITH_TYPE("\"type\":\"Connect\""),
        PI_REJ_UNKNOWN_TYPE,
        "unknown type \"Connect\": expected connect, disconnect, "
        "failed_connect or declare_asset"),
    REJ(type_unknown, WITH_TYPE("\"type\":\"reconnect\""), PI_REJ_UNKNOWN_TYPE,
        "unknown type \"reconnect\": expected connect, disconnect, "
        "failed_connect or declare_asset"),
    REJ(type_prefix, WITH_TYPE("\"type\":\"connec\""), PI_REJ_UNKNOWN_TYPE,
        "unknown type \"connec\": expected connect, disconnect, "
        "failed_connect or declare_asset"),
    REJ(type_trailing_space, WITH_TYPE("\"type\":\"connect \""),
        PI_REJ_UNKNOWN_TYPE,
        "unknown type \"connect \": expected connect, disconnect, "
        "failed_connect or declare_asset"),
    REJ(type_empty, WITH_TYPE("\"type\":\"\""), PI_REJ_UNKNOWN_TYPE,
        "unknown type \"\": expected connect, disconnect, failed_connect or "
        "declare_asset"),
    REJ(type_long_quoted_shortened, WITH_TYPE("\"type\":\"" X64 "\\n\""),
        PI_REJ_UNKNOWN_TYPE,
        "unknown type \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...\": "
        "expected "
        "connect, disconnect, failed_connect or declare_asset"),
    REJ(type_control_chars_quoted_safely, WITH_TYPE("\"type\":\"a\\nb\\\"c\""),
        PI_REJ_UNKNOWN_TYPE,
        "unknown type \"a?b?c\": expected connect, disconnect, failed_connect "
        "or declare_asset"),
    REJ(type_invalid_utf8, WITH_TYPE("\"type\":\"connect\xff\""),
        PI_REJ_BAD_ENCODING, "bad encoding in type: invalid UTF-8 at byte 7"),
    REJ(type_u0000, WITH_TYPE("\"type\":\"connect\\u0000\""),
        PI_REJ_BAD_ENCODING, "bad encoding in type: U+0000 at byte 7"),
    REJ(type_missing, WITH_TYPE(F_NONE), PI_REJ_MISSING_FIELD,
        "missing field type"),
    REJ(type_number, WITH_TYPE("\"type\":1"), PI_REJ_WRONG_TYPE,
        "wrong type for type: expected string, got number"),
    REJ(type_array, WITH_TYPE("\"type\":[\"connect\"]"), PI_REJ_WRONG_TYPE,
        "wrong type for type: expected string, got array"),

    /* reason. */
    OK(reason_unhandled_free_text,
       WITH_REASON("\"reason\":\"Unhandled reason 95074823, please contact "
                   "maintainer\""),
       W_REASON("Unhandled reason 95074823, please contact maintainer")),
    OK(reason_empty, WITH_REASON("\"reason\":\"\""), W_REASON("")),
    OK(reason_1024_bytes, WITH_REASON("\"reason\":\"" X1024 "\""),
       W_REASON(X1024)),
    REJ(reason_1025_bytes, WITH_REASON("\"reason\":\"" X1024 "x\""),
        PI_REJ_BAD_REASON, "reason too long: 1025 bytes (max 1024)"),
    REJ(reason_missing, WITH_REASON(F_NONE), PI_REJ_MISSING_FIELD,
        "missing field reason"),
    REJ(reason_null, WITH_REASON("\"reason\":null"), PI_REJ_WRONG_TYPE,
        "wrong type for reason: expected string, got null"),
    REJ(reason_number, WITH_REASON("\"reason\":95074823"), PI_REJ_WRONG_TYPE,
        "wrong type for reason: expected string, got number"),
    OK(reason_multibyte_utf8,
       WITH_REASON("\"reason\":\"caf\xc3\xa9 \xe2\x98\x95 \xf0\x9f\x98\x80\""),
       W_REASON("caf\xc3\xa9 \xe2\x98\x95 \xf0\x9f\x98\x80")),
    OK(reason_escapes_decoded,
       WITH_REASON("\"reason\":\"caf\\u00e9\\n\\t\\\"\\/\\ud83d\\ude00\""),
       W_REASON("caf\xc3\xa9\n\t\"/\xf0\x9f\x98\x80")),
    /* json-c turns a lone surrogate escape into U+FFFD: changing the data
     * silently, so refused. A pair is one character (escapes_decoded). */
    REJ(reason_lone_surrogate_escape, WITH_REASON("\"reason\":\"\\ud800\""),
        PI_REJ_BAD_ENCODING,
        "bad encoding in a string at byte 161: lone surrogate \\uD800"),
    REJ(reason_lone_low_surrogate_escape,
        WITH_REASON("\"reason\":\"a\\udc00\""), PI_REJ_BAD_ENCODING,
        "bad encoding in a string at byte 162: lone surrogate \\uDC00"),
    REJ(reason_high_surrogate_then_other_escape,
        WITH_REASON("\"reason\":\"\\ud800\\u0041\""), PI_REJ_BAD_ENCODING,
        "bad encoding in a string at byte 161: lone surrogate \\uD800"),
    REJ(reason_raw_control_character,
        WITH_REASON("\"reason\":\"a\x01"
                    "b\""),
        PI_REJ_BAD_ENCODING,
        "bad encoding in a string at byte 162: raw control character U+0001"),
    REJ(ignored_member_raw_control_character,
        "{" F_ID "," F_CID "," F_TYPE "," F_REASON "," F_ASSET "," F_TIME
        ",\"extra\x1f\":0}",
        PI_REJ_BAD_ENCODING,
        "bad encoding in a string at byte 243: raw control character U+001F"),
    MULTI(array_lone_surrogate_middle_element,
          "[" SAMPLE "," WITH_REASON("\"reason\":\"\\udc00\"") "," SAMPLE "]",
          "PRP", PI_REJ_BAD_ENCODING,
          "bad encoding in a string at byte 400: lone surrogate \\uDC00"),
    REJ(reason_u0000_escape, WITH_REASON("\"reason\":\"idle\\u0000out\""),
        PI_REJ_BAD_ENCODING, "bad encoding in reason: U+0000 at byte 4"),
    REJ(reason_u0000_after_8_ascii,
        WITH_REASON("\"reason\":\"socket_closed\\u0000\""), PI_REJ_BAD_ENCODING,
        "bad encoding in reason: U+0000 at byte 13"),
    REJ(reason_invalid_byte, WITH_REASON("\"reason\":\"socket_closed\xff\""),
        PI_REJ_BAD_ENCODING,
        "bad encoding in reason: invalid UTF-8 at byte 13"),
    REJ(reason_overlong, WITH_REASON("\"reason\":\"\xc0\xaf\""),
        PI_REJ_BAD_ENCODING, "bad encoding in reason: invalid UTF-8 at byte 0"),
    REJ(reason_raw_surrogate, WITH_REASON("\"reason\":\"a\xed\xa0\x80\""),
        PI_REJ_BAD_ENCODING, "bad encoding in reason: invalid UTF-8 at byte 1"),
    REJ(reason_truncated_sequence, WITH_REASON("\"reason\":\"ab\xe2\x82\""),
        PI_REJ_BAD_ENCODING, "bad encoding in reason: invalid UTF-8 at byte 2"),
    REJ(reason_above_u10ffff, WITH_REASON("\"reason\":\"\xf4\x90\x80\x80\""),
        PI_REJ_BAD_ENCODING, "bad encoding in reason: invalid UTF-8 at byte 0"),
    REJ(reason_lone_continuation, WITH_REASON("\"reason\":\"\x80\""),
        PI_REJ_BAD_ENCODING, "bad encoding in reason: invalid UTF-8 at byte 0"),

    /* asset. */
    OK(asset_null, WITH_ASSET("\"asset\":null"), W_ASSET(NULL)),
    OK(asset_null_failed_connect,
       OBJ(F_ID, F_CID, "\"type\":\"failed_connect\"", F_REASON,
           "\"asset\":null", F_TIME),
       W(ID_V, CID_V, PI_TYPE_FAILED_CONNECT, "socket_closed", NULL, T_SAMPLE,
         120)),
    OK(asset_not_luhn_valid_kept, SAMPLE, W_ASSET("357322041802978")),
    OK(asset_not_an_imei, WITH_ASSET("\"asset\":\"truck-42\""),
       W_ASSET("truck-42")),
    OK(asset_64_bytes, WITH_ASSET("\"asset\":\"" X64 "\""), W_ASSET(X64)),
    REJ(asset_65_bytes, WITH_ASSET("\"asset\":\"" X64 "x\""), PI_REJ_BAD_ASSET,
        "asset too long: 65 bytes (max 64)"),
    REJ(asset_empty, WITH_ASSET("\"asset\":\"\""), PI_REJ_BAD_ASSET,
        "empty asset"),
    REJ(asset_missing, WITH_ASSET(F_NONE), PI_REJ_MISSING_FIELD,
        "missing field asset"),
    REJ(asset_number, WITH_ASSET("\"asset\":357322041802978"),
        PI_REJ_WRONG_TYPE,
        "wrong type for asset: expected string or null, got number"),
    REJ(asset_u0000, WITH_ASSET("\"asset\":\"\\u0000\""), PI_REJ_BAD_ENCODING,
        "bad encoding in asset: U+0000 at byte 0"),

    /* time: the values themselves are in time_rows. */
    REJ(time_missing, WITH_TIME(F_NONE), PI_REJ_MISSING_FIELD,
        "missing field time"),
    REJ(time_number, WITH_TIME("\"time\":1372405581"), PI_REJ_WRONG_TYPE,
        "wrong type for time: expected string, got number"),
    REJ(time_invalid_utf8, WITH_TIME("\"time\":\"2013-06-28T09:46:21\xe9\""),
        PI_REJ_BAD_ENCODING, "bad encoding in time: invalid UTF-8 at byte 19"),
    REJ(time_u0000, WITH_TIME("\"time\":\"2013-06-28T09:46:21Z\\u0000\""),
        PI_REJ_BAD_ENCODING, "bad encoding in time: U+0000 at byte 20"),

    /* Everything else. */
    OK(unknown_fields_ignored,
       OBJ(F_ID, F_CID, F_TYPE, F_REASON, F_ASSET,
           F_TIME ",\"extra\":{\"n\":[1,2.5,null,true]},\"big\":1e400"),
       W_SAMPLE),
    /* Only stored strings are checked: an ignored one cannot reach a row. */
    OK(invalid_utf8_in_ignored_field_kept,
       OBJ(F_ID, F_CID, F_TYPE, F_REASON, F_ASSET,
           F_TIME ",\"note\":\"\xff\\u0000\""),
       W_SAMPLE),
    OK(duplicate_key_last_wins,
       OBJ(F_ID, F_CID, "\"type\":\"connect\"", F_REASON, F_ASSET,
           F_TIME ",\"type\":\"disconnect\""),
       W_SAMPLE),
    /* json-c keeps member names as C strings. */
    OK(member_name_cut_at_u0000,
       WITH_ID("\"id\\u0000x\":461799503595297635,"
               "\"id_str\":\"461799503595297635\""),
       W_SAMPLE),
    OK(whitespace_around_value, " \r\n\t" SAMPLE " \r\n\t", W_SAMPLE),
    REJ(first_failing_field_wins,
        OBJ(F_NONE, F_CID, "\"type\":\"x\"", F_REASON, "\"asset\":\"\"",
            "\"time\":\"x\""),
        PI_REJ_MISSING_FIELD, "missing field id (neither id nor id_str given)"),
};

/* An RFC 3339 string and what it must become (via the decoder too). */
typedef struct time_row {
    const char *name;
    const char *time;
    int ok;
    int64_t time_us;
    int16_t offset_min;
} time_row;

#define TNAME(n) "test_decode__time_" #n
#define TOK(n, s, us, off)                                                     \
    {                                                                          \
        TNAME(n), s, 1, us, off                                                \
    }
#define TBAD(n, s)                                                             \
    {                                                                          \
        TNAME(n), s, 0, 0, 0                                                   \
    }

static const time_row time_rows[] = {
    TOK(sample_plus_0200, "2013-06-28T09:46:21+02:00", T_SAMPLE, 120),
    TOK(upper_z, "2013-06-28T07:46:21Z", T_SAMPLE, 0),
    TOK(lower_z, "2013-06-28T07:46:21z", T_SAMPLE, 0),
    TOK(lower_t, "2013-06-28t07:46:21Z", T_SAMPLE, 0),
    TOK(space_separator, "2013-06-28 07:46:21Z", T_SAMPLE, 0),
    TOK(plus_0000, "2013-06-28T07:46:21+00:00", T_SAMPLE, 0),
    TOK(minus_0000, "2013-06-28T07:46:21-00:00", T_SAMPLE, 0),
    TOK(plus_2359, "2013-06-28T09:46:21+23:59", 1372326441000000, 1439),
    TOK(minus_2359, "2013-06-28T09:46:21-23:59", 1372499121000000, -1439),
    TOK(plus_0530, "2013-06-28T09:46:21+05:30", 1372392981000000, 330),
    TOK(minus_0330, "2013-06-28T09:46:21-03:30", 1372425381000000, -210),
    TOK(plus_1400, "2013-06-28T09:46:21+14:00", 1372362381000000, 840),
    TOK(minus_1200, "2013-06-28T09:46:21-12:00", 1372455981000000, -720),
    TOK(offset_crosses_midnight, "2013-06-28T01:00:00+02:00", 1372374000000000,
        120),
    TOK(fraction_1_digit, "2013-06-28T07:46:21.5Z", T_SAMPLE + 500000, 0),
    TOK(fraction_3_digits, "2013-06-28T07:46:21.123Z", T_SAMPLE + 123000, 0),
    TOK(fraction_6_digits, "2013-06-28T07:46:21.123456Z", T_SAMPLE + 123456, 0),
    TOK(fraction_9_digits_truncated, "2013-06-28T07:46:21.123456789Z",
        T_SAMPLE + 123456, 0),
    TOK(fraction_999999999_not_rounded, "2013-06-28T07:46:21.999999999Z",
        T_SAMPLE + 999999, 0),
    TOK(fraction_0000001_truncated_to_zero, "2013-06-28T07:46:21.0000001Z",
        T_SAMPLE, 0),
    TOK(fraction_with_offset, "2013-06-28T09:46:21.25+02:00", T_SAMPLE + 250000,
        120),
    TBAD(fraction_10_digits, "2013-06-28T07:46:21.1234567890Z"),
    TBAD(fraction_empty, "2013-06-28T07:46:21.Z"),
    TBAD(fraction_comma, "2013-06-28T07:46:21,5Z"),
    TOK(epoch, "1970-01-01T00:00:00Z", 0, 0),
    TOK(before_epoch_fraction, "1969-12-31T23:59:59.5Z", -500000, 0),
    TOK(leap_day_2024, "2024-02-29T12:00:00Z", 1709208000000000, 0),
    TOK(leap_day_2000, "2000-02-29T00:00:00Z", 951782400000000, 0),
    TOK(leap_day_2400, "2400-02-29T00:00:00Z", 13574563200000000, 0),
    TBAD(feb_29_common_2023, "2023-02-29T00:00:00Z"),
    TBAD(feb_29_1900, "1900-02-29T00:00:00Z"),
    TBAD(feb_29_2100, "2100-02-29T00:00:00Z"),
    TOK(feb_28_1900, "1900-02-28T00:00:00Z", -2203977600000000, 0),
    TOK(mar_01_1900, "1900-03-01T00:00:00Z", -2203891200000000, 0),
    TOK(feb_28_2023, "2023-02-28T00:00:00Z", 1677542400000000, 0),
    TBAD(feb_30_2024, "2024-02-30T00:00:00Z"),
    TBAD(apr_31, "2023-04-31T00:00:00Z"),
    TOK(dec_31, "2023-12-31T23:59:59Z", 1704067199000000, 0),
    TBAD(month_13, "2023-13-01T00:00:00Z"),
    TBAD(month_00, "2023-00-10T00:00:00Z"),
    TBAD(day_00, "2023-01-00T00:00:00Z"),
    TBAD(day_32, "2023-01-32T00:00:00Z"),
    TBAD(hour_24, "2023-01-01T24:00:00Z"),
    TBAD(minute_60, "2023-01-01T23:60:00Z"),
    TBAD(second_61, "2023-01-01T23:59:61Z"),
    TOK(leap_second_next_day, "2016-12-31T23:59:60Z", 1483228800000000, 0),
    TOK(leap_second_local_offset, "2017-01-01T00:59:60+01:00", 1483228800000000,
        60),
    TOK(leap_second_with_fraction, "2016-12-31T23:59:60.5Z", 1483228800500000,
        0),
    TOK(year_0000, "0000-01-01T00:00:00Z", -62167219200000000, 0),
    TOK(year_0000_plus_2359, "0000-01-01T00:00:00+23:59", -62167305540000000,
        1439),
    TOK(year_0001, "0001-01-01T00:00:00Z", -62135596800000000, 0),
    TOK(year_9999_last_microsecond, "9999-12-31T23:59:59.999999Z",
        253402300799999999, 0),
    TOK(year_9999_minus_2359, "9999-12-31T23:59:59-23:59", 253402387139000000,
        -1439),
    TBAD(year_5_digits, "10000-01-01T00:00:00Z"),
    TBAD(year_negative, "-0001-01-01T00:00:00Z"),
    TBAD(offset_hour_24, "2013-06-28T09:46:21+24:00"),
    TBAD(offset_minute_60, "2013-06-28T09:46:21+23:60"),
    TBAD(offset_without_colon, "2013-06-28T09:46:21+0200"),
    TBAD(offset_hours_only, "2013-06-28T09:46:21+02"),
    TBAD(offset_without_sign, "2013-06-28T09:46:2102:00"),
    TBAD(offset_then_z, "2013-06-28T09:46:21+02:00Z"),
    TBAD(zone_missing, "2013-06-28T09:46:21"),
    TBAD(zone_name, "2013-06-28T09:46:21 UTC"),
    TBAD(zone_gmt, "2013-06-28T09:46:21GMT"),
    TBAD(date_only, "2013-06-28"),
    TBAD(minutes_only, "2013-06-28T09:46Z"),
    TBAD(single_digit_month, "2013-6-28T09:46:21Z"),
    TBAD(slashes, "2013/06/28T09:46:21Z"),
    TBAD(bad_separator, "2013-06-28X09:46:21Z"),
    TBAD(two_spaces, "2013-06-28  09:46:21Z"),
    TBAD(leading_space, " 2013-06-28T09:46:21Z"),
    TBAD(trailing_space, "2013-06-28T09:46:21Z "),
    TBAD(empty, ""),
    TBAD(unix_seconds, "1372405581"),
    TBAD(fullwidth_digits, "\xef\xbc\x92\xef\xbc\x90\xef\xbc\x91\xef\xbc\x93"
                           "-06-28T09:46:21Z"),
};

typedef struct run {
    pi_decoder *dec;
    pi_decode_result res;
    pi_arena arena;
    size_t n;
} run;

static void run_decode(run *r, const char *json, size_t len, size_t max_bytes)
{
    pi_decoder_new(&r->dec, max_bytes);
    pi_decode_result_init(&r->res);
    pi_arena_init(&r->arena);
    r->n = pi_decoder_decode(r->dec, json, len, TAG, &r->res, &r->arena);
}

static void run_fini(run *r)
{
    pi_decode_result_fini(&r->res);
    pi_arena_fini(&r->arena);
    pi_decoder_destroy(r->dec);
}

static void assert_str(pi_str got, const char *exp, size_t exp_len)
{
    if (exp == NULL) {
        assert_null(got.ptr);
        assert_int_equal(got.len, 0);
        return;
    }
    assert_non_null(got.ptr);
    assert_int_equal(got.len, exp_len);
    assert_memory_equal(got.ptr, exp, exp_len);
    assert_int_equal(got.ptr[got.len], '\0');
}

static void assert_presence(const pi_presence *p, const want *w)
{
    assert_int_equal(p->id, w->id);
    assert_int_equal(p->connection_id, w->connection_id);
    assert_int_equal(p->type, w->type);
    assert_str(p->reason, w->reason,
               w->reason_len ? w->reason_len : strlen(w->reason));
    assert_str(p->asset, w->asset, w->asset ? strlen(w->asset) : 0);
    assert_int_equal(p->time_us, w->time_us);
    assert_int_equal(p->offset_min, w->offset_min);
    assert_int_equal(p->tag, TAG);
}

/* Elements land in res in order, each as exactly one of the outcomes. */
static void assert_outcomes(const run *r, const char *outcomes)
{
    size_t np = 0, nr = 0, ns = 0, n = strlen(outcomes);

    assert_int_equal(r->n, n);
    for (size_t i = 0; i < n; i++) {
        switch (outcomes[i]) {
        case 'P':
            assert_true(np < r->res.n_presences);
            assert_int_equal(r->res.presences[np++].element, i);
            break;
        case 'R':
            assert_true(nr < r->res.n_rejects);
            assert_int_equal(r->res.rejects[nr].tag, TAG);
            assert_int_equal(r->res.rejects[nr++].element, i);
            break;
        default:
            ns++;
        }
    }
    assert_int_equal(r->res.n_presences, np);
    assert_int_equal(r->res.n_rejects, nr);
    assert_int_equal(r->res.skipped, ns);
}

static void test_row(void **state)
{
    const row *t = *state;
    run r;

    run_decode(&r, t->json, t->len ? t->len : strlen(t->json), t->max_bytes);
    assert_outcomes(&r, t->outcomes);
    if (r.res.n_rejects > 0) {
        const pi_reject *rej = &r.res.rejects[0];
        if (rej->code != t->code || strcmp(rej->detail.ptr, t->detail) != 0)
            print_error("got %s \"%s\"\n", pi_reject_code_name(rej->code),
                        rej->detail.ptr);
        assert_int_equal(rej->code, t->code);
        assert_string_equal(rej->detail.ptr, t->detail);
        assert_int_equal(strlen(rej->detail.ptr), rej->detail.len);
    }
    for (size_t i = 0; i < r.res.n_presences; i++)
        assert_presence(&r.res.presences[i], &t->want);
    assert_int_equal(r.res.ids_repaired, t->repaired);
    assert_int_equal(r.res.ids_single, t->single);
    run_fini(&r);
}

static void test_time_row(void **state)
{
    const time_row *t = *state;
    int64_t us = -1;
    int16_t off = -1;
    char json[512], detail[256];
    run r;

    assert_int_equal(pi_rfc3339_parse(t->time, strlen(t->time), &us, &off),
                     t->ok ? 0 : -1);
    if (t->ok) {
        assert_int_equal(us, t->time_us);
        assert_int_equal(off, t->offset_min);
    }

    snprintf(json, sizeof(json),
             "{" F_ID "," F_CID "," F_TYPE "," F_REASON "," F_ASSET
             ",\"time\":\"%s\"}",
             t->time);
    run_decode(&r, json, strlen(json), 0);
    if (t->ok) {
        const want w = W_TIME(t->time_us, t->offset_min);
        assert_outcomes(&r, "P");
        assert_presence(&r.res.presences[0], &w);
    } else {
        assert_outcomes(&r, "R");
        assert_int_equal(r.res.rejects[0].code, PI_REJ_BAD_TIME);
        /* Non-ASCII bytes are shown as '?' in details. */
        size_t i, n = strlen(t->time);
        for (i = 0; i < n; i++)
            detail[i] = (unsigned char)t->time[i] < 0x80 ? t->time[i] : '?';
        detail[n] = '\0';
        char exp[300];
        snprintf(exp, sizeof(exp), "bad time \"%s\": " RFC, detail);
        assert_string_equal(r.res.rejects[0].detail.ptr, exp);
    }
    run_fini(&r);
}

static char *read_sample(const char *name, size_t *len)
{
    const char *dir = getenv("PI_SOURCE_DIR");
    char path[4096];
    char *buf;

    snprintf(path, sizeof(path), "%s/tests/unit/data/decode/%s",
             dir ? dir : ".", name);
    buf = pi_test_read_file(path);
    if (buf == NULL)
        fail_msg("cannot read %s", path);
    *len = strlen(buf);
    return buf;
}

/* The README of shared/spec/samples says what each must become. */
static void test_decode__sample_municio_presence_1(void **state)
{
    const want w = W(911270996919452058, 911270996911063452, PI_TYPE_CONNECT,
                     "idle_out", "356156060353505", 1479567936000000, 0);
    size_t len;
    char *buf = read_sample("municio-presence-1.json", &len);
    run r;

    (void)state;
    run_decode(&r, buf, len, 0);
    assert_outcomes(&r, "P");
    assert_presence(&r.res.presences[0], &w);
    assert_int_equal(r.res.ids_repaired, 0);
    assert_int_equal(r.res.ids_single, 0);
    run_fini(&r);
    free(buf);
}

static void test_decode__sample_municio_presence_and_messages(void **state)
{
    const want w = W(912227168338051482, 912227168023511489, PI_TYPE_CONNECT,
                     "idle_out", "356156060353505", 1479795905000000, 0);
    size_t len;
    char *buf = read_sample("municio-presence-and-messages.json", &len);
    run r;

    (void)state;
    run_decode(&r, buf, len, 0);
    assert_outcomes(&r, "PSSSSSS");
    assert_presence(&r.res.presences[0], &w);
    /* The id's top 42 bits are milliseconds since 2010-01-01T00:00:00Z. */
    assert_int_equal((w.id >> 22) + 1262304000000, 1479795905293);
    run_fini(&r);
    free(buf);
}

/* A result accumulates over calls, each output keeping its own tag, until
 * reset; strings are copies that outlive the input and the json-c tree. */
static void test_decode__result_appends_until_reset(void **state)
{
    char *buf = pi_strdup(SAMPLE);
    pi_decoder *dec;
    pi_decode_result res;
    pi_arena arena;

    (void)state;
    pi_decoder_new(&dec, 0);
    pi_decode_result_init(&res);
    pi_arena_init(&arena);
    assert_int_equal(pi_decoder_decode(dec, buf, strlen(buf), 1, &res, &arena),
                     1);
    assert_int_equal(pi_decoder_decode(dec, "{", 1, 2, &res, &arena), 1);
    assert_int_equal(pi_decoder_decode(dec, ENV("poke", "{}"),
                                       strlen(ENV("poke", "{}")), 3, &res,
                                       &arena),
                     1);
    memset(buf, ' ', strlen(buf));
    assert_int_equal(
        pi_decoder_decode(dec, SAMPLE, strlen(SAMPLE), 4, &res, &arena), 1);
    assert_int_equal(res.n_presences, 2);
    assert_int_equal(res.presences[0].tag, 1);
    assert_int_equal(res.presences[1].tag, 4);
    assert_string_equal(res.presences[0].reason.ptr, "socket_closed");
    assert_string_equal(res.presences[0].asset.ptr, "357322041802978");
    assert_int_equal(res.n_rejects, 1);
    assert_int_equal(res.rejects[0].tag, 2);
    assert_int_equal(res.rejects[0].code, PI_REJ_MALFORMED_JSON);
    assert_int_equal(res.skipped, 1);

    pi_decode_result_reset(&res);
    assert_int_equal(res.n_presences, 0);
    assert_int_equal(res.n_rejects, 0);
    assert_int_equal(res.skipped, 0);
    assert_int_equal(res.ids_repaired, 0);
    assert_int_equal(res.ids_single, 0);
    pi_decode_result_fini(&res);
    pi_arena_fini(&arena);
    pi_decoder_destroy(dec);
    pi_decoder_destroy(NULL);
    free(buf);
}

/* The 1 MiB default: a value of exactly 1 MiB is decoded, one more byte is
 * too_large. */
static void test_decode__default_max_bytes(void **state)
{
    size_t max = PI_DECODE_DEFAULT_MAX_BYTES;
    char *buf = pi_malloc(max + 1);
    run r;

    (void)state;
    memset(buf, ' ', max + 1);
    memcpy(buf, "[" SAMPLE, strlen("[" SAMPLE));
    buf[max - 1] = ']';
    run_decode(&r, buf, max, 0);
    assert_outcomes(&r, "P");
    run_fini(&r);

    buf[max] = ' ';
    run_decode(&r, buf, max + 1, 0);
    assert_outcomes(&r, "R");
    assert_int_equal(r.res.rejects[0].code, PI_REJ_TOO_LARGE);
    assert_string_equal(r.res.rejects[0].detail.ptr,
                        "message value of 1048577 bytes exceeds the maximum of "
                        "1048576");
    run_fini(&r);
    free(buf);
}

/* Many elements: indexes stay right past the result's initial capacity. */
static void test_decode__array_of_100_elements(void **state)
{
    size_t cap = 100 * (strlen(SAMPLE) + 1) + 16, len = 0;
    char *buf = pi_malloc(cap);
    run r;

    (void)state;
    buf[len++] = '[';
    for (int i = 0; i < 100; i++) {
        const char *el = i % 10 == 3 ? "7" : SAMPLE;
        len += (size_t)sprintf(buf + len, "%s%s", i ? "," : "", el);
    }
    buf[len++] = ']';
    run_decode(&r, buf, len, 0);
    assert_int_equal(r.n, 100);
    assert_int_equal(r.res.n_presences, 90);
    assert_int_equal(r.res.n_rejects, 10);
    for (size_t i = 0; i < 10; i++)
        assert_int_equal(r.res.rejects[i].element, i * 10 + 3);
    assert_int_equal(r.res.presences[89].element, 99);
    run_fini(&r);
    free(buf);
}

static void test_decode__reject_code_names(void **state)
{
    static const char *const names[PI_REJ__COUNT] = {
        "empty",
        "too_large",
        "malformed_json",
        "not_an_object",
        "missing_field",
        "wrong_type",
        "bad_encoding",
        "invalid_id",
        "id_mismatch",
        "id_out_of_range",
        "connection_id_mismatch",
        "connection_id_out_of_range",
        "unknown_type",
        "bad_reason",
        "bad_asset",
        "bad_time",
        "id_conflict",
    };

    (void)state;
    for (int c = 0; c < PI_REJ__COUNT; c++)
        assert_string_equal(pi_reject_code_name((pi_reject_code)c), names[c]);
    assert_string_equal(pi_reject_code_name(PI_REJ__COUNT), "unknown");
}

static void test_decode__presence_type_names(void **state)
{
    (void)state;
    assert_string_equal(pi_presence_type_name(PI_TYPE_CONNECT), "connect");
    assert_string_equal(pi_presence_type_name(PI_TYPE_DISCONNECT),
                        "disconnect");
    assert_string_equal(pi_presence_type_name(PI_TYPE_FAILED_CONNECT),
                        "failed_connect");
    assert_string_equal(pi_presence_type_name(PI_TYPE_DECLARE_ASSET),
                        "declare_asset");
    assert_string_equal(pi_presence_type_name((pi_presence_type)4), "unknown");
}

#define N_ROWS (sizeof(rows) / sizeof(rows[0]))
#define N_TIME_ROWS (sizeof(time_rows) / sizeof(time_rows[0]))

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_decode__sample_municio_presence_1),
        cmocka_unit_test(test_decode__sample_municio_presence_and_messages),
        cmocka_unit_test(test_decode__result_appends_until_reset),
        cmocka_unit_test(test_decode__default_max_bytes),
        cmocka_unit_test(test_decode__array_of_100_elements),
        cmocka_unit_test(test_decode__reject_code_names),
        cmocka_unit_test(test_decode__presence_type_names),
    };
    size_t n_fixed = sizeof(fixed) / sizeof(fixed[0]);
    size_t n = N_ROWS + N_TIME_ROWS + n_fixed, k = 0;
    struct CMUnitTest *tests = pi_calloc(n, sizeof(*tests));
    int failed;

    for (size_t i = 0; i < N_ROWS; i++)
        tests[k++] = (struct CMUnitTest){rows[i].name, test_row, NULL, NULL,
                                         (void *)&rows[i]};
    for (size_t i = 0; i < N_TIME_ROWS; i++)
        tests[k++] = (struct CMUnitTest){time_rows[i].name, test_time_row, NULL,
                                         NULL, (void *)&time_rows[i]};
    for (size_t i = 0; i < n_fixed; i++)
        tests[k++] = fixed[i];
    failed = _cmocka_run_group_tests("decode", tests, n, NULL, NULL);
    free(tests);
    return failed;
}
