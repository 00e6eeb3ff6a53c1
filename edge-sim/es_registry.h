/* es_registry: which tunnel serves a hostname, and which live links each
 * tunnel has. Mirrors the store (reloaded when it changes) plus live state. */
#ifndef ES_REGISTRY_H
#define ES_REGISTRY_H

#include "es_store.h"

#include <stddef.h>

struct es_link;

struct es_tunnel {
    char id[33];
    char name[65];
    char *patterns[ES_MAX_PATTERNS];
    size_t n_patterns;
    struct es_link *links; /* registered links (es_link_usable says which take streams) */
    int deleted;
    struct es_tunnel *next;
};

struct es_route {
    char hostname[256]; /* exact or *.suffix */
    char tunnel_id[33];
    struct es_route *next;
};

struct es_registry {
    struct es_tunnel *tunnels;
    struct es_route *routes;
};

/* Rebuilds tunnels and routes from the store. Tunnels that vanished are
 * marked deleted and their links are closed (es_link_kill). When the store
 * fails (returns < 0), nothing changes: the routes known keep serving. */
int es_registry_reload(struct es_registry *r, struct es_store *st);
void es_registry_cleanup(struct es_registry *r);
struct es_tunnel *es_registry_tunnel(struct es_registry *r, const char *id);
/* Finds the tunnel routing host (exact match first, then the longest
 * wildcard). Returns NULL when no tunnel registered it. */
struct es_tunnel *es_registry_lookup(struct es_registry *r, const char *host);
/* The route pattern (exact name or *.suffix) through which
 * es_registry_lookup finds host's tunnel, or NULL when it finds none: a
 * name bounded by the routes, for metrics labels. Valid until the next
 * reload. */
const char *es_registry_route_pattern(struct es_registry *r, const char *host);
/* Claims hostname for t: it must be a valid pattern, allowed by t's patterns,
 * and not held by another tunnel, neither the same name nor an overlapping
 * one (es_store_route_claim). Returns 0, or < 0 with a reason for the
 * connector that names the other tunnel's pattern and name;
 * PX_ERR_NOT_FOUND when another process deleted t from the store and this
 * registry has not reloaded yet (the caller treats t as deleted);
 * PX_ERR_UNAVAILABLE when the shared database cannot be reached and t does
 * not hold hostname already (a route t holds is granted without it). */
int es_registry_claim(struct es_registry *r, struct es_store *st, struct es_tunnel *t,
                      const char *hostname, char *reason, size_t reasonlen);
/* Releases hostname from t (store and memory). Returns 0 or < 0. */
int es_registry_release(struct es_registry *r, struct es_store *st, struct es_tunnel *t,
                        const char *hostname);
/* Picks, among t's usable links that registered a name covering host, the
 * one with the fewest streams in flight; NULL when none can take a stream
 * now (none attached, or all full). */
struct es_link *es_registry_pick(struct es_tunnel *t, const char *host);
/* The streams t's live links serving host can carry at once (the stream
 * budget for host); *n_links (may be NULL) receives how many there are. */
unsigned es_registry_budget(const struct es_tunnel *t, const char *host, unsigned *n_links);
void es_registry_attach(struct es_tunnel *t, struct es_link *l);
void es_registry_detach(struct es_tunnel *t, struct es_link *l);

#endif
