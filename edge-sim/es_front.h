/* es_front: browser-facing HTTPS: TLS with a certificate per SNI name, then
 * HTTP/1.1 (es_front_h1) or HTTP/2 (es_front_h2) by ALPN. */
#ifndef ES_FRONT_H
#define ES_FRONT_H

#include "es_peer.h"
#include "px_hdracc.h"
#include "px_list.h"
#include "rt_conn.h"

#include <http_parser.h>
#include <nghttp2/nghttp2.h>
#include <stdint.h>

struct es_server;
struct es_req;

struct es_front {
    struct es_server *srv;
    struct rt_conn conn;
    int proto;           /* 0 undecided, 1 = h1, 2 = h2 */
    char sni[256];       /* TLS server name the client asked for, normalised; "" if none */
    struct es_peer peer; /* the client certificate it presented, if any */
    /* h2 */
    nghttp2_session *h2;
    struct px_list reqs; /* open h2 streams (es_req.front_node) */
    /* h1 */
    http_parser parser;
    struct px_buf in;     /* unparsed bytes while a response is in progress */
    struct es_req *cur;   /* request being received or answered */
    struct px_hdracc hdr; /* header fields being accumulated */
    char *url;
    size_t url_len;
    int head_sent;
    int chunked_out;
    int keep_alive;
    int close_after;
    int req_complete;
    int expect_continue;
    int upgraded;    /* WebSocket: after the head, bytes pass through unparsed */
    int in_trailers; /* the head is complete: header callbacks are trailers, dropped */
    size_t header_bytes;
    struct px_list_node all_node; /* in srv->fronts */

    uv_timer_t idle;     /* the connection's deadlines: idle, request head, request body */
    uint64_t idle_since; /* no request in progress since */
    uint64_t head_since; /* the oldest unfinished request head started */
    unsigned heads;      /* request heads started, not complete */
    int requests_seen;   /* a request head completed on this connection */
    char *cap_key;       /* es_conncap admission, released at close */
    /* On a worker's loop: the home loop's copy of peer (es_worker.h), given
     * back to the home loop at close; NULL without a certificate. */
    struct es_peer *home_peer;
};

int es_front_ctx_init(struct es_server *srv);
/* Accepts the connection waiting on listener, or (with workers) hands it
 * to the loop whose turn it is (es_workers_take). */
void es_front_accept(struct es_server *srv, uv_stream_t *listener);
/* On a worker's loop: serves the accepted connection fd (owned from here
 * on), admitted by the home loop's caps with cap_key (given back at close
 * through es_worker_conn_closed). */
void es_front_adopt(struct es_server *srv, int fd, char *cap_key);
/* Closes every browser connection of srv (shutdown). */
void es_front_close_all(struct es_server *srv);
/* Draining (es_drain.h). final 0: HTTP/2 connections get a GOAWAY notice;
 * HTTP/1.1 ones with no request in progress, and handshakes not finished,
 * close; the others close after their response (es_front_h1.c checks
 * srv->drain_phase). final 1: HTTP/2 connections get the final GOAWAY and
 * close once their streams are done. Returns the HTTP/2 connections told. */
unsigned es_front_drain(struct es_server *srv, int final);
/* After the access policies changed (a revocation, a new policy): ends every
 * request in progress on srv's browser connections, WebSockets and TCP
 * streams included, that its connection's certificate no longer allows
 * (HTTP/2: that stream is reset; HTTP/1.1: the connection is cut). */
void es_front_recheck_access(struct es_server *srv);
/* For tests and fuzzing: a browser connection in rt_conn memory mode, past
 * TLS with ALPN alpn ("h2" or "http/1.1") from peer_ip. The test feeds it
 * with rt_conn_memory_feed(&f->conn, ...) and reads f->conn.mem_out. f is
 * owned by its connection as an accepted one is: freed after on_close (watch
 * es_front_count(srv) to know when). NULL on no memory. */
struct es_front *es_front_new_memory(struct es_server *srv, const char *alpn, const char *peer_ip);
/* Number of srv's live browser connections. */
unsigned es_front_count(const struct es_server *srv);
/* Deadlines (see es_front.c): call es_front_idle_arm when no request is in
 * progress any more; es_front_head_begin when a request head starts and
 * es_front_head_end when it is complete (or abandoned), after dispatching;
 * es_front_body_seen when request-body bytes arrive or leave for the tunnel. */
void es_front_idle_arm(struct es_front *f);
void es_front_head_begin(struct es_front *f);
void es_front_head_end(struct es_front *f);
void es_front_body_seen(struct es_front *f, struct es_req *r);
/* Deadline actions, per protocol: h1 answers 408 (head: 1) or gives up on
 * the request, then closes; h2 resets stream r, or (r NULL: a head never
 * completed) ends the connection with GOAWAY. */
void es_front_h1_timeout(struct es_front *f, int head);
void es_front_h2_timeout(struct es_front *f, struct es_req *r);

/* Per protocol (es_front_h1.c / es_front_h2.c). */
int es_front_h1_start(struct es_front *f);
int es_front_h1_on_data(struct es_front *f, const uint8_t *data, size_t len);
int es_front_h1_on_writable(struct es_front *f);
void es_front_h1_on_close(struct es_front *f);
int es_front_h2_start(struct es_front *f);
int es_front_h2_on_data(struct es_front *f, const uint8_t *data, size_t len);
int es_front_h2_on_writable(struct es_front *f);
void es_front_h2_on_close(struct es_front *f);
/* es_front_drain for one HTTP/2 connection. Returns 0 or -1 (no session, or
 * nghttp2 refused the GOAWAY). */
int es_front_h2_drain(struct es_front *f, int final);

#endif
