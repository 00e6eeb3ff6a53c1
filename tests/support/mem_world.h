/* mem_world: an edge and a connector wired together in memory, for fuzz
 * targets and the allocation-failure test. Every connection runs in rt_conn
 * memory mode and the real product code runs on both ends:
 *
 *   browser bytes -> es_front (h1/h2) -> es_req -> es_link (HTTP/2 client)
 *        <=> bytes moved by mw_pump <=> cn_link (HTTP/2 server) -> cn_stream
 *
 * The connector answers from its ingress rules (use hello_world and
 * http_status rules: no origin is contacted). The edge keeps its tunnel in a
 * SQLite store in a private temporary directory.
 *
 * Objects are owned as in the product: a front or link is freed by its own
 * close. The mw_* helpers track which are still alive (w->front, w->el, w->cl
 * are NULL once gone), and mw_close_all() ends every connection and runs the
 * loop until all of them are freed, so each run leaves nothing behind. */
#ifndef MEM_WORLD_H
#define MEM_WORLD_H

#include "cn_supervisor.h"
#include "es_front.h"
#include "es_link.h"
#include "es_server.h"
#include "px_buf.h"

#include <nghttp2/nghttp2.h>
#include <uv.h>

#define MW_TUNNEL_ID "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0"
#define MW_CLIENT_IP "203.0.113.7"
/* The TLS server name a memory browser connection stands for (the edge
 * serves only this host on it; others get 421). */
#define MW_SNI "app.fuzz.test"

struct mw {
    uv_loop_t loop;
    struct rt_loop rl; /* the loop's runtime state, shared by both ends */
    uv_idle_t awake;   /* keeps uv_run(NOWAIT) iterating (and flushing) */
    char dir[64];
    struct es_server srv;
    struct cn_config cfg;
    struct cn_supervisor sup;
    /* Live objects of the current run (NULL when absent or gone). */
    struct es_front *front;
    struct es_link *el;
    struct cn_link *cl;
    /* Everything the front wrote to the browser in this run. */
    struct px_buf front_out;
    /* When set, what the links write is not delivered (a harness that plays
     * one end itself); its first 64 KiB per run are kept in link_out. */
    int detached;
    struct px_buf link_out;
};

/* Replaces the connector's rules with ingress_json (errors on stderr).
 * Returns 0 or -1 (the rules stay). */
int mw_set_ingress(struct mw *w, const char *ingress_json);

/* Builds the edge (store, one tunnel MW_TUNNEL_ID routing *.fuzz.test and
 * fuzz.test) and the connector (ingress_json). Logging is silenced. Returns 0
 * or -1 with a message on stderr. */
int mw_init(struct mw *w, const char *ingress_json);
void mw_cleanup(struct mw *w);

/* Puts the routes back as mw_init left them (a fuzzed REGISTER or UNREGISTER
 * changes them). */
void mw_reset_routes(struct mw *w);

/* Opens the edge link and the connector link and pumps until the connector
 * registered. Returns 0, or -1 if that did not happen (out of memory, say);
 * what was opened is still closed by mw_close_all. */
int mw_links_open(struct mw *w);
/* Only one end: the edge link (the harness plays the connector) or the
 * connector link (the harness plays the edge). Returns 0 or -1. */
int mw_edge_link_open(struct mw *w);
int mw_conn_link_open(struct mw *w);
/* Opens a browser connection with ALPN alpn. Returns 0 or -1. */
int mw_front_open(struct mw *w, const char *alpn);

/* Feeds browser bytes to the front, pumping while its reads are paused.
 * Returns 0, or -1 once the front is closed or closing. */
int mw_front_feed(struct mw *w, const void *data, size_t len);
/* Feeds bytes to one link as if from the other end. Returns 0 or -1. */
int mw_el_feed(struct mw *w, const void *data, size_t len);
int mw_cl_feed(struct mw *w, const void *data, size_t len);

/* The browser goes away; pumps until the front is freed. Returns 0, or -1
 * if it is still alive. */
int mw_front_close(struct mw *w);
/* Proves the tunnel still serves: a fresh HTTP/1.1 browser connection asks
 * app.fuzz.test (a hello_world rule) for a page and must get a 200. Returns
 * 0, or -1 with the reason on stderr. */
int mw_canary(struct mw *w);

/* Moves bytes between the links, collects the front's output and runs the
 * loop, until nothing moves (bounded). */
void mw_pump(struct mw *w);
/* One round for an HTTP/2 peer the test plays (a browser on the front, an
 * edge on the connector's link): what h2 has to send goes in through feed
 * (mw_front_feed, mw_cl_feed...), the world is pumped, what arrived in
 * `in` (w->front_out, w->link_out) is taken by h2, and h2's answers to it
 * go out. Returns 0, or -1 when feed refused bytes or h2 failed. */
int mw_h2_round(struct mw *w, nghttp2_session *h2,
                int (*feed)(struct mw *w, const void *data, size_t len), struct px_buf *in);

/* Closes every connection of the run and runs the loop until all are
 * freed. Returns 0, or -1 if something was still alive after that. */
int mw_close_all(struct mw *w);

#endif
