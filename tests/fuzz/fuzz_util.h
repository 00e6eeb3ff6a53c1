/* Helpers shared by the fuzz targets. */
#ifndef FUZZ_UTIL_H
#define FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* A broken property: say where, then crash so libFuzzer keeps the input. */
#define FAIL() (fprintf(stderr, "property violated at %s:%d\n", __FILE__, __LINE__), abort())

static inline uint64_t fz_hash(const uint8_t *p, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h | 1;
}

/* The size of the next piece when input is split the way a network would
 * (seeded from the input, so every run of an input splits it the same way):
 * mostly small, sometimes empty, sometimes large. */
static inline size_t fz_piece(uint64_t *rnd, size_t left)
{
    *rnd ^= *rnd << 13;
    *rnd ^= *rnd >> 7;
    *rnd ^= *rnd << 17;
    size_t n = (*rnd >> 8) % 8 == 0 ? (*rnd >> 16) % 4096 : 1 + (*rnd >> 16) % 24;
    return n > left ? left : n;
}

#endif
