/* test_lines.c -- load's line reader: lines, "\r\n", the last line, lines
 * too long (in the buffer or not), fed whole and in pieces */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "presence/lines.h"

/* What the reader returned, one item per line: "L:<bytes>" for a line,
 * "T<total>:<first bytes>" for one too long, '|' between them. */
static void read_all(const char *in, size_t max, size_t chunk, size_t piece,
                     char *out, size_t cap)
{
    size_t len = strlen(in), at = 0, o = 0;
    int64_t number = 0;
    pi_lines *lines;
    pi_line line;

    pi_lines_new(&lines, max, chunk);
    out[0] = '\0';
    for (;;) {
        pi_lines_status st = pi_lines_next(lines, &line);
        if (st == PI_LINES_END)
            break;
        if (st == PI_LINES_NEED_INPUT) {
            char *p;
            size_t n;
            pi_lines_space(lines, &p, &n);
            assert_true(n >= 1);
            n = n < piece ? n : piece;
            n = n < len - at ? n : len - at;
            memcpy(p, in + at, n);
            at += n;
            pi_lines_fill(lines, n);
            continue;
        }
        assert_int_equal(line.number, ++number);
        if (st == PI_LINES_LINE)
            assert_int_equal(line.total, line.len);
        else
            assert_int_equal(line.len, max);
        o += (size_t)snprintf(out + o, cap - o, "%s%s%llu:%.*s", o ? "|" : "",
                              st == PI_LINES_LINE ? "L" : "T",
                              (unsigned long long)line.total, (int)line.len,
                              line.ptr);
    }
    assert_int_equal(pi_lines_next(lines, &line), PI_LINES_END);
    pi_lines_destroy(lines);
}

/* The same result whole, byte by byte and in pieces of 3, with the
 * smallest buffer (max + 2) and a large one. */
static void check(const char *in, size_t max, const char *want)
{
    static const size_t pieces[] = {1, 3, 1000000};
    char got[4096];

    for (size_t i = 0; i < 3; i++) {
        read_all(in, max, 0, pieces[i], got, sizeof(got));
        if (strcmp(got, want) != 0)
            fail_msg("'%s' max %zu piece %zu: got '%s', want '%s'", in, max,
                     pieces[i], got, want);
        read_all(in, max, 4096, pieces[i], got, sizeof(got));
        assert_string_equal(got, want);
    }
}

static void test_lines__split(void **state)
{
    (void)state;
    check("", 8, "");
    check("\n", 8, "L0:");
    check("a\nbc\n", 8, "L1:a|L2:bc");
    check("a\nbc", 8, "L1:a|L2:bc");       /* last line without newline */
    check("a\r\nbc\r\n", 8, "L1:a|L2:bc"); /* one "\r" off */
    check("a\r\r\n", 8, "L2:a\r");         /* only one */
    check("a\n\r", 8, "L1:a|L0:");         /* a last "\r" alone */
    check("\n\n", 8, "L0:|L0:");
    check("a\rb\n", 8, "L3:a\rb"); /* "\r" inside is kept */
}

/* max 4: 4 bytes is a line, 5 too long, whether or not "\r" follows and
 * whether or not the rest fits the buffer (6 bytes at the smallest). */
static void test_lines__too_long(void **state)
{
    (void)state;
    check("abcd\n", 4, "L4:abcd");   /* at the bound */
    check("abc\n", 4, "L3:abc");     /* below */
    check("abcde\n", 4, "T5:abcd");  /* above */
    check("abcd\r\n", 4, "L4:abcd"); /* "\r" not counted */
    check("abcde\r\n", 4, "T5:abcd");
    check("abcd", 4, "L4:abcd");
    check("abcde", 4, "T5:abcd");
    check("abcd\r", 4, "L4:abcd");
    check("abcdefghijklmnop\nxy\n", 4, "T16:abcd|L2:xy");
    check("abcdefghijklmnop\r\nxy", 4, "T16:abcd|L2:xy");
    check("abcdefghijklmnop", 4, "T16:abcd");
    check("abcdefghijklmnop\r", 4, "T16:abcd");
    check("a\nabcdefghij\nabcdefghij\nb\n", 4, "L1:a|T10:abcd|T10:abcd|L1:b");
    check("abcdefghij\n\n", 4, "T10:abcd|L0:");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines__split),
        cmocka_unit_test(test_lines__too_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
