/* es_link: one connector connection at the tunnel port: mTLS, enrolment or
 * HTTP/2 (the edge is the client; rt_tunnel runs the session: the control
 * stream, PINGs, GOAWAY), registration and renewals on the control stream,
 * request streams. Requests reach it only through es_link_req_ops (es_req.h's
 * es_link_ops).
 *
 * Errors, and whom they end (like nghttp2_is_fatal):
 *  - one request stream (RST_STREAM; es_req_link_done(r, code)): the
 *    connector resets it; it is above a GOAWAY's last-stream-id
 *    (REFUSED_STREAM); its response head breaks ES_REQ_MAX_HEADER_BYTES or
 *    nghttp2's HTTP checks (es_req_resp_header < 0 becomes
 *    NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE); the browser went away or its
 *    response could not be buffered (cancel: NGHTTP2_CANCEL).
 *  - the link, gracefully (es_link_retire: no new streams, those in flight
 *    finish, then it closes; ES_LINK_RETIRE_MS at most): a GOAWAY from
 *    either side; stream ids exhausted or new streams refused at submit;
 *    its certificate line ended unrenewed (es_link_expire).
 *  - the link, at once (the connection closes; every request on it gets
 *    es_req_link_done(r, NGHTTP2_CANCEL)): an HTTP/2 connection error
 *    (nghttp2_session_mem_recv < 0); a malformed control message, or one
 *    the edge cannot answer (out of memory): NGHTTP2_ERR_CALLBACK_FAILURE;
 *    the control stream closing; PX_H2_PING_MAX_MISSED unanswered PINGs; no
 *    registration within ES_LINK_SETUP_MS; its tunnel deleted (es_link_kill,
 *    permanent); socket, TLS or certificate failures.
 *  - never the link: anything one request does (es_req.h). */
#ifndef ES_LINK_H
#define ES_LINK_H

#include "px_control.h"
#include "px_list.h"
#include "rt_conn.h"
#include "rt_tunnel.h"

#include <nghttp2/nghttp2.h>
#include <stdint.h>

struct es_server;
struct es_tunnel;
struct es_req;

struct es_link {
    struct es_server *srv;
    struct rt_conn conn;
    int mode;             /* 0 undecided, 1 h2, 2 enrol */
    struct rt_tunnel tun; /* the HTTP/2 session: control stream, PINGs, GOAWAY */
    char tunnel_id[33];
    struct es_tunnel *tunnel;
    char conn_id[17];
    int registered;
    int keys_sent;      /* ACCESS_KEYS went out (after the first REGISTERED) */
    int origin_ca_sent; /* ORIGIN_CA went out (likewise) */
    /* RENEW: when each kind (0 tunnel, 1 origin_pull) was last answered
     * (uv_now), if its bit in renew_seen is set. */
    uint64_t renew_last_ms[2];
    /* Its certificate line (es_certs_line): the tunnel certificate it
     * presented and the renewals issued from it. cert_not_after is the
     * latest not_after of the line seen here, the presented one's or a
     * renewal's, on this connection or on another presenting the same key
     * (es_link_line_renewed); once it passes, the edge closes the connection
     * (es_link_expire). 0: unknown (a memory link), never closed. */
    long long cert_not_after;
    long long enrolled_at; /* when the line began (its OU; 0: unknown) */
    long long rotation;    /* its token generation; -1: not in the certificate */
    uint8_t key_hash[32];  /* SHA-256 of the presented certificate's public key */
    int key_known;         /* key_hash is set */
    unsigned renew_seen;
    int dying;
    int retiring;        /* no new streams; closes once the ones in flight end */
    int expiring;        /* its line ended: no new streams; retired once told why */
    char *cap_key;       /* es_conncap admission, released at close */
    struct px_list reqs; /* its requests (es_req.link_node) */
    unsigned n_reqs;     /* request streams open on this link */
    char **names;        /* hostnames (and *.patterns) this connection registered */
    /* per name: 1 its route was found gone (es_link_route_lost); 2 deferred,
     * registered while the shared database was away (es_link_deferred) */
    unsigned char *lost;
    size_t n_names, cap_names;
    /* What its REGISTER said about it (optional there: empty, -1 when absent;
     * a later REGISTER's values replace earlier ones): the connector
     * process, its slot, the edge address it dialed, its software. */
    char connector[PX_CTL_MAX_CONNECTOR_ID + 1];
    int conn_index;
    char edge[PX_CTL_MAX_EDGE_ADDR + 1];
    char agent[65];
    long long registered_at; /* wall-clock seconds of its first registration */
    struct es_link *tunnel_next;
    struct px_list_node all_node; /* in its server's links */
    struct px_buf enroll_in;
};

/* Accepts a connection on the tunnel listener. */
void es_link_accept(struct es_server *srv, uv_stream_t *listener);
/* For tests and fuzzing: a tunnel connection in rt_conn memory mode, past
 * mTLS (ALPN h2) with a client certificate naming tunnel_id; its HTTP/2
 * session has started. The test plays the connector through
 * rt_conn_memory_feed(&l->conn, ...) and l->conn.mem_out. l is owned by its
 * connection (freed after on_close; es_link_count(srv) tells). NULL on no memory. */
struct es_link *es_link_new_memory(struct es_server *srv, const char *tunnel_id,
                                   const char *peer_ip);
/* Closes l promptly, telling the connector why (permanent: do not retry). */
void es_link_kill(struct es_link *l, const char *code, const char *message, int permanent);
/* Retires l: it takes no new streams (it leaves the tunnel's usable links at
 * once), the streams in flight finish, then it closes; after
 * ES_LINK_RETIRE_MS it closes regardless. why is logged. Used when either
 * side sent GOAWAY, and when the session can open no more streams. */
void es_link_retire(struct es_link *l, const char *why);
#define ES_LINK_RETIRE_MS 30000
/* After the handshake, an enrolment request or a registration must arrive
 * within this, or the connection is closed. */
#define ES_LINK_SETUP_MS 10000
/* 1 if l can take a new stream now: registered, not dying or retiring, the
 * session allows requests and it is below its capacity. */
int es_link_usable(const struct es_link *l);
/* Streams l may carry at once: the connector's MAX_CONCURRENT_STREAMS,
 * at most ES_LINK_MAX_STREAMS. */
unsigned es_link_capacity(const struct es_link *l);
#define ES_LINK_MAX_STREAMS 4096
/* 1 if l registered a name (exact, or a *.pattern) that covers host
 * (normalised). Requests for host go only to such connections. */
int es_link_serves(const struct es_link *l, const char *host);
/* A read-only view of a registered connection for the live view (es_live)
 * and the admin API. Every pointer points into l and is valid while l is. */
struct es_link_info {
    const char *conn_id;
    const char *tunnel_id;
    const char *connector; /* "" when the connector did not say */
    int conn_index;        /* -1 when the connector did not say */
    const char *edge;      /* the address it dialed; "" when not said */
    const char *agent;     /* "" when not said */
    const char *peer_ip;
    long long since; /* wall-clock seconds of its first registration */
    const char *const *names;
    size_t n_names;
};
/* Fills *info for l. Returns 1 if l is registered and not closing (a
 * connection that holds its names), else 0 (*info still filled). */
int es_link_info(const struct es_link *l, struct es_link_info *info);
/* Records whether the route of names[k] (es_link_info's) is missing now
 * (taken by another tunnel, say). Returns 1 when it has just gone missing,
 * so that the live view logs each (connection, name) once while it lasts,
 * not on every heartbeat; else 0. */
int es_link_route_lost(struct es_link *l, size_t k, int lost);
/* 1 if names[k] was registered while the shared database was away
 * (es_registry_claim said PX_ERR_UNAVAILABLE): kept among l's names but not
 * routed, and claimed by the live view's beats once the database is back. */
int es_link_deferred(const struct es_link *l, size_t k);
/* Ends the deferral of names[k]: granted (claimed now) or refused (why).
 * The connector is told with a REGISTERED result, as for a name added by a
 * reload; a refused name is dropped from l's names, which moves the last
 * name to k. Returns 0, or < 0 when the message could not be sent. */
int es_link_deferred_done(struct es_link *l, size_t k, int granted, const char *why);
/* Calls cb for each of srv's links (registered or not; es_link_info says). */
void es_link_each(struct es_server *srv, void (*cb)(struct es_link *l, void *arg), void *arg);
/* Request streams open on l. */
unsigned es_link_load(const struct es_link *l);
/* How requests reach links (es_req.h's es_link_ops; es_server.link_ops):
 * budget and pick choose among a tunnel's links (es_registry_budget /
 * es_registry_pick); submit opens an HTTP/2 stream whose user data is the
 * request (a link that can open no more streams is retired, and submit
 * fails); req_more resumes its deferred body; resp_consumed credits its
 * window; cancel resets it (RST_STREAM CANCEL). The link calls
 * es_req_link_done once per submitted request: when its stream closes, or
 * with NGHTTP2_CANCEL when the link itself closes. */
extern const struct es_link_ops es_link_req_ops;
/* Number of srv's live links (for admin). */
unsigned es_link_count(const struct es_server *srv);
/* Closes every link of srv (shutdown): the final GOAWAY, then the close. */
void es_link_close_all(struct es_server *srv);
/* Draining (es_drain.h): sends every HTTP/2 link of srv a GOAWAY notice
 * (rt_tunnel_goaway_notice); the links stay usable. A link whose session
 * starts later gets one then. Returns how many were told. */
unsigned es_link_goaway_notice_all(struct es_server *srv);
/* Request streams open on all of srv's links (for the log). */
unsigned es_link_streams(struct es_server *srv);
/* A tunnel certificate was issued to continue l's line, valid until
 * not_after: l and every other H2 connection of srv that presents the same
 * key for the same tunnel and line (the connector's other links: they all
 * present the certificate the renewal replaces) count not_after as the
 * line's end from now on (never earlier than what they had). */
void es_link_line_renewed(struct es_link *l, long long not_after);
/* Closes every H2 connection of srv whose certificate line ended at or
 * before now (wall-clock seconds; cert_not_after known): it tells the
 * connector why (error "cert_expired", not permanent) and retires the
 * connection (GOAWAY once that is out, at the latest on the next call;
 * streams in flight finish, ES_LINK_RETIRE_MS at most).
 * A connector that can renew never gets there; one that cannot, say its
 * token was replaced, must enrol again. Returns how many it closed. */
unsigned es_link_expire(struct es_server *srv, long long now);
/* A connection answers one RENEW per kind per this many ms. */
#define ES_LINK_RENEW_INTERVAL_MS 5000
/* Sends every registered connector connection of srv the current
 * assertion keys (ACCESS_KEYS), after they changed. */
void es_link_send_access_keys_all(struct es_server *srv);

#endif
