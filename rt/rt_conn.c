#include "rt_conn.h"
#include "px_err.h"
#include "px_log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct write_req {
    uv_write_t req;
    struct rt_conn *conn;
    size_t len;
    uint8_t *data;
};

static void flush_one(struct rt_conn *c);

/* The read scratch's tail that TLS plaintext is decrypted into: a record
 * holds at most 16 KiB (RFC 8446 5.1). */
#define PLAIN_ROOM (16 * 1024)
static void on_deadline(uv_timer_t *t);

void rt_conn_flush_dirty(struct rt_loop *rl)
{
    /* Flushing can mark connections dirty again (a write unblocks another
     * producer); bound the passes so one busy connection cannot spin. */
    for (int pass = 0; pass < 4 && !px_list_empty(&rl->dirty); pass++) {
        struct px_list batch;
        struct px_list_node *n;
        px_list_move(&batch, &rl->dirty);
        /* A connection closed meanwhile leaves the batch (unlink_dirty). */
        while ((n = px_list_first(&batch))) {
            px_list_remove(n);
            flush_one(px_container_of(n, struct rt_conn, dirty_node));
        }
    }
}

void rt_conn_want_write(struct rt_conn *c)
{
    if (px_list_linked(&c->dirty_node) || c->closed)
        return;
    px_list_insert_tail(&c->rl->dirty, &c->dirty_node);
    /* With no socket nothing else may keep the loop alive: without this a
     * uv_run would return before the flush hook ran. */
    if (c->memory)
        rt_loop_wake(c->rl);
}

static void unlink_dirty(struct rt_conn *c)
{
    px_list_remove(&c->dirty_node);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct rt_conn *c = h->data;
    if (--c->handles_open > 0)
        return;
    if (c->use_tls)
        px_tls_cleanup(&c->tls);
    px_buf_cleanup(&c->pt_out);
    px_buf_cleanup(&c->mem_out);
    if (c->ops->on_close)
        c->ops->on_close(c, c->close_err);
}

void rt_conn_abort(struct rt_conn *c, int err)
{
    if (c->closed)
        return;
    c->closed = 1;
    if (!c->close_err)
        c->close_err = err;
    unlink_dirty(c);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

int rt_conn_init(struct rt_conn *c, uv_loop_t *loop, const struct rt_conn_ops *ops, void *owner)
{
    memset(c, 0, sizeof(*c));
    c->rl = rt_loop_of(loop);
    c->ops = ops;
    c->owner = owner;
    int r = uv_tcp_init(loop, &c->tcp);
    if (r < 0)
        return px_err_from_errno(r);
    r = uv_timer_init(loop, &c->timer);
    if (r < 0) {
        c->closed = 1;
        c->handles_open = 1;
        c->tcp.data = c;
        uv_close((uv_handle_t *)&c->tcp, NULL);
        return px_err_from_errno(r);
    }
    c->tcp.data = c;
    c->timer.data = c;
    c->handles_open = 2;
    return 0;
}

/* Output not yet taken by the peer: in the kernel's queue, staged for TLS,
 * or (memory mode) not yet drained by the test. */
static size_t queued_bytes(const struct rt_conn *c)
{
    return c->write_queued +
           (c->use_tls ? px_buf_len(&c->tls.out) + px_buf_len(&c->pt_out) + c->stage_len : 0) +
           px_buf_len(&c->mem_out);
}

size_t rt_conn_write_room(const struct rt_conn *c)
{
    if (c->closed || c->closing || !c->open)
        return 0;
    size_t queued = queued_bytes(c);
    return queued >= RT_CONN_WRITE_HIGH ? 0 : RT_CONN_WRITE_HIGH - queued;
}

/* Notes a libuv/OS failure of what ("read", "write", "connect"): the
 * sentence for the log and the errno. Returns it as a px_err. A sentence
 * already there stays: it says why the connection failed first (a TLS
 * failure whose alert then could not be sent is a TLS failure). */
static int os_failure(struct rt_conn *c, const char *what, int uv_code)
{
    if (c->err_text[0] == '\0')
        snprintf(c->err_text, sizeof(c->err_text), "%s failed: %s", what, uv_strerror(uv_code));
    /* On Unix libuv's codes are negated errnos, but for its own (UV_EAI_*
     * from -3000, UV_EOF and a few more near -4000), which are not: keep
     * only real errnos. */
    if (uv_code < 0 && uv_code > -3000 && !c->sys_errno)
        c->sys_errno = -uv_code;
    return px_err_from_errno(uv_code);
}

static void on_write(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct rt_conn *c = w->conn;
    c->write_queued -= w->len;
    free(w->data);
    free(w);
    if (c->closed)
        return;
    if (status < 0) {
        rt_conn_abort(c, os_failure(c, "write", status));
        return;
    }
    rt_conn_want_write(c);
}

/* Queues n bytes at p (a malloc'd block, owned from here on) behind
 * whatever libuv already holds. */
static int send_bytes(struct rt_conn *c, uint8_t *p, size_t n)
{
    struct write_req *w = malloc(sizeof(*w));
    if (!w) {
        free(p);
        return PX_ERR_NOMEM;
    }
    w->conn = c;
    w->len = n;
    w->data = p;
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    int r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (r < 0) {
        free(p);
        free(w);
        return os_failure(c, "write", r);
    }
    c->write_queued += n;
    c->bytes_queued += n;
    return 0;
}

/* Writes what the socket takes now of p[0..n), without a write request,
 * and returns how many bytes that was (0..n), or a px_err. A hard error
 * (EPIPE, ECONNRESET) aborts the connection here, as on_write does for a
 * queued write: nothing more can reach the peer, so a graceful close must
 * not wait for its deadline with output that can never go (on_close is
 * deferred through uv_close: safe inside the owner's callbacks). Only while libuv
 * holds no earlier bytes for this socket: output keeps its order (libuv's
 * own uv_try_write refuses then too). send(2) with MSG_NOSIGNAL rather than
 * uv_try_write: a peer that has gone away is an EPIPE for this connection,
 * never a SIGPIPE for the process (a test or an embedder may not ignore it;
 * uv_write used to defer the write, so a write at once is new here). */
static long try_send(struct rt_conn *c, const uint8_t *p, size_t n)
{
    if (n == 0 || c->tcp.write_queue_size != 0 || n > UINT32_MAX)
        return 0;
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0)
        return 0; /* not open (yet): queue */
    ssize_t r;
    do
        r = send(fd, p, n, MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    if (r < 0 && errno == ENOTSOCK) { /* not a socket: libuv's own way */
        uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
        int u = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        r = u;
        if (u < 0)
            errno = -u;
    }
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOSYS))
        return 0;
    if (r < 0) {
        int err = os_failure(c, "write", -errno);
        rt_conn_abort(c, err);
        return err;
    }
    c->bytes_direct += (size_t)r;
    return (long)r;
}

/* Encrypts the staged plaintext: one px_tls_write per flush instead of one
 * per HTTP/2 frame, so small frames share records (less crypto overhead). */
static int encrypt_pending(struct rt_conn *c)
{
    size_t n = px_buf_len(&c->pt_out);
    if (n == 0 || !c->tls.handshake_done)
        return 0;
    int rc = px_tls_write(&c->tls, px_buf_head(&c->pt_out), n);
    px_buf_consume(&c->pt_out, n);
    /* Idle connections must not pin a 64 KiB staging buffer each (1,000
     * idle WebSockets would hold 64 MB): give it back once drained. */
    px_buf_shrink(&c->pt_out, 0);
    return rc;
}

/* Encrypts what flush_one staged. Returns 0 or PX_ERR_TLS. */
static int encrypt_stage(struct rt_conn *c)
{
    size_t n = c->stage_len;
    c->stage_len = 0;
    if (n == 0)
        return 0;
    return px_tls_write(&c->tls, c->stage, n) < 0 ? PX_ERR_TLS : 0;
}

/* Ends staging: encrypts what is staged. Returns 0 or PX_ERR_TLS. */
static int end_stage(struct rt_conn *c)
{
    if (!c->stage)
        return 0;
    int rc = c->closed ? 0 : encrypt_stage(c);
    c->stage = NULL;
    c->stage_len = 0;
    return rc;
}

/* rt_conn_write while flush_one stages: into the loop's scratch, encrypted
 * a full scratch at a time (as pt_out is, without a buffer of its own). */
static int stage_write(struct rt_conn *c, const void *data, size_t len)
{
    if (c->stage_len + len > RT_CONN_READ_SIZE && encrypt_stage(c) < 0)
        return PX_ERR_TLS;
    if (len >= RT_CONN_READ_SIZE)
        return px_tls_write(&c->tls, data, len) < 0 ? PX_ERR_TLS : 0;
    memcpy(c->stage + c->stage_len, data, len);
    c->stage_len += len;
    return 0;
}

static int send_tls_out(struct rt_conn *c)
{
    if (encrypt_pending(c) < 0)
        return PX_ERR_TLS;
    struct px_buf *o = &c->tls.out;
    if (px_buf_len(o) == 0)
        return 0;
    /* Most flushes end here: the socket takes it all, no write request. */
    long sent = try_send(c, px_buf_head(o), px_buf_len(o));
    if (sent < 0)
        return (int)sent;
    px_buf_consume(o, (size_t)sent);
    if (px_buf_len(o) == 0) {
        px_buf_shrink(o, 0); /* an idle connection keeps no output buffer */
        return 0;
    }
    /* The rest waits in libuv: move the buffer's storage into the write
     * request instead of copying (a partial write leaves it offset: copy). */
    uint8_t *p;
    size_t n = px_buf_len(o);
    if (o->off == 0) {
        p = o->data;
        size_t keep = o->min_cap;
        px_buf_init(o);
        o->min_cap = keep;
    } else {
        p = malloc(n);
        if (!p)
            return PX_ERR_NOMEM;
        memcpy(p, px_buf_head(o), n);
        px_buf_consume(o, n);
        px_buf_shrink(o, 0);
    }
    return send_bytes(c, p, n);
}

int rt_conn_write(struct rt_conn *c, const void *data, size_t len)
{
    if (c->closed)
        return PX_ERR_CLOSED;
    if (len == 0)
        return 0;
    c->bytes_written += len;
    if (c->memory)
        return px_buf_append(&c->mem_out, data, len) < 0 ? PX_ERR_NOMEM : 0;
    if (c->use_tls && c->stage)
        return stage_write(c, data, len);
    if (c->use_tls) {
        if (px_buf_append(&c->pt_out, data, len) < 0)
            return PX_ERR_NOMEM;
        return px_buf_len(&c->pt_out) >= 64 * 1024 ? encrypt_pending(c) : 0;
    }
    long sent = try_send(c, data, len);
    if (sent < 0)
        return (int)sent;
    if ((size_t)sent == len)
        return 0;
    size_t n = len - (size_t)sent;
    uint8_t *p = malloc(n);
    if (!p)
        return PX_ERR_NOMEM;
    memcpy(p, (const uint8_t *)data + sent, n);
    return send_bytes(c, p, n);
}

static void maybe_finish_close(struct rt_conn *c)
{
    if (c->closing && !c->closed && c->write_queued == 0 && px_buf_len(&c->mem_out) == 0 &&
        (!c->use_tls || (px_buf_len(&c->tls.out) == 0 && px_buf_len(&c->pt_out) == 0)))
        rt_conn_abort(c, c->close_err);
}

static void flush_one(struct rt_conn *c)
{
    if (c->closed)
        return;
    int more = 0; /* the owner may have more than there was room for */
    if (c->open && !c->closing && c->ops->on_writable) {
        if (c->use_tls && c->tls.handshake_done) {
            /* What the owner writes now is staged in the loop's read
             * scratch (unused outside on_read) and encrypted once at the
             * end: full records without a staging buffer per connection.
             * Whatever was written earlier goes first. */
            if (encrypt_pending(c) < 0) {
                rt_conn_abort(c, PX_ERR_IO);
                return;
            }
            c->stage = c->rl->read_scratch;
        }
        /* Ask the owner for output until the queue is full or it has nothing. */
        for (int i = 0; i < 64; i++) {
            if (rt_conn_write_room(c) == 0) {
                more = 1;
                break;
            }
            unsigned long long before = c->bytes_written;
            c->in_callback++;
            int wr = c->ops->on_writable(c);
            c->in_callback--;
            if (wr < 0 || c->close_pending) {
                c->close_pending = 0;
                if (end_stage(c) < 0) { /* staged output goes before close_notify */
                    rt_conn_abort(c, PX_ERR_IO);
                    return;
                }
                rt_conn_close(c, wr < 0 ? PX_ERR_CLOSED : c->close_err);
                more = 0;
                break;
            }
            if (c->closed)
                break;
            if (c->bytes_written == before)
                break;
            more = i == 63;
        }
        if (end_stage(c) < 0 && !c->closed)
            rt_conn_abort(c, PX_ERR_IO);
        if (c->closed)
            return;
    }
    if (c->use_tls && send_tls_out(c) < 0) {
        rt_conn_abort(c, PX_ERR_IO);
        return;
    }
    maybe_finish_close(c);
    /* Written at once (no write request completes to ask again): if the
     * owner stopped for want of room, and there is room now, ask it again. */
    if (more && !c->closed && rt_conn_write_room(c) > 0)
        rt_conn_want_write(c);
}

void rt_conn_close(struct rt_conn *c, int err)
{
    if (c->closed || c->closing || c->in_close)
        return;
    if (c->in_callback) {
        /* The owner is inside its protocol library (nghttp2 mid mem_send or
         * mem_recv): close once it has returned, so output it already
         * produced is not cut off and the library is not re-entered. */
        if (!c->close_pending)
            c->close_err = err;
        c->close_pending = 1;
        return;
    }
    /* Let the owner queue its last words (GOAWAY, an error page) first. */
    c->in_close = 1;
    if (c->open && c->ops->on_writable) {
        c->in_callback++;
        c->ops->on_writable(c);
        c->in_callback--;
    }
    if (c->closed)
        return;
    c->closing = 1;
    c->close_err = err;
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (c->use_tls && c->open) {
        encrypt_pending(c);
        px_tls_shutdown(&c->tls);
        send_tls_out(c);
    }
    maybe_finish_close(c);
    /* A peer that never reads must not pin us: bound the graceful phase. */
    if (!c->closed)
        uv_timer_start(&c->timer, on_deadline, 5000, 0);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct rt_conn *c = h->data;
    /* TLS: the ciphertext stays where it was read (on_read lends it to
     * px_tls), so plaintext is decrypted into the scratch's tail. */
    *buf = uv_buf_init((char *)c->rl->read_scratch,
                       c->use_tls ? RT_CONN_READ_SIZE - PLAIN_ROOM : RT_CONN_READ_SIZE);
}

/* Lends px_tls the n ciphertext bytes at p (in the read scratch) as its
 * input buffer: a view, never freed or grown (px_tls only consumes from
 * it). on_read takes it back before it returns, whatever happened. */
static void lend_input(struct rt_conn *c, uint8_t *p, size_t n)
{
    struct px_buf *in = &c->tls.in;
    in->data = p;
    in->off = 0;
    in->len = n;
    in->cap = n;
}

/* Ends the loan: the scratch is reused by the next read, so a part of a
 * record not yet consumed is copied to storage of its own. Returns 0 or
 * PX_ERR_NOMEM. */
static int take_back_input(struct rt_conn *c)
{
    struct px_buf *in = &c->tls.in;
    const uint8_t *rest = px_buf_head(in);
    size_t n = px_buf_len(in), keep = in->min_cap;
    px_buf_init(in);
    in->min_cap = keep;
    return px_buf_append(in, rest, n);
}

static int deliver_plaintext(struct rt_conn *c)
{
    for (;;) {
        size_t n = 0;
        uint8_t *scratch = c->rl->read_scratch + RT_CONN_READ_SIZE - PLAIN_ROOM;
        int r = px_tls_read(&c->tls, scratch, PLAIN_ROOM, &n);
        if (r == PX_ERR_WANT_IO)
            return 0;
        if (r == PX_ERR_CLOSED)
            return PX_ERR_CLOSED;
        if (r < 0) {
            px_tls_describe_error(&c->tls, c->err_text, sizeof(c->err_text));
            return r;
        }
        c->in_callback++;
        int dr = c->ops->on_data(c, scratch, n);
        c->in_callback--;
        if (dr < 0)
            return PX_ERR_CLOSED;
        if (c->closed || c->closing || c->close_pending)
            return 0;
    }
}

static int open_conn(struct rt_conn *c)
{
    uv_timer_stop(&c->timer);
    c->open = 1;
    if (c->ops->on_open && c->ops->on_open(c) < 0)
        return PX_ERR_CLOSED;
    /* A TLS 1.3 server session keeps its handshake arrays (secrets and
     * scratch, ~4 KiB) for post-handshake authentication and new session
     * tickets, neither of which a server here sends: free them once the
     * owner has read what it needs (peer certificate, SNI, ALPN live
     * elsewhere). TLS 1.2 sessions free them themselves. */
    if (c->use_tls && c->tls_server && c->tls.ssl)
        wolfSSL_FreeArrays(c->tls.ssl);
    rt_conn_want_write(c);
    return 0;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct rt_conn *c = s->data;
    if (c->closed)
        return;
    if (nread < 0) {
        int err = nread == UV_EOF ? PX_ERR_CLOSED : os_failure(c, "read", (int)nread);
        c->peer_eof = 1;
        rt_conn_abort(c, err);
        return;
    }
    if (nread == 0)
        return;
    int r = 0;
    if (!c->use_tls) {
        c->in_callback++;
        if (c->ops->on_data(c, (const uint8_t *)buf->base, (size_t)nread) < 0)
            r = PX_ERR_CLOSED;
        c->in_callback--;
    } else {
        /* With nothing left over from the last read, px_tls reads the
         * ciphertext where the socket read put it (no copy, no allocation);
         * else it is appended to what was left. */
        int lent = c->tls.in.data == NULL;
        if (lent)
            lend_input(c, (uint8_t *)buf->base, (size_t)nread);
        else if (px_tls_feed(&c->tls, buf->base, (size_t)nread) < 0) {
            rt_conn_abort(c, PX_ERR_NOMEM);
            return;
        }
        if (!c->open) {
            r = px_tls_handshake(&c->tls);
            if (r == PX_ERR_WANT_IO) {
                r = 0;
            } else if (r < 0) {
                px_tls_describe_error(&c->tls, c->err_text, sizeof(c->err_text));
                c->close_err = r; /* a failed alert send ends it with this, not EPIPE */
                send_tls_out(c);  /* deliver the alert */
            } else {
                r = open_conn(c);
            }
        }
        if (r == 0 && c->open && !c->closed && !c->closing)
            r = deliver_plaintext(c);
        if (lent && take_back_input(c) < 0 && !c->closed)
            rt_conn_abort(c, PX_ERR_NOMEM);
        if (!c->closed)
            px_buf_shrink(&c->tls.in, 0); /* nothing buffered between reads */
    }
    if (c->closed)
        return;
    if (c->close_pending && r == 0) {
        c->close_pending = 0;
        rt_conn_close(c, c->close_err);
        return;
    }
    if (r < 0) {
        c->close_pending = 0;
        if (r == PX_ERR_CLOSED && c->use_tls) {
            rt_conn_close(c, PX_ERR_CLOSED);
        } else {
            if (c->use_tls) {
                c->close_err = r; /* as above: the alert may not go */
                send_tls_out(c);
            }
            rt_conn_close(c, r);
        }
        return;
    }
    rt_conn_want_write(c);
}

void rt_conn_pause_read(struct rt_conn *c)
{
    if (c->read_paused || c->closed)
        return;
    c->read_paused = 1;
    uv_read_stop((uv_stream_t *)&c->tcp);
}

void rt_conn_resume_read(struct rt_conn *c)
{
    if (!c->read_paused || c->closed || c->closing)
        return;
    c->read_paused = 0;
    if (!c->memory)
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_deadline(uv_timer_t *t)
{
    struct rt_conn *c = t->data;
    if (!c->closing)
        snprintf(c->err_text, sizeof(c->err_text), "timed out");
    rt_conn_abort(c, c->closing ? c->close_err : PX_ERR_TIMEOUT);
}

void rt_conn_set_deadline(struct rt_conn *c, unsigned ms)
{
    if (c->closed || c->closing)
        return;
    if (ms)
        uv_timer_start(&c->timer, on_deadline, ms, 0);
    else
        uv_timer_stop(&c->timer);
}

static int start_tls(struct rt_conn *c, WOLFSSL_CTX *ctx, int server, const char *name,
                     const char *alpn)
{
    if (!ctx) {
        c->use_tls = 0;
        return 0;
    }
    c->use_tls = 1;
    c->tls_server = server;
    int r = px_tls_init(&c->tls, ctx, server, name, alpn);
    if (r < 0) {
        c->use_tls = 0;
        return r;
    }
    /* Output is handed to the kernel whole and reallocated each time: start
     * big enough for a burst of full records instead of regrowing. */
    px_buf_set_min_cap(&c->tls.out, 64 * 1024);
    px_buf_set_min_cap(&c->pt_out, 64 * 1024);
    return 0;
}

static void fill_peer(struct rt_conn *c)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET)
            uv_ip4_name((struct sockaddr_in *)&ss, c->peer_ip, sizeof(c->peer_ip));
        else if (ss.ss_family == AF_INET6)
            uv_ip6_name((struct sockaddr_in6 *)&ss, c->peer_ip, sizeof(c->peer_ip));
    }
}

/* The socket is connected: start reading, and open a plain connection at
 * once or start the TLS handshake (a client sends its ClientHello). */
static void start_io(struct rt_conn *c, int tls_client)
{
    fill_peer(c);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (!c->use_tls) {
        if (open_conn(c) < 0)
            rt_conn_close(c, PX_ERR_CLOSED);
        return;
    }
    if (!tls_client)
        return;
    int r = px_tls_handshake(&c->tls); /* produces the ClientHello */
    if (r < 0 && r != PX_ERR_WANT_IO) {
        px_tls_describe_error(&c->tls, c->err_text, sizeof(c->err_text));
        rt_conn_abort(c, r);
        return;
    }
    send_tls_out(c);
}

int rt_conn_accept(struct rt_conn *c, uv_stream_t *server, WOLFSSL_CTX *ctx, const char *alpn,
                   unsigned handshake_timeout_ms)
{
    int r = uv_accept(server, (uv_stream_t *)&c->tcp);
    if (r < 0)
        r = os_failure(c, "accept", r);
    else
        r = start_tls(c, ctx, 1, NULL, alpn);
    if (r < 0) {
        rt_conn_abort(c, r);
        return r;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (c->use_tls && handshake_timeout_ms)
        uv_timer_start(&c->timer, on_deadline, handshake_timeout_ms, 0);
    start_io(c, 0);
    return 0;
}

int rt_conn_open_fd(struct rt_conn *c, int fd, WOLFSSL_CTX *ctx, int is_server,
                    const char *server_name, const char *alpn, unsigned handshake_timeout_ms)
{
    int r = start_tls(c, ctx, is_server, server_name, alpn);
    if (r == 0) {
        r = uv_tcp_open(&c->tcp, fd);
        if (r < 0)
            r = os_failure(c, "open", r);
    }
    if (r < 0) {
        rt_conn_abort(c, r); /* the handle holds no descriptor: fd stays open */
        return r;
    }
    uv_tcp_nodelay(&c->tcp, 1); /* fails harmlessly on a socketpair */
    if (c->use_tls && handshake_timeout_ms)
        uv_timer_start(&c->timer, on_deadline, handshake_timeout_ms, 0);
    start_io(c, !is_server);
    return 0;
}

static void on_connected(uv_connect_t *req, int status)
{
    struct rt_conn *c = req->data;
    free(req);
    if (c->closed)
        return;
    int err = status < 0 ? os_failure(c, "connect", status) : 0;
    if (c->ops->on_connect)
        c->ops->on_connect(c, err);
    if (c->closed)
        return;
    if (err < 0) {
        rt_conn_abort(c, err);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, 30);
    start_io(c, 1);
}

int rt_conn_connect(struct rt_conn *c, const struct sockaddr *addr, WOLFSSL_CTX *ctx,
                    const char *server_name, const char *alpn, unsigned timeout_ms)
{
    /* A close already begun (the owner stopped while it looked the name
     * up) must not be undone: connecting a closing handle re-arms it. */
    if (c->closing || c->in_close || c->closed)
        return PX_ERR_CLOSED;
    int r = start_tls(c, ctx, 0, server_name, alpn);
    if (r < 0) {
        rt_conn_abort(c, r);
        return r;
    }
    uv_connect_t *req = malloc(sizeof(*req));
    if (!req) {
        rt_conn_abort(c, PX_ERR_NOMEM);
        return PX_ERR_NOMEM;
    }
    req->data = c;
    r = uv_tcp_connect(req, &c->tcp, addr, on_connected);
    if (r < 0) {
        free(req);
        r = os_failure(c, "connect", r);
        rt_conn_abort(c, r);
        return r;
    }
    if (timeout_ms)
        uv_timer_start(&c->timer, on_deadline, timeout_ms, 0);
    return 0;
}

const char *rt_conn_alpn(struct rt_conn *c)
{
    if (c->memory)
        return c->mem_alpn;
    return c->use_tls ? px_tls_alpn(&c->tls) : "";
}

int rt_conn_sys_errno(const struct rt_conn *c)
{
    return c->sys_errno;
}

const struct px_tls_failure *rt_conn_tls_failure(const struct rt_conn *c)
{
    static const struct px_tls_failure none; /* const: shared by plain connections */
    return c->use_tls ? &c->tls.failure : &none;
}

/* ---- memory mode ---- */

int rt_conn_open_memory(struct rt_conn *c, const char *alpn, const char *peer)
{
    c->memory = 1;
    c->use_tls = 0;
    snprintf(c->mem_alpn, sizeof(c->mem_alpn), "%s", alpn ? alpn : "");
    snprintf(c->peer_ip, sizeof(c->peer_ip), "%s", peer ? peer : "");
    if (open_conn(c) < 0)
        rt_conn_close(c, PX_ERR_CLOSED);
    return 0;
}

/* The plaintext branch of on_read, without a socket. */
int rt_conn_memory_feed(struct rt_conn *c, const void *data, size_t len)
{
    if (!c->memory || c->closed || c->closing || !c->open)
        return PX_ERR_CLOSED;
    if (len == 0)
        return 0;
    c->in_callback++;
    int r = c->ops->on_data(c, data, len) < 0 ? PX_ERR_CLOSED : 0;
    c->in_callback--;
    if (c->closed)
        return PX_ERR_CLOSED;
    if (c->close_pending && r == 0) {
        c->close_pending = 0;
        rt_conn_close(c, c->close_err);
        return PX_ERR_CLOSED;
    }
    if (r < 0) {
        c->close_pending = 0;
        rt_conn_close(c, r);
        return r;
    }
    rt_conn_want_write(c);
    return 0;
}

void rt_conn_memory_eof(struct rt_conn *c)
{
    if (!c->memory || c->closed)
        return;
    c->peer_eof = 1;
    rt_conn_abort(c, PX_ERR_CLOSED);
}

void rt_conn_memory_consume(struct rt_conn *c, size_t n)
{
    px_buf_consume(&c->mem_out, n);
    if (px_buf_len(&c->mem_out) == 0)
        px_buf_shrink(&c->mem_out, 0);
    if (c->closing)
        maybe_finish_close(c); /* a graceful close waits for the peer to take it all */
    else
        rt_conn_want_write(c);
}
