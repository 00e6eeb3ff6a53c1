#include "px_reqid.h"

void px_reqid_init(struct px_reqid *g, const uint8_t seed[8])
{
    uint64_t p = 0;
    for (int i = 0; i < 8; i++)
        p = p << 8 | seed[i];
    g->prefix = p;
    g->counter = 0;
    g->ready = 1;
}

static void put_hex64(char *out, uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--) {
        out[i] = digits[v & 0xf];
        v >>= 4;
    }
}

void px_reqid_next(struct px_reqid *g, char out[PX_REQID_LEN + 1])
{
    put_hex64(out, g->prefix);
    put_hex64(out + 16, g->counter);
    out[PX_REQID_LEN] = '\0';
    if (++g->counter == 0)
        g->prefix++; /* the carry: (prefix, counter) is one 128-bit count */
}
