#include "es_admin.h"
#include "es_admin_api.h"
#include "es_admin_token.h"
#include "es_assert.h"
#include "es_link.h"
#include "es_metrics.h"
#include "es_server.h"
#include "es_status_page.h"
#include "px_buf.h"
#include "px_err.h"
#include "px_log.h"
#include "px_metrics.h"
#include "rt_conn.h"
#include "rt_httpd.h"
#include "rt_loop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct es_admin {
    struct es_server *srv;
    struct rt_httpd *httpd;
    char token[ES_ADMIN_TOKEN_MAX + 1];
    char *page_headers; /* the status page's CSP and friends */
    long long since;    /* when serve started, unix seconds */
};

#define JSON_TYPE "application/json"
#define TEXT_TYPE "text/plain; charset=utf-8"

static void respond_text(struct rt_httpd_conn *c, int status, const char *headers, const char *body)
{
    rt_httpd_respond(c, status, TEXT_TYPE, headers, body, strlen(body));
}

static void respond_json(struct rt_httpd_conn *c, int status, const char *headers, const char *body)
{
    rt_httpd_respond(c, status, JSON_TYPE, headers, body, strlen(body));
}

static void unauthorized(struct rt_httpd_conn *c, const struct rt_httpd_req *req)
{
    /* Who and where, never what was presented. */
    PX_DEBUG("admin: %s %s from %s refused: %s", req->method, req->path, req->peer_ip,
             req->authorization ? "wrong token" : "no token");
    /* RFC 6750 3.1: a token that was sent and refused is "invalid_token". */
    respond_json(
        c, 401,
        req->authorization
            ? "WWW-Authenticate: Bearer realm=\"edge-sim admin\", error=\"invalid_token\"\r\n"
            : "WWW-Authenticate: Bearer realm=\"edge-sim admin\"\r\n",
        req->authorization
            ? "{\"error\":\"the admin token was refused\"}\n"
            : "{\"error\":\"the admin API needs Authorization: Bearer <token> (edge-sim "
              "admin token prints it)\"}\n");
}

static unsigned tunnel_count(const struct es_server *srv)
{
    unsigned n = 0;
    for (const struct es_tunnel *t = srv->reg.tunnels; t; t = t->next)
        n += !t->deleted;
    return n;
}

static void ready(struct es_admin *a, struct rt_httpd_conn *c)
{
    struct es_server *srv = a->srv;
    char body[128];
    if (srv->drain_phase != 0 || !srv->listening) {
        snprintf(body, sizeof(body), "{\"status\":\"%s\"}\n",
                 srv->drain_phase ? "draining" : "starting");
        respond_json(c, 503, NULL, body);
        return;
    }
    snprintf(body, sizeof(body), "{\"status\":\"ready\",\"tunnels\":%u,\"links\":%u}\n",
             tunnel_count(srv), es_link_count(srv));
    respond_json(c, 200, NULL, body);
}

static void metrics(struct es_admin *a, struct rt_httpd_conn *c)
{
    struct px_buf b;
    px_buf_init(&b);
    if (es_metrics_render(a->srv->metrics, a->srv, &b) < 0) /* never a partial text */
        respond_text(c, 500, NULL, "out of memory\n");
    else
        rt_httpd_respond(c, 200, PX_METRICS_CONTENT_TYPE, NULL, px_buf_head(&b), px_buf_len(&b));
    px_buf_cleanup(&b);
}

static void api(struct es_admin *a, struct rt_httpd_conn *c, const struct rt_httpd_req *req)
{
    struct es_admin_api_req ar = {.method = req->method,
                                  .path = req->path,
                                  .body = req->body,
                                  .body_len = req->body_len,
                                  .since = a->since};
    struct es_admin_answer ans;
    es_admin_api(a->srv, &ar, &ans);
    if (!ans.body) { /* out of memory, or the database failed a read */
        respond_json(c, 500, NULL, "{\"error\":\"internal error\"}\n");
        return;
    }
    char allow[64];
    if (ans.allow)
        snprintf(allow, sizeof(allow), "Allow: %s\r\n", ans.allow);
    respond_json(c, ans.status, ans.allow ? allow : NULL, ans.body);
    /* Answers may carry tokens and keys: nothing of them stays behind. */
    memset(ans.body, 0, strlen(ans.body));
    free(ans.body);
}

/* Loopback lets /metrics and /ready in without the token, but a browser
 * on this machine is also a loopback peer: a page whose name an attacker
 * re-points at 127.0.0.1 (DNS rebinding) could read them. Its requests
 * carry that name as Host, so without the token only a Host that names the
 * listener by address or as localhost is served. */
static void misdirected(struct rt_httpd_conn *c, const struct rt_httpd_req *req)
{
    PX_DEBUG("admin: %s %s from %s refused: Host is a name other than localhost", req->method,
             req->path, req->peer_ip);
    respond_json(c, 421, NULL,
                 "{\"error\":\"without the admin token, /metrics and /ready answer loopback "
                 "requests only for Host: localhost or an IP address (a guard against DNS "
                 "rebinding); use http://127.0.0.1:PORT/ or send Authorization: Bearer "
                 "<token>\"}\n");
}

/* Everything outside /api/: none of it takes a body. */
static void open_endpoints(struct es_admin *a, struct rt_httpd_conn *c,
                           const struct rt_httpd_req *req)
{
    const char *p = req->path;
    int healthz = !strcmp(p, "/healthz") || !strcmp(p, "/healthcheck");
    int gated = !strcmp(p, "/ready") || !strcmp(p, "/metrics");
    int known = healthz || gated || !strcmp(p, "/") || !strcmp(p, "/.well-known/jwks.json");
    if (!known) {
        respond_text(c, 404, NULL, "not found\n");
        return;
    }
    if (strcmp(req->method, "GET") != 0) {
        respond_text(c, 405, "Allow: GET, HEAD\r\n", "method not allowed\n");
        return;
    }
    if (gated && !es_admin_token_check(a->token, req->authorization)) {
        if (!req->peer_loopback) {
            unauthorized(c, req);
            return;
        }
        if (!rt_httpd_host_not_rebindable(req->host)) {
            misdirected(c, req);
            return;
        }
    }
    if (healthz) {
        respond_text(c, 200, NULL, "ok\n");
    } else if (!strcmp(p, "/ready")) {
        ready(a, c);
    } else if (!strcmp(p, "/metrics")) {
        metrics(a, c);
    } else if (!strcmp(p, "/")) {
        size_t len;
        const char *html = es_status_page_html(&len);
        rt_httpd_respond(c, 200, "text/html; charset=utf-8", a->page_headers, html, len);
    } else if (a->srv->assert) {
        /* The keys that verify the edge's identity assertions. */
        const char *jwks = es_assert_jwks(a->srv->assert);
        rt_httpd_respond(c, 200, "application/jwk-set+json", NULL, jwks, strlen(jwks));
    } else {
        respond_text(c, 404, NULL, "not found\n");
    }
}

static int is_api(const char *p)
{
    return strncmp(p, "/api/", 5) == 0 || strcmp(p, "/api") == 0;
}

/* The head, before any body is read: everything but an API call that
 * carries the token is answered here, so no one without the token can make
 * the listener hold a body (up to ES_ADMIN_MAX_BODY each) or send them a
 * "100 Continue". */
static void on_head(void *ud, struct rt_httpd_conn *c, const struct rt_httpd_req *head)
{
    struct es_admin *a = ud;
    if (!is_api(head->path))
        open_endpoints(a, c, head);
    else if (!es_admin_token_check(a->token, head->authorization))
        unauthorized(c, head);
    /* else: the body is read, then on_request */
}

static void on_request(void *ud, struct rt_httpd_conn *c, const struct rt_httpd_req *req)
{
    struct es_admin *a = ud;
    const char *p = req->path;
    if (!is_api(p)) /* (answered from the head already) */
        open_endpoints(a, c, req);
    else if (!es_admin_token_check(a->token, req->authorization))
        unauthorized(c, req);
    else if (p[4] != '/' || !p[5])
        respond_json(c, 404, NULL, "{\"error\":\"no such path\"}\n");
    else
        api(a, c, req);
}

/* Admin connections count against the server's connection caps. A server
 * whose caps were never set (an in-memory harness) admits them all. */
static int admit(void *ud, const char *peer_ip, void **tok)
{
    struct es_admin *a = ud;
    struct es_server *srv = a->srv;
    char *key = NULL;
    *tok = NULL;
    if (!srv->conns.max_total)
        return 0;
    int rc = es_conncap_admit(&srv->conns, peer_ip, "admin", uv_now(srv->loop), &key);
    *tok = key;
    return rc;
}

static void release(void *ud, void *tok)
{
    struct es_admin *a = ud;
    char *key = tok;
    es_conncap_release(&a->srv->conns, &key);
}

static const struct rt_httpd_ops ops = {
    .on_request = on_request, .on_head = on_head, .admit = admit, .release = release};

int es_admin_start(struct es_server *srv)
{
    char why[1024];
    int created = 0;
    if (!srv->data_dir[0]) {
        PX_ERROR("admin API: no data dir for its token");
        return PX_ERR_INVAL;
    }
    struct es_admin *a = calloc(1, sizeof(*a));
    if (!a || !(a->page_headers = es_status_page_headers())) {
        PX_ERROR("out of memory");
        free(a);
        return PX_ERR_NOMEM;
    }
    a->srv = srv;
    a->since = (long long)time(NULL);
    int rc = es_admin_token_load(srv->data_dir, rt_loop_rng(rt_loop_of(srv->loop)), 1, a->token,
                                 &created, why, sizeof(why));
    if (rc < 0) {
        PX_ERROR("admin API: %s", why);
        goto fail;
    }
    if (created)
        PX_INFO("admin API: made a new bearer token in %s/%s (edge-sim admin token prints it)",
                srv->data_dir, ES_ADMIN_TOKEN_FILE);
    struct rt_httpd_limits lim = {.max_body = ES_ADMIN_MAX_BODY};
    a->httpd = rt_httpd_new(srv->loop, &lim, &ops, a);
    if (!a->httpd) {
        rc = PX_ERR_NOMEM;
        PX_ERROR("out of memory");
        goto fail;
    }
    srv->admin = a;
    return 0;
fail:
    memset(a->token, 0, sizeof(a->token));
    free(a->page_headers);
    free(a);
    return rc;
}

void es_admin_stop(struct es_server *srv)
{
    struct es_admin *a = srv->admin;
    if (!a)
        return;
    srv->admin = NULL;
    rt_httpd_free(a->httpd);
    memset(a->token, 0, sizeof(a->token));
    free(a->page_headers);
    free(a);
}

void es_admin_accept(struct es_server *srv, uv_stream_t *listener)
{
    if (srv->admin)
        rt_httpd_accept(srv->admin->httpd, listener);
}

struct rt_conn *es_admin_new_memory(struct es_server *srv, const char *peer_ip)
{
    return srv->admin ? rt_httpd_new_memory(srv->admin->httpd, peer_ip) : NULL;
}
