/* es_req: one browser request bridged onto one tunnel stream. It is owned
 * jointly by its front side (browser connection, HTTP/1.1 or HTTP/2) and its
 * link side (tunnel stream); it is freed when both have let go.
 *
 * es_req knows neither side's structs: it calls the front through
 * es_front_ops and the tunnel through es_link_ops (es_link's table in the
 * product, es_server.link_ops; fakes in tests). Each side calls back only
 * through the functions below, grouped by who may call them.
 *
 * Backpressure: the request body is held in req_body until the link reads it
 * (es_req_read_body), and only then is the browser credited (h2 window update
 * or resumed socket reads): buffering never credits. The response body is
 * held in resp_body until the front takes it (es_req_take_body), and only
 * then is the tunnel stream credited.
 *
 * Errors, and whom they end (like nghttp2_is_fatal):
 *  - for the request only: es_req_add_header < 0 (the front refuses that
 *    request: HTTP/2 resets the stream, HTTP/1.1 answers 400 and closes, as
 *    it has only one request in flight); es_req_resp_header < 0 (the link
 *    resets that tunnel stream; the browser already has its 502);
 *    es_req_link_done with err != 0 (the browser gets a 502, or a cut
 *    response: HTTP/2 RST_STREAM, HTTP/1.1 an aborted connection);
 *    submit < 0 (answered 502; whether the link goes on is its own
 *    business: es_link retires one that can open no more streams).
 *  - for the browser connection: es_req_body < 0 (out of memory).
 *  - nothing es_req returns is fatal for a tunnel link: a link ends only for
 *    its own reasons (es_link.h), and then every request on it gets
 *    es_req_link_done(r, NGHTTP2_CANCEL). */
#ifndef ES_REQ_H
#define ES_REQ_H

#include "es_metrics.h"
#include "px_buf.h"
#include "px_list.h"
#include "px_nv.h"
#include "px_reqid.h"

#include <nghttp2/nghttp2.h>
#include <stdint.h>

#define ES_REQ_BODY_HIGH (256 * 1024)
#define ES_REQ_BODY_LOW (64 * 1024)
/* Request and response heads alike: name + value + 32 per field (RFC 7541's
 * accounting), at most this many bytes. */
#define ES_REQ_MAX_HEADER_BYTES (64 * 1024)
/* The most fields one head keeps: a request with more is refused, a
 * response with more resets its tunnel stream (502), and a request whose
 * head for the tunnel would have more is answered 500. */
#define ES_REQ_MAX_FIELDS 1024
/* A request whose tunnel stream was refused unprocessed (REFUSED_STREAM:
 * RST_STREAM, or above a GOAWAY's last-stream-id) before any response and
 * before the link read any of its body is sent again on a link of its tunnel
 * at most this many times; then it is answered 502 as any reset stream. */
#define ES_REQ_RETRIES 2
/* A longer request target is answered 414 (the connector caps it the same). */
#define ES_REQ_MAX_PATH (16 * 1024)

struct es_req;
struct es_server;
struct es_peer;
struct es_tunnel;

struct es_front_ops {
    /* Response headers are ready (resp_status, es_req_resp_fields). */
    void (*resp_headers)(struct es_req *r);
    /* More response body is buffered, or resp_eof / resp_error was set. */
    void (*resp_data)(struct es_req *r);
    /* n request-body bytes left req_body toward the tunnel. */
    void (*req_consumed)(struct es_req *r, size_t n);
};

/* The tunnel side as es_req sees it: how a request finds a connection of its
 * tunnel, and what it asks of the stream opened there. `link` is the
 * transport's connection object, opaque to es_req; `sid` the stream id submit
 * returned. The product's table is es_link_req_ops (es_link.h).
 *
 * Ownership: from a successful submit until the link calls
 * es_req_link_done(r, err) -- exactly once, when the stream is gone -- the
 * link holds r: r is not freed, and the link may call the "for the link"
 * functions below. es_req calls req_more, resp_consumed and cancel only in
 * that window. After es_req_link_done the link must not touch r (it may be
 * freed at once). cancel does not end the window: the link still calls
 * es_req_link_done when the stream is closed. None of these may call back
 * into es_req synchronously. */
struct es_link_ops {
    /* The streams t's connections serving host can carry at once (the stream
     * budget); *n_links: how many such connections there are (0: 530). */
    unsigned (*budget)(const struct es_tunnel *t, const char *host, unsigned *n_links);
    /* A connection of t serving host with room for one more stream now, or
     * NULL (503). */
    void *(*pick)(struct es_tunnel *t, const char *host);
    /* Opens a stream on link for r with head nv[0..n) (the link copies what
     * it keeps). has_body: the body follows, read with es_req_read_body.
     * Returns the stream id (> 0), or < 0 when link can open no stream (es_req
     * picks once more, then answers 502). */
    int32_t (*submit)(void *link, struct es_req *r, const nghttp2_nv *nv, size_t n, int has_body);
    /* Request body was buffered, or it ended: es_req_read_body has more. */
    void (*req_more)(void *link, int32_t sid);
    /* The front took n response-body bytes of stream sid: credit the peer. */
    void (*resp_consumed)(void *link, int32_t sid, size_t n);
    /* The front abandoned the request (or its response cannot be buffered):
     * reset stream sid. */
    void (*cancel)(void *link, int32_t sid);
};

struct es_req {
    struct es_server *srv;
    const struct es_front_ops *fops;
    void *front;                    /* es_front_h1 / es_front_h2 connection */
    int32_t front_sid;              /* h2 front stream id */
    struct px_list_node front_node; /* in the h2 front's list of its streams */
    const struct es_link_ops *lops; /* set with link */
    void *link;                     /* the tunnel connection, while the link holds r */
    int32_t link_sid;
    struct px_list_node link_node; /* in the link's list of its streams; the link's */
    /* request */
    char method[16];
    char host[256];
    char sni[256]; /* the connection's TLS server name, normalised; "" if none was sent */
    char request_id[PX_REQID_LEN + 1]; /* 32 lower-case hex digits (px_reqid.h) */
    char client_ip[64];
    struct es_peer *peer; /* the connection's client certificate; valid until dispatched */
    char *fair_key;       /* while this request holds one of its client's tunnel streams */
    /* The request head as es_req keeps it: what the front added (lower-case
     * names; the Host becomes :authority; X-Forwarded-For and Connection
     * are kept apart, below), then from dispatch the head sent over the
     * tunnel. At most ES_REQ_MAX_FIELDS fields. */
    struct px_nv req_nv;
    /* The request's :path for its access line, copied out of req_nv when
     * es_req_resp_head_sent lets that go (NULL before, or without an access
     * log). */
    char *log_path;
    /* Every field the front added, kept or not, counted as px_nv does
     * (px_nv_field_size): over ES_REQ_MAX_HEADER_BYTES the head is refused
     * (431). Counted apart from req_nv because the cap is on what the client
     * sent, X-Forwarded-For and the rest included. */
    size_t req_header_bytes;
    char *xff; /* client's X-Forwarded-For */
    char *connection_hdr;
    int n_host;              /* Host header fields seen */
    const char *bad_request; /* why the head is malformed (static text): 400 at dispatch */
    int refuse_status;       /* 414 / 431: the head broke a cap; answered at dispatch */
    struct px_buf req_body;
    int req_eof;
    int has_body;          /* a body follows the head (es_req_dispatch) */
    int body_sent;         /* the link read request-body bytes: no retry from here on */
    int retries;           /* times its refused tunnel stream was sent again */
    uint64_t body_seen_ms; /* request-body bytes last arrived or left for the tunnel */
    int head_pending;      /* h2: HEADERS begun, not yet complete */
    int timed_out;         /* the front gave up on this request */
    int is_head;
    const char *front_proto; /* "HTTP/1.1" or "HTTP/2", for logs */
    int is_ws;               /* a WebSocket (extended CONNECT, or an HTTP/1.1 Upgrade) */
    char ws_key[64];         /* HTTP/1.1 client's Sec-WebSocket-Key */
    /* response */
    int resp_status;
    /* The current response head's fields, without ":status" (resp_status),
     * pseudo and hop-by-hop fields; at most ES_REQ_MAX_FIELDS. Read through
     * es_req_resp_fields. */
    struct px_nv resp_nv;
    /* Every field of the current response head after ":status", kept or not
     * (px_nv_field_size each), against ES_REQ_MAX_HEADER_BYTES. */
    size_t resp_header_bytes;
    int resp_headers_done;
    long long resp_content_length;
    struct px_buf resp_body;
    int resp_eof;
    int resp_error;
    int local; /* answered by the edge itself */
    /* For its access line and metrics, written when the front lets go
     * (es_req_front_done). */
    uint64_t start_ns;            /* uv_hrtime at es_req_new: the head began */
    unsigned long long bytes_in;  /* request-body bytes from the client */
    unsigned long long bytes_out; /* response-body bytes the front took */
    enum es_refusal refusal;      /* why the edge refused it, if it did */
    const char *err_code;         /* the edge's error code it was answered with (static) */
    int front_status;             /* status the front answered itself (es_req_front_refused) */
    int dispatched;               /* its head was complete (es_req_dispatch) */
    char rule[65];                /* the tunnel it was routed to ("" none) */
    /* lifetime */
    int front_done;
    int link_done;
    /* On a worker's loop, a request carried to the home loop (es_relay.h):
     * its relay; the home loop's copy writes the access line. NULL else. */
    struct es_relay *relay;
    /* The home loop's copy of the connection's client certificate, for a
     * request on a worker's loop (es_req_set_peer); NULL else. */
    struct es_peer *home_peer;
};

/* sni: the browser connection's TLS server name, normalised ("" or NULL when
 * the client sent none); copied. Requests are only served for that name.
 * The request gets the next of srv's request ids (srv->req_ids; the first
 * request draws their prefix from the loop's RNG). Returns NULL when out of
 * memory or when that first draw failed: the front drops the connection. */
struct es_req *es_req_new(struct es_server *srv, const struct es_front_ops *fops, void *front,
                          const char *client_ip, const char *sni);
/* The client certificate of r's connection (may be NULL: none). The front
 * keeps peer alive at least until it dispatches r. */
void es_req_set_peer(struct es_req *r, struct es_peer *peer);
/* On a worker's loop: the home loop's copy of that certificate (es_worker.h),
 * which the request carries there. */
void es_req_set_home_peer(struct es_req *r, struct es_peer *home_peer);
/* Adds a request header from the front (pseudo headers included). Returns 0,
 * or < 0 if the request must be refused (too large / invalid). A head that is
 * well-formed on the wire but wrong for HTTP (a second Host, a Host that is
 * not :authority) returns 0 and is answered 400 by es_req_dispatch. */
int es_req_add_header(struct es_req *r, const char *name, size_t nlen, const char *value,
                      size_t vlen);
/* Turns an HTTP/1.1 `Upgrade: websocket` request into the extended CONNECT
 * it becomes on the tunnel (RFC 8441). Returns 1 if it was one, 0 if not. */
int es_req_make_websocket(struct es_req *r);
/* Headers complete: routes the request to a tunnel, or answers locally:
 * 400 malformed, 414 / 431 a head over its caps, 405 a plain CONNECT, 421 a
 * host other than the connection's SNI name, the JWK Set at
 * ES_ASSERT_JWKS_PATH, 403 when the hostname's access policy refuses the
 * connection's certificate, 404 no tunnel routes the host, 530 the tunnel has
 * no connector connected (or the server has no link_ops), 429 the client
 * holds its share of the tunnel's streams, 503 every connection is full, 502
 * no stream could be opened. An allowed request carries the certificate's
 * details and an identity assertion (es_peer_headers, ES_ASSERT_HEADER), and
 * goes to srv->link_ops. has_body: a body follows. */
void es_req_dispatch(struct es_req *r, int has_body);
/* Request body from the front. */
int es_req_body(struct es_req *r, const uint8_t *data, size_t len);
void es_req_body_end(struct es_req *r);
/* Takes up to len response-body bytes for the front; credits the tunnel. */
size_t es_req_take_body(struct es_req *r, uint8_t *out, size_t len);
/* The front answered r itself with status (HTTP/1.1's 400 / 414 / 431 /
 * 408 written by the front; 0 when it only gave up, as HTTP/2 resets a
 * stream) because of why: recorded for r's access line and metrics. Call
 * before es_req_front_done. */
void es_req_front_refused(struct es_req *r, int status, enum es_refusal why);
/* The front is done with r (finished or gone). This is the request's end
 * as the browser saw it: its access line (srv->access_log) and its metrics
 * (srv->metrics) are written here, once, unless its head never completed
 * and the edge neither answered nor refused it (a client that went away
 * mid-head). */
void es_req_front_done(struct es_req *r);
/* Answers locally with an error page (when no response started). */
void es_req_local_error(struct es_req *r, int status, const char *code, const char *detail);
/* The response head's fields for the front, ":status" not among them
 * (resp_status): *n of them, NUL-terminated names and values. From the
 * front's resp_headers call on they do not change until the front calls
 * es_req_resp_head_sent (then there are none) or r is freed. */
const nghttp2_nv *es_req_resp_fields(const struct es_req *r, size_t *n);
/* The front has written the response head (es_req_resp_fields) out, or
 * handed it to nghttp2, which copies it. r then lets go of both heads, which
 * a long-lived response (an idle WebSocket, an event stream) would otherwise
 * keep for its life (two 1 KiB blocks): the response's fields, and the
 * request head kept for sending it again on a refused stream, which no
 * longer happens once a response came. The access line keeps the path. A
 * no-op before the front's resp_headers call. */
void es_req_resp_head_sent(struct es_req *r);

/* For es_relay (es_relay.h), which carries a request between loops: */
/* On the worker's loop: a new request holding w's head (method, host, SNI,
 * request id, client address, the head's fields and what was noted about
 * them), which w keeps only as far as its front needs (method, host, its
 * kind). NULL when out of memory (w unchanged). has_body is recorded. */
struct es_req *es_req_split(struct es_req *w, int has_body);
/* On the home loop: h (from es_req_split) becomes srv's request with front
 * ops fops and front, and the connection's certificate peer (may be NULL);
 * then es_req_dispatch(h, es_req_split's has_body) may be called. */
void es_req_adopt(struct es_req *h, struct es_server *srv, const struct es_front_ops *fops,
                  void *front, struct es_peer *peer);

/* For the link (between submit and es_req_link_done): */
/* Takes up to len request-body bytes for the tunnel into buf and credits the
 * front for them. *eof is set when the body has ended and nothing is left.
 * Returns the bytes taken; 0 without eof: nothing now (req_more follows). */
size_t es_req_read_body(struct es_req *r, uint8_t *buf, size_t len, int *eof);
/* Response-body bytes buffered for the front, not yet taken (so not yet
 * credited): when the stream closes, the link returns their connection-level
 * credit itself. */
size_t es_req_resp_pending(const struct es_req *r);
/* Adds a response header from the tunnel. Returns 0, or < 0 when the stream
 * must be reset; a response head over ES_REQ_MAX_HEADER_BYTES is then
 * already answered 502 response_headers_too_large. */
int es_req_resp_header(struct es_req *r, const uint8_t *name, size_t nlen, const uint8_t *value,
                       size_t vlen);
void es_req_resp_headers_done(struct es_req *r);
void es_req_resp_body(struct es_req *r, const uint8_t *data, size_t len);
void es_req_resp_end(struct es_req *r);
/* The tunnel stream is gone (the link lets go of r). err: 0 when it closed
 * cleanly, else its HTTP/2 error code (RST_STREAM, or NGHTTP2_CANCEL when the
 * link itself closed). A stream refused unprocessed (NGHTTP2_REFUSED_STREAM)
 * before any response or body byte is sent again (ES_REQ_RETRIES): submit is
 * called from here, on a link pick chooses (a link retired by its GOAWAY is
 * no longer among them), and r is that link's again. Otherwise a response
 * not complete by then is answered 502, or cut if its head went out. */
void es_req_link_done(struct es_req *r, uint32_t err);

#endif
