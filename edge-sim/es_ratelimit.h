/* es_ratelimit: a token bucket per source address, for failures (failed
 * enrolments). Each address may fail `burst` times back to back, then once
 * more per `interval_ms`. Pure: the caller passes the time (uv_now), so tests
 * drive the clock. The table is bounded: when it is full, an entry whose
 * bucket has refilled (same as absent) or else the one idle longest is
 * evicted, so memory stays fixed however many addresses fail. */
#ifndef ES_RATELIMIT_H
#define ES_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

/* Room for any key es_ratelimit_key makes from an address string of up to
 * 63 characters (rt_conn's peer_ip), including the NUL. */
#define ES_RATELIMIT_KEY_MAX 64

struct es_ratelimit_entry {
    char key[ES_RATELIMIT_KEY_MAX];
    uint64_t credit_ms; /* time credit; each failure costs interval_ms */
    uint64_t last_ms;   /* when credit was last brought up to date */
};

struct es_ratelimit {
    struct es_ratelimit_entry *e; /* owned, cap entries */
    size_t n, cap;
    unsigned burst;
    uint64_t interval_ms;
};

/* Prepares rl for at most cap addresses (cap, burst, interval_ms > 0).
 * Returns 0, PX_ERR_INVAL or PX_ERR_NOMEM. Release with es_ratelimit_cleanup. */
int es_ratelimit_init(struct es_ratelimit *rl, size_t cap, unsigned burst, uint64_t interval_ms);
void es_ratelimit_cleanup(struct es_ratelimit *rl);
/* Returns 1 if key may try now (it has a failure left), 0 if it is limited.
 * Does not consume anything. */
int es_ratelimit_allowed(struct es_ratelimit *rl, const char *key, uint64_t now_ms);
/* Records one failure for key. Returns 1 if key has no failure left now
 * (the next es_ratelimit_allowed says 0), else 0. */
int es_ratelimit_fail(struct es_ratelimit *rl, const char *key, uint64_t now_ms);
/* Writes the key for peer address ip into out (ES_RATELIMIT_KEY_MAX bytes):
 * an IPv4 address (also one mapped into IPv6) as is, an IPv6 address as its
 * /64, since one host commonly holds a whole /64 and could otherwise rotate
 * through it. */
void es_ratelimit_key(const char *ip, char out[ES_RATELIMIT_KEY_MAX]);

#endif
