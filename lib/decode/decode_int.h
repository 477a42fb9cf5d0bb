/* decode_int.h -- the decoder's internals, shared by its files
 *
 * decode.c owns a message value: its limits, the parse, the strict-JSON
 * flaws, arrays and envelopes; fields.c the field rules of one presence
 * object (CONTRACT §2); result.c the results and the reject details, below
 * both; batch.c collects decoded messages with their provenance.
 * Not a public module.
 */
#ifndef PRESENCE_DECODE_INT_H
#define PRESENCE_DECODE_INT_H

#include <stdint.h>

#include "presence/decode.h"
#include "presence/mem.h"

struct json_object;

/* How much of a rejected value a detail quotes (a buffer for pi_dec__quote
 * holds QUOTE_MAX + 4 bytes). */
#define QUOTE_MAX 40

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

extern const char *const pi_dec__field_names[FLD__COUNT];

/* An object's members by field, found in one pass over its entries. */
typedef struct fields {
    unsigned seen; /* bit per field present, its value possibly JSON null */
    struct json_object *v[FLD__COUNT];
} fields;

/* Record the element as rejected. Every detail is built from field names,
 * numbers and pi_dec__quote() output, so it is one line of ASCII. Returns -1
 * so that a check can `return pi_dec__reject(...)`. */
__attribute__((format(printf, 3, 4))) int
pi_dec__reject(const elem *el, pi_reject_code code, const char *fmt, ...);
int pi_dec__reject_missing(const elem *el, const char *name);
int pi_dec__reject_type(const elem *el, const char *name, const char *want,
                        struct json_object *v);

/* At most QUOTE_MAX bytes of s, printable ASCII on one line, in dst. */
const char *pi_dec__quote(char *dst, const char *s, size_t len);

/* The JSON type of v as a detail names it ("string", "number", …). */
const char *pi_dec__kind(struct json_object *v);

pi_presence *pi_dec__push_presence(pi_decode_result *res);

/* 0 when field i is present in f (*v its value, NULL for JSON null), else
 * the missing_field reject. */
int pi_dec__member(const elem *el, const fields *f, enum field i,
                   struct json_object **v);

/* The presence object whose members f holds: one presence or one reject. */
void pi_dec__presence(const elem *el, const fields *f);

#endif
