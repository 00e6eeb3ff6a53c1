#include "es_text.h"
#include "px_utf8.h"

#include <string.h>

size_t es_text_prefix(const char *s, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strnlen(s, max), i = 0;
    while (i < len) {
        size_t n = px_utf8_seq(p + i, len - i);
        if (n == 0)
            break;
        i += n;
    }
    return i;
}

void es_text_copy(char *out, size_t outlen, const char *in)
{
    size_t n = in ? es_text_prefix(in, outlen - 1) : 0;
    memcpy(out, in ? in : "", n);
    out[n] = '\0';
}
