/* px_utf8: one decoder of UTF-8 sequences for everything that must pass on
 * outside text as valid UTF-8 (log lines, metric label values, JSON views). */
#ifndef PX_UTF8_H
#define PX_UTF8_H

#include <stddef.h>

/* The length (1-4) of the valid UTF-8 sequence at p, which has avail > 0
 * bytes, or 0 when the sequence is invalid or cut short: a continuation
 * byte first, an overlong form, a surrogate or a code point above U+10FFFF. */
size_t px_utf8_seq(const unsigned char *p, size_t avail);

#endif
