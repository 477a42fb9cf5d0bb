/* utf8.c -- strict UTF-8: one character's length, the first bad byte */
#include "presence/utf8.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

static bool has_zero_byte(uint64_t w)
{
    return ((w - 0x0101010101010101ull) & ~w & 0x8080808080808080ull) != 0;
}

size_t pi_utf8_seq(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xbf;
    size_t n;

    if (c == 0)
        return 0;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4;
    else
        return 0;
    if (avail < n)
        return 0;
    /* The second byte's range rules out overlongs (E0, F0), surrogates
     * (ED) and code points above U+10FFFF (F4). */
    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f;
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    }
    return n;
}

size_t pi_utf8_check(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    while (i < len) {
        uint64_t w;
        if (len - i >= 8) {
            memcpy(&w, s + i, 8);
            if (!(w & 0x8080808080808080ull) && !has_zero_byte(w)) {
                i += 8;
                continue;
            }
        }
        size_t n = pi_utf8_seq(s + i, len - i);
        if (n == 0)
            return i;
        i += n;
    }
    return len;
}
