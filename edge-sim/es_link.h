/* es_link: one connector connection at the tunnel port: mTLS, enrolment or
 * HTTP/2 (the edge is the client), the control stream, request streams. */
#ifndef ES_LINK_H
#define ES_LINK_H

#include "px_control.h"
#include "px_h2.h"
#include "rt_conn.h"

#include <nghttp2/nghttp2.h>

struct es_server;
struct es_tunnel;
struct es_req;

struct es_link {
    struct es_server *srv;
    struct rt_conn conn;
    int mode; /* 0 undecided, 1 h2, 2 enrol */
    nghttp2_session *h2;
    char tunnel_id[33];
    struct es_tunnel *tunnel;
    char conn_id[17];
    int32_t control_id;
    struct px_h2_outbox control_out;
    struct px_ctl_framer control_in;
    int registered;
    int dying;
    struct es_req *reqs;
    struct es_link *tunnel_next;
    struct es_link *all_next, *all_prev;
    struct px_buf enroll_in;
    uv_timer_t ping_timer;
    unsigned pings_outstanding;
};

/* Accepts a connection on the tunnel listener. */
void es_link_accept(struct es_server *srv, uv_stream_t *listener);
/* For tests and fuzzing: a tunnel connection in rt_conn memory mode, past
 * mTLS (ALPN h2) with a client certificate naming tunnel_id; its HTTP/2
 * session has started. The test plays the connector through
 * rt_conn_memory_feed(&l->conn, ...) and l->conn.mem_out. l is owned by its
 * connection (freed after on_close; es_link_count() tells). NULL on no memory. */
struct es_link *es_link_new_memory(struct es_server *srv, const char *tunnel_id,
                                   const char *peer_ip);
/* Closes l promptly, telling the connector why (permanent: do not retry). */
void es_link_kill(struct es_link *l, const char *code, const char *message, int permanent);
/* Opens a tunnel stream for r. Returns 0 or < 0. */
int es_link_submit(struct es_link *l, struct es_req *r, int has_body);
/* Request body became available / ended for r. */
void es_link_req_more(struct es_link *l, struct es_req *r);
/* The front took n response bytes of r: credit the tunnel stream. */
void es_link_resp_consumed(struct es_link *l, struct es_req *r, size_t n);
/* The front abandoned r: reset its tunnel stream. */
void es_link_cancel(struct es_link *l, struct es_req *r);
/* Number of live links (for admin). */
unsigned es_link_count(void);
/* Closes every link (shutdown). */
void es_link_close_all(void);

#endif
