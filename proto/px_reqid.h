/* px_reqid: request ids as 32 lower-case hex digits, without a random draw
 * or a printf per request. An id is a 64-bit prefix drawn once at random
 * plus a 64-bit counter, both written in hex by table; together they count
 * as one 128-bit number, so the counter's wrap carries into the prefix.
 *
 * Ids are unique within one generator (no repeat before 2^128 ids) and,
 * because the prefix is random, unpredictable across processes. They are
 * labels for logs and x-request-id, not secrets: whoever sees one id of a
 * generator can tell its next ones and how many were handed out between
 * two ids he saw.
 *
 * Ownership: the caller owns the struct px_reqid (one per loop or server,
 * never process-wide) and uses it from one thread. Its fields are
 * px_reqid's; a zeroed struct is "not yet initialised" (ready == 0). */
#ifndef PX_REQID_H
#define PX_REQID_H

#include <stdint.h>

/* An id's length, without the terminating NUL. */
#define PX_REQID_LEN 32

struct px_reqid {
    uint64_t prefix;  /* the random half, bumped when counter wraps */
    uint64_t counter; /* the next id's counter */
    int ready;        /* px_reqid_init ran */
};

/* Starts g from 8 random bytes (from the loop's RNG): the prefix. The
 * counter starts at 0. Sets g->ready. */
void px_reqid_init(struct px_reqid *g, const uint8_t seed[8]);
/* Writes g's next id to out: PX_REQID_LEN hex digits (0-9a-f) and a NUL.
 * g must have been initialised. */
void px_reqid_next(struct px_reqid *g, char out[PX_REQID_LEN + 1]);

#endif
