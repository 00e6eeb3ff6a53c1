/* cn_link: one tunnel connection to the edge: TCP+TLS (rt_conn) carrying an
 * HTTP/2 session in which the connector is the server (rt_tunnel: the
 * control stream, PINGs, GOAWAY). Streams opened by the edge are requests
 * (cn_stream); the link registers its hostnames on the control stream and
 * routes the control messages it gets. */
#ifndef CN_LINK_H
#define CN_LINK_H

#include "cn_stream.h"
#include "px_control.h"
#include "px_list.h"
#include "rt_conn.h"
#include "rt_tunnel.h"

#include <nghttp2/nghttp2.h>

/* Concurrent streams the connector accepts per link (SETTINGS). */
#define CN_LINK_MAX_STREAMS 2048
/* After a GOAWAY either way, how long the link may live on: the streams in
 * flight finish, and after the edge's GOAWAY (it is draining) the edge may
 * still open streams for the browsers it is finishing. Longer than an
 * edge's grace period (edge-sim serve --grace-period, default 30 s) with a
 * wide margin, so the edge, not this deadline, ends a draining link; an
 * edge given a grace above it has such links closed here at 150 s. */
#define CN_LINK_GOAWAY_MS 150000
/* TCP connect plus TLS handshake to the edge: short enough that two failed
 * attempts at an unreachable edge and the move to another one fit in the
 * 45 s within which a partitioned edge's connections are replaced. */
#define CN_LINK_CONNECT_MS 5000
/* Response bytes the link holds for all its streams together: above it,
 * streams stop reading their origins until it is half drained. */
#define CN_LINK_BUFFER_CAP (32 * 1024 * 1024)

struct cn_link;
struct cn_stream;
struct cn_assert_keys;
struct cn_creds;
struct cn_ingress;
struct cn_origin;
struct cn_rule;

/* What a link asks of whoever keeps it (the supervisor; a test). The link
 * is a transport: it knows nothing of slots, reconnects or enrolment. Every
 * function gets the host's arg first. */
struct cn_link_host_ops {
    /* The edge accepted the registration: l carries requests now. */
    void (*ready)(void *arg, struct cn_link *l);
    /* l is going away: it carries no new control requests and the host
     * should replace it. clean: the edge's GOAWAY with NO_ERROR (the edge
     * is draining): l stays up and serves every stream the edge still opens
     * until the edge closes it (or CN_LINK_GOAWAY_MS). Otherwise (a GOAWAY
     * with an error, either way) l finishes its streams, then closes. */
    void (*retiring)(void *arg, struct cn_link *l, int clean);
    /* l is gone (called exactly once per started link); the host may free
     * it from here on. */
    void (*closed)(void *arg, struct cn_link *l);
    /* The edge refused this tunnel for good (msg says why): stop. */
    void (*fatal)(void *arg, const char *msg);
    /* Control messages about the tunnel's credentials, not the link:
     * RENEWED, ORIGIN_CA and a non-permanent ERROR renew_failed. */
    void (*control)(void *arg, struct cn_link *l, const struct px_ctl_msg *m);
    /* The hostnames to register; owned by the host, valid for the call. */
    void (*hostnames)(void *arg, char ***names, size_t *n);
    /* The TLS context to dial with (its current certificate); borrowed. */
    WOLFSSL_CTX *(*tls_ctx)(void *arg);
};

struct cn_link_host {
    const struct cn_link_host_ops *ops;
    void *arg;
    const char *server_name; /* the edge's TLS name (the host's, outlives l) */
    /* REGISTER's connector: this process's id, the same on all its links
     * (the host's, outlives l); NULL: not sent. */
    const char *connector_id;
    struct cn_stream_env env; /* handed to every stream as is; env.loop is l's loop */
};

enum cn_link_state { CN_LINK_CONNECTING, CN_LINK_HANDSHAKE, CN_LINK_READY, CN_LINK_CLOSED };

/* Why a link closed: what the supervisor decides on (reconnect, enrol
 * again), never the words of close_reason, which are for the log. */
enum cn_link_cause {
    CN_LINK_OPEN = 0,             /* not closed (yet) */
    CN_LINK_CAUSE_LOCAL,          /* cn_link_close: stopping, drained, replaced */
    CN_LINK_CAUSE_RESOLVE,        /* bad edge address, or its name did not resolve */
    CN_LINK_CAUSE_CONNECT,        /* TCP connect failed, or the socket broke */
    CN_LINK_CAUSE_CERT_REFUSED,   /* the edge refused our certificate (its fatal TLS alert) */
    CN_LINK_CAUSE_TLS,            /* any other TLS failure (e.g. the edge's certificate) */
    CN_LINK_CAUSE_PROTOCOL,       /* HTTP/2 error, or no h2 agreed */
    CN_LINK_CAUSE_DEAD_PEER,      /* PX_H2_PING_MAX_MISSED pings unanswered */
    CN_LINK_CAUSE_PEER_CLOSED,    /* the edge closed the connection or the control stream */
    CN_LINK_CAUSE_GOAWAY_TIMEOUT, /* streams outlived CN_LINK_GOAWAY_MS after a GOAWAY */
    CN_LINK_CAUSE_NOMEM,
    CN_LINK_CAUSE_TIMEOUT, /* TCP connect plus TLS handshake outlived CN_LINK_CONNECT_MS */
    CN_LINK_CAUSE_REFUSED, /* the edge refused the registration (permanent ERROR, or
                              every hostname refused) */
};

struct cn_link {
    struct cn_link_host host;
    unsigned index;
    char edge[300];
    struct rt_conn conn;
    struct rt_tunnel tun; /* the HTTP/2 session: control stream, PINGs, GOAWAY */
    enum cn_link_state state;
    struct px_list streams; /* all live request streams (their cn_stream_hnode) */
    unsigned n_streams;
    int registered;
    int saw_open;     /* TLS handshake completed */
    int draining;     /* told the edge to send nothing new; closes when idle */
    int goaway_clean; /* going away (tun.going_away) after the edge's GOAWAY with NO_ERROR */
    int closing_self; /* cn_link_close was called */
    /* A node the host may keep l in a list by (the supervisor's retired
     * links); the link never touches it. */
    struct px_list_node host_node;
    int permanent_error;                /* the edge said not to retry */
    struct px_tls_failure tls_failure;  /* how TLS failed, if it did: cn_link_tls_failure */
    int tunnel_closed;                  /* the session's close callback ran */
    uv_getaddrinfo_t resolve;           /* the edge's name lookup */
    int resolving;                      /* ...is pending: the close waits for its callback */
    enum cn_link_cause cause;           /* use cn_link_close_cause */
    char close_reason[512];             /* its words, for the log: cn_link_close_reason */
    size_t buffered;                    /* response bytes its streams hold (their hold() calls) */
    struct cn_assert_keys *assert_keys; /* the latest ACCESS_KEYS; use cn_link_assert_keys */
};

/* Starts a link to edge address addr ("host:port", resolved by getaddrinfo
 * on the thread pool) for host (copied). Returns 0 or < 0; on success
 * host->ops->closed is called exactly once later.
 *
 * Errors: a failure of one request never reaches the link (cn_stream.h);
 * the link closes, with a cn_link_cause, on a broken or refused connection,
 * an HTTP/2 protocol error or an nghttp2 error for which nghttp2_is_fatal()
 * holds (out of memory), unanswered pings, the edge closing the control
 * stream or a malformed control message, and streams outliving a GOAWAY. */
int cn_link_start(struct cn_link *l, const struct cn_link_host *host, unsigned index,
                  const char *addr);
/* For tests and fuzzing: starts l with its connection in rt_conn memory mode,
 * past TLS with ALPN h2 (the HTTP/2 server session is up). The test plays the
 * edge through rt_conn_memory_feed(&l->conn, ...) and l->conn.mem_out. As
 * with cn_link_start, host->ops->closed is called exactly once later. */
int cn_link_start_memory(struct cn_link *l, const struct cn_link_host *host, unsigned index);
/* Graceful drain: asks the edge to route nothing new here, then closes
 * once the streams in flight have finished (or at cn_link_close). */
void cn_link_drain(struct cn_link *l);
/* Closes the link gracefully (GOAWAY, then TLS close). */
void cn_link_close(struct cn_link *l, const char *reason);

/* Sends a REGISTER or UNREGISTER control message for names. */
int cn_link_send_hostnames(struct cn_link *l, enum px_ctl_type type, char **names, size_t n);

/* Sends RENEW {kind, pub_pem} (docs/protocol.md 6.5). Returns 0 or < 0. */
int cn_link_send_renew(struct cn_link *l, const char *kind, const char *pub_pem);
/* Whether l can carry a new control request now: registered, not draining
 * or going away. */
int cn_link_usable(const struct cn_link *l);

/* The keys of the edge's identity assertions that arrived on l (its
 * latest ACCESS_KEYS message, see cn_assert.h), or NULL when none did or
 * the last could not be read. Owned by l and replaced by the next
 * ACCESS_KEYS: use it within one callback, do not keep it. */
const struct cn_assert_keys *cn_link_assert_keys(const struct cn_link *l);
/* Why l closed (CN_LINK_OPEN while it is not closed), and the words for
 * the log (never decided on). */
enum cn_link_cause cn_link_close_cause(const struct cn_link *l);
const char *cn_link_close_reason(const struct cn_link *l);
/* How TLS failed on a closed l (kind PX_TLS_FAIL_NONE when it did not). */
const struct px_tls_failure *cn_link_tls_failure(const struct cn_link *l);
/* The index l was started with, the edge address it dials, and whether
 * the edge accepted its registration. */
unsigned cn_link_index(const struct cn_link *l);
const char *cn_link_edge(const struct cn_link *l);
int cn_link_registered(const struct cn_link *l);
/* Requests in flight on l. */
unsigned cn_link_stream_count(const struct cn_link *l);

#endif
