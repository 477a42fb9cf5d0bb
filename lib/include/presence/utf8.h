/* utf8.h -- strict UTF-8 (RFC 3629) for the decoder and the writer
 *
 * Valid means: no overlong forms, no surrogates (U+D800 … U+DFFF), nothing
 * above U+10FFFF, no truncated sequence, and no U+0000 (PostgreSQL text
 * cannot hold it). One definition for every string that reaches a row:
 * the decoder checks the fields it stores, the writer cleans what the
 * decoder did not vouch for (topic names, details).
 */
#ifndef PRESENCE_UTF8_H
#define PRESENCE_UTF8_H

#include <stddef.h>

/* Length of the valid character at s (at most avail bytes): 1 for ASCII
 * other than NUL, 2-4 for a multi-byte one; 0 when it is NUL or not
 * valid. */
size_t pi_utf8_seq(const unsigned char *s, size_t avail);

/* Offset of the first byte of s[0, len) that is NUL or breaks UTF-8, or len
 * when there is none. Mostly-ASCII input is checked eight bytes at a
 * time. */
size_t pi_utf8_check(const char *s, size_t len);

#endif
