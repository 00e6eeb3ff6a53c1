#include "cn_enroll.h"
#include "px_enroll.h"
#include "px_err.h"
#include "px_pki.h"
#include "px_token.h"
#include "rt_conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cn_enroll {
    struct rt_conn conn;
    WOLFSSL_CTX *ctx;
    char server_name[256];
    char *request; /* the line to send */
    int sent;
    struct px_buf in;
    int done;
    cn_enroll_cb cb;
    void *arg;
    char why[300];
    int permanent;
    char *cert;
    char *origin_ca;
};

static void finish(struct cn_enroll *e, const char *cert, const char *origin_ca, int permanent,
                   const char *why)
{
    if (e->done)
        return;
    e->done = 1;
    if (cert)
        e->cert = strdup(cert);
    if (cert && origin_ca)
        e->origin_ca = strdup(origin_ca); /* lost on no memory: the link sends it again */
    e->permanent = permanent;
    snprintf(e->why, sizeof(e->why), "%s", why ? why : "");
}

static int on_open(struct rt_conn *c)
{
    struct cn_enroll *e = c->owner;
    if (strcmp(px_tls_alpn(&c->tls), PX_ENROLL_ALPN) != 0) {
        finish(e, NULL, NULL, 0, "the edge does not support enrolment");
        return -1;
    }
    rt_conn_want_write(c);
    return 0;
}

static int on_writable(struct rt_conn *c)
{
    struct cn_enroll *e = c->owner;
    if (e->sent)
        return 0;
    e->sent = 1;
    return rt_conn_write(c, e->request, strlen(e->request));
}

static int on_data(struct rt_conn *c, const uint8_t *data, size_t len)
{
    struct cn_enroll *e = c->owner;
    if (px_buf_append(&e->in, data, len) < 0 || px_buf_len(&e->in) > PX_ENROLL_MAX_LINE) {
        finish(e, NULL, NULL, 0, "enrolment answer too large");
        return -1;
    }
    const char *head = (const char *)px_buf_head(&e->in);
    const char *nl = memchr(head, '\n', px_buf_len(&e->in));
    if (!nl)
        return 0;
    struct px_enroll_resp r;
    if (px_enroll_resp_decode(head, (size_t)(nl - head), &r) < 0) {
        finish(e, NULL, NULL, 0, "malformed enrolment answer from the edge");
        return -1;
    }
    if (r.ok) {
        finish(e, r.cert_pem, r.origin_ca, 0, NULL);
    } else {
        char why[300];
        snprintf(why, sizeof(why), "%s (%s)", r.message ? r.message : "enrolment refused", r.code);
        finish(e, NULL, NULL, px_enroll_code_permanent(r.code), why);
    }
    px_enroll_resp_cleanup(&r);
    return -1; /* one exchange per connection */
}

static void on_close(struct rt_conn *c, int err)
{
    struct cn_enroll *e = c->owner;
    if (!e->done) {
        char why[300];
        snprintf(why, sizeof(why), "enrolment with the edge failed: %s",
                 c->err_text[0] ? c->err_text : px_strerror(err));
        finish(e, NULL, NULL, 0, why);
    }
    e->cb(e->arg, e->cert ? 0 : -1, e->cert, e->cert ? e->origin_ca : NULL, e->permanent, e->why);
    free(e->cert);
    free(e->origin_ca);
    free(e->request);
    px_buf_cleanup(&e->in);
    free(e);
}

static const struct rt_conn_ops ops = {
    .on_open = on_open, .on_data = on_data, .on_writable = on_writable, .on_close = on_close};

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct cn_enroll *e = req->data;
    free(req);
    if (status < 0 || !res) {
        finish(e, NULL, NULL, 0, "cannot resolve the edge address");
        if (res)
            uv_freeaddrinfo(res);
        rt_conn_abort(&e->conn, PX_ERR_IO);
        return;
    }
    rt_conn_connect(&e->conn, res->ai_addr, e->ctx, e->server_name, PX_ENROLL_ALPN, 10000);
    uv_freeaddrinfo(res);
}

int cn_enroll_start(uv_loop_t *loop, WOLFSSL_CTX *ctx, const char *addr, const char *server_name,
                    const char *tunnel_id, const uint8_t secret[32], const char *key_pem,
                    cn_enroll_cb cb, void *arg)
{
    char host[256], port[16];
    int p;
    if (px_split_hostport(addr, host, sizeof(host), &p) < 0)
        return PX_ERR_INVAL;
    snprintf(port, sizeof(port), "%d", p);
    struct cn_enroll *e = calloc(1, sizeof(*e));
    if (!e)
        return PX_ERR_NOMEM;
    struct px_enroll_req req = {0};
    memcpy(req.tunnel_id, tunnel_id, 33);
    memcpy(req.secret, secret, 32);
    int rc = px_pki_pubkey(key_pem, &req.public_key_pem);
    if (rc < 0) {
        free(e);
        return rc;
    }
    e->request = px_enroll_req_encode(&req);
    memset(req.secret, 0, sizeof(req.secret));
    px_enroll_req_cleanup(&req);
    if (!e->request) {
        free(e);
        return PX_ERR_NOMEM;
    }
    e->ctx = ctx;
    e->cb = cb;
    e->arg = arg;
    snprintf(e->server_name, sizeof(e->server_name), "%s", server_name);
    px_buf_init(&e->in);
    if (rt_conn_init(&e->conn, loop, &ops, e) < 0) {
        free(e->request);
        free(e);
        return PX_ERR_NOMEM;
    }
    uv_getaddrinfo_t *gr = malloc(sizeof(*gr));
    if (!gr) {
        finish(e, NULL, NULL, 0, "out of memory");
        rt_conn_abort(&e->conn, PX_ERR_NOMEM);
        return 0;
    }
    gr->data = e;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    if (uv_getaddrinfo(loop, gr, on_resolved, host, port, &hints) < 0) {
        free(gr);
        finish(e, NULL, NULL, 0, "cannot resolve the edge address");
        rt_conn_abort(&e->conn, PX_ERR_IO);
    }
    return 0;
}
