/* cn_h1_int: the client's state, shared by cn_h1.c (a request on a
 * connection: connect, write, read) and cn_h1_pool.c (connections and the
 * keep-alive pools). Nothing else includes it. */
#ifndef CN_H1_INT_H
#define CN_H1_INT_H

#include "cn_h1.h"
#include "px_h1resp.h"
#include "px_list.h"

#include <netdb.h>

/* The read buffer of the loop's connections, and the most request body
 * taken from the owner per write. */
#define CN_H1_READ_BUF (16 * 1024)
#define CN_H1_UPLOAD_BUF (16 * 1024)
/* How long a connection that came back over its pool's cap
 * (keepalive_conns idle already) may wait for a request before the pool
 * sheds one (keepAliveTimeout when shorter). Long enough to bridge the gap
 * between two bursts of a client keeping N requests in flight; short
 * enough that a pool never holds more than keepalive_conns for long. */
#define CN_H1_SURPLUS_GRACE_MS 1000u

/* An origin's idle connections, most recently used first: a request takes
 * the head, a connection coming back goes to the head, so the tail is the
 * least recently used. Up to keepalive_conns are kept for keepAliveTimeout.
 * One coming back while keepalive_conns are idle already is kept too, as
 * surplus: CN_H1_SURPLUS_GRACE_MS later, if the pool is still over its cap,
 * the least recently used idle connection is closed (the surplus one itself
 * when the tail is surplus as well). Every surplus connection sheds at most
 * one, and the pool can be over its cap by at most the surplus ones still
 * in their grace, so keepAliveConnections bounds what stays idle, never how
 * many connections run at once (as in cloudflared). */
struct cn_h1_pool {
    struct px_list_node node; /* in cn_h1.pools */
    struct px_list idle;      /* idle connections (cn_h1_conn.idle_node), newest first */
    unsigned n_idle;
    char key[]; /* "unix:<path>" or "<host>:<port>" */
};

struct cn_h1_conn {
    struct cn_h1 *h1;
    struct cn_h1_pool *pool;
    struct px_list_node all_node;  /* in cn_h1.conns */
    struct px_list_node idle_node; /* in pool->idle while idle */
    union {
        uv_handle_t h;
        uv_stream_t s;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } io;
    int io_open;      /* io is initialised (its close is pending once closing) */
    uv_timer_t timer; /* connect timeout, then idle timeout */
    uv_connect_t creq;
    uv_getaddrinfo_t gai;
    int resolving;               /* gai in flight: its callback frees ai */
    struct addrinfo *ai, *ai_at; /* the resolved addresses, the one being tried */
    int connected;
    int io_cycling; /* io closing to try the next address */
    int reading;
    int last_err;                 /* the libuv error of the last connect attempt */
    enum cn_h1_err def_err;       /* a failure reported from the timer (never inside a call) */
    int def_pending;              /* ...is pending: the connection must not be pooled */
    struct sockaddr_storage addr; /* a numeric origin's address */
    uv_write_t hreq;              /* the head */
    int head_writing;
    uv_write_t breq; /* a body piece */
    int body_writing;
    uv_buf_t bbufs[3];
    char chunk_line[24];
    struct px_buf wbuf;  /* the body piece being written */
    struct cn_h1_req *q; /* the request it carries, or NULL */
    struct px_h1resp resp;
    int status; /* the final response's status (0 until its head) */
    int closing;
    int pending; /* close callbacks (and the resolver) still to come */
    /* Idle over the pool's cap (see struct cn_h1_pool): the timer is the
     * grace's, then keepAliveTimeout's rest (idle_rest_ms); idle_cap is the
     * keepalive_conns it came back with. */
    int surplus;
    unsigned idle_cap;
    unsigned idle_rest_ms;
};

struct cn_h1 {
    uv_loop_t *loop;
    struct px_list pools; /* cn_h1_pool.node */
    struct px_list conns; /* every connection not yet freed */
    unsigned n_open, n_idle;
    char rbuf[CN_H1_READ_BUF];
};

/* ---- cn_h1_pool.c ---- */

/* The pool for t (created on first use), or NULL on no memory. */
struct cn_h1_pool *cn_h1_pool_of(struct cn_h1 *h, const struct cn_h1_target *t);
/* An idle connection of pool, taken out of it (read watch kept), or NULL. */
struct cn_h1_conn *cn_h1_pool_take(struct cn_h1_pool *pool);
/* Gives c (idle, its request done) back to its pool, at its head; closes
 * it when keep-alive is off (keepalive_conns or keepalive_timeout_ms 0).
 * Over the pool's cap it is kept as surplus (see struct cn_h1_pool). */
void cn_h1_pool_put(struct cn_h1_conn *c, const struct cn_h1_target *t);
/* The default connect timeout (connect_timeout_ms 0), as curl's. */
#define CN_H1_CONNECT_TIMEOUT_DEFAULT_MS 300000u

/* A new connection of pool (io not yet opened), or NULL. */
struct cn_h1_conn *cn_h1_conn_new(struct cn_h1 *h, struct cn_h1_pool *pool);
/* Closes c (idempotent): its handles close, then it is freed. */
void cn_h1_conn_close(struct cn_h1_conn *c);
/* One of a closing connection's pending callbacks came (a close, the
 * resolver): the last frees it. */
void cn_h1_conn_unpend(struct cn_h1_conn *c);
/* The read side every connection uses (the loop's buffer). */
void cn_h1_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf);
/* An idle connection's read: any byte or EOF means it is no use. */
void cn_h1_idle_read(struct cn_h1_conn *c, ssize_t nread);

/* ---- cn_h1.c ---- */

/* The read callback of a connection. */
void cn_h1_on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

#endif
