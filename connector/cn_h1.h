/* cn_h1: a lean HTTP/1.1 client for plain http:// and unix: origins, on
 * libuv, with the response read by px_h1resp. One struct cn_h1 per loop
 * (next to cn_origin) holds the keep-alive pools, one per origin (keyed by
 * the unix path, or host and port: never by a rule, as rule sets are
 * reloaded) and a 16 KiB read buffer every connection of the loop reads
 * into (each read is parsed and handed on before the next).
 *
 * A request (struct cn_h1_req, embedded and zeroed by its owner) carries a
 * serialised head and streams its body from its owner through ops; the
 * response comes back through ops as fields, a head, body bytes, then one
 * done() with a typed result. Backpressure: after each read, ops->room says
 * whether to read more; cn_h1_resume starts again. A request that failed on
 * a reused connection before any response byte, with no body byte taken,
 * is sent again once on a fresh connection (the origin had closed a stale
 * keep-alive connection).
 *
 * A connection goes back to its pool only after a complete response that
 * allows it (keep-alive, not read until close, nothing after it) to a
 * request written in full; every failure and every cancelled request closes
 * it. Idle connections are read-watched (any byte or EOF drops them),
 * closed after the rule's keepAliveTimeout, and taken most recently used
 * first. keepAliveConnections is how many idle ones an origin's pool keeps,
 * not a limit on connections: one that comes back while that many are idle
 * is still pooled, and one second later (or keepAliveTimeout, if shorter)
 * the pool, if still over, closes its least recently used one, so a burst
 * of more concurrent requests than the cap does not close and reopen the
 * connections the next burst needs. keepAliveConnections 0 (or
 * keepAliveTimeout 0) pools nothing. */
#ifndef CN_H1_H
#define CN_H1_H

#include "px_buf.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct cn_h1;
struct cn_h1_conn;
struct cn_h1_req;

/* Why a request failed (typed; cn_stream_diag words it). */
enum cn_h1_err {
    CN_H1_OK = 0,
    CN_H1_REFUSED,           /* the connect failed (refused, no such socket, unreachable) */
    CN_H1_RESOLVE,           /* the origin's name did not resolve */
    CN_H1_CONNECT_TIMEOUT,   /* no connection within connectTimeout */
    CN_H1_EMPTY,             /* the origin closed without a response byte */
    CN_H1_RESET,             /* the connection broke (before or during the response) */
    CN_H1_BAD_RESPONSE,      /* not a valid HTTP/1.x response, or cut short in its head */
    CN_H1_HEADERS_TOO_LARGE, /* the response head is over the caps */
    CN_H1_NOMEM,
};

/* Where a request goes, and the rule's settings for its connection. The
 * strings must stay valid until done() or cn_h1_cancel. */
struct cn_h1_target {
    const char *unix_path; /* a unix socket, or NULL for host:port */
    const char *host;      /* a numeric address, or a name to resolve */
    int port;
    unsigned connect_timeout_ms; /* 0: the default, 300 s (as curl) */
    unsigned
        keepalive_conns; /* idle connections kept for this origin (more for a grace); 0: none */
    unsigned keepalive_timeout_ms; /* ...and for how long */
};

enum cn_h1_body { CN_H1_BODY_NONE, CN_H1_BODY_LENGTH, CN_H1_BODY_CHUNKED };

/* The request's owner. Called from the loop; none may call cn_h1_cancel
 * on q or free it, except done() (after which q is no longer used). */
struct cn_h1_req_ops {
    /* A field of the response head. Returns 0, PX_H1RESP_TOO_LARGE (the
     * owner's caps: the request fails with CN_H1_HEADERS_TOO_LARGE), or
     * another value < 0 (fails as CN_H1_BAD_RESPONSE). */
    int (*field)(struct cn_h1_req *q, const char *name, size_t nlen, const char *value,
                 size_t vlen);
    /* The final head is complete (status 200-599). Returns 0 or < 0. */
    int (*head)(struct cn_h1_req *q, int status, int has_body);
    /* Response body bytes (dechunked). Returns 0 or < 0. */
    int (*body)(struct cn_h1_req *q, const char *data, size_t len);
    /* Nonzero while more of the response may be read (else reading stops
     * until cn_h1_resume). */
    int (*room)(struct cn_h1_req *q);
    /* Takes up to cap request-body bytes into out; *eof once the body is
     * complete. Returns the count (0 and !*eof: none yet, cn_h1_kick when
     * there are). */
    size_t (*upload)(struct cn_h1_req *q, uint8_t *out, size_t cap, int *eof);
    /* The request is over: CN_H1_OK after a complete response, else why it
     * failed; uv_status is the libuv error behind it (0 if none), for logs. */
    void (*done)(struct cn_h1_req *q, enum cn_h1_err err, int uv_status);
};

struct cn_h1_req {
    const struct cn_h1_req_ops *ops;
    struct px_buf head; /* the request head, serialised by the owner (cn_h1_req_cleanup frees it) */
    enum cn_h1_body body;
    uint64_t body_len; /* CN_H1_BODY_LENGTH: the declared Content-Length (never more is sent) */
    int head_request;  /* HEAD: the response has no body */
    /* cn_h1's own */
    struct cn_h1_target t;
    struct cn_h1 *h1;
    struct cn_h1_conn *conn;
    int reused;         /* conn came from the pool */
    int retried;        /* already sent again once */
    int body_taken;     /* a body byte left the owner */
    int body_done;      /* the body (with its last chunk) is queued */
    uint64_t body_sent; /* body bytes queued (CN_H1_BODY_LENGTH: at most body_len) */
    int read_paused;
};

/* Creates the client of loop. Returns 0 and *out, or PX_ERR_NOMEM. */
int cn_h1_new(uv_loop_t *loop, struct cn_h1 **out);
/* Frees h (NULL is fine), closing its pooled connections; every request
 * must be over or cancelled. Handles close from the loop: run it after. */
void cn_h1_free(struct cn_h1 *h);

/* Starts q (ops, head, body and head_request set) to t. Returns 0 (done()
 * follows, never from inside this call) or PX_ERR_NOMEM. */
int cn_h1_start(struct cn_h1 *h, struct cn_h1_req *q, const struct cn_h1_target *t);
/* Ends q without done() (no-op when it is not running): its connection,
 * busy with q, is closed. */
void cn_h1_cancel(struct cn_h1_req *q);
/* Cancels q and frees its head. */
void cn_h1_req_cleanup(struct cn_h1_req *q);
/* More request body (or its end) is available. */
void cn_h1_kick(struct cn_h1_req *q);
/* There may be room for response bytes again (ops->room had said none):
 * reading starts again if ops->room now says so. */
void cn_h1_resume(struct cn_h1_req *q);
/* Whether q is running. */
static inline int cn_h1_active(const struct cn_h1_req *q)
{
    return q->conn != NULL;
}

/* For tests and metrics: connections open (idle ones included) and idle
 * in pools. */
unsigned cn_h1_open_conns(const struct cn_h1 *h);
unsigned cn_h1_idle_conns(const struct cn_h1 *h);
/* For tests: the bytes of buffer capacity idle connections hold (their
 * response parser's and their body buffer). */
size_t cn_h1_idle_bytes(const struct cn_h1 *h);

#endif
