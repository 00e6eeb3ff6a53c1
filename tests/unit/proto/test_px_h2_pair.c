/* An nghttp2 client (the edge) and server (the connector) wired back to back
 * in memory with the settings both binaries use: no automatic WINDOW_UPDATE,
 * a 1 MiB stream window and a 16 MiB connection window. This documents the
 * backpressure mechanism the product relies on:
 *   - a data source with nothing to send returns NGHTTP2_ERR_DEFERRED and is
 *     woken with nghttp2_session_resume_data;
 *   - the receiver credits the window only with nghttp2_session_consume, so a
 *     receiver that does not drain its buffer stops the sender after one window. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <nghttp2/nghttp2.h>

#include <stdlib.h>
#include <string.h>

#define STREAM_WINDOW (1 << 20)
#define CONN_WINDOW (16 << 20)
#define REQ_BODY (3 << 20)
#define RESP_BODY ((5 << 20) / 2)

/* A body source: `avail` bytes of `data` may be sent so far; `eof` once all
 * of `len` is available. */
struct source {
    const uint8_t *data;
    size_t len;
    size_t avail;
    size_t sent;
    int deferred_calls;
    int is_deferred;
};

/* One side's view of a received body. */
struct sink {
    uint8_t *data;
    size_t cap;
    size_t got;
    size_t consumed; /* credited back with nghttp2_session_consume */
    int end_stream;
    int headers;
    char path[64];
    char status[8];
};

struct peer {
    nghttp2_session *h2;
    struct sink sink;
    int32_t stream_id; /* the one request stream */
    int closed;
    uint32_t close_error;
    int auto_consume;
};

static ssize_t source_read(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len,
                           uint32_t *flags, nghttp2_data_source *src, void *user)
{
    (void)h2;
    (void)id;
    (void)user;
    struct source *s = src->ptr;
    size_t n = s->avail - s->sent;
    if (n == 0 && s->sent < s->len) {
        s->deferred_calls++;
        s->is_deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    if (n > len)
        n = len;
    memcpy(buf, s->data + s->sent, n);
    s->sent += n;
    if (s->sent == s->len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* Makes more of the body available and wakes the stream if it was parked. */
static void source_add(nghttp2_session *h2, int32_t id, struct source *s, size_t n)
{
    s->avail += n;
    if (s->avail > s->len)
        s->avail = s->len;
    if (s->is_deferred) {
        s->is_deferred = 0;
        assert_int_equal(nghttp2_session_resume_data(h2, id), 0);
    }
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    (void)h2;
    (void)frame;
    (void)flags;
    struct peer *p = user;
    if (namelen == 5 && memcmp(name, ":path", 5) == 0 && valuelen < sizeof(p->sink.path))
        memcpy(p->sink.path, value, valuelen);
    if (namelen == 7 && memcmp(name, ":status", 7) == 0 && valuelen < sizeof(p->sink.status))
        memcpy(p->sink.status, value, valuelen);
    return 0;
}

static int on_frame_recv(nghttp2_session *h2, const nghttp2_frame *frame, void *user)
{
    (void)h2;
    struct peer *p = user;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->hd.stream_id != 0) {
        p->sink.headers++;
        p->stream_id = frame->hd.stream_id;
    }
    if ((frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        p->sink.end_stream = 1;
    return 0;
}

static int on_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user)
{
    (void)h2;
    (void)flags;
    (void)id;
    struct peer *p = user;
    /* Like the product: the bytes go into a bounded per-stream buffer. */
    assert_true(p->sink.got + len <= p->sink.cap);
    memcpy(p->sink.data + p->sink.got, data, len);
    p->sink.got += len;
    return 0;
}

static int on_stream_close(nghttp2_session *h2, int32_t id, uint32_t error, void *user)
{
    (void)h2;
    (void)id;
    struct peer *p = user;
    p->closed = 1;
    p->close_error = error;
    return 0;
}

static void peer_init(struct peer *p, int is_server, size_t sink_cap)
{
    memset(p, 0, sizeof(*p));
    p->sink.data = malloc(sink_cap);
    p->sink.cap = sink_cap;
    nghttp2_session_callbacks *cb;
    nghttp2_option *opt;
    assert_int_equal(nghttp2_session_callbacks_new(&cb), 0);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    assert_int_equal(nghttp2_option_new(&opt), 0);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    if (is_server)
        assert_int_equal(nghttp2_session_server_new2(&p->h2, cb, p, opt), 0);
    else
        assert_int_equal(nghttp2_session_client_new2(&p->h2, cb, p, opt), 0);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 1000},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, 64 * 1024},
    };
    assert_int_equal(nghttp2_submit_settings(p->h2, NGHTTP2_FLAG_NONE, iv, 3), 0);
    assert_int_equal(
        nghttp2_session_set_local_window_size(p->h2, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW), 0);
}

static void peer_free(struct peer *p)
{
    nghttp2_session_del(p->h2);
    free(p->sink.data);
}

/* Moves every pending byte from a to b. Returns the number of bytes moved. */
static size_t transfer(struct peer *a, struct peer *b)
{
    size_t moved = 0;
    for (;;) {
        const uint8_t *out;
        ssize_t n = nghttp2_session_mem_send(a->h2, &out);
        assert_true(n >= 0);
        if (n == 0)
            return moved;
        ssize_t r = nghttp2_session_mem_recv(b->h2, out, (size_t)n);
        assert_int_equal(r, n);
        moved += (size_t)n;
    }
}

/* Credits the window for everything received (an application that drains
 * its buffer as fast as bytes arrive). */
static void consume_all(struct peer *p)
{
    size_t n = p->sink.got - p->sink.consumed;
    if (n && p->stream_id) {
        assert_int_equal(nghttp2_session_consume(p->h2, p->stream_id, n), 0);
        p->sink.consumed += n;
    }
}

/* Loops until neither side has anything to send. */
static void pump(struct peer *c, struct peer *s)
{
    for (int i = 0; i < 100000; i++) {
        if (c->auto_consume)
            consume_all(c);
        if (s->auto_consume)
            consume_all(s);
        size_t moved = transfer(c, s) + transfer(s, c);
        if (moved == 0)
            return;
    }
    fail_msg("sessions never went quiet");
}

static uint8_t *pattern(size_t n, unsigned seed)
{
    uint8_t *d = malloc(n);
    uint32_t x = seed;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        d[i] = (uint8_t)(x >> 16);
    }
    return d;
}

struct pair {
    struct peer c, s;
};

static int setup(void **state)
{
    struct pair *p = calloc(1, sizeof(*p));
    peer_init(&p->c, 0, RESP_BODY);
    peer_init(&p->s, 1, REQ_BODY);
    /* Client preface and both SETTINGS exchanges. */
    pump(&p->c, &p->s);
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    struct pair *p = *state;
    peer_free(&p->c);
    peer_free(&p->s);
    free(p);
    return 0;
}

static void test_settings_applied(void **state)
{
    struct pair *p = *state;
    /* Each side's SETTINGS reached the other. */
    assert_int_equal(
        nghttp2_session_get_remote_settings(p->c.h2, NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE),
        STREAM_WINDOW);
    assert_int_equal(
        nghttp2_session_get_remote_settings(p->s.h2, NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE),
        STREAM_WINDOW);
    /* The connection window was raised on both sides. */
    assert_int_equal(nghttp2_session_get_local_window_size(p->s.h2), CONN_WINDOW);
    assert_int_equal(nghttp2_session_get_remote_window_size(p->c.h2), CONN_WINDOW);
    assert_int_equal(nghttp2_session_get_remote_window_size(p->s.h2), CONN_WINDOW);
}

static void test_backpressure_request_and_streamed_response(void **state)
{
    struct pair *p = *state;
    struct peer *c = &p->c, *s = &p->s;
    uint8_t *req = pattern(REQ_BODY, 1);
    struct source rsrc = {.data = req, .len = REQ_BODY};
    nghttp2_nv nv[] = {
        {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":scheme", (uint8_t *)"https", 7, 5, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":authority", (uint8_t *)"app.example.com", 10, 15, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":path", (uint8_t *)"/upload", 5, 7, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"content-type", (uint8_t *)"application/octet-stream", 12, 24,
         NGHTTP2_NV_FLAG_NONE},
    };
    nghttp2_data_provider dp = {.source.ptr = &rsrc, .read_callback = source_read};
    int32_t id = nghttp2_submit_request(c->h2, NULL, nv, 5, &dp, NULL);
    assert_true(id > 0);

    /* 1. Nothing to send yet: HEADERS go out, the body source parks itself. */
    pump(c, s);
    assert_int_equal(s->sink.headers, 1);
    assert_int_equal(s->stream_id, id);
    assert_string_equal(s->sink.path, "/upload");
    assert_int_equal(s->sink.got, 0);
    assert_true(rsrc.deferred_calls >= 1);
    assert_int_equal(nghttp2_session_want_write(c->h2), 0);

    /* 2. The whole body becomes available; the client may send one stream
     * window and no more, because the server has not consumed anything. */
    source_add(c->h2, id, &rsrc, REQ_BODY);
    pump(c, s);
    assert_int_equal(s->sink.got, STREAM_WINDOW);
    assert_int_equal(rsrc.sent, STREAM_WINDOW);
    assert_int_equal(nghttp2_session_get_stream_remote_window_size(c->h2, id), 0);
    assert_int_equal(nghttp2_session_want_write(c->h2), 0);
    assert_int_equal(s->sink.end_stream, 0);

    /* 3. Consuming a quarter of the window is not yet worth a WINDOW_UPDATE:
     * still blocked. */
    assert_int_equal(nghttp2_session_consume(s->h2, id, STREAM_WINDOW / 4), 0);
    s->sink.consumed = STREAM_WINDOW / 4;
    pump(c, s);
    assert_int_equal(s->sink.got, STREAM_WINDOW);

    /* 4. Half the window consumed: exactly that much more arrives, then the
     * sender is blocked again. */
    assert_int_equal(nghttp2_session_consume(s->h2, id, STREAM_WINDOW / 4), 0);
    s->sink.consumed = STREAM_WINDOW / 2;
    pump(c, s);
    assert_int_equal(s->sink.got, STREAM_WINDOW + STREAM_WINDOW / 2);
    assert_int_equal(nghttp2_session_get_stream_remote_window_size(c->h2, id), 0);
    /* Never more in flight than one window past what was consumed. */
    assert_true(s->sink.got - s->sink.consumed <= STREAM_WINDOW);

    /* 5. The application drains as bytes arrive: the rest flows to the end. */
    s->auto_consume = 1;
    pump(c, s);
    assert_int_equal(s->sink.got, REQ_BODY);
    assert_int_equal(s->sink.end_stream, 1);
    assert_memory_equal(s->sink.data, req, REQ_BODY);

    /* 6. The response is streamed back: headers first, then the body in
     * pieces as the "origin" produces it; the client stops crediting the
     * window halfway and the server's data source is held back. */
    uint8_t *resp = pattern(RESP_BODY, 2);
    struct source ssrc = {.data = resp, .len = RESP_BODY};
    nghttp2_nv rnv[] = {
        {(uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"content-type", (uint8_t *)"text/event-stream", 12, 17, NGHTTP2_NV_FLAG_NONE},
    };
    nghttp2_data_provider rdp = {.source.ptr = &ssrc, .read_callback = source_read};
    assert_int_equal(nghttp2_submit_response(s->h2, id, rnv, 2, &rdp), 0);
    c->stream_id = id;
    pump(c, s);
    assert_string_equal(c->sink.status, "200");
    assert_int_equal(c->sink.got, 0);
    assert_true(ssrc.deferred_calls >= 1);

    /* Small pieces arrive promptly (nothing waits for a full window). */
    source_add(s->h2, id, &ssrc, 100);
    pump(c, s);
    assert_int_equal(c->sink.got, 100);
    assert_memory_equal(c->sink.data, resp, 100);

    /* Everything available, client not consuming: capped at one window. */
    source_add(s->h2, id, &ssrc, RESP_BODY);
    pump(c, s);
    assert_int_equal(c->sink.got, STREAM_WINDOW);
    assert_int_equal(nghttp2_session_get_stream_remote_window_size(s->h2, id), 0);

    /* Client drains: the response completes intact and the stream closes. */
    c->auto_consume = 1;
    pump(c, s);
    assert_int_equal(c->sink.got, RESP_BODY);
    assert_int_equal(c->sink.end_stream, 1);
    assert_memory_equal(c->sink.data, resp, RESP_BODY);
    assert_int_equal(c->closed, 1);
    assert_int_equal(c->close_error, NGHTTP2_NO_ERROR);
    assert_int_equal(s->closed, 1);
    assert_int_equal(s->close_error, NGHTTP2_NO_ERROR);

    /* consume credits the connection window too, but nghttp2 batches that
     * WINDOW_UPDATE until half of the 16 MiB window was consumed: 3 MiB of
     * request body is still outstanding at connection level. */
    assert_int_equal(nghttp2_session_get_remote_window_size(c->h2), CONN_WINDOW - REQ_BODY);
    free(req);
    free(resp);
}

static void test_connection_window_shared(void **state)
{
    (void)state;
    /* Two streams each blocked on their own 1 MiB window: the 16 MiB
     * connection window is not what stops them. */
    struct peer c, s;
    peer_init(&c, 0, 16);
    peer_init(&s, 1, 2 * STREAM_WINDOW);
    pump(&c, &s);
    uint8_t *body = pattern(2 * STREAM_WINDOW, 3);
    struct source a = {.data = body, .len = 2 * STREAM_WINDOW, .avail = 2 * STREAM_WINDOW};
    struct source b = {.data = body, .len = 2 * STREAM_WINDOW, .avail = 2 * STREAM_WINDOW};
    nghttp2_nv nv[] = {
        {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":scheme", (uint8_t *)"https", 7, 5, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":authority", (uint8_t *)"a", 10, 1, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":path", (uint8_t *)"/", 5, 1, NGHTTP2_NV_FLAG_NONE},
    };
    nghttp2_data_provider da = {.source.ptr = &a, .read_callback = source_read};
    nghttp2_data_provider db = {.source.ptr = &b, .read_callback = source_read};
    /* The server sink is shared; only byte counts matter here. */
    s.sink.cap = 2 * STREAM_WINDOW;
    int32_t ia = nghttp2_submit_request(c.h2, NULL, nv, 4, &da, NULL);
    int32_t ib = nghttp2_submit_request(c.h2, NULL, nv, 4, &db, NULL);
    assert_true(ia > 0 && ib > 0);
    pump(&c, &s);
    assert_int_equal(a.sent, STREAM_WINDOW);
    assert_int_equal(b.sent, STREAM_WINDOW);
    assert_int_equal(s.sink.got, 2 * STREAM_WINDOW);
    assert_int_equal(nghttp2_session_get_remote_window_size(c.h2), CONN_WINDOW - 2 * STREAM_WINDOW);
    free(body);
    peer_free(&c);
    peer_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_settings_applied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backpressure_request_and_streamed_response, setup,
                                        teardown),
        cmocka_unit_test(test_connection_window_shared),
    };
    return cmocka_run_group_tests_name("px_h2_pair", tests, NULL, NULL);
}
