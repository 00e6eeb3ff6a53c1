/* libFuzzer target for px_hostname (and the header predicates, which see
 * the same kind of attacker-controlled names).
 * Properties: no crash; normalize output is bounded, lower-case, made of
 * hostname characters, has no trailing dot and is idempotent; a valid
 * pattern matches itself (and, for "*.s", any "x.s") but never the bare
 * suffix. */
#include "px_err.h"
#include "px_headers.h"
#include "px_hostname.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A broken property: say where, then crash so libFuzzer keeps the input. */
#define FAIL() (fprintf(stderr, "property violated at %s:%d\n", __FILE__, __LINE__), abort())

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    char out[256];
    if (px_host_normalize(in, size, out, sizeof(out)) == 0) {
        size_t n = strlen(out);
        if (n == 0 || n > 253)
            FAIL();
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)out[i];
            if (isupper(c) || !(isalnum(c) || strchr("-._[]:", c)))
                FAIL();
        }
        /* Documented: "without port or trailing dot". */
        if (out[n - 1] == '.')
            FAIL();
        char again[256];
        if (px_host_normalize(out, n, again, sizeof(again)) != 0 || strcmp(out, again) != 0)
            FAIL();
    }
    /* Small output buffers never overflow. */
    char tiny[4];
    if (px_host_normalize(in, size, tiny, sizeof(tiny)) == 0 && strlen(tiny) >= sizeof(tiny))
        FAIL();

    /* NUL-terminated: "pattern\nhost" */
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    char *host = strchr(s, '\n');
    if (host)
        *host++ = '\0';
    else
        host = s;
    int valid = px_host_pattern_valid(s);
    int m = px_host_match(s, host);
    if (valid) {
        if (!px_host_match(s, s) && s[0] != '*')
            FAIL();
        if (s[0] == '*') {
            /* "*.suffix" covers "x.suffix" but not "suffix" */
            size_t sl = strlen(s);
            char *sub = malloc(sl + 1);
            memcpy(sub, s, sl + 1);
            sub[0] = 'x';
            if (!px_host_match(s, sub) || px_host_match(s, s + 2))
                FAIL();
            free(sub);
        }
    }
    (void)m;

    /* Header predicates on the same bytes. */
    size_t nl = strlen(s);
    (void)px_hdr_is_hop_by_hop(s, nl);
    (void)px_hdr_is_edge_metadata(s, nl);
    (void)px_hdr_listed_in_connection(in, size, s, nl);
    if (px_hdr_valid(s, nl, in, size)) {
        if (memchr(in, '\r', size) || memchr(in, '\n', size) || memchr(in, '\0', size) || nl == 0)
            FAIL();
    }
    free(s);
    return 0;
}
