/* libFuzzer target for rt_httpd (the operator endpoints' HTTP/1.1 server).
 * Input: [mode byte] + what a client sends on one connection, fed in
 * network-sized pieces (seeded from the input) to a memory connection.
 * Mode bit 0: the client is on loopback; bit 1: the client hangs up as soon
 * as it has read the answer (else the loop runs once more first).
 * The handler answers by path (/none gives no answer, /204, /big, else 200
 * with the path echoed); the head hook answers paths starting /early (401
 * with a body and a header line) before any body is read.
 * Properties: no crash or leak; the handler sees a request within the
 * limits (path starting with '/', no '?' in it, no CR/LF in any string,
 * body within max_body and NULL exactly when empty); the head hook sees the
 * same with no body and the announced length within max_body, once per
 * request, before the handler; a request it answered never reaches the
 * handler; what the server writes
 * is nothing, or an optional "100 Continue" then one HTTP/1.1 answer whose
 * body matches its Content-Length; every admitted connection is released. */
#include "fuzz_util.h"
#include "px_err.h"
#include "rt_conn.h"
#include "rt_httpd.h"

#include <string.h>

#define MAX_HEAD 2048
#define MAX_BODY 512

static uv_loop_t loop;
static struct rt_loop rl;
static struct rt_httpd *srv;
static unsigned admitted, released;
static int cur_loopback;
static int heads, requests; /* this run's */

static int clean(const char *s)
{
    return !s || !strpbrk(s, "\r\n");
}

/* The properties every request (head or whole) has. */
static int sane(const struct rt_httpd_req *r)
{
    return r->method && r->method[0] && r->path && r->path[0] == '/' && !strchr(r->path, '?') &&
           !strchr(r->path, '#') && clean(r->query) && clean(r->host) && clean(r->authorization) &&
           clean(r->content_type) && clean(r->accept) && r->body_len <= MAX_BODY && r->peer_ip &&
           r->peer_loopback == cur_loopback && strcmp(r->method, "HEAD") != 0;
}

static void on_head(void *ud, struct rt_httpd_conn *c, const struct rt_httpd_req *r)
{
    (void)ud;
    if (!sane(r) || r->body || heads++ || requests)
        FAIL();
    if (strncmp(r->path, "/early", 6) != 0)
        return;
    static const char b[] = "{\"error\":\"no\"}";
    if (rt_httpd_respond(c, 401, "application/json", "WWW-Authenticate: Bearer\r\n", b,
                         sizeof(b) - 1) != 0)
        FAIL();
}

static void on_request(void *ud, struct rt_httpd_conn *c, const struct rt_httpd_req *r)
{
    (void)ud;
    if (!sane(r) || heads != 1 || requests++ || strncmp(r->path, "/early", 6) == 0)
        FAIL();
    if ((r->body == NULL) != (r->body_len == 0))
        FAIL();
    if (strcmp(r->path, "/none") == 0)
        return; /* the server answers 500 itself */
    int rc;
    if (strcmp(r->path, "/204") == 0) {
        rc = rt_httpd_respond(c, 204, NULL, NULL, NULL, 0);
    } else if (strcmp(r->path, "/big") == 0) {
        static char big[300 * 1024];
        rc = rt_httpd_respond(c, 200, "application/octet-stream", "X-A: b\r\n", big, sizeof(big));
    } else {
        rc = rt_httpd_respond(c, 200, "text/plain", NULL, r->path, strlen(r->path));
    }
    if (rc != 0 || rt_httpd_respond(c, 200, "text/plain", NULL, "", 0) != PX_ERR_INVAL)
        FAIL();
}

static int admit(void *ud, const char *peer_ip, void **tok)
{
    (void)ud;
    (void)peer_ip;
    admitted++;
    *tok = &admitted;
    return 0;
}

static void release(void *ud, void *tok)
{
    (void)ud;
    if (tok != &admitted)
        FAIL();
    released++;
}

static const struct rt_httpd_ops ops = {
    .on_request = on_request, .on_head = on_head, .admit = admit, .release = release};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (uv_loop_init(&loop) != 0 || rt_loop_init(&rl, &loop) != 0)
        abort();
    /* A deadline far away: what a run does must not depend on the clock. */
    struct rt_httpd_limits lim = {
        .max_head = MAX_HEAD, .max_body = MAX_BODY, .deadline_ms = 600000, .max_conns = 4};
    srv = rt_httpd_new(&loop, &lim, &ops, NULL);
    if (!srv)
        abort();
    return 0;
}

static int alive(void)
{
    return released < admitted;
}

/* 1 if out (len bytes) is an optional 100 Continue then one answer whose
 * body is as long as its Content-Length (or empty: HEAD, 204). */
static int one_answer(const char *out, size_t len)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (len >= sizeof(cont) - 1 && memcmp(out, cont, sizeof(cont) - 1) == 0) {
        out += sizeof(cont) - 1;
        len -= sizeof(cont) - 1;
    }
    if (len == 0)
        return 1;
    if (len < 9 || memcmp(out, "HTTP/1.1 ", 9) != 0)
        return 0;
    const char *end = memmem(out, len, "\r\n\r\n", 4);
    if (!end || !memmem(out, (size_t)(end - out), "\r\nConnection: close\r\n", 21))
        return 0;
    size_t body = len - (size_t)(end + 4 - out);
    const char *cl = memmem(out, (size_t)(end - out), "\r\nContent-Length: ", 18);
    if (!cl)
        return body == 0;
    size_t want = strtoul(cl + 18, NULL, 10);
    return body == want || body == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    cur_loopback = mode & 1;
    heads = requests = 0;
    unsigned before = admitted;
    struct rt_conn *c = rt_httpd_new_memory(srv, cur_loopback ? "127.0.0.1" : "192.0.2.7");
    if (!c || admitted != before + 1)
        FAIL();
    uint64_t rnd = fz_hash(data, size);
    struct px_buf seen;
    px_buf_init(&seen);
    for (size_t off = 0; off < size && alive();) {
        size_t n = fz_piece(&rnd, size - off);
        int rc = rt_conn_memory_feed(c, data + off, n);
        off += n;
        uv_run(&loop, UV_RUN_NOWAIT);
        if (rc < 0)
            break;
    }
    uv_run(&loop, UV_RUN_NOWAIT);
    if (alive()) {
        size_t olen = px_buf_len(&c->mem_out);
        if (olen) {
            if (px_buf_append(&seen, px_buf_head(&c->mem_out), olen) < 0)
                abort();
            rt_conn_memory_consume(c, olen);
        }
        if (!(mode & 2)) /* the client stays: the close is the server's */
            uv_run(&loop, UV_RUN_NOWAIT);
        if (alive()) /* waiting for more of the request, or lingering */
            rt_conn_memory_eof(c);
    }
    for (int i = 0; i < 10 && alive(); i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    if (alive())
        FAIL();
    if (!one_answer((const char *)px_buf_head(&seen), px_buf_len(&seen)))
        FAIL();
    px_buf_cleanup(&seen);
    return 0;
}
