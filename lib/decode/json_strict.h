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
 *
 * And it bounds what json-c (0.16, x86-64, glibc) allocates to parse the
 * value, from what the value holds, before json-c allocates any of it:
 * `memory` is the sum of the PI_JSON_MEM_* costs below over its objects,
 * arrays, member names, strings and numbers or literals, plus its string
 * and number bytes, the tokener's buffer (twice the longest token) and the
 * member names json-c holds while their values are parsed. The costs are
 * malloc chunk sizes measured with a counting allocator
 * (tests/bench/bench_decode_memory prints them; tests/unit/test_json_strict
 * checks the bound against the measured peak), rounded up. `memory` is
 * computed when it could exceed max_memory; else it is 0: no value of len
 * bytes costs more than PI_JSON_MEM_PER_BYTE * len + PI_JSON_MEM_FIXED.
 *
 * The walk byte by byte only happens when a quick look finds a byte that
 * can start a flaw, room for more than max_elements elements, or a value
 * long enough to exceed max_memory. It is iterative (no recursion at any
 * depth). Pure and allocation-free apart from the flaw list, which is
 * reused and holds at most max_elements entries.
 */
#ifndef PRESENCE_JSON_STRICT_H
#define PRESENCE_JSON_STRICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes json-c allocates, measured (malloc chunks, headers included) and
 * rounded up: an object with its 16-entry table (784); an array with its
 * first slots (144); a string value beyond its bytes (80); a member name's
 * copy beyond its bytes (24-32); a number or literal (an integer 64, a
 * double 96 with its text; null allocates nothing); an array element's
 * slot, doubling and realloc's copy included (8 per element, 24 at the
 * peak of a copy); a table entry (40, of tables past 16 entries, counted at
 * the peak of a resize: old and new). A member of an object nested deeper
 * than the tracked PI_JSON_SCAN_STACK levels gets the most a table entry
 * can cost per member (4.55 entries: 182). Per level of nesting, while it
 * is open: an array's first 32 slots (272, shrunk to fit when it closes)
 * and the copy of the member name whose value is being parsed. Per parse:
 * json-c's copy of the locale (2 × 240). */
#define PI_JSON_MEM_OBJECT 800
#define PI_JSON_MEM_ARRAY 160
#define PI_JSON_MEM_STRING 80
#define PI_JSON_MEM_KEY 32
#define PI_JSON_MEM_SCALAR 96
#define PI_JSON_MEM_SLOT 24
#define PI_JSON_MEM_ENTRY 40
#define PI_JSON_MEM_MEMBER_MAX 184
#define PI_JSON_MEM_OPEN 272
#define PI_JSON_MEM_PARSE 512
/* No value costs more than PER_BYTE per byte plus FIXED. Per byte of its
 * own, the dearest item is an unclosed '{' in an array (json-c refuses
 * "{{" at once, but the count does not know): 800 + 24, and 32 + 272 for
 * the level it opens, 1 128; a member costs at most (32 + 184) / 3 + 2, a
 * number 96 + 24 + 1, a string (80 + 24) / 2 + 1; the tokener's buffer
 * adds 2 per byte and 16, the parse 512. (fuzz_decode checks it.) */
#define PI_JSON_MEM_PER_BYTE 1280
#define PI_JSON_MEM_FIXED 1024
/* Levels of nesting whose containers the scan tracks one by one. */
#define PI_JSON_SCAN_STACK 64

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
    size_t memory;           /* bound on json-c's bytes; 0: not computed */
    pi_json_flaw *flaws;     /* in element order */
    size_t n_flaws, cap_flaws;
    size_t max_flaws; /* flaws of elements below this one only */
    struct {
        uint32_t members; /* so far, of an object */
        bool object;
    } open[PI_JSON_SCAN_STACK]; /* the containers open while walking */
} pi_json_scan;

void pi_json_scan_init(pi_json_scan *scan);
void pi_json_scan_fini(pi_json_scan *scan);

/* The decoder's limits the scan works to. max_depth: containers nested
 * deeper stop json-c, so the memory bound stops counting at the first of
 * them (json-c allocates nothing past it). */
typedef struct pi_json_limits {
    size_t max_elements;
    size_t max_memory;
    size_t max_depth;
} pi_json_limits;

/* Scan buf[0, len). The flaws are only meaningful for a value json-c
 * accepts; on other input the scan is harmless (bounded, no read past len)
 * and `memory` still bounds what json-c allocates before it fails. */
void pi_json_scan_run(pi_json_scan *scan, const char *buf, size_t len,
                      const pi_json_limits *lim);

#endif
