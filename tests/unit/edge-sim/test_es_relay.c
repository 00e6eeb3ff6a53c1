/* es_relay in memory: a request read on a "worker" server is carried to the
 * home server (fake link behind es_link_ops) and back, on one thread, with
 * es_worker_test_pump delivering the messages between the two. The head
 * and the request id arrive whole, bodies flow both ways within
 * ES_RELAY_WINDOW with credit given only as bytes leave, local answers and
 * cut responses reach the worker's front, and either side letting go first,
 * or a stop with requests open, frees everything (ASan/LSan). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "es_fair.h"
#include "es_relay.h"
#include "es_req.h"
#include "es_server.h"
#include "es_worker.h"
#include "fake_link.h"
#include "rt_loop.h"

#include <stdlib.h>
#include <string.h>

#define HOST FL_HOST
#define CLIENT "192.0.2.7"

struct fake_front {
    unsigned heads, datas;
    size_t credited;
};

static void ff_resp_headers(struct es_req *r)
{
    ((struct fake_front *)r->front)->heads++;
}

static void ff_resp_data(struct es_req *r)
{
    ((struct fake_front *)r->front)->datas++;
}

static void ff_req_consumed(struct es_req *r, size_t n)
{
    ((struct fake_front *)r->front)->credited += n;
}

static const struct es_front_ops ff_ops = {ff_resp_headers, ff_resp_data, ff_req_consumed};

static uv_loop_t loop;
static struct rt_loop rl;
static struct es_server home, wsrv; /* home: the fake link's; wsrv: the worker's */
static struct fake_link fl;
static struct fake_front ff;
static struct es_worker *wk;

static int setup(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(rt_loop_init(&rl, &loop), 0);
    fl_server_init(&fl, &home, &loop);
    memset(&wsrv, 0, sizeof(wsrv));
    wsrv.loop = &loop;
    wk = es_worker_test_new(&home);
    assert_non_null(wk);
    wsrv.worker = wk;
    memset(&ff, 0, sizeof(ff));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (wk)
        es_worker_test_free(wk);
    fl_cleanup(&fl);
    assert_int_equal(fl.late, 0);
    assert_int_equal(home.fair.n_entries, 0);
    es_fair_cleanup(&home.fair);
    rt_loop_cleanup(&rl);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    return 0;
}

#define S(x) x, strlen(x)

static struct es_req *request(const char *method, const char *host, const char *path)
{
    struct es_req *r = es_req_new(&wsrv, &ff_ops, &ff, CLIENT, host);
    assert_non_null(r);
    assert_int_equal(es_req_add_header(r, S(":method"), S(method)), 0);
    assert_int_equal(es_req_add_header(r, S(":scheme"), S("https")), 0);
    assert_int_equal(es_req_add_header(r, S(":authority"), S(host)), 0);
    assert_int_equal(es_req_add_header(r, S(":path"), S(path)), 0);
    assert_int_equal(es_req_add_header(r, S("x-custom"), S("one")), 0);
    return r;
}

/* Dispatched on the worker, carried home, submitted to the fake link. */
static struct fl_stream *relayed(struct es_req *r, int has_body)
{
    es_req_dispatch(r, has_body);
    assert_non_null(r->relay);
    assert_int_equal(fl.submits, 0); /* nothing crossed yet */
    assert_true(es_worker_test_pump(wk) > 0);
    assert_int_equal(fl.submits, 1);
    return fl_last(&fl);
}

static size_t take_all(struct es_req *r, struct px_buf *out)
{
    uint8_t buf[4096];
    size_t n, total = 0;
    while ((n = es_req_take_body(r, buf, sizeof(buf))) > 0) {
        if (out)
            assert_int_equal(px_buf_append(out, buf, n), 0);
        total += n;
    }
    return total;
}

static void test_get_round_trip(void **state)
{
    (void)state;
    struct es_req *r = request("GET", HOST, "/p?q=1");
    struct fl_stream *s = relayed(r, 0);
    /* The home copy forwards the head as any request's. */
    assert_string_equal(fl_header(s, ":path"), "/p?q=1");
    assert_string_equal(fl_header(s, ":authority"), HOST);
    assert_string_equal(fl_header(s, "x-custom"), "one");
    assert_string_equal(fl_header(s, "x-real-ip"), CLIENT);
    assert_string_equal(fl_header(s, "x-request-id"), r->request_id);
    assert_false(s->has_body);
    const char *hdrs[] = {"content-type", "text/plain", "x-origin", "yes", NULL};
    assert_int_equal(fl_respond(s, 200, hdrs, "hello", 1), 0);
    es_worker_test_pump(wk);
    assert_int_equal(ff.heads, 1);
    assert_int_equal(r->resp_status, 200);
    assert_false(r->local);
    size_t n, found = 0;
    const nghttp2_nv *f = es_req_resp_fields(r, &n);
    for (size_t i = 0; i < n; i++)
        found += strcmp((const char *)f[i].name, "x-origin") == 0 &&
                 strcmp((const char *)f[i].value, "yes") == 0;
    assert_int_equal(found, 1);
    struct px_buf body;
    px_buf_init(&body);
    assert_int_equal(take_all(r, &body), 5);
    assert_memory_equal(px_buf_head(&body), "hello", 5);
    px_buf_cleanup(&body);
    assert_true(r->resp_eof);
    fl_close(s, 0);
    es_req_front_done(r);
    es_worker_test_pump(wk);
}

static void test_response_window(void **state)
{
    (void)state;
    struct es_req *r = request("GET", HOST, "/big");
    struct fl_stream *s = relayed(r, 0);
    assert_int_equal(fl_respond(s, 200, NULL, NULL, 0), 0);
    static uint8_t chunk[64 * 1024];
    memset(chunk, 'z', sizeof(chunk));
    struct es_req *h = s->r;
    for (int i = 0; i < 16; i++) /* 1 MiB from the tunnel */
        es_req_resp_body(h, chunk, sizeof(chunk));
    es_worker_test_pump(wk);
    assert_int_equal(ff.heads, 1);
    /* One window crossed; the tunnel was credited for that only. */
    assert_int_equal(es_req_resp_pending(r), ES_RELAY_WINDOW);
    assert_int_equal(s->consumed, ES_RELAY_WINDOW);
    assert_int_equal(es_req_resp_pending(h), (1 << 20) - ES_RELAY_WINDOW);
    uint8_t buf[100 * 1024];
    assert_int_equal(es_req_take_body(r, buf, sizeof(buf)), sizeof(buf));
    es_worker_test_pump(wk);
    assert_int_equal(es_req_resp_pending(r), ES_RELAY_WINDOW);
    assert_int_equal(s->consumed, ES_RELAY_WINDOW + sizeof(buf));
    size_t got = sizeof(buf);
    es_req_resp_end(h);
    while (!r->resp_eof || es_req_resp_pending(r)) {
        size_t n = take_all(r, NULL);
        got += n;
        assert_true(es_worker_test_pump(wk) > 0 || r->resp_eof);
    }
    assert_int_equal(got, 1 << 20);
    assert_int_equal(s->consumed, 1 << 20);
    fl_close(s, 0);
    es_req_front_done(r);
    es_worker_test_pump(wk);
}

static void test_upload_window(void **state)
{
    (void)state;
    struct es_req *r = request("POST", HOST, "/up");
    struct fl_stream *s = relayed(r, 1);
    assert_true(s->has_body);
    static uint8_t chunk[64 * 1024];
    struct px_buf sent, out;
    px_buf_init(&sent);
    px_buf_init(&out);
    for (int i = 0; i < 8; i++) { /* 512 KiB from the browser */
        memset(chunk, 'a' + i, sizeof(chunk));
        assert_int_equal(px_buf_append(&sent, chunk, sizeof(chunk)), 0);
        assert_int_equal(es_req_body(r, chunk, sizeof(chunk)), 0);
    }
    es_req_body_end(r);
    /* Only a window left the worker's buffer, so only that was credited. */
    assert_int_equal(ff.credited, ES_RELAY_WINDOW);
    int ended = 0;
    for (int round = 0; round < 100 && !ended; round++) {
        es_worker_test_pump(wk);
        ended = fl_read_body(s, &out, 16 * 1024);
    }
    assert_true(ended);
    es_worker_test_pump(wk);
    assert_int_equal(px_buf_len(&out), px_buf_len(&sent));
    assert_memory_equal(px_buf_head(&out), px_buf_head(&sent), px_buf_len(&sent));
    assert_int_equal(ff.credited, px_buf_len(&sent));
    px_buf_cleanup(&sent);
    px_buf_cleanup(&out);
    assert_int_equal(fl_respond(s, 201, NULL, "ok", 1), 0);
    fl_close(s, 0);
    es_worker_test_pump(wk);
    assert_int_equal(r->resp_status, 201);
    assert_int_equal(take_all(r, NULL), 2);
    es_req_front_done(r);
    es_worker_test_pump(wk);
}

static void test_local_answer(void **state)
{
    (void)state;
    /* Decided at home (no tunnel routes it), answered on the worker. */
    struct es_req *r = request("GET", "nothing.example.test", "/");
    es_req_dispatch(r, 0);
    es_worker_test_pump(wk);
    assert_int_equal(fl.submits, 0);
    assert_int_equal(ff.heads, 1);
    assert_int_equal(r->resp_status, 404);
    assert_true(r->local);
    struct px_buf body;
    px_buf_init(&body);
    assert_true(take_all(r, &body) > 0);
    assert_non_null(memmem(px_buf_head(&body), px_buf_len(&body), "no tunnel", 9));
    px_buf_cleanup(&body);
    assert_true(r->resp_eof);
    es_req_front_done(r);
    es_worker_test_pump(wk);
}

static void test_browser_leaves_mid_response(void **state)
{
    (void)state;
    struct es_req *r = request("GET", HOST, "/long");
    struct fl_stream *s = relayed(r, 0);
    assert_int_equal(fl_respond(s, 200, NULL, "part", 0), 0);
    es_worker_test_pump(wk);
    assert_int_equal(ff.heads, 1);
    es_req_front_done(r); /* the browser went away */
    es_worker_test_pump(wk);
    assert_int_equal(s->cancelled, 1); /* the home copy reset the tunnel stream */
    fl_close(s, NGHTTP2_CANCEL);
    es_worker_test_pump(wk);
}

static void test_tunnel_cuts_response(void **state)
{
    (void)state;
    struct es_req *r = request("GET", HOST, "/cut");
    struct fl_stream *s = relayed(r, 0);
    assert_int_equal(fl_respond(s, 200, NULL, "part", 0), 0);
    fl_close(s, NGHTTP2_INTERNAL_ERROR);
    es_worker_test_pump(wk);
    assert_int_equal(r->resp_status, 200);
    assert_true(r->resp_error); /* the browser sees a cut response, not a clean end */
    es_req_front_done(r);
    es_worker_test_pump(wk);
}

static void test_stop_with_requests_open(void **state)
{
    (void)state;
    struct es_req *a = request("GET", HOST, "/a");
    struct fl_stream *s = relayed(a, 0);
    assert_int_equal(fl_respond(s, 200, NULL, "x", 0), 0);
    struct es_req *b = request("POST", HOST, "/b");
    es_req_dispatch(b, 1); /* still on its way home */
    es_worker_test_free(wk);
    wk = NULL;
    /* Both halves ended: the fronts let go later, on their own. */
    assert_null(a->relay);
    assert_true(a->link_done && b->link_done);
    es_req_front_done(a);
    es_req_front_done(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upload_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_local_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_browser_leaves_mid_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tunnel_cuts_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_with_requests_open, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
