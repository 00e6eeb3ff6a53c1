/* es_front_h1: an HTTP/1.1 browser connection in rt_conn memory mode, its
 * requests carried by a fake link (fake_link.h): what reaches the tunnel and
 * the bytes the browser gets back, keep-alive and pipelining, a chunked
 * upload and its backpressure, and what the edge answers by itself for a
 * malformed request or one over the caps, and what it counts (es_metrics). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "rt_loop.h"
#include "es_front.h"
#include "es_metrics.h"
#include "es_req.h"
#include "es_server.h"
#include "fake_link.h"
#include "px_log.h"
#include "rt_conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOST FL_HOST
#define CLIENT "192.0.2.7"
#define TUNNEL_ID FL_TUNNEL_ID

static uv_loop_t loop;
static uv_idle_t awake; /* keeps uv_run(NOWAIT) iterating, so the flush runs */
static struct es_server srv;
static struct fake_link fl;
static struct es_front *front; /* NULL once freed */
static struct px_buf out;      /* what the browser received */

static void on_awake(uv_idle_t *h)
{
    (void)h;
}

/* Runs the loop a few times, collecting the browser's bytes. */
static void pump(void)
{
    for (int i = 0; i < 8; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        if (front && es_front_count(&srv) == 0)
            front = NULL; /* freed by its close */
        if (!front)
            continue;
        struct px_buf *mo = &front->conn.mem_out;
        if (px_buf_len(mo)) {
            assert_int_equal(px_buf_append(&out, px_buf_head(mo), px_buf_len(mo)), 0);
            rt_conn_memory_consume(&front->conn, px_buf_len(mo));
        }
    }
}

static struct rt_loop rl;

/* with_metrics: the server counts (es_metrics) from before the connection. */
static int start(int with_metrics)
{
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(rt_loop_init(&rl, &loop), 0);
    uv_idle_init(&loop, &awake);
    uv_idle_start(&awake, on_awake);
    fl_server_init(&fl, &srv, &loop);
    if (with_metrics) {
        srv.metrics = es_metrics_new();
        assert_non_null(srv.metrics);
    }
    px_buf_init(&out);
    front = es_front_new_memory(&srv, "http/1.1", CLIENT);
    assert_non_null(front);
    /* No TLS in memory: the connection stands for one opened for HOST. */
    snprintf(front->sni, sizeof(front->sni), "%s", HOST);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    return start(0);
}

static int setup_metrics(void **state)
{
    (void)state;
    return start(1);
}

static int teardown(void **state)
{
    (void)state;
    if (front)
        rt_conn_abort(&front->conn, 0);
    for (int i = 0; i < 10 && front; i++)
        pump();
    assert_null(front);
    assert_int_equal(es_front_count(&srv), 0);
    es_metrics_free(srv.metrics); /* after the connection's close counted out */
    srv.metrics = NULL;
    fl_cleanup(&fl);
    assert_int_equal(fl.late, 0);
    assert_int_equal(srv.fair.n_entries, 0);
    es_fair_cleanup(&srv.fair);
    px_buf_cleanup(&out);
    uv_idle_stop(&awake);
    uv_close((uv_handle_t *)&awake, NULL);
    rt_loop_cleanup(&rl);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    return 0;
}

/* Delivers browser bytes and runs the loop. Returns what the delivery
 * returned: < 0 when they made the connection close. */
static int feed_rc(const void *data, size_t len)
{
    assert_non_null(front);
    int rc = rt_conn_memory_feed(&front->conn, data, len);
    pump();
    return rc;
}

static void feed(const void *data, size_t len)
{
    assert_int_equal(feed_rc(data, len), 0);
}

static void feed_str(const char *s)
{
    feed(s, strlen(s));
}

/* The browser's bytes so far are exactly want; forgets them. */
static void expect_out(const char *want)
{
    size_t n = px_buf_len(&out);
    if (n != strlen(want) || memcmp(px_buf_head(&out), want, n) != 0)
        print_error("browser got (%zu bytes):\n%.*s\nwanted:\n%s\n", n, (int)n,
                    (const char *)px_buf_head(&out), want);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(px_buf_head(&out), want, n);
    px_buf_consume(&out, n);
}

/* The browser's bytes start with prefix and hold each of the NULL-terminated
 * parts. Returns them as a string (valid until out changes). */
static const char *expect_out_has(const char *prefix, const char *const *parts)
{
    const char *o = px_buf_cstr(&out);
    assert_non_null(o);
    if (strncmp(o, prefix, strlen(prefix)) != 0)
        print_error("browser got:\n%s\n", o);
    assert_int_equal(strncmp(o, prefix, strlen(prefix)), 0);
    for (size_t i = 0; parts && parts[i]; i++) {
        if (!strstr(o, parts[i]))
            print_error("browser got:\n%s\nwithout: %s\n", o, parts[i]);
        assert_non_null(strstr(o, parts[i]));
    }
    return o;
}

static void test_get_answered(void **state)
{
    (void)state;
    feed_str("GET /x?y=1 HTTP/1.1\r\nHost: a.example.test\r\nUser-Agent: t\r\n\r\n");
    assert_int_equal(fl.n, 1);
    struct fl_stream *s = fl_last(&fl);
    assert_false(s->has_body);
    assert_string_equal(fl_header(s, ":method"), "GET");
    assert_string_equal(fl_header(s, ":path"), "/x?y=1");
    assert_string_equal(fl_header(s, ":authority"), HOST);
    assert_string_equal(fl_header(s, "user-agent"), "t");
    assert_null(fl_header(s, "host")); /* it became :authority */
    assert_int_equal(px_buf_len(&out), 0);
    const char *rh[] = {"content-type", "text/plain", "content-length", "5", NULL};
    assert_int_equal(fl_respond(s, 200, rh, "hello", 1), 0);
    pump();
    expect_out("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nhello");
    assert_int_equal(s->consumed, 5); /* credited as the browser took it */
    fl_close(s, 0);
    pump();
    assert_non_null(front); /* kept alive */
}

static void test_keep_alive_and_pipelining(void **state)
{
    (void)state;
    /* Two requests in one read: the second waits for the first's answer. */
    feed_str("GET /one HTTP/1.1\r\nHost: a.example.test\r\n\r\n"
             "GET /two HTTP/1.1\r\nHost: a.example.test\r\n\r\n");
    assert_int_equal(fl.n, 1);
    struct fl_stream *s = fl_last(&fl);
    assert_string_equal(fl_header(s, ":path"), "/one");
    const char *cl2[] = {"content-length", "2", NULL};
    assert_int_equal(fl_respond(s, 200, cl2, "1!", 1), 0);
    fl_close(s, 0);
    pump();
    expect_out("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n1!");
    assert_int_equal(fl.n, 2);
    s = fl_last(&fl);
    assert_string_equal(fl_header(s, ":path"), "/two");
    /* No length from the origin: chunked to the browser, as it arrives. */
    assert_int_equal(fl_respond(s, 200, NULL, "abc", 0), 0);
    pump();
    expect_out("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n");
    assert_int_equal(fl_respond(s, 0, NULL, "de", 1), 0);
    fl_close(s, 0);
    pump();
    expect_out("2\r\nde\r\n0\r\n\r\n");
    assert_non_null(front);

    /* A third asks to close: answered, then the connection ends. */
    feed_str("GET /three HTTP/1.1\r\nHost: a.example.test\r\nConnection: close\r\n\r\n");
    assert_int_equal(fl.n, 3);
    s = fl_last(&fl);
    assert_null(fl_header(s, "connection"));
    assert_int_equal(fl_respond(s, 204, NULL, NULL, 1), 0);
    fl_close(s, 0);
    pump();
    expect_out("HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n");
    assert_null(front);
}

static void test_chunked_request_body(void **state)
{
    (void)state;
    feed_str("POST /up HTTP/1.1\r\nHost: a.example.test\r\nTransfer-Encoding: chunked\r\n\r\n"
             "5\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n");
    assert_int_equal(fl.n, 1);
    struct fl_stream *s = fl_last(&fl);
    assert_true(s->has_body);
    assert_string_equal(fl_header(s, ":method"), "POST");
    assert_null(fl_header(s, "transfer-encoding")); /* hop-by-hop */
    assert_null(fl_header(s, "x-trailer"));
    struct px_buf body;
    px_buf_init(&body);
    assert_int_equal(fl_read_body(s, &body, 4), 1);
    assert_int_equal(px_buf_len(&body), 11);
    assert_memory_equal(px_buf_head(&body), "hello world", 11);
    px_buf_cleanup(&body);
    const char *cl0[] = {"content-length", "0", NULL};
    assert_int_equal(fl_respond(s, 200, cl0, NULL, 1), 0);
    fl_close(s, 0);
    pump();
    expect_out("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
    assert_non_null(front);
}

static void test_upload_backpressure(void **state)
{
    (void)state;
    enum { TOTAL = 400000, PIECE = 16384 };
    char head[128];
    snprintf(head, sizeof(head),
             "PUT /big HTTP/1.1\r\nHost: a.example.test\r\nContent-Length: %d\r\n\r\n", TOTAL);
    feed_str(head);
    struct fl_stream *s = fl_last(&fl);
    assert_non_null(s);
    static char piece[PIECE];
    memset(piece, 'u', sizeof(piece));
    /* The browser sends until the edge stops reading (its buffer is over
     * ES_REQ_BODY_HIGH), as a socket would stop delivering. */
    size_t sent = 0;
    while (sent < TOTAL && !front->conn.read_paused) {
        size_t n = TOTAL - sent < PIECE ? TOTAL - sent : PIECE;
        feed(piece, n);
        sent += n;
    }
    assert_true(front->conn.read_paused);
    assert_true(sent > ES_REQ_BODY_HIGH && sent < TOTAL);
    /* The tunnel reads: reading resumes. */
    struct px_buf body;
    px_buf_init(&body);
    assert_int_equal(fl_read_body(s, &body, PIECE), 0);
    assert_false(front->conn.read_paused);
    while (sent < TOTAL) {
        size_t n = TOTAL - sent < PIECE ? TOTAL - sent : PIECE;
        feed(piece, n);
        sent += n;
        fl_read_body(s, &body, PIECE);
    }
    assert_int_equal(fl_read_body(s, &body, PIECE), 1);
    assert_int_equal(px_buf_len(&body), TOTAL);
    px_buf_cleanup(&body);
    const char *cl0[] = {"content-length", "0", NULL};
    assert_int_equal(fl_respond(s, 200, cl0, NULL, 1), 0);
    fl_close(s, 0);
    pump();
    expect_out("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
}

static void test_malformed_request_line(void **state)
{
    (void)state;
    const char bad[] = "GET /x HTTP/1.1 extra\r\nHost: a.example.test\r\n\r\n";
    assert_true(feed_rc(bad, sizeof(bad) - 1) < 0);
    const char *parts[] = {"connection: close\r\n", "content-type: text/html", NULL};
    expect_out_has("HTTP/1.1 400 Bad Request\r\n", parts);
    assert_int_equal(fl.submits, 0);
    assert_null(front); /* closed after its answer */
}

static void test_header_caps(void **state)
{
    (void)state;
    /* Over the edge's 64 KiB head cap, under the parser's: the edge
     * answers 431 itself, nothing reaches the tunnel. */
    struct px_buf req;
    px_buf_init(&req);
    static char big[33000];
    memset(big, 'b', sizeof(big) - 1);
    assert_int_equal(px_buf_appendf(&req,
                                    "GET / HTTP/1.1\r\nHost: a.example.test\r\nX-A: %s\r\n"
                                    "X-B: %s\r\n\r\n",
                                    big, big),
                     0);
    feed(px_buf_head(&req), px_buf_len(&req));
    const char *parts[] = {"tunnel-error: headers_too_large\r\n", NULL};
    expect_out_has("HTTP/1.1 431 ", parts);
    assert_int_equal(fl.submits, 0);
    px_buf_cleanup(&req);
}

static void test_header_overflow(void **state)
{
    (void)state;
    /* Over what the parser takes at all (80 KiB): 431, and the connection
     * ends. */
    static char big[90000];
    memset(big, 'b', sizeof(big) - 1);
    struct px_buf req;
    px_buf_init(&req);
    assert_int_equal(
        px_buf_appendf(&req, "GET / HTTP/1.1\r\nHost: a.example.test\r\nX-A: %s\r\n\r\n", big), 0);
    assert_true(feed_rc(px_buf_head(&req), px_buf_len(&req)) < 0);
    px_buf_cleanup(&req);
    const char *parts[] = {"connection: close\r\n", NULL};
    expect_out_has("HTTP/1.1 431 ", parts);
    assert_int_equal(fl.submits, 0);
    assert_null(front);
}

static void test_path_too_long(void **state)
{
    (void)state;
    static char path[ES_REQ_MAX_PATH + 100];
    memset(path, 'p', sizeof(path) - 1);
    path[0] = '/';
    struct px_buf req;
    px_buf_init(&req);
    assert_int_equal(px_buf_appendf(&req, "GET %s HTTP/1.1\r\nHost: a.example.test\r\n\r\n", path),
                     0);
    assert_true(feed_rc(px_buf_head(&req), px_buf_len(&req)) < 0);
    px_buf_cleanup(&req);
    const char *parts[] = {"connection: close\r\n", NULL};
    expect_out_has("HTTP/1.1 414 ", parts);
    assert_int_equal(fl.submits, 0);
    assert_null(front);
}

/* Memory per idle WebSocket (bug: the edge held 63.9 KiB per idle one):
 * once the 101 has gone out, the request keeps neither head (the request's
 * for a retry that can no longer happen, the response's the front copied);
 * frames still flow both ways. */
static void test_idle_websocket_keeps_no_heads(void **state)
{
    (void)state;
    feed_str("GET /chat HTTP/1.1\r\nHost: a.example.test\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             "Sec-WebSocket-Version: 13\r\n\r\n");
    struct fl_stream *s = fl_last(&fl);
    assert_string_equal(fl_header(s, ":protocol"), "websocket");
    struct es_req *r = front->cur;
    assert_non_null(r->req_nv.blocks); /* kept until a response: a refused stream is sent again */
    const char *rh[] = {"x-origin", "ws", NULL};
    assert_int_equal(fl_respond(s, 200, rh, NULL, 0), 0);
    pump();
    expect_out_has("HTTP/1.1 101 Switching Protocols\r\n",
                   (const char *const[]){"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n",
                                         "x-origin: ws\r\n", NULL});
    px_buf_consume(&out, px_buf_len(&out));
    assert_ptr_equal(front->cur, r);
    assert_null(r->req_nv.blocks);
    assert_null(r->req_nv.nv);
    assert_null(r->resp_nv.blocks);
    assert_null(r->resp_nv.nv);
    /* Frames both ways. */
    feed("\x81\x02hi", 4);
    struct px_buf up;
    px_buf_init(&up);
    assert_int_equal(fl_read_body(s, &up, 64), 0);
    assert_int_equal(px_buf_len(&up), 4);
    px_buf_cleanup(&up);
    assert_int_equal(fl_respond(s, 0, NULL, "\x81\x02yo", 0), 0);
    pump();
    expect_out("\x81\x02yo");
}

static double metric(const char *name, const char *const *labels)
{
    return es_metrics_value(srv.metrics, name, labels);
}

/* Issue 12: the connection counts in edge_browser_connections_open{http/1.1}
 * while open; an answered request moves edge_requests_total; a malformed
 * one the front answers 400 itself is a bad_request refusal, with its
 * recent error. */
static void test_metrics(void **state)
{
    (void)state;
    const char *h1[] = {"http/1.1"};
    assert_true(metric("edge_browser_connections_open", h1) == 1);
    assert_true(metric("edge_browser_connections_total", h1) == 1);
    feed_str("GET / HTTP/1.1\r\nHost: a.example.test\r\n\r\n");
    struct fl_stream *s = fl_last(&fl);
    const char *cl2[] = {"content-length", "2", NULL};
    assert_int_equal(fl_respond(s, 200, cl2, "ok", 1), 0);
    fl_close(s, 0);
    pump();
    expect_out("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    assert_true(metric("edge_requests_total", (const char *const[]){HOST, "2xx"}) == 1);
    assert_true(metric("edge_bytes_total", (const char *const[]){"to_client"}) == 2);

    const char bad[] = "GET /x HTTP/1.1 extra\r\nHost: a.example.test\r\n\r\n";
    assert_true(feed_rc(bad, sizeof(bad) - 1) < 0);
    assert_null(front);
    assert_true(metric("edge_refusals_total", (const char *const[]){"bad_request"}) == 1);
    assert_true(metric("edge_requests_total", (const char *const[]){"_unrouted", "4xx"}) == 1);
    assert_true(metric("edge_browser_connections_open", h1) == 0);
    assert_true(metric("edge_browser_connections_total", h1) == 1);
    json_t *st = es_metrics_status(srv.metrics, es_metrics_now_ms());
    assert_non_null(st);
    json_t *e = json_array_get(json_object_get(st, "recent_errors"), 0);
    assert_int_equal(json_integer_value(json_object_get(e, "status")), 400);
    assert_string_equal(json_string_value(json_object_get(e, "reason")), "bad_request");
    json_decref(st);
}

int main(void)
{
    px_log_set_level(PX_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_answered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keep_alive_and_pipelining, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunked_request_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upload_backpressure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_request_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_caps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_overflow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_path_too_long, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_websocket_keeps_no_heads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics, setup_metrics, teardown),
    };
    return cmocka_run_group_tests_name("es_front_h1 in memory", tests, NULL, NULL);
}
