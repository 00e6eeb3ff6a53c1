#include "es_fair.h"
#include "es_ratelimit.h"
#include "px_err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 1024

struct es_fair_entry {
    struct es_fair_entry *next;
    unsigned count;
    char key[]; /* NUL-terminated */
};

/* Eight bytes a step (a key, a tunnel id and an address, is some 50 bytes
 * and is hashed twice per proxied request), then mixed so the low bits the
 * bucket takes depend on every byte. */
static size_t hash(const char *s)
{
    size_t n = strlen(s);
    uint64_t h = 1469598103934665603ull ^ n;
    for (; n >= 8; n -= 8, s += 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0x9e3779b97f4a7c15ull;
        h ^= h >> 29;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * 0x9e3779b97f4a7c15ull;
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    h ^= h >> 32;
    return (size_t)h;
}

int es_fair_init(struct es_fair *f)
{
    f->buckets = calloc(BUCKETS, sizeof(*f->buckets));
    if (!f->buckets)
        return PX_ERR_NOMEM;
    f->n_buckets = BUCKETS;
    f->n_entries = 0;
    return 0;
}

void es_fair_cleanup(struct es_fair *f)
{
    for (size_t i = 0; f->buckets && i < f->n_buckets; i++) {
        while (f->buckets[i]) {
            struct es_fair_entry *e = f->buckets[i];
            f->buckets[i] = e->next;
            free(e);
        }
    }
    free(f->buckets);
    f->buckets = NULL;
    f->n_buckets = f->n_entries = 0;
}

unsigned es_fair_share(unsigned budget)
{
    unsigned share = budget / ES_FAIR_DIVISOR;
    return share < ES_FAIR_MIN_SHARE ? ES_FAIR_MIN_SHARE : share;
}

char *es_fair_key(const char *tunnel_id, const char *ip)
{
    char client[ES_RATELIMIT_KEY_MAX];
    es_ratelimit_key(ip, client);
    size_t tl = strlen(tunnel_id), cl = strlen(client);
    char *k = malloc(tl + 1 + cl + 1);
    if (!k)
        return NULL;
    memcpy(k, tunnel_id, tl);
    k[tl] = ' ';
    memcpy(k + tl + 1, client, cl + 1);
    return k;
}

static struct es_fair_entry **find(const struct es_fair *f, const char *key)
{
    struct es_fair_entry **pp = &f->buckets[hash(key) % f->n_buckets];
    while (*pp && strcmp((*pp)->key, key) != 0)
        pp = &(*pp)->next;
    return pp;
}

int es_fair_acquire(struct es_fair *f, const char *key, unsigned cap)
{
    if (!f->buckets && es_fair_init(f) < 0) /* a zeroed table starts on first use */
        return PX_ERR_NOMEM;
    struct es_fair_entry **pp = find(f, key);
    if (*pp) {
        if ((*pp)->count >= cap)
            return PX_ERR_DENIED;
        (*pp)->count++;
        return 0;
    }
    if (cap == 0)
        return PX_ERR_DENIED;
    size_t kl = strlen(key);
    struct es_fair_entry *e = malloc(sizeof(*e) + kl + 1);
    if (!e)
        return PX_ERR_NOMEM;
    e->next = NULL;
    e->count = 1;
    memcpy(e->key, key, kl + 1);
    *pp = e;
    f->n_entries++;
    return 0;
}

void es_fair_release(struct es_fair *f, const char *key)
{
    if (!f->buckets)
        return;
    struct es_fair_entry **pp = find(f, key);
    struct es_fair_entry *e = *pp;
    if (!e)
        return;
    if (--e->count == 0) {
        *pp = e->next;
        free(e);
        f->n_entries--;
    }
}

unsigned es_fair_count(const struct es_fair *f, const char *key)
{
    if (!f->buckets)
        return 0;
    struct es_fair_entry *e = *find(f, key);
    return e ? e->count : 0;
}
