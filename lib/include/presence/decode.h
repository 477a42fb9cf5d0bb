/* decode.h -- one Kafka message value to normalized presences and rejects
 *
 * Accepted input (CONTRACT §1-2, docs/contract.md). One message value is:
 *   1. a presence object {"id":…, "id_str":"…", "connection_id":…,
 *      "connection_id_str":"…", "type":"…", "reason":"…", "asset":"…"|null,
 *      "time":"RFC 3339"};
 *   2. an envelope {"meta":{"event":"presence",…}, "payload":{<presence>}};
 *      an envelope whose meta.event is anything else is skipped (counted);
 *   3. an array whose elements are (1) or (2); each element is decoded on its
 *      own and carries its index as `element` (0 for a non-array value).
 *
 * Every element becomes exactly one of: a pi_presence, a pi_reject, or a
 * skip. Whole-message failures (empty, too_large, malformed_json,
 * not_an_object) yield one reject with element 0. The first failing rule
 * is the reject; fields are checked in the order id, connection_id, type,
 * reason, asset, time.
 *
 * Shapes
 *   - An object with a "meta" member is an envelope, any other object a bare
 *     presence. meta not an object → wrong_type "meta"; meta.event missing →
 *     missing_field "meta.event", not a string → wrong_type "meta.event";
 *     meta.event other than "presence" (byte-exact) → skipped, payload not
 *     looked at; payload missing → missing_field "payload", not an object →
 *     wrong_type "payload". A payload is decoded as a bare presence.
 *   - Array element that is not an object (array, number, null, …) →
 *     not_an_object for that element. Empty array → no element, returns 0.
 *   - Top level neither object nor array (also JSON null) → not_an_object.
 *
 * Whole message
 *   - len == 0 → empty (whitespace only is malformed_json).
 *   - len > max_bytes → too_large, without parsing.
 *   - Not one JSON value → malformed_json: "malformed JSON at byte N: <json-c
 *     message>", also for anything but whitespace after the value. The tokener
 * is strict (no comments, trailing commas, single-quoted values, leading
 * zeros). What json-c accepts even then is refused too (json_strict.h):
 * 'single-quoted' member names, NaN, Infinity and "1." → malformed_json
 * "malformed JSON at byte N: …" for the whole message. One leniency is left: a
 * member name cut at an escaped \u0000 ("id\u0000x" is "id").
 *   - A raw control character (U+0000 … U+001F) or a lone surrogate escape
 *     (\uD800 not followed by \uDC00 … \uDFFF, or a low one alone) in any
 *     string of an element, member names and ignored members included →
 *     bad_encoding "bad encoding in a string at byte N: raw control
 *     character U+0001" / "…: lone surrogate \uD800" for that element only
 *     (json-c would store U+FFFD instead: changing data silently is worse
 *     than refusing it).
 *   - An array of more than max_elements elements (default 10 000) →
 *     too_large "array of N elements exceeds the maximum of M", before
 *     json-c builds its tree: one small message of many tiny elements
 *     must not cost memory out of proportion to its size.
 *   - Nesting deeper than max_depth (default 32; the top-level value is at
 *     depth 1, its members or elements at 2, …: a presence needs 2, an
 *     array of envelopes 4) → too_large "nesting deeper than the maximum
 *     of N levels at byte B" (json-c stops there).
 *   - A value whose json-c tree could take more than max_memory bytes
 *     (default 32 × max_bytes; the bound is computed from its contents
 *     before json-c allocates anything, json_strict.h) → too_large
 *     "decoding would take up to N bytes of memory, more than the maximum
 *     of M". json-c's tree takes 7-13 bytes per byte of real presences
 *     but up to 265 for nested arrays of empty objects: max_bytes alone
 *     does not bound it.
 *   The limits are checked in the order max_bytes, max_elements,
 *   max_memory, then nesting (while parsing); the first one exceeded is
 *   the reject.
 *
 * Fields (missing → missing_field "missing field <name>"; wrong JSON type,
 * including null where null is not allowed → wrong_type "wrong type for
 * <name>: expected <type>, got <type>")
 *   - id / id_str, connection_id / connection_id_str: the number must be a
 *     JSON integer (fraction or exponent → wrong_type), the string digits
 *     only (leading zeros allowed; empty, sign, space, … → invalid_id). The
 *     value must be 1 … INT64_MAX (else id_out_of_range /
 *     connection_id_out_of_range; with both forms the string decides). Both
 *     given: equal, or the number is the string's value rounded through an
 *     IEEE-754 double (same double) → the string's value, ids_repaired += 1;
 *     else id_mismatch / connection_id_mismatch. One form only → accepted,
 *     ids_single += 1. Neither → missing_field "id" / "connection_id".
 *   - type: exactly connect | disconnect | failed_connect | declare_asset,
 *     else unknown_type.
 *   - reason: any string up to 1024 bytes (empty too), else bad_reason.
 *   - asset: null, or a string of 1 … 64 bytes (no IMEI check), else
 *     bad_asset.
 *   - time: see pi_rfc3339_parse, else bad_time.
 *   - Every string read (not those of ignored members, which are never
 *     stored) must be valid UTF-8 (RFC 3629: no overlong forms, surrogates
 *     or code points above U+10FFFF) without U+0000, after escapes are
 *     decoded → else bad_encoding, for that element only.
 *   - Unknown members are ignored; a duplicated member: the last one wins.
 *
 * Details are one line of printable ASCII (at most 255 bytes) that name the
 * field; a quoted input value is cut at 40 bytes, odd bytes shown as '?'.
 */
#ifndef PRESENCE_DECODE_H
#define PRESENCE_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "presence/err.h"
#include "presence/mem.h"

typedef enum pi_presence_type {
    PI_TYPE_CONNECT = 0,
    PI_TYPE_DISCONNECT,
    PI_TYPE_FAILED_CONNECT,
    PI_TYPE_DECLARE_ASSET
} pi_presence_type;

/* The type's wire name ("connect", …). */
const char *pi_presence_type_name(pi_presence_type type);

/* Reject codes, stable: operators alert on their names. */
typedef enum pi_reject_code {
    PI_REJ_EMPTY = 0,
    PI_REJ_TOO_LARGE,
    PI_REJ_MALFORMED_JSON,
    PI_REJ_NOT_AN_OBJECT,
    PI_REJ_MISSING_FIELD,
    PI_REJ_WRONG_TYPE,
    PI_REJ_BAD_ENCODING,
    PI_REJ_INVALID_ID,
    PI_REJ_ID_MISMATCH,
    PI_REJ_ID_OUT_OF_RANGE,
    PI_REJ_CONNECTION_ID_MISMATCH,
    PI_REJ_CONNECTION_ID_OUT_OF_RANGE,
    PI_REJ_UNKNOWN_TYPE,
    PI_REJ_BAD_REASON,
    PI_REJ_BAD_ASSET,
    PI_REJ_BAD_TIME,
    PI_REJ_ID_CONFLICT,
    PI_REJ__COUNT
} pi_reject_code;

/* The code's snake_case name ("malformed_json", …). */
const char *pi_reject_code_name(pi_reject_code code);

/* A length-delimited string. ptr == NULL means SQL NULL (only `asset`). */
typedef struct pi_str {
    const char *ptr;
    size_t len;
} pi_str;

/* One normalized presence. Strings live in the arena passed to the decoder. */
typedef struct pi_presence {
    int64_t id;            /* 1 … INT64_MAX */
    int64_t connection_id; /* 1 … INT64_MAX */
    pi_presence_type type;
    pi_str reason;      /* verbatim, ≤ 1024 bytes, valid UTF-8 */
    pi_str asset;       /* NULL or 1 … 64 bytes, valid UTF-8 */
    int64_t time_us;    /* microseconds since 1970-01-01T00:00:00Z */
    int16_t offset_min; /* the original UTC offset, in minutes */
    uint32_t element;   /* index in the array, 0 for a non-array value */
    uint32_t tag;       /* the caller's tag passed to pi_decoder_decode */
} pi_presence;

/* One rejected element. detail lives in the arena. */
typedef struct pi_reject {
    pi_reject_code code;
    uint32_t element;
    uint32_t tag;
    pi_str detail; /* one line, names the field */
} pi_reject;

/* Where decoded output accumulates: caller-owned (init/fini), appended to
 * by every pi_decoder_decode call until pi_decode_result_reset. */
typedef struct pi_decode_result {
    pi_presence *presences;
    size_t n_presences, cap_presences;
    pi_reject *rejects;
    size_t n_rejects, cap_rejects;
    uint64_t skipped;      /* envelopes whose meta.event is not "presence" */
    uint64_t ids_repaired; /* id / connection_id repaired from *_str (double) */
    uint64_t ids_single;   /* id / connection_id given in only one form */
} pi_decode_result;

void pi_decode_result_init(pi_decode_result *res);
void pi_decode_result_reset(pi_decode_result *res);
void pi_decode_result_fini(pi_decode_result *res);

typedef struct pi_decoder pi_decoder;

#define PI_DECODE_DEFAULT_MAX_BYTES (1024 * 1024)
#define PI_DECODE_DEFAULT_MAX_ELEMENTS 10000
#define PI_DECODE_DEFAULT_MAX_DEPTH 32
#define PI_DECODE_MAX_DEPTH_LIMIT 1000
/* The default max_memory is this many bytes per byte of max_bytes (32 MiB
 * for 1 MiB): real presences need 7-14 (bench_decode_memory). */
#define PI_DECODE_MEMORY_PER_BYTE 32

/* Create a decoder that refuses values larger than max_bytes (too_large);
 * 0 means PI_DECODE_DEFAULT_MAX_BYTES, and json-c caps it below INT_MAX.
 * One decoder per thread; it reuses one json_tokener. Never fails (aborts on
 * out-of-memory). Free with pi_decoder_destroy (NULL is a no-op). */
void pi_decoder_new(pi_decoder **out, size_t max_bytes);
void pi_decoder_destroy(pi_decoder *dec);

/* Refuse arrays of more than max_elements elements (too_large, one reject
 * for the whole message, before any tree is built); 0 means
 * PI_DECODE_DEFAULT_MAX_ELEMENTS. */
void pi_decoder_set_max_elements(pi_decoder *dec, size_t max_elements);

/* Refuse values nested deeper than max_depth (too_large); 0 means
 * PI_DECODE_DEFAULT_MAX_DEPTH, more than PI_DECODE_MAX_DEPTH_LIMIT is that
 * limit (json_object_put recurses once per level). */
void pi_decoder_set_max_depth(pi_decoder *dec, size_t max_depth);

/* Refuse values whose json-c tree could take more than max_memory bytes
 * (too_large, before any tree is built); 0 means
 * PI_DECODE_MEMORY_PER_BYTE × the decoder's max_bytes. */
void pi_decoder_set_max_memory(pi_decoder *dec, size_t max_memory);

/* Decode one message value (buf, len; not NUL-terminated), appending its
 * presences and rejects to res, each stamped with tag; ids_repaired and
 * ids_single count stored presences only. reason, asset and reject details
 * are copied into arena (NUL-terminated there, the NUL not counted): they
 * stay valid until the arena is reset, whatever happens to buf. Returns the
 * number of elements the value held (presences + rejects + skipped it
 * added: 1 for a non-array value, the length for an array). Pure: no I/O,
 * no global state. */
size_t pi_decoder_decode(pi_decoder *dec, const char *buf, size_t len,
                         uint32_t tag, pi_decode_result *res, pi_arena *arena);

#endif
