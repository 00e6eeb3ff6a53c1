#include "es_registry.h"
#include "es_link.h"
#include "px_err.h"
#include "px_hostname.h"
#include "px_list.h"
#include "px_log.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Hash indexes. A registry holds a route and a tunnel per name served, up
 * to a million: a reload (on every store change) and a lookup (on every
 * request) must not scan them all. */

#define HTAB_MIN 64
#define FNV_OFFSET 0xcbf29ce484222325ull

/* FNV-1a from h over s, ASCII letters folded to lower case: route names
 * compare case-insensitively (px_host_match), so names equal but for case
 * share a chain. Continuing from a prefix's hash lets a lookup hash "*." +
 * a suffix of the host without copying it. */
static uint64_t hash_more(uint64_t h, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        h = (h ^ c) * 0x100000001b3ull;
    }
    return h;
}

/* Mixed so that the low bits a bucket takes depend on every byte. */
static size_t hash_end(uint64_t h)
{
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    h ^= h >> 32;
    return (size_t)h;
}

static size_t hash_str(const char *s)
{
    return hash_end(hash_more(FNV_OFFSET, s));
}

/* A table for about hint entries. Returns 0 or PX_ERR_NOMEM. */
static int htab_init(struct es_reg_htab *t, size_t hint)
{
    size_t nb = HTAB_MIN;
    while (nb < hint && nb <= SIZE_MAX / 4 / sizeof(*t->buckets))
        nb *= 2;
    t->buckets = calloc(nb, sizeof(*t->buckets));
    if (!t->buckets)
        return PX_ERR_NOMEM;
    t->mask = nb - 1;
    t->n = 0;
    return 0;
}

static void htab_cleanup(struct es_reg_htab *t)
{
    free(t->buckets);
    memset(t, 0, sizeof(*t));
}

/* Doubles the buckets. Each chain splits into two, keeping its order
 * (newest first, which decides between routes equal but for case). Out of
 * memory, the table stays as it is: longer chains are slower, not wrong. */
static void htab_grow(struct es_reg_htab *t)
{
    size_t old = t->mask + 1;
    if (old > SIZE_MAX / 2 / sizeof(*t->buckets))
        return;
    struct es_reg_hnode **nb = calloc(2 * old, sizeof(*nb));
    if (!nb)
        return;
    for (size_t i = 0; i < old; i++) {
        struct es_reg_hnode **lo = &nb[i], **hi = &nb[i + old];
        for (struct es_reg_hnode *e = t->buckets[i], *next; e; e = next) {
            next = e->next;
            if (e->hash & old) {
                *hi = e;
                hi = &e->next;
            } else {
                *lo = e;
                lo = &e->next;
            }
        }
        *lo = NULL;
        *hi = NULL;
    }
    free(t->buckets);
    t->buckets = nb;
    t->mask = 2 * old - 1;
}

/* t has buckets. Never fails. */
static void htab_insert(struct es_reg_htab *t, struct es_reg_hnode *e, size_t hash)
{
    if (t->n > t->mask)
        htab_grow(t);
    struct es_reg_hnode **b = &t->buckets[hash & t->mask];
    e->hash = hash;
    e->next = *b;
    *b = e;
    t->n++;
}

static void htab_remove(struct es_reg_htab *t, struct es_reg_hnode *e)
{
    for (struct es_reg_hnode **pp = &t->buckets[e->hash & t->mask]; *pp; pp = &(*pp)->next) {
        if (*pp == e) {
            *pp = e->next;
            t->n--;
            break;
        }
    }
    e->next = NULL;
}

#define TUNNEL_OF(e) px_container_of(e, struct es_tunnel, by_id)
#define ROUTE_OF(e) px_container_of(e, struct es_route, by_name)

/* The tunnel with id, deleted or not. */
static struct es_tunnel *tunnel_find(const struct es_registry *r, const char *id)
{
    if (!r->tunnel_ids.buckets) {
        for (struct es_tunnel *t = r->tunnels; t; t = t->next)
            if (strcmp(t->id, id) == 0)
                return t;
        return NULL;
    }
    size_t h = hash_str(id);
    for (struct es_reg_hnode *e = r->tunnel_ids.buckets[h & r->tunnel_ids.mask]; e; e = e->next)
        if (e->hash == h && strcmp(TUNNEL_OF(e)->id, id) == 0)
            return TUNNEL_OF(e);
    return NULL;
}

struct es_tunnel *es_registry_tunnel(struct es_registry *r, const char *id)
{
    struct es_tunnel *t = tunnel_find(r, id);
    return t && !t->deleted ? t : NULL;
}

static struct es_route *route_get(const struct es_registry *r, const char *hostname)
{
    if (!r->route_names.buckets) {
        for (struct es_route *rt = r->routes; rt; rt = rt->next)
            if (strcmp(rt->hostname, hostname) == 0)
                return rt;
        return NULL;
    }
    size_t h = hash_str(hostname);
    for (struct es_reg_hnode *e = r->route_names.buckets[h & r->route_names.mask]; e; e = e->next)
        if (e->hash == h && strcmp(ROUTE_OF(e)->hostname, hostname) == 0)
            return ROUTE_OF(e);
    return NULL;
}

const struct es_route *es_registry_route(const struct es_registry *r, const char *hostname)
{
    return route_get(r, hostname);
}

static struct es_route *route_new(const char *hostname, const char *tunnel_id)
{
    struct es_route *rt = calloc(1, sizeof(*rt));
    if (!rt)
        return NULL;
    snprintf(rt->hostname, sizeof(rt->hostname), "%s", hostname);
    snprintf(rt->tunnel_id, sizeof(rt->tunnel_id), "%s", tunnel_id);
    return rt;
}

/* Puts rt first in r's list, and in r's index when r has one. */
static void route_link(struct es_registry *r, struct es_route *rt)
{
    rt->next = r->routes;
    if (rt->next)
        rt->next->pprev = &rt->next;
    rt->pprev = &r->routes;
    r->routes = rt;
    if (r->route_names.buckets)
        htab_insert(&r->route_names, &rt->by_name, hash_str(rt->hostname));
}

static void route_unlink(struct es_registry *r, struct es_route *rt)
{
    struct es_route **pp = rt->pprev;
    if (!pp) /* a route set by hand */
        for (pp = &r->routes; *pp && *pp != rt; pp = &(*pp)->next)
            ;
    if (*pp == rt) {
        *pp = rt->next;
        if (rt->next)
            rt->next->pprev = pp;
    }
    if (r->route_names.buckets)
        htab_remove(&r->route_names, &rt->by_name);
    rt->next = NULL;
    rt->pprev = NULL;
}

static void free_routes(struct es_registry *r)
{
    while (r->routes) {
        struct es_route *n = r->routes->next;
        free(r->routes);
        r->routes = n;
    }
    htab_cleanup(&r->route_names);
}

/* The routes a reload reads, apart until the tunnels have been read too. */
struct fresh_routes {
    struct es_registry reg;
    int err;
};

static void add_fresh_route(const char *hostname, const char *tunnel_id, void *arg)
{
    struct fresh_routes *f = arg;
    struct es_route *rt = f->err ? NULL : route_new(hostname, tunnel_id);
    if (!rt) {
        f->err = PX_ERR_NOMEM;
        return;
    }
    route_link(&f->reg, rt);
}

static void free_tunnel(struct es_tunnel *t)
{
    for (size_t i = 0; i < t->n_patterns; i++)
        free(t->patterns[i]);
    free(t);
}

/* Indexes the tunnels r has (none, unless they were set by hand). */
static int index_tunnels(struct es_registry *r)
{
    size_t n = 0;
    for (struct es_tunnel *t = r->tunnels; t; t = t->next)
        n++;
    int rc = htab_init(&r->tunnel_ids, n);
    for (struct es_tunnel *t = r->tunnels; rc == 0 && t; t = t->next)
        htab_insert(&r->tunnel_ids, &t->by_id, hash_str(t->id));
    return rc;
}

int es_registry_reload(struct es_registry *r, struct es_store *st)
{
    /* Both reads first, and every allocation, applied only when all
     * succeed: a store that fails between them (a shared database going
     * away) leaves every route this edge knows serving, rather than none. */
    struct fresh_routes fresh = {0};
    struct es_tunnel_rec *recs = NULL;
    struct es_tunnel **match = NULL, *added = NULL, **added_tail = &added;
    size_t n = 0;
    int rc = r->tunnel_ids.buckets ? 0 : index_tunnels(r);
    if (rc == 0)
        rc = htab_init(&fresh.reg.route_names, r->route_names.n);
    if (rc == 0)
        rc = es_store_route_each(st, add_fresh_route, &fresh);
    if (rc == 0)
        rc = fresh.err;
    if (rc == 0)
        rc = es_store_tunnel_list(st, &recs, &n);
    if (rc == 0 && n > 0 && !(match = calloc(n, sizeof(*match))))
        rc = PX_ERR_NOMEM;
    /* The tunnel object for each record: the one known, or a new one kept
     * aside (in store order) until nothing can fail any more. */
    for (size_t i = 0; rc == 0 && i < n; i++) {
        match[i] = tunnel_find(r, recs[i].id);
        if (match[i])
            continue;
        match[i] = calloc(1, sizeof(**match));
        if (!match[i]) {
            rc = PX_ERR_NOMEM;
            break;
        }
        memcpy(match[i]->id, recs[i].id, sizeof(match[i]->id));
        *added_tail = match[i];
        added_tail = &match[i]->next;
    }
    if (rc < 0)
        goto out_free;

    /* Mark every known tunnel; the ones still in the store are refreshed. */
    for (struct es_tunnel *t = r->tunnels; t; t = t->next)
        t->deleted = 1;
    while (added) {
        struct es_tunnel *t = added;
        added = t->next;
        t->next = r->tunnels;
        r->tunnels = t;
        htab_insert(&r->tunnel_ids, &t->by_id, hash_str(t->id));
    }
    for (size_t i = 0; i < n; i++) {
        struct es_tunnel *t = match[i];
        t->deleted = 0;
        snprintf(t->name, sizeof(t->name), "%s", recs[i].name);
        for (size_t k = 0; k < t->n_patterns; k++)
            free(t->patterns[k]);
        t->n_patterns = recs[i].n_patterns;
        for (size_t k = 0; k < recs[i].n_patterns; k++) {
            t->patterns[k] = recs[i].patterns[k];
            recs[i].patterns[k] = NULL;
        }
        recs[i].n_patterns = 0;
    }
    /* Cut off links of deleted tunnels, then forget those tunnels. */
    for (struct es_tunnel **pp = &r->tunnels; *pp;) {
        struct es_tunnel *t = *pp;
        if (!t->deleted) {
            pp = &t->next;
            continue;
        }
        PX_INFO("tunnel %s (%s) was deleted; closing its connections", t->name, t->id);
        while (t->links) {
            struct es_link *l = t->links;
            es_registry_detach(t, l);
            es_link_kill(l, "tunnel_deleted", "this tunnel was deleted at the edge", 1);
        }
        *pp = t->next;
        htab_remove(&r->tunnel_ids, &t->by_id);
        free_tunnel(t);
    }
    free_routes(r);
    r->routes = fresh.reg.routes;
    if (r->routes)
        r->routes->pprev = &r->routes;
    r->route_names = fresh.reg.route_names;
    fresh.reg.routes = NULL;
    memset(&fresh.reg.route_names, 0, sizeof(fresh.reg.route_names));

out_free:
    while (added) {
        struct es_tunnel *t = added;
        added = t->next;
        free(t);
    }
    free(match);
    es_store_tunnels_free(recs, n);
    free_routes(&fresh.reg);
    return rc;
}

void es_registry_cleanup(struct es_registry *r)
{
    free_routes(r);
    while (r->tunnels) {
        struct es_tunnel *n = r->tunnels->next;
        free_tunnel(r->tunnels);
        r->tunnels = n;
    }
    htab_cleanup(&r->tunnel_ids);
}

/* The route for host when r has no index: the same answers, by a scan. */
static const struct es_route *find_route_scan(const struct es_registry *r, const char *host)
{
    const struct es_route *best = NULL;
    size_t best_len = 0;
    for (const struct es_route *rt = r->routes; rt; rt = rt->next) {
        if (strcmp(rt->hostname, host) == 0) {
            best = rt;
            break;
        }
        if (rt->hostname[0] == '*' && px_host_match(rt->hostname, host) &&
            strlen(rt->hostname) > best_len) {
            best = rt;
            best_len = strlen(rt->hostname);
        }
    }
    return best;
}

/* The route for host: exact match first, then the longest wildcard. A
 * wildcard is a route starting with '*' that px_host_match()es host, and
 * the longest one is the first found, newest first among names equal but
 * for case, as the scan finds it. */
static const struct es_route *find_route(const struct es_registry *r, const char *host)
{
    if (!r->route_names.buckets)
        return find_route_scan(r, host);
    const struct es_route *exact = es_registry_route(r, host);
    if (exact)
        return exact;
    const struct es_reg_htab *ix = &r->route_names;
    /* px_host_match compares a '*' route not followed by '.' (no valid
     * pattern, but a store may hold anything) with the whole host, which
     * is longer than any suffix below. */
    if (host[0] == '*' && host[1] != '.') {
        size_t h = hash_str(host);
        for (struct es_reg_hnode *e = ix->buckets[h & ix->mask]; e; e = e->next) {
            const char *name = ROUTE_OF(e)->hostname;
            if (e->hash == h && name[0] == '*' && name[1] != '.' && strcasecmp(name, host) == 0)
                return ROUTE_OF(e);
        }
    }
    /* "*.s" matches a host ending in ".s" after at least one character: s
     * follows a '.' past the host's first character. The leftmost such
     * '.' gives the longest s. */
    uint64_t star = hash_more(FNV_OFFSET, "*.");
    for (const char *dot = host[0] ? strchr(host + 1, '.') : NULL; dot;
         dot = strchr(dot + 1, '.')) {
        const char *s = dot + 1;
        size_t h = hash_end(hash_more(star, s));
        for (struct es_reg_hnode *e = ix->buckets[h & ix->mask]; e; e = e->next) {
            const char *name = ROUTE_OF(e)->hostname;
            if (e->hash == h && name[0] == '*' && name[1] == '.' && strcasecmp(name + 2, s) == 0)
                return ROUTE_OF(e);
        }
    }
    return NULL;
}

struct es_tunnel *es_registry_lookup(struct es_registry *r, const char *host)
{
    const struct es_route *best = find_route(r, host);
    return best ? es_registry_tunnel(r, best->tunnel_id) : NULL;
}

const char *es_registry_route_pattern(struct es_registry *r, const char *host)
{
    const struct es_route *best = find_route(r, host);
    return best && es_registry_tunnel(r, best->tunnel_id) ? best->hostname : NULL;
}

static int allowed(const struct es_tunnel *t, const char *hostname)
{
    if (t->n_patterns == 0)
        return 1;
    for (size_t i = 0; i < t->n_patterns; i++) {
        const char *p = t->patterns[i];
        if (strcmp(p, hostname) == 0)
            return 1;
        /* A wildcard pattern allows names under it, and narrower wildcards. */
        if (p[0] == '*') {
            const char *h = hostname[0] == '*' ? hostname + 1 : hostname;
            if (px_host_match(p, h[0] == '.' ? h + 1 : h) ||
                (hostname[0] == '*' && px_host_match(p, hostname + 2)))
                return 1;
        }
    }
    return 0;
}

int es_registry_claim(struct es_registry *r, struct es_store *st, struct es_tunnel *t,
                      const char *name, char *reason, size_t reasonlen)
{
    /* Names are case-insensitive: store and compare them lower-cased. */
    char hostname[256];
    size_t n = strlen(name);
    if (n >= sizeof(hostname)) {
        snprintf(reason, reasonlen, "hostname too long");
        return PX_ERR_INVAL;
    }
    for (size_t i = 0; i <= n; i++)
        hostname[i] = (char)tolower((unsigned char)name[i]);
    if (!px_host_pattern_valid(hostname)) {
        snprintf(reason, reasonlen, "not a valid hostname or *.suffix pattern");
        return PX_ERR_INVAL;
    }
    if (!allowed(t, hostname)) {
        snprintf(reason, reasonlen, "not allowed by this tunnel's hostname patterns");
        return PX_ERR_DENIED;
    }
    /* The store checks for overlapping claims (defect 5: an exact name beats
     * a wildcard, so a name under another tunnel's wildcard would take over
     * that part of its traffic) in the same transaction as the insert. */
    struct es_route_conflict c;
    int rc = es_store_route_claim(st, hostname, t->id, &c);
    if (rc == PX_ERR_EXISTS) {
        if (strcmp(c.hostname, hostname) == 0)
            snprintf(reason, reasonlen, "held by another tunnel (%s)", c.tunnel_name);
        else
            snprintf(reason, reasonlen, "overlaps %s held by tunnel %s", c.hostname, c.tunnel_name);
        return rc;
    }
    if (rc == PX_ERR_NOT_FOUND) {
        snprintf(reason, reasonlen, "this tunnel was deleted at the edge");
        return rc;
    }
    if (rc == PX_ERR_UNAVAILABLE) {
        /* The shared database is away. A name this tunnel already holds
         * needs no new claim: the route stands, here and in the database.
         * Anything else waits: granting it now could grant it twice. */
        const struct es_route *held = es_registry_route(r, hostname);
        if (held && strcmp(held->tunnel_id, t->id) == 0)
            return 0;
        snprintf(reason, reasonlen,
                 "the edge cannot reach its database to claim it now; try again later or "
                 "through another edge");
        return rc;
    }
    if (rc < 0) {
        snprintf(reason, reasonlen, "edge storage error");
        return rc;
    }
    if (es_registry_route(r, hostname))
        return 0;
    /* Out of memory the route is in the store only, until the next reload. */
    struct es_route *rt = route_new(hostname, t->id);
    if (rt)
        route_link(r, rt);
    return 0;
}

int es_registry_release(struct es_registry *r, struct es_store *st, struct es_tunnel *t,
                        const char *name)
{
    char hostname[256];
    size_t n = strlen(name);
    if (n >= sizeof(hostname))
        return PX_ERR_INVAL;
    for (size_t i = 0; i <= n; i++)
        hostname[i] = (char)tolower((unsigned char)name[i]);
    int rc = es_store_route_release(st, hostname, t->id);
    if (rc < 0)
        return rc;
    struct es_route *d = route_get(r, hostname);
    if (d && strcmp(d->tunnel_id, t->id) == 0) {
        route_unlink(r, d);
        free(d);
    }
    return 0;
}

struct es_link *es_registry_pick(struct es_tunnel *t, const char *host)
{
    /* Fewest streams in flight first: a slow or busy link gets less. */
    struct es_link *best = NULL;
    for (struct es_link *l = t->links; l; l = l->tunnel_next)
        if (es_link_usable(l) && es_link_serves(l, host) &&
            (!best || es_link_load(l) < es_link_load(best)))
            best = l;
    return best;
}

unsigned es_registry_budget(const struct es_tunnel *t, const char *host, unsigned *n_links)
{
    unsigned budget = 0, n = 0;
    for (struct es_link *l = t->links; l; l = l->tunnel_next) {
        if (l->dying || l->retiring || !es_link_serves(l, host))
            continue;
        n++;
        budget += es_link_capacity(l);
    }
    if (n_links)
        *n_links = n;
    return budget;
}

void es_registry_attach(struct es_tunnel *t, struct es_link *l)
{
    l->tunnel = t;
    l->tunnel_next = t->links;
    t->links = l;
}

void es_registry_detach(struct es_tunnel *t, struct es_link *l)
{
    for (struct es_link **pp = &t->links; *pp; pp = &(*pp)->tunnel_next) {
        if (*pp == l) {
            *pp = l->tunnel_next;
            break;
        }
    }
    l->tunnel_next = NULL;
    l->tunnel = NULL;
}
