#include "cn_link.h"
#include "cn_assert.h"
#include "cn_metrics.h"
#include "cn_stream.h"
#include "px_err.h"
#include "px_log.h"
#include "px_tls.h"
#include "px_token.h"
#include "px_version.h"
#include "rt_h2.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Notes the first cause (and its words for the log) of the close. */
static void set_cause(struct cn_link *l, enum cn_link_cause cause, const char *reason)
{
    if (l->cause != CN_LINK_OPEN)
        return;
    l->cause = cause;
    snprintf(l->close_reason, sizeof(l->close_reason), "%s", reason);
}

static void link_fail(struct cn_link *l, enum cn_link_cause cause, const char *reason)
{
    set_cause(l, cause, reason);
    rt_conn_close(&l->conn, PX_ERR_CLOSED);
}

enum cn_link_cause cn_link_close_cause(const struct cn_link *l)
{
    return l->cause;
}

const struct px_tls_failure *cn_link_tls_failure(const struct cn_link *l)
{
    return &l->tls_failure;
}

const char *cn_link_close_reason(const struct cn_link *l)
{
    return l->close_reason[0] ? l->close_reason : "open";
}

static void kick(struct cn_link *l)
{
    rt_conn_want_write(&l->conn);
}

/* Closes a draining link that became idle. Streams end inside nghttp2
 * callbacks, often while mem_send holds the stream's last DATA frame:
 * close from the next flush, after it is out. */
static void maybe_idle(struct cn_link *l)
{
    if (l->draining)
        kick(l);
}

/* ---- the host of this link's streams (cn_stream_host_ops) ---- */

static int host_submit(void *arg, struct cn_stream *s, int32_t id, const nghttp2_nv *nv, size_t n,
                       int with_body)
{
    struct cn_link *l = arg;
    nghttp2_data_provider dp = {.source.ptr = s, .read_callback = cn_stream_read_body};
    if (!l->tun.h2)
        return PX_ERR_CLOSED;
    return nghttp2_submit_response(l->tun.h2, id, nv, n, with_body ? &dp : NULL) == 0 ? 0
                                                                                      : PX_ERR_H2;
}

static void host_reset(void *arg, int32_t id, uint32_t error_code)
{
    rt_tunnel_reset(&((struct cn_link *)arg)->tun, id, error_code);
}

static void host_consume(void *arg, int32_t id, size_t n)
{
    rt_tunnel_consume(&((struct cn_link *)arg)->tun, id, n);
}

static void host_resume(void *arg, int32_t id)
{
    rt_tunnel_resume(&((struct cn_link *)arg)->tun, id);
}

static void host_kick(void *arg)
{
    kick(arg);
}

static int host_hold(void *arg, ssize_t delta)
{
    struct cn_link *l = arg;
    l->buffered = (size_t)((ssize_t)l->buffered + delta);
    return l->buffered >= CN_LINK_BUFFER_CAP;
}

static void host_gone(void *arg, struct cn_stream *s)
{
    struct cn_link *l = arg;
    px_list_remove(&cn_stream_hnode(s)->node);
    l->n_streams--;
    if (l->state != CN_LINK_CLOSED)
        maybe_idle(l);
}

static const struct cn_assert_keys *host_assert_keys(void *arg)
{
    return cn_link_assert_keys(arg);
}

static const struct cn_stream_host_ops stream_host_ops = {
    .submit = host_submit,
    .reset = host_reset,
    .consume = host_consume,
    .resume = host_resume,
    .kick = host_kick,
    .hold = host_hold,
    .gone = host_gone,
    .assert_keys = host_assert_keys,
};

unsigned cn_link_index(const struct cn_link *l)
{
    return l->index;
}

const char *cn_link_edge(const struct cn_link *l)
{
    return l->edge;
}

int cn_link_registered(const struct cn_link *l)
{
    return l->registered;
}

unsigned cn_link_stream_count(const struct cn_link *l)
{
    return l->n_streams;
}

/* The edge's keys for its identity assertions replace the previous ones at
 * once. Keys that cannot be read leave the link with none: rules requiring
 * an assertion are refused (fail closed) and the rest is served. */
static void take_access_keys(struct cn_link *l, const struct px_ctl_msg *m)
{
    struct cn_assert_keys *k = NULL;
    int rc = cn_assert_keys_new(m->issuer, m->jwks, &k);
    px_tls_free_caches(); /* checking each key filled an ECC cache entry */
    cn_assert_keys_free(l->assert_keys);
    l->assert_keys = k;
    if (rc < 0)
        PX_ERROR("connection %u: the edge's access keys cannot be used (%s); requests to rules "
                 "with access.required are refused until it sends usable ones",
                 l->index, px_strerror(rc));
    else
        PX_INFO("connection %u: %zu access key(s) from the edge for issuer %s", l->index,
                cn_assert_keys_count(k), cn_assert_keys_issuer(k));
}

const struct cn_assert_keys *cn_link_assert_keys(const struct cn_link *l)
{
    return l->assert_keys;
}

/* ---- the session's host (rt_tunnel_ops) ---- */

static int on_control_msg(void *arg, const struct px_ctl_msg *m)
{
    struct cn_link *l = arg;
    switch (m->type) {
    case PX_CTL_REGISTERED: {
        size_t accepted = 0;
        for (size_t i = 0; i < m->n_results; i++) {
            if (m->results[i].accepted) {
                accepted++;
                if (l->index == 0)
                    PX_INFO("hostname %s registered", m->results[i].hostname);
            } else {
                PX_ERROR("hostname %s refused by the edge: %s", m->results[i].hostname,
                         m->results[i].reason ? m->results[i].reason : "no reason given");
            }
        }
        if (l->registered)
            return 0; /* results for a reload's additions: logged above */
        if (accepted == 0 && m->n_results > 0) {
            set_cause(l, CN_LINK_CAUSE_REFUSED, "the edge refused every hostname");
            l->host.ops->fatal(l->host.arg, "the edge refused every hostname of this connector");
            return 0;
        }
        l->registered = 1;
        cn_metrics_link_up(l->host.env.metrics, l->edge);
        l->state = CN_LINK_READY;
        PX_INFO("connection %u registered with edge %s (tunnel %s, connection id %s)", l->index,
                l->edge, m->agent ? m->agent : "?", m->conn_id ? m->conn_id : "?");
        l->host.ops->ready(l->host.arg, l);
        /* The edge's GOAWAY came before REGISTERED (it began draining
         * meanwhile): the host hears of it now that the link counts, so the
         * slot moves at once instead of sitting on a draining edge. */
        if (l->tun.going_away)
            l->host.ops->retiring(l->host.arg, l, l->goaway_clean);
        return 0;
    }
    case PX_CTL_ERROR:
        if (!m->permanent && m->code && strcmp(m->code, "renew_failed") == 0) {
            /* Not about the link: it stays up and the renewal is retried. */
            l->host.ops->control(l->host.arg, l, m);
            return 0;
        }
        if (m->permanent) {
            char msg[400];
            snprintf(msg, sizeof(msg), "the edge refused this tunnel: %s (%s)",
                     m->message ? m->message : "", m->code);
            l->permanent_error = 1;
            if (!l->registered)
                set_cause(l, CN_LINK_CAUSE_REFUSED, msg);
            l->host.ops->fatal(l->host.arg, msg);
        } else {
            PX_WARN("edge reports: %s (%s)", m->message ? m->message : "", m->code);
        }
        return 0;
    case PX_CTL_DRAIN:
        PX_INFO("edge asked connection %u to drain", l->index);
        return 0;
    case PX_CTL_ACCESS_KEYS:
        take_access_keys(l, m);
        return 0;
    case PX_CTL_ORIGIN_CA:
    case PX_CTL_RENEWED:
        l->host.ops->control(l->host.arg, l, m);
        return 0;
    default:
        PX_WARN("unexpected control message type %d ignored", (int)m->type);
        return 0;
    }
}

/* The edge opened the control stream: register. */
static int on_control_open(void *arg)
{
    struct cn_link *l = arg;
    char **names = NULL;
    size_t n = 0;
    l->host.ops->hostnames(l->host.arg, &names, &n);
    return cn_link_send_hostnames(l, PX_CTL_REGISTER, names, n);
}

int cn_link_send_hostnames(struct cn_link *l, enum px_ctl_type type, char **names, size_t n)
{
    struct px_ctl_msg m = {.type = type, .hostnames = names, .n_hostnames = n, .conn_index = -1};
    if (type == PX_CTL_REGISTER) {
        /* Which process, slot and dialed edge this link is: the edge's view
         * of a tunnel's connectors (px_control.h). */
        m.agent = "connector/" PX_VERSION;
        m.connector = (char *)l->host.connector_id;
        m.conn_index = l->index <= 63 ? (int)l->index : -1;
        m.edge = strcmp(l->edge, "memory") != 0 ? l->edge : NULL;
    }
    return rt_tunnel_send(&l->tun, &m);
}

int cn_link_send_renew(struct cn_link *l, const char *kind, const char *pub_pem)
{
    if (!rt_tunnel_control_open(&l->tun))
        return PX_ERR_CLOSED;
    struct px_ctl_msg m = {.type = PX_CTL_RENEW, .kind = (char *)kind, .pem = (char *)pub_pem};
    return rt_tunnel_send(&l->tun, &m);
}

int cn_link_usable(const struct cn_link *l)
{
    return l->registered && l->state == CN_LINK_READY && !l->draining && !l->tun.going_away &&
           !l->closing_self && rt_tunnel_control_open(&l->tun);
}

static void *stream_begin(void *arg, int32_t id)
{
    struct cn_link *l = arg;
    struct cn_stream_host host = {
        .ops = &stream_host_ops,
        .arg = l,
        .env = l->host.env,
    };
    struct cn_stream *s = cn_stream_new(&host, id);
    if (!s)
        return NULL;
    struct cn_stream_hnode *n = cn_stream_hnode(s);
    n->stream = s;
    px_list_insert_head(&l->streams, &n->node);
    l->n_streams++;
    return s;
}

static int stream_header(void *arg, void *s, const uint8_t *name, size_t nlen, const uint8_t *value,
                         size_t vlen)
{
    (void)arg;
    return cn_stream_on_header(s, name, nlen, value, vlen);
}

static int stream_frame(void *arg, void *s, const nghttp2_frame *f)
{
    struct cn_link *l = arg;
    int end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
        if (cn_stream_on_request(s, end) < 0)
            rt_tunnel_reset(&l->tun, f->hd.stream_id, NGHTTP2_INTERNAL_ERROR);
    } else if (end) {
        cn_stream_on_end(s); /* after the body, or trailers */
    }
    return 0;
}

static int stream_data(void *arg, void *s, int32_t id, const uint8_t *data, size_t len)
{
    (void)arg;
    (void)id;
    return cn_stream_on_data(s, data, len);
}

static void stream_close(void *arg, void *s, int32_t id, uint32_t err)
{
    (void)arg;
    (void)id;
    cn_stream_on_close(s, err);
}

static void stream_drop(void *arg, void *s)
{
    (void)arg;
    cn_stream_destroy(s);
}

static const struct rt_tunnel_stream_ops tunnel_stream_ops = {
    .begin = stream_begin,
    .header = stream_header,
    .frame = stream_frame,
    .data = stream_data,
    .close = stream_close,
    .drop = stream_drop,
};

/* A GOAWAY in either direction ends this link; the host dials its
 * replacement. The edge's GOAWAY with NO_ERROR says it is draining: it may
 * still route requests of the browsers it is finishing here (nghttp2 lets
 * a server accept streams after it received GOAWAY), so the link stays up
 * and serves them until the edge closes it. Any other GOAWAY: the streams
 * in flight finish (nothing new comes), then it closes. */
static void on_going_away(void *arg, enum rt_tunnel_goaway how, uint32_t error_code)
{
    struct cn_link *l = arg;
    l->goaway_clean = how == RT_TUNNEL_GOAWAY_RECEIVED && error_code == NGHTTP2_NO_ERROR;
    PX_INFO("connection %u to %s: %s (%s)%s", l->index, l->edge,
            how == RT_TUNNEL_GOAWAY_RECEIVED ? "the edge sent GOAWAY"
                                             : "this connector sent GOAWAY",
            nghttp2_http2_strerror(error_code),
            l->goaway_clean ? "; it keeps serving what the edge sends until the edge closes it"
            : l->n_streams  ? "; its requests in flight finish first"
                            : "");
    if (!l->goaway_clean) {
        l->draining = 1; /* closes from the next flush once idle */
        kick(l);
    }
    if (l->registered)
        l->host.ops->retiring(l->host.arg, l, l->goaway_clean);
}

static void on_tunnel_fail(void *arg, enum rt_tunnel_fail why)
{
    struct cn_link *l = arg;
    switch (why) {
    case RT_TUNNEL_DEAD_PEER:
        link_fail(l, CN_LINK_CAUSE_DEAD_PEER, "the edge stopped answering pings");
        return;
    case RT_TUNNEL_GOAWAY_TIMEOUT:
        PX_WARN("connection %u: %s stream(s) still open %u s after GOAWAY; closing", l->index,
                l->n_streams ? "some" : "no", CN_LINK_GOAWAY_MS / 1000);
        link_fail(l, CN_LINK_CAUSE_GOAWAY_TIMEOUT, "streams outlived GOAWAY");
        return;
    case RT_TUNNEL_CONTROL_CLOSED:
    case RT_TUNNEL_SETUP_TIMEOUT: /* not asked for (no set-up deadline) */
        link_fail(l, CN_LINK_CAUSE_PEER_CLOSED, "the edge closed the control stream");
        return;
    }
}

/* The host may free l once its session has closed and no name lookup
 * will call back into it. */
static void maybe_closed(struct cn_link *l)
{
    if (l->state == CN_LINK_CLOSED && l->tunnel_closed && !l->resolving)
        l->host.ops->closed(l->host.arg, l);
}

static void on_tunnel_closed(void *arg)
{
    struct cn_link *l = arg;
    l->tunnel_closed = 1;
    maybe_closed(l);
}

static const struct rt_tunnel_ops tunnel_ops = {
    .stream = &tunnel_stream_ops,
    .control_open = on_control_open,
    .control = on_control_msg,
    .kick = host_kick,
    .going_away = on_going_away,
    .fail = on_tunnel_fail,
    .closed = on_tunnel_closed,
};

/* ---- the connection ---- */

static int conn_on_open(struct rt_conn *c)
{
    struct cn_link *l = c->owner;
    l->saw_open = 1;
    const char *alpn = rt_conn_alpn(c);
    if (strcmp(alpn, "h2") != 0) {
        link_fail(l, CN_LINK_CAUSE_PROTOCOL, "the edge did not negotiate HTTP/2");
        return -1;
    }
    if (rt_tunnel_start(&l->tun) < 0)
        return -1;
    l->state = CN_LINK_HANDSHAKE;
    PX_DEBUG("connection %u: TLS up to %s", l->index, l->edge);
    return 0;
}

static int conn_on_data(struct rt_conn *c, const uint8_t *data, size_t len)
{
    struct cn_link *l = c->owner;
    int rc = rt_tunnel_recv(&l->tun, data, len);
    if (rc < 0) {
        char why[128];
        snprintf(why, sizeof(why), "HTTP/2 error from edge: %s", nghttp2_strerror(rc));
        link_fail(l, CN_LINK_CAUSE_PROTOCOL, why);
        return -1;
    }
    return 0;
}

static int conn_on_writable(struct rt_conn *c)
{
    struct cn_link *l = c->owner;
    if (!l->tun.h2)
        return 0;
    int rc = rt_h2_flush(c, l->tun.h2);
    struct px_list_node *pos, *tmp;
    if (l->buffered < CN_LINK_BUFFER_CAP / 2)
        px_list_for_each_safe (pos, tmp, &l->streams)
            cn_stream_on_room(px_container_of(pos, struct cn_stream_hnode, node)->stream);
    if (rc < 0)
        link_fail(l, CN_LINK_CAUSE_PROTOCOL, "HTTP/2 session ended");
    else if (l->draining && px_list_empty(&l->streams) && !c->in_close &&
             !nghttp2_session_want_write(l->tun.h2))
        cn_link_close(l, "drained");
    return 0;
}

static void conn_on_close(struct rt_conn *c, int err)
{
    struct cn_link *l = c->owner;
    const struct px_tls_failure *tf = rt_conn_tls_failure(c);
    l->tls_failure = *tf;
    const char *words = c->err_text[0] ? c->err_text : px_strerror(err);
    if (l->cause != CN_LINK_CAUSE_LOCAL && tf->kind == PX_TLS_FAIL_ALERT_RECEIVED &&
        px_tls_alert_rejects_cert(tf->alert)) {
        /* With TLS 1.3 the edge checks our certificate after we think the
         * handshake is done: its alert counts whatever else was noted. */
        l->cause = CN_LINK_OPEN;
        set_cause(l, CN_LINK_CAUSE_CERT_REFUSED, words);
    } else if (err == PX_ERR_TLS || err == PX_ERR_TLS_VERIFY) {
        set_cause(l, CN_LINK_CAUSE_TLS, words);
    } else if (err == PX_ERR_NOMEM) {
        set_cause(l, CN_LINK_CAUSE_NOMEM, words);
    } else if (err == PX_ERR_TIMEOUT) {
        set_cause(l, CN_LINK_CAUSE_TIMEOUT, words);
    } else if (err == PX_ERR_CLOSED || err == 0) {
        set_cause(l, CN_LINK_CAUSE_PEER_CLOSED, words);
    } else {
        set_cause(l, CN_LINK_CAUSE_CONNECT, words);
    }
    struct px_list_node *first;
    while ((first = px_list_first(&l->streams)))
        cn_stream_destroy(px_container_of(first, struct cn_stream_hnode, node)->stream);
    cn_assert_keys_free(l->assert_keys);
    l->assert_keys = NULL;
    if (l->registered)
        cn_metrics_link_down(l->host.env.metrics, l->edge);
    else
        cn_metrics_registration_failed(l->host.env.metrics, l->edge, l->cause);
    l->state = CN_LINK_CLOSED;
    if (l->resolving)
        uv_cancel((uv_req_t *)&l->resolve); /* on_resolved still runs (UV_ECANCELED) */
    rt_tunnel_close(&l->tun);               /* host closed() follows from the loop */
}

static const struct rt_conn_ops link_ops = {
    .on_open = conn_on_open,
    .on_data = conn_on_data,
    .on_writable = conn_on_writable,
    .on_close = conn_on_close,
};

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct cn_link *l = req->data;
    l->resolving = 0;
    if (l->state == CN_LINK_CLOSED || l->cause != CN_LINK_OPEN) {
        /* Closed or closing (stopped, say) while the name was looked up:
         * the close waited for this callback; connecting now would re-arm
         * a handle being closed. */
        if (res)
            uv_freeaddrinfo(res);
        maybe_closed(l);
        return;
    }
    if (status < 0 || !res) {
        char why[400];
        snprintf(why, sizeof(why), "cannot resolve %s: %s", l->edge, uv_strerror(status));
        set_cause(l, CN_LINK_CAUSE_RESOLVE, why);
        if (res)
            uv_freeaddrinfo(res);
        rt_conn_abort(&l->conn, PX_ERR_IO);
        return;
    }
    rt_conn_connect(&l->conn, res->ai_addr, l->host.ops->tls_ctx(l->host.arg), l->host.server_name,
                    "h2", CN_LINK_CONNECT_MS);
    uv_freeaddrinfo(res);
}

static int link_init(struct cn_link *l, const struct cn_link_host *host, unsigned index,
                     const char *addr)
{
    static const struct rt_tunnel_cfg tunnel_cfg = {
        .server = 1,
        .max_streams = CN_LINK_MAX_STREAMS,
        .goaway_ms = CN_LINK_GOAWAY_MS,
        .peer_name = "the edge",
    };
    memset(l, 0, sizeof(*l));
    l->host = *host;
    l->index = index;
    snprintf(l->edge, sizeof(l->edge), "%s", addr);
    px_list_init(&l->streams);
    int r = rt_conn_init(&l->conn, host->env.loop, &link_ops, l);
    if (r < 0)
        return r;
    /* PINGs from now on: they go out once the session has started. */
    rt_tunnel_init(&l->tun, host->env.loop, &tunnel_cfg, &tunnel_ops, l);
    return 0;
}

int cn_link_start_memory(struct cn_link *l, const struct cn_link_host *host, unsigned index)
{
    int r = link_init(l, host, index, "memory");
    if (r < 0)
        return r;
    rt_conn_open_memory(&l->conn, "h2", "edge");
    return 0;
}

int cn_link_start(struct cn_link *l, const struct cn_link_host *host, unsigned index,
                  const char *addr)
{
    int r = link_init(l, host, index, addr);
    if (r < 0)
        return r;
    char hostname[256], port[16];
    int p;
    if (px_split_hostport(addr, hostname, sizeof(hostname), &p) < 0) {
        char why[400];
        snprintf(why, sizeof(why), "bad edge address %s", addr);
        set_cause(l, CN_LINK_CAUSE_RESOLVE, why);
        rt_conn_abort(&l->conn, PX_ERR_INVAL);
        return 0;
    }
    snprintf(port, sizeof(port), "%d", p);
    uv_getaddrinfo_t *req = &l->resolve;
    req->data = l;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    r = uv_getaddrinfo(l->host.env.loop, req, on_resolved, hostname, port, &hints);
    if (r == 0)
        l->resolving = 1;
    if (r < 0) {
        char why[400];
        snprintf(why, sizeof(why), "cannot resolve %s: %s", addr, uv_strerror(r));
        set_cause(l, CN_LINK_CAUSE_RESOLVE, why);
        rt_conn_abort(&l->conn, PX_ERR_IO);
    }
    return 0;
}

void cn_link_drain(struct cn_link *l)
{
    if (l->draining)
        return;
    l->draining = 1;
    if (rt_tunnel_control_open(&l->tun)) {
        struct px_ctl_msg m = {.type = PX_CTL_DRAIN};
        rt_tunnel_send(&l->tun, &m);
    }
    maybe_idle(l);
}

void cn_link_close(struct cn_link *l, const char *reason)
{
    l->closing_self = 1;
    rt_tunnel_shutdown(&l->tun); /* its GOAWAY is not a reason to reconnect */
    link_fail(l, CN_LINK_CAUSE_LOCAL, reason);
}
