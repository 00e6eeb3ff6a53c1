/* es_registry: which tunnel serves a hostname, and which live links each
 * tunnel has. Mirrors the store (reloaded when it changes) plus live state. */
#ifndef ES_REGISTRY_H
#define ES_REGISTRY_H

#include "es_store.h"

#include <stddef.h>

struct es_link;

/* The link an object holds in one of the registry's hash indexes. */
struct es_reg_hnode {
    struct es_reg_hnode *next; /* same bucket, newest first */
    size_t hash;
};

/* A chained hash table of es_reg_hnodes, grown to keep at most one entry
 * per bucket on average. buckets == NULL: no index (a registry whose lists
 * were set by hand, as tests do), and the lists are scanned instead. */
struct es_reg_htab {
    struct es_reg_hnode **buckets;
    size_t mask; /* bucket count - 1, a power of two */
    size_t n;
};

struct es_tunnel {
    char id[33];
    char name[65];
    char *patterns[ES_MAX_PATTERNS];
    size_t n_patterns;
    struct es_link *links; /* registered links (es_link_usable says which take streams) */
    int deleted;
    struct es_tunnel *next;
    struct es_reg_hnode by_id; /* in es_registry.tunnel_ids */
};

struct es_route {
    char hostname[256]; /* exact or *.suffix */
    char tunnel_id[33];
    struct es_route *next;
    struct es_route **pprev;     /* what points at this route, to unlink it in O(1) */
    struct es_reg_hnode by_name; /* in es_registry.route_names */
};

/* Other code may walk the lists (->next) but only es_registry_* changes
 * them: each change keeps the indexes in step, so that a lookup per request
 * and a reload per store change cost O(1) per name and O(n), not a scan of
 * every route. */
struct es_registry {
    struct es_tunnel *tunnels;
    struct es_route *routes;
    struct es_reg_htab tunnel_ids;  /* tunnels by id */
    struct es_reg_htab route_names; /* routes by hostname, hashed case-insensitively */
};

/* Rebuilds tunnels and routes (and their indexes) from the store, in time
 * linear in their number. Tunnels that vanished are marked deleted, their
 * links closed (es_link_kill), and freed; the others keep their objects.
 * When the store fails or memory runs out (returns < 0), nothing changes:
 * the routes known keep serving. */
int es_registry_reload(struct es_registry *r, struct es_store *st);
/* Frees every tunnel, route and index (not the links). */
void es_registry_cleanup(struct es_registry *r);
/* The tunnel with id (not deleted), or NULL. */
struct es_tunnel *es_registry_tunnel(struct es_registry *r, const char *id);
/* The route stored under exactly hostname (byte for byte, as a claim
 * stores it: lower case), whatever its tunnel, or NULL. Valid until the
 * next reload or release. */
const struct es_route *es_registry_route(const struct es_registry *r, const char *hostname);
/* Finds the tunnel routing host: the route named exactly host (byte for
 * byte) first, else the longest wildcard "*.s" with host ending in ".s"
 * after one or more characters (case-insensitively, px_host_match).
 * Returns NULL when no route covers host, or when the route found belongs
 * to a tunnel that is gone (no shorter wildcard is tried then). */
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
