/* result.c -- the decoder's output: presences, rejects and their details */
#include "presence/decode.h"

#include <json-c/json_object.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode_int.h"

#define DETAIL_MAX 256

static const char *const reject_names[PI_REJ__COUNT] = {
    [PI_REJ_EMPTY] = "empty",
    [PI_REJ_TOO_LARGE] = "too_large",
    [PI_REJ_MALFORMED_JSON] = "malformed_json",
    [PI_REJ_NOT_AN_OBJECT] = "not_an_object",
    [PI_REJ_MISSING_FIELD] = "missing_field",
    [PI_REJ_WRONG_TYPE] = "wrong_type",
    [PI_REJ_BAD_ENCODING] = "bad_encoding",
    [PI_REJ_INVALID_ID] = "invalid_id",
    [PI_REJ_ID_MISMATCH] = "id_mismatch",
    [PI_REJ_ID_OUT_OF_RANGE] = "id_out_of_range",
    [PI_REJ_CONNECTION_ID_MISMATCH] = "connection_id_mismatch",
    [PI_REJ_CONNECTION_ID_OUT_OF_RANGE] = "connection_id_out_of_range",
    [PI_REJ_UNKNOWN_TYPE] = "unknown_type",
    [PI_REJ_BAD_REASON] = "bad_reason",
    [PI_REJ_BAD_ASSET] = "bad_asset",
    [PI_REJ_BAD_TIME] = "bad_time",
    [PI_REJ_ID_CONFLICT] = "id_conflict",
};

const char *pi_reject_code_name(pi_reject_code code)
{
    return (unsigned)code < PI_REJ__COUNT ? reject_names[code] : "unknown";
}

void pi_decode_result_init(pi_decode_result *res)
{
    memset(res, 0, sizeof(*res));
}

void pi_decode_result_reset(pi_decode_result *res)
{
    res->n_presences = 0;
    res->n_rejects = 0;
    res->skipped = 0;
    res->ids_repaired = 0;
    res->ids_single = 0;
}

void pi_decode_result_fini(pi_decode_result *res)
{
    free(res->presences);
    free(res->rejects);
    pi_decode_result_init(res);
}

pi_presence *pi_dec__push_presence(pi_decode_result *res)
{
    void *arr = res->presences;

    pi_grow(&arr, &res->cap_presences, res->n_presences + 1,
            sizeof(pi_presence));
    res->presences = arr;
    return &res->presences[res->n_presences++];
}

static pi_reject *push_reject(pi_decode_result *res)
{
    void *arr = res->rejects;

    pi_grow(&arr, &res->cap_rejects, res->n_rejects + 1, sizeof(pi_reject));
    res->rejects = arr;
    return &res->rejects[res->n_rejects++];
}

/* Record the element as rejected. Every detail is built from field names,
 * numbers and pi_dec__quote() output, so it is one line of ASCII. Returns -1 so
 * that a check can `return pi_dec__reject(...)`. */
int pi_dec__reject(const elem *el, pi_reject_code code, const char *fmt, ...)
{
    char buf[DETAIL_MAX];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    else if ((size_t)n >= sizeof(buf))
        n = sizeof(buf) - 1;

    pi_reject *rej = push_reject(el->res);
    rej->code = code;
    rej->element = el->element;
    rej->tag = el->tag;
    rej->detail.ptr = pi_arena_memdup(el->arena, buf, (size_t)n);
    rej->detail.len = (size_t)n;
    return -1;
}

/* Copy at most QUOTE_MAX bytes of s for a detail, keeping it printable
 * ASCII on one line whatever the input holds. */
const char *pi_dec__quote(char *dst, const char *s, size_t len)
{
    size_t n = len < QUOTE_MAX ? len : QUOTE_MAX;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[i] = c >= 0x20 && c < 0x7f && c != '"' ? (char)c : '?';
    }
    strcpy(dst + n, len > n ? "..." : "");
    return dst;
}

const char *pi_dec__kind(struct json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_null:
        return "null";
    case json_type_boolean:
        return "boolean";
    case json_type_double:
    case json_type_int:
        return "number";
    case json_type_object:
        return "object";
    case json_type_array:
        return "array";
    case json_type_string:
        return "string";
    }
    return "unknown";
}

int pi_dec__reject_missing(const elem *el, const char *name)
{
    return pi_dec__reject(el, PI_REJ_MISSING_FIELD, "missing field %s", name);
}

int pi_dec__reject_type(const elem *el, const char *name, const char *want,
                        struct json_object *v)
{
    return pi_dec__reject(el, PI_REJ_WRONG_TYPE,
                          "wrong type for %s: expected %s, got %s", name, want,
                          pi_dec__kind(v));
}
