/* cn_h1: one request on an origin connection: connect (or reuse), write
 * the head and stream the body, read the response (see cn_h1.h). */
#include "cn_h1_int.h"
#include "px_err.h"
#include "px_log.h"

#include <stdio.h>
#include <string.h>

static void try_next(struct cn_h1_conn *c);

/* ---- the response, from px_h1resp to the owner ---- */

static int r_field(void *arg, const char *n, size_t nl, const char *v, size_t vl)
{
    struct cn_h1_conn *c = arg;
    return c->q->ops->field(c->q, n, nl, v, vl);
}

static int r_head(void *arg, int status, int has_body)
{
    struct cn_h1_conn *c = arg;
    c->status = status;
    return c->q->ops->head(c->q, status, has_body);
}

static int r_body(void *arg, const char *data, size_t len)
{
    struct cn_h1_conn *c = arg;
    return c->q->ops->body(c->q, data, len);
}

static const struct px_h1resp_ops resp_ops = {.field = r_field, .head = r_head, .body = r_body};

static void attach(struct cn_h1_conn *c, struct cn_h1_req *q)
{
    c->q = q;
    q->conn = c;
    q->read_paused = 0;
    c->resp.ops = &resp_ops;
    c->resp.arg = c;
    c->status = 0;
    px_h1resp_reset(&c->resp, q->head_request);
}

/* ---- the end of a request ---- */

static int open_conn(struct cn_h1_req *q, struct cn_h1_pool *pool);

/* Whether q's method is idempotent (RFC 9110 9.2.2): the request may be
 * sent again after a reset, as the origin may have acted on it already. */
static int idempotent(const struct cn_h1_req *q)
{
    static const char *const methods[] = {"GET ", "HEAD ", "OPTIONS ", "PUT ", "DELETE ", "TRACE "};
    const char *h = (const char *)px_buf_head(&q->head);
    size_t n = px_buf_len(&q->head);
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        size_t l = strlen(methods[i]);
        if (n >= l && memcmp(h, methods[i], l) == 0)
            return 1;
    }
    return 0;
}

static void fail(struct cn_h1_conn *c, enum cn_h1_err err, int uv_status)
{
    struct cn_h1_req *q = c->q;
    struct cn_h1_pool *pool = c->pool;
    /* EOF with no byte: the origin closed the kept connection unread, any
     * method is sent again; a reset may come after the origin acted on the
     * request: only an idempotent one is. */
    int stale = q && q->reused && !q->retried && !c->resp.started && !q->body_taken &&
                (err == CN_H1_EMPTY || (err == CN_H1_RESET && idempotent(q)));
    cn_h1_conn_close(c); /* detaches q */
    if (!q)
        return;
    if (stale) {
        /* The origin had closed the kept connection: as curl does, once
         * more on a new one. */
        PX_DEBUG("origin connection to %s was stale (%s): sending again", pool->key,
                 uv_status ? uv_strerror(uv_status) : "closed");
        q->retried = 1;
        q->reused = 0;
        /* No body byte was taken: the owner reports the end again, and it
         * (an empty chunked body's last chunk) goes out on the new one. */
        q->body_done = q->body == CN_H1_BODY_NONE;
        q->body_sent = 0;
        if (open_conn(q, pool) == 0)
            return;
        err = CN_H1_NOMEM;
    }
    q->ops->done(q, err, uv_status);
}

/* The response is complete; clean: no byte followed it. */
static void finish(struct cn_h1_conn *c, int clean)
{
    struct cn_h1_req *q = c->q;
    /* Never pooled: with a failure pending (its timer is the idle one's),
     * after HEAD or 204 (an origin sending a body anyway would answer the
     * next request with it), or with a request body not sent as declared. */
    int keep = clean && c->resp.keep_alive && q->body_done && !c->body_writing &&
               !c->head_writing && !c->def_pending && !q->head_request && c->status != 204 &&
               (q->body != CN_H1_BODY_LENGTH || q->body_sent == q->body_len);
    c->q = NULL;
    q->conn = NULL;
    if (keep)
        cn_h1_pool_put(c, &q->t);
    else
        cn_h1_conn_close(c);
    q->ops->done(q, CN_H1_OK, 0);
}

static void on_deferred(uv_timer_t *t)
{
    struct cn_h1_conn *c = t->data;
    c->def_pending = 0;
    fail(c, c->def_err, c->last_err);
}

/* Fails c from the loop, never inside the caller's call. */
static void defer_fail(struct cn_h1_conn *c, enum cn_h1_err err, int uv_status)
{
    if (c->def_pending)
        return; /* the first failure is the one reported */
    c->def_err = err;
    c->last_err = uv_status;
    c->def_pending = 1;
    if (uv_timer_start(&c->timer, on_deferred, 0, 0) < 0) {
        /* Only on a closing handle: c is closing, no request to tell. */
        c->def_pending = 0;
        cn_h1_conn_close(c);
    }
}

/* ---- reading ---- */

void cn_h1_on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct cn_h1_conn *c = st->data;
    if (nread == 0 || c->closing)
        return;
    struct cn_h1_req *q = c->q;
    if (!q) {
        cn_h1_idle_read(c, nread);
        return;
    }
    if (nread < 0) {
        if (nread != UV_EOF) {
            fail(c, c->resp.started && !c->resp.head_done ? CN_H1_BAD_RESPONSE : CN_H1_RESET,
                 (int)nread);
            return;
        }
        if (px_h1resp_eof(&c->resp) == 0) {
            finish(c, 0);
            return;
        }
        fail(c,
             !c->resp.started    ? CN_H1_EMPTY
             : c->resp.head_done ? CN_H1_RESET
                                 : CN_H1_BAD_RESPONSE,
             0);
        return;
    }
    size_t used = 0;
    int rc = px_h1resp_feed(&c->resp, buf->base, (size_t)nread, &used);
    if (rc < 0) {
        fail(c,
             rc == PX_H1RESP_TOO_LARGE ? CN_H1_HEADERS_TOO_LARGE
             : rc == PX_H1RESP_NOMEM   ? CN_H1_NOMEM
                                       : CN_H1_BAD_RESPONSE,
             0);
        return;
    }
    if (c->resp.complete) {
        finish(c, used == (size_t)nread);
        return;
    }
    if (!q->ops->room(q)) {
        uv_read_stop(st);
        c->reading = 0;
        q->read_paused = 1;
    }
}

static int start_reading(struct cn_h1_conn *c)
{
    if (c->reading)
        return 0;
    int rc = uv_read_start(&c->io.s, cn_h1_alloc, cn_h1_on_read);
    if (rc == 0)
        c->reading = 1;
    return rc;
}

void cn_h1_resume(struct cn_h1_req *q)
{
    struct cn_h1_conn *c = q->conn;
    if (!c || !q->read_paused || !q->ops->room(q))
        return; /* still no room (the host over its cap): its cn_h1_resume comes later */
    q->read_paused = 0;
    int rc = start_reading(c);
    if (rc < 0)
        defer_fail(c, CN_H1_RESET, rc);
}

/* ---- writing ---- */

static void pump_body(struct cn_h1_conn *c);

/* Writes bufs[n] at once when the socket takes them (no write request: with
 * libuv 1.44 each finished request costs an epoll_ctl), queuing the rest
 * with req. Returns 1 when all went out, 0 when req is pending (cb
 * follows), or a libuv error. bufs may be changed. */
static int send_bufs(struct cn_h1_conn *c, uv_write_t *req, uv_buf_t *bufs, unsigned n,
                     uv_write_cb cb)
{
    int r = uv_try_write(&c->io.s, bufs, n);
    if (r == UV_EAGAIN)
        r = 0;
    if (r < 0)
        return r;
    size_t skip = (size_t)r;
    while (n > 0 && skip >= bufs[0].len) {
        skip -= bufs[0].len;
        bufs++;
        n--;
    }
    if (n == 0)
        return 1;
    bufs[0].base += skip;
    bufs[0].len -= skip;
    req->data = c;
    r = uv_write(req, &c->io.s, bufs, n, cb);
    return r < 0 ? r : 0;
}

static void on_body_written(uv_write_t *w, int status)
{
    struct cn_h1_conn *c = w->data;
    c->body_writing = 0;
    if (c->closing || status == UV_ECANCELED)
        return;
    if (status < 0) {
        fail(c, CN_H1_RESET, status);
        return;
    }
    pump_body(c);
}

/* Takes one piece of the body and writes it. Returns 1 when it went out at
 * once (the caller may take the next), else 0. */
static int pump_once(struct cn_h1_conn *c)
{
    struct cn_h1_req *q = c->q;
    if (!q || c->body_writing || q->body_done || c->closing)
        return 0;
    px_buf_consume(&c->wbuf, px_buf_len(&c->wbuf));
    uint8_t *p = px_buf_reserve(&c->wbuf, CN_H1_UPLOAD_BUF);
    if (!p) {
        defer_fail(c, CN_H1_NOMEM, 0);
        return 0;
    }
    int eof = 0;
    size_t n = q->ops->upload(q, p, CN_H1_UPLOAD_BUF, &eof);
    if (n)
        q->body_taken = 1;
    if (q->body == CN_H1_BODY_LENGTH && n > q->body_len - q->body_sent) {
        /* More than declared: what fits goes out, the rest would be read
         * as the next request. The request fails (and is not pooled). */
        PX_WARN("request body to %s over its Content-Length", c->pool->key);
        n = (size_t)(q->body_len - q->body_sent);
        eof = 1;
        defer_fail(c, CN_H1_RESET, UV_EPROTO);
    }
    q->body_sent += n;
    if (eof)
        q->body_done = 1;
    unsigned nb = 0;
    if (q->body == CN_H1_BODY_CHUNKED) {
        static const char crlf[] = "\r\n", last[] = "0\r\n\r\n", crlf_last[] = "\r\n0\r\n\r\n";
        if (n) {
            int l = snprintf(c->chunk_line, sizeof(c->chunk_line), "%zx\r\n", n);
            c->bbufs[nb++] = uv_buf_init(c->chunk_line, (unsigned)l);
            c->bbufs[nb++] = uv_buf_init((char *)p, (unsigned)n);
            c->bbufs[nb++] = eof ? uv_buf_init((char *)crlf_last, sizeof(crlf_last) - 1)
                                 : uv_buf_init((char *)crlf, sizeof(crlf) - 1);
        } else if (eof) {
            c->bbufs[nb++] = uv_buf_init((char *)last, sizeof(last) - 1);
        }
    } else if (n) {
        c->bbufs[nb++] = uv_buf_init((char *)p, (unsigned)n);
    }
    if (nb == 0)
        return 0;
    int rc = send_bufs(c, &c->breq, c->bbufs, nb, on_body_written);
    if (rc < 0) {
        defer_fail(c, CN_H1_RESET, rc);
        return 0;
    }
    c->body_writing = rc == 0;
    return rc;
}

static void pump_body(struct cn_h1_conn *c)
{
    while (pump_once(c))
        ;
}

void cn_h1_kick(struct cn_h1_req *q)
{
    struct cn_h1_conn *c = q->conn;
    if (c && c->connected)
        pump_body(c);
}

static void on_head_written(uv_write_t *w, int status)
{
    struct cn_h1_conn *c = w->data;
    c->head_writing = 0;
    if (c->closing || status == UV_ECANCELED || status == 0)
        return;
    fail(c, CN_H1_RESET, status);
}

/* The connection is up (new or reused): the head in one write, reading on,
 * then the body as it comes. */
static void send_head(struct cn_h1_conn *c)
{
    struct cn_h1_req *q = c->q;
    uv_buf_t b = uv_buf_init((char *)px_buf_head(&q->head), (unsigned)px_buf_len(&q->head));
    int rc = send_bufs(c, &c->hreq, &b, 1, on_head_written);
    c->head_writing = rc == 0;
    if (rc >= 0)
        rc = start_reading(c);
    if (rc < 0) {
        defer_fail(c, CN_H1_RESET, rc);
        return;
    }
    pump_body(c);
}

/* ---- connecting ---- */

static void on_connect_timeout(uv_timer_t *t)
{
    struct cn_h1_conn *c = t->data;
    fail(c, CN_H1_CONNECT_TIMEOUT, UV_ETIMEDOUT);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct cn_h1_conn *c = req->data;
    if (c->closing || status == UV_ECANCELED)
        return;
    if (status < 0) {
        c->last_err = status;
        try_next(c);
        return;
    }
    uv_timer_stop(&c->timer);
    c->connected = 1;
    if (c->io.h.type == UV_TCP) {
        uv_tcp_nodelay(&c->io.tcp, 1);
        uv_tcp_keepalive(&c->io.tcp, 1, 60);
    }
    send_head(c);
}

static void on_cycled(uv_handle_t *h)
{
    struct cn_h1_conn *c = h->data;
    c->io_cycling = 0;
    if (c->closing) {
        cn_h1_conn_unpend(c);
        return;
    }
    try_next(c);
}

/* The last attempt failed (c->last_err): the next address, or the end. */
/* c's stream handle was just initialised (TCP or pipe): its callbacks
 * find c, closing c closes it, and the connect request is c's. */
static void io_opened(struct cn_h1_conn *c)
{
    c->io.h.data = c;
    c->io_open = 1;
    c->creq.data = c;
}

static void try_next(struct cn_h1_conn *c)
{
    if (c->io_open) {
        /* A handle is connected once: a new one for the next address. */
        c->io_open = 0;
        c->io_cycling = 1;
        uv_close(&c->io.h, on_cycled);
        return;
    }
    if (!c->ai_at) {
        fail(c, c->last_err == UV_ETIMEDOUT ? CN_H1_CONNECT_TIMEOUT : CN_H1_REFUSED, c->last_err);
        return;
    }
    const struct sockaddr *sa = c->ai_at->ai_addr;
    c->ai_at = c->ai_at->ai_next;
    int rc = uv_tcp_init(c->h1->loop, &c->io.tcp);
    if (rc < 0) {
        fail(c, CN_H1_REFUSED, rc); /* from the loop: try_next runs in callbacks only */
        return;
    }
    io_opened(c);
    rc = uv_tcp_connect(&c->creq, &c->io.tcp, sa, on_connect);
    if (rc < 0) {
        c->last_err = rc;
        try_next(c);
    }
}

static void on_resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *res)
{
    struct cn_h1_conn *c = g->data;
    c->resolving = 0;
    if (c->closing) {
        if (res)
            uv_freeaddrinfo(res);
        cn_h1_conn_unpend(c);
        return;
    }
    if (status < 0 || !res) {
        if (res)
            uv_freeaddrinfo(res);
        fail(c, CN_H1_RESOLVE, status);
        return;
    }
    c->ai = c->ai_at = res;
    c->last_err = UV_ECONNREFUSED;
    try_next(c);
}

/* A numeric address (IPv6 with or without brackets) into c->addr. */
static int numeric(struct cn_h1_conn *c, const char *host, int port)
{
    char h[64];
    size_t n = strlen(host);
    if (host[0] == '[' && n >= 2 && host[n - 1] == ']' && n - 2 < sizeof(h)) {
        memcpy(h, host + 1, n - 2);
        h[n - 2] = '\0';
        host = h;
    }
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&c->addr) == 0)
        return 1;
    return uv_ip6_addr(host, port, (struct sockaddr_in6 *)&c->addr) == 0;
}

static void start_connect(struct cn_h1_conn *c)
{
    struct cn_h1_req *q = c->q;
    const struct cn_h1_target *t = &q->t;
    uv_loop_t *loop = c->h1->loop;
    c->timer.data = c;
    unsigned ms = t->connect_timeout_ms ? t->connect_timeout_ms : CN_H1_CONNECT_TIMEOUT_DEFAULT_MS;
    int rc = uv_timer_start(&c->timer, on_connect_timeout, ms, 0);
    if (rc < 0) {
        defer_fail(c, CN_H1_REFUSED, rc);
        return;
    }
    if (t->unix_path) {
        rc = uv_pipe_init(loop, &c->io.pipe, 0);
        if (rc < 0) {
            defer_fail(c, CN_H1_REFUSED, rc);
            return;
        }
        io_opened(c);
        uv_pipe_connect(&c->creq, &c->io.pipe, t->unix_path, on_connect);
        return;
    }
    if (numeric(c, t->host, t->port)) {
        rc = uv_tcp_init(loop, &c->io.tcp);
        if (rc < 0) {
            defer_fail(c, CN_H1_REFUSED, rc);
            return;
        }
        io_opened(c);
        rc = uv_tcp_connect(&c->creq, &c->io.tcp, (const struct sockaddr *)&c->addr, on_connect);
        if (rc < 0) {
            c->last_err = rc;
            try_next(c); /* closes the handle first: the failure comes from the loop */
        }
        return;
    }
    char port[16];
    snprintf(port, sizeof(port), "%d", t->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    c->gai.data = c;
    rc = uv_getaddrinfo(loop, &c->gai, on_resolved, t->host, port, &hints);
    if (rc < 0) {
        defer_fail(c, CN_H1_RESOLVE, rc);
        return;
    }
    c->resolving = 1;
}

static int open_conn(struct cn_h1_req *q, struct cn_h1_pool *pool)
{
    struct cn_h1_conn *c = cn_h1_conn_new(q->h1, pool);
    if (!c)
        return PX_ERR_NOMEM;
    attach(c, q);
    start_connect(c);
    return 0;
}

/* ---- the request ---- */

int cn_h1_start(struct cn_h1 *h, struct cn_h1_req *q, const struct cn_h1_target *t)
{
    q->h1 = h;
    q->t = *t;
    q->conn = NULL;
    q->reused = q->retried = q->body_taken = q->read_paused = 0;
    q->body_sent = 0;
    q->body_done = q->body == CN_H1_BODY_NONE;
    struct cn_h1_pool *pool = cn_h1_pool_of(h, t);
    if (!pool)
        return PX_ERR_NOMEM;
    struct cn_h1_conn *c = cn_h1_pool_take(pool);
    if (!c)
        return open_conn(q, pool);
    q->reused = 1;
    attach(c, q);
    send_head(c);
    return 0;
}

void cn_h1_cancel(struct cn_h1_req *q)
{
    if (q->conn)
        cn_h1_conn_close(q->conn); /* busy with q: never pooled */
    q->conn = NULL;
}

void cn_h1_req_cleanup(struct cn_h1_req *q)
{
    cn_h1_cancel(q);
    px_buf_cleanup(&q->head);
}
