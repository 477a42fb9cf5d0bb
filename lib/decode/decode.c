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

#include "decode_int.h"
#include "json_strict.h"

struct pi_decoder {
    struct json_tokener *tok;
    size_t max_bytes;
    size_t max_elements;
    size_t max_depth;
    size_t max_memory;
    pi_json_scan scan; /* of the value being decoded */
};

static int match(const char *key, enum field a, int b)
{
    if (strcmp(key, pi_dec__field_names[a]) == 0)
        return (int)a;
    if (b >= 0 && strcmp(key, pi_dec__field_names[b]) == 0)
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

static void decode_envelope(const elem *el, fields *f)
{
    struct json_object *meta = f->v[FLD_META], *event, *payload;

    if (!json_object_is_type(meta, json_type_object)) {
        pi_dec__reject_type(el, "meta", "object", meta);
        return;
    }
    if (!json_object_object_get_ex(meta, "event", &event)) {
        pi_dec__reject_missing(el, "meta.event");
        return;
    }
    if (!json_object_is_type(event, json_type_string)) {
        pi_dec__reject_type(el, "meta.event", "string", event);
        return;
    }
    /* Not stored, so compared as bytes: anything else is another event. */
    if (json_object_get_string_len(event) != 8 ||
        memcmp(json_object_get_string(event), "presence", 8) != 0) {
        el->res->skipped++;
        return;
    }
    if (pi_dec__member(el, f, FLD_PAYLOAD, &payload) < 0)
        return;
    if (!json_object_is_type(payload, json_type_object)) {
        pi_dec__reject_type(el, "payload", "object", payload);
        return;
    }
    collect(payload, f);
    pi_dec__presence(el, f);
}

/* One element: an envelope (it has "meta") or a bare presence. */
static void decode_element(const elem *el, struct json_object *v)
{
    fields f;

    if (!json_object_is_type(v, json_type_object)) {
        pi_dec__reject(el, PI_REJ_NOT_AN_OBJECT,
                       "array element %u: expected an object, got %s",
                       el->element, pi_dec__kind(v));
        return;
    }
    collect(v, &f);
    if (f.seen & (1u << FLD_META))
        decode_envelope(el, &f);
    else
        pi_dec__presence(el, &f);
}

/* Parse the whole value; on failure record malformed_json (too_large for
 * nesting deeper than max_depth) and return -1.
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
    if (jerr == json_tokener_error_depth) {
        json_object_put(root);
        return pi_dec__reject(el, PI_REJ_TOO_LARGE,
                              "nesting deeper than the maximum of %zu levels "
                              "at byte %zu",
                              dec->max_depth, end);
    }
    if (jerr != json_tokener_success) {
        json_object_put(root);
        return pi_dec__reject(el, PI_REJ_MALFORMED_JSON,
                              "malformed JSON at byte %zu: %s", end,
                              json_tokener_error_desc(jerr));
    }
    if (end < len) {
        json_object_put(root);
        return pi_dec__reject(
            el, PI_REJ_MALFORMED_JSON,
            "malformed JSON at byte %zu: data after the JSON value", end);
    }
    *out = root;
    return 0;
}

/* json-c's depth counts values: the top-level one is at depth 1, a member
 * or element of it at 2, and so on, as max_depth does. */
static void new_tokener(pi_decoder *dec)
{
    if (dec->tok)
        json_tokener_free(dec->tok);
    dec->tok = json_tokener_new_ex((int)dec->max_depth);
    if (dec->tok == NULL) {
        fprintf(stderr, "presence-ingest: out of memory creating a JSON "
                        "tokener\n");
        abort();
    }
    /* Strict: no comments, single quotes, trailing commas or data after the
     * value. Not VALIDATE_UTF8: it fails the whole message, where the
     * contract wants only the element with the bad string rejected. */
    json_tokener_set_flags(dec->tok, JSON_TOKENER_STRICT);
}

void pi_decoder_new(pi_decoder **out, size_t max_bytes)
{
    pi_decoder *dec = pi_calloc(1, sizeof(*dec));

    dec->max_depth = PI_DECODE_DEFAULT_MAX_DEPTH;
    new_tokener(dec);
    if (max_bytes == 0)
        max_bytes = PI_DECODE_DEFAULT_MAX_BYTES;
    /* json-c takes an int length, and one more byte may be fed as EOF. */
    dec->max_bytes = max_bytes < (size_t)INT_MAX ? max_bytes : INT_MAX - 1;
    dec->max_elements = PI_DECODE_DEFAULT_MAX_ELEMENTS;
    pi_decoder_set_max_memory(dec, 0);
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

void pi_decoder_set_max_depth(pi_decoder *dec, size_t max_depth)
{
    if (max_depth == 0)
        max_depth = PI_DECODE_DEFAULT_MAX_DEPTH;
    if (max_depth > PI_DECODE_MAX_DEPTH_LIMIT)
        max_depth = PI_DECODE_MAX_DEPTH_LIMIT;
    if (max_depth != dec->max_depth) {
        dec->max_depth = max_depth;
        new_tokener(dec);
    }
}

void pi_decoder_set_max_memory(pi_decoder *dec, size_t max_memory)
{
    dec->max_memory =
        max_memory ? max_memory : PI_DECODE_MEMORY_PER_BYTE * dec->max_bytes;
}

/* An element whose strings break RFC 8259 in a way json-c accepts. */
static void reject_flaw(const elem *el, const pi_json_flaw *flaw)
{
    if (flaw->what[0] == 'l')
        pi_dec__reject(el, PI_REJ_BAD_ENCODING,
                       "bad encoding in a string at byte %zu: %s \\u%04X",
                       flaw->at, flaw->what, flaw->code);
    else
        pi_dec__reject(el, PI_REJ_BAD_ENCODING,
                       "bad encoding in a string at byte %zu: %s U+%04X",
                       flaw->at, flaw->what, flaw->code);
}

size_t pi_decoder_decode(pi_decoder *dec, const char *buf, size_t len,
                         uint32_t tag, pi_decode_result *res, pi_arena *arena)
{
    elem el = {res, arena, tag, 0};
    struct json_object *root;

    if (len == 0) {
        pi_dec__reject(&el, PI_REJ_EMPTY, "empty message value");
        return 1;
    }
    if (len > dec->max_bytes) {
        pi_dec__reject(&el, PI_REJ_TOO_LARGE,
                       "message value of %zu bytes exceeds the maximum of %zu",
                       len, dec->max_bytes);
        return 1;
    }
    /* Before json-c builds a tree: an array too long, or a tree too big. */
    pi_json_limits lim = {dec->max_elements, dec->max_memory, dec->max_depth};
    pi_json_scan_run(&dec->scan, buf, len, &lim);
    if (dec->scan.elements > dec->max_elements) {
        pi_dec__reject(&el, PI_REJ_TOO_LARGE,
                       "array of %zu elements exceeds the maximum of %zu",
                       dec->scan.elements, dec->max_elements);
        return 1;
    }
    if (dec->scan.memory > dec->max_memory) {
        pi_dec__reject(&el, PI_REJ_TOO_LARGE,
                       "decoding would take up to %zu bytes of memory, more "
                       "than the maximum of %zu",
                       dec->scan.memory, dec->max_memory);
        return 1;
    }
    if (parse(dec, &el, buf, len, &root) < 0)
        return 1;
    if (dec->scan.syntax_at != SIZE_MAX) {
        json_object_put(root);
        pi_dec__reject(&el, PI_REJ_MALFORMED_JSON,
                       "malformed JSON at byte %zu: %s", dec->scan.syntax_at,
                       dec->scan.syntax_what);
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
            pi_dec__reject(&el, PI_REJ_NOT_AN_OBJECT,
                           "expected an object or an array, got %s",
                           pi_dec__kind(root));
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
