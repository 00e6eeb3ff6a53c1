/* rt_httpd: requests in memory mode (split any way, limits, bad requests,
 * HEAD, the respond contract, admission and the deadline) and over real
 * sockets on 127.0.0.1 (listen on port 0, answers, the connection cap, a
 * refused upload the client still reads). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "px_err.h"
#include "rt_conn.h"
#include "rt_httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uv_loop_t loop;
static struct rt_loop rl;

/* What the handler saw and how it answers. */
struct fx {
    int requests;
    char method[16], path[512], query[512], host[256], auth[256], ctype[256], accept[256];
    int has_query, has_host, has_auth, has_body_ptr;
    char body[4096];
    size_t body_len;
    char peer[64];
    int loopback;
    /* the answer */
    int status;
    const char *ctype_out, *headers_out, *body_out;
    int no_answer, answer_twice, second_rc, first_rc;
    /* admission */
    int admits, releases, refuse_peer_66;
    void *last_tok;
    /* the head hook: what it saw, and an answer it gives when early_status */
    int heads, head_requests_before;
    size_t head_body_len, body_usable;
    int head_has_body_ptr;
    char head_path[512], head_auth[256];
    int early_status;
};

static struct fx fx;

static void copy(char *dst, size_t cap, const char *s, int *present)
{
    if (present)
        *present = s != NULL;
    snprintf(dst, cap, "%s", s ? s : "");
}

static void on_request(void *ud, struct rt_httpd_conn *c, const struct rt_httpd_req *r)
{
    assert_ptr_equal(ud, &fx);
    fx.requests++;
    copy(fx.method, sizeof(fx.method), r->method, NULL);
    copy(fx.path, sizeof(fx.path), r->path, NULL);
    copy(fx.query, sizeof(fx.query), r->query, &fx.has_query);
    copy(fx.host, sizeof(fx.host), r->host, &fx.has_host);
    copy(fx.auth, sizeof(fx.auth), r->authorization, &fx.has_auth);
    copy(fx.ctype, sizeof(fx.ctype), r->content_type, NULL);
    copy(fx.accept, sizeof(fx.accept), r->accept, NULL);
    copy(fx.peer, sizeof(fx.peer), r->peer_ip, NULL);
    fx.loopback = r->peer_loopback;
    fx.has_body_ptr = r->body != NULL;
    fx.body_usable = r->body ? malloc_usable_size((void *)r->body) : 0;
    assert_true(r->body_len <= sizeof(fx.body));
    if (r->body_len)
        memcpy(fx.body, r->body, r->body_len);
    fx.body_len = r->body_len;
    if (fx.no_answer)
        return;
    const char *b = fx.body_out ? fx.body_out : "hello\n";
    fx.first_rc =
        rt_httpd_respond(c, fx.status ? fx.status : 200, fx.ctype_out ? fx.ctype_out : "text/plain",
                         fx.headers_out, b, strlen(b));
    if (fx.answer_twice)
        fx.second_rc = rt_httpd_respond(c, 200, "text/plain", NULL, "x", 1);
}

static int admit(void *ud, const char *peer_ip, void **tok)
{
    assert_ptr_equal(ud, &fx);
    if (fx.refuse_peer_66 && strcmp(peer_ip, "192.0.2.66") == 0)
        return -1;
    fx.admits++;
    *tok = (void *)(uintptr_t)(0x1000 + fx.admits);
    return 0;
}

static void release(void *ud, void *tok)
{
    assert_ptr_equal(ud, &fx);
    fx.releases++;
    fx.last_tok = tok;
}

static const struct rt_httpd_ops ops = {
    .on_request = on_request, .admit = admit, .release = release};
static const struct rt_httpd_ops ops_min = {.on_request = on_request};

/* The head hook: notes what it saw; answers when fx.early_status is set
 * (a JSON body and a WWW-Authenticate line, as an owner wanting a token). */
static void on_head(void *ud, struct rt_httpd_conn *c, const struct rt_httpd_req *r)
{
    assert_ptr_equal(ud, &fx);
    fx.heads++;
    fx.head_requests_before = fx.requests;
    fx.head_body_len = r->body_len;
    fx.head_has_body_ptr = r->body != NULL;
    copy(fx.head_path, sizeof(fx.head_path), r->path, NULL);
    copy(fx.head_auth, sizeof(fx.head_auth), r->authorization, NULL);
    if (fx.early_status) {
        static const char b[] = "{\"error\":\"a token is needed\"}";
        assert_int_equal(rt_httpd_respond(c, fx.early_status, "application/json",
                                          "WWW-Authenticate: Bearer\r\n", b, sizeof(b) - 1),
                         0);
    }
}

static const struct rt_httpd_ops ops_head = {
    .on_request = on_request, .on_head = on_head, .admit = admit, .release = release};

static void run(int times)
{
    for (int i = 0; i < times; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
}

/* Runs the loop until the connection's release (its close) happened. */
static void run_until_released(int want)
{
    for (int i = 0; i < 2000 && fx.releases < want; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        if (fx.releases < want)
            usleep(1000);
    }
    assert_int_equal(fx.releases, want);
}

static int setup(void **state)
{
    (void)state;
    memset(&fx, 0, sizeof(fx));
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(rt_loop_init(&rl, &loop), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    run(5);
    rt_loop_cleanup(&rl);
    run(2);
    assert_int_equal(uv_loop_close(&loop), 0);
    return 0;
}

/* Feeds req to a new memory connection in pieces of `piece` bytes (0: all
 * at once), runs the loop, and returns the output (malloc'd), which is then
 * drained; the connection then closes (eof: the client also hangs up, for
 * a connection that lingers). */
static char *exchange(struct rt_httpd *h, const char *peer, const char *req, size_t len,
                      size_t piece, int eof)
{
    int released = fx.releases;
    struct rt_conn *c = rt_httpd_new_memory(h, peer);
    assert_non_null(c);
    for (size_t off = 0; off < len;) {
        size_t n = piece && piece < len - off ? piece : len - off;
        if (rt_conn_memory_feed(c, req + off, n) < 0)
            break;
        off += n;
        run(1);
    }
    run(3);
    if (fx.releases > released) /* aborted: nothing was said, c is gone */
        return strdup("");
    size_t olen = px_buf_len(&c->mem_out);
    char *out = malloc(olen + 1);
    assert_non_null(out);
    if (olen)
        memcpy(out, px_buf_head(&c->mem_out), olen);
    out[olen] = '\0';
    if (olen)
        rt_conn_memory_consume(c, olen);
    if (eof)
        rt_conn_memory_eof(c);
    run_until_released(released + 1);
    return out;
}

static char *exchange_s(struct rt_httpd *h, const char *req, size_t piece)
{
    return exchange(h, "192.0.2.1", req, strlen(req), piece, 0);
}

static int status_of(const char *resp)
{
    int s = 0;
    if (sscanf(resp, "HTTP/1.1 %d ", &s) != 1)
        return -1;
    return s;
}

static const char *body_of(const char *resp)
{
    const char *p = strstr(resp, "\r\n\r\n");
    assert_non_null(p);
    return p + 4;
}

static void test_get(void **state)
{
    (void)state;
    struct rt_httpd *h = rt_httpd_new(&loop, NULL, &ops, &fx);
    assert_non_null(h);
    char *out = exchange_s(h,
                           "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9\r\nAccept: text/plain\r\n"
                           "User-Agent: t\r\n\r\n",
                           0);
    assert_string_equal(out, "HTTP/1.1 200 OK\r\n"
                             "Content-Type: text/plain\r\n"
                             "Content-Length: 6\r\n"
                             "Connection: close\r\n"
                             "Cache-Control: no-store\r\n"
                             "X-Content-Type-Options: nosniff\r\n"
                             "\r\n"
                             "hello\n");
    assert_int_equal(fx.requests, 1);
    assert_string_equal(fx.method, "GET");
    assert_string_equal(fx.path, "/metrics");
    assert_false(fx.has_query);
    assert_string_equal(fx.host, "127.0.0.1:9");
    assert_false(fx.has_auth);
    assert_string_equal(fx.accept, "text/plain");
    assert_false(fx.has_body_ptr);
    assert_int_equal(fx.body_len, 0);
    assert_string_equal(fx.peer, "192.0.2.1");
    assert_false(fx.loopback);
    assert_int_equal(fx.admits, 1);
    assert_ptr_equal(fx.last_tok, (void *)(uintptr_t)0x1001);
    free(out);
    rt_httpd_free(h);
}

static const char post_req[] = "POST /api/tunnels?dry=1&x=%20y#frag HTTP/1.1\r\n"
                               "host: edge.example\r\n"
                               "AUTHORIZATION: Bearer abc\r\n"
                               "Content-Type: application/json\r\n"
                               "Accept: application/json\r\n"
                               "accept: text/html\r\n"
                               "Content-Length: 14\r\n"
                               "\r\n"
                               "{\"name\":\"one\"}";

/* The same request split at every size, down to one byte at a time. */
static void test_split_requests(void **state)
{
    (void)state;
    struct rt_httpd *h = rt_httpd_new(&loop, NULL, &ops, &fx);
    static const size_t pieces[] = {1, 2, 3, 7, 13, 64, 0};
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        memset(fx.body, 0, sizeof(fx.body));
        char *out = exchange(h, "127.0.0.1", post_req, strlen(post_req), pieces[i], 0);
        assert_int_equal(status_of(out), 200);
        assert_int_equal(fx.requests, (int)i + 1);
        assert_string_equal(fx.method, "POST");
        assert_string_equal(fx.path, "/api/tunnels");
        assert_true(fx.has_query);
        assert_string_equal(fx.query, "dry=1&x=%20y");
        assert_string_equal(fx.host, "edge.example");
        assert_string_equal(fx.auth, "Bearer abc");
        assert_string_equal(fx.ctype, "application/json");
        assert_string_equal(fx.accept, "application/json, text/html");
        assert_int_equal(fx.body_len, 14);
        assert_memory_equal(fx.body, "{\"name\":\"one\"}", 14);
        assert_true(fx.loopback);
        free(out);
    }
    rt_httpd_free(h);
}

static void test_head(void **state)
{
    (void)state;
    struct rt_httpd *h = rt_httpd_new(&loop, NULL, &ops, &fx);
    fx.body_out = "0123456789";
    char *out = exchange_s(h, "HEAD /healthcheck HTTP/1.1\r\nHost: h\r\n\r\n", 0);
    assert_string_equal(fx.method, "GET"); /* answered as GET */
    assert_int_equal(status_of(out), 200);
    assert_non_null(strstr(out, "\r\nContent-Length: 10\r\n"));
    assert_string_equal(body_of(out), "");
    free(out);
    rt_httpd_free(h);
}

static void test_targets(void **state)
{
    (void)state;
    struct rt_httpd *h = rt_httpd_new(&loop, NULL, &ops, &fx);
    char *out = exchange_s(h, "GET http://h.example:8/a/b?c=d HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    assert_int_equal(status_of(out), 200);
    assert_string_equal(fx.path, "/a/b");
    assert_string_equal(fx.query, "c=d");
    free(out);
    out = exchange_s(h, "GET http://h.example HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    assert_int_equal(status_of(out), 200);
    assert_string_equal(fx.path, "/");
    assert_false(fx.has_query);
    free(out);
    out = exchange_s(h, "GET /x? HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    assert_string_equal(fx.path, "/x");
    assert_true(fx.has_query);
    assert_string_equal(fx.query, "");
    free(out);
    /* HTTP/1.0 may leave Host out. */
    out = exchange_s(h, "GET /old HTTP/1.0\r\n\r\n", 0);
    assert_int_equal(status_of(out), 200);
    assert_false(fx.has_host);
    free(out);
    assert_int_equal(fx.requests, 4);
    rt_httpd_free(h);
}

static void test_bad_requests(void **state)
{
    (void)state;
    struct rt_httpd *h = rt_httpd_new(&loop, NULL, &ops, &fx);
    static const struct {
        const char *req;
        int status;
    } cases[] = {
        {"HELLO\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\n\r\n", 400}, /* no Host */
        {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\nAuthorization: x\r\nAuthorization: y\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\nContent-Type: a\r\ncontent-type: b\r\n\r\n", 400},
        {"GET x HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        {"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        {"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 400},
        {"GET ftp://a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\nX: a\x1b[2Jb\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\nX\x7f: b\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
         400},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
        {"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400},
        {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400}, /* a TLS ClientHello */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = exchange_s(h, cases[i].req, 0);
        if (status_of(out) != cases[i].status)
            fprintf(stderr, "case %zu: %s\n", i, out);
        assert_int_equal(status_of(out), cases[i].status);
        assert_non_null(strstr(out, "\r\nConnection: close\r\n"));
        free(out);
        /* Split byte by byte: the same answer. */
        out = exchange_s(h, cases[i].req, 1);
        assert_int_equal(status_of(out), cases[i].status);
        free(out);
    }
    assert_int_equal(fx.requests, 0);
    rt_httpd_free(h);
}

/* A chunked upload: 411, and the rest of the body is read away. */
static void test_chunked_refused(void **state)
{
    (void)state;
    struct rt_httpd *h = rt_httpd_new(&loop, NULL, &ops, &fx);
    static const char req[] =
        "POST /api/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";
    char *out = exchange(h, "192.0.2.1", req, strlen(req), 0, 1);
    assert_int_equal(status_of(out), 411);
    assert_string_equal(body_of(out), "length required\n");
    assert_int_equal(fx.requests, 0);
    free(out);
    rt_httpd_free(h);
}

static char *make_head(size_t total)
{
    /* "GET / HTTP/1.1\r\nHost: a\r\nX: vvvv...\r\n\r\n" of exactly total bytes */
    static const char pre[] = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
    size_t fixed = strlen(pre) + 4;
    assert_true(total > fixed);
    char *s = malloc(total + 1);
    assert_non_null(s);
    memcpy(s, pre, strlen(pre));
    memset(s + strlen(pre), 'v', total - fixed);
    memcpy(s + total - 4, "\r\n\r\n", 4);
    s[total] = '\0';
    return s;
}

static void test_oversized_head(void **state)
{
    (void)state;
    struct rt_httpd_limits lim = {.max_head = 256};
    struct rt_httpd *h = rt_httpd_new(&loop, &lim, &ops, &fx);
    static const size_t pieces[] = {0, 1, 100};
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        char *req = make_head(256);
        char *out = exchange_s(h, req, pieces[i]);
        assert_int_equal(status_of(out), 200);
        free(out);
        free(req);
        req = make_head(257);
        out = exchange_s(h, req, pieces[i]);
        assert_int_equal(status_of(out), 431);
        free(out);
        free(req);
    }
    assert_int_equal(fx.requests, 3);
    rt_httpd_free(h);

    /* The default (16 KiB) holds; http_parser's own cap also gives 431. */
    h = rt_httpd_new(&loop, NULL, &ops, &fx);
    char *req = make_head(16 * 1024 + 1);
    char *out = exchange_s(h, req, 4096);
    assert_int_equal(status_of(out), 431);
    free(out);
    free(req);
    rt_httpd_free(h);
    lim.max_head = 200 * 1024;
    h = rt_httpd_new(&loop, &lim, &ops, &fx);
    req = make_head(100 * 1024);
    out = exchange_s(h, req, 0);
    assert_int_equal(status_of(out), 431);
    free(out);
    free(req);
    rt_httpd_free(h);
}

static void test_oversized_body(void **state)
{
    (void)state;
    struct rt_httpd_limits lim = {.max_body = 16};
    struct rt_httpd *h = rt_httpd_new(&loop, &lim, &ops, &fx);
    static const char ok[] =
        "PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 16\r\n\r\n0123456789abcdef";
    char *out = exchange_s(h, ok, 5);
    assert_int_equal(status_of(out), 200);
    assert_int_equal(fx.body_len, 16);
    free(out);
    /* Refused from the head alone; the body that follows is read away,
     * and the connection closes when the client hangs up. */
    static const char big[] =
        "PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 17\r\n\r\n0123456789abcdefg";
    out = exchange(h, "192.0.2.1", big, strlen(big), 3, 1);
    assert_int_equal(status_of(out), 413);
    assert_string_equal(body_of(out), "request body too large\n");
    free(out);
    assert_int_equal(fx.requests, 1);
    rt_httpd_free(h);
}

/* A refused upload lingers at most LINGER (1 s), then closes by itself. */
static void test_linger_ends(void **state)
{
    (void)state;
    struct rt_httpd_limits lim = {.max_body = 16};
    struct rt_httpd *h = rt_httpd_new(&loop, &lim, &ops, &fx);
    struct rt_conn *c = rt_httpd_new_memory(h, "192.0.2.1");
    static const char big[] = "PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n";
    assert_int_equal(rt_conn_memory_feed(c, big, strlen(big)), 0);
    run(2);
    assert_int_equal(status_of((const char *)px_buf_head(&c->mem_out)), 413);
    rt_conn_memory_consume(c, px_buf_len(&c->mem_out));
    char junk[4096] = {0};
    assert_int_equal(rt_conn_memory_feed(c, junk, sizeof(junk)), 0);
    run_until_released(1);
    rt_httpd_free(h);
}

static void test_expect_continue(void **state)
{
    (void)state;
    struct rt_httpd *h = rt_httpd_new(&loop, NULL, &ops, &fx);
    struct rt_conn *c = rt_httpd_new_memory(h, "192.0.2.1");
    static const char head[] =
        "POST /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
    assert_int_equal(rt_conn_memory_feed(c, head, strlen(head)), 0);
    run(2);
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    assert_int_equal(px_buf_len(&c->mem_out), strlen(cont));
    assert_memory_equal(px_buf_head(&c->mem_out), cont, strlen(cont));
    rt_conn_memory_consume(c, strlen(cont));
    rt_conn_memory_feed(c, "abc", 3); /* < 0: answered, c is closing */
    run(2);
    assert_int_equal(status_of((const char *)px_buf_head(&c->mem_out)), 200);
    rt_conn_memory_consume(c, px_buf_len(&c->mem_out));
    run_until_released(1);
    assert_int_equal(fx.body_len, 3);
    rt_httpd_free(h);
}

/* One request per connection: what follows it is never parsed. */
static void test_one_request_per_connection(void **state)
{
    (void)state;
    struct rt_httpd *h = rt_httpd_new(&loop, NULL, &ops, &fx);
    char *out = exchange_s(h,
                           "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n"
                           "garbage",
                           0);
    assert_int_equal(fx.requests, 1);
    assert_string_equal(fx.path, "/a");
    assert_int_equal(status_of(out), 200);
    assert_null(strstr(body_of(out), "HTTP/1.1"));
    free(out);
    rt_httpd_free(h);
}

static void test_respond_contract(void **state)
{
    (void)state;
    struct rt_httpd *h = rt_httpd_new(&loop, NULL, &ops, &fx);
    /* Twice: the second is refused and changes nothing. */
    fx.answer_twice = 1;
    char *out = exchange_s(h, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0);
    assert_int_equal(fx.first_rc, 0);
    assert_int_equal(fx.second_rc, PX_ERR_INVAL);
    assert_string_equal(body_of(out), "hello\n");
    free(out);
    fx.answer_twice = 0;
    /* Extra header lines and another status. */
    fx.status = 401;
    fx.ctype_out = "application/json";
    fx.headers_out = "WWW-Authenticate: Bearer\r\n";
    fx.body_out = "{\"error\":\"token\"}";
    out = exchange_s(h, "GET /api/x HTTP/1.1\r\nHost: a\r\n\r\n", 0);
    assert_string_equal(out, "HTTP/1.1 401 Unauthorized\r\n"
                             "Content-Type: application/json\r\n"
                             "Content-Length: 17\r\n"
                             "Connection: close\r\n"
                             "Cache-Control: no-store\r\n"
                             "X-Content-Type-Options: nosniff\r\n"
                             "WWW-Authenticate: Bearer\r\n"
                             "\r\n"
                             "{\"error\":\"token\"}");
    free(out);
    /* 204: neither a body nor a length. */
    fx.status = 204;
    fx.headers_out = NULL;
    out = exchange_s(h, "DELETE /api/x HTTP/1.1\r\nHost: a\r\n\r\n", 0);
    assert_int_equal(status_of(out), 204);
    assert_null(strstr(out, "Content-Length"));
    assert_string_equal(body_of(out), "");
    free(out);
    /* A handler that forgets to answer: 500. */
    fx.status = 0;
    fx.no_answer = 1;
    out = exchange_s(h, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0);
    assert_int_equal(status_of(out), 500);
    free(out);
    fx.no_answer = 0;
    /* Invalid answers close the connection without a word. */
    static const int bad_status[] = {99, 600, -1};
    for (size_t i = 0; i < 3; i++) {
        fx.status = bad_status[i];
        out = exchange_s(h, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0);
        assert_int_equal(fx.first_rc, PX_ERR_INVAL);
        assert_string_equal(out, "");
        free(out);
    }
    fx.status = 200;
    fx.ctype_out = "text/plain\r\nSet-Cookie: x=1";
    out = exchange_s(h, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0);
    assert_int_equal(fx.first_rc, PX_ERR_INVAL);
    assert_string_equal(out, "");
    free(out);
    assert_int_equal(rt_httpd_respond(NULL, 200, NULL, NULL, NULL, 0), PX_ERR_INVAL);
    rt_httpd_free(h);
}

static void test_admission(void **state)
{
    (void)state;
    struct rt_httpd_limits lim = {.max_conns = 2};
    fx.refuse_peer_66 = 1;
    struct rt_httpd *h = rt_httpd_new(&loop, &lim, &ops, &fx);
    assert_null(rt_httpd_new_memory(h, "192.0.2.66")); /* the owner said no */
    run(3);
    assert_int_equal(fx.admits, 0);
    assert_int_equal(fx.releases, 0);
    struct rt_conn *a = rt_httpd_new_memory(h, "192.0.2.1");
    struct rt_conn *b = rt_httpd_new_memory(h, "192.0.2.2");
    assert_non_null(a);
    assert_non_null(b);
    assert_null(rt_httpd_new_memory(h, "192.0.2.3")); /* over max_conns */
    assert_int_equal(fx.admits, 2);
    rt_conn_memory_eof(a); /* the client went away: released */
    run_until_released(1);
    assert_ptr_equal(fx.last_tok, (void *)(uintptr_t)0x1001);
    struct rt_conn *c = rt_httpd_new_memory(h, "192.0.2.3");
    assert_non_null(c);
    /* Freeing the server releases what is open before it returns. */
    rt_httpd_free(h);
    assert_int_equal(fx.releases, 3);
    run(5);
    assert_int_equal(fx.releases, 3);
    assert_int_equal(fx.requests, 0);
}

static void test_deadline(void **state)
{
    (void)state;
    struct rt_httpd_limits lim = {.deadline_ms = 30};
    struct rt_httpd *h = rt_httpd_new(&loop, &lim, &ops, &fx);
    struct rt_conn *c = rt_httpd_new_memory(h, "192.0.2.1");
    static const char part[] = "GET / HTTP/1.1\r\nHost: a\r\n";
    assert_int_equal(rt_conn_memory_feed(c, part, strlen(part)), 0);
    run_until_released(1);
    assert_int_equal(fx.requests, 0);
    rt_httpd_free(h);
}

static void test_loopback_peers(void **state)
{
    (void)state;
    struct rt_httpd *h = rt_httpd_new(&loop, NULL, &ops_min, &fx);
    static const struct {
        const char *ip;
        int loopback;
    } cases[] = {{"127.0.0.1", 1},        {"127.255.0.9", 1}, {"::1", 1},
                 {"::ffff:127.0.0.1", 1}, {"192.0.2.1", 0},   {"::2", 0},
                 {"::ffff:10.0.0.1", 0},  {"128.0.0.1", 0},   {"", 0}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rt_conn *c = rt_httpd_new_memory(h, cases[i].ip);
        static const char req[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        rt_conn_memory_feed(c, req, strlen(req));
        run(3);
        assert_string_equal(fx.peer, cases[i].ip);
        assert_int_equal(fx.loopback, cases[i].loopback);
        rt_conn_memory_consume(c, px_buf_len(&c->mem_out));
        run(3);
    }
    rt_httpd_free(h);
}

static void test_new_args(void **state)
{
    (void)state;
    static const struct rt_httpd_ops no_handler = {.admit = admit};
    assert_null(rt_httpd_new(&loop, NULL, &no_handler, &fx));
    assert_null(rt_httpd_new(&loop, NULL, NULL, &fx));
    rt_httpd_free(NULL);
}

static void test_listen_addresses(void **state)
{
    (void)state;
    struct rt_httpd *h = rt_httpd_new(&loop, NULL, &ops, &fx);
    static const char *const bad[] = {"",
                                      "127.0.0.1",
                                      "127.0.0.1:",
                                      ":80",
                                      "127.0.0.1:99999",
                                      "127.0.0.1:123456",
                                      "127.0.0.1:-1",
                                      "127.0.0.1:8x",
                                      "localhost:80",
                                      "::1:80",
                                      "[::1]80",
                                      "[::1]:",
                                      "[127.0.0.1]:80",
                                      "[::1:80",
                                      "1.2.3:80",
                                      "[]:80"};
    char bound[64];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(rt_httpd_listen(h, bad[i], bound, sizeof(bound)), PX_ERR_INVAL);
    assert_int_equal(rt_httpd_listen(h, NULL, NULL, 0), PX_ERR_INVAL);
    char small[16];
    assert_int_equal(rt_httpd_listen(h, "127.0.0.1:0", small, sizeof(small)), PX_ERR_INVAL);
    /* A port in use: the OS refuses. */
    assert_int_equal(rt_httpd_listen(h, "127.0.0.1:0", bound, sizeof(bound)), 0);
    assert_int_equal(rt_httpd_listen(h, bound, NULL, 0), PX_ERR_IO);
    rt_httpd_free(h);
}

/* ---- real sockets ---- */

/* A blocking client connection to "HOST:PORT" / "[V6]:PORT". */
static int dial(const char *hostport)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    char host[64];
    const char *colon = strrchr(hostport, ':');
    assert_non_null(colon);
    int port = atoi(colon + 1);
    int v6 = hostport[0] == '[';
    snprintf(host, sizeof(host), "%.*s", (int)(colon - hostport - 2 * v6), hostport + v6);
    int fd;
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        assert_int_equal(inet_pton(AF_INET6, host, &a->sin6_addr), 1);
        fd = socket(AF_INET6, SOCK_STREAM, 0);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        assert_int_equal(inet_pton(AF_INET, host, &a->sin_addr), 1);
        fd = socket(AF_INET, SOCK_STREAM, 0);
    }
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&ss, sizeof(ss)), 0);
    return fd;
}

/* Sends req on fd (the server runs meanwhile) and reads until the server
 * closes. Returns what arrived (malloc'd); *reset is set when the
 * connection was reset instead of closed. */
static char *client_exchange(int fd, const char *req, size_t len, int *reset)
{
    size_t sent = 0, got = 0, cap = 1 << 16;
    char *out = malloc(cap + 1);
    assert_non_null(out);
    *reset = 0;
    for (int i = 0; i < 5000; i++) {
        if (sent < len) {
            ssize_t n = send(fd, req + sent, len - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0)
                sent += (size_t)n;
            else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
                sent = len; /* the server is gone: stop sending */
        }
        uv_run(&loop, UV_RUN_NOWAIT);
        ssize_t n = recv(fd, out + got, cap - got, MSG_DONTWAIT);
        if (n == 0)
            break;
        if (n > 0) {
            got += (size_t)n;
            assert_true(got < cap);
            continue;
        }
        if (errno == ECONNRESET) {
            *reset = 1;
            break;
        }
        usleep(1000);
    }
    out[got] = '\0';
    close(fd);
    return out;
}

static void test_real_socket(void **state)
{
    (void)state;
    struct rt_httpd_limits lim = {.max_body = 1024, .max_conns = 1};
    struct rt_httpd *h = rt_httpd_new(&loop, &lim, &ops, &fx);
    char bound[64];
    assert_int_equal(rt_httpd_listen(h, "127.0.0.1:0", bound, sizeof(bound)), 0);
    assert_int_equal(strncmp(bound, "127.0.0.1:", 10), 0);
    assert_true(atoi(bound + 10) > 0);

    int reset;
    static const char req[] = "GET /healthcheck?x HTTP/1.1\r\nHost: t\r\n\r\n";
    char *out = client_exchange(dial(bound), req, strlen(req), &reset);
    assert_false(reset);
    assert_int_equal(status_of(out), 200);
    assert_string_equal(body_of(out), "hello\n");
    assert_string_equal(fx.peer, "127.0.0.1");
    assert_true(fx.loopback);
    assert_string_equal(fx.query, "x");
    free(out);
    run_until_released(1);

    /* The cap: a second connection while one is open is closed at accept. */
    int first = dial(bound);
    run(5);
    assert_int_equal(fx.admits, 2);
    char *second = client_exchange(dial(bound), req, strlen(req), &reset);
    assert_string_equal(second, "");
    assert_int_equal(fx.admits, 2);
    free(second);
    out = client_exchange(first, req, strlen(req), &reset);
    assert_int_equal(status_of(out), 200);
    free(out);
    run_until_released(2);

    /* An upload over max_body: the client reads the whole 413 instead of
     * a reset, although the server never takes the body. */
    size_t big = 200 * 1024;
    char *up = malloc(big);
    assert_non_null(up);
    int hl = snprintf(up, big, "POST /api/x HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n",
                      big - 80);
    memset(up + hl, 'b', big - (size_t)hl);
    out = client_exchange(dial(bound), up, big - 80 + (size_t)hl, &reset);
    assert_int_equal(status_of(out), 413);
    assert_string_equal(body_of(out), "request body too large\n");
    free(out);
    free(up);
    run_until_released(3);
    assert_int_equal(fx.requests, 2);
    rt_httpd_free(h);
}

static void test_real_socket_v6(void **state)
{
    (void)state;
    struct rt_httpd *h = rt_httpd_new(&loop, NULL, &ops_min, &fx);
    char bound[64];
    if (rt_httpd_listen(h, "[::1]:0", bound, sizeof(bound)) != 0) {
        rt_httpd_free(h);
        fprintf(stderr, "no IPv6 loopback here: skipped\n");
        skip();
    }
    assert_int_equal(strncmp(bound, "[::1]:", 6), 0);
    int reset;
    static const char req[] = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    char *out = client_exchange(dial(bound), req, strlen(req), &reset);
    assert_int_equal(status_of(out), 200);
    assert_string_equal(fx.peer, "::1");
    assert_true(fx.loopback);
    free(out);
    /* Freed with a connection open and the listener up: all closes. */
    int fd = dial(bound);
    run(3);
    rt_httpd_free(h);
    run(5);
    char c;
    assert_true(recv(fd, &c, 1, 0) <= 0);
    close(fd);
}

/* rt_httpd_accept on a listener the caller owns. */
static uv_tcp_t own;
static struct rt_httpd *own_h;

static void on_own_connection(uv_stream_t *s, int status)
{
    assert_int_equal(status, 0);
    rt_httpd_accept(own_h, s);
}

static void test_accept_own_listener(void **state)
{
    (void)state;
    own_h = rt_httpd_new(&loop, NULL, &ops, &fx);
    assert_int_equal(uv_tcp_init(&loop, &own), 0);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(uv_tcp_bind(&own, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&own, 8, on_own_connection), 0);
    struct sockaddr_in got;
    int len = sizeof(got);
    uv_tcp_getsockname(&own, (struct sockaddr *)&got, &len);
    char bound[64];
    snprintf(bound, sizeof(bound), "127.0.0.1:%d", ntohs(got.sin_port));
    int reset;
    static const char req[] = "GET /own HTTP/1.1\r\nHost: t\r\n\r\n";
    char *out = client_exchange(dial(bound), req, strlen(req), &reset);
    assert_int_equal(status_of(out), 200);
    assert_string_equal(fx.path, "/own");
    free(out);
    run_until_released(1);
    rt_httpd_free(own_h);
    uv_close((uv_handle_t *)&own, NULL);
}

/* review 12.2: the head hook answers before any of the body is read: no
 * 100 Continue, the owner's status, headers and body, on_request never
 * called; the body that follows is read away (not kept) and the connection
 * closes once it is all in. */
static void test_review_12_2_head_hook_answers_before_the_body(void **state)
{
    (void)state;
    struct rt_httpd_limits lim = {.max_body = 2 * 1024 * 1024};
    struct rt_httpd *h = rt_httpd_new(&loop, &lim, &ops_head, &fx);
    fx.early_status = 401;
    struct rt_conn *c = rt_httpd_new_memory(h, "192.0.2.1");
    static const char head[] = "POST /api/tunnels?x=1 HTTP/1.1\r\nHost: a\r\n"
                               "Expect: 100-continue\r\nContent-Length: 10\r\n\r\n";
    assert_int_equal(rt_conn_memory_feed(c, head, strlen(head)), 0);
    run(2);
    assert_int_equal(fx.heads, 1);
    assert_int_equal(fx.head_body_len, 10); /* the announced length */
    assert_false(fx.head_has_body_ptr);
    assert_string_equal(fx.head_path, "/api/tunnels");
    const char *out = (const char *)px_buf_head(&c->mem_out);
    assert_non_null(out);
    char *resp = strndup(out, px_buf_len(&c->mem_out));
    assert_int_equal(status_of(resp), 401); /* and no 100 Continue before it */
    assert_non_null(strstr(resp, "\r\nWWW-Authenticate: Bearer\r\n"));
    assert_string_equal(body_of(resp), "{\"error\":\"a token is needed\"}");
    free(resp);
    rt_conn_memory_consume(c, px_buf_len(&c->mem_out));
    /* The body the client sends anyway is read away; once all of it is
     * in, the connection closes by itself (no hang-up needed). */
    assert_int_equal(rt_conn_memory_feed(c, "01234", 5), 0);
    run(2);
    assert_int_equal(fx.releases, 0);
    rt_conn_memory_feed(c, "56789", 5);
    run_until_released(1);
    assert_int_equal(fx.requests, 0);

    /* Without a body: answered and closed at once. */
    char *o = exchange_s(h, "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", 0);
    assert_int_equal(status_of(o), 401);
    free(o);
    /* Head and body in one read, or byte by byte: the same. */
    static const char whole[] = "PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc";
    o = exchange_s(h, whole, 0);
    assert_int_equal(status_of(o), 401);
    free(o);
    o = exchange_s(h, whole, 1);
    assert_int_equal(status_of(o), 401);
    free(o);
    assert_int_equal(fx.requests, 0);
    assert_int_equal(fx.heads, 4);
    rt_httpd_free(h);
}

/* review 12.2: a body far larger than what is read away (256 KiB): the
 * connection closes after that much instead of taking it all. */
static void test_review_12_2_early_answer_reads_away_a_bounded_amount(void **state)
{
    (void)state;
    struct rt_httpd_limits lim = {.max_body = 4 * 1024 * 1024};
    struct rt_httpd *h = rt_httpd_new(&loop, &lim, &ops_head, &fx);
    fx.early_status = 403;
    struct rt_conn *c = rt_httpd_new_memory(h, "192.0.2.1");
    static const char head[] = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4000000\r\n\r\n";
    assert_int_equal(rt_conn_memory_feed(c, head, strlen(head)), 0);
    run(2);
    assert_int_equal(status_of((const char *)px_buf_head(&c->mem_out)), 403);
    rt_conn_memory_consume(c, px_buf_len(&c->mem_out));
    static char junk[16 * 1024];
    size_t fed = 0;
    while (fx.releases == 0 && fed < 1024 * 1024) {
        if (rt_conn_memory_feed(c, junk, sizeof(junk)) < 0)
            break;
        fed += sizeof(junk);
        run(1);
    }
    run_until_released(1);
    assert_true(fed <= 256 * 1024 + sizeof(junk));
    assert_int_equal(fx.requests, 0);
    rt_httpd_free(h);
}

/* review 12.2: a head hook that lets the request go on: it runs once the
 * head is in (before the body and before 100 Continue), the body is then
 * read into one buffer of the announced size, and on_request answers. */
static void test_review_12_2_head_hook_goes_on_body_sized_once(void **state)
{
    (void)state;
    struct rt_httpd_limits lim = {.max_body = 8192};
    struct rt_httpd *h = rt_httpd_new(&loop, &lim, &ops_head, &fx);
    struct rt_conn *c = rt_httpd_new_memory(h, "192.0.2.1");
    static const char head[] = "POST /api/x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer t\r\n"
                               "Expect: 100-continue\r\nContent-Length: 3000\r\n\r\n";
    assert_int_equal(rt_conn_memory_feed(c, head, strlen(head)), 0);
    run(2);
    assert_int_equal(fx.heads, 1);
    assert_string_equal(fx.head_auth, "Bearer t");
    assert_int_equal(fx.requests, 0);
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    assert_int_equal(px_buf_len(&c->mem_out), strlen(cont));
    rt_conn_memory_consume(c, strlen(cont));
    static char body[3000];
    memset(body, 'b', sizeof(body));
    for (size_t off = 0; off < sizeof(body); off += 1000) {
        rt_conn_memory_feed(c, body + off, 1000);
        run(1);
    }
    run(2);
    assert_int_equal(fx.requests, 1);
    assert_int_equal(fx.head_requests_before, 0);
    assert_int_equal(fx.body_len, 3000);
    /* One allocation of the announced size, not a 4 KiB first block (or
     * one grown by doubling). */
    assert_true(fx.body_usable >= 3000 && fx.body_usable < 3000 + 64);
    assert_int_equal(status_of((const char *)px_buf_head(&c->mem_out)), 200);
    rt_conn_memory_consume(c, px_buf_len(&c->mem_out));
    run_until_released(1);
    rt_httpd_free(h);
}

/* review 12.2 over a real socket: the answer to a 1 MiB upload arrives
 * before the client has sent any of the body. */
static void test_review_12_2_answer_before_the_body_on_a_socket(void **state)
{
    (void)state;
    struct rt_httpd_limits lim = {.max_body = 2 * 1024 * 1024};
    struct rt_httpd *h = rt_httpd_new(&loop, &lim, &ops_head, &fx);
    fx.early_status = 401;
    char bound[64];
    assert_int_equal(rt_httpd_listen(h, "127.0.0.1:0", bound, sizeof(bound)), 0);
    int fd = dial(bound);
    static const char head[] = "POST /api/tunnels HTTP/1.1\r\nHost: t\r\n"
                               "Content-Length: 1048576\r\n\r\n";
    assert_int_equal(send(fd, head, strlen(head), MSG_NOSIGNAL), (ssize_t)strlen(head));
    char got[1024];
    size_t n = 0;
    for (int i = 0; i < 2000 && !memmem(got, n, "\r\n\r\n", 4); i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        ssize_t r = recv(fd, got + n, sizeof(got) - 1 - n, MSG_DONTWAIT);
        if (r > 0)
            n += (size_t)r;
        else
            usleep(1000);
    }
    got[n] = '\0';
    assert_int_equal(status_of(got), 401);
    assert_int_equal(fx.requests, 0);
    close(fd);
    run_until_released(1);
    rt_httpd_free(h);
}

/* review 12.3: the Host values a DNS-rebinding page cannot send. */
static void test_review_12_3_host_not_rebindable(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "127.0.0.1",    "127.0.0.1:9100", "10.1.2.3:1", "[::1]",
        "[::1]:20241",  "[fe80::1]:8",    "localhost",  "localhost:9100",
        "LocalHost:80", "0.0.0.0:65535",  NULL};
    static const char *const bad[] = {"evil.example",
                                      "evil.example:9100",
                                      "localhost.",
                                      "localhost.:80",
                                      "localhost.evil.example",
                                      "evil.localhost",
                                      "127.0.0.1.nip.io",
                                      "127.1",
                                      "0x7f000001",
                                      "::1",
                                      "[::1",
                                      "[::1]x",
                                      "[::1]:",
                                      "[::1]:123456",
                                      "[127.0.0.1]",
                                      "[localhost]",
                                      "127.0.0.1:",
                                      "127.0.0.1:x",
                                      "127.0.0.1:80:80",
                                      "localhost:-1",
                                      "",
                                      ":80",
                                      "[]:80"};
    for (size_t i = 0; ok[i]; i++)
        if (!rt_httpd_host_not_rebindable(ok[i]))
            fail_msg("refused %s", ok[i]);
    assert_true(rt_httpd_host_not_rebindable(NULL)); /* HTTP/1.0 without Host */
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (rt_httpd_host_not_rebindable(bad[i]))
            fail_msg("accepted %s", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_targets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunked_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_linger_ends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expect_continue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_request_per_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_respond_contract, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admission, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loopback_peers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listen_addresses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_socket_v6, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accept_own_listener, setup, teardown),
        cmocka_unit_test_setup_teardown(test_review_12_2_head_hook_answers_before_the_body, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_review_12_2_early_answer_reads_away_a_bounded_amount,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_review_12_2_head_hook_goes_on_body_sized_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_review_12_2_answer_before_the_body_on_a_socket, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_review_12_3_host_not_rebindable, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
