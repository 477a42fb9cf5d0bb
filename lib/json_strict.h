/* json_strict.h -- what RFC 8259 forbids and json-c's strict mode lets through
 *
 * json-c (0.16, JSON_TOKENER_STRICT) still accepts 'single-quoted' member
 * names, NaN / Infinity / -Infinity, numbers ending in '.', raw control
 * characters (U+0000 … U+001F) inside strings, and decodes a lone surrogate
 * escape (\uD800 without a following \uDC00 … \uDFFF, or a low one alone)
 * as U+FFFD, silently changing the data. One pass over the raw bytes finds
 * them, so that the decoder can refuse what json-c would accept:
 *
 *   - outside strings: the first of ', NaN, Infinity or a '.' not followed
 *     by a digit is a syntax flaw (the decoder: malformed_json);
 *   - inside strings (member names included): a raw control character or a
 *     lone surrogate escape is a string flaw of the top-level array element
 *     it sits in (element 0 for a non-array value; the decoder: bad_encoding
 *     for that element only), at most one recorded per element.
 *
 * The scan also counts the top-level array's elements, so that an array
 * with too many of them is refused before json-c builds a tree of it:
 * `elements` is exact when above max_elements, else it may say 1.
 * The walk byte by byte only happens when a quick look finds a byte that
 * can start a flaw, or room for more than max_elements elements.
 * Pure and allocation-free apart from the flaw list, which is reused.
 */
#ifndef PRESENCE_JSON_STRICT_H
#define PRESENCE_JSON_STRICT_H

#include <stddef.h>
#include <stdint.h>

/* One string flaw: in which element, at which byte of the value, what. */
typedef struct pi_json_flaw {
    uint32_t element;
    size_t at;
    const char *what; /* static: "raw control character" or "lone surrogate" */
    unsigned code;    /* the character, or the surrogate escape's value */
} pi_json_flaw;

typedef struct pi_json_scan {
    size_t syntax_at;        /* SIZE_MAX: no syntax flaw */
    const char *syntax_what; /* static text */
    size_t elements;         /* top-level array elements; 1 for an object */
    pi_json_flaw *flaws;     /* in element order */
    size_t n_flaws, cap_flaws;
} pi_json_scan;

void pi_json_scan_init(pi_json_scan *scan);
void pi_json_scan_fini(pi_json_scan *scan);

/* Scan buf[0, len). The result is only meaningful for a value json-c
 * accepts; on other input it is harmless (bounded, no read past len). */
void pi_json_scan_run(pi_json_scan *scan, const char *buf, size_t len,
                      size_t max_elements);

#endif
