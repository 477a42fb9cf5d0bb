/* fields.c -- the field rules of one presence object (CONTRACT §2)
 *
 * id / id_str and connection_id / connection_id_str reconciled, type,
 * reason, asset and time checked and normalised, in that fixed order: the
 * first failure is the element's reject. decode.c owns the message around
 * them (parsing, limits, envelopes, arrays).
 */
#include <json-c/json_object.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "decode_int.h"
#include "presence/times.h"
#include "presence/utf8.h"

#define REASON_MAX 1024
#define ASSET_MAX 64

const char *const pi_dec__field_names[FLD__COUNT] = {
    [FLD_ID] = "id",
    [FLD_ID_STR] = "id_str",
    [FLD_CONNECTION_ID] = "connection_id",
    [FLD_CONNECTION_ID_STR] = "connection_id_str",
    [FLD_TYPE] = "type",
    [FLD_REASON] = "reason",
    [FLD_ASSET] = "asset",
    [FLD_TIME] = "time",
    [FLD_META] = "meta",
    [FLD_PAYLOAD] = "payload",
};

/* The two spellings of a 64-bit identifier and its own reject codes. */
typedef struct id_rule {
    enum field num;
    enum field str;
    pi_reject_code mismatch;
    pi_reject_code out_of_range;
} id_rule;

static const id_rule ID_RULE = {FLD_ID, FLD_ID_STR, PI_REJ_ID_MISMATCH,
                                PI_REJ_ID_OUT_OF_RANGE};
static const id_rule CONNECTION_ID_RULE = {
    FLD_CONNECTION_ID, FLD_CONNECTION_ID_STR, PI_REJ_CONNECTION_ID_MISMATCH,
    PI_REJ_CONNECTION_ID_OUT_OF_RANGE};

/* An integer as json-c holds it. json-c keeps integers exactly within
 * [-2^63, 2^64) and saturates beyond, which is out of range either way. */
typedef struct wide {
    bool neg;
    uint64_t mag;
} wide;

/* Counters of one element, added to the result only if it is stored. */
typedef struct id_stats {
    unsigned repaired;
    unsigned single;
} id_stats;

static const char *const type_names[] = {
    [PI_TYPE_CONNECT] = "connect",
    [PI_TYPE_DISCONNECT] = "disconnect",
    [PI_TYPE_FAILED_CONNECT] = "failed_connect",
    [PI_TYPE_DECLARE_ASSET] = "declare_asset",
};

#define N_TYPES (sizeof(type_names) / sizeof(type_names[0]))

const char *pi_presence_type_name(pi_presence_type type)
{
    return (unsigned)type < N_TYPES ? type_names[type] : "unknown";
}

/* A string value of the right JSON type, not yet known to be valid text.
 * The result points into the json-c object, valid until the tree is put. */
static int get_raw_string(const elem *el, struct json_object *v,
                          const char *name, pi_str *out)
{
    if (!json_object_is_type(v, json_type_string))
        return pi_dec__reject_type(el, name, "string", v);
    out->ptr = json_object_get_string(v);
    out->len = (size_t)json_object_get_string_len(v);
    return 0;
}

/* bad_encoding unless s is valid UTF-8 without U+0000. A field whose own
 * rule admits only ASCII (ids, type, time) calls this only once that rule
 * has failed, to report the encoding first as §2 wants, off the hot path. */
static int check_encoding(const elem *el, const char *name, const pi_str *s)
{
    size_t bad = pi_utf8_check(s->ptr, s->len);

    if (bad == s->len)
        return 0;
    return pi_dec__reject(el, PI_REJ_BAD_ENCODING,
                          "bad encoding in %s: %s at byte %zu", name,
                          s->ptr[bad] ? "invalid UTF-8" : "U+0000", bad);
}

/* A string value that must be valid text. */
static int get_string(const elem *el, struct json_object *v, const char *name,
                      pi_str *out)
{
    if (get_raw_string(el, v, name, out) < 0)
        return -1;
    return check_encoding(el, name, out);
}

/* *v is NULL when absent, as it is for a JSON null: tell them apart by the
 * result. */
static bool has(const fields *f, enum field i, struct json_object **v)
{
    bool seen = (f->seen & (1u << i)) != 0;

    *v = seen ? f->v[i] : NULL;
    return seen;
}

int pi_dec__member(const elem *el, const fields *f, enum field i,
                   struct json_object **v)
{
    if (has(f, i, v))
        return 0;
    return pi_dec__reject_missing(el, pi_dec__field_names[i]);
}

/* The JSON number form of an identifier. */
static int get_num_id(const elem *el, struct json_object *v, const char *name,
                      wide *out)
{
    if (json_object_is_type(v, json_type_double))
        return pi_dec__reject(
            el, PI_REJ_WRONG_TYPE,
            "wrong type for %s: expected integer, got number with "
            "a fraction or exponent",
            name);
    if (!json_object_is_type(v, json_type_int))
        return pi_dec__reject_type(el, name, "integer", v);

    /* get_int64 saturates at INT64_MAX for json-c's uint64 values. */
    int64_t i = json_object_get_int64(v);
    out->neg = i < 0;
    if (i == INT64_MAX)
        out->mag = json_object_get_uint64(v);
    else
        out->mag = i < 0 ? -(uint64_t)i : (uint64_t)i;
    return 0;
}

static int num_out_of_range(const elem *el, const id_rule *rule,
                            const wide *num)
{
    const char *cmp = "";

    /* json-c saturates at the ends, so those values are bounds only. */
    if (num->neg && num->mag == (uint64_t)INT64_MAX + 1)
        cmp = "<= ";
    else if (!num->neg && num->mag == UINT64_MAX)
        cmp = ">= ";
    return pi_dec__reject(
        el, rule->out_of_range, "%s out of range: %s%s%llu (must be 1 to %lld)",
        pi_dec__field_names[rule->num], cmp, num->neg ? "-" : "",
        (unsigned long long)num->mag, (long long)INT64_MAX);
}

/* The string form: decimal digits only (leading zeros allowed, they do not
 * change the value), value in 1 … INT64_MAX. */
static int get_str_id(const elem *el, struct json_object *v,
                      const id_rule *rule, uint64_t *out)
{
    const char *name = pi_dec__field_names[rule->str];
    pi_str s = {NULL, 0};
    size_t i = 0, sig;
    uint64_t val = 0;

    if (get_raw_string(el, v, name, &s) < 0)
        return -1;
    if (s.len == 0)
        return pi_dec__reject(el, PI_REJ_INVALID_ID, "invalid %s: empty string",
                              name);
    while (i < s.len && s.ptr[i] == '0')
        i++;
    for (sig = 0; i < s.len; i++, sig++) {
        char c = s.ptr[i];
        if ((c < '0' || c > '9') && check_encoding(el, name, &s) < 0)
            return -1;
        if (c < '0' || c > '9')
            return pi_dec__reject(
                el, PI_REJ_INVALID_ID,
                "invalid %s: not a decimal integer (digits only, "
                "no sign or spaces)",
                name);
        if (sig < 19)
            val = val * 10 + (uint64_t)(c - '0');
    }
    if (sig > 19)
        return pi_dec__reject(el, rule->out_of_range,
                              "%s out of range: %zu digits (must be 1 to %lld)",
                              name, sig, (long long)INT64_MAX);
    if (val == 0 || val > (uint64_t)INT64_MAX)
        return pi_dec__reject(el, rule->out_of_range,
                              "%s out of range: %llu (must be 1 to %lld)", name,
                              (unsigned long long)val, (long long)INT64_MAX);
    *out = val;
    return 0;
}

/* id / id_str (or the connection pair) reconciled as CONTRACT §2 says. */
static int decode_id(const elem *el, const fields *f, const id_rule *rule,
                     int64_t *out, id_stats *st)
{
    const char *num_name = pi_dec__field_names[rule->num];
    const char *str_name = pi_dec__field_names[rule->str];
    struct json_object *nv = NULL, *sv = NULL;
    bool has_num = has(f, rule->num, &nv);
    bool has_str = has(f, rule->str, &sv);
    wide num = {false, 0};
    uint64_t val = 0;

    if (!has_num && !has_str)
        return pi_dec__reject(el, PI_REJ_MISSING_FIELD,
                              "missing field %s (neither %s nor %s given)",
                              num_name, num_name, str_name);
    if (has_num && get_num_id(el, nv, num_name, &num) < 0)
        return -1;
    if (has_str && get_str_id(el, sv, rule, &val) < 0)
        return -1;
    if (!has_str) {
        if (num.neg || num.mag == 0 || num.mag > (uint64_t)INT64_MAX)
            return num_out_of_range(el, rule, &num);
        st->single++;
        *out = (int64_t)num.mag;
        return 0;
    }
    if (!has_num) {
        st->single++;
        *out = (int64_t)val;
        return 0;
    }
    /* A producer that went through a double (JavaScript) printed the
     * nearest double: same double, same identifier, id_str being exact. */
    if (num.neg || (num.mag != val && (double)num.mag != (double)val))
        return pi_dec__reject(el, rule->mismatch,
                              "%s %s%llu does not match %s %llu", num_name,
                              num.neg ? "-" : "", (unsigned long long)num.mag,
                              str_name, (unsigned long long)val);
    if (num.mag != val)
        st->repaired++;
    *out = (int64_t)val;
    return 0;
}

/* The lengths tell the four names apart; one memcmp confirms. */
static int match_type(const pi_str *s)
{
    int t;

    switch (s->len) {
    case 7:
        t = PI_TYPE_CONNECT;
        break;
    case 10:
        t = PI_TYPE_DISCONNECT;
        break;
    case 14:
        t = PI_TYPE_FAILED_CONNECT;
        break;
    case 13:
        t = PI_TYPE_DECLARE_ASSET;
        break;
    default:
        return -1;
    }
    return memcmp(type_names[t], s->ptr, s->len) == 0 ? t : -1;
}

static int decode_type(const elem *el, const fields *f, pi_presence_type *out)
{
    struct json_object *v;
    char q[QUOTE_MAX + 4];
    pi_str s = {NULL, 0};

    if (pi_dec__member(el, f, FLD_TYPE, &v) < 0 ||
        get_raw_string(el, v, "type", &s) < 0)
        return -1;
    int t = match_type(&s);
    if (t < 0 && check_encoding(el, "type", &s) < 0)
        return -1;
    if (t < 0)
        return pi_dec__reject(
            el, PI_REJ_UNKNOWN_TYPE,
            "unknown type \"%s\": expected connect, disconnect, "
            "failed_connect or declare_asset",
            pi_dec__quote(q, s.ptr, s.len));
    *out = (pi_presence_type)t;
    return 0;
}

static int decode_reason(const elem *el, const fields *f, pi_str *out)
{
    struct json_object *v;

    if (pi_dec__member(el, f, FLD_REASON, &v) < 0 ||
        get_string(el, v, "reason", out) < 0)
        return -1;
    if (out->len > REASON_MAX)
        return pi_dec__reject(el, PI_REJ_BAD_REASON,
                              "reason too long: %zu bytes (max %d)", out->len,
                              REASON_MAX);
    return 0;
}

static int decode_asset(const elem *el, const fields *f, pi_str *out)
{
    struct json_object *v;

    if (pi_dec__member(el, f, FLD_ASSET, &v) < 0)
        return -1;
    if (v == NULL) {
        out->ptr = NULL;
        out->len = 0;
        return 0;
    }
    if (!json_object_is_type(v, json_type_string))
        return pi_dec__reject_type(el, "asset", "string or null", v);
    if (get_string(el, v, "asset", out) < 0)
        return -1;
    if (out->len == 0)
        return pi_dec__reject(el, PI_REJ_BAD_ASSET, "empty asset");
    if (out->len > ASSET_MAX)
        return pi_dec__reject(el, PI_REJ_BAD_ASSET,
                              "asset too long: %zu bytes (max %d)", out->len,
                              ASSET_MAX);
    return 0;
}

static int decode_time(const elem *el, const fields *f, pi_presence *p)
{
    struct json_object *v;
    char q[QUOTE_MAX + 4];
    pi_str s = {NULL, 0};

    if (pi_dec__member(el, f, FLD_TIME, &v) < 0 ||
        get_raw_string(el, v, "time", &s) < 0)
        return -1;
    if (pi_rfc3339_parse(s.ptr, s.len, &p->time_us, &p->offset_min) == 0)
        return 0;
    if (check_encoding(el, "time", &s) < 0)
        return -1;
    return pi_dec__reject(el, PI_REJ_BAD_TIME,
                          "bad time \"%s\": expected an RFC 3339 date-time",
                          pi_dec__quote(q, s.ptr, s.len));
}

static pi_str arena_str(pi_arena *arena, const pi_str *s)
{
    pi_str out = {NULL, 0};

    if (s->ptr) {
        out.ptr = pi_arena_memdup(arena, s->ptr, s->len);
        out.len = s->len;
    }
    return out;
}

/* Fields are checked in a fixed order; the first failure is the reject. */
void pi_dec__presence(const elem *el, const fields *f)
{
    pi_presence p;
    id_stats st = {0, 0};
    pi_str reason = {NULL, 0}, asset = {NULL, 0};

    if (decode_id(el, f, &ID_RULE, &p.id, &st) < 0 ||
        decode_id(el, f, &CONNECTION_ID_RULE, &p.connection_id, &st) < 0 ||
        decode_type(el, f, &p.type) < 0 || decode_reason(el, f, &reason) < 0 ||
        decode_asset(el, f, &asset) < 0 || decode_time(el, f, &p) < 0)
        return;
    p.reason = arena_str(el->arena, &reason);
    p.asset = arena_str(el->arena, &asset);
    p.element = el->element;
    p.tag = el->tag;
    *pi_dec__push_presence(el->res) = p;
    el->res->ids_repaired += st.repaired;
    el->res->ids_single += st.single;
}

/* f holds the envelope's members, "meta" among them; it is refilled with
 * the payload's. */
