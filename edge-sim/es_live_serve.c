/* es_live_serve: a running serve's instance in the live view (es_live.h):
 * its heartbeat timer, and the release of hostnames nobody holds. */
#include "es_link.h"
#include "es_live.h"
#include "px_err.h"
#include "es_registry.h"
#include "es_server.h"
#include "px_cert.h"
#include "px_log.h"
#include "px_pki.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The registered connections of a server, as es_link_info views. */
struct infos {
    struct es_link_info *a;
    size_t n, cap;
    int err;
};

static void collect(struct es_link *l, void *arg)
{
    struct infos *v = arg;
    struct es_link_info i;
    if (v->err || !es_link_info(l, &i))
        return;
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        struct es_link_info *a = realloc(v->a, cap * sizeof(*a));
        if (!a) {
            v->err = 1;
            return;
        }
        v->a = a;
        v->cap = cap;
    }
    v->a[v->n++] = i;
}

static int has_route(const struct es_registry *r, const char *tunnel_id, const char *hostname)
{
    const struct es_route *rt = es_registry_route(r, hostname);
    return rt && strcmp(rt->tunnel_id, tunnel_id) == 0;
}

/* A name one of our connections serves has no route (another instance
 * released it in the second between the registration and our beat, or the
 * store was edited): claim it again so requests keep reaching it. A route
 * another tunnel took cannot be: that is logged once per connection and
 * name while it lasts, not on every beat. */
static void reclaim(struct es_link *l, void *arg)
{
    struct es_server *srv = arg;
    struct es_link_info info;
    if (!es_link_info(l, &info))
        return;
    /* Downwards: a deferred name refused now leaves the list, and the last
     * name, already seen, takes its place. */
    for (size_t k = info.n_names; k-- > 0;) {
        const char *name = info.names[k];
        int deferred = es_link_deferred(l, k);
        if (has_route(&srv->reg, info.tunnel_id, name)) {
            if (deferred)
                es_link_deferred_done(l, k, 1, NULL);
            es_link_route_lost(l, k, 0);
            continue;
        }
        struct es_tunnel *t = es_registry_tunnel(&srv->reg, info.tunnel_id);
        char why[160];
        if (!t)
            continue;
        int rc = es_registry_claim(&srv->reg, &srv->store, t, name, why, sizeof(why));
        if (deferred && rc != PX_ERR_UNAVAILABLE) {
            /* Registered during the outage: granted or refused now. */
            if (rc == 0)
                PX_INFO("tunnel %s: hostname %s, registered while the database was away, "
                        "claimed for connection %s",
                        t->name, name, info.conn_id);
            else
                PX_WARN("tunnel %s: hostname %s, registered while the database was away, "
                        "refused for connection %s: %s",
                        t->name, name, info.conn_id, why);
            es_link_deferred_done(l, k, rc == 0, why);
            continue;
        }
        if (deferred)
            continue; /* still away */
        if (rc == 0) {
            es_link_route_lost(l, k, 0);
            PX_INFO("tunnel %s: hostname %s claimed again for connection %s", t->name, name,
                    info.conn_id);
        } else if (es_link_route_lost(l, k, 1)) {
            PX_WARN("tunnel %s: connection %s serves %s, whose route is gone: %s (not logged "
                    "again while it lasts)",
                    t->name, info.conn_id, name, why);
        } else {
            PX_DEBUG("tunnel %s: connection %s serves %s, whose route is still gone: %s", t->name,
                     info.conn_id, name, why);
        }
    }
}

/* Releases the routes nobody held for the grace. Both instances may do it:
 * deleting a route twice deletes it once. */
static void release_expired(struct es_server *srv, long long now)
{
    struct es_live_expired *e;
    size_t n;
    if (es_live_expired(&srv->live, &srv->store, now, srv->hostname_grace_ms, &e, &n) < 0) {
        PX_WARN("live view: cannot look for hostnames to release");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct es_tunnel *t = es_registry_tunnel(&srv->reg, e[i].tunnel_id);
        int rc = t ? es_registry_release(&srv->reg, &srv->store, t, e[i].hostname)
                   : es_store_route_release(&srv->store, e[i].hostname, e[i].tunnel_id);
        if (rc < 0) {
            PX_WARN("cannot release hostname %s of tunnel %s", e[i].hostname, e[i].tunnel_id);
            continue;
        }
        es_live_forget(&srv->live, e[i].tunnel_id, e[i].hostname);
        char when[21];
        if (e[i].last_held_ms > 0) {
            px_cert_time(e[i].last_held_ms / 1000, when);
            PX_INFO("tunnel %s: hostname %s released: no connection has registered it since %s",
                    t ? t->name : e[i].tunnel_id, e[i].hostname, when);
        } else {
            px_cert_time(srv->live.started_ms / 1000, when);
            PX_INFO("tunnel %s: hostname %s released: no connection registered it since this "
                    "edge started (%s)",
                    t ? t->name : e[i].tunnel_id, e[i].hostname, when);
        }
    }
    free(e);
}

void es_live_beat(struct es_server *srv)
{
    if (!srv->live.db)
        return;
    struct infos v = {0};
    es_link_each(srv, collect, &v);
    struct es_live_self self = {.tunnel_addr = srv->tunnel_addr,
                                .https_addr = srv->https_addr,
                                .admin_addr = srv->admin_addr,
                                .pid = (long long)getpid()};
    long long now = es_live_now_ms();
    /* A shared database away: one reconnection step per beat, and one
     * warning for the whole outage, not one a second. */
    es_sql_reconnect(srv->live.db, now, ES_LIVE_HEARTBEAT_MS);
    int rc = v.err ? PX_ERR_NOMEM : es_live_heartbeat(&srv->live, &self, v.a, v.n, now);
    if (rc == PX_ERR_UNAVAILABLE) {
        if (!srv->live_failing)
            PX_WARN("live view: the shared database is unreachable (%s); heartbeats resume "
                    "when it is back",
                    es_sql_errmsg(srv->live.db));
        srv->live_failing = 1;
    } else if (v.err) {
        PX_WARN("live view: out of memory; heartbeat skipped");
    } else if (rc < 0) {
        PX_WARN("live view: heartbeat failed (%s); trying again in a second",
                es_sql_errmsg(srv->live.db));
    } else {
        if (srv->live_failing)
            PX_INFO("live view: heartbeats resumed");
        srv->live_failing = 0;
        struct es_live_remote *rem;
        size_t nr;
        if (es_live_remotes(&srv->live, now, &rem, &nr) == 0) {
            free(srv->remotes);
            srv->remotes = rem;
            srv->n_remotes = nr;
        }
        es_link_each(srv, reclaim, srv);
        release_expired(srv, now);
    }
    free(v.a);
}

static void on_beat(uv_timer_t *t)
{
    es_live_beat(t->data);
}

int es_live_start(struct es_server *srv)
{
    uint8_t rnd[8];
    char id[17], why[700];
    if (px_pki_random(rt_loop_rng(rt_loop_of(srv->loop)), rnd, sizeof(rnd)) < 0)
        return -1;
    for (int i = 0; i < 8; i++)
        snprintf(id + 2 * i, 3, "%02x", rnd[i]);
    if (srv->hostname_grace_ms < ES_LIVE_GRACE_MIN_MS)
        srv->hostname_grace_ms = ES_LIVE_GRACE_DEFAULT_MS;
    if (es_live_open(&srv->live, es_server_store_spec(srv), id, es_live_now_ms(), why,
                     sizeof(why)) < 0) {
        PX_ERROR("%s; running without the live view (no hostname releases)", why);
        return -1;
    }
    PX_INFO("edge instance %s; hostnames no connection registers are released after %lld s", id,
            srv->hostname_grace_ms / 1000);
    es_live_beat(srv);
    uv_timer_init(srv->loop, &srv->live_timer);
    srv->live_timer.data = srv;
    uv_timer_start(&srv->live_timer, on_beat, ES_LIVE_HEARTBEAT_MS, ES_LIVE_HEARTBEAT_MS);
    return 0;
}

void es_live_stop(struct es_server *srv)
{
    if (!srv->live.db)
        return;
    uv_timer_stop(&srv->live_timer);
    uv_close((uv_handle_t *)&srv->live_timer, NULL);
    es_live_close(&srv->live);
    free(srv->remotes);
    srv->remotes = NULL;
    srv->n_remotes = 0;
}
