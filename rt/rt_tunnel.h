/* rt_tunnel: the HTTP/2 session of one tunnel connection, either end. What
 * the connector (cn_link, the HTTP/2 server) and the edge (es_link, the
 * client) do alike lives here, once:
 *  - the session, with the tunnel's SETTINGS and flow-control windows
 *    (PX_H2_TUNNEL_STREAM_WINDOW / PX_H2_TUNNEL_CONN_WINDOW, credit returned
 *    by hand as bytes move on);
 *  - the control stream: the client opens it at start (POST /.tunnel/control
 *    with a tunnel-control header), the server answers the first such
 *    request (200, application/x-ndjson) and refuses any later one
 *    (RST_STREAM PROTOCOL_ERROR); NDJSON messages (px_control.h) go out
 *    through rt_tunnel_send and come in through ops->control;
 *  - keepalive: a PING every ping interval; PX_H2_PING_MAX_MISSED left
 *    unanswered and the peer is dead (ops->fail);
 *  - going away: a GOAWAY either way, or rt_tunnel_retire, means no new
 *    streams; those in flight get goaway_ms to finish (ops->fail after it).
 *    rt_tunnel_shutdown's GOAWAY, for a connection closing now, is not one;
 *    nor is rt_tunnel_goaway_notice's, which only warns the peer.
 * What differs per end (routing, registration, what its streams are) stays
 * with the end, behind struct rt_tunnel_ops. The session does no I/O: the
 * end feeds it the peer's bytes (rt_tunnel_recv), moves its output
 * (rt_h2_flush(conn, t->h2)) when ops->kick asks, and owns the connection.
 * Its one handle is a uv timer (the set-up deadline, the PINGs, then the
 * going-away deadline, in that order).
 *
 * Ownership: the end embeds struct rt_tunnel in its own object and keeps that
 * memory until ops->closed. The session owns the nghttp2 session, the control
 * stream's buffers and the timer; the end owns its streams' objects (the
 * nghttp2 stream user data) and frees them from ops->stream->close /
 * ops->stream->drop, or itself before rt_tunnel_close.
 *
 * Callbacks run inside rt_tunnel_recv, inside the end's rt_h2_flush (both
 * through nghttp2), or from the timer. From any of them the end may submit
 * (rt_tunnel_send, _reset, _consume, _resume, _retire, _shutdown, nghttp2
 * submit functions on t->h2) and may close its connection (rt_conn_close or
 * rt_conn_abort: on_close comes later, from the loop); it must not call
 * rt_tunnel_close, which belongs in the connection's on_close.
 *
 * Errors, and whom they end (like nghttp2_is_fatal):
 *  - one stream: a stream callback returning NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE
 *    (from ops->stream->header) or the end resetting it (rt_tunnel_reset);
 *    a second control stream (refused, the session goes on).
 *  - the session, gracefully: a GOAWAY either way, rt_tunnel_retire.
 *  - the session, at once (the end closes the connection): rt_tunnel_recv
 *    < 0 (an HTTP/2 connection error, or any callback returning another
 *    negative value, e.g. NGHTTP2_ERR_CALLBACK_FAILURE); a malformed control
 *    message or ops->control / ops->control_open < 0; ops->fail (the peer
 *    closed the control stream, a dead peer, no rt_tunnel_ready within
 *    setup_ms, streams outliving goaway_ms). */
#ifndef RT_TUNNEL_H
#define RT_TUNNEL_H

#include "px_control.h"
#include "px_h2.h"

#include <nghttp2/nghttp2.h>
#include <uv.h>

#include <stdint.h>

/* Why the session cannot go on (ops->fail). */
enum rt_tunnel_fail {
    RT_TUNNEL_DEAD_PEER = 1,  /* PX_H2_PING_MAX_MISSED PINGs unanswered */
    RT_TUNNEL_SETUP_TIMEOUT,  /* no rt_tunnel_ready within cfg.setup_ms */
    RT_TUNNEL_GOAWAY_TIMEOUT, /* streams still open cfg.goaway_ms after going away */
    RT_TUNNEL_CONTROL_CLOSED, /* the peer closed (or reset) the control stream */
};

/* How the session began to go away (ops->going_away). */
enum rt_tunnel_goaway {
    RT_TUNNEL_GOAWAY_RECEIVED = 1, /* the peer's GOAWAY */
    RT_TUNNEL_GOAWAY_SENT,         /* ours, submitted by nghttp2 itself (a protocol error)
                                      or through t->h2 */
    RT_TUNNEL_RETIRED,             /* rt_tunnel_retire */
};

struct rt_tunnel_cfg {
    int server;            /* 1: the HTTP/2 server (connector), 0: the client (edge) */
    uint32_t max_streams;  /* server: SETTINGS_MAX_CONCURRENT_STREAMS */
    unsigned ping_ms;      /* PING interval; 0: px_h2_ping_interval_ms() */
    unsigned setup_ms;     /* > 0: until rt_tunnel_ready, the timer is a set-up deadline
                              instead of PINGs; 0: PINGs from rt_tunnel_init on */
    unsigned goaway_ms;    /* how long streams in flight may take after going away */
    const char *peer_name; /* for the log: "the edge", "the connector" */
};

/* What the session asks of its end about the end's streams (those with
 * nghttp2 stream user data s; never the control stream). Every function
 * gets the end's arg first. */
struct rt_tunnel_stream_ops {
    /* Server: the request stream id begins (its first HEADERS). Returns the
     * end's object for it, the stream's user data from now on, or NULL (no
     * memory: fatal for the session). Unused on the client. */
    void *(*begin)(void *arg, int32_t id);
    /* One header field of s: request fields on the server, response fields
     * and trailers on the client. Returns 0, NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE
     * (resets this stream) or another nghttp2 error (fatal). */
    int (*header)(void *arg, void *s, const uint8_t *name, size_t nlen, const uint8_t *value,
                  size_t vlen);
    /* A HEADERS or DATA frame of s was received whole (f->hd.flags has
     * END_STREAM at the end of the peer's side). Returns 0 or a fatal nghttp2 error. */
    int (*frame)(void *arg, void *s, const nghttp2_frame *f);
    /* Body bytes of s. They hold flow-control credit until the end returns
     * it with rt_tunnel_consume. Returns 0 or a fatal nghttp2 error. */
    int (*data)(void *arg, void *s, int32_t id, const uint8_t *data, size_t len);
    /* Stream id closed (err: its RST_STREAM code, or NO_ERROR). Its user data
     * was cleared: the end may free s. */
    void (*close)(void *arg, void *s, int32_t id, uint32_t err);
    /* Server: s (from begin) turned out to be the control stream; the
     * session took the stream over. The end frees s. Unused on the client. */
    void (*drop)(void *arg, void *s);
};

/* What the session asks of its end about the session. */
struct rt_tunnel_ops {
    const struct rt_tunnel_stream_ops *stream;
    /* The control stream is open (server: answered; client: requested). May
     * be NULL. Returns 0 or < 0 (fatal). */
    int (*control_open)(void *arg);
    /* One control message from the peer. Returns 0 or < 0 (fatal). */
    int (*control)(void *arg, const struct px_ctl_msg *m);
    /* The session has frames to send: flush soon (rt_conn_want_write). */
    void (*kick)(void *arg);
    /* The session began to go away (once): no new streams; error_code is the
     * GOAWAY's (NO_ERROR for RT_TUNNEL_RETIRED). */
    void (*going_away)(void *arg, enum rt_tunnel_goaway how, uint32_t error_code);
    /* The session cannot go on: the end closes its connection. Called once
     * per cause at most; the timer stops for it, but callbacks for frames
     * already read may still follow until rt_tunnel_close. */
    void (*fail)(void *arg, enum rt_tunnel_fail why);
    /* After rt_tunnel_close, once the timer is closed: the end may free the
     * memory holding t from here on. */
    void (*closed)(void *arg);
};

/* The fields before the marker may be read by the end (never written). */
struct rt_tunnel {
    nghttp2_session *h2; /* from rt_tunnel_start to rt_tunnel_close; the end submits
                            and reads its own streams' state through it */
    int32_t control_id;  /* the control stream, 0 until it is open */
    unsigned pings_outstanding;
    int going_away;      /* no new streams (ops->going_away was called) */
    int goaway_sent;     /* a GOAWAY went out (any, rt_tunnel_shutdown's too) */
    int goaway_received; /* the peer's GOAWAY came in */
    int ready;           /* rt_tunnel_ready was called */
    int closing;         /* rt_tunnel_shutdown was called */
    int notice_sent;     /* rt_tunnel_goaway_notice's GOAWAY went out */
    /* ---- private ---- */
    struct rt_tunnel_cfg cfg;
    const struct rt_tunnel_ops *ops;
    void *arg;
    uv_timer_t timer;
    struct px_h2_outbox control_out;
    struct px_ctl_framer control_in;
    int32_t control_cand; /* server: the request stream being read asked for control */
    int goaway_queued;    /* a GOAWAY of ours was submitted */
    int notice_queued;    /* rt_tunnel_goaway_notice's GOAWAY submitted, not yet sent */
};

/* Initialises t on loop for cfg (copied; peer_name must outlive t) and ops
 * with arg, and starts the timer: the set-up deadline when cfg->setup_ms,
 * else the PINGs (sent once the session has started). No session yet.
 * Cannot fail (it allocates nothing; uv_timer_init does not fail). Call
 * rt_tunnel_close exactly once afterwards. */
void rt_tunnel_init(struct rt_tunnel *t, uv_loop_t *loop, const struct rt_tunnel_cfg *cfg,
                    const struct rt_tunnel_ops *ops, void *arg);
/* Starts the HTTP/2 session (the connection is open and agreed on h2): its
 * SETTINGS and windows are queued, and the client opens the control stream
 * (ops->control_open). Returns 0, or PX_ERR_NOMEM / PX_ERR_H2 (the end
 * closes the connection; rt_tunnel_close still follows). */
int rt_tunnel_start(struct rt_tunnel *t);
/* The peer's bytes. Returns 0, or the nghttp2 error of a fatal failure
 * (nghttp2_strerror tells; the end closes the connection). */
int rt_tunnel_recv(struct rt_tunnel *t, const uint8_t *data, size_t len);
/* Set-up is complete (the edge: the connector registered): the set-up
 * deadline ends and the PINGs start (unless going away or closing). */
void rt_tunnel_ready(struct rt_tunnel *t);
/* Stops the timer for good: the connection carries no session after all
 * (an enrolment), and has deadlines of its own. */
void rt_tunnel_disarm(struct rt_tunnel *t);
/* Queues control message m on the control stream. Before the stream is open
 * the line waits for it. Returns 0 or PX_ERR_NOMEM (m cannot be encoded). */
int rt_tunnel_send(struct rt_tunnel *t, const struct px_ctl_msg *m);
/* 1 when the control stream is open and the session is up. */
int rt_tunnel_control_open(const struct rt_tunnel *t);
/* Goes away gracefully: submits GOAWAY (NO_ERROR, the last stream the peer
 * opened, so those in flight finish) unless ours went out already, and
 * begins going away (ops->going_away RT_TUNNEL_RETIRED) unless it has.
 * Nothing without a session, or once closing. */
void rt_tunnel_retire(struct rt_tunnel *t);
/* Warns the peer that this end is going away while it keeps using the
 * session (an edge draining: the peer should open its replacement elsewhere,
 * yet streams still come and go here until rt_tunnel_retire or
 * rt_tunnel_shutdown, the final GOAWAY). The server submits
 * nghttp2_submit_shutdown_notice (GOAWAY, last-stream-id 2^31-1: the peer
 * may still open streams); the client GOAWAY NO_ERROR, last-stream-id 0 (it
 * takes no pushed streams anyway) and, as nghttp2 lets a client, goes on
 * opening streams. Neither end begins going away for it (no ops->going_away,
 * the PINGs go on; the peer's end does, as for any GOAWAY). Once per
 * session; nothing without a session, once closing, going away, or after a
 * GOAWAY of ours. Returns 0, or PX_ERR_H2 / PX_ERR_NOMEM from nghttp2. */
int rt_tunnel_goaway_notice(struct rt_tunnel *t);
/* For a connection that closes now: marks the session closing (no PINGs,
 * deadlines or going away from here on) and submits GOAWAY (NO_ERROR, the
 * last stream processed) so the peer knows. */
void rt_tunnel_shutdown(struct rt_tunnel *t);
/* Stream helpers, each a no-op without a session and followed by ops->kick:
 * returns n bytes of flow-control credit of stream id (the connection's
 * too, even once the stream has closed); resumes its deferred data source;
 * resets it with error_code. */
void rt_tunnel_consume(struct rt_tunnel *t, int32_t id, size_t n);
void rt_tunnel_resume(struct rt_tunnel *t, int32_t id);
void rt_tunnel_reset(struct rt_tunnel *t, int32_t id, uint32_t error_code);
/* Ends t (from the end's connection on_close, after the end dropped its
 * streams): frees the session and the control stream's buffers and closes
 * the timer; ops->closed follows from the loop. */
void rt_tunnel_close(struct rt_tunnel *t);

#endif
