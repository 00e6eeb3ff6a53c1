#include "es_front.h"
#include "es_metrics.h"
#include "es_server.h"
#include "px_err.h"
#include "px_hostname.h"
#include "px_log.h"
#include "rt_loop.h"

#include "es_req.h"
#include "es_worker.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The handshake completes whatever the client presents: the request is
 * refused afterwards, with a page that says why (es_req_dispatch). */
static int accept_any_cert(int preverify, WOLFSSL_X509_STORE_CTX *store)
{
    (void)preverify;
    (void)store;
    return 1;
}

/* Picks the certificate for the name the browser asked for, and asks for a
 * client certificate only when an access policy covers that name, so no
 * other site makes a browser show a certificate prompt. */
static int on_sni(WOLFSSL *ssl, int *ad, void *arg)
{
    (void)ad;
    struct es_server *srv = arg;
    const char *name = wolfSSL_get_servername(ssl, WOLFSSL_SNI_HOST_NAME);
    char host[256];
    if (!name || px_host_normalize(name, strlen(name), host, sizeof(host)) < 0)
        snprintf(host, sizeof(host), "localhost");
    if (es_access_policy_for(srv->access, host))
        wolfSSL_set_verify(ssl, WOLFSSL_VERIFY_PEER, accept_any_cert);
    const char *cert = es_certs_for_host(&srv->certs, host);
    if (!cert)
        return 0; /* keep the default certificate */
    if (wolfSSL_use_certificate_chain_buffer(ssl, (const unsigned char *)cert,
                                             (long)strlen(cert)) != WOLFSSL_SUCCESS ||
        wolfSSL_use_PrivateKey_buffer(ssl, (const unsigned char *)srv->certs.browser_key_pem,
                                      (long)strlen(srv->certs.browser_key_pem),
                                      WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS)
        PX_WARN("cannot install the certificate for %s", host);
    return 0;
}

int es_front_ctx_init(struct es_server *srv)
{
    const char *def = es_certs_for_host(&srv->certs, "localhost");
    if (!def)
        return PX_ERR_CRYPTO;
    int rc = px_tls_ctx_server(def, srv->certs.browser_key_pem, NULL, 0, &srv->front_ctx);
    if (rc < 0)
        return rc;
    /* A TLS 1.2 session resumed from a ticket comes without the client's
     * certificate chain (TLS 1.3 tickets and 1.2 session IDs keep it), so a
     * certificate-protected hostname would refuse it: no 1.2 tickets. */
    if (wolfSSL_CTX_NoTicketTLSv12(srv->front_ctx) != WOLFSSL_SUCCESS)
        return PX_ERR_TLS;
    wolfSSL_CTX_set_servername_callback(srv->front_ctx, on_sni);
    wolfSSL_CTX_set_servername_arg(srv->front_ctx, srv);
    return 0;
}

/* ---- deadlines (one timer per connection) ----
 * idle:  no request in progress (the first request counts from the
 *        handshake and gets only the header timeout)
 * head:  a request head started and is not complete (slowloris; in HTTP/2
 *        also a HEADERS block whose CONTINUATION never comes)
 * body:  a request body the client owes: nothing of it is buffered here,
 *        and no byte of it came for the body timeout (WebSockets excepted)
 * The timer is armed for the earliest; activity only moves deadlines later,
 * so when it fires each is checked again before acting. */

static uint64_t now_ms(const struct es_front *f)
{
    return uv_now(f->srv->loop);
}

static int busy(const struct es_front *f)
{
    return f->proto == 2 ? !px_list_empty(&f->reqs) : f->cur != NULL;
}

/* The requests in progress on f, in turn: HTTP/1.1 has one at a time
 * (f->cur), HTTP/2 a list of its streams. NULL after the last. */
static struct es_req *first_req(struct es_front *f)
{
    if (f->proto != 2)
        return f->cur;
    struct px_list_node *n = px_list_first(&f->reqs);
    return n ? px_container_of(n, struct es_req, front_node) : NULL;
}

static struct es_req *next_req(struct es_front *f, struct es_req *r)
{
    if (f->proto != 2 || r->front_node.next == &f->reqs.head)
        return NULL;
    return px_container_of(r->front_node.next, struct es_req, front_node);
}

static int body_owed(const struct es_req *r)
{
    return r->link && !r->link_done && !r->req_eof && !r->is_ws && !r->timed_out &&
           px_buf_len(&r->req_body) == 0;
}

static uint64_t idle_deadline(const struct es_front *f)
{
    unsigned ms = f->srv->idle_timeout_ms;
    if (!f->requests_seen && f->srv->header_timeout_ms && f->srv->header_timeout_ms < ms)
        ms = f->srv->header_timeout_ms;
    return f->idle_since + ms;
}

static void on_deadline(uv_timer_t *t);

static void schedule(struct es_front *f)
{
    if (f->conn.closed || f->conn.closing)
        return;
    /* A timeout of 0 is no deadline (embedders that set none, tests). */
    const struct es_server *srv = f->srv;
    uint64_t next = UINT64_MAX;
    if (f->heads && srv->header_timeout_ms)
        next = f->head_since + srv->header_timeout_ms;
    else if (!f->heads && !busy(f) && srv->idle_timeout_ms)
        next = idle_deadline(f);
    struct es_req *r = srv->body_timeout_ms ? first_req(f) : NULL;
    for (; r; r = next_req(f, r))
        if (body_owed(r) && r->body_seen_ms + srv->body_timeout_ms < next)
            next = r->body_seen_ms + srv->body_timeout_ms;
    if (next == UINT64_MAX) {
        uv_timer_stop(&f->idle);
        return;
    }
    uint64_t now = now_ms(f);
    uv_timer_start(&f->idle, on_deadline, next > now ? next - now : 0, 0);
}

static void on_deadline(uv_timer_t *t)
{
    struct es_front *f = t->data;
    if (f->conn.closed || f->conn.closing)
        return;
    uint64_t now = now_ms(f);
    if (f->heads && f->srv->header_timeout_ms && now >= f->head_since + f->srv->header_timeout_ms) {
        PX_INFO("browser %s: request head not complete within %u s; closing", f->conn.peer_ip,
                f->srv->header_timeout_ms / 1000);
        if (f->proto == 2)
            es_front_h2_timeout(f, NULL);
        else
            es_front_h1_timeout(f, 1);
        return;
    }
    if (!f->heads && !busy(f) && f->srv->idle_timeout_ms && now >= idle_deadline(f)) {
        PX_DEBUG("browser %s: idle for %u ms, closing", f->conn.peer_ip,
                 (unsigned)(now - f->idle_since));
        if (f->proto == 2 && f->h2)
            nghttp2_submit_goaway(f->h2, NGHTTP2_FLAG_NONE,
                                  nghttp2_session_get_last_proc_stream_id(f->h2), NGHTTP2_NO_ERROR,
                                  NULL, 0);
        rt_conn_close(&f->conn, 0);
        return;
    }
    struct es_req *r = first_req(f);
    while (r) {
        struct es_req *next = next_req(f, r);
        if (body_owed(r) && f->srv->body_timeout_ms &&
            now >= r->body_seen_ms + f->srv->body_timeout_ms) {
            PX_INFO("browser %s: no request body byte for %u s (%s %s, request %s); giving up",
                    f->conn.peer_ip, f->srv->body_timeout_ms / 1000, r->method, r->host,
                    r->request_id);
            if (f->proto == 2) {
                es_front_h2_timeout(f, r);
            } else {
                es_front_h1_timeout(f, 0);
                return;
            }
        }
        r = next;
    }
    schedule(f);
}

void es_front_idle_arm(struct es_front *f)
{
    f->idle_since = now_ms(f);
    schedule(f);
}

void es_front_head_begin(struct es_front *f)
{
    if (f->heads++ == 0)
        f->head_since = now_ms(f);
    schedule(f);
}

void es_front_head_end(struct es_front *f)
{
    if (f->heads)
        f->heads--;
    f->requests_seen = 1;
    schedule(f);
}

void es_front_body_seen(struct es_front *f, struct es_req *r)
{
    (void)f;
    r->body_seen_ms = now_ms(f);
}

static int on_open(struct rt_conn *c)
{
    struct es_front *f = c->owner;
    es_front_idle_arm(f);
    /* Requests on this connection are served only for this name (421 else).
     * In memory mode (tests) there is no handshake: the test sets f->sni. */
    const char *name =
        c->use_tls && c->tls.ssl ? wolfSSL_get_servername(c->tls.ssl, WOLFSSL_SNI_HOST_NAME) : NULL;
    if (!name || px_host_normalize(name, strlen(name), f->sni, sizeof(f->sni)) < 0)
        f->sni[0] = '\0';
    if (c->use_tls && c->tls.ssl && es_peer_from_tls(&f->peer, c->tls.ssl) < 0)
        return PX_ERR_NOMEM;
    if (f->srv->worker && f->peer.n) {
        /* Its requests are decided on the home loop, which keeps its own
         * copy (and its caches) of the certificate for as long as f lives. */
        f->home_peer = malloc(sizeof(*f->home_peer));
        if (!f->home_peer)
            return PX_ERR_NOMEM;
        es_peer_init(f->home_peer);
        int rc = es_peer_set_chain(f->home_peer, f->peer.chain, f->peer.n);
        if (rc < 0)
            return rc;
    }
    if (f->peer.n)
        PX_DEBUG("browser %s: client certificate %s (%s) for %s", c->peer_ip, f->peer.leaf.subject,
                 f->peer.leaf.sha256_hex, f->sni[0] ? f->sni : "-");
    const char *alpn = rt_conn_alpn(c);
    f->proto = strcmp(alpn, "h2") == 0 ? 2 : 1;
    es_metrics_browser_open(f->srv->metrics, f->proto == 2); /* closed in on_close */
    return f->proto == 2 ? es_front_h2_start(f) : es_front_h1_start(f);
}

static int on_data(struct rt_conn *c, const uint8_t *data, size_t len)
{
    struct es_front *f = c->owner;
    return f->proto == 2 ? es_front_h2_on_data(f, data, len) : es_front_h1_on_data(f, data, len);
}

static int on_writable(struct rt_conn *c)
{
    struct es_front *f = c->owner;
    if (f->proto == 2)
        return es_front_h2_on_writable(f);
    if (f->proto == 1)
        return es_front_h1_on_writable(f);
    return 0;
}

static void free_front(uv_handle_t *h)
{
    struct es_front *f = h->data;
    struct es_server *srv = f->srv;
    es_peer_cleanup(&f->peer);
    free(f);
    /* The freed heap stays for speed under load (rt_proc_init); once this
     * loop's last browser connection is gone, a burst's buffers (TLS,
     * HTTP/2 sessions, bodies up to the tunnel's stream window) go back, so
     * they do not stack under the next burst's peak. */
    if (srv->fronts.head.next && px_list_empty(&srv->fronts))
        rt_loop_trim_idle(rt_loop_of(srv->loop));
}

static void on_close(struct rt_conn *c, int err)
{
    (void)err;
    struct es_front *f = c->owner;
    uv_timer_stop(&f->idle);
    if (f->srv->worker) {
        /* The home loop admitted it, and keeps the certificate's copy. */
        es_worker_conn_closed(f->srv->worker, f->cap_key, f->home_peer);
        f->cap_key = NULL;
        f->home_peer = NULL;
    } else {
        es_conncap_release(&f->srv->conns, &f->cap_key);
    }
    if (f->proto)
        es_metrics_browser_close(f->srv->metrics, f->proto == 2);
    if (f->proto == 2)
        es_front_h2_on_close(f);
    else if (f->proto == 1)
        es_front_h1_on_close(f);
    else if (c->err_text[0] && c->tls.failure.kind == PX_TLS_FAIL_VERIFY)
        /* The browser port takes any client certificate (accept_any_cert):
         * what fails here is a chain longer than the TLS library keeps
         * (PX_TLS_MAX_CHAIN), worth telling whoever set up that client. */
        PX_INFO("browser connection from %s failed: client %s", c->peer_ip, c->err_text);
    else if (c->err_text[0])
        PX_DEBUG("browser connection from %s failed: %s", c->peer_ip, c->err_text);
    px_list_remove(&f->all_node);
    uv_close((uv_handle_t *)&f->idle, free_front);
}

static const struct rt_conn_ops front_ops = {
    .on_open = on_open, .on_data = on_data, .on_writable = on_writable, .on_close = on_close};

/* srv's browser connections (set up on first use: see es_server.fronts). */
static struct px_list *fronts(struct es_server *srv)
{
    if (!srv->fronts.head.next)
        px_list_init(&srv->fronts);
    return &srv->fronts;
}

static struct es_front *front_new(struct es_server *srv)
{
    struct es_front *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->srv = srv;
    px_list_init(&f->reqs);
    es_peer_init(&f->peer);
    if (rt_conn_init(&f->conn, srv->loop, &front_ops, f) < 0) {
        free(f);
        return NULL;
    }
    uv_timer_init(srv->loop, &f->idle);
    f->idle.data = f;
    px_list_insert_head(fronts(srv), &f->all_node);
    return f;
}

void es_front_accept(struct es_server *srv, uv_stream_t *listener)
{
    if (srv->workers && es_workers_take(srv, listener))
        return; /* another loop's */
    struct es_front *f = front_new(srv);
    if (!f)
        return;
    if (rt_conn_accept(&f->conn, listener, srv->front_ctx, "h2,http/1.1",
                       srv->handshake_timeout_ms) < 0)
        return;
    int rc =
        es_conncap_admit(&srv->conns, f->conn.peer_ip, "browser", uv_now(srv->loop), &f->cap_key);
    if (rc == PX_ERR_DENIED)
        es_metrics_refusal(srv->metrics, ES_REFUSAL_CONNECTION_CAP, es_metrics_now_ms());
    if (rc < 0)
        rt_conn_abort(&f->conn, PX_ERR_DENIED);
}

void es_front_adopt(struct es_server *srv, int fd, char *cap_key)
{
    struct es_front *f = front_new(srv);
    if (!f) {
        close(fd);
        es_worker_conn_closed(srv->worker, cap_key, NULL);
        return;
    }
    f->cap_key = cap_key; /* handed back when it closes (on_close) */
    if (rt_conn_open_fd(&f->conn, fd, srv->front_ctx, 1, NULL, "h2,http/1.1",
                        srv->handshake_timeout_ms) < 0)
        close(fd); /* the handle never took it; f closes on its own */
}

struct es_front *es_front_new_memory(struct es_server *srv, const char *alpn, const char *peer_ip)
{
    struct es_front *f = front_new(srv);
    if (f)
        rt_conn_open_memory(&f->conn, alpn, peer_ip);
    return f;
}

unsigned es_front_count(const struct es_server *srv)
{
    unsigned here = srv->fronts.head.next ? (unsigned)px_list_count(&srv->fronts) : 0;
    return here + es_workers_fronts(srv);
}

/* Ends r, which the connection's certificate no longer allows. */
static void cut_refused(struct es_front *f, struct es_req *r, enum es_access_verdict v)
{
    es_req_front_refused(r, 0, es_refusal_of_verdict(v));
    PX_INFO("access to %s withdrawn from an open %s (%s): %s; cutting it (request %s)", r->host,
            r->is_ws ? "WebSocket or TCP stream" : "request", f->conn.peer_ip,
            es_access_verdict_reason(v), r->request_id);
    if (f->proto == 2)
        es_front_h2_timeout(f, r); /* RST_STREAM; the tunnel stream is cancelled with it */
    else
        rt_conn_abort(&f->conn, 0);
}

void es_front_recheck_access(struct es_server *srv)
{
    es_workers_access_changed(srv); /* they check their own connections */
    struct px_list_node *n, *tmp;
    px_list_for_each_safe (n, tmp, fronts(srv)) {
        struct es_front *f = px_container_of(n, struct es_front, all_node);
        if (f->conn.closed || f->conn.closing)
            continue;
        struct es_req *r = first_req(f);
        while (r) {
            struct es_req *next = next_req(f, r);
            if (r->link && !r->link_done && !r->timed_out && r->host[0]) {
                enum es_access_verdict v = es_peer_verdict(&f->peer, srv->access, r->host, NULL);
                if (v != ES_ACCESS_OPEN && v != ES_ACCESS_ALLOWED) {
                    cut_refused(f, r, v);
                    if (f->proto != 2)
                        break;
                }
            }
            r = next;
        }
    }
}

void es_front_close_all(struct es_server *srv)
{
    es_workers_close_all(srv);
    struct px_list_node *n, *tmp;
    px_list_for_each_safe (n, tmp, fronts(srv))
        rt_conn_close(&px_container_of(n, struct es_front, all_node)->conn, 0);
}

unsigned es_front_drain(struct es_server *srv, int final)
{
    es_workers_drain(srv, final); /* their connections are not counted in told */
    unsigned told = 0;
    struct px_list_node *n, *tmp;
    px_list_for_each_safe (n, tmp, fronts(srv)) {
        struct es_front *f = px_container_of(n, struct es_front, all_node);
        if (f->conn.closed || f->conn.closing)
            continue;
        if (f->proto == 2)
            told += es_front_h2_drain(f, final) == 0;
        else if (!final && !(f->proto == 1 && f->cur))
            rt_conn_close(&f->conn, 0); /* idle, or still in its handshake */
    }
    return told;
}
