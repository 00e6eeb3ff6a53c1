/* es_fair: how many tunnel streams each client holds on each tunnel, so that
 * no single client can take more than a fair share of a tunnel's streams
 * (the review's attack: one client's 2,000 stalled POSTs filled a tunnel).
 *
 * A key names one client on one tunnel (es_fair_key). Entries exist only
 * while their count is above zero, so memory is bounded by the number of
 * open tunnel streams. Not thread-safe: one table per loop (es_server). */
#ifndef ES_FAIR_H
#define ES_FAIR_H

#include <stddef.h>

/* A client never gets fewer streams than this on a tunnel... */
#define ES_FAIR_MIN_SHARE 32
/* ...nor more than 1/ES_FAIR_DIVISOR of the tunnel's stream budget. */
#define ES_FAIR_DIVISOR 4

struct es_fair_entry;

struct es_fair {
    struct es_fair_entry **buckets; /* owned */
    size_t n_buckets;
    size_t n_entries;
};

/* Returns 0 or PX_ERR_NOMEM. Release with es_fair_cleanup. (A zeroed
 * struct es_fair is also valid: it allocates on first use.) */
int es_fair_init(struct es_fair *f);
void es_fair_cleanup(struct es_fair *f);
/* The share one client may hold of a tunnel whose links can carry budget
 * streams in all. */
unsigned es_fair_share(unsigned budget);
/* Builds the key for client address ip on tunnel tunnel_id: a malloc'd
 * string (caller frees), or NULL on no memory. IPv6 clients are keyed by
 * their /64, since one host commonly holds a whole /64. */
char *es_fair_key(const char *tunnel_id, const char *ip);
/* Takes one stream for key if it holds fewer than cap. Returns 0,
 * PX_ERR_DENIED (at its share) or PX_ERR_NOMEM. */
int es_fair_acquire(struct es_fair *f, const char *key, unsigned cap);
/* Gives back one stream taken with es_fair_acquire. */
void es_fair_release(struct es_fair *f, const char *key);
/* How many streams key holds now. */
unsigned es_fair_count(const struct es_fair *f, const char *key);

#endif
