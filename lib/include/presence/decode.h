/* decode.h -- turn one Kafka message value into normalized presences and rejects
 *
 * Accepted input (CONTRACT.md §1-2). One message value is one of:
 *   1. a presence object {"id":…, "id_str":"…", "connection_id":…,
 *      "connection_id_str":"…", "type":"…", "reason":"…", "asset":"…"|null,
 *      "time":"RFC 3339"};
 *   2. an envelope {"meta":{"event":"presence",…}, "payload":{<presence>}};
 *      an envelope whose meta.event is anything else is skipped (counted);
 *   3. an array whose elements are (1) or (2); each element is decoded on its
 *      own and carries its index as `element` (0 for a non-array value).
 *
 * Every rejected element yields one pi_reject with a stable code (below) and a
 * one-line detail naming the field. Whole-message failures (empty, too_large,
 * malformed_json, not_an_object) yield one reject with element 0.
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
    pi_str reason;       /* verbatim, ≤ 1024 bytes, valid UTF-8 */
    pi_str asset;        /* NULL or 1 … 64 bytes, valid UTF-8 */
    int64_t time_us;     /* microseconds since 1970-01-01T00:00:00Z */
    int16_t offset_min;  /* the original UTC offset, in minutes */
    uint32_t element;    /* index in the array, 0 for a non-array value */
    uint32_t tag;        /* the caller's tag passed to pi_decoder_decode */
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

/* Create a decoder that refuses values larger than max_bytes (too_large).
 * One decoder per thread; it reuses one json_tokener. Never fails (aborts on
 * out-of-memory). */
void pi_decoder_new(pi_decoder **out, size_t max_bytes);
void pi_decoder_destroy(pi_decoder *dec);

/* Decode one message value (buf, len; not NUL-terminated), appending its
 * presences and rejects to res, each stamped with tag. Strings are copied
 * into arena. Returns the number of elements the value held (presences +
 * rejects + skipped it added). Pure: no I/O, no global state. */
size_t pi_decoder_decode(pi_decoder *dec, const char *buf, size_t len,
                         uint32_t tag, pi_decode_result *res, pi_arena *arena);

/* Parse an RFC 3339 date-time as CONTRACT §2 says (strict, calendar-valid,
 * leap second as the next second, fraction truncated to microseconds).
 * On success returns 0 and sets *time_us and *offset_min; else -1. */
int pi_rfc3339_parse(const char *s, size_t len, int64_t *time_us,
                     int16_t *offset_min);

#endif
