#include "es_registry.h"
#include "es_link.h"
#include "px_err.h"
#include "px_hostname.h"
#include "px_log.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct es_tunnel *es_registry_tunnel(struct es_registry *r, const char *id)
{
    for (struct es_tunnel *t = r->tunnels; t; t = t->next)
        if (!t->deleted && strcmp(t->id, id) == 0)
            return t;
    return NULL;
}

static void free_routes(struct es_registry *r)
{
    while (r->routes) {
        struct es_route *n = r->routes->next;
        free(r->routes);
        r->routes = n;
    }
}

static void add_route(const char *hostname, const char *tunnel_id, void *arg)
{
    struct es_registry *r = arg;
    struct es_route *rt = calloc(1, sizeof(*rt));
    if (!rt)
        return;
    snprintf(rt->hostname, sizeof(rt->hostname), "%s", hostname);
    snprintf(rt->tunnel_id, sizeof(rt->tunnel_id), "%s", tunnel_id);
    rt->next = r->routes;
    r->routes = rt;
}

static void free_tunnel(struct es_tunnel *t)
{
    for (size_t i = 0; i < t->n_patterns; i++)
        free(t->patterns[i]);
    free(t);
}

int es_registry_reload(struct es_registry *r, struct es_store *st)
{
    /* Both reads first, applied only when both succeed: a store that fails
     * between them (a shared database going away) leaves every route this
     * edge knows serving, rather than none. */
    struct es_registry fresh = {0};
    struct es_tunnel_rec *recs;
    size_t n;
    int rc = es_store_route_each(st, add_route, &fresh);
    if (rc == 0)
        rc = es_store_tunnel_list(st, &recs, &n);
    if (rc < 0) {
        free_routes(&fresh);
        return rc;
    }
    /* Mark every known tunnel; the ones still in the store are refreshed. */
    for (struct es_tunnel *t = r->tunnels; t; t = t->next)
        t->deleted = 1;
    for (size_t i = 0; i < n; i++) {
        struct es_tunnel *t = NULL;
        for (struct es_tunnel *x = r->tunnels; x; x = x->next)
            if (strcmp(x->id, recs[i].id) == 0)
                t = x;
        if (!t) {
            t = calloc(1, sizeof(*t));
            if (!t)
                continue;
            memcpy(t->id, recs[i].id, sizeof(t->id));
            t->next = r->tunnels;
            r->tunnels = t;
        }
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
    es_store_tunnels_free(recs, n);
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
        free_tunnel(t);
    }
    free_routes(r);
    r->routes = fresh.routes;
    return 0;
}

void es_registry_cleanup(struct es_registry *r)
{
    free_routes(r);
    while (r->tunnels) {
        struct es_tunnel *n = r->tunnels->next;
        free_tunnel(r->tunnels);
        r->tunnels = n;
    }
}

/* The route for host: exact match first, then the longest wildcard. */
static const struct es_route *find_route(const struct es_registry *r, const char *host)
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
        for (struct es_route *rt = r->routes; rt; rt = rt->next)
            if (strcmp(rt->hostname, hostname) == 0 && strcmp(rt->tunnel_id, t->id) == 0)
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
    for (struct es_route *rt = r->routes; rt; rt = rt->next)
        if (strcmp(rt->hostname, hostname) == 0)
            return 0;
    add_route(hostname, t->id, r);
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
    for (struct es_route **pp = &r->routes; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->hostname, hostname) == 0 && strcmp((*pp)->tunnel_id, t->id) == 0) {
            struct es_route *d = *pp;
            *pp = d->next;
            free(d);
            break;
        }
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
