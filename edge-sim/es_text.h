/* es_text: text from outside (a connector's REGISTER, rows read back from
 * live.db) cut to fit a field without ever ending mid-character: what is
 * kept is always valid UTF-8, so jansson (which refuses anything else)
 * can show it. */
#ifndef ES_TEXT_H
#define ES_TEXT_H

#include <stddef.h>

/* The length of the longest prefix of s (a C string) that is at most max
 * bytes and valid UTF-8 (no overlong forms, surrogates or code points above
 * U+10FFFF): it stops at the first invalid or cut sequence. */
size_t es_text_prefix(const char *s, size_t max);
/* Copies into out (outlen > 0 bytes) the longest valid prefix of in that
 * fits with its NUL (in NULL: ""). */
void es_text_copy(char *out, size_t outlen, const char *in);

#endif
