/* libFuzzer target for px_b64. Properties: no crash/leak; anything decoded
 * re-encodes (both alphabets) to text that decodes to the same bytes; any
 * input encodes and decodes back to itself. */
#include "px_b64.h"
#include "px_err.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A broken property: say where, then crash so libFuzzer keeps the input. */
#define FAIL() (fprintf(stderr, "property violated at %s:%d\n", __FILE__, __LINE__), abort())

static void round_trip(const uint8_t *bytes, size_t n)
{
    for (int url = 0; url <= 1; url++) {
        char *s = px_b64_encode(bytes, n, url);
        if (!s)
            FAIL();
        size_t sl = strlen(s);
        if (url ? sl != (n * 4 + 2) / 3 : sl != (n + 2) / 3 * 4)
            FAIL();
        uint8_t *back;
        size_t bn;
        if (px_b64_decode(s, sl, &back, &bn) != 0 || bn != n || (n && memcmp(back, bytes, n)))
            FAIL();
        free(back);
        free(s);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *out;
    size_t n;
    if (px_b64_decode((const char *)data, size, &out, &n) == 0) {
        if (n > size)
            FAIL();
        round_trip(out, n);
        free(out);
    }
    round_trip(data, size);
    return 0;
}
