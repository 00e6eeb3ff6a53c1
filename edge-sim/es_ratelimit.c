#include "es_ratelimit.h"
#include "px_err.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int es_ratelimit_init(struct es_ratelimit *rl, size_t cap, unsigned burst, uint64_t interval_ms)
{
    memset(rl, 0, sizeof(*rl));
    if (cap == 0 || burst == 0 || interval_ms == 0)
        return PX_ERR_INVAL;
    rl->e = calloc(cap, sizeof(*rl->e));
    if (!rl->e)
        return PX_ERR_NOMEM;
    rl->cap = cap;
    rl->burst = burst;
    rl->interval_ms = interval_ms;
    return 0;
}

void es_ratelimit_cleanup(struct es_ratelimit *rl)
{
    free(rl->e);
    memset(rl, 0, sizeof(*rl));
}

static uint64_t full(const struct es_ratelimit *rl)
{
    return (uint64_t)rl->burst * rl->interval_ms;
}

/* Brings e's credit up to now (never past a full bucket). A clock that goes
 * back earns nothing, then or when it comes forward again. */
static void refill(const struct es_ratelimit *rl, struct es_ratelimit_entry *e, uint64_t now)
{
    if (now <= e->last_ms)
        return;
    uint64_t elapsed = now - e->last_ms, room = full(rl) - e->credit_ms;
    e->credit_ms += elapsed < room ? elapsed : room;
    e->last_ms = now;
}

static struct es_ratelimit_entry *find(struct es_ratelimit *rl, const char *key)
{
    for (size_t i = 0; i < rl->n; i++)
        if (strcmp(rl->e[i].key, key) == 0)
            return &rl->e[i];
    return NULL;
}

/* A slot for a new key: a free one, else one whose bucket has refilled (it
 * says nothing an absent entry would not), else the one idle longest. */
static struct es_ratelimit_entry *slot(struct es_ratelimit *rl, uint64_t now)
{
    if (rl->n < rl->cap)
        return &rl->e[rl->n++];
    struct es_ratelimit_entry *oldest = &rl->e[0];
    for (size_t i = 0; i < rl->n; i++) {
        struct es_ratelimit_entry *e = &rl->e[i];
        refill(rl, e, now);
        if (e->credit_ms == full(rl))
            return e;
        if (e->last_ms < oldest->last_ms)
            oldest = e;
    }
    return oldest;
}

int es_ratelimit_allowed(struct es_ratelimit *rl, const char *key, uint64_t now_ms)
{
    struct es_ratelimit_entry *e = find(rl, key);
    if (!e)
        return 1;
    refill(rl, e, now_ms);
    return e->credit_ms >= rl->interval_ms;
}

int es_ratelimit_fail(struct es_ratelimit *rl, const char *key, uint64_t now_ms)
{
    struct es_ratelimit_entry *e = find(rl, key);
    if (e) {
        refill(rl, e, now_ms);
    } else {
        e = slot(rl, now_ms);
        snprintf(e->key, sizeof(e->key), "%s", key);
        e->credit_ms = full(rl);
        e->last_ms = now_ms;
    }
    e->credit_ms -= e->credit_ms < rl->interval_ms ? e->credit_ms : rl->interval_ms;
    return e->credit_ms < rl->interval_ms;
}

/* What snprintf(out, ES_RATELIMIT_KEY_MAX, "%s", s) writes, without its
 * cost: this runs for every proxied request (es_fair_key). */
static void copy_key(char out[ES_RATELIMIT_KEY_MAX], const char *s)
{
    size_t n = strnlen(s, ES_RATELIMIT_KEY_MAX - 1);
    memcpy(out, s, n);
    out[n] = '\0';
}

void es_ratelimit_key(const char *ip, char out[ES_RATELIMIT_KEY_MAX])
{
    struct in6_addr a6;
    char s[INET6_ADDRSTRLEN];
    if (strchr(ip, ':') && inet_pton(AF_INET6, ip, &a6) == 1) {
        if (IN6_IS_ADDR_V4MAPPED(&a6)) {
            if (inet_ntop(AF_INET, a6.s6_addr + 12, s, sizeof(s))) {
                copy_key(out, s);
                return;
            }
        } else {
            memset(a6.s6_addr + 8, 0, 8);
            if (inet_ntop(AF_INET6, &a6, s, sizeof(s))) {
                snprintf(out, ES_RATELIMIT_KEY_MAX, "%s/64", s);
                return;
            }
        }
    }
    copy_key(out, ip);
}
