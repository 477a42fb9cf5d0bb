/* json_strict.c -- one pass over a JSON value for what json-c lets through */
#include "json_strict.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "presence/mem.h"

/* Byte classes outside strings. */
enum {
    OUT_OTHER = 0, /* whitespace */
    OUT_QUOTE,
    OUT_OPEN,
    OUT_CLOSE,
    OUT_COMMA,
    OUT_SUSPECT, /* ' N I . */
    OUT_VALUE    /* part of a number or literal */
};

/* Byte classes inside strings. */
enum { IN_PLAIN = 0, IN_QUOTE, IN_ESCAPE, IN_CONTROL };

static unsigned char out_class[256];
static unsigned char in_class[256];

__attribute__((constructor)) static void init_classes(void)
{
    for (int c = 0; c < 256; c++) {
        out_class[c] = OUT_VALUE;
        in_class[c] = c < 0x20 ? IN_CONTROL : IN_PLAIN;
    }
    out_class[' '] = out_class['\t'] = out_class['\n'] = out_class['\r'] =
        OUT_OTHER;
    out_class[':'] = OUT_OTHER;
    out_class['"'] = OUT_QUOTE;
    out_class['['] = out_class['{'] = OUT_OPEN;
    out_class[']'] = out_class['}'] = OUT_CLOSE;
    out_class[','] = OUT_COMMA;
    out_class['\''] = out_class['N'] = out_class['I'] = out_class['.'] =
        OUT_SUSPECT;
    in_class['"'] = IN_QUOTE;
    in_class['\\'] = IN_ESCAPE;
}

void pi_json_scan_init(pi_json_scan *scan)
{
    scan->syntax_at = SIZE_MAX;
    scan->syntax_what = NULL;
    scan->elements = 0;
    scan->memory = 0;
    scan->max_flaws = 0;
    scan->flaws = NULL;
    scan->n_flaws = scan->cap_flaws = 0;
}

void pi_json_scan_fini(pi_json_scan *scan)
{
    free(scan->flaws);
    pi_json_scan_init(scan);
}

static void add_flaw(pi_json_scan *scan, uint32_t element, size_t at,
                     const char *what, unsigned code)
{
    if (scan->n_flaws && scan->flaws[scan->n_flaws - 1].element == element)
        return; /* one per element: the first */
    if (element >= scan->max_flaws)
        return; /* the array is too long to be decoded anyway */
    pi_grow((void **)&scan->flaws, &scan->cap_flaws, scan->n_flaws + 1,
            sizeof(*scan->flaws));
    scan->flaws[scan->n_flaws++] = (pi_json_flaw){element, at, what, code};
}

static void syntax_flaw(pi_json_scan *scan, size_t at, const char *what)
{
    if (scan->syntax_at == SIZE_MAX) {
        scan->syntax_at = at;
        scan->syntax_what = what;
    }
}

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* Non-zero when a byte of w is below 0x20, a quote or a backslash: the
 * bytes of a string that need a look (SWAR, eight at a time). */
static uint64_t special_in_string(uint64_t w)
{
    uint64_t q = w ^ (ONES * '"'), b = w ^ (ONES * '\\');

    return (((w - ONES * 0x20) & ~w) | ((q - ONES) & ~q) | ((b - ONES) & ~b)) &
           HIGHS;
}

static int hex4(const unsigned char *s, size_t avail)
{
    int v = 0;

    if (avail < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        unsigned char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* The string starting after the quote at s[i]; returns the index after its
 * closing quote (or len). */
static size_t scan_string(pi_json_scan *scan, const unsigned char *s,
                          size_t len, size_t i, uint32_t element)
{
    size_t high_at = 0; /* a high surrogate escape waiting for its pair */
    int high = -1;

    while (i < len) {
        if (high < 0) {
            uint64_t w;
            while (len - i >= 8) {
                memcpy(&w, s + i, 8);
                if (special_in_string(w))
                    break;
                i += 8;
            }
            if (i >= len)
                break;
        }
        unsigned char cls = in_class[s[i]];
        if (cls == IN_PLAIN) {
            i++;
            if (high >= 0) {
                add_flaw(scan, element, high_at, "lone surrogate",
                         (unsigned)high);
                high = -1;
            }
            continue;
        }
        if (cls == IN_CONTROL) {
            add_flaw(scan, element, i, "raw control character", s[i]);
            i++;
            continue;
        }
        if (cls == IN_QUOTE) {
            if (high >= 0)
                add_flaw(scan, element, high_at, "lone surrogate",
                         (unsigned)high);
            return i + 1;
        }
        /* An escape: only \uXXXX needs a look. */
        if (i + 1 >= len)
            return len;
        if (s[i + 1] != 'u') {
            if (high >= 0)
                add_flaw(scan, element, high_at, "lone surrogate",
                         (unsigned)high);
            high = -1;
            i += 2;
            continue;
        }
        int v = hex4(s + i + 2, len - i - 2);
        if (v >= 0xdc00 && v <= 0xdfff) {
            if (high < 0)
                add_flaw(scan, element, i, "lone surrogate", (unsigned)v);
            high = -1;
        } else if (v >= 0xd800 && v <= 0xdbff) {
            if (high >= 0)
                add_flaw(scan, element, high_at, "lone surrogate",
                         (unsigned)high);
            high = v;
            high_at = i;
        } else if (high >= 0) {
            add_flaw(scan, element, high_at, "lone surrogate", (unsigned)high);
            high = -1;
        }
        i += v >= 0 ? 6 : 2;
    }
    return len;
}

/* Non-zero when a byte of w is below 0x20. */
static uint64_t control_in(uint64_t w)
{
    return (w - ONES * 0x20) & ~w & HIGHS;
}

/* json-c's table of an object of `members` members: it starts at 16 entries
 * and doubles before an insert finds it 66 % full; while it doubles, the
 * old table and the new one are both allocated. What it takes beyond the
 * 16 entries PI_JSON_MEM_OBJECT counts, at that peak. */
static size_t table_extra(size_t members)
{
    size_t size = 16;

    if (members == 0)
        return 0;
    while ((members - 1) * 100 >= size * 66)
        size *= 2;
    return size > 16 ? PI_JSON_MEM_ENTRY * (size + size / 2 - 16) : 0;
}

/* What json-c spends on a value whose container is open[depth - 1]: a
 * slot in an array's pointer list; nothing in an object (its entry is in
 * the table); a slot too when the container is too deep to be tracked. */
static size_t slot_cost(const pi_json_scan *scan, unsigned depth)
{
    if (depth == 0)
        return 0;
    if (depth > PI_JSON_SCAN_STACK || !scan->open[depth - 1].object)
        return PI_JSON_MEM_SLOT;
    return 0;
}

/* Whether the value can hold anything the full scan looks for: a byte below
 * 0x20, a quote, N, I or a backslash (every flaw needs one of them), enough
 * bytes for more than max_elements elements (each takes two at least), or
 * enough for json-c's tree of it to exceed max_memory (PI_JSON_MEM_PER_BYTE
 * per byte at most). The common message has none, and memchr and a
 * word-wide test are far cheaper than a walk byte by byte. */
static int needs_scan(const char *buf, size_t len, size_t max_elements,
                      size_t max_memory)
{
    size_t i = 0;
    uint64_t w;

    if (len / 2 >= max_elements)
        return 1;
    if (max_memory < PI_JSON_MEM_FIXED ||
        len > (max_memory - PI_JSON_MEM_FIXED) / PI_JSON_MEM_PER_BYTE)
        return 1;
    if (memchr(buf, '\\', len) || memchr(buf, '\'', len) ||
        memchr(buf, 'N', len) || memchr(buf, 'I', len))
        return 1;
    for (; len - i >= 8; i += 8) {
        memcpy(&w, buf + i, 8);
        if (control_in(w))
            return 1;
    }
    for (; i < len; i++) {
        if ((unsigned char)buf[i] < 0x20)
            return 1;
    }
    /* '.' not followed by a digit: the only flaw left, rare enough to look
     * for with memchr. */
    for (const char *p = buf; (p = memchr(p, '.', len - (size_t)(p - buf)));
         p++) {
        if (p + 1 == buf + len || p[1] < '0' || p[1] > '9')
            return 1;
    }
    return 0;
}

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* What the memory bound adds up while walking. */
typedef struct mem_acc {
    size_t mem;       /* the PI_JSON_MEM_* costs */
    size_t bytes;     /* of strings (quotes included) and numbers */
    size_t key_bytes; /* of member names */
    size_t longest;   /* token */
    unsigned max_depth;
} mem_acc;

/* The bound, with depth containers still open. */
static size_t mem_total(const pi_json_scan *scan, const mem_acc *a,
                        unsigned depth)
{
    size_t mem = a->mem;

    /* Objects left open: json-c grew their tables before it failed. */
    for (unsigned d = 0; d < depth && d < PI_JSON_SCAN_STACK; d++) {
        if (scan->open[d].object)
            mem += table_extra(scan->open[d].members);
    }
    /* Every byte may be kept (escapes only shrink a string); the tokener's
     * buffer doubles up to the longest token; per open level, the member
     * name held while its value is parsed and an open array's first slots;
     * the parse's own (its locale). */
    return mem + a->bytes + 2 * (a->longest + 8) + a->key_bytes +
           (size_t)a->max_depth * (PI_JSON_MEM_KEY + PI_JSON_MEM_OPEN) +
           PI_JSON_MEM_PARSE;
}

void pi_json_scan_run(pi_json_scan *scan, const char *buf, size_t len,
                      const pi_json_limits *lim)
{
    const unsigned char *s = (const unsigned char *)buf;
    size_t i = 0, commas = 0, scalar_at = 0;
    mem_acc acc = {0, 0, 0, 0, 0};
    unsigned depth = 0;
    bool top_array = false, any = false, in_scalar = false, counted = false;

    scan->syntax_at = SIZE_MAX;
    scan->syntax_what = NULL;
    scan->n_flaws = 0;
    scan->elements = 1;
    scan->memory = 0;
    scan->max_flaws = lim->max_elements;
    if (!needs_scan(buf, len, lim->max_elements, lim->max_memory))
        return; /* no flaw, at most max_elements elements, small enough */
    while (i < len && out_class[s[i]] == OUT_OTHER)
        i++;
    top_array = i < len && s[i] == '[';
    while (i < len) {
        unsigned char cls = out_class[s[i]];
        if (in_scalar && cls < OUT_SUSPECT) {
            /* A number or literal ends: json-c keeps its text while
             * parsing it (a double's for good). */
            size_t n = i - scalar_at;
            acc.bytes += n;
            acc.longest = n > acc.longest ? n : acc.longest;
            in_scalar = false;
        }
        switch (cls) {
        case OUT_OTHER:
            i++;
            break;
        case OUT_QUOTE: {
            size_t at = i, n;
            any |= depth == 1;
            i = scan_string(scan, s, len, i + 1,
                            top_array ? (uint32_t)commas : 0);
            n = i - at;
            acc.bytes += n;
            acc.longest = n > acc.longest ? n : acc.longest;
            size_t j = i;
            while (j < len && is_space(s[j]))
                j++;
            if (j < len && s[j] == ':') {
                /* A member name: json-c copies it (and holds one more
                 * copy per open level while the value is parsed). */
                acc.key_bytes += n;
                acc.mem += PI_JSON_MEM_KEY;
                if (depth > PI_JSON_SCAN_STACK)
                    acc.mem += PI_JSON_MEM_MEMBER_MAX;
                else if (depth > 0 && scan->open[depth - 1].object)
                    scan->open[depth - 1].members++;
            } else {
                acc.mem += PI_JSON_MEM_STRING + slot_cost(scan, depth);
            }
            break;
        }
        case OUT_OPEN:
            any |= depth == 1;
            if (depth >= lim->max_depth && !counted) {
                /* json-c stops here at the latest (this container is a
                 * value deeper than max_depth): it allocates nothing
                 * past this byte. */
                scan->memory = mem_total(scan, &acc, depth);
                counted = true;
            }
            acc.mem += (s[i] == '{' ? PI_JSON_MEM_OBJECT : PI_JSON_MEM_ARRAY) +
                       slot_cost(scan, depth);
            if (depth < PI_JSON_SCAN_STACK) {
                scan->open[depth].object = s[i] == '{';
                scan->open[depth].members = 0;
            }
            depth++;
            acc.max_depth = depth > acc.max_depth ? depth : acc.max_depth;
            i++;
            break;
        case OUT_CLOSE:
            if (depth > 0) {
                depth--;
                if (depth < PI_JSON_SCAN_STACK && scan->open[depth].object)
                    acc.mem += table_extra(scan->open[depth].members);
            }
            i++;
            break;
        case OUT_COMMA:
            commas += depth == 1;
            i++;
            break;
        default:
            /* OUT_SUSPECT or OUT_VALUE: a byte of a number or literal. */
            if (cls == OUT_SUSPECT) {
                if (s[i] == '\'')
                    syntax_flaw(scan, i, "single quote outside a string");
                else if (s[i] == 'N' || s[i] == 'I')
                    syntax_flaw(scan, i,
                                "NaN and Infinity are not JSON numbers");
                else if (i + 1 >= len || s[i + 1] < '0' || s[i + 1] > '9')
                    syntax_flaw(scan, i,
                                "digit expected after the decimal point");
            }
            if (!in_scalar) {
                in_scalar = true;
                scalar_at = i;
                acc.mem += PI_JSON_MEM_SCALAR + slot_cost(scan, depth);
            }
            any |= depth == 1;
            i++;
            break;
        }
    }
    if (in_scalar) {
        acc.bytes += i - scalar_at;
        acc.longest = i - scalar_at > acc.longest ? i - scalar_at : acc.longest;
    }
    if (!counted)
        scan->memory = mem_total(scan, &acc, depth);
    scan->elements = top_array ? (any ? commas + 1 : 0) : 1;
}
