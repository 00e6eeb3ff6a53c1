/* cn_backoff: exponential backoff with full jitter (pure; the caller supplies randomness). */
#ifndef CN_BACKOFF_H
#define CN_BACKOFF_H

#include <stdint.h>

struct cn_backoff {
    unsigned base_ms; /* first ceiling, e.g. 1000 */
    unsigned cap_ms;  /* largest ceiling, e.g. 30000 */
    unsigned attempt; /* failures since the last success */
};

void cn_backoff_init(struct cn_backoff *b, unsigned base_ms, unsigned cap_ms);
/* Returns the delay before the next attempt: uniform in [0, min(cap, base*2^attempt)]
 * using rnd (any 32-bit random value), and counts the attempt. */
unsigned cn_backoff_next(struct cn_backoff *b, uint32_t rnd);
/* The current ceiling (for logs). */
unsigned cn_backoff_ceiling(const struct cn_backoff *b);
void cn_backoff_reset(struct cn_backoff *b);

#endif
