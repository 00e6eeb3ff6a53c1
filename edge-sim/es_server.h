/* es_server: the state of a running `edge-sim serve`. One per process. */
#ifndef ES_SERVER_H
#define ES_SERVER_H

#include "es_certs.h"
#include "es_conncap.h"
#include "es_fair.h"
#include "es_live.h"
#include "es_ratelimit.h"
#include "es_registry.h"
#include "es_store.h"
#include "px_list.h"
#include "px_reqid.h"
#include "rt_loop.h"

#include <uv.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

struct es_access;
struct es_admin;
struct es_assert;
struct es_front;
struct es_link;
struct es_link_ops;
struct es_metrics;
struct es_worker;
struct es_workers;

struct es_server {
    uv_loop_t *loop;
    struct rt_loop rt; /* loop's runtime state and RNG (es_server_run; harnesses bring their own) */
    char data_dir[512];
    /* The store (es_store_open): a postgres:// address several edges share,
     * or NULL for the SQLite store in data_dir. Borrowed (argv, environ). */
    const char *store_spec;
    const char *ca_key_file; /* seals the CAs of a PostgreSQL store */
    int store_down;          /* the shared database was last found unreachable */
    int live_failing;        /* heartbeats fail for want of the database (logged once) */
    /* Tunnels connected through other edges (es_live_remotes), refreshed
     * every heartbeat: the hint of a 530 for a tunnel with no link here. */
    struct es_live_remote *remotes;
    size_t n_remotes;
    unsigned poll_ticks; /* db_poll ticks, for the reconciliation period */
    char tunnel_addr[300], https_addr[300], admin_addr[300];
    struct es_store store;
    struct es_certs certs;
    WOLFSSL_CTX *tunnel_ctx; /* tunnel port: client certs from client-ca */
    WOLFSSL_CTX *front_ctx;  /* browser port: certificate chosen by SNI */
    uv_tcp_t tunnel_listener, https_listener, admin_listener;
    struct es_registry reg;
    /* How requests reach tunnel connections (es_req.h): es_link_req_ops in
     * the product, set by es_server_run; a fake in tests. NULL: none (every
     * routed request is answered 530). */
    const struct es_link_ops *link_ops;
    struct es_ratelimit enroll_failures; /* failed enrolments per source address */
    struct es_fair fair;                 /* tunnel streams per client */
    struct es_access *access;            /* access policies (rebuilt when the store changes) */
    struct es_assert *assert;            /* assertion signing keys (likewise) */
    unsigned long long access_gen;       /* bumped at every rebuild */
    char issuer[128];                    /* the assertions' "iss" */
    int access_stale;                    /* the last rebuild failed: retry */
    uv_timer_t db_poll;
    uv_signal_t sigint, sigterm;
    unsigned long long requests_total;
    /* Request ids (es_req_new): the prefix is drawn from the loop's RNG at
     * the first request, then counted on. The server's own, not the
     * process's: with more loops, each loop keeps one. Zeroed: not drawn. */
    struct px_reqid req_ids;
    unsigned long long links_total;
    /* Connection ids (es_link conn_id): a random base drawn once from the
     * loop's RNG (link_ids_ready), mixed with links_total. */
    uint64_t link_id_base;
    int link_ids_ready;
    unsigned idle_timeout_ms;   /* browser connection with no request in progress */
    unsigned header_timeout_ms; /* a request head must be complete within this */
    unsigned body_timeout_ms;   /* a request body may pause this long */
    unsigned handshake_timeout_ms;
    long long cert_lifetime; /* seconds, the connector's certificates (--cert-lifetime);
                                0 means ES_CERT_LIFETIME_DEFAULT */
    struct es_conncap conns; /* open connections, all and per client address */
    unsigned max_conns, max_conns_per_ip;
    int stopping;
    /* Draining (es_drain.h), after the first SIGTERM/SIGINT. */
    unsigned grace_ms;                /* --grace-period: requests in flight may finish this long */
    int drain_phase;                  /* enum es_drain_phase; 0: serving */
    unsigned long long drain_started; /* uv_now when it began */
    uv_timer_t drain_timer;           /* es_drain's tick, while drain_timer_set */
    int drain_timer_set;
    int listening; /* the listeners are open (es_server_run) */
    int exit_code; /* es_server_run's: 0, or 1 after a second signal */
    /* This serve as an instance of the live view shared with the other
     * serves of its data dir (es_live.h; not open in in-memory tests). */
    struct es_live live;
    uv_timer_t live_timer;
    long long hostname_grace_ms; /* --hostname-grace; 0: ES_LIVE_GRACE_DEFAULT_MS */
    /* Live connections of this server, each list kept by its own module
     * (es_link.c, es_front.c): nothing about them is process-wide, so a
     * second server (another loop, a test) keeps its own. */
    struct px_list links; /* connector connections (es_link.all_node); es_link.c
                             initialises it: a zeroed server has none */
    unsigned n_links;
    /* Browser connections (es_front.all_node). A zeroed server is fine:
     * es_front sets the list up when it first needs it. */
    struct px_list fronts;
    /* What the edge counts (es_metrics.h): made by es_server_run; NULL in
     * harnesses that bring none (then nothing is counted). */
    struct es_metrics *metrics;
    int access_log; /* one access line per browser request (serve: on unless
                       --no-access-log; 0 in a zeroed server) */
    /* The admin listener's endpoints and API (es_admin.h): es_admin_start
     * makes them; NULL until then. */
    struct es_admin *admin;
    /* Loops serving browser connections, this one included (--workers;
     * 0 means the number of cores). */
    unsigned n_workers;
    /* On the home loop: the other loops' workers (es_worker.h); NULL when
     * this loop is the only one. */
    struct es_workers *workers;
    /* On a worker's loop, this server holds only its browser connections:
     * its worker, through which requests reach the home loop; NULL on the
     * home loop. */
    struct es_worker *worker;
};

/* What es_store_open opened: srv->store_spec, or the data dir. */
const char *es_server_store_spec(const struct es_server *srv);
/* If another process changed the store, reloads everything read from it
 * (tunnels and routes, access policies, assertion keys) and returns 1; else
 * returns 0. The one way to catch up, so no reader consumes the change
 * notice for the others. */
int es_server_sync(struct es_server *srv);
/* Reloads the same (tunnels and routes, access policies, assertion keys)
 * unconditionally: after a change made through srv's own store connection
 * (the admin API), which es_store_changed does not report. */
void es_server_reload(struct es_server *srv);
/* --grace-period's default. */
#define ES_SERVER_GRACE_MS 30000
/* Runs serve until SIGINT/SIGTERM: the first drains it (es_drain.h), a
 * second stops it at once. Returns the process exit code: 0 once drained or
 * at the grace period's end, 1 after a second signal (or a failed start). */
int es_server_run(struct es_server *srv);

#endif
