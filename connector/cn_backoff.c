#include "cn_backoff.h"

void cn_backoff_init(struct cn_backoff *b, unsigned base_ms, unsigned cap_ms)
{
    b->base_ms = base_ms;
    b->cap_ms = cap_ms < base_ms ? base_ms : cap_ms;
    b->attempt = 0;
}

unsigned cn_backoff_ceiling(const struct cn_backoff *b)
{
    uint64_t c = b->base_ms;
    for (unsigned i = 0; i < b->attempt && c < b->cap_ms; i++)
        c *= 2;
    return c > b->cap_ms ? b->cap_ms : (unsigned)c;
}

unsigned cn_backoff_next(struct cn_backoff *b, uint32_t rnd)
{
    unsigned ceiling = cn_backoff_ceiling(b);
    if (b->attempt < 64)
        b->attempt++;
    /* Full jitter: spreading reconnects over the whole window is what keeps a
     * fleet of connectors from stampeding an edge that just restarted. */
    return (unsigned)((uint64_t)rnd * ((uint64_t)ceiling + 1) >> 32);
}

void cn_backoff_reset(struct cn_backoff *b)
{
    b->attempt = 0;
}
