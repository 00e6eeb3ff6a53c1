/* rt_httpd: a small plain-HTTP/1.1 server for operator endpoints (the
 * connector's /metrics, /ready, /healthcheck; the edge's admin listener).
 * Not for tunnel traffic.
 *
 * One request per connection: the request (head + body) must arrive whole
 * within limits.deadline_ms, within limits.max_head bytes of head and
 * limits.max_body bytes of body (Content-Length only; chunked bodies are
 * refused with 411/400); the answer always carries "Connection: close".
 * Malformed requests get 400, oversized ones 431/413, a missed deadline
 * closes the connection (after a 413/411 the rest of the upload is read
 * and dropped for up to a second, so the client sees the answer and not a
 * reset). At most limits.max_conns connections are open at
 * once (further ones are closed at accept). Requests are parsed with
 * http_parser.
 *
 * Ownership: the server belongs to one loop. The handler is called once per
 * connection with a parsed request and must call rt_httpd_respond exactly
 * once before it returns (the connection then writes the answer and closes
 * itself; nothing of it may be kept). */
#ifndef RT_HTTPD_H
#define RT_HTTPD_H

#include <stddef.h>
#include <uv.h>

struct rt_conn;
struct rt_httpd;
struct rt_httpd_conn;

struct rt_httpd_limits {
    size_t max_head;      /* bytes of request line + headers; 0: 16 KiB */
    size_t max_body;      /* bytes of body; 0: 64 KiB */
    unsigned deadline_ms; /* whole request; 0: 10 s */
    unsigned max_conns;   /* open at once; 0: 64 */
};

/* A parsed request. Every string is NUL-terminated and valid only during the
 * handler call; absent headers are NULL. */
struct rt_httpd_req {
    const char *method; /* "GET", "POST", ... (HEAD is answered as GET without body) */
    const char *path;   /* the target's path, raw (not percent-decoded), without query */
    const char *query;  /* after '?', raw, or NULL */
    const char *host;
    const char *authorization;
    const char *content_type;
    const char *accept;
    const unsigned char *body; /* NULL when len is 0 */
    size_t body_len;
    const char *peer_ip; /* textual address of the client */
    int peer_loopback;   /* the client is on 127.0.0.0/8 or ::1 */
};

struct rt_httpd_ops {
    /* Required: answer req on c (rt_httpd_respond, exactly once, before
     * returning). */
    void (*on_request)(void *ud, struct rt_httpd_conn *c, const struct rt_httpd_req *req);
    /* Optional: the request's head is here (after the limits above were
     * checked), before any of its body is read or buffered and before a
     * "100 Continue" is sent. head is as for on_request except that body is
     * NULL and body_len is the announced Content-Length (0 when none).
     * To end the request here (an owner that wants a token it did not get,
     * say), answer c with rt_httpd_respond, with any status, headers and
     * body: on_request is then not called, and the body that follows is
     * read and dropped, never kept (at most 256 KiB of it, for at most
     * 1 s, so the client reads the answer rather than a reset; the
     * connection closes once the announced body is in). Return without
     * answering to go on: the body is read into a buffer sized once from
     * Content-Length, then on_request is called. */
    void (*on_head)(void *ud, struct rt_httpd_conn *c, const struct rt_httpd_req *head);
    /* Optional: admission of a new connection from peer_ip. Return 0 to
     * admit (and set *tok, handed back to release), < 0 to refuse (the
     * connection is closed at once). */
    int (*admit)(void *ud, const char *peer_ip, void **tok);
    /* Optional: an admitted connection is gone. */
    void (*release)(void *ud, void *tok);
};

/* A server with no listener yet, or NULL when out of memory. limits may be
 * NULL (all defaults). ops is not copied and must outlive the server. */
struct rt_httpd *rt_httpd_new(uv_loop_t *loop, const struct rt_httpd_limits *limits,
                              const struct rt_httpd_ops *ops, void *ud);

/* Listens on "HOST:PORT" (IPv4, or [IPv6]:PORT; PORT may be 0 for a free
 * one). On success writes the bound address as "HOST:PORT" into bound (when
 * not NULL, at least 64 bytes) and returns 0; else a px_err (PX_ERR_INVAL a
 * bad address, PX_ERR_IO the OS refused: see errno text in logs). */
int rt_httpd_listen(struct rt_httpd *h, const char *hostport, char *bound, size_t bound_len);

/* Accepts one pending connection from a listener the caller owns (for
 * daemons that manage their listeners together, like the edge's drain).
 * Errors are handled inside (the connection is dropped). */
void rt_httpd_accept(struct rt_httpd *h, uv_stream_t *listener);

/* For tests: a connection in rt_conn memory mode from peer_ip (see
 * rt_conn_open_memory): feed it the request with rt_conn_memory_feed, run
 * the loop, read the answer from mem_out. NULL on no memory or over
 * max_conns. */
struct rt_conn *rt_httpd_new_memory(struct rt_httpd *h, const char *peer_ip);

/* Answers c: status (100..599), content type, extra header lines (NULL, or
 * "Name: value\r\n" lines the caller vouches for), and body (len bytes,
 * copied). Adds Content-Length, Connection: close, Cache-Control: no-store
 * and X-Content-Type-Options: nosniff (1xx, 204 and 304 go without body or
 * length). Returns 0, PX_ERR_INVAL when c was already answered (nothing
 * changes) or the answer is invalid (status out of range, CR/LF in
 * content_type, a NULL body with len > 0: the connection is closed without
 * an answer), or PX_ERR_NOMEM (the connection is closed then). A handler
 * that returns without answering gets a 500 sent for it. */
int rt_httpd_respond(struct rt_httpd_conn *c, int status, const char *content_type,
                     const char *headers, const void *body, size_t len);

/* 1 when host, a request's Host value (NULL: none was sent), cannot come
 * from a DNS-rebinding page: an IPv4 literal ("127.0.0.1"), a bracketed
 * IPv6 literal ("[::1]") or "localhost" (any case), each with an optional
 * ":PORT" (1-5 digits); or NULL (only HTTP/1.0 may leave Host out, and
 * browsers always send it). Else 0 (any other name, "localhost." included,
 * and anything malformed). For endpoints open to loopback peers without a
 * credential: a page on a name its attacker controls can make a browser
 * send it to 127.0.0.1, but with that name as the Host. */
int rt_httpd_host_not_rebindable(const char *host);

/* Stops listening, closes every connection and frees the server once its
 * handles have closed (after the loop runs). release is called for every
 * admitted connection before this returns, and no callback of ops runs
 * after it: the owner may free ud right away. NULL is accepted. */
void rt_httpd_free(struct rt_httpd *h);

#endif
