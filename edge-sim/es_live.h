/* es_live: what the `edge-sim serve` processes sharing a store are doing
 * now. With a data dir, in a second SQLite file, <data-dir>/live.db (WAL),
 * kept apart from edge.db so that heartbeats never look like store changes
 * (es_store_changed would reload every second). With a PostgreSQL store, in
 * its tables instances, links, names and holds, which no trigger watches
 * for the same reason, over a connection of its own.
 *
 * Each serve is an instance (a random id) with a row: its addresses, pid,
 * start and heartbeat (every ES_LIVE_HEARTBEAT_MS). Each heartbeat rewrites
 * the rows of the instance's registered connections (es_link_info) and the
 * names they registered, and records for every (tunnel, hostname) held the
 * time it was last held. Rows of an instance whose heartbeat is older than
 * ES_LIVE_STALE_MS are ignored by every reader and purged by the next
 * heartbeat of any instance; a clean exit (es_live_close) removes its own.
 *
 * Times are wall-clock milliseconds (es_live_now_ms): instances are separate
 * processes, so only the wall clock is shared. Callers pass `now` so tests
 * run on a fake clock.
 *
 * Every function returns 0 or a negative px_err code (PX_ERR_DB,
 * PX_ERR_UNAVAILABLE, PX_ERR_NOMEM); nothing here touches the event loop. */
#ifndef ES_LIVE_H
#define ES_LIVE_H

#include "es_link.h"
#include "es_store.h"

#include <stddef.h>

#define ES_LIVE_HEARTBEAT_MS 1000
#define ES_LIVE_STALE_MS 5000
/* --hostname-grace: default and minimum, in milliseconds. */
#define ES_LIVE_GRACE_DEFAULT_MS (5 * 60 * 1000LL)
#define ES_LIVE_GRACE_MIN_MS 1000LL

struct es_live {
    struct es_sql *db;    /* es_sql's: through its functions only */
    char id[17];          /* this instance; "" for a reader (the CLI) */
    long long started_ms; /* this instance's start */
};

/* What an instance says about itself. */
struct es_live_self {
    const char *tunnel_addr, *https_addr, *admin_addr;
    long long pid;
};

/* One registered connection of a live instance, as read back. */
struct es_live_conn {
    char instance[17];
    char edge[301]; /* that instance's tunnel address */
    char conn_id[17];
    char tunnel_id[33];
    char connector[PX_CTL_MAX_CONNECTOR_ID + 1]; /* "" when not said */
    char agent[65];
    char address[64]; /* the connector's address as the edge saw it */
    int conn_index;   /* -1 when not said */
    char dialed[PX_CTL_MAX_EDGE_ADDR + 1];
    long long since; /* wall-clock seconds */
};

/* A route no live connection holds and none held for the grace. */
struct es_live_expired {
    char tunnel_id[33];
    char hostname[256];
    long long last_held_ms; /* 0: never held since hold records began */
};

long long es_live_now_ms(void);

/* Opens the live view of the store spec names (es_store_open): a
 * PostgreSQL store's tables, or dir/live.db (created if needed). id: this
 * instance's id (1..16 of [0-9a-z]), or NULL for a reader that writes
 * nothing. now_ms is the instance's start. Returns 0, PX_ERR_INVAL (a bad
 * id, or dir too long for the path), PX_ERR_UNAVAILABLE or PX_ERR_DB, with
 * why. */
int es_live_open(struct es_live *lv, const char *spec, const char *id, long long now_ms, char *why,
                 size_t whylen);
/* Removes this instance's rows (an instance) and closes. Safe on a zeroed
 * or closed lv. */
void es_live_close(struct es_live *lv);

/* One heartbeat, one transaction: the instance's row; its connection rows
 * replaced by links[0..n) (with the names each registered); the hold time
 * of each (tunnel, name) they registered set to now; stale instances
 * purged. Returns 0 or PX_ERR_DB (busy beyond the timeout: the next beat
 * tries again). */
int es_live_heartbeat(struct es_live *lv, const struct es_live_self *self,
                      const struct es_link_info *links, size_t n, long long now_ms);

/* The connections of every live instance (this one's as of its last
 * heartbeat), ordered by instance start, tunnel, connector, slot. *out is
 * malloc'd (free()); *n may be 0. */
int es_live_conns(struct es_live *lv, long long now_ms, struct es_live_conn **out, size_t *n);

/* A tunnel connected through another live instance, and that instance's
 * browser (https) address: where a request this edge cannot route may go. */
struct es_live_remote {
    char tunnel_id[33];
    char https_addr[301];
};
/* Every (tunnel, https address) with a registered connection at a live
 * instance other than this one, sorted by tunnel id (es_live_remote_find).
 * *out is malloc'd (free()); *n may be 0. */
int es_live_remotes(struct es_live *lv, long long now_ms, struct es_live_remote **out, size_t *n);
/* The first of remotes[0..n) for tunnel_id (the others follow it), or NULL. */
const struct es_live_remote *es_live_remote_find(const struct es_live_remote *remotes, size_t n,
                                                 const char *tunnel_id);

/* The tunnel addresses of the live instances in start order, at most max,
 * into addrs[i] (each addrlen bytes). *n receives the count. */
int es_live_edges(struct es_live *lv, long long now_ms, char (*addrs)[301], size_t max, size_t *n);

/* The routes of st to release now: no connection of a live instance
 * registered the name for its tunnel, and now >= max(last held, this
 * instance's start) + grace_ms. *out is malloc'd (free()). Writes nothing. */
int es_live_expired(struct es_live *lv, struct es_store *st, long long now_ms, long long grace_ms,
                    struct es_live_expired **out, size_t *n);
/* At a registration, before it is answered: records that connection
 * conn_id of this instance registered names[0..n) of tunnel_id now (their
 * hold time, and name rows like a heartbeat's until the next one rewrites
 * them), so that no instance's sweep sees a route just claimed as unheld
 * in the second before this instance's next heartbeat. One transaction.
 * Returns 0, PX_ERR_INVAL (a reader) or PX_ERR_DB. */
int es_live_hold(struct es_live *lv, const char *conn_id, const char *tunnel_id,
                 const char *const *names, size_t n, long long now_ms);
/* 1 if a live instance other than this one has a connection of tunnel_id
 * that registered hostname (compared in lower case) as of its last
 * heartbeat or es_live_hold; 0 if none; PX_ERR_DB. */
int es_live_held_elsewhere(struct es_live *lv, const char *tunnel_id, const char *hostname,
                           long long now_ms);
/* Forgets the hold record of a route that was released. */
int es_live_forget(struct es_live *lv, const char *tunnel_id, const char *hostname);

/* ---- the serve's side (es_live_serve.c): srv->live and its timer ---- */

struct es_server;
/* Opens srv->live as a new instance (a random id), beats once and starts
 * the heartbeat timer: each beat writes the heartbeat from srv's links,
 * claims again any name its links hold whose route went missing (another
 * instance released it between a registration and its beat), and releases
 * the routes es_live_expired names for srv->hostname_grace_ms (logged: which
 * name, which tunnel, held last when). Returns 0, or < 0 (logged) when
 * live.db cannot be opened: serve runs on without the live view. */
int es_live_start(struct es_server *srv);
/* One beat now. Nothing when srv->live is not open. */
void es_live_beat(struct es_server *srv);
/* Stops the timer (closing its handle) and removes the instance's rows. */
void es_live_stop(struct es_server *srv);

#endif
