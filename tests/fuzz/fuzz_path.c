/* libFuzzer target for px_path (the request path normaliser).
 * Properties: no crash or leak; on success the path part starts with '/',
 * holds no dot segment ("/./", "/../", or a trailing "/." or "/..") and no
 * "//", no escape of an unreserved character, only upper-case hex, and
 * normalising it again gives the same bytes; the query comes back unchanged.
 * On refusal the reason is set and nothing is returned. */
#include "px_err.h"
#include "px_path.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAIL() (fprintf(stderr, "property violated at %s:%d\n", __FILE__, __LINE__), abort())

static int has_seg(const char *p, size_t n, const char *seg)
{
    size_t sl = strlen(seg);
    for (size_t i = 0; i + sl <= n; i++)
        if (memcmp(p + i, seg, sl) == 0)
            return 1;
    return 0;
}

static int ends_with(const char *p, size_t n, const char *s)
{
    size_t sl = strlen(s);
    return n >= sl && memcmp(p + n - sl, s, sl) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    char *out = NULL;
    size_t n = 0;
    enum px_path_error why = PX_PATH_OK;
    int rc = px_path_normalize(in, size, &out, &n, &why);
    if (rc != 0) {
        if (rc != PX_ERR_INVAL || why == PX_PATH_OK || out)
            FAIL();
        (void)px_path_strerror(why);
        return 0;
    }
    if (why != PX_PATH_OK || !out || out[n] != '\0' || strlen(out) != n)
        FAIL();
    const char *q = memchr(out, '?', n);
    size_t pl = q ? (size_t)(q - out) : n;
    if (pl == 0 || out[0] != '/')
        FAIL();
    if (has_seg(out, pl, "/../") || has_seg(out, pl, "/./") || has_seg(out, pl, "//") ||
        ends_with(out, pl, "/..") || ends_with(out, pl, "/."))
        FAIL();
    for (size_t i = 0; i < pl; i++) {
        if (out[i] != '%')
            continue;
        if (i + 2 >= pl)
            FAIL();
        const char *hex = "0123456789ABCDEF";
        if (!strchr(hex, out[i + 1]) || !strchr(hex, out[i + 2]))
            FAIL();
        unsigned v = (unsigned)(strchr(hex, out[i + 1]) - hex) * 16 +
                     (unsigned)(strchr(hex, out[i + 2]) - hex);
        if ((v >= 'a' && v <= 'z') || (v >= 'A' && v <= 'Z') || (v >= '0' && v <= '9') ||
            v == '-' || v == '.' || v == '_' || v == '~' || v == '/' || v == '\\' || v == 0)
            FAIL();
    }
    /* The query is passed through untouched. */
    const char *iq = memchr(in, '?', size);
    size_t iql = iq ? size - (size_t)(iq - in) : 0;
    if (iql != n - pl || (iql && memcmp(iq, out + pl, iql) != 0))
        FAIL();
    /* Idempotent. */
    char *again = NULL;
    size_t n2 = 0;
    if (px_path_normalize(out, n, &again, &n2, NULL) != 0 || n2 != n || memcmp(again, out, n))
        FAIL();
    free(again);
    free(out);
    return 0;
}
