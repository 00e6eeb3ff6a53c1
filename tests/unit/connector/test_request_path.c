/* The whole request path in memory, no sockets: a browser's request enters
 * the edge's front (HTTP/1.1 or HTTP/2), crosses the tunnel (es_link <=>
 * cn_link, bytes moved by tests/support/mem_world) and is answered by the
 * connector's ingress rules (hello_world, http_status). The WebSocket case
 * stands in for the origin side of the upgrade: this binary is linked with
 * -Wl,--wrap=cn_upgrade_start (a detached upgrade the test feeds) and
 * --wrap=cn_stream_on_data (to count the request bytes that reached the
 * connector's streams). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cn_link.h"
#include "cn_stream.h"
#include "cn_upgrade.h"
#include "mem_world.h"
#include "px_h2.h"

#include <http_parser.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
#define HELLO "Hello from your tunnel"

static struct mw world;

/* ---- the seams ---- */

static struct cn_stream *upgrading;
static size_t conn_got; /* request-body bytes the connector's streams got */

int __wrap_cn_upgrade_start(struct cn_stream *s);
int __wrap_cn_upgrade_start(struct cn_stream *s)
{
    upgrading = s;
    return cn_upgrade_start_detached(s, KEY);
}

int __real_cn_stream_on_data(struct cn_stream *s, const uint8_t *data, size_t len);
int __wrap_cn_stream_on_data(struct cn_stream *s, const uint8_t *data, size_t len);
int __wrap_cn_stream_on_data(struct cn_stream *s, const uint8_t *data, size_t len)
{
    conn_got += len;
    return __real_cn_stream_on_data(s, data, len);
}

/* ---- what the browser got ---- */

struct resp {
    int status;
    char error[64]; /* tunnel-error */
    struct px_buf body;
    int complete;
};

/* HTTP/1.1 responses, read from the front's output with http_parser. */
struct h1_read {
    http_parser p;
    struct resp r[4];
    size_t n;
    int in_error; /* the field being read is tunnel-error */
    int upgraded; /* a 101: the bytes after its head are not HTTP */
    size_t after; /* where those bytes start in the output */
};

static struct resp *h1_cur(http_parser *p)
{
    struct h1_read *h = p->data;
    return &h->r[h->n - 1];
}

static int h1_begin(http_parser *p)
{
    struct h1_read *h = p->data;
    assert_true(h->n < 4);
    h->n++;
    return 0;
}

static int h1_field(http_parser *p, const char *at, size_t len)
{
    struct h1_read *h = p->data;
    h->in_error = len == 12 && strncasecmp(at, "tunnel-error", 12) == 0;
    return 0;
}

static int h1_value(http_parser *p, const char *at, size_t len)
{
    struct h1_read *h = p->data;
    struct resp *r = h1_cur(p);
    if (h->in_error)
        snprintf(r->error, sizeof(r->error), "%.*s", (int)len, at);
    return 0;
}

static int h1_headers(http_parser *p)
{
    h1_cur(p)->status = (int)p->status_code;
    return 0;
}

static int h1_body(http_parser *p, const char *at, size_t len)
{
    return px_buf_append(&h1_cur(p)->body, at, len);
}

static int h1_done(http_parser *p)
{
    h1_cur(p)->complete = 1;
    return 0;
}

static const http_parser_settings h1_settings = {
    .on_message_begin = h1_begin,
    .on_header_field = h1_field,
    .on_header_value = h1_value,
    .on_headers_complete = h1_headers,
    .on_body = h1_body,
    .on_message_complete = h1_done,
};

/* Parses everything the front wrote so far. */
static void h1_parse(struct h1_read *h)
{
    memset(h, 0, sizeof(*h));
    for (size_t i = 0; i < 4; i++)
        px_buf_init(&h->r[i].body);
    http_parser_init(&h->p, HTTP_RESPONSE);
    h->p.data = h;
    const char *out = (const char *)px_buf_head(&world.front_out);
    size_t len = px_buf_len(&world.front_out);
    size_t n = http_parser_execute(&h->p, &h1_settings, out, len);
    if (h->p.upgrade) {
        h->upgraded = 1;
        h->after = n;
    } else if (n != len || HTTP_PARSER_ERRNO(&h->p) != HPE_OK) {
        fail_msg("the browser got no valid HTTP/1.1 (%s): %.*s",
                 http_errno_name(HTTP_PARSER_ERRNO(&h->p)), (int)(len > 300 ? 300 : len), out);
    }
}

static void h1_free(struct h1_read *h)
{
    for (size_t i = 0; i < 4; i++)
        px_buf_cleanup(&h->r[i].body);
}

/* Sends bytes as a browser would, in pieces, letting the tunnel move.
 * Returns how many the front took before it closed. */
static size_t browser_send(const void *data, size_t len)
{
    const char *p = data;
    size_t sent = 0;
    while (sent < len) {
        size_t n = len - sent < 16384 ? len - sent : 16384;
        if (mw_front_feed(&world, p + sent, n) < 0)
            break;
        mw_pump(&world);
        sent += n;
    }
    return sent;
}

static void browser_send_str(const char *s)
{
    assert_int_equal(browser_send(s, strlen(s)), strlen(s));
}

/* A new browser connection with ALPN alpn, for the TLS name sni; what the
 * last one got is forgotten. */
static void browser_open(const char *alpn, const char *sni)
{
    px_buf_consume(&world.front_out, px_buf_len(&world.front_out));
    assert_int_equal(mw_front_open(&world, alpn), 0);
    snprintf(world.front->sni, sizeof(world.front->sni), "%s", sni);
}

/* An HTTP/2 browser: an nghttp2 client whose bytes go through the front. */
struct h2_browser {
    nghttp2_session *h2;
    struct resp r;
    int32_t id;
    int closed;
    const uint8_t *upload; /* request body not yet sent */
    size_t upload_left;
};

static struct h2_browser hb;

static int hb_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
    (void)h2;
    (void)flags;
    (void)user;
    if (f->hd.stream_id != hb.id)
        return 0;
    if (nlen == 7 && memcmp(name, ":status", 7) == 0)
        hb.r.status = atoi((const char *)value);
    else if (nlen == 12 && memcmp(name, "tunnel-error", 12) == 0)
        snprintf(hb.r.error, sizeof(hb.r.error), "%.*s", (int)vlen, (const char *)value);
    return 0;
}

static int hb_data(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *user)
{
    (void)h2;
    (void)flags;
    (void)user;
    if (id == hb.id)
        px_buf_append(&hb.r.body, data, len);
    return 0;
}

static int hb_close(nghttp2_session *h2, int32_t id, uint32_t err, void *user)
{
    (void)h2;
    (void)user;
    if (id == hb.id) {
        hb.closed = 1;
        hb.r.complete = err == NGHTTP2_NO_ERROR;
    }
    return 0;
}

static ssize_t hb_upload(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *user)
{
    (void)h2;
    (void)id;
    (void)src;
    (void)user;
    size_t n = hb.upload_left < len ? hb.upload_left : len;
    memcpy(buf, hb.upload, n);
    hb.upload += n;
    hb.upload_left -= n;
    if (hb.upload_left == 0)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static void hb_open(void)
{
    memset(&hb, 0, sizeof(hb));
    px_buf_init(&hb.r.body);
    browser_open("h2", MW_SNI);
    nghttp2_session_callbacks *cb;
    assert_int_equal(nghttp2_session_callbacks_new(&cb), 0);
    nghttp2_session_callbacks_set_on_header_callback(cb, hb_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, hb_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, hb_close);
    assert_int_equal(nghttp2_session_client_new(&hb.h2, cb, NULL), 0);
    nghttp2_session_callbacks_del(cb);
    assert_int_equal(nghttp2_submit_settings(hb.h2, NGHTTP2_FLAG_NONE, NULL, 0), 0);
}

static void hb_free(void)
{
    nghttp2_session_del(hb.h2);
    px_buf_cleanup(&hb.r.body);
    memset(&hb, 0, sizeof(hb));
}

/* Moves the browser's bytes in and the front's bytes out until the
 * response's stream closed (bounded). */
static void hb_run(void)
{
    for (int i = 0; i < 2000 && !hb.closed; i++)
        assert_int_equal(mw_h2_round(&world, hb.h2, mw_front_feed, &world.front_out), 0);
}

#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE             \
    }

/* One HTTP/2 request for https://host/path; body: upload (or NULL). */
static void hb_request(const char *method, const char *host, const char *path, const void *body,
                       size_t body_len)
{
    char cl[32];
    snprintf(cl, sizeof(cl), "%zu", body_len);
    nghttp2_nv nv[] = {NV(":method", method), NV(":scheme", "https"), NV(":authority", host),
                       NV(":path", path),     NV("x-test", "yes"),    NV("content-length", cl)};
    snprintf(world.front->sni, sizeof(world.front->sni), "%s", host);
    hb.upload = body;
    hb.upload_left = body_len;
    nghttp2_data_provider dp = {.read_callback = hb_upload};
    hb.id = nghttp2_submit_request(hb.h2, NULL, nv, body ? 6 : 5, body ? &dp : NULL, NULL);
    assert_true(hb.id > 0);
    hb_run();
    assert_true(hb.closed);
}

/* ---- fixtures ---- */

static int group_setup(void **state)
{
    (void)state;
    return mw_init(&world, "{\"ingress\":["
                           "{\"hostname\":\"ws.fuzz.test\",\"service\":\"http://127.0.0.1:9\"},"
                           "{\"hostname\":\"teapot.fuzz.test\",\"service\":\"http_status:418\"},"
                           "{\"hostname\":\"app.fuzz.test\",\"service\":\"hello_world\"},"
                           "{\"service\":\"http_status:404\"}]}");
}

static int group_teardown(void **state)
{
    (void)state;
    mw_cleanup(&world);
    return 0;
}

static int links_up(void **state)
{
    (void)state;
    upgrading = NULL;
    conn_got = 0;
    return mw_links_open(&world);
}

/* Every connection closes and is freed; the connector's link had no stream
 * left once the browser went. */
static int links_down(void **state)
{
    (void)state;
    if (mw_front_close(&world) < 0)
        return -1;
    if (world.cl && cn_link_stream_count(world.cl) != 0) {
        fprintf(stderr, "%u stream(s) left on the connector's link\n",
                cn_link_stream_count(world.cl));
        return -1;
    }
    return mw_close_all(&world);
}

/* ---- tests ---- */

static void h1_get_served_by_hello_world(void **state)
{
    (void)state;
    browser_open("http/1.1", MW_SNI);
    browser_send_str("GET /greeting?x=1 HTTP/1.1\r\nHost: app.fuzz.test\r\nX-Test: yes\r\n\r\n");
    struct h1_read h;
    h1_parse(&h);
    assert_int_equal(h.n, 1);
    assert_true(h.r[0].complete);
    assert_int_equal(h.r[0].status, 200);
    assert_string_equal(h.r[0].error, "");
    const char *page = px_buf_cstr(&h.r[0].body);
    assert_non_null(strstr(page, HELLO));
    /* The page echoes the request as the connector got it. */
    assert_non_null(strstr(page, "GET /greeting?x=1"));
    assert_non_null(strstr(page, "host: app.fuzz.test"));
    assert_non_null(strcasestr(page, "x-test: yes"));
    assert_int_equal(cn_link_stream_count(world.cl), 0);
    h1_free(&h);
}

static void h2_get_served_by_hello_world(void **state)
{
    (void)state;
    hb_open();
    hb_request("GET", "app.fuzz.test", "/greeting?x=2", NULL, 0);
    assert_true(hb.r.complete);
    assert_int_equal(hb.r.status, 200);
    const char *page = px_buf_cstr(&hb.r.body);
    assert_non_null(strstr(page, HELLO));
    assert_non_null(strstr(page, "GET /greeting?x=2"));
    assert_non_null(strcasestr(page, "x-test: yes"));
    /* A second request on the same connection. */
    px_buf_consume(&hb.r.body, px_buf_len(&hb.r.body));
    hb.closed = 0;
    hb_request("GET", "app.fuzz.test", "/again", NULL, 0);
    assert_int_equal(hb.r.status, 200);
    assert_non_null(strstr(px_buf_cstr(&hb.r.body), "GET /again"));
    hb_free();
}

static void status_rule_answers_418_both_protocols(void **state)
{
    (void)state;
    browser_open("http/1.1", "teapot.fuzz.test");
    browser_send_str("GET /tea HTTP/1.1\r\nHost: teapot.fuzz.test\r\n\r\n");
    struct h1_read h;
    h1_parse(&h);
    assert_int_equal(h.n, 1);
    assert_true(h.r[0].complete);
    assert_int_equal(h.r[0].status, 418);
    assert_non_null(strstr(px_buf_cstr(&h.r[0].body), "answered by the connector's ingress rule"));
    h1_free(&h);
    assert_int_equal(mw_front_close(&world), 0);
    hb_open();
    hb_request("GET", "teapot.fuzz.test", "/tea", NULL, 0);
    assert_true(hb.r.complete);
    assert_int_equal(hb.r.status, 418);
    hb_free();
}

/* hello_world reads no body: the connector drops it, giving the tunnel its
 * flow-control credit back. A body that arrived with its head leaves the
 * browser's connection open for the next request. */
static void h1_post_body_dropped_by_hello_world(void **state)
{
    (void)state;
    char body[4096];
    memset(body, 'b', sizeof(body));
    struct px_buf req;
    px_buf_init(&req);
    assert_int_equal(px_buf_appendf(&req,
                                    "POST /upload HTTP/1.1\r\nHost: app.fuzz.test\r\n"
                                    "Content-Length: %zu\r\n\r\n",
                                    sizeof(body)),
                     0);
    assert_int_equal(px_buf_append(&req, body, sizeof(body)), 0);
    browser_open("http/1.1", MW_SNI);
    assert_int_equal(browser_send(px_buf_head(&req), px_buf_len(&req)), px_buf_len(&req));
    px_buf_cleanup(&req);
    browser_send_str("GET /after HTTP/1.1\r\nHost: app.fuzz.test\r\n\r\n");
    struct h1_read h;
    h1_parse(&h);
    assert_int_equal(h.n, 2);
    assert_true(h.r[0].complete && h.r[1].complete);
    assert_int_equal(h.r[0].status, 200);
    assert_int_equal(h.r[1].status, 200);
    assert_non_null(strstr(px_buf_cstr(&h.r[0].body), "POST /upload"));
    assert_non_null(strstr(px_buf_cstr(&h.r[1].body), "GET /after"));
    h1_free(&h);
    assert_non_null(world.front);
    assert_int_equal(conn_got, sizeof(body)); /* it did cross the tunnel */
}

/* A body still arriving when the answer is complete: HTTP/1.1 cannot carry
 * on without reading it, so the edge says "connection: close" and closes. */
static void h1_post_answered_before_the_upload_ended(void **state)
{
    (void)state;
    size_t len = 4 * 1024 * 1024;
    char *body = malloc(len);
    assert_non_null(body);
    memset(body, 'b', len);
    browser_open("http/1.1", MW_SNI);
    char head[128];
    snprintf(head, sizeof(head),
             "POST /upload HTTP/1.1\r\nHost: app.fuzz.test\r\nContent-Length: %zu\r\n\r\n", len);
    browser_send_str(head);
    size_t took = browser_send(body, len);
    free(body);
    assert_true(took < len);
    struct h1_read h;
    h1_parse(&h);
    assert_int_equal(h.n, 1);
    assert_true(h.r[0].complete);
    assert_int_equal(h.r[0].status, 200);
    assert_non_null(strstr(px_buf_cstr(&h.r[0].body), "POST /upload"));
    assert_non_null(strcasestr(px_buf_cstr(&world.front_out), "\r\nconnection: close\r\n"));
    h1_free(&h);
    assert_null(world.front);
    assert_int_equal(mw_canary(&world), 0);
}

/* The same over HTTP/2, more than the tunnel's connection window (16 MiB)
 * in all: the next requests are served only if the dropped bytes' credit
 * came back. */
static void h2_posts_beyond_the_tunnel_window(void **state)
{
    (void)state;
    size_t len = 6 * 1024 * 1024;
    char *body = malloc(len);
    assert_non_null(body);
    memset(body, 'b', len);
    hb_open();
    for (int i = 0; i < 4; i++) {
        px_buf_consume(&hb.r.body, px_buf_len(&hb.r.body));
        hb.closed = 0;
        hb_request("POST", "app.fuzz.test", "/h2upload", body, len);
        assert_int_equal(hb.r.status, 200);
        assert_non_null(strstr(px_buf_cstr(&hb.r.body), "POST /h2upload"));
    }
    px_buf_consume(&hb.r.body, px_buf_len(&hb.r.body));
    hb.closed = 0;
    hb_request("GET", "app.fuzz.test", "/after", NULL, 0);
    assert_int_equal(hb.r.status, 200);
    /* Part of each body is dropped at the edge once the answer is out; the
     * connector got (and dropped) more than one window's worth. */
    if (conn_got <= PX_H2_TUNNEL_CONN_WINDOW)
        fail_msg("only %zu body bytes crossed the tunnel", conn_got);
    hb_free();
    free(body);
}

/* A WebSocket through the front (HTTP/1.1 Upgrade), the tunnel (extended
 * CONNECT) and the connector's upgrade, whose origin side the test plays:
 * the browser gets the 101, and bytes cross both ways. */
static void websocket_upgrade_through_the_tunnel(void **state)
{
    (void)state;
    static const char req[] = "GET /chat HTTP/1.1\r\nHost: ws.fuzz.test\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n";
    static const char answer[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                 "Connection: Upgrade\r\nSec-WebSocket-Accept: " ACCEPT "\r\n\r\n";
    browser_open("http/1.1", "ws.fuzz.test");
    browser_send_str(req);
    assert_non_null(upgrading);
    cn_upgrade_feed(upgrading, (const uint8_t *)answer, sizeof(answer) - 1);
    mw_pump(&world);
    struct h1_read h;
    h1_parse(&h);
    assert_int_equal(h.r[0].status, 101);
    assert_true(h.upgraded);
    assert_non_null(strstr(px_buf_cstr(&world.front_out), "Sec-WebSocket-Accept: " ACCEPT));
    h1_free(&h);
    size_t head_len = px_buf_len(&world.front_out);
    /* Browser to origin: more than a stream's window (1 MiB) in flight. */
    size_t up = 3 * 1024 * 1024;
    uint8_t *data = malloc(up);
    assert_non_null(data);
    for (size_t i = 0; i < up; i++)
        data[i] = (uint8_t)(i * 13);
    browser_send(data, up);
    assert_int_equal(conn_got, up);
    /* Origin to browser, byte for byte. */
    size_t down = 2 * 1024 * 1024;
    for (size_t off = 0; off < down; off += 65536)
        cn_upgrade_feed(upgrading, data + off, 65536);
    mw_pump(&world);
    assert_int_equal(px_buf_len(&world.front_out), head_len + down);
    assert_memory_equal(px_buf_head(&world.front_out) + head_len, data, down);
    free(data);
    /* The origin closes: the browser's connection ends. */
    cn_upgrade_feed(upgrading, NULL, 0);
    mw_pump(&world);
    assert_null(world.front);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(h1_get_served_by_hello_world, links_up, links_down),
        cmocka_unit_test_setup_teardown(h2_get_served_by_hello_world, links_up, links_down),
        cmocka_unit_test_setup_teardown(status_rule_answers_418_both_protocols, links_up,
                                        links_down),
        cmocka_unit_test_setup_teardown(h1_post_body_dropped_by_hello_world, links_up, links_down),
        cmocka_unit_test_setup_teardown(h1_post_answered_before_the_upload_ended, links_up,
                                        links_down),
        cmocka_unit_test_setup_teardown(h2_posts_beyond_the_tunnel_window, links_up, links_down),
        cmocka_unit_test_setup_teardown(websocket_upgrade_through_the_tunnel, links_up, links_down),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
