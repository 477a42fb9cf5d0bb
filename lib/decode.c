/* decode.c -- one Kafka message value to normalized presences and rejects */
#include "presence/decode.h"

#include <json-c/json_object.h>
#include <json-c/json_tokener.h>
#include <json-c/linkhash.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_strict.h"
#include "utf8.h"

/* A presence sits at most three levels deep (array, envelope, payload); 32
 * leaves room for nested unknown members and bounds both the tokener's
 * stack and the recursion of json_object_put on hostile input. */
#define DECODE_DEPTH 32
#define REASON_MAX 1024
#define ASSET_MAX 64
#define DETAIL_MAX 256
/* How much of a rejected value a detail quotes. */
#define QUOTE_MAX 40

struct pi_decoder {
    struct json_tokener *tok;
    size_t max_bytes;
    size_t max_elements;
    pi_json_scan scan; /* of the value being decoded */
};

/* Where the outcome of the element being decoded goes. */
typedef struct elem {
    pi_decode_result *res;
    pi_arena *arena;
    uint32_t tag;
    uint32_t element;
} elem;

/* The members the decoder reads, of a presence or of an envelope. */
enum field {
    FLD_ID,
    FLD_ID_STR,
    FLD_CONNECTION_ID,
    FLD_CONNECTION_ID_STR,
    FLD_TYPE,
    FLD_REASON,
    FLD_ASSET,
    FLD_TIME,
    FLD_META,
    FLD_PAYLOAD,
    FLD__COUNT
};

static const char *const field_names[FLD__COUNT] = {
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

/* An object's members by field, found in one pass over its entries. */
typedef struct fields {
    unsigned seen; /* bit per field present, its value possibly JSON null */
    struct json_object *v[FLD__COUNT];
} fields;

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

static const char *const type_names[] = {
    [PI_TYPE_CONNECT] = "connect",
    [PI_TYPE_DISCONNECT] = "disconnect",
    [PI_TYPE_FAILED_CONNECT] = "failed_connect",
    [PI_TYPE_DECLARE_ASSET] = "declare_asset",
};

#define N_TYPES (sizeof(type_names) / sizeof(type_names[0]))

const char *pi_reject_code_name(pi_reject_code code)
{
    return (unsigned)code < PI_REJ__COUNT ? reject_names[code] : "unknown";
}

const char *pi_presence_type_name(pi_presence_type type)
{
    return (unsigned)type < N_TYPES ? type_names[type] : "unknown";
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

static pi_presence *push_presence(pi_decode_result *res)
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
 * numbers and quote() output, so it is one line of ASCII. Returns -1 so
 * that a check can `return reject(...)`. */
__attribute__((format(printf, 3, 4))) static int
reject(const elem *el, pi_reject_code code, const char *fmt, ...)
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
static const char *quote(char *dst, const char *s, size_t len)
{
    size_t n = len < QUOTE_MAX ? len : QUOTE_MAX;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[i] = c >= 0x20 && c < 0x7f && c != '"' ? (char)c : '?';
    }
    strcpy(dst + n, len > n ? "..." : "");
    return dst;
}

static const char *kind(struct json_object *v)
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

static int reject_missing(const elem *el, const char *name)
{
    return reject(el, PI_REJ_MISSING_FIELD, "missing field %s", name);
}

static int reject_type(const elem *el, const char *name, const char *want,
                       struct json_object *v)
{
    return reject(el, PI_REJ_WRONG_TYPE,
                  "wrong type for %s: expected %s, got %s", name, want,
                  kind(v));
}

/* A string value of the right JSON type, not yet known to be valid text.
 * The result points into the json-c object, valid until the tree is put. */
static int get_raw_string(const elem *el, struct json_object *v,
                          const char *name, pi_str *out)
{
    if (!json_object_is_type(v, json_type_string))
        return reject_type(el, name, "string", v);
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
    return reject(el, PI_REJ_BAD_ENCODING, "bad encoding in %s: %s at byte %zu",
                  name, s->ptr[bad] ? "invalid UTF-8" : "U+0000", bad);
}

/* A string value that must be valid text. */
static int get_string(const elem *el, struct json_object *v, const char *name,
                      pi_str *out)
{
    if (get_raw_string(el, v, name, out) < 0)
        return -1;
    return check_encoding(el, name, out);
}

static int match(const char *key, enum field a, int b)
{
    if (strcmp(key, field_names[a]) == 0)
        return (int)a;
    if (b >= 0 && strcmp(key, field_names[b]) == 0)
        return b;
    return -1;
}

/* Which field key names, or -1: at most two compares of short strings. */
static int field_of(const char *key)
{
    switch (key[0]) {
    case 'i':
        return match(key, FLD_ID, FLD_ID_STR);
    case 'c':
        return match(key, FLD_CONNECTION_ID, FLD_CONNECTION_ID_STR);
    case 't':
        return match(key, FLD_TYPE, FLD_TIME);
    case 'r':
        return match(key, FLD_REASON, -1);
    case 'a':
        return match(key, FLD_ASSET, -1);
    case 'm':
        return match(key, FLD_META, -1);
    case 'p':
        return match(key, FLD_PAYLOAD, -1);
    }
    return -1;
}

/* One walk over the members instead of a hash lookup per field: no key is
 * hashed, and the walk costs about what one lookup does. json-c keeps one
 * entry per key (the last one given wins), as lookups would see. */
static void collect(struct json_object *obj, fields *f)
{
    f->seen = 0;
    for (struct lh_entry *e = lh_table_head(json_object_get_object(obj)); e;
         e = lh_entry_next(e)) {
        int i = field_of(lh_entry_k(e));
        if (i >= 0) {
            f->seen |= 1u << i;
            f->v[i] = lh_entry_v(e);
        }
    }
}

/* *v is NULL when absent, as it is for a JSON null: tell them apart by the
 * result. */
static bool has(const fields *f, enum field i, struct json_object **v)
{
    bool seen = (f->seen & (1u << i)) != 0;

    *v = seen ? f->v[i] : NULL;
    return seen;
}

static int member(const elem *el, const fields *f, enum field i,
                  struct json_object **v)
{
    if (has(f, i, v))
        return 0;
    return reject_missing(el, field_names[i]);
}

/* The JSON number form of an identifier. */
static int get_num_id(const elem *el, struct json_object *v, const char *name,
                      wide *out)
{
    if (json_object_is_type(v, json_type_double))
        return reject(el, PI_REJ_WRONG_TYPE,
                      "wrong type for %s: expected integer, got number with "
                      "a fraction or exponent",
                      name);
    if (!json_object_is_type(v, json_type_int))
        return reject_type(el, name, "integer", v);

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
    return reject(el, rule->out_of_range,
                  "%s out of range: %s%s%llu (must be 1 to %lld)",
                  field_names[rule->num], cmp, num->neg ? "-" : "",
                  (unsigned long long)num->mag, (long long)INT64_MAX);
}

/* The string form: decimal digits only (leading zeros allowed, they do not
 * change the value), value in 1 … INT64_MAX. */
static int get_str_id(const elem *el, struct json_object *v,
                      const id_rule *rule, uint64_t *out)
{
    const char *name = field_names[rule->str];
    pi_str s;
    size_t i = 0, sig;
    uint64_t val = 0;

    if (get_raw_string(el, v, name, &s) < 0)
        return -1;
    if (s.len == 0)
        return reject(el, PI_REJ_INVALID_ID, "invalid %s: empty string", name);
    while (i < s.len && s.ptr[i] == '0')
        i++;
    for (sig = 0; i < s.len; i++, sig++) {
        char c = s.ptr[i];
        if ((c < '0' || c > '9') && check_encoding(el, name, &s) < 0)
            return -1;
        if (c < '0' || c > '9')
            return reject(el, PI_REJ_INVALID_ID,
                          "invalid %s: not a decimal integer (digits only, "
                          "no sign or spaces)",
                          name);
        if (sig < 19)
            val = val * 10 + (uint64_t)(c - '0');
    }
    if (sig > 19)
        return reject(el, rule->out_of_range,
                      "%s out of range: %zu digits (must be 1 to %lld)", name,
                      sig, (long long)INT64_MAX);
    if (val == 0 || val > (uint64_t)INT64_MAX)
        return reject(el, rule->out_of_range,
                      "%s out of range: %llu (must be 1 to %lld)", name,
                      (unsigned long long)val, (long long)INT64_MAX);
    *out = val;
    return 0;
}

/* id / id_str (or the connection pair) reconciled as CONTRACT §2 says. */
static int decode_id(const elem *el, const fields *f, const id_rule *rule,
                     int64_t *out, id_stats *st)
{
    const char *num_name = field_names[rule->num];
    const char *str_name = field_names[rule->str];
    struct json_object *nv = NULL, *sv = NULL;
    bool has_num = has(f, rule->num, &nv);
    bool has_str = has(f, rule->str, &sv);
    wide num = {false, 0};
    uint64_t val = 0;

    if (!has_num && !has_str)
        return reject(el, PI_REJ_MISSING_FIELD,
                      "missing field %s (neither %s nor %s given)", num_name,
                      num_name, str_name);
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
        return reject(el, rule->mismatch, "%s %s%llu does not match %s %llu",
                      num_name, num.neg ? "-" : "", (unsigned long long)num.mag,
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
    pi_str s;

    if (member(el, f, FLD_TYPE, &v) < 0 ||
        get_raw_string(el, v, "type", &s) < 0)
        return -1;
    int t = match_type(&s);
    if (t < 0 && check_encoding(el, "type", &s) < 0)
        return -1;
    if (t < 0)
        return reject(el, PI_REJ_UNKNOWN_TYPE,
                      "unknown type \"%s\": expected connect, disconnect, "
                      "failed_connect or declare_asset",
                      quote(q, s.ptr, s.len));
    *out = (pi_presence_type)t;
    return 0;
}

static int decode_reason(const elem *el, const fields *f, pi_str *out)
{
    struct json_object *v;

    if (member(el, f, FLD_REASON, &v) < 0 ||
        get_string(el, v, "reason", out) < 0)
        return -1;
    if (out->len > REASON_MAX)
        return reject(el, PI_REJ_BAD_REASON,
                      "reason too long: %zu bytes (max %d)", out->len,
                      REASON_MAX);
    return 0;
}

static int decode_asset(const elem *el, const fields *f, pi_str *out)
{
    struct json_object *v;

    if (member(el, f, FLD_ASSET, &v) < 0)
        return -1;
    if (v == NULL) {
        out->ptr = NULL;
        out->len = 0;
        return 0;
    }
    if (!json_object_is_type(v, json_type_string))
        return reject_type(el, "asset", "string or null", v);
    if (get_string(el, v, "asset", out) < 0)
        return -1;
    if (out->len == 0)
        return reject(el, PI_REJ_BAD_ASSET, "empty asset");
    if (out->len > ASSET_MAX)
        return reject(el, PI_REJ_BAD_ASSET,
                      "asset too long: %zu bytes (max %d)", out->len,
                      ASSET_MAX);
    return 0;
}

static int decode_time(const elem *el, const fields *f, pi_presence *p)
{
    struct json_object *v;
    char q[QUOTE_MAX + 4];
    pi_str s;

    if (member(el, f, FLD_TIME, &v) < 0 ||
        get_raw_string(el, v, "time", &s) < 0)
        return -1;
    if (pi_rfc3339_parse(s.ptr, s.len, &p->time_us, &p->offset_min) == 0)
        return 0;
    if (check_encoding(el, "time", &s) < 0)
        return -1;
    return reject(el, PI_REJ_BAD_TIME,
                  "bad time \"%s\": expected an RFC 3339 date-time",
                  quote(q, s.ptr, s.len));
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
static void decode_presence(const elem *el, const fields *f)
{
    pi_presence p;
    id_stats st = {0, 0};
    pi_str reason, asset;

    if (decode_id(el, f, &ID_RULE, &p.id, &st) < 0 ||
        decode_id(el, f, &CONNECTION_ID_RULE, &p.connection_id, &st) < 0 ||
        decode_type(el, f, &p.type) < 0 || decode_reason(el, f, &reason) < 0 ||
        decode_asset(el, f, &asset) < 0 || decode_time(el, f, &p) < 0)
        return;
    p.reason = arena_str(el->arena, &reason);
    p.asset = arena_str(el->arena, &asset);
    p.element = el->element;
    p.tag = el->tag;
    *push_presence(el->res) = p;
    el->res->ids_repaired += st.repaired;
    el->res->ids_single += st.single;
}

/* f holds the envelope's members, "meta" among them; it is refilled with
 * the payload's. */
static void decode_envelope(const elem *el, fields *f)
{
    struct json_object *meta = f->v[FLD_META], *event, *payload;

    if (!json_object_is_type(meta, json_type_object)) {
        reject_type(el, "meta", "object", meta);
        return;
    }
    if (!json_object_object_get_ex(meta, "event", &event)) {
        reject_missing(el, "meta.event");
        return;
    }
    if (!json_object_is_type(event, json_type_string)) {
        reject_type(el, "meta.event", "string", event);
        return;
    }
    /* Not stored, so compared as bytes: anything else is another event. */
    if (json_object_get_string_len(event) != 8 ||
        memcmp(json_object_get_string(event), "presence", 8) != 0) {
        el->res->skipped++;
        return;
    }
    if (member(el, f, FLD_PAYLOAD, &payload) < 0)
        return;
    if (!json_object_is_type(payload, json_type_object)) {
        reject_type(el, "payload", "object", payload);
        return;
    }
    collect(payload, f);
    decode_presence(el, f);
}

/* One element: an envelope (it has "meta") or a bare presence. */
static void decode_element(const elem *el, struct json_object *v)
{
    fields f;

    if (!json_object_is_type(v, json_type_object)) {
        reject(el, PI_REJ_NOT_AN_OBJECT,
               "array element %u: expected an object, got %s", el->element,
               kind(v));
        return;
    }
    collect(v, &f);
    if (f.seen & (1u << FLD_META))
        decode_envelope(el, &f);
    else
        decode_presence(el, &f);
}

/* Parse the whole value; on failure record malformed_json and return -1.
 * *out may be NULL on success: the value was JSON null. */
static int parse(pi_decoder *dec, const elem *el, const char *buf, size_t len,
                 struct json_object **out)
{
    struct json_tokener *tok = dec->tok;
    struct json_object *root;
    enum json_tokener_error jerr;
    size_t end;

    *out = NULL;
    json_tokener_reset(tok);
    root = json_tokener_parse_ex(tok, buf, (int)len);
    jerr = json_tokener_get_error(tok);
    end = json_tokener_get_parse_end(tok);
    if (jerr == json_tokener_continue) {
        /* A top-level number or an unfinished value: json-c waits for more
         * input. A NUL byte is how it is told that the input has ended. */
        root = json_tokener_parse_ex(tok, "", 1);
        jerr = json_tokener_get_error(tok);
        end = len;
    }
    if (jerr != json_tokener_success) {
        json_object_put(root);
        return reject(el, PI_REJ_MALFORMED_JSON,
                      "malformed JSON at byte %zu: %s", end,
                      json_tokener_error_desc(jerr));
    }
    if (end < len) {
        json_object_put(root);
        return reject(el, PI_REJ_MALFORMED_JSON,
                      "malformed JSON at byte %zu: data after the JSON value",
                      end);
    }
    *out = root;
    return 0;
}

void pi_decoder_new(pi_decoder **out, size_t max_bytes)
{
    pi_decoder *dec = pi_calloc(1, sizeof(*dec));

    dec->tok = json_tokener_new_ex(DECODE_DEPTH);
    if (dec->tok == NULL) {
        fprintf(stderr, "presence-ingest: out of memory creating a JSON "
                        "tokener\n");
        abort();
    }
    /* Strict: no comments, single quotes, trailing commas or data after the
     * value. Not VALIDATE_UTF8: it fails the whole message, where the
     * contract wants only the element with the bad string rejected. */
    json_tokener_set_flags(dec->tok, JSON_TOKENER_STRICT);
    if (max_bytes == 0)
        max_bytes = PI_DECODE_DEFAULT_MAX_BYTES;
    /* json-c takes an int length, and one more byte may be fed as EOF. */
    dec->max_bytes = max_bytes < (size_t)INT_MAX ? max_bytes : INT_MAX - 1;
    dec->max_elements = PI_DECODE_DEFAULT_MAX_ELEMENTS;
    pi_json_scan_init(&dec->scan);
    *out = dec;
}

void pi_decoder_destroy(pi_decoder *dec)
{
    if (dec == NULL)
        return;
    json_tokener_free(dec->tok);
    pi_json_scan_fini(&dec->scan);
    free(dec);
}

void pi_decoder_set_max_elements(pi_decoder *dec, size_t max_elements)
{
    dec->max_elements =
        max_elements ? max_elements : PI_DECODE_DEFAULT_MAX_ELEMENTS;
}

/* An element whose strings break RFC 8259 in a way json-c accepts. */
static void reject_flaw(const elem *el, const pi_json_flaw *flaw)
{
    if (flaw->what[0] == 'l')
        reject(el, PI_REJ_BAD_ENCODING,
               "bad encoding in a string at byte %zu: %s \\u%04X", flaw->at,
               flaw->what, flaw->code);
    else
        reject(el, PI_REJ_BAD_ENCODING,
               "bad encoding in a string at byte %zu: %s U+%04X", flaw->at,
               flaw->what, flaw->code);
}

size_t pi_decoder_decode(pi_decoder *dec, const char *buf, size_t len,
                         uint32_t tag, pi_decode_result *res, pi_arena *arena)
{
    elem el = {res, arena, tag, 0};
    struct json_object *root;

    if (len == 0) {
        reject(&el, PI_REJ_EMPTY, "empty message value");
        return 1;
    }
    if (len > dec->max_bytes) {
        reject(&el, PI_REJ_TOO_LARGE,
               "message value of %zu bytes exceeds the maximum of %zu", len,
               dec->max_bytes);
        return 1;
    }
    /* Before json-c builds a tree: an array too long for its memory. */
    pi_json_scan_run(&dec->scan, buf, len, dec->max_elements);
    if (dec->scan.elements > dec->max_elements) {
        reject(&el, PI_REJ_TOO_LARGE,
               "array of %zu elements exceeds the maximum of %zu",
               dec->scan.elements, dec->max_elements);
        return 1;
    }
    if (parse(dec, &el, buf, len, &root) < 0)
        return 1;
    if (dec->scan.syntax_at != SIZE_MAX) {
        json_object_put(root);
        reject(&el, PI_REJ_MALFORMED_JSON, "malformed JSON at byte %zu: %s",
               dec->scan.syntax_at, dec->scan.syntax_what);
        return 1;
    }
    /* The string flaws, in element order (indices: no flaw list at all is
     * a NULL array). */
    const pi_json_scan *scan = &dec->scan;
    size_t next_flaw = 0;
    if (!json_object_is_type(root, json_type_array)) {
        if (scan->n_flaws > 0)
            reject_flaw(&el, &scan->flaws[0]);
        else if (json_object_is_type(root, json_type_object))
            decode_element(&el, root);
        else
            reject(&el, PI_REJ_NOT_AN_OBJECT,
                   "expected an object or an array, got %s", kind(root));
        json_object_put(root);
        return 1;
    }

    size_t n = json_object_array_length(root);
    for (size_t i = 0; i < n; i++) {
        el.element = (uint32_t)i;
        if (next_flaw < scan->n_flaws && scan->flaws[next_flaw].element == i)
            reject_flaw(&el, &scan->flaws[next_flaw++]);
        else
            decode_element(&el, json_object_array_get_idx(root, i));
    }
    json_object_put(root);
    return n;
}
