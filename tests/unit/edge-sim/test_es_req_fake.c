/* es_req between a fake front (es_front_ops that record) and a fake link
 * (fake_link.h behind es_link_ops): the head it forwards, bodies both ways
 * with their credit, the response, local answers, a link failing, a
 * WebSocket, and either side letting go first (ASan/LSan see any leak or use
 * after free). No sockets, no HTTP/2. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "rt_loop.h"
#include "es_fair.h"
#include "es_req.h"
#include "es_server.h"
#include "fake_link.h"
#include "px_log.h"
#include "rt_conn.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HOST FL_HOST
#define CLIENT "192.0.2.7"
#define TUNNEL_ID FL_TUNNEL_ID

struct fake_front {
    unsigned heads, datas;
    size_t credited;
};

static unsigned front_late; /* front ops called for a request whose front is gone */

static struct fake_front *front_of(struct es_req *r)
{
    if (!r->front)
        front_late++;
    return r->front;
}

static void ff_resp_headers(struct es_req *r)
{
    struct fake_front *ff = front_of(r);
    if (ff)
        ff->heads++;
}

static void ff_resp_data(struct es_req *r)
{
    struct fake_front *ff = front_of(r);
    if (ff)
        ff->datas++;
}

static void ff_req_consumed(struct es_req *r, size_t n)
{
    struct fake_front *ff = front_of(r);
    if (ff)
        ff->credited += n;
}

static const struct es_front_ops ff_ops = {ff_resp_headers, ff_resp_data, ff_req_consumed};

static uv_loop_t loop;
static struct es_server srv;
static struct fake_link fl;
static struct fake_front ff;

static struct rt_loop rl;

static int setup(void **state)
{
    (void)state;
    /* The loop a server runs on carries rt's per-loop state. */
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(rt_loop_init(&rl, &loop), 0);
    fl_server_init(&fl, &srv, &loop);
    memset(&ff, 0, sizeof(ff));
    front_late = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fl_cleanup(&fl);
    assert_int_equal(fl.late, 0);
    assert_int_equal(front_late, 0);
    assert_int_equal(srv.fair.n_entries, 0); /* every stream share given back */
    es_fair_cleanup(&srv.fair);
    rt_loop_cleanup(&rl);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    return 0;
}

#define S(x) x, strlen(x)

/* A request from CLIENT on a connection for HOST with method and the
 * (name, value) pairs of hdrs (NULL-terminated). */
static struct es_req *request(const char *method, const char *const *hdrs)
{
    struct es_req *r = es_req_new(&srv, &ff_ops, &ff, CLIENT, HOST);
    assert_non_null(r);
    assert_int_equal(es_req_add_header(r, S(":method"), S(method)), 0);
    for (size_t i = 0; hdrs && hdrs[i]; i += 2)
        assert_int_equal(es_req_add_header(r, S(hdrs[i]), S(hdrs[i + 1])), 0);
    return r;
}

static const char *const get_hdrs[] = {":scheme", "https", ":authority", HOST, ":path", "/", NULL};

/* A GET dispatched to the fake link: its stream. */
static struct fl_stream *routed(struct es_req *r, int has_body)
{
    unsigned before = fl.submits;
    es_req_dispatch(r, has_body);
    assert_int_equal(ff.heads, 0); /* not answered by the edge */
    assert_int_equal(fl.submits, before + 1);
    struct fl_stream *s = fl_find(&fl, r);
    assert_non_null(s);
    assert_int_equal(r->link_sid, s->sid);
    return s;
}

static const char *resp_hdr(const struct es_req *r, const char *name)
{
    size_t n;
    const nghttp2_nv *f = es_req_resp_fields(r, &n);
    for (size_t i = 0; i < n; i++)
        if (strcmp((const char *)f[i].name, name) == 0)
            return (const char *)f[i].value;
    return NULL;
}

/* Everything the front can take of the response body now. */
static size_t take_all(struct es_req *r, struct px_buf *out)
{
    uint8_t buf[4096];
    size_t n, total = 0;
    while ((n = es_req_take_body(r, buf, sizeof(buf))) > 0) {
        assert_int_equal(px_buf_append(out, buf, n), 0);
        total += n;
    }
    return total;
}

static unsigned fair_held(const struct es_req *r)
{
    char *key = es_fair_key(TUNNEL_ID, CLIENT);
    assert_non_null(key);
    unsigned n = es_fair_count(&srv.fair, key);
    free(key);
    (void)r;
    return n;
}

static void test_head_forwarded_and_response(void **state)
{
    (void)state;
    const char *hdrs[] = {":scheme",         "https",        ":authority", HOST,
                          ":path",           "/p?q=1",       "user-agent", "test",
                          "x-custom",        "one",          "connection", "x-hop",
                          "x-hop",           "secret",       "te",         "trailers",
                          "x-forwarded-for", "198.51.100.1", "x-real-ip",  "6.6.6.6",
                          "tunnel-foo",      "bar",          NULL};
    struct es_req *r = request("GET", hdrs);
    struct fl_stream *s = routed(r, 0);
    assert_false(s->has_body);
    assert_string_equal(fl_header(s, ":method"), "GET");
    assert_string_equal(fl_header(s, ":path"), "/p?q=1");
    assert_string_equal(fl_header(s, ":authority"), HOST);
    assert_string_equal(fl_header(s, ":scheme"), "https");
    assert_string_equal(fl_header(s, "user-agent"), "test");
    assert_string_equal(fl_header(s, "x-custom"), "one");
    /* Hop-by-hop fields, those the Connection header names, and the edge's
     * own metadata from the client do not pass. */
    assert_null(fl_header(s, "connection"));
    assert_null(fl_header(s, "x-hop"));
    assert_null(fl_header(s, "te"));
    assert_null(fl_header(s, "tunnel-foo"));
    /* What the edge says about the client. */
    assert_int_equal(fl_header_count(s, "x-real-ip"), 1);
    assert_string_equal(fl_header(s, "x-real-ip"), CLIENT);
    assert_string_equal(fl_header(s, "x-forwarded-for"), "198.51.100.1, " CLIENT);
    assert_string_equal(fl_header(s, "x-forwarded-proto"), "https");
    assert_string_equal(fl_header(s, "x-forwarded-host"), HOST);
    assert_string_equal(fl_header(s, "x-request-id"), r->request_id);
    assert_int_equal(strlen(r->request_id), 32);
    /* New on every request: kept out of the link's HPACK tables, where it
     * would push out the fields that repeat; those stay indexable. */
    assert_true(fl_header_no_index(s, "x-request-id"));
    assert_false(fl_header_no_index(s, "x-forwarded-for"));
    assert_false(fl_header_no_index(s, ":path"));
    /* HTTP/2 wants pseudo headers first. */
    const char *h = (const char *)px_buf_head(&s->head);
    size_t hl = px_buf_len(&s->head);
    int regular = 0;
    for (const char *p = h; p < h + hl; p = memchr(p, '\n', (size_t)(h + hl - p)) + 1) {
        if (*p != ':')
            regular = 1;
        else
            assert_false(regular);
    }
    assert_int_equal(fair_held(r), 1);

    const char *rh[] = {"content-type", "text/plain", "content-length", "5", "connection",
                        "close",        "keep-alive", "timeout=5",      NULL};
    assert_int_equal(fl_respond(s, 200, rh, "hello", 1), 0);
    assert_int_equal(ff.heads, 1);
    assert_true(ff.datas >= 1);
    assert_int_equal(r->resp_status, 200);
    assert_int_equal(r->resp_content_length, 5);
    assert_string_equal(resp_hdr(r, "content-type"), "text/plain");
    assert_null(resp_hdr(r, "connection"));
    assert_null(resp_hdr(r, "keep-alive"));
    assert_true(r->resp_eof);
    assert_int_equal(s->consumed, 0); /* credited only as the front takes it */
    struct px_buf body;
    px_buf_init(&body);
    assert_int_equal(take_all(r, &body), 5);
    assert_memory_equal(px_buf_head(&body), "hello", 5);
    assert_int_equal(s->consumed, 5);
    px_buf_cleanup(&body);

    fl_close(s, 0);
    assert_false(r->resp_error);
    assert_int_equal(fair_held(r), 0); /* the stream's share is back at once */
    es_req_front_done(r);
}

static void fill(uint8_t *p, size_t n, size_t off)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)((off + i) * 7);
}

static void test_bodies_and_backpressure(void **state)
{
    (void)state;
    struct es_req *r = request("POST", get_hdrs);
    struct fl_stream *s = routed(r, 1);
    assert_true(s->has_body);
    /* No X-Forwarded-For from the client: the client's address alone
     * (issue 13: written without a buffer then). */
    assert_int_equal(fl_header_count(s, "x-forwarded-for"), 1);
    assert_string_equal(fl_header(s, "x-forwarded-for"), CLIENT);
    /* The browser sends more than ES_REQ_BODY_HIGH before the tunnel reads:
     * it is buffered, and not one byte is credited to the browser. */
    enum { CHUNK = 64 * 1024, CHUNKS = 5 };
    static uint8_t chunk[CHUNK];
    for (size_t i = 0; i < CHUNKS; i++) {
        fill(chunk, CHUNK, i * CHUNK);
        assert_int_equal(es_req_body(r, chunk, CHUNK), 0);
    }
    assert_true(px_buf_len(&r->req_body) > ES_REQ_BODY_HIGH);
    assert_int_equal(ff.credited, 0);
    assert_int_equal(s->req_more, CHUNKS);
    /* The tunnel reads: exactly what leaves is credited. */
    uint8_t buf[16384];
    int eof = -1;
    assert_int_equal(es_req_read_body(r, buf, sizeof(buf), &eof), sizeof(buf));
    assert_int_equal(eof, 0);
    assert_int_equal(ff.credited, sizeof(buf));
    struct px_buf got;
    px_buf_init(&got);
    assert_int_equal(px_buf_append(&got, buf, sizeof(buf)), 0);
    assert_int_equal(fl_read_body(s, &got, 10000), 0);
    assert_int_equal(px_buf_len(&got), CHUNK * CHUNKS);
    assert_int_equal(ff.credited, CHUNK * CHUNKS);
    for (size_t i = 0; i < CHUNKS; i++) {
        fill(chunk, CHUNK, i * CHUNK);
        assert_memory_equal(px_buf_head(&got) + i * CHUNK, chunk, CHUNK);
    }
    /* Nothing now, and not the end: the link waits for req_more. */
    assert_int_equal(es_req_read_body(r, buf, sizeof(buf), &eof), 0);
    assert_int_equal(eof, 0);
    es_req_body_end(r);
    assert_int_equal(s->req_more, CHUNKS + 1);
    assert_int_equal(es_req_read_body(r, buf, sizeof(buf), &eof), 0);
    assert_int_equal(eof, 1);
    px_buf_cleanup(&got);

    /* The response body waits for the front, uncredited until taken. */
    assert_int_equal(fl_respond(s, 200, NULL, NULL, 0), 0);
    assert_int_equal(ff.heads, 1);
    assert_int_equal(r->resp_content_length, -1);
    unsigned datas = ff.datas;
    for (size_t i = 0; i < 5; i++)
        es_req_resp_body(r, chunk, 60000);
    assert_int_equal(ff.datas, datas + 5);
    assert_int_equal(s->consumed, 0);
    assert_int_equal(es_req_resp_pending(r), 300000);
    assert_int_equal(es_req_take_body(r, buf, 1000), 1000);
    assert_int_equal(s->consumed, 1000);
    assert_int_equal(es_req_resp_pending(r), 299000);

    /* The browser leaves first: the buffered credit goes back, the stream
     * is cancelled, and r lives on until the link lets go. */
    es_req_front_done(r);
    assert_int_equal(s->consumed, 300000);
    assert_int_equal(s->cancelled, 1);
    assert_int_equal(es_req_resp_pending(r), 0);
    es_req_resp_body(r, chunk, 10); /* in flight: credited straight back */
    assert_int_equal(s->consumed, 300010);
    es_req_resp_end(r);
    assert_int_equal(ff.datas, datas + 5); /* the front heard nothing more */
    fl_close(s, NGHTTP2_CANCEL);           /* freed here */
}

/* r was answered by the edge itself with status and tunnel-error code; its
 * page is whole. Lets go of r. */
static void expect_local(struct es_req *r, int status, const char *code)
{
    assert_int_equal(ff.heads, 1);
    assert_true(r->local && r->resp_headers_done && r->resp_eof);
    assert_int_equal(r->resp_status, status);
    assert_string_equal(resp_hdr(r, "tunnel-error"), code);
    assert_null(fl_find(&fl, r));
    struct px_buf page;
    px_buf_init(&page);
    assert_true(take_all(r, &page) > 0);
    assert_int_equal(px_buf_len(&page), r->resp_content_length);
    px_buf_cleanup(&page);
    es_req_front_done(r);
    ff.heads = 0;
}

static void test_local_answers(void **state)
{
    (void)state;
    /* No tunnel routes the host: 404, the link is not asked. */
    const char *other[] = {":authority", "b.example.test", ":path", "/", NULL};
    struct es_req *r = es_req_new(&srv, &ff_ops, &ff, CLIENT, "b.example.test");
    assert_non_null(r);
    assert_int_equal(es_req_add_header(r, S(":method"), S("GET")), 0);
    for (size_t i = 0; other[i]; i += 2)
        assert_int_equal(es_req_add_header(r, S(other[i]), S(other[i + 1])), 0);
    es_req_dispatch(r, 0);
    expect_local(r, 404, "unknown_host");
    assert_int_equal(fl.budgets, 0);

    /* The tunnel has no connector connected: 530. */
    fl.n_links = 0;
    r = request("GET", get_hdrs);
    es_req_dispatch(r, 0);
    expect_local(r, 530, "no_connector");
    assert_int_equal(fl.picks, 0);
    fl.n_links = 1;

    /* Nor has a server without a transport. */
    srv.link_ops = NULL;
    r = request("GET", get_hdrs);
    es_req_dispatch(r, 0);
    expect_local(r, 530, "no_connector");
    srv.link_ops = &fl_ops;

    /* Every connection full: 503, to retry shortly. */
    fl.full = 1;
    r = request("GET", get_hdrs);
    es_req_dispatch(r, 0);
    assert_string_equal(resp_hdr(r, "retry-after"), "1");
    expect_local(r, 503, "tunnel_busy");
    fl.full = 0;

    /* No stream opens on the link picked, nor on the next: 502. */
    fl.refuse = -1;
    unsigned submits = fl.submits;
    r = request("GET", get_hdrs);
    es_req_dispatch(r, 0);
    assert_int_equal(fl.submits, submits + 2);
    expect_local(r, 502, "tunnel_error");
    /* The first refuses (it was retired), the next takes it. */
    fl.refuse = 1;
    r = request("GET", get_hdrs);
    es_req_dispatch(r, 0);
    assert_int_equal(fl.submits, submits + 4);
    struct fl_stream *s = fl_find(&fl, r);
    assert_non_null(s);
    assert_int_equal(ff.heads, 0);
    fl_close(s, NGHTTP2_CANCEL);
    expect_local(r, 502, "tunnel_reset");

    /* One client holds at most its share of the tunnel's streams: 429. */
    struct es_req *held[ES_FAIR_MIN_SHARE];
    for (size_t i = 0; i < ES_FAIR_MIN_SHARE; i++)
        routed(held[i] = request("GET", get_hdrs), 0);
    assert_int_equal(fair_held(NULL), ES_FAIR_MIN_SHARE);
    r = request("GET", get_hdrs);
    es_req_dispatch(r, 0);
    expect_local(r, 429, "too_many_streams");
    for (size_t i = 0; i < ES_FAIR_MIN_SHARE; i++) {
        fl_close(fl_find(&fl, held[i]), NGHTTP2_CANCEL);
        assert_int_equal(ff.heads, 1);
        ff.heads = 0;
        es_req_front_done(held[i]);
    }
    assert_int_equal(fair_held(NULL), 0);
}

static void test_link_fails(void **state)
{
    (void)state;
    /* Mid-response: the front is told the response cannot complete, and
     * still gets what had arrived. */
    struct es_req *r = request("GET", get_hdrs);
    struct fl_stream *s = routed(r, 0);
    const char *cl10[] = {"content-length", "10", NULL};
    assert_int_equal(fl_respond(s, 200, cl10, "hello", 0), 0);
    unsigned datas = ff.datas;
    fl_close(s, NGHTTP2_INTERNAL_ERROR);
    assert_true(r->resp_error);
    assert_false(r->resp_eof);
    assert_int_equal(ff.datas, datas + 1);
    assert_int_equal(ff.heads, 1);
    struct px_buf body;
    px_buf_init(&body);
    assert_int_equal(take_all(r, &body), 5);
    assert_int_equal(s->consumed, 0); /* nobody to credit */
    px_buf_cleanup(&body);
    es_req_front_done(r);
    ff.heads = 0;

    /* Before the head: the edge answers 502 for the tunnel. */
    r = request("GET", get_hdrs);
    s = routed(r, 0);
    fl_close(s, NGHTTP2_INTERNAL_ERROR);
    assert_false(r->resp_error);
    expect_local(r, 502, "tunnel_reset");
    /* A clean close without a response is no better. */
    r = request("GET", get_hdrs);
    s = routed(r, 0);
    fl_close(s, 0);
    expect_local(r, 502, "tunnel_reset");

    /* A response head over the cap: 502 at once, the link resets the
     * stream, and the front hears of nothing else. */
    r = request("GET", get_hdrs);
    s = routed(r, 0);
    static char big[4096];
    memset(big, 'v', sizeof(big) - 1);
    const char *hdr[] = {"x-big", big, NULL};
    assert_int_equal(
        es_req_resp_header(r, (const uint8_t *)":status", 7, (const uint8_t *)"200", 3), 0);
    int rc = 0;
    for (int i = 0; i < 20 && rc == 0; i++)
        rc = es_req_resp_header(r, (const uint8_t *)hdr[0], 5, (const uint8_t *)big, strlen(big));
    assert_true(rc < 0);
    assert_int_equal(ff.heads, 1);
    datas = ff.datas;
    fl_close(s, NGHTTP2_INTERNAL_ERROR);
    assert_int_equal(ff.heads, 1);
    assert_int_equal(ff.datas, datas);
    expect_local(r, 502, "response_headers_too_large");
}

/* A stream the connector refused unprocessed (REFUSED_STREAM: RST_STREAM,
 * or above its GOAWAY's last-stream-id) is sent again with the same head,
 * body and client share, at most ES_REQ_RETRIES times; not once anything of
 * the response came or the link read body bytes. */
static void test_refused_stream_sent_again(void **state)
{
    (void)state;
    /* A GET: refused twice, served the third time. */
    struct es_req *r = request("GET", get_hdrs);
    struct fl_stream *s = routed(r, 0);
    struct px_buf head0;
    px_buf_init(&head0);
    assert_int_equal(px_buf_append(&head0, px_buf_head(&s->head), px_buf_len(&s->head)), 0);
    for (int i = 1; i <= ES_REQ_RETRIES; i++) {
        fl_close(s, NGHTTP2_REFUSED_STREAM);
        assert_int_equal(fl.submits, 1 + (unsigned)i);
        assert_int_equal(ff.heads, 0); /* the browser saw nothing */
        s = fl_find(&fl, r);
        assert_non_null(s);
        assert_ptr_equal(s, fl_last(&fl));
        assert_int_equal(r->link_sid, s->sid);
        assert_int_equal(px_buf_len(&s->head), px_buf_len(&head0));
        assert_memory_equal(px_buf_head(&s->head), px_buf_head(&head0), px_buf_len(&head0));
        assert_int_equal(fair_held(r), 1); /* its share is still held */
    }
    px_buf_cleanup(&head0);
    assert_int_equal(fl_respond(s, 200, NULL, "ok", 1), 0);
    assert_int_equal(ff.heads, 1);
    fl_close(s, 0);
    es_req_front_done(r);
    assert_int_equal(fair_held(NULL), 0);

    /* Refused once more than that: 502. */
    ff.heads = 0;
    r = request("GET", get_hdrs);
    s = routed(r, 0);
    for (int i = 0; i <= ES_REQ_RETRIES; i++)
        fl_close(fl_find(&fl, r), NGHTTP2_REFUSED_STREAM);
    assert_null(fl_find(&fl, r));
    expect_local(r, 502, "tunnel_reset");

    /* A POST whose body is still all here goes again, body and all. */
    ff.heads = 0;
    r = request("POST", get_hdrs);
    s = routed(r, 1);
    assert_int_equal(es_req_body(r, (const uint8_t *)"abc", 3), 0);
    es_req_body_end(r);
    fl_close(s, NGHTTP2_REFUSED_STREAM);
    s = fl_find(&fl, r);
    assert_non_null(s);
    assert_true(s->has_body);
    struct px_buf body;
    px_buf_init(&body);
    assert_int_equal(fl_read_body(s, &body, 100), 1);
    assert_int_equal(px_buf_len(&body), 3);
    assert_memory_equal(px_buf_head(&body), "abc", 3);
    /* ...but not once the link read some of it. */
    fl_close(s, NGHTTP2_REFUSED_STREAM);
    assert_null(fl_find(&fl, r));
    expect_local(r, 502, "tunnel_reset");
    px_buf_cleanup(&body);

    /* Not once a response began (an interim head counts). */
    ff.heads = 0;
    r = request("GET", get_hdrs);
    s = routed(r, 0);
    assert_int_equal(
        es_req_resp_header(r, (const uint8_t *)":status", 7, (const uint8_t *)"103", 3), 0);
    fl_close(s, NGHTTP2_REFUSED_STREAM);
    assert_null(fl_find(&fl, r));
    expect_local(r, 502, "tunnel_reset");

    /* No connection left to take it: 502. */
    ff.heads = 0;
    r = request("GET", get_hdrs);
    s = routed(r, 0);
    fl.full = 1;
    fl_close(s, NGHTTP2_REFUSED_STREAM);
    assert_null(fl_find(&fl, r));
    expect_local(r, 502, "tunnel_reset");
    fl.full = 0;

    /* The browser left before the refusal: nothing is sent again. */
    r = request("GET", get_hdrs);
    s = routed(r, 0);
    unsigned submits = fl.submits;
    es_req_front_done(r);
    fl_close(s, NGHTTP2_REFUSED_STREAM); /* freed here */
    assert_int_equal(fl.submits, submits);
    assert_int_equal(fair_held(NULL), 0);
}

static void test_websocket(void **state)
{
    (void)state;
    /* HTTP/2 extended CONNECT (RFC 8441) goes through as it came. */
    const char *h2ws[] = {":scheme",   "https",     ":authority",
                          HOST,        ":path",     "/chat",
                          ":protocol", "websocket", "sec-websocket-version",
                          "13",        NULL};
    struct es_req *r = request("CONNECT", h2ws);
    assert_true(r->is_ws);
    struct fl_stream *s = routed(r, 1);
    assert_true(s->has_body);
    assert_string_equal(fl_header(s, ":method"), "CONNECT");
    assert_string_equal(fl_header(s, ":protocol"), "websocket");
    assert_string_equal(fl_header(s, ":path"), "/chat");
    assert_int_equal(fl_respond(s, 200, NULL, NULL, 0), 0);
    assert_int_equal(ff.heads, 1);
    /* Frames both ways, each credited as it moves on. */
    assert_int_equal(es_req_body(r, (const uint8_t *)"ping", 4), 0);
    struct px_buf got;
    px_buf_init(&got);
    assert_int_equal(fl_read_body(s, &got, 100), 0);
    assert_int_equal(px_buf_len(&got), 4);
    assert_int_equal(ff.credited, 4);
    es_req_resp_body(r, (const uint8_t *)"pong", 4);
    px_buf_consume(&got, px_buf_len(&got));
    assert_int_equal(take_all(r, &got), 4);
    assert_memory_equal(px_buf_head(&got), "pong", 4);
    assert_int_equal(s->consumed, 4);
    /* The browser closes its side, then the origin. */
    es_req_body_end(r);
    assert_int_equal(fl_read_body(s, &got, 100), 1);
    assert_int_equal(fl_respond(s, 0, NULL, NULL, 1), 0);
    fl_close(s, 0);
    assert_false(r->resp_error);
    es_req_front_done(r);
    px_buf_cleanup(&got);
    ff.heads = 0;

    /* HTTP/1.1 Upgrade becomes the same extended CONNECT; the key stays
     * at the edge, which answers it. */
    const char *h1ws[] = {"host",
                          HOST,
                          "upgrade",
                          "websocket",
                          "connection",
                          "Upgrade",
                          "sec-websocket-key",
                          "dGhlIHNhbXBsZSBub25jZQ==",
                          "sec-websocket-version",
                          "13",
                          ":path",
                          "/chat",
                          NULL};
    r = request("GET", h1ws);
    assert_int_equal(es_req_make_websocket(r), 1);
    assert_string_equal(r->ws_key, "dGhlIHNhbXBsZSBub25jZQ==");
    s = routed(r, 1);
    assert_string_equal(fl_header(s, ":method"), "CONNECT");
    assert_string_equal(fl_header(s, ":protocol"), "websocket");
    assert_string_equal(fl_header(s, ":authority"), HOST);
    assert_string_equal(fl_header(s, "sec-websocket-version"), "13");
    assert_null(fl_header(s, "sec-websocket-key"));
    assert_null(fl_header(s, "upgrade"));
    assert_null(fl_header(s, "connection"));
    es_req_front_done(r); /* the browser leaves: cancelled, freed by the link */
    assert_int_equal(s->cancelled, 1);
    fl_close(s, NGHTTP2_CANCEL);

    /* A key that is not 16 base64 bytes cannot be answered. */
    const char *badkey[] = {"host",  HOST,    "upgrade", "websocket", "sec-websocket-key",
                            "short", ":path", "/",       NULL};
    r = request("GET", badkey);
    assert_true(es_req_make_websocket(r) < 0);
    es_req_front_done(r);
}

static void test_link_lets_go_first(void **state)
{
    (void)state;
    /* The whole response arrived and the stream closed before the front
     * took it: the front still gets all of it, and credits nobody. */
    struct es_req *r = request("GET", get_hdrs);
    struct fl_stream *s = routed(r, 0);
    assert_int_equal(fl_respond(s, 200, NULL, "abc", 1), 0);
    fl_close(s, 0);
    assert_false(r->resp_error);
    struct px_buf body;
    px_buf_init(&body);
    assert_int_equal(take_all(r, &body), 3);
    assert_memory_equal(px_buf_head(&body), "abc", 3);
    assert_int_equal(s->consumed, 0);
    px_buf_cleanup(&body);
    es_req_front_done(r); /* freed here */
    ff.heads = 0;

    /* The link goes while the body is still coming: what comes after is
     * credited at once and dropped. */
    r = request("POST", get_hdrs);
    s = routed(r, 1);
    assert_int_equal(es_req_body(r, (const uint8_t *)"0123456789", 10), 0);
    assert_int_equal(ff.credited, 0);
    fl_close(s, NGHTTP2_CANCEL);
    assert_int_equal(ff.heads, 1); /* its 502 */
    assert_int_equal(es_req_body(r, (const uint8_t *)"abcde", 5), 0);
    assert_int_equal(ff.credited, 5);
    unsigned more = s->req_more;
    es_req_body_end(r);
    assert_int_equal(s->req_more, more);
    expect_local(r, 502, "tunnel_reset");
}

/* Stderr (where px_log writes) goes to a fresh temporary file until
 * log_end, which returns what was written (the caller frees it). */
struct log_capture {
    char path[64];
    int fd, saved;
};

static void log_begin(struct log_capture *c)
{
    snprintf(c->path, sizeof(c->path), "/tmp/test_es_req_fake_log.XXXXXX");
    c->fd = mkstemp(c->path);
    assert_true(c->fd >= 0);
    px_log_flush(); /* batched lines of a live loop (px_log_batch) */
    fflush(stderr);
    c->saved = dup(2);
    assert_true(c->saved >= 0);
    assert_true(dup2(c->fd, 2) >= 0);
}

static char *log_end(struct log_capture *c)
{
    px_log_flush(); /* batched lines of a live loop (px_log_batch) */
    fflush(stderr);
    assert_true(dup2(c->saved, 2) >= 0);
    close(c->saved);
    off_t n = lseek(c->fd, 0, SEEK_END);
    assert_true(n >= 0);
    char *text = calloc(1, (size_t)n + 1);
    assert_non_null(text);
    assert_int_equal(pread(c->fd, text, (size_t)n, 0), n);
    close(c->fd);
    unlink(c->path);
    return text;
}

/* The access lines (JSON) of text, parsed: an array. */
static json_t *access_lines(const char *text)
{
    json_t *a = json_array();
    assert_non_null(a);
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        assert_non_null(nl);
        json_error_t err;
        json_t *o = json_loadb(line, (size_t)(nl - line), 0, &err);
        if (!o)
            fail_msg("log line is not JSON: %.*s (%s)", (int)(nl - line), line, err.text);
        if (json_is_string(json_object_get(o, "type")) &&
            strcmp(json_string_value(json_object_get(o, "type")), "access") == 0)
            json_array_append(a, o);
        json_decref(o);
        line = nl + 1;
    }
    return a;
}

static const char *jstr(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    assert_true(json_is_string(v));
    return json_string_value(v);
}

static long long jint(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    assert_true(json_is_integer(v));
    return (long long)json_integer_value(v);
}

/* Issue 12: a request through the edge moves edge_requests_total and its
 * bytes, and writes exactly one access line at its end, with the route's
 * tunnel as its rule and the path without its query; no header value (a
 * token, a cookie) reaches the log. A refused request is counted with its
 * reason, logged with rule "-"; a head the client abandoned is neither. */
static void test_request_counted_and_logged_once(void **state)
{
    (void)state;
    srv.metrics = es_metrics_new();
    assert_non_null(srv.metrics);
    srv.access_log = 1;
    px_log_set_format(PX_LOG_JSON);
    struct log_capture cap;
    log_begin(&cap);

    const char *hdrs[] = {":scheme",
                          "https",
                          ":authority",
                          HOST,
                          ":path",
                          "/up?token=SECRET1",
                          "authorization",
                          "Bearer SECRET2",
                          "cookie",
                          "sid=SECRET3",
                          NULL};
    struct es_req *r = request("POST", hdrs);
    char id[sizeof(r->request_id)];
    memcpy(id, r->request_id, sizeof(id));
    struct fl_stream *s = routed(r, 1);
    assert_int_equal(es_req_body(r, (const uint8_t *)"payload", 7), 0);
    es_req_body_end(r);
    struct px_buf up;
    px_buf_init(&up);
    assert_int_equal(fl_read_body(s, &up, 64), 1);
    px_buf_cleanup(&up);
    const char *rh[] = {"content-length", "5", NULL};
    assert_int_equal(fl_respond(s, 201, rh, "hello", 1), 0);
    struct px_buf body;
    px_buf_init(&body);
    assert_int_equal(take_all(r, &body), 5);
    px_buf_cleanup(&body);
    fl_close(s, 0);
    /* Nothing is written before the front lets go. */
    assert_true(es_metrics_value(srv.metrics, "edge_requests_total",
                                 (const char *const[]){HOST, "2xx"}) == 0);
    es_req_front_done(r);
    assert_true(es_metrics_value(srv.metrics, "edge_requests_total",
                                 (const char *const[]){HOST, "2xx"}) == 1);
    assert_true(es_metrics_value(srv.metrics, "edge_bytes_total",
                                 (const char *const[]){"from_client"}) == 7);
    assert_true(
        es_metrics_value(srv.metrics, "edge_bytes_total", (const char *const[]){"to_client"}) == 5);

    ff.heads = 0;

    /* Misdirected: another name than the connection's. */
    struct es_req *m = es_req_new(&srv, &ff_ops, &ff, CLIENT, "other.example.test");
    assert_non_null(m);
    assert_int_equal(es_req_add_header(m, S(":method"), S("GET")), 0);
    for (size_t i = 0; get_hdrs[i]; i += 2)
        assert_int_equal(es_req_add_header(m, S(get_hdrs[i]), S(get_hdrs[i + 1])), 0);
    es_req_dispatch(m, 0);
    expect_local(m, 421, "misdirected_request");

    /* Unrouted: 404, counted under _unrouted, not a refusal. */
    const char *other[] = {":authority", "b.example.test", ":path", "/x", NULL};
    struct es_req *u = es_req_new(&srv, &ff_ops, &ff, CLIENT, "b.example.test");
    assert_non_null(u);
    assert_int_equal(es_req_add_header(u, S(":method"), S("GET")), 0);
    for (size_t i = 0; other[i]; i += 2)
        assert_int_equal(es_req_add_header(u, S(other[i]), S(other[i + 1])), 0);
    es_req_dispatch(u, 0);
    expect_local(u, 404, "unknown_host");

    /* A head the client abandoned: no request to count. */
    struct es_req *gone = es_req_new(&srv, &ff_ops, &ff, CLIENT, HOST);
    assert_non_null(gone);
    assert_int_equal(es_req_add_header(gone, S(":method"), S("GET")), 0);
    es_req_front_done(gone);

    char *text = log_end(&cap);
    px_log_set_format(PX_LOG_TEXT);
    assert_null(strstr(text, "SECRET"));
    json_t *lines = access_lines(text);
    assert_int_equal(json_array_size(lines), 3);
    json_t *a = json_array_get(lines, 0);
    assert_string_equal(jstr(a, "hostname"), HOST);
    assert_string_equal(jstr(a, "method"), "POST");
    assert_string_equal(jstr(a, "path"), "/up");
    assert_int_equal(jint(a, "status"), 201);
    assert_int_equal(jint(a, "bytes_in"), 7);
    assert_int_equal(jint(a, "bytes_out"), 5);
    assert_string_equal(jstr(a, "request_id"), id);
    assert_string_equal(jstr(a, "client"), CLIENT);
    assert_string_equal(jstr(a, "rule"), "fake");
    assert_true(json_is_number(json_object_get(a, "duration_ms")));
    json_t *b = json_array_get(lines, 1);
    assert_int_equal(jint(b, "status"), 421);
    assert_string_equal(jstr(b, "rule"), "-");
    json_t *c = json_array_get(lines, 2);
    assert_int_equal(jint(c, "status"), 404);
    assert_string_equal(jstr(c, "hostname"), "b.example.test");
    assert_string_equal(jstr(c, "path"), "/x");
    json_decref(lines);
    free(text);

    assert_true(es_metrics_value(srv.metrics, "edge_requests_total",
                                 (const char *const[]){HOST, "4xx"}) == 1);
    assert_true(es_metrics_value(srv.metrics, "edge_refusals_total",
                                 (const char *const[]){"misdirected"}) == 1);
    assert_true(es_metrics_value(srv.metrics, "edge_requests_total",
                                 (const char *const[]){"_unrouted", "4xx"}) == 1);
    json_t *st = es_metrics_status(srv.metrics, es_metrics_now_ms());
    assert_non_null(st);
    json_t *rec = json_object_get(st, "recent_errors");
    assert_int_equal(json_array_size(rec), 1);
    assert_string_equal(jstr(json_array_get(rec, 0), "reason"), "misdirected");
    json_decref(st);
    es_metrics_free(srv.metrics);
    srv.metrics = NULL;
    srv.access_log = 0;
}

/* Memory per idle WebSocket: es_req_resp_head_sent (the fronts call it once
 * the response head is out) lets go of both heads, and not before the
 * response, when a refused stream may still need the request's; the access
 * line at the end still has the path. */
static void test_resp_head_sent_lets_go_of_heads(void **state)
{
    (void)state;
    srv.access_log = 1;
    px_log_set_format(PX_LOG_JSON);
    struct log_capture cap;
    log_begin(&cap);
    const char *h2ws[] = {":scheme",      "https",     ":authority", HOST, ":path",
                          "/chat?room=1", ":protocol", "websocket",  NULL};
    struct es_req *r = request("CONNECT", h2ws);
    struct fl_stream *s = routed(r, 1);
    es_req_resp_head_sent(r); /* no response yet: a no-op */
    assert_non_null(r->req_nv.blocks);
    const char *rh[] = {"x-origin", "ws", NULL};
    assert_int_equal(fl_respond(s, 200, rh, NULL, 0), 0);
    assert_int_equal(ff.heads, 1);
    assert_string_equal(resp_hdr(r, "x-origin"), "ws");
    es_req_resp_head_sent(r);
    assert_null(r->req_nv.blocks);
    assert_null(r->resp_nv.blocks);
    size_t n;
    es_req_resp_fields(r, &n);
    assert_int_equal(n, 0);
    /* The origin ends the stream, then the browser. */
    assert_int_equal(fl_respond(s, 0, NULL, NULL, 1), 0);
    es_req_body_end(r);
    struct px_buf up;
    px_buf_init(&up);
    assert_int_equal(fl_read_body(s, &up, 64), 1);
    px_buf_cleanup(&up);
    fl_close(s, 0);
    es_req_front_done(r);
    char *text = log_end(&cap);
    px_log_set_format(PX_LOG_TEXT);
    json_t *lines = access_lines(text);
    assert_int_equal(json_array_size(lines), 1);
    assert_string_equal(jstr(json_array_get(lines, 0), "path"), "/chat");
    assert_int_equal(jint(json_array_get(lines, 0), "status"), 200);
    json_decref(lines);
    free(text);
    srv.access_log = 0;
}

int main(void)
{
    px_log_set_level(PX_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_head_forwarded_and_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bodies_and_backpressure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_local_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_link_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_stream_sent_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_websocket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_link_lets_go_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_counted_and_logged_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resp_head_sent_lets_go_of_heads, setup, teardown),
    };
    return cmocka_run_group_tests_name("es_req against a fake front and link", tests, NULL, NULL);
}
