/* test_rng: a seeded WC_RNG for a test process. Tests only: the product
 * draws from its loop's RNG (rt_loop_rng) or from one its command owns. One
 * per translation unit, seeded at first use and never freed (the static
 * keeps it reachable for LeakSanitizer). */
#ifndef TEST_RNG_H
#define TEST_RNG_H

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/random.h>

#include <stdio.h>
#include <stdlib.h>

static inline WC_RNG *test_rng(void)
{
    static WC_RNG rng;
    static int ready;
    if (!ready) {
        if (wc_InitRng(&rng) != 0) {
            fprintf(stderr, "test_rng: cannot seed\n");
            abort();
        }
        ready = 1;
    }
    return &rng;
}

#endif
