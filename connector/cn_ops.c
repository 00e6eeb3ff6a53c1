/* cn_ops: the operator endpoints on rt_httpd. */
#include "cn_ops.h"
#include "cn_metrics.h"
#include "px_buf.h"
#include "px_json.h"
#include "px_metrics.h"
#include "rt_httpd.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct cn_ops {
    struct rt_httpd *httpd;
    struct cn_metrics *metrics;
    struct cn_ops_source src;
};

/* Requests are a path and a few fields: small caps, few at once. */
static const struct rt_httpd_limits limits = {
    .max_head = 8 * 1024,
    .max_body = 1024,
    .deadline_ms = 5000,
    .max_conns = 16,
};

static void answer_text(struct rt_httpd_conn *c, int status, const char *text)
{
    rt_httpd_respond(c, status, "text/plain; charset=utf-8", NULL, text, strlen(text));
}

static void serve_metrics(struct cn_ops *o, struct rt_httpd_conn *c)
{
    struct px_buf b;
    px_buf_init(&b);
    if (cn_metrics_render(o->metrics, &b) < 0)
        answer_text(c, 500, "out of memory\n");
    else
        rt_httpd_respond(c, 200, PX_METRICS_CONTENT_TYPE, NULL, px_buf_head(&b), px_buf_len(&b));
    px_buf_cleanup(&b);
}

static void serve_ready(struct cn_ops *o, struct rt_httpd_conn *c)
{
    unsigned n = o->src.connections ? o->src.connections(o->src.arg) : 0;
    json_t *j = json_pack("{s:s, s:I, s:s}", "status", n ? "ready" : "not_ready", "connections",
                          (json_int_t)n, "tunnel_id", o->src.tunnel_id ? o->src.tunnel_id : "");
    /* px_json_dumps: jansson's own drops a key it cannot write. */
    char *text = j ? px_json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text) {
        answer_text(c, 500, "out of memory\n");
        return;
    }
    rt_httpd_respond(c, n ? 200 : 503, "application/json", NULL, text, strlen(text));
    free(text);
}

static void on_request(void *ud, struct rt_httpd_conn *c, const struct rt_httpd_req *req)
{
    struct cn_ops *o = ud;
    enum { NONE, METRICS, READY, HEALTH } what = NONE;
    if (strcmp(req->path, "/metrics") == 0)
        what = METRICS;
    else if (strcmp(req->path, "/ready") == 0)
        what = READY;
    else if (strcmp(req->path, "/healthcheck") == 0)
        what = HEALTH;
    if (what == NONE) {
        answer_text(c, 404, "not found: try /metrics, /ready or /healthcheck\n");
        return;
    }
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        rt_httpd_respond(c, 405, "text/plain; charset=utf-8", "Allow: GET, HEAD\r\n",
                         "method not allowed\n", 19);
        return;
    }
    /* A browser on this machine is a loopback peer too: a page whose name
     * its attacker re-points at 127.0.0.1 (DNS rebinding) could read these,
     * but its requests carry that name as Host. Peers elsewhere reach the
     * listener only when the operator bound it to a routable address, and
     * may scrape it by any name. */
    if (what != HEALTH && req->peer_loopback && !rt_httpd_host_not_rebindable(req->host)) {
        answer_text(c, 421,
                    "from loopback, /metrics and /ready answer only Host: localhost or an IP "
                    "address (a guard against DNS rebinding); use http://127.0.0.1:PORT/\n");
        return;
    }
    switch (what) {
    case METRICS:
        serve_metrics(o, c);
        return;
    case READY:
        serve_ready(o, c);
        return;
    case HEALTH:
    case NONE:
        answer_text(c, 200, "ok\n");
        return;
    }
}

/* No endpoint takes a body: every request is answered from its head, so
 * none is ever read (on_request stays for the contract's sake). */
static const struct rt_httpd_ops httpd_ops = {.on_request = on_request, .on_head = on_request};

struct cn_ops *cn_ops_new(uv_loop_t *loop, struct cn_metrics *m, const struct cn_ops_source *src)
{
    struct cn_ops *o = calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    o->metrics = m;
    o->src = *src;
    o->httpd = rt_httpd_new(loop, &limits, &httpd_ops, o);
    if (!o->httpd) {
        free(o);
        return NULL;
    }
    return o;
}

int cn_ops_listen(struct cn_ops *o, const char *addr, char *bound, size_t bound_len)
{
    return rt_httpd_listen(o->httpd, addr, bound, bound_len);
}

struct rt_httpd *cn_ops_httpd(struct cn_ops *o)
{
    return o->httpd;
}

void cn_ops_free(struct cn_ops *o)
{
    if (!o)
        return;
    rt_httpd_free(o->httpd);
    free(o);
}
