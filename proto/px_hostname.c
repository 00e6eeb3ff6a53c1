#include "px_hostname.h"
#include "px_err.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

int px_host_normalize(const char *a, size_t len, char *out, size_t outlen)
{
    size_t end = len;
    if (len > 0 && a[0] == '[') {
        const char *close = memchr(a, ']', len);
        if (!close)
            return PX_ERR_INVAL;
        end = (size_t)(close - a) + 1;
    } else {
        const char *colon = memchr(a, ':', len);
        if (colon)
            end = (size_t)(colon - a);
    }
    if (end > 0 && a[end - 1] == '.')
        end--;
    if (end == 0 || end >= outlen || end > 253 || a[0] == '.' || a[end - 1] == '.')
        return PX_ERR_INVAL;
    for (size_t i = 0; i < end; i++) {
        unsigned char c = (unsigned char)a[i];
        if (!(isalnum(c) || c == '-' || c == '.' || c == '_' || c == '[' || c == ']' || c == ':'))
            return PX_ERR_INVAL;
        if (c == '.' && i > 0 && a[i - 1] == '.')
            return PX_ERR_INVAL; /* empty label */
        out[i] = (char)tolower(c);
    }
    out[end] = '\0';
    return 0;
}

int px_host_pattern_valid(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > 253)
        return 0;
    const char *s = p;
    if (p[0] == '*') {
        if (p[1] != '.' || p[2] == '\0')
            return 0;
        s = p + 2;
    }
    size_t label = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '.') {
            if (label == 0)
                return 0;
            label = 0;
            continue;
        }
        if (!(isalnum(c) || c == '-' || c == '_'))
            return 0;
        if (++label > 63)
            return 0;
    }
    return label > 0;
}

int px_host_match(const char *pattern, const char *host)
{
    if (pattern[0] == '*' && pattern[1] == '.') {
        const char *suffix = pattern + 1; /* ".example" */
        size_t sl = strlen(suffix), hl = strlen(host);
        return hl > sl && strcasecmp(host + hl - sl, suffix) == 0;
    }
    return strcasecmp(pattern, host) == 0;
}

int px_host_covers(const char *outer, const char *inner)
{
    if (outer[0] != '*')
        return strcasecmp(outer, inner) == 0;
    if (inner[0] != '*')
        return px_host_match(outer, inner);
    /* "*.s" covers "*.t" when t is s or a name under s. */
    return strcasecmp(outer + 2, inner + 2) == 0 || px_host_match(outer, inner + 2);
}

int px_host_overlap(const char *a, const char *b)
{
    return px_host_covers(a, b) || px_host_covers(b, a);
}
