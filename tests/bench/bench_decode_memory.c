/* bench_decode_memory.c -- what json-c allocates per message, and the bound
 *
 * For each shape of message, at about SIZE bytes: the peak of the bytes
 * json-c's tree and tokener take while parsing it (a counting allocator,
 * tests/support/alloc_count), per input byte, and the decoder's bound on
 * it (json_strict.h) computed from the value before parsing; the bound must
 * never be below the peak. Usage: bench_decode_memory [SIZE] (default
 * 1048576). Prints one line per shape.
 */
#include <json-c/json_object.h>
#include <json-c/json_tokener.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_count.h"
#include "decode/json_strict.h"

#define PRESENCE                                                               \
    "{\"id\":461799503595297635,\"id_str\":\"461799503595297635\","            \
    "\"connection_id\":461799503595298293,"                                    \
    "\"connection_id_str\":\"461799503595298293\",\"type\":\"disconnect\","    \
    "\"reason\":\"socket_closed\",\"asset\":\"357322041802978\","              \
    "\"time\":\"2013-06-28T09:46:21+02:00\"}"
#define ENVELOPE                                                               \
    "{\"meta\":{\"account\":\"municio\",\"event\":\"presence\"},"              \
    "\"payload\":" PRESENCE "}"

typedef struct shape {
    const char *name;
    const char *open, *item, *close; /* item repeated, comma-separated */
    int numbered;                    /* item is a printf format of %zu */
} shape;

static const shape shapes[] = {
    {"empty objects [[{},…]]", "[[", "{}", "]]", 0},
    {"empty arrays [[[],…]]", "[[", "[]", "]]", 0},
    {"empty strings [[\"\",…]]", "[[", "\"\"", "]]", 0},
    {"integers [[1,…]]", "[[", "1", "]]", 0},
    {"doubles [[1.5,…]]", "[[", "1.5", "]]", 0},
    {"literals [[true,…]]", "[[", "true", "]]", 0},
    {"members {\"N\":1,…}", "{", "\"%zx\":1", "}", 1},
    {"objects in members [[{\"a\":{}},…]]", "[[", "{\"a\":{}}", "]]", 0},
    {"deep arrays [[[[…30]]],…]", "[",
     "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", "]", 0},
    {"real: presences [P,…]", "[", PRESENCE, "]", 0},
    {"real: envelopes [E,…]", "[", ENVELOPE, "]", 0},
};

static char *build(const shape *sh, size_t size, size_t *len)
{
    size_t cap = size + 256, n = 0;
    char *buf = malloc(cap);

    n += (size_t)snprintf(buf, cap, "%s", sh->open);
    for (size_t i = 0; n + 64 + strlen(sh->item) < size; i++) {
        if (i)
            buf[n++] = ',';
        if (sh->numbered)
            n += (size_t)snprintf(buf + n, cap - n, sh->item, i);
        else
            n += (size_t)snprintf(buf + n, cap - n, "%s", sh->item);
    }
    n += (size_t)snprintf(buf + n, cap - n, "%s", sh->close);
    *len = n;
    return buf;
}

static void one(const char *name, const char *buf, size_t len,
                struct json_tokener *tok, pi_json_scan *scan)
{
    pi_json_limits all = {SIZE_MAX, 0, SIZE_MAX};
    pi_json_scan_run(scan, buf, len, &all);
    json_tokener_reset(tok);
    pi_alloc_count_mark();
    struct json_object *root = json_tokener_parse_ex(tok, buf, (int)len);
    size_t peak = pi_alloc_count_peak();
    if (root == NULL) {
        fprintf(stderr, "%s: not parsed: %s\n", name,
                json_tokener_error_desc(json_tokener_get_error(tok)));
        exit(1);
    }
    json_object_put(root);
    printf("%-36s %8zu bytes  peak %10zu B = %6.1f B/byte  bound %10zu B = "
           "%5.2f x peak%s\n",
           name, len, peak, (double)peak / (double)len, scan->memory,
           (double)scan->memory / (double)peak,
           scan->memory < peak ? "  BOUND BELOW PEAK" : "");
    if (scan->memory < peak)
        exit(1);
}

int main(int argc, char **argv)
{
    size_t size = argc > 1 ? strtoull(argv[1], NULL, 10) : 1048576;
    struct json_tokener *tok = json_tokener_new_ex(1000);
    pi_json_scan scan;

    if (!pi_alloc_count_available()) {
        fprintf(stderr, "bench_decode_memory: no counting allocator in this "
                        "build (sanitizer)\n");
        return 2;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    pi_json_scan_init(&scan);
    one("real: one presence", PRESENCE, strlen(PRESENCE), tok, &scan);
    one("real: one envelope", ENVELOPE, strlen(ENVELOPE), tok, &scan);
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        size_t len;
        char *buf = build(&shapes[i], size, &len);
        one(shapes[i].name, buf, len, tok, &scan);
        free(buf);
    }
    pi_json_scan_fini(&scan);
    json_tokener_free(tok);
    return 0;
}
