#include "es_req.h"
#include "es_access.h"
#include "es_assert.h"
#include "es_fair.h"
#include "es_peer.h"
#include "es_registry.h"
#include "es_relay.h"
#include "es_server.h"
#include "es_worker.h"
#include "px_err.h"
#include "px_errpage.h"
#include "px_headers.h"
#include "px_hostname.h"
#include "px_log.h"
#include "px_nv.h"
#include "px_pki.h"
#include "px_reqid.h"
#include "px_ws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct es_req *es_req_new(struct es_server *srv, const struct es_front_ops *fops, void *front,
                          const char *client_ip, const char *sni)
{
    if (!srv->req_ids.ready) {
        uint8_t seed[8];
        if (px_pki_random(rt_loop_rng(rt_loop_of(srv->loop)), seed, sizeof(seed)) < 0)
            return NULL; /* tried again at the next request */
        px_reqid_init(&srv->req_ids, seed);
    }
    struct es_req *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->srv = srv;
    r->fops = fops;
    r->front = front;
    r->resp_content_length = -1;
    size_t iplen = strnlen(client_ip, sizeof(r->client_ip) - 1);
    memcpy(r->client_ip, client_ip, iplen); /* r is zeroed: NUL-terminated */
    if (sni && strlen(sni) < sizeof(r->sni))
        memcpy(r->sni, sni, strlen(sni) + 1);
    px_nv_init(&r->req_nv, ES_REQ_MAX_FIELDS, 0);
    px_nv_init(&r->resp_nv, ES_REQ_MAX_FIELDS, 0);
    px_buf_init(&r->req_body);
    px_buf_init(&r->resp_body);
    px_reqid_next(&srv->req_ids, r->request_id);
    srv->requests_total++;
    r->start_ns = uv_hrtime();
    return r;
}

void es_req_set_peer(struct es_req *r, struct es_peer *peer)
{
    r->peer = peer;
}

void es_req_set_home_peer(struct es_req *r, struct es_peer *home_peer)
{
    r->home_peer = home_peer;
}

struct es_req *es_req_split(struct es_req *w, int has_body)
{
    struct es_req *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->resp_content_length = -1;
    memcpy(h->method, w->method, sizeof(h->method));
    memcpy(h->host, w->host, sizeof(h->host));
    memcpy(h->sni, w->sni, sizeof(h->sni));
    memcpy(h->request_id, w->request_id, sizeof(h->request_id));
    memcpy(h->client_ip, w->client_ip, sizeof(h->client_ip));
    memcpy(h->ws_key, w->ws_key, sizeof(h->ws_key));
    /* The head moves: the worker's front does not read it. */
    h->req_nv = w->req_nv;
    px_nv_init(&w->req_nv, ES_REQ_MAX_FIELDS, 0);
    h->xff = w->xff;
    h->connection_hdr = w->connection_hdr;
    w->xff = w->connection_hdr = NULL;
    h->req_header_bytes = w->req_header_bytes;
    h->n_host = w->n_host;
    h->bad_request = w->bad_request;
    h->refuse_status = w->refuse_status;
    h->is_head = w->is_head;
    h->is_ws = w->is_ws;
    h->front_proto = w->front_proto;
    h->start_ns = w->start_ns;
    h->has_body = has_body;
    px_nv_init(&h->resp_nv, ES_REQ_MAX_FIELDS, 0);
    px_buf_init(&h->req_body);
    px_buf_init(&h->resp_body);
    return h;
}

void es_req_adopt(struct es_req *h, struct es_server *srv, const struct es_front_ops *fops,
                  void *front, struct es_peer *peer)
{
    h->srv = srv;
    h->fops = fops;
    h->front = front;
    h->peer = peer;
    srv->requests_total++;
}

static int add_header(struct es_req *r, const char *name, size_t nlen, const char *value,
                      size_t vlen)
{
    if (nlen == 9 && strncmp(name, ":protocol", 9) == 0)
        r->is_ws = vlen == 9 && strncasecmp(value, "websocket", 9) == 0;
    if (r->refuse_status)
        return 0; /* already refused: answered at dispatch */
    r->req_header_bytes += px_nv_field_size(nlen, vlen);
    if (r->req_header_bytes > ES_REQ_MAX_HEADER_BYTES) {
        r->refuse_status = 431;
        return 0;
    }
    if (nlen == 5 && strncmp(name, ":path", 5) == 0 && vlen > ES_REQ_MAX_PATH) {
        r->refuse_status = 414;
        return 0;
    }
    if (nlen == 7 && strncasecmp(name, ":method", 7) == 0) {
        if (vlen == 0 || vlen >= sizeof(r->method))
            return -1;
        memcpy(r->method, value, vlen);
        r->method[vlen] = '\0';
        r->is_head = strcmp(r->method, "HEAD") == 0;
    }
    int is_authority = nlen == 10 && strncasecmp(name, ":authority", 10) == 0;
    int is_host = nlen == 4 && strncasecmp(name, "host", 4) == 0;
    if (is_host && r->n_host++ > 0) {
        /* Which one would the origin or a cache in front of it believe? */
        r->bad_request = "the request has more than one Host header";
        return 0;
    }
    if (is_authority || is_host) {
        long existing = px_nv_find(&r->req_nv, ":authority");
        if (existing >= 0 && !is_authority) {
            /* HTTP/2 sends pseudo headers first: this Host came with an
             * :authority, and must name the same thing (RFC 9113 8.3.1). */
            const nghttp2_nv *a = &r->req_nv.nv[existing];
            if (a->valuelen != vlen || strncasecmp((const char *)a->value, value, vlen) != 0)
                r->bad_request = "the request's Host header differs from its :authority";
            return 0;
        }
        if (px_host_normalize(value, vlen, r->host, sizeof(r->host)) < 0)
            return -1;
        if (existing >= 0)
            return px_nv_set_value(&r->req_nv, (size_t)existing, value, vlen);
        return px_nv_add(&r->req_nv, ":authority", 10, value, vlen, 0);
    }
    if (name[0] != ':' && !px_hdr_valid(name, nlen, value, vlen))
        return -1;
    if (nlen == 15 && strncasecmp(name, "x-forwarded-for", 15) == 0) {
        /* Joined here, capped in tunnel_headers; the head's cap bounds it. */
        size_t old = r->xff ? strlen(r->xff) : 0;
        char *x = realloc(r->xff, old + vlen + 3);
        if (!x)
            return -1;
        if (old) {
            memcpy(x + old, ", ", 2);
            old += 2;
        }
        memcpy(x + old, value, vlen);
        x[old + vlen] = '\0';
        r->xff = x;
        return 0;
    }
    if (nlen == 10 && strncasecmp(name, "connection", 10) == 0) {
        free(r->connection_hdr);
        r->connection_hdr = strndup(value, vlen);
        return 0;
    }
    return px_nv_add(&r->req_nv, name, nlen, value, vlen, PX_NV_LOWER);
}

int es_req_add_header(struct es_req *r, const char *name, size_t nlen, const char *value,
                      size_t vlen)
{
    int rc = add_header(r, name, nlen, value, vlen);
    if (rc < 0 && r->refusal == ES_REFUSAL_NONE)
        r->refusal = ES_REFUSAL_BAD_REQUEST; /* the front refuses the request */
    return rc;
}

/* The field of h named name, or NULL. */
static const nghttp2_nv *find_nv(const struct px_nv *h, const char *name)
{
    long i = px_nv_find(h, name);
    return i < 0 ? NULL : &h->nv[i];
}

int es_req_make_websocket(struct es_req *r)
{
    struct px_nv *h = &r->req_nv;
    int ws = 0;
    for (size_t i = 0; i < h->n; i++)
        if (strcmp((char *)h->nv[i].name, "upgrade") == 0 &&
            strcasecmp((char *)h->nv[i].value, "websocket") == 0)
            ws = 1;
    if (!ws || strcmp(r->method, "GET") != 0)
        return 0;
    for (size_t i = 0; i < h->n;) {
        const nghttp2_nv *f = &h->nv[i];
        if (strcmp((const char *)f->name, "sec-websocket-key") == 0) {
            /* A key that is not 16 base64 bytes cannot be answered: 400. */
            char accept[PX_WS_ACCEPT_LEN];
            if (f->valuelen >= sizeof(r->ws_key) ||
                px_ws_accept((const char *)f->value, f->valuelen, accept) < 0)
                return -1;
            memcpy(r->ws_key, f->value, f->valuelen + 1);
            px_nv_remove(h, i);
            continue;
        }
        if (strcmp((const char *)f->name, ":method") == 0 &&
            px_nv_set_value(h, i, "CONNECT", 7) < 0)
            return -1;
        i++;
    }
    snprintf(r->method, sizeof(r->method), "CONNECT");
    r->is_ws = 1;
    return px_nv_add(h, ":protocol", 9, "websocket", 9, 0) < 0 ? -1 : 1;
}

static void set_resp_local(struct es_req *r, int status, const char *ctype, const char *body,
                           size_t len, const char *code)
{
    r->local = 1;
    r->resp_status = status;
    char cl[32];
    snprintf(cl, sizeof(cl), "%zu", len);
    /* Out of memory, the page goes out with what fitted. */
    (void)px_nv_add_str(&r->resp_nv, "content-type", ctype, 0);
    (void)px_nv_add_str(&r->resp_nv, "content-length", cl, 0);
    (void)px_nv_add_str(&r->resp_nv, "cache-control", "no-store", 0);
    if (code)
        (void)px_nv_add_str(&r->resp_nv, "tunnel-error", code, 0);
    r->resp_content_length = (long long)len;
    if (!r->is_head)
        px_buf_append(&r->resp_body, body, len);
    r->resp_headers_done = 1;
    r->resp_eof = 1;
    r->fops->resp_headers(r);
}

void es_req_local_error(struct es_req *r, int status, const char *code, const char *detail)
{
    if (!r->err_code)
        r->err_code = code;
    if (r->resp_headers_done) {
        r->resp_error = 1;
        r->fops->resp_data(r);
        return;
    }
    PX_INFO("%s %s -> %d %s (request %s)", r->method[0] ? r->method : "-",
            r->host[0] ? r->host : "-", status, code ? code : "", r->request_id);
    size_t len;
    char *page = px_errpage_render(status, detail, &len);
    set_resp_local(r, status, "text/html; charset=utf-8", page ? page : "", page ? len : 0, code);
    free(page);
}

const nghttp2_nv *es_req_resp_fields(const struct es_req *r, size_t *n)
{
    *n = r->resp_nv.n;
    return r->resp_nv.nv;
}

void es_req_resp_head_sent(struct es_req *r)
{
    if (!r->resp_headers_done)
        return;
    px_nv_cleanup(&r->resp_nv);
    px_nv_init(&r->resp_nv, ES_REQ_MAX_FIELDS, 0);
    if (r->srv->access_log && !r->log_path) {
        const nghttp2_nv *path = find_nv(&r->req_nv, ":path");
        if (path && !(r->log_path = strndup((const char *)path->value, path->valuelen)))
            return; /* no memory: keep the head, the path is in it */
    }
    px_nv_cleanup(&r->req_nv);
    px_nv_init(&r->req_nv, ES_REQ_MAX_FIELDS, 0);
}

static int push_identity(void *arg, const char *name, const char *value)
{
    return px_nv_add_str(arg, name, value, 0);
}

/* Builds into out (px_nv_init()ed, empty) the head sent over the tunnel:
 * the client's fields minus hop-by-hop ones and anything imitating edge
 * metadata, plus the edge's own: forwarding fields and, when the hostname's
 * policy allowed the client's certificate, its details and the assertion
 * (jwt, else NULL). Returns 0 or < 0 (out of memory, or more than out's
 * field cap); out then holds part of it, for px_nv_cleanup. */
static int tunnel_headers(struct es_req *r, int allowed, const char *jwt, struct px_nv *out)
{
    int ok = 1;
    for (size_t i = 0; i < r->req_nv.n && ok; i++) {
        const nghttp2_nv *h = &r->req_nv.nv[i];
        const char *nm = (const char *)h->name;
        if (nm[0] != ':' &&
            (px_hdr_is_hop_by_hop(nm, h->namelen) || px_hdr_is_edge_metadata(nm, h->namelen) ||
             (h->namelen == 6 && strcmp(nm, "expect") == 0) ||
             (r->connection_hdr &&
              px_hdr_listed_in_connection(r->connection_hdr, strlen(r->connection_hdr), nm,
                                          h->namelen))))
            continue;
        if (nm[0] == ':' && strcmp(nm, ":method") && strcmp(nm, ":path") &&
            strcmp(nm, ":authority") && strcmp(nm, ":protocol"))
            continue; /* :scheme is set below */
        if (h->namelen == 17 && strcmp(nm, "sec-websocket-key") == 0)
            continue; /* HTTP/1.1 only; the connector makes its own */
        ok = px_nv_add(out, nm, h->namelen, (const char *)h->value, h->valuelen, 0) == 0;
    }
    /* The client's address is always the last entry, whatever the client
     * sent; without a client's value it is the whole value (no buffer). */
    struct px_buf xff;
    px_buf_init(&xff);
    int trimmed = 0;
    if (ok && r->xff)
        ok = px_hdr_forwarded_for(r->xff, strlen(r->xff), r->client_ip, PX_XFF_CLIENT_MAX, &xff,
                                  &trimmed) == 0;
    if (trimmed) {
        size_t ip = strlen(r->client_ip), all = px_buf_len(&xff);
        PX_DEBUG("request %s: client's X-Forwarded-For of %zu bytes cut to its last %zu",
                 r->request_id, strlen(r->xff), all > ip ? all - ip - 2 : 0);
    }
    const nghttp2_nv *authority = find_nv(&r->req_nv, ":authority");
    if (ok && authority)
        ok = px_nv_add(out, "x-forwarded-host", 16, (const char *)authority->value,
                       authority->valuelen, 0) == 0;
    if (ok)
        ok = px_nv_add_str(out, ":scheme", "https", 0) == 0 &&
             (r->xff ? px_nv_add(out, "x-forwarded-for", 15, (const char *)px_buf_head(&xff),
                                 px_buf_len(&xff), 0)
                     : px_nv_add_str(out, "x-forwarded-for", r->client_ip, 0)) == 0 &&
             px_nv_add_str(out, "x-forwarded-proto", "https", 0) == 0 &&
             px_nv_add_str(out, "x-real-ip", r->client_ip, 0) == 0 &&
             px_nv_add_str(out, "x-request-id", r->request_id, 0) == 0;
    /* A new value on every request: indexed (HPACK's default), it would only
     * churn the link's header tables at both ends, pushing out fields that
     * do repeat, for no later hit. */
    if (ok)
        out->nv[out->n - 1].flags |= NGHTTP2_NV_FLAG_NO_INDEX;
    px_buf_cleanup(&xff);
    if (ok)
        ok = es_peer_headers(allowed ? r->peer : NULL, push_identity, out) == 0 &&
             (!jwt || push_identity(out, ES_ASSERT_HEADER, jwt) == 0);
    if (!ok)
        return PX_ERR_NOMEM;
    /* HTTP/2 wants pseudo headers first. */
    size_t k = 0;
    for (size_t i = 0; i < out->n; i++) {
        if (out->nv[i].name[0] == ':') {
            nghttp2_nv t = out->nv[k];
            out->nv[k++] = out->nv[i];
            out->nv[i] = t;
        }
    }
    return 0;
}

#define ALLOW "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"

/* A local error the client may retry shortly (429, 503): says when. */
static void local_error_retry(struct es_req *r, enum es_refusal why, int status, const char *code,
                              const char *detail)
{
    r->refusal = why;
    if (px_nv_add_str(&r->resp_nv, "retry-after", "1", 0) < 0) {
        es_req_local_error(r, 500, "internal", "the edge ran out of memory");
        return;
    }
    es_req_local_error(r, status, code, detail);
}

/* Opens r's tunnel stream (head r->req_nv, already the tunnel's) on link l
 * of t, or, when l can open none (it retired itself), on the one pick
 * chooses next. Returns 0 (r is the link's) or PX_ERR_CLOSED. */
static int open_stream(struct es_req *r, struct es_tunnel *t, const struct es_link_ops *lops,
                       void *l)
{
    const nghttp2_nv *nv = r->req_nv.nv;
    size_t n = r->req_nv.n;
    int32_t sid = lops->submit(l, r, nv, n, r->has_body);
    if (sid < 0 && (l = lops->pick(t, r->host)) != NULL)
        sid = lops->submit(l, r, nv, n, r->has_body); /* that one was retired */
    if (sid < 0)
        return PX_ERR_CLOSED;
    r->lops = lops;
    r->link = l;
    r->link_sid = sid;
    r->link_done = 0;
    return 0;
}

/* Answers r locally with an error page, refused for why. */
static void refuse(struct es_req *r, enum es_refusal why, int status, const char *code,
                   const char *detail)
{
    r->refusal = why;
    es_req_local_error(r, status, code, detail);
}

/* 530 for tunnel t, which has no connection here. When another edge
 * sharing the store has one (es_live_remotes, as of the last heartbeat),
 * the answer says where, in its text and in an `edge-sim-tunnel-at` field
 * (that edge's https address), for a client or balancer to go there. */
static void no_connector(struct es_req *r, const struct es_tunnel *t)
{
    struct es_server *srv = r->srv;
    const struct es_live_remote *e = es_live_remote_find(srv->remotes, srv->n_remotes, t->id);
    if (!e) {
        refuse(r, ES_REFUSAL_NO_TUNNEL, 530, "no_connector",
               "the tunnel for this hostname has no connector connected");
        return;
    }
    char at[3 * 302] = "", detail[1100];
    size_t used = 0;
    for (int k = 0; k < 3 && e < srv->remotes + srv->n_remotes && strcmp(e->tunnel_id, t->id) == 0;
         k++, e++) {
        int w = snprintf(at + used, sizeof(at) - used, "%s%s", k ? ", " : "", e->https_addr);
        if (w < 0 || (size_t)w >= sizeof(at) - used)
            break;
        used += (size_t)w;
    }
    int w = snprintf(detail, sizeof(detail),
                     "the tunnel for this hostname has no connector connected at this edge; it "
                     "is connected through another edge (https %s): try there",
                     at);
    if (w < 0 || (size_t)w >= sizeof(detail) ||
        px_nv_add_str(&r->resp_nv, "edge-sim-tunnel-at", at, 0) < 0) {
        refuse(r, ES_REFUSAL_NO_TUNNEL, 530, "no_connector",
               "the tunnel for this hostname has no connector connected");
        return;
    }
    refuse(r, ES_REFUSAL_NO_TUNNEL, 530, "no_connector_here", detail);
}

void es_req_dispatch(struct es_req *r, int has_body)
{
    r->dispatched = 1;
    r->req_eof = !has_body;
    r->body_seen_ms = uv_now(r->srv->loop);
    if (r->srv->worker) {
        /* A worker's loop decides nothing: the home loop does (es_relay.h). */
        r->has_body = has_body;
        if (es_relay_open(r->srv->worker, es_worker_relays(r->srv->worker), r, has_body,
                          r->home_peer) < 0)
            es_req_local_error(r, 500, "internal", "the edge ran out of memory");
        return;
    }
    if (r->refuse_status == 414) {
        refuse(r, ES_REFUSAL_URI_TOO_LONG, 414, "uri_too_long", "the request's path is too long");
        return;
    }
    if (r->refuse_status) {
        refuse(r, ES_REFUSAL_HEADERS_TOO_LARGE, 431, "headers_too_large",
               "the request's header fields are too large");
        return;
    }
    if (r->bad_request) {
        refuse(r, ES_REFUSAL_BAD_REQUEST, 400, "bad_request", r->bad_request);
        return;
    }
    if (strcmp(r->method, "CONNECT") == 0 && !find_nv(&r->req_nv, ":protocol")) {
        /* A plain CONNECT asks the edge to be a forward proxy: it is not one.
         * (Extended CONNECT, with :protocol, carries WebSockets.) */
        if (px_nv_add_str(&r->resp_nv, "allow", ALLOW, 0) < 0) {
            es_req_local_error(r, 500, "internal", "the edge ran out of memory");
            return;
        }
        refuse(r, ES_REFUSAL_METHOD_NOT_ALLOWED, 405, "method_not_allowed",
               "this edge is not a forward proxy: CONNECT is not served");
        return;
    }
    if (!r->method[0] || !r->host[0]) {
        refuse(r, ES_REFUSAL_BAD_REQUEST, 400, "bad_request", "the request has no valid Host");
        return;
    }
    if (strcmp(r->host, r->sni) != 0) {
        /* The TLS handshake chose this connection's certificate (and, with
         * client certificates, its policy) for the SNI name: serve no other
         * name on it. A client without SNI gets this for every host.
         * Browsers retry a 421 on a fresh connection (RFC 9110 15.5.20). */
        refuse(r, ES_REFUSAL_MISDIRECTED, 421, "misdirected_request",
               r->sni[0] ? "this connection was opened for another hostname (TLS "
                           "SNI): open a new connection for this one"
                         : "the connection did not name a hostname (TLS SNI): "
                           "connect again with the hostname");
        return;
    }
    const nghttp2_nv *path = find_nv(&r->req_nv, ":path");
    size_t jl = strlen(ES_ASSERT_JWKS_PATH);
    if (path && r->srv->assert && (strcmp(r->method, "GET") == 0 || r->is_head) &&
        path->valuelen >= jl && memcmp(path->value, ES_ASSERT_JWKS_PATH, jl) == 0 &&
        (path->valuelen == jl || path->value[jl] == '?')) {
        /* The keys that verify assertions, for origins behind any hostname. */
        const char *jwks = es_assert_jwks(r->srv->assert);
        set_resp_local(r, 200, "application/jwk-set+json", jwks, strlen(jwks), NULL);
        return;
    }
    const struct es_access_policy *policy;
    enum es_access_verdict verdict = es_peer_verdict(r->peer, r->srv->access, r->host, &policy);
    const char *jwt = NULL;
    if (verdict != ES_ACCESS_OPEN && verdict != ES_ACCESS_ALLOWED) {
        const char *why = es_access_verdict_reason(verdict);
        const char *subject = r->peer && r->peer->n ? r->peer->leaf.subject : "none";
        PX_INFO("access to %s refused by policy %s: %s (certificate subject %s, request %s)",
                r->host, es_access_policy_pattern(policy), why, subject, r->request_id);
        refuse(r, es_refusal_of_verdict(verdict), 403, "access_denied", why);
        return;
    }
    if (verdict == ES_ACCESS_ALLOWED && r->srv->assert) {
        const char *aud = es_access_policy_audience(policy);
        if (es_peer_assertion(r->peer, r->srv->assert, aud ? aud : r->host, (long long)time(NULL),
                              &jwt) < 0) {
            es_req_local_error(r, 500, "internal",
                               "the edge could not sign the identity assertion");
            return;
        }
    }
    struct es_tunnel *t = es_registry_lookup(&r->srv->reg, r->host);
    if (!t) {
        es_req_local_error(r, 404, "unknown_host", "no tunnel serves this hostname at this edge");
        return;
    }
    size_t nl = strnlen(t->name, sizeof(r->rule) - 1); /* as snprintf "%s" would cut it */
    memcpy(r->rule, t->name, nl);
    r->rule[nl] = '\0';
    /* Without a transport (an embedder that set none) no connector can be
     * connected: the same answer as a tunnel with none. */
    const struct es_link_ops *lops = r->srv->link_ops;
    unsigned n_links = 0;
    unsigned budget = lops ? lops->budget(t, r->host, &n_links) : 0;
    if (n_links == 0) {
        no_connector(r, t);
        return;
    }
    /* Defect 2c: one client may hold only its share of the tunnel's streams,
     * so stalled requests from one client cannot fill the tunnel. */
    r->fair_key = es_fair_key(t->id, r->client_ip);
    int fr = r->fair_key ? es_fair_acquire(&r->srv->fair, r->fair_key, es_fair_share(budget))
                         : PX_ERR_NOMEM;
    if (fr < 0) {
        free(r->fair_key);
        r->fair_key = NULL;
        if (fr == PX_ERR_DENIED) {
            PX_DEBUG("client %s holds its share (%u) of tunnel %s's streams: 429", r->client_ip,
                     es_fair_share(budget), t->name);
            local_error_retry(r, ES_REFUSAL_RATE_LIMITED, 429, "too_many_streams",
                              "this client has too many requests in progress on this tunnel");
        } else {
            es_req_local_error(r, 500, "internal", "the edge ran out of memory");
        }
        return;
    }
    void *l = lops->pick(t, r->host);
    if (!l) {
        local_error_retry(r, ES_REFUSAL_TUNNEL_BUSY, 503, "tunnel_busy",
                          "every connection of this tunnel is carrying as many requests as it can");
        return;
    }
    struct px_nv out;
    px_nv_init(&out, ES_REQ_MAX_FIELDS, 0);
    if (tunnel_headers(r, verdict == ES_ACCESS_ALLOWED, jwt, &out) < 0) {
        px_nv_cleanup(&out);
        es_req_local_error(r, 500, "internal", "the edge ran out of memory");
        return;
    }
    px_nv_cleanup(&r->req_nv);
    r->req_nv = out; /* the client's head is not needed any more */
    r->has_body = has_body;
    if (open_stream(r, t, lops, l) < 0) {
        es_req_local_error(r, 502, "tunnel_error", "the edge could not open a tunnel stream");
        return;
    }
    if (r->is_ws)
        PX_INFO("WebSocket for %s over %s -> tunnel %s stream %d (request %s)", r->host,
                r->front_proto ? r->front_proto : "?", t->name, r->link_sid, r->request_id);
    else
        PX_DEBUG("%s %s -> tunnel %s stream %d (request %s)", r->method, r->host, t->name,
                 r->link_sid, r->request_id);
}

int es_req_body(struct es_req *r, const uint8_t *data, size_t len)
{
    r->body_seen_ms = uv_now(r->srv->loop);
    if (!r->link || r->link_done) {
        r->bytes_in += len;
        /* Nobody will read it: credit the browser and drop it. */
        r->fops->req_consumed(r, len);
        return 0;
    }
    if (px_buf_append(&r->req_body, data, len) < 0)
        return -1;
    r->bytes_in += len;
    r->lops->req_more(r->link, r->link_sid);
    return 0;
}

void es_req_body_end(struct es_req *r)
{
    r->req_eof = 1;
    if (r->link && !r->link_done)
        r->lops->req_more(r->link, r->link_sid);
}

size_t es_req_read_body(struct es_req *r, uint8_t *buf, size_t len, int *eof)
{
    size_t n = px_buf_read(&r->req_body, buf, len);
    if (n)
        r->body_sent = 1; /* gone: the request cannot be sent again */
    if (px_buf_len(&r->req_body) == 0)
        px_buf_shrink(&r->req_body, 0);
    if (n && !r->front_done)
        r->fops->req_consumed(r, n);
    *eof = r->req_eof && px_buf_len(&r->req_body) == 0;
    return n;
}

size_t es_req_resp_pending(const struct es_req *r)
{
    return px_buf_len(&r->resp_body);
}

size_t es_req_take_body(struct es_req *r, uint8_t *out, size_t len)
{
    size_t n = px_buf_read(&r->resp_body, out, len);
    r->bytes_out += n;
    if (n && r->link && !r->link_done)
        r->lops->resp_consumed(r->link, r->link_sid, n);
    if (px_buf_len(&r->resp_body) == 0)
        px_buf_shrink(&r->resp_body, 0);
    return n;
}

/* Gives back the client's share of the tunnel's streams, once. */
static void fair_release(struct es_req *r)
{
    if (!r->fair_key)
        return;
    es_fair_release(&r->srv->fair, r->fair_key);
    free(r->fair_key);
    r->fair_key = NULL;
}

static void req_free(struct es_req *r)
{
    fair_release(r);
    px_nv_cleanup(&r->req_nv);
    px_nv_cleanup(&r->resp_nv);
    free(r->log_path);
    free(r->xff);
    free(r->connection_hdr);
    px_buf_cleanup(&r->req_body);
    px_buf_cleanup(&r->resp_body);
    free(r);
}

void es_req_front_refused(struct es_req *r, int status, enum es_refusal why)
{
    r->front_status = status;
    if (why != ES_REFUSAL_NONE)
        r->refusal = why;
}

/* The status the browser got for r: 0 when none went out. */
static int sent_status(const struct es_req *r)
{
    if (r->front_status)
        return r->front_status;
    if (!r->resp_headers_done)
        return 0;
    /* An HTTP/1.1 WebSocket the tunnel accepted went out as 101. */
    if (r->is_ws && !r->local && r->resp_status == 200 && r->front_proto &&
        strcmp(r->front_proto, "HTTP/1.1") == 0)
        return 101;
    return r->resp_status;
}

/* r's end as the browser saw it: its access line and its metrics. */
static void req_account(struct es_req *r)
{
    struct es_server *srv = r->srv;
    if (r->relay || (!srv->access_log && !srv->metrics))
        return; /* a relayed request: the home loop's copy accounts for it */
    if (!r->dispatched && !r->front_status && r->refusal == ES_REFUSAL_NONE)
        return; /* the client went away mid-head: no request to speak of */
    enum es_refusal why = r->refusal;
    if (why == ES_REFUSAL_NONE && r->timed_out)
        why = ES_REFUSAL_TIMEOUT;
    int status = sent_status(r);
    double duration = (double)(uv_hrtime() - r->start_ns) / 1e9;
    if (srv->access_log) {
        const nghttp2_nv *path = find_nv(&r->req_nv, ":path");
        struct px_access_entry e = {
            .hostname = r->host[0] ? r->host : NULL,
            .method = r->method[0] ? r->method : NULL,
            .path = r->log_path ? r->log_path
                    : path      ? (const char *)path->value
                                : NULL,
            .status = status,
            .bytes_in = r->bytes_in,
            .bytes_out = r->bytes_out,
            .duration_s = duration,
            .request_id = r->request_id,
            .client = r->client_ip[0] ? r->client_ip : NULL,
            .rule = r->rule[0] ? r->rule : "-",
        };
        px_log_access(&e);
    }
    if (srv->metrics) {
        struct es_metrics_request q = {
            .route = r->host[0] ? es_registry_route_pattern(&srv->reg, r->host) : NULL,
            .host = r->host,
            .status = status,
            .refusal = why,
            .reason = r->err_code,
            .cut = r->resp_error,
            .bytes_in = r->bytes_in,
            .bytes_out = r->bytes_out,
            .duration_s = duration,
            .request_id = r->request_id,
        };
        es_metrics_request(srv->metrics, &q, es_metrics_now_ms());
    }
}

void es_req_front_done(struct es_req *r)
{
    if (r->front_done)
        return;
    req_account(r);
    if (r->relay)
        es_relay_front_done(r); /* the home loop's copy lets go too */
    r->front_done = 1;
    r->front = NULL;
    r->peer = NULL; /* the connection's, going with it */
    if (r->link && !r->link_done) {
        /* Nobody will take what is buffered: give the credit back first. */
        if (px_buf_len(&r->resp_body))
            r->lops->resp_consumed(r->link, r->link_sid, px_buf_len(&r->resp_body));
        px_buf_consume(&r->resp_body, px_buf_len(&r->resp_body));
        r->lops->cancel(r->link, r->link_sid);
        return; /* freed when the tunnel stream closes */
    }
    req_free(r);
}

int es_req_resp_header(struct es_req *r, const uint8_t *name, size_t nlen, const uint8_t *value,
                       size_t vlen)
{
    const char *n = (const char *)name;
    if (r->resp_headers_done)
        return 0; /* the front may still be reading resp_nv */
    if (nlen == 7 && memcmp(n, ":status", 7) == 0) {
        int st = 0;
        for (size_t i = 0; i < vlen && i < 3; i++)
            st = st * 10 + (value[i] - '0');
        /* A new head starts: forget what came with an interim one before it. */
        px_nv_clear(&r->resp_nv);
        r->resp_header_bytes = 0;
        r->resp_content_length = -1;
        r->resp_status = st;
        return 0;
    }
    r->resp_header_bytes += px_nv_field_size(nlen, vlen);
    if (r->resp_header_bytes > ES_REQ_MAX_HEADER_BYTES) {
        if (r->front_done)
            return -1;
        /* Nothing of this head reaches the browser: answer for it. */
        px_nv_clear(&r->resp_nv);
        r->resp_content_length = -1;
        es_req_local_error(r, 502, "response_headers_too_large",
                           "the origin's response headers are larger than 64 KiB");
        return -1;
    }
    if (n[0] == ':' || px_hdr_is_hop_by_hop(n, nlen))
        return 0;
    if (nlen == 14 && memcmp(n, "content-length", 14) == 0) {
        char buf[24];
        size_t l = vlen < sizeof(buf) - 1 ? vlen : sizeof(buf) - 1;
        memcpy(buf, value, l);
        buf[l] = '\0';
        r->resp_content_length = strtoll(buf, NULL, 10);
    }
    return px_nv_add(&r->resp_nv, n, nlen, (const char *)value, vlen, 0);
}

void es_req_resp_headers_done(struct es_req *r)
{
    if (r->resp_status >= 100 && r->resp_status < 200)
        return; /* interim */
    if (r->front_done || r->resp_headers_done)
        return;
    r->resp_headers_done = 1;
    if (r->is_head || r->resp_status == 204 || r->resp_status == 304)
        r->resp_content_length = r->resp_content_length < 0 ? 0 : r->resp_content_length;
    r->fops->resp_headers(r);
}

void es_req_resp_body(struct es_req *r, const uint8_t *data, size_t len)
{
    if (r->front_done) {
        r->lops->resp_consumed(r->link, r->link_sid, len);
        return;
    }
    if (px_buf_append(&r->resp_body, data, len) < 0) {
        r->resp_error = 1;
        r->lops->cancel(r->link, r->link_sid);
    }
    r->fops->resp_data(r);
}

void es_req_resp_end(struct es_req *r)
{
    r->resp_eof = 1;
    if (!r->front_done)
        r->fops->resp_data(r);
}

/* r's stream was refused (err REFUSED_STREAM: the connector did not
 * process it, RFC 9113 8.7), nothing of the response came and no body byte
 * left: it is sent again on a link of its tunnel, at most ES_REQ_RETRIES
 * times. Returns 1 if r is a link's again. Called with r let go by its link;
 * keeps the client's share of the tunnel's streams (r->fair_key) held. */
static int retry_refused(struct es_req *r, uint32_t err)
{
    if (err != NGHTTP2_REFUSED_STREAM || r->front_done || r->retries >= ES_REQ_RETRIES ||
        r->resp_status || r->resp_headers_done || px_buf_len(&r->resp_body) || r->body_sent ||
        r->local || !r->lops)
        return 0;
    struct es_tunnel *t = es_registry_lookup(&r->srv->reg, r->host);
    void *l = t ? r->lops->pick(t, r->host) : NULL;
    r->retries++;
    if (!l || open_stream(r, t, r->lops, l) < 0) {
        PX_INFO("request %s: tunnel stream refused, and no other connection could take it",
                r->request_id);
        return 0;
    }
    PX_INFO("request %s: tunnel stream refused; sent again as stream %d (retry %d)", r->request_id,
            r->link_sid, r->retries);
    return 1;
}

void es_req_link_done(struct es_req *r, uint32_t err)
{
    r->link_done = 1;
    r->link = NULL;
    if (retry_refused(r, err))
        return;
    fair_release(r);
    if (r->front_done) {
        req_free(r);
        return;
    }
    if (!r->resp_eof) {
        if (!r->resp_headers_done) {
            es_req_local_error(r, 502, "tunnel_reset",
                               err ? "the tunnel stream was reset before the origin answered"
                                   : "the tunnel closed before the origin answered");
            return;
        }
        r->resp_error = 1;
        r->fops->resp_data(r);
    }
}
