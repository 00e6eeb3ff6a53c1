/* cn_h1, the lean origin client, driven directly (its request ops played by
 * the test) against origins on the test's own loop: tests/support's
 * fake_origin (request bodies, large bodies) and a scripted raw origin here
 * (TCP on 127.0.0.1 or a unix socket) that answers every request head with
 * bytes the test chooses, hostile ones included. Covered: keep-alive reuse,
 * the pool's cap (surplus kept for a grace, least recently used shed, most
 * recently used taken first) and idle timeout, the stale-connection retry,
 * what is never pooled, chunked bodies both ways, bodies read until close,
 * 1xx, HEAD, 204/304, every failure's typed result, backpressure and
 * cancel.
 * The same client behind cn_stream is covered by test_cn_stream (each
 * origin test runs with and without it). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cn_h1.h"
#include "fake_origin.h"
#include "px_buf.h"
#include "px_h1resp.h"
#include "px_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- the raw origin ---- */

enum ro_mode {
    RO_ANSWER,        /* every request gets reply (then a close with close_after) */
    RO_CLOSE_SECOND,  /* as RO_ANSWER, but a connection's second request is closed unanswered */
    RO_CLOSE_AT_HEAD, /* every request is closed unanswered */
    RO_RESET_SECOND,  /* as RO_CLOSE_SECOND, with a reset (RST) */
};

struct ro_conn {
    union {
        uv_handle_t h;
        uv_stream_t s;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } io;
    struct raw_origin *ro;
    struct px_buf in;
    int requests;
    int closing;
};

struct raw_origin {
    uv_loop_t *loop;
    union {
        uv_handle_t h;
        uv_stream_t s;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } srv;
    int port;
    char path[64]; /* a unix socket, when listening on one */
    enum ro_mode mode;
    const char *reply;
    size_t reply_len;
    int close_after;
    int wait_chunked; /* a chunked request is answered once its last chunk is read */
    size_t bytes_in;  /* every byte read */
    int accepted, open, requests;
    struct ro_conn *conns[64];
};

static void ro_closed(uv_handle_t *h)
{
    struct ro_conn *c = h->data;
    c->ro->open--;
    for (size_t i = 0; i < 64; i++)
        if (c->ro->conns[i] == c)
            c->ro->conns[i] = NULL;
    px_buf_cleanup(&c->in);
    free(c);
}

static void ro_close(struct ro_conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    uv_close(&c->io.h, ro_closed);
}

struct ro_write {
    uv_write_t w;
    struct ro_conn *c;
    int then_close;
    char data[];
};

static void ro_written(uv_write_t *w, int status)
{
    struct ro_write *rw = (struct ro_write *)w;
    if (status == 0 && rw->then_close)
        ro_close(rw->c);
    free(rw);
}

static void ro_send(struct ro_conn *c, const char *p, size_t n, int then_close)
{
    struct ro_write *rw = malloc(sizeof(*rw) + n);
    assert_non_null(rw);
    memcpy(rw->data, p, n);
    rw->c = c;
    rw->then_close = then_close;
    uv_buf_t b = uv_buf_init(rw->data, (unsigned)n);
    assert_int_equal(uv_write(&rw->w, &c->io.s, &b, 1, ro_written), 0);
}

static void ro_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    (void)h;
    static char buf[65536];
    (void)sz;
    b->base = buf;
    b->len = sizeof(buf);
}

/* Answers each complete request head (requests here carry no body). */
static void ro_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct ro_conn *c = st->data;
    struct raw_origin *ro = c->ro;
    if (n < 0) {
        ro_close(c);
        return;
    }
    px_buf_append(&c->in, b->base, (size_t)n);
    ro->bytes_in += (size_t)n;
    for (;;) {
        const char *s = px_buf_cstr(&c->in);
        const char *end = s ? strstr(s, "\r\n\r\n") : NULL;
        if (!end || c->closing)
            return;
        end += 4;
        if (ro->wait_chunked && strstr(s, "chunked") && strstr(s, "chunked") < end) {
            const char *last = strstr(end, "0\r\n\r\n");
            if (!last)
                return;
            end = last + 5;
        }
        px_buf_consume(&c->in, (size_t)(end - s));
        c->requests++;
        ro->requests++;
        if (ro->mode == RO_CLOSE_AT_HEAD || (ro->mode == RO_CLOSE_SECOND && c->requests == 2)) {
            ro_close(c);
            return;
        }
        if (ro->mode == RO_RESET_SECOND && c->requests == 2) {
            c->closing = 1;
            uv_tcp_close_reset(&c->io.tcp, ro_closed);
            return;
        }
        ro_send(c, ro->reply, ro->reply_len, ro->close_after);
    }
}

static void ro_accept(uv_stream_t *srv, int status)
{
    struct raw_origin *ro = srv->data;
    assert_int_equal(status, 0);
    struct ro_conn *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->ro = ro;
    px_buf_init(&c->in);
    if (ro->path[0])
        uv_pipe_init(ro->loop, &c->io.pipe, 0);
    else
        uv_tcp_init(ro->loop, &c->io.tcp);
    c->io.h.data = c;
    assert_int_equal(uv_accept(srv, &c->io.s), 0);
    ro->accepted++;
    ro->open++;
    for (size_t i = 0; i < 64; i++)
        if (!ro->conns[i]) {
            ro->conns[i] = c;
            break;
        }
    uv_read_start(&c->io.s, ro_alloc, ro_read);
}

static void ro_start(struct raw_origin *ro, uv_loop_t *loop, int on_unix)
{
    memset(ro, 0, sizeof(*ro));
    ro->loop = loop;
    if (on_unix) {
        snprintf(ro->path, sizeof(ro->path), "/tmp/test_cn_h1.%d.sock", (int)getpid());
        unlink(ro->path);
        assert_int_equal(uv_pipe_init(loop, &ro->srv.pipe, 0), 0);
        assert_int_equal(uv_pipe_bind(&ro->srv.pipe, ro->path), 0);
    } else {
        struct sockaddr_in sa;
        uv_ip4_addr("127.0.0.1", 0, &sa);
        assert_int_equal(uv_tcp_init(loop, &ro->srv.tcp), 0);
        assert_int_equal(uv_tcp_bind(&ro->srv.tcp, (const struct sockaddr *)&sa, 0), 0);
        int len = sizeof(sa);
        uv_tcp_getsockname(&ro->srv.tcp, (struct sockaddr *)&sa, &len);
        ro->port = ntohs(sa.sin_port);
    }
    ro->srv.h.data = ro;
    assert_int_equal(uv_listen(&ro->srv.s, 64, ro_accept), 0);
}

static void ro_set(struct raw_origin *ro, const char *reply, int close_after)
{
    ro->reply = reply;
    ro->reply_len = strlen(reply);
    ro->close_after = close_after;
}

static void ro_stop(struct raw_origin *ro)
{
    for (size_t i = 0; i < 64; i++)
        if (ro->conns[i])
            ro_close(ro->conns[i]);
    uv_close(&ro->srv.h, NULL);
    if (ro->path[0])
        unlink(ro->path);
}

/* ---- the test's requests ---- */

struct treq {
    struct cn_h1_req q;
    int status, has_body, heads, done;
    enum cn_h1_err err;
    struct px_buf fields; /* "name: value\n" each */
    struct px_buf body;
    size_t room_limit; /* room() says none once the body holds this much (0: no limit) */
    int fields_cap;    /* field() says "too large" after this many (0: never) */
    const char *up;    /* the request body to upload */
    size_t up_len, up_off;
    int up_more;     /* more is coming: no eof yet */
    size_t kick_len; /* on the first response body bytes: up_len = this, eof, cn_h1_kick */
};

static uv_loop_t loop;
static struct cn_h1 *h1;
static struct raw_origin ro;
static int ro_running;
static struct fake_origin fo;
static int fo_running;

static struct treq *tq(struct cn_h1_req *q)
{
    return (struct treq *)q;
}

static int t_field(struct cn_h1_req *q, const char *n, size_t nl, const char *v, size_t vl)
{
    struct treq *t = tq(q);
    if (t->fields_cap && t->heads++ >= t->fields_cap)
        return PX_H1RESP_TOO_LARGE;
    px_buf_appendf(&t->fields, "%.*s: %.*s\n", (int)nl, n, (int)vl, v);
    return 0;
}

static int t_head(struct cn_h1_req *q, int status, int has_body)
{
    struct treq *t = tq(q);
    t->status = status;
    t->has_body = has_body;
    return 0;
}

static int t_body(struct cn_h1_req *q, const char *d, size_t n)
{
    struct treq *t = tq(q);
    if (t->kick_len) {
        t->up_len = t->kick_len;
        t->up_more = 0;
        t->kick_len = 0;
        cn_h1_kick(q);
    }
    return px_buf_append(&t->body, d, n);
}

static int t_room(struct cn_h1_req *q)
{
    struct treq *t = tq(q);
    return !t->room_limit || px_buf_len(&t->body) < t->room_limit;
}

static size_t t_upload(struct cn_h1_req *q, uint8_t *out, size_t cap, int *eof)
{
    struct treq *t = tq(q);
    size_t n = t->up_len - t->up_off;
    if (n > cap)
        n = cap;
    if (n)
        memcpy(out, t->up + t->up_off, n);
    t->up_off += n;
    *eof = !t->up_more && t->up_off == t->up_len;
    return n;
}

static void t_done(struct cn_h1_req *q, enum cn_h1_err err, int uv_status)
{
    (void)uv_status;
    struct treq *t = tq(q);
    t->done++;
    t->err = err;
}

static const struct cn_h1_req_ops t_ops = {
    .field = t_field,
    .head = t_head,
    .body = t_body,
    .room = t_room,
    .upload = t_upload,
    .done = t_done,
};

static struct cn_h1_target target(void)
{
    return (struct cn_h1_target){
        .host = "127.0.0.1",
        .port = ro.port,
        .unix_path = ro.path[0] ? ro.path : NULL,
        .connect_timeout_ms = 2000,
        .keepalive_conns = 100,
        .keepalive_timeout_ms = 10000,
    };
}

static void treq_init(struct treq *t)
{
    memset(t, 0, sizeof(*t));
    t->q.ops = &t_ops;
    px_buf_init(&t->q.head);
    px_buf_init(&t->fields);
    px_buf_init(&t->body);
}

static void treq_cleanup(struct treq *t)
{
    cn_h1_req_cleanup(&t->q);
    px_buf_cleanup(&t->fields);
    px_buf_cleanup(&t->body);
}

/* Starts t: method path to tg, with extra head lines (each ending CRLF). */
static void start(struct treq *t, const struct cn_h1_target *tg, const char *method,
                  const char *path, const char *extra)
{
    px_buf_appendf(&t->q.head, "%s %s HTTP/1.1\r\nHost: origin.test\r\n%s\r\n", method, path,
                   extra ? extra : "");
    t->q.head_request = strcmp(method, "HEAD") == 0;
    assert_int_equal(cn_h1_start(h1, &t->q, tg), 0);
    assert_int_equal(t->done, 0); /* never from inside the call */
}

static long ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static struct treq *waiting;
static int is_done(void)
{
    return waiting->done > 0;
}

static int pump_until(int (*cond)(void), int ms)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int round = 1;; round++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        if (cond && cond())
            return 1;
        if (ms_since(&t0) > ms && (cond || round >= 50))
            return 0;
        usleep(200);
    }
}

static void pump_for(int ms)
{
    pump_until(NULL, ms);
}

static void wait_done(struct treq *t)
{
    waiting = t;
    assert_true(pump_until(is_done, 4000));
    assert_int_equal(t->done, 1);
}

/* One request to the raw origin; returns its result (t is the caller's). */
static enum cn_h1_err get(struct treq *t, const char *method, const char *path)
{
    treq_init(t);
    struct cn_h1_target tg = target();
    start(t, &tg, method, path, NULL);
    wait_done(t);
    return t->err;
}

/* The origin answers reply; a request for "/ok" with method succeeds, and
 * the result is how many idle connections the client then keeps. */
static size_t idle_after(const char *reply, const char *method)
{
    ro_set(&ro, reply, 0);
    struct treq t;
    assert_int_equal(get(&t, method, "/ok"), CN_H1_OK);
    size_t n = cn_h1_idle_conns(h1);
    treq_cleanup(&t);
    return n;
}

static int setup(void **state)
{
    (void)state;
    if (uv_loop_init(&loop) != 0 || cn_h1_new(&loop, &h1) < 0)
        return -1;
    return 0;
}

static int setup_ro(void **state)
{
    if (setup(state) < 0)
        return -1;
    ro_start(&ro, &loop, 0);
    ro_running = 1;
    ro_set(&ro, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0);
    return 0;
}

static int setup_ro_unix(void **state)
{
    if (setup(state) < 0)
        return -1;
    ro_start(&ro, &loop, 1);
    ro_running = 1;
    ro_set(&ro, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0);
    return 0;
}

static int setup_fo(void **state)
{
    if (setup(state) < 0 || fo_start(&fo, &loop) < 0)
        return -1;
    fo_running = 1;
    memset(&ro, 0, sizeof(ro));
    ro.port = fo.port;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cn_h1_free(h1);
    h1 = NULL;
    if (ro_running)
        ro_stop(&ro);
    ro_running = 0;
    if (fo_running)
        fo_stop(&fo);
    fo_running = 0;
    for (int i = 0; i < 100 && uv_loop_alive(&loop); i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    int rc = uv_loop_close(&loop);
    if (rc)
        fprintf(stderr, "teardown: loop close %d\n", rc);
    return rc ? -1 : 0;
}

static int ro_all_closed(void)
{
    return ro.open == 0;
}

/* ---- keep-alive ---- */

static void test_keepalive_one_connection_for_sequential_requests(void **state)
{
    (void)state;
    for (int i = 0; i < 5; i++) {
        struct treq t;
        assert_int_equal(get(&t, "GET", "/ok"), CN_H1_OK);
        assert_int_equal(t.status, 200);
        assert_int_equal(px_buf_len(&t.body), 2);
        assert_int_equal(cn_h1_idle_conns(h1), 1);
        treq_cleanup(&t);
    }
    assert_int_equal(ro.accepted, 1);
    assert_int_equal(ro.requests, 5);
}

/* n requests at once to tg, all answered. */
static void burst(struct treq *t, int n, const struct cn_h1_target *tg)
{
    for (int i = 0; i < n; i++) {
        treq_init(&t[i]);
        start(&t[i], tg, "GET", "/ok", NULL);
    }
    for (int i = 0; i < n; i++) {
        wait_done(&t[i]);
        assert_int_equal(t[i].err, CN_H1_OK);
        treq_cleanup(&t[i]);
    }
}

static unsigned want_open;
static int ro_open_is_want(void)
{
    return ro.open == (int)want_open && cn_h1_open_conns(h1) == want_open;
}

/* The origin's connection that answered most requests (NULL if none open). */
static struct ro_conn *ro_busiest(void)
{
    struct ro_conn *best = NULL;
    for (size_t i = 0; i < 64; i++)
        if (ro.conns[i] && (!best || ro.conns[i]->requests > best->requests))
            best = ro.conns[i];
    return best;
}

/* The bug: with more requests in flight than keepAliveConnections, the
 * connections coming back over the cap were closed at once, and the next
 * burst opened as many again (h2load -c32 -m10 through the tunnel left
 * thousands of TIME-WAIT sockets to the origin). They are pooled for a
 * grace: a burst right after reuses every one; with none, the pool sheds
 * back to the cap, and the cap's connections stay. */
static void test_burst_over_keepalive_cap_reuses_surplus_connections(void **state)
{
    (void)state;
    struct treq t[4];
    struct cn_h1_target tg = target();
    tg.keepalive_conns = 2;
    burst(t, 4, &tg);
    assert_int_equal(ro.accepted, 4);
    assert_int_equal(cn_h1_idle_conns(h1), 4);
    burst(t, 4, &tg);
    assert_int_equal(ro.accepted, 4);
    assert_int_equal(ro.requests, 8);
    assert_int_equal(cn_h1_idle_conns(h1), 4);
    /* No request comes: back to the cap once the grace is over. */
    want_open = 2;
    assert_true(pump_until(ro_open_is_want, 4000));
    assert_int_equal(cn_h1_idle_conns(h1), 2);
    /* The two kept are still good for requests (keepAliveTimeout is 10 s). */
    burst(t, 2, &tg);
    assert_int_equal(ro.accepted, 4);
    assert_int_equal(cn_h1_idle_conns(h1), 2);
}

/* Over the cap, the pool sheds its least recently used connections: one
 * used again during the grace stays. */
static void test_pool_over_cap_closes_least_recently_used(void **state)
{
    (void)state;
    struct treq t[4];
    struct cn_h1_target tg = target();
    tg.keepalive_conns = 2;
    burst(t, 4, &tg);
    assert_int_equal(ro.accepted, 4);
    burst(t, 1, &tg);
    struct ro_conn *used = ro_busiest();
    assert_non_null(used);
    assert_int_equal(used->requests, 2);
    want_open = 2;
    assert_true(pump_until(ro_open_is_want, 4000));
    assert_true(ro_busiest() == used);
    assert_int_equal(ro.accepted, 4);
}

/* Sequential requests with several connections idle reuse the most
 * recently used one: the others are left to age out. */
static void test_idle_connections_taken_most_recently_used_first(void **state)
{
    (void)state;
    struct treq t[3];
    struct cn_h1_target tg = target();
    burst(t, 3, &tg);
    assert_int_equal(cn_h1_idle_conns(h1), 3);
    for (int i = 0; i < 4; i++)
        burst(t, 1, &tg);
    assert_int_equal(ro.accepted, 3);
    assert_int_equal(ro_busiest()->requests, 5);
}

/* keepAliveConnections 0: no connection is pooled, not even for a grace. */
static void test_keepalive_conns_zero_never_pools(void **state)
{
    (void)state;
    struct treq t[2];
    struct cn_h1_target tg = target();
    tg.keepalive_conns = 0;
    burst(t, 2, &tg);
    assert_int_equal(cn_h1_idle_conns(h1), 0);
    burst(t, 1, &tg);
    assert_int_equal(ro.accepted, 3);
    want_open = 0;
    assert_true(pump_until(ro_open_is_want, 4000));
}

static void test_idle_connection_closed_after_keepalive_timeout(void **state)
{
    (void)state;
    struct treq t;
    treq_init(&t);
    struct cn_h1_target tg = target();
    tg.keepalive_timeout_ms = 100;
    start(&t, &tg, "GET", "/ok", NULL);
    wait_done(&t);
    assert_int_equal(t.err, CN_H1_OK);
    assert_int_equal(cn_h1_idle_conns(h1), 1);
    assert_true(pump_until(ro_all_closed, 2000));
    assert_int_equal(cn_h1_idle_conns(h1), 0);
    assert_int_equal(cn_h1_open_conns(h1), 0);
    treq_cleanup(&t);
}

/* The origin closes an idle connection: the read watch drops it at once,
 * and the next request opens a new one. */
static void test_idle_connection_closed_by_origin_is_dropped(void **state)
{
    (void)state;
    struct treq t;
    assert_int_equal(get(&t, "GET", "/ok"), CN_H1_OK);
    treq_cleanup(&t);
    assert_int_equal(cn_h1_idle_conns(h1), 1);
    for (size_t i = 0; i < 64; i++)
        if (ro.conns[i])
            ro_close(ro.conns[i]);
    pump_for(50);
    assert_int_equal(cn_h1_idle_conns(h1), 0);
    assert_int_equal(cn_h1_open_conns(h1), 0);
    assert_int_equal(get(&t, "GET", "/ok"), CN_H1_OK);
    assert_int_equal(ro.accepted, 2);
    treq_cleanup(&t);
}

/* A kept connection the origin closes as the request arrives (it timed
 * the connection out meanwhile): sent again once, on a new connection. */
static void test_stale_reused_connection_retried_once(void **state)
{
    (void)state;
    ro.mode = RO_CLOSE_SECOND;
    struct treq t;
    assert_int_equal(get(&t, "GET", "/ok"), CN_H1_OK);
    treq_cleanup(&t);
    assert_int_equal(get(&t, "GET", "/ok"), CN_H1_OK);
    assert_int_equal(t.status, 200);
    assert_int_equal(ro.accepted, 2);
    assert_int_equal(ro.requests, 3);
    treq_cleanup(&t);
}

/* Once only: a fresh connection that fails is the answer. */
static void test_fresh_connection_closed_unanswered_is_empty(void **state)
{
    (void)state;
    ro.mode = RO_CLOSE_AT_HEAD;
    struct treq t;
    assert_int_equal(get(&t, "GET", "/ok"), CN_H1_EMPTY);
    assert_int_equal(ro.accepted, 1);
    treq_cleanup(&t);
}

/* A request body already taken from its owner cannot be sent again. */
static void test_stale_connection_not_retried_after_body_taken(void **state)
{
    (void)state;
    ro.mode = RO_CLOSE_SECOND;
    struct treq t;
    assert_int_equal(get(&t, "GET", "/ok"), CN_H1_OK);
    treq_cleanup(&t);
    treq_init(&t);
    t.up = "abc";
    t.up_len = 3;
    t.q.body = CN_H1_BODY_LENGTH;
    t.q.body_len = 3;
    struct cn_h1_target tg = target();
    start(&t, &tg, "POST", "/ok", "Content-Length: 3\r\n");
    wait_done(&t);
    assert_true(t.err == CN_H1_EMPTY || t.err == CN_H1_RESET);
    assert_int_equal(ro.accepted, 1);
    treq_cleanup(&t);
}

static void test_connection_close_not_pooled(void **state)
{
    (void)state;
    assert_int_equal(
        idle_after("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", "GET"),
        0);
    assert_int_equal(idle_after("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "GET"), 0);
    assert_int_equal(
        idle_after("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
                   "GET"),
        1);
    assert_int_equal(ro.accepted, 3);
}

/* ---- bodies ---- */

static void test_chunked_response_dechunked_trailers_dropped(void **state)
{
    (void)state;
    ro_set(&ro,
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n"
           "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
           0);
    struct treq t;
    assert_int_equal(get(&t, "GET", "/ok"), CN_H1_OK);
    assert_int_equal(px_buf_len(&t.body), 11);
    assert_memory_equal(px_buf_head(&t.body), "hello world", 11);
    assert_null(strstr(px_buf_cstr(&t.fields), "X-Trailer"));
    assert_non_null(strstr(px_buf_cstr(&t.fields), "X-A: 1\n"));
    assert_int_equal(cn_h1_idle_conns(h1), 1);
    treq_cleanup(&t);
}

static void test_body_until_close(void **state)
{
    (void)state;
    ro_set(&ro, "HTTP/1.1 200 OK\r\n\r\nuntil the end", 1);
    struct treq t;
    assert_int_equal(get(&t, "GET", "/ok"), CN_H1_OK);
    assert_int_equal(px_buf_len(&t.body), 13);
    assert_int_equal(cn_h1_idle_conns(h1), 0);
    treq_cleanup(&t);
}

static void test_interim_responses_skipped(void **state)
{
    (void)state;
    ro_set(&ro,
           "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
           "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
           0);
    struct treq t;
    assert_int_equal(get(&t, "GET", "/ok"), CN_H1_OK);
    assert_int_equal(t.status, 201);
    assert_null(strstr(px_buf_cstr(&t.fields), "Link"));
    assert_int_equal(px_buf_len(&t.body), 2);
    treq_cleanup(&t);
}

static void test_head_has_no_body(void **state)
{
    (void)state;
    ro_set(&ro, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", 0);
    struct treq t;
    assert_int_equal(get(&t, "HEAD", "/ok"), CN_H1_OK);
    assert_int_equal(t.has_body, 0);
    assert_int_equal(px_buf_len(&t.body), 0);
    assert_int_equal(cn_h1_idle_conns(h1), 0); /* test_not_pooled_after_204_or_head */
    treq_cleanup(&t);
}

static void test_204_and_304_have_no_body(void **state)
{
    (void)state;
    ro_set(&ro, "HTTP/1.1 204 No Content\r\n\r\n", 0);
    struct treq t;
    assert_int_equal(get(&t, "GET", "/ok"), CN_H1_OK);
    assert_int_equal(t.status, 204);
    assert_int_equal(t.has_body, 0);
    assert_int_equal(cn_h1_idle_conns(h1), 0); /* test_not_pooled_after_204_or_head */
    treq_cleanup(&t);
    ro_set(&ro, "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", 0);
    assert_int_equal(get(&t, "GET", "/ok"), CN_H1_OK);
    assert_int_equal(t.status, 304);
    assert_int_equal(t.has_body, 0);
    assert_int_equal(cn_h1_idle_conns(h1), 1);
    treq_cleanup(&t);
    assert_int_equal(ro.accepted, 2);
}

static void upload(enum cn_h1_body mode, const char *extra)
{
    static char data[200001];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)('a' + i % 26);
    struct treq t;
    treq_init(&t);
    t.up = data;
    t.up_len = 1000; /* the rest comes later */
    t.up_more = 1;
    t.q.body = mode;
    t.q.body_len = sizeof(data);
    struct cn_h1_target tg = target();
    start(&t, &tg, "POST", "/echo", extra);
    pump_for(20);
    t.up_len = sizeof(data);
    t.up_more = 0;
    cn_h1_kick(&t.q);
    wait_done(&t);
    assert_int_equal(t.err, CN_H1_OK);
    assert_string_equal(px_buf_cstr(&t.body), "200001");
    assert_int_equal(fo.body_bytes, sizeof(data));
    assert_int_equal(cn_h1_idle_conns(h1), 1);
    treq_cleanup(&t);
}

static void test_chunked_request_body(void **state)
{
    (void)state;
    upload(CN_H1_BODY_CHUNKED, "Transfer-Encoding: chunked\r\n");
}

static void test_request_body_with_length(void **state)
{
    (void)state;
    upload(CN_H1_BODY_LENGTH, "Content-Length: 200001\r\n");
}

/* ---- failures, hostile origins ---- */

static void expect(const char *reply, int close_after, enum cn_h1_err want)
{
    ro_set(&ro, reply, close_after);
    struct treq t;
    enum cn_h1_err got = get(&t, "GET", "/x");
    if (got != want)
        fail_msg("origin sent %.40s...: result %d, not %d", reply, got, want);
    treq_cleanup(&t);
    assert_int_equal(cn_h1_idle_conns(h1), 0);
}

static void test_not_http_is_bad_response(void **state)
{
    (void)state;
    expect("SSH-2.0-OpenSSH_9.2\r\n", 0, CN_H1_BAD_RESPONSE);
    expect("\x16\x03\x01\x00\x05hello", 0, CN_H1_BAD_RESPONSE);
}

static void test_status_outside_200_599_is_bad_response(void **state)
{
    (void)state;
    expect("HTTP/1.1 999 Nope\r\nContent-Length: 0\r\n\r\n", 0, CN_H1_BAD_RESPONSE);
    expect("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n", 0,
           CN_H1_BAD_RESPONSE);
}

static void test_bad_framing_is_bad_response(void **state)
{
    (void)state;
    expect("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", 0, CN_H1_BAD_RESPONSE);
    expect("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", 0,
           CN_H1_BAD_RESPONSE);
    expect("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n", 0,
           CN_H1_BAD_RESPONSE);
    expect("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0, CN_H1_BAD_RESPONSE);
}

static void test_head_cut_short_is_bad_response_and_silence_is_empty(void **state)
{
    (void)state;
    expect("HTTP/1.1 200 OK\r\nX-Half: ", 1, CN_H1_BAD_RESPONSE);
    ro.mode = RO_CLOSE_AT_HEAD;
    expect("", 0, CN_H1_EMPTY);
}

static void test_body_cut_short_is_reset(void **state)
{
    (void)state;
    expect("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc", 1, CN_H1_RESET);
    expect("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", 1, CN_H1_RESET);
}

/* Bytes after a complete response: the answer stands, the connection
 * (no longer in step with the origin) is not kept. */
static void test_bytes_after_response_not_pooled(void **state)
{
    (void)state;
    ro_set(&ro, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n", 0);
    struct treq t;
    assert_int_equal(get(&t, "GET", "/ok"), CN_H1_OK);
    assert_int_equal(cn_h1_idle_conns(h1), 0);
    treq_cleanup(&t);
}

static void test_headers_too_large(void **state)
{
    (void)state;
    /* Over the parser's own limit (a 100 KB head). */
    struct px_buf big;
    px_buf_init(&big);
    px_buf_append_str(&big, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < 100; i++) {
        px_buf_appendf(&big, "X-Big-%d: ", i);
        for (int j = 0; j < 100; j++)
            px_buf_append_str(&big, "0123456789");
        px_buf_append_str(&big, "\r\n");
    }
    px_buf_append_str(&big, "Content-Length: 0\r\n\r\n");
    expect(px_buf_cstr(&big), 0, CN_H1_HEADERS_TOO_LARGE);
    px_buf_cleanup(&big);
    /* Over the owner's caps. */
    ro_set(&ro, "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nContent-Length: 0\r\n\r\n", 0);
    struct treq t;
    treq_init(&t);
    t.fields_cap = 2;
    struct cn_h1_target tg = target();
    start(&t, &tg, "GET", "/ok", NULL);
    wait_done(&t);
    assert_int_equal(t.err, CN_H1_HEADERS_TOO_LARGE);
    treq_cleanup(&t);
}

static void test_refused(void **state)
{
    (void)state;
    struct treq t;
    treq_init(&t);
    struct cn_h1_target tg = target();
    tg.port = fo_refusing_port();
    start(&t, &tg, "GET", "/ok", NULL);
    wait_done(&t);
    assert_int_equal(t.err, CN_H1_REFUSED);
    treq_cleanup(&t);
    treq_init(&t);
    tg = target();
    tg.unix_path = "/nonexistent/test_cn_h1.sock";
    start(&t, &tg, "GET", "/ok", NULL);
    wait_done(&t);
    assert_int_equal(t.err, CN_H1_REFUSED);
    treq_cleanup(&t);
    assert_int_equal(cn_h1_open_conns(h1), 0);
}

/* A name: resolved (localhost), each address tried until one connects. */
static void test_name_resolved(void **state)
{
    (void)state;
    struct treq t;
    treq_init(&t);
    struct cn_h1_target tg = target();
    tg.host = "localhost";
    start(&t, &tg, "GET", "/ok", NULL);
    wait_done(&t);
    assert_int_equal(t.err, CN_H1_OK);
    treq_cleanup(&t);
}

/* ---- backpressure and cancel (fake_origin's /big) ---- */

static int body_at_least(void)
{
    return px_buf_len(&waiting->body) >= waiting->room_limit || waiting->done;
}

static void test_backpressure_reads_stop_while_no_room(void **state)
{
    (void)state;
    fo.big_size = 8 * 1024 * 1024;
    struct treq t;
    treq_init(&t);
    t.room_limit = 256 * 1024;
    struct cn_h1_target tg = target();
    start(&t, &tg, "GET", "/big", NULL);
    waiting = &t;
    assert_true(pump_until(body_at_least, 3000));
    pump_for(200);
    size_t held = px_buf_len(&t.body);
    assert_true(held <= t.room_limit + 16 * 1024); /* one read past the mark at most */
    pump_for(200);
    assert_int_equal(px_buf_len(&t.body), held);
    assert_int_equal(t.done, 0);
    t.room_limit = 0;
    cn_h1_resume(&t.q);
    wait_done(&t);
    assert_int_equal(t.err, CN_H1_OK);
    assert_int_equal(px_buf_len(&t.body), fo.big_size);
    const uint8_t *b = px_buf_head(&t.body);
    for (size_t i = 0; i < fo.big_size; i++)
        if (b[i] != fo_big_byte(i))
            fail_msg("body byte %zu differs", i);
    treq_cleanup(&t);
}

static int fo_all_closed(void)
{
    return fo.open == 0;
}

static void test_cancel_mid_response_closes_connection(void **state)
{
    (void)state;
    fo.big_size = 8 * 1024 * 1024;
    struct treq t;
    treq_init(&t);
    t.room_limit = 64 * 1024;
    struct cn_h1_target tg = target();
    start(&t, &tg, "GET", "/big", NULL);
    waiting = &t;
    assert_true(pump_until(body_at_least, 3000));
    cn_h1_cancel(&t.q);
    assert_false(cn_h1_active(&t.q));
    assert_int_equal(cn_h1_idle_conns(h1), 0);
    assert_true(pump_until(fo_all_closed, 2000));
    assert_int_equal(t.done, 0);
    treq_cleanup(&t);
    /* The next request gets a connection of its own. */
    struct treq u;
    treq_init(&u);
    start(&u, &tg, "GET", "/ok", NULL);
    wait_done(&u);
    assert_int_equal(u.err, CN_H1_OK);
    assert_int_equal(fo.accepted, 2);
    treq_cleanup(&u);
}

static void test_unix_socket_keepalive(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++) {
        struct treq t;
        assert_int_equal(get(&t, "GET", "/ok"), CN_H1_OK);
        assert_int_equal(t.status, 200);
        treq_cleanup(&t);
    }
    assert_int_equal(ro.accepted, 1);
}

/* ---- fixes after review ---- */

/* An empty chunked body sent on a stale kept connection: its last chunk
 * goes out again on the new one (the origin reads the whole body first). */
static void test_stale_retry_resends_chunked_terminator(void **state)
{
    (void)state;
    ro.mode = RO_CLOSE_SECOND;
    ro.wait_chunked = 1;
    struct treq t;
    assert_int_equal(get(&t, "GET", "/ok"), CN_H1_OK);
    treq_cleanup(&t);
    treq_init(&t);
    t.q.body = CN_H1_BODY_CHUNKED;
    struct cn_h1_target tg = target();
    start(&t, &tg, "POST", "/ok", "Transfer-Encoding: chunked\r\n");
    wait_done(&t);
    assert_int_equal(t.err, CN_H1_OK);
    assert_int_equal(t.status, 200);
    assert_int_equal(ro.accepted, 2);
    treq_cleanup(&t);
}

/* connectTimeout 0 is curl's default (300 s), not a 0 ms timer. */
static void test_connect_timeout_zero_means_default(void **state)
{
    (void)state;
    struct treq t;
    treq_init(&t);
    struct cn_h1_target tg = target();
    tg.connect_timeout_ms = 0;
    start(&t, &tg, "GET", "/ok", NULL);
    wait_done(&t);
    assert_int_equal(t.err, CN_H1_OK);
    treq_cleanup(&t);
}

/* An idle connection keeps no large head's buffers. */
static void test_pooled_connection_after_large_head_holds_small_buffers(void **state)
{
    (void)state;
    struct px_buf big;
    px_buf_init(&big);
    px_buf_append_str(&big, "HTTP/1.1 200 OK\r\nX-");
    for (int j = 0; j < 1000; j++)
        px_buf_append_str(&big, "n");
    px_buf_append_str(&big, ": ");
    for (int j = 0; j < 7500; j++)
        px_buf_append_str(&big, "0123456789");
    px_buf_append_str(&big, "\r\nContent-Length: 2\r\n\r\nok");
    ro_set(&ro, px_buf_cstr(&big), 0);
    struct treq t;
    assert_int_equal(get(&t, "GET", "/ok"), CN_H1_OK);
    assert_true(px_buf_len(&t.fields) > 75000);
    treq_cleanup(&t);
    assert_int_equal(cn_h1_idle_conns(h1), 1);
    assert_true(cn_h1_idle_bytes(h1) <= 4096);
    px_buf_cleanup(&big);
}

static void test_not_pooled_after_204_or_head(void **state)
{
    (void)state;
    assert_int_equal(idle_after("HTTP/1.1 204 No Content\r\n\r\n", "GET"), 0);
    assert_int_equal(idle_after("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", "HEAD"), 0);
    assert_int_equal(ro.accepted, 2);
}

/* A reset kept connection: a GET is sent again, a POST (the origin may
 * have acted on it) is not. */
static void test_reset_retried_only_for_idempotent_methods(void **state)
{
    (void)state;
    ro.mode = RO_RESET_SECOND;
    struct treq t;
    assert_int_equal(get(&t, "GET", "/ok"), CN_H1_OK);
    treq_cleanup(&t);
    assert_int_equal(get(&t, "GET", "/ok"), CN_H1_OK);
    treq_cleanup(&t);
    assert_int_equal(ro.accepted, 2);
    assert_int_equal(get(&t, "POST", "/ok"), CN_H1_RESET);
    treq_cleanup(&t);
    assert_int_equal(ro.accepted, 2);
}

/* An owner giving more than the declared Content-Length: only the
 * declared bytes go out, and the connection is not pooled. */
static void test_request_body_never_past_content_length(void **state)
{
    (void)state;
    struct treq t;
    treq_init(&t);
    t.up = "abcdef";
    t.up_len = 6;
    t.q.body = CN_H1_BODY_LENGTH;
    t.q.body_len = 3;
    struct cn_h1_target tg = target();
    start(&t, &tg, "POST", "/ok", "Content-Length: 3\r\n");
    size_t head_len = px_buf_len(&t.q.head);
    wait_done(&t);
    pump_for(50);
    assert_int_equal(ro.bytes_in, head_len + 3);
    assert_int_equal(cn_h1_idle_conns(h1), 0);
    treq_cleanup(&t);
}

/* A failure pending (deferred to the loop) when the response completes:
 * the connection is closed, never pooled with the failure's timer. */
static void test_not_pooled_with_failure_pending(void **state)
{
    (void)state;
    struct treq t;
    treq_init(&t);
    t.up = "abcde";
    t.up_more = 1;
    t.kick_len = 5; /* over the declared 2: a deferred failure */
    t.q.body = CN_H1_BODY_LENGTH;
    t.q.body_len = 2;
    struct cn_h1_target tg = target();
    start(&t, &tg, "POST", "/ok", "Content-Length: 2\r\n");
    wait_done(&t);
    assert_int_equal(t.err, CN_H1_OK); /* the response was complete */
    assert_int_equal(cn_h1_idle_conns(h1), 0);
    pump_for(50);
    assert_int_equal(t.done, 1);
    treq_cleanup(&t);
}

/* Freeing the client while a name resolves leaks nothing (ASan). */
static void test_free_during_resolve_is_leak_free(void **state)
{
    (void)state;
    struct treq t;
    treq_init(&t);
    struct cn_h1_target tg = target();
    tg.host = "localhost";
    start(&t, &tg, "GET", "/ok", NULL);
    cn_h1_free(h1);
    h1 = NULL;
    assert_false(cn_h1_active(&t.q));
    pump_for(300); /* the resolver's callback comes (cancelled or not) and frees it */
    assert_int_equal(t.done, 0);
    treq_cleanup(&t);
}

/* Freeing the client closes what it pooled. */
static void test_free_closes_pooled(void **state)
{
    (void)state;
    struct treq t;
    assert_int_equal(get(&t, "GET", "/ok"), CN_H1_OK);
    treq_cleanup(&t);
    cn_h1_free(h1);
    h1 = NULL;
    assert_true(pump_until(ro_all_closed, 2000));
}

/* px_h1resp points at a field in the fed bytes and copies it only when it
 * is split or the feed returns: the same fields, whatever the cuts (the
 * caller's buffer is overwritten between feeds here, as a socket's is). */
struct split_rec {
    char fields[512];
    size_t len;
    int status;
};

static int split_field(void *arg, const char *n, size_t nl, const char *v, size_t vl)
{
    struct split_rec *r = arg;
    int w = snprintf(r->fields + r->len, sizeof(r->fields) - r->len, "%.*s=%.*s;", (int)nl, n,
                     (int)vl, v);
    r->len += (size_t)w;
    return 0;
}

static int split_head(void *arg, int status, int has_body)
{
    (void)has_body;
    ((struct split_rec *)arg)->status = status;
    return 0;
}

static int split_body(void *arg, const char *d, size_t n)
{
    (void)arg;
    (void)d;
    (void)n;
    return 0;
}

static void test_resp_fields_split_across_feeds(void **state)
{
    (void)state;
    static const struct px_h1resp_ops ops = {
        .field = split_field, .head = split_head, .body = split_body};
    const char *resp = "HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n"
                       "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain \r\n"
                       "X-Long: abcdefghijklmnopqrstuvwxyz\r\nContent-Length: 2\r\n\r\nok";
    const char *want = "Server=nginx;Content-Type=text/plain;X-Long=abcdefghijklmnopqrstuvwxyz;"
                       "Content-Length=2;";
    size_t total = strlen(resp);
    for (size_t cut = 1; cut <= total; cut++) {
        struct split_rec rec = {0};
        struct px_h1resp r;
        px_h1resp_init(&r, &ops, &rec);
        char chunk[256];
        for (size_t at = 0; at < total; at += cut) {
            size_t n = total - at < cut ? total - at : cut, used;
            memcpy(chunk, resp + at, n);
            assert_int_equal(px_h1resp_feed(&r, chunk, n, &used), 0);
            memset(chunk, '#', sizeof(chunk)); /* the socket's buffer is reused */
        }
        assert_true(r.complete);
        assert_int_equal(rec.status, 200);
        assert_string_equal(rec.fields, want);
        px_h1resp_cleanup(&r);
    }
}

int main(void)
{
    if (!getenv("TEST_LOG"))
        px_log_set_level((enum px_log_level)(PX_LOG_ERROR + 1)); /* silent */
#define RO(t) cmocka_unit_test_setup_teardown(t, setup_ro, teardown)
#define FO(t) cmocka_unit_test_setup_teardown(t, setup_fo, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resp_fields_split_across_feeds),
        RO(test_keepalive_one_connection_for_sequential_requests),
        RO(test_burst_over_keepalive_cap_reuses_surplus_connections),
        RO(test_pool_over_cap_closes_least_recently_used),
        RO(test_idle_connections_taken_most_recently_used_first),
        RO(test_keepalive_conns_zero_never_pools),
        RO(test_idle_connection_closed_after_keepalive_timeout),
        RO(test_idle_connection_closed_by_origin_is_dropped),
        RO(test_stale_reused_connection_retried_once),
        RO(test_fresh_connection_closed_unanswered_is_empty),
        RO(test_stale_connection_not_retried_after_body_taken),
        RO(test_connection_close_not_pooled),
        RO(test_chunked_response_dechunked_trailers_dropped),
        RO(test_body_until_close),
        RO(test_interim_responses_skipped),
        RO(test_head_has_no_body),
        RO(test_204_and_304_have_no_body),
        FO(test_chunked_request_body),
        FO(test_request_body_with_length),
        RO(test_not_http_is_bad_response),
        RO(test_status_outside_200_599_is_bad_response),
        RO(test_bad_framing_is_bad_response),
        RO(test_head_cut_short_is_bad_response_and_silence_is_empty),
        RO(test_body_cut_short_is_reset),
        RO(test_bytes_after_response_not_pooled),
        RO(test_headers_too_large),
        RO(test_refused),
        RO(test_name_resolved),
        FO(test_backpressure_reads_stop_while_no_room),
        FO(test_cancel_mid_response_closes_connection),
        cmocka_unit_test_setup_teardown(test_unix_socket_keepalive, setup_ro_unix, teardown),
        RO(test_free_closes_pooled),
        RO(test_stale_retry_resends_chunked_terminator),
        RO(test_connect_timeout_zero_means_default),
        RO(test_pooled_connection_after_large_head_holds_small_buffers),
        RO(test_not_pooled_after_204_or_head),
        RO(test_reset_retried_only_for_idempotent_methods),
        RO(test_request_body_never_past_content_length),
        RO(test_not_pooled_with_failure_pending),
        RO(test_free_during_resolve_is_leak_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
