/* es_req: what the edge answers by itself for a browser request head, and
 * how it bounds a response head from the tunnel (no sockets, no links: an
 * empty registry routes nothing, so a well-formed request ends in 404). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "es_req.h"
#include "es_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int heads_seen;

static void on_resp_headers(struct es_req *r)
{
    (void)r;
    heads_seen++;
}

static void on_resp_data(struct es_req *r)
{
    (void)r;
}

static void on_req_consumed(struct es_req *r, size_t n)
{
    (void)r;
    (void)n;
}

static const struct es_front_ops ops = {on_resp_headers, on_resp_data, on_req_consumed};
static struct es_server srv;

#define S(x) x, strlen(x)

static const char *resp_hdr(const struct es_req *r, const char *name)
{
    size_t n;
    const nghttp2_nv *f = es_req_resp_fields(r, &n);
    for (size_t i = 0; i < n; i++)
        if (strcmp((const char *)f[i].name, name) == 0)
            return (const char *)f[i].value;
    return NULL;
}

/* A request on a connection whose SNI name is sni, with method and the
 * (name, value) pairs in hdrs, dispatched; returns it answered. */
static struct es_req *run(const char *sni, const char *method, const char *const *hdrs)
{
    heads_seen = 0;
    struct es_req *r = es_req_new(&srv, &ops, NULL, "192.0.2.7", sni);
    assert_non_null(r);
    assert_int_equal(es_req_add_header(r, S(":method"), S(method)), 0);
    for (size_t i = 0; hdrs[i]; i += 2)
        assert_int_equal(es_req_add_header(r, S(hdrs[i]), S(hdrs[i + 1])), 0);
    es_req_dispatch(r, 0);
    assert_int_equal(heads_seen, 1);
    assert_true(r->local && r->resp_headers_done && r->resp_eof);
    return r;
}

static void expect(const char *sni, const char *method, const char *const *hdrs, int status,
                   const char *code)
{
    struct es_req *r = run(sni, method, hdrs);
    if (r->resp_status != status)
        print_error("%s %s on SNI %s: %d\n", method, hdrs[1], sni ? sni : "(none)", r->resp_status);
    assert_int_equal(r->resp_status, status);
    assert_string_equal(resp_hdr(r, "tunnel-error"), code);
    es_req_front_done(r);
}

static void test_sni_must_match_host(void **state)
{
    (void)state;
    /* defect 8: a request is served only for its connection's SNI name. */
    const char *a[] = {":authority", "a.example.test", ":path", "/", NULL};
    const char *a_port[] = {":authority", "A.Example.Test.:8443", ":path", "/", NULL};
    const char *b[] = {":authority", "b.example.test", ":path", "/", NULL};
    const char *host_b[] = {"host", "b.example.test", ":path", "/", NULL};
    expect("a.example.test", "GET", a, 404, "unknown_host"); /* routed on */
    expect("a.example.test", "GET", a_port, 404, "unknown_host");
    expect("a.example.test", "GET", b, 421, "misdirected_request");
    expect("a.example.test", "GET", host_b, 421, "misdirected_request");
    expect("", "GET", a, 421, "misdirected_request");
    expect(NULL, "GET", a, 421, "misdirected_request");
}

static void test_host_twice(void **state)
{
    (void)state;
    /* defect 9: two Host fields, or a Host that is not :authority: 400. */
    const char *two[] = {"host", "a.example.test", "Host", "b.example.test", NULL};
    const char *same_twice[] = {"host", "a.example.test", "host", "a.example.test", NULL};
    const char *h2_other[] = {":authority", "a.example.test", "host", "b.example.test", NULL};
    const char *h2_same[] = {":authority", "a.example.test", "host", "A.example.test", NULL};
    /* HTTP/1.1 absolute-form: the URL's authority replaces Host. */
    const char *absolute[] = {"host", "b.example.test", ":authority", "a.example.test", NULL};
    expect("a.example.test", "GET", two, 400, "bad_request");
    expect("a.example.test", "GET", same_twice, 400, "bad_request");
    expect("a.example.test", "GET", h2_other, 400, "bad_request");
    expect("a.example.test", "GET", h2_same, 404, "unknown_host");
    expect("a.example.test", "GET", absolute, 404, "unknown_host");
}

static void test_plain_connect(void **state)
{
    (void)state;
    /* defect 14: a plain CONNECT is 405, with Allow. */
    const char *plain[] = {":authority", "a.example.test:443", NULL};
    struct es_req *r = run("a.example.test", "CONNECT", plain);
    assert_int_equal(r->resp_status, 405);
    assert_string_equal(resp_hdr(r, "tunnel-error"), "method_not_allowed");
    assert_non_null(resp_hdr(r, "allow"));
    assert_non_null(strstr(resp_hdr(r, "allow"), "GET"));
    es_req_front_done(r);
    /* Extended CONNECT (a WebSocket) goes on to routing. */
    const char *ws[] = {":authority", "a.example.test", ":protocol", "websocket", ":path", "/",
                        NULL};
    expect("a.example.test", "CONNECT", ws, 404, "unknown_host");
}

static void test_response_head_cap(void **state)
{
    (void)state;
    /* defect 10: a response head over 64 KiB from the tunnel is answered
     * 502 by the edge, and none of it reaches the browser. */
    heads_seen = 0;
    struct es_req *r = es_req_new(&srv, &ops, NULL, "192.0.2.7", "a.example.test");
    assert_non_null(r);
    static char value[1000];
    memset(value, 'v', sizeof(value));
    assert_int_equal(
        es_req_resp_header(r, (const uint8_t *)":status", 7, (const uint8_t *)"200", 3), 0);
    int rc = 0;
    size_t i;
    for (i = 0; i < 200 && rc == 0; i++) {
        char name[32];
        int n = snprintf(name, sizeof(name), "x-big-%zu", i);
        assert_true(n > 0 && (size_t)n < sizeof(name));
        rc = es_req_resp_header(r, (const uint8_t *)name, (size_t)n, (const uint8_t *)value,
                                sizeof(value));
    }
    assert_true(rc < 0);
    assert_true(i > 60 && i < 70); /* 64 KiB at ~1 KiB a field */
    assert_int_equal(heads_seen, 1);
    assert_int_equal(r->resp_status, 502);
    assert_string_equal(resp_hdr(r, "tunnel-error"), "response_headers_too_large");
    assert_null(resp_hdr(r, "x-big-0"));
    es_req_front_done(r);

    /* An interim response does not count against the final one. */
    r = es_req_new(&srv, &ops, NULL, "192.0.2.7", "a.example.test");
    assert_non_null(r);
    for (int round = 0; round < 2; round++) {
        assert_int_equal(es_req_resp_header(r, (const uint8_t *)":status", 7,
                                            (const uint8_t *)(round ? "200" : "103"), 3),
                         0);
        for (i = 0; i < 40; i++)
            assert_int_equal(es_req_resp_header(r, (const uint8_t *)"link", 4,
                                                (const uint8_t *)value, sizeof(value)),
                             0);
    }
    size_t n_fields;
    es_req_resp_fields(r, &n_fields);
    assert_int_equal(n_fields, 40);
    es_req_front_done(r);
}

/* Request ids: 32 lower-case hex digits; one server's share the prefix
 * drawn at its first request and never repeat; another server (another
 * loop) draws its own prefix. */
static void test_request_ids(void **state)
{
    (void)state;
    char first[33] = "", prev[33] = "";
    for (int i = 0; i < 1000; i++) {
        struct es_req *r = es_req_new(&srv, &ops, NULL, "192.0.2.7", "a.example.test");
        assert_non_null(r);
        assert_int_equal(strlen(r->request_id), 32);
        assert_int_equal(strspn(r->request_id, "0123456789abcdef"), 32);
        if (i == 0)
            memcpy(first, r->request_id, sizeof(first));
        assert_memory_equal(r->request_id, first, 16);
        assert_string_not_equal(r->request_id, prev);
        memcpy(prev, r->request_id, sizeof(prev));
        es_req_front_done(r);
    }
    static struct es_server other; /* the same loop, its own ids */
    other.loop = srv.loop;
    struct es_req *r = es_req_new(&other, &ops, NULL, "192.0.2.7", "a.example.test");
    assert_non_null(r);
    assert_memory_not_equal(r->request_id, first, 16); /* 2^-64 */
    es_req_front_done(r);
}

/* defect 1: the edge caps a request's :path (414) and header block (431)
 * over HTTP/2 as it does over HTTP/1.1. */
static void test_head_caps(void **state)
{
    (void)state;
    static char big[70000];
    memset(big, 'p', sizeof(big) - 1);
    big[0] = '/';
    big[20000] = '\0';
    const char *longpath[] = {":authority", "a.example.test", ":path", big, NULL};
    expect("a.example.test", "GET", longpath, 414, "uri_too_long");
    big[20000] = 'p';
    big[60000] = '\0';
    const char *bighdr[] = {":authority", "a.example.test", ":path", "/", "x-big",
                            big + 1,      "x-big2",         big + 1, NULL};
    expect("a.example.test", "GET", bighdr, 431, "headers_too_large");
}

int main(void)
{
    srv.loop = uv_default_loop();            /* requests read the loop's clock */
    if (rt_loop_init(&srv.rt, srv.loop) < 0) /* and draw their ids from its RNG */
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sni_must_match_host), cmocka_unit_test(test_host_twice),
        cmocka_unit_test(test_plain_connect),       cmocka_unit_test(test_head_caps),
        cmocka_unit_test(test_response_head_cap),   cmocka_unit_test(test_request_ids),
    };
    int rc = cmocka_run_group_tests_name("es_req", tests, NULL, NULL);
    rt_loop_cleanup(&srv.rt);
    return rc;
}
