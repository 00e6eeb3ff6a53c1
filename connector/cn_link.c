#include "cn_link.h"
#include "cn_assert.h"
#include "cn_creds.h"
#include "cn_stream.h"
#include "cn_supervisor.h"
#include "px_err.h"
#include "px_log.h"
#include "px_token.h"
#include "rt_h2.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tunnel windows: a stream may have 1 MiB in flight, a connection 16 MiB. */
#define STREAM_WINDOW PX_H2_TUNNEL_STREAM_WINDOW
#define CONN_WINDOW PX_H2_TUNNEL_CONN_WINDOW

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

static const struct cn_rule *host_route(void *arg, const char *host, const char *path,
                                        struct cn_ingress **ing)
{
    struct cn_link *l = arg;
    return l->host.ops->route(l->host.arg, host, path, ing);
}

static int host_submit(void *arg, struct cn_stream *s, int32_t id, const nghttp2_nv *nv, size_t n,
                       int with_body)
{
    struct cn_link *l = arg;
    nghttp2_data_provider dp = {.source.ptr = s, .read_callback = cn_stream_read_body};
    if (!l->h2)
        return PX_ERR_CLOSED;
    return nghttp2_submit_response(l->h2, id, nv, n, with_body ? &dp : NULL) == 0 ? 0 : PX_ERR_H2;
}

static void host_reset(void *arg, int32_t id, uint32_t error_code)
{
    struct cn_link *l = arg;
    if (l->h2) {
        nghttp2_submit_rst_stream(l->h2, NGHTTP2_FLAG_NONE, id, error_code);
        kick(l);
    }
}

static void host_consume(void *arg, int32_t id, size_t n)
{
    struct cn_link *l = arg;
    if (!l->h2 || n == 0)
        return;
    /* On a closed stream this still returns the connection's credit. */
    nghttp2_session_consume(l->h2, id, n);
    kick(l);
}

static void host_resume(void *arg, int32_t id)
{
    struct cn_link *l = arg;
    if (l->h2)
        nghttp2_session_resume_data(l->h2, id);
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
    struct cn_stream_hnode *n = cn_stream_hnode(s);
    if (n->prev)
        cn_stream_hnode(n->prev)->next = n->next;
    else if (l->streams == s)
        l->streams = n->next;
    if (n->next)
        cn_stream_hnode(n->next)->prev = n->prev;
    n->next = n->prev = NULL;
    l->n_streams--;
    if (l->state != CN_LINK_CLOSED)
        maybe_idle(l);
}

static const struct cn_assert_keys *host_assert_keys(void *arg)
{
    return cn_link_assert_keys(arg);
}

static struct cn_creds *host_creds(void *arg)
{
    struct cn_link *l = arg;
    return l->host.ops->creds(l->host.arg);
}

static const struct cn_stream_host_ops stream_host_ops = {
    .route = host_route,
    .submit = host_submit,
    .reset = host_reset,
    .consume = host_consume,
    .resume = host_resume,
    .kick = host_kick,
    .hold = host_hold,
    .gone = host_gone,
    .assert_keys = host_assert_keys,
    .creds = host_creds,
};

unsigned cn_link_stream_count(const struct cn_link *l)
{
    return l->n_streams;
}

static int control_send(struct cn_link *l, const struct px_ctl_msg *m)
{
    char *line = px_ctl_encode(m);
    if (!line)
        return PX_ERR_NOMEM;
    int rc = px_h2_outbox_push(&l->control_out, l->h2, l->control_id, line, strlen(line));
    free(line);
    kick(l);
    return rc;
}

/* The edge's keys for its identity assertions replace the previous ones at
 * once. Keys that cannot be read leave the link with none: rules requiring
 * an assertion are refused (fail closed) and the rest is served. */
static void take_access_keys(struct cn_link *l, const struct px_ctl_msg *m)
{
    struct cn_assert_keys *k = NULL;
    int rc = cn_assert_keys_new(m->issuer, m->jwks, &k);
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

static int on_control_msg(const struct px_ctl_msg *m, void *arg)
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
            l->host.ops->fatal(l->host.arg, "the edge refused every hostname of this connector");
            return 0;
        }
        l->registered = 1;
        l->state = CN_LINK_READY;
        PX_INFO("connection %u registered with edge %s (tunnel %s, connection id %s)", l->index,
                l->edge, m->agent ? m->agent : "?", m->conn_id ? m->conn_id : "?");
        l->host.ops->ready(l->host.arg, l);
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

static int start_control(struct cn_link *l, int32_t id)
{
    if (l->control_id) {
        nghttp2_submit_rst_stream(l->h2, NGHTTP2_FLAG_NONE, id, NGHTTP2_PROTOCOL_ERROR);
        return 0;
    }
    l->control_id = id;
    nghttp2_nv nv[] = {
        {(uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"content-type", (uint8_t *)"application/x-ndjson", 12, 20,
         NGHTTP2_NV_FLAG_NONE},
    };
    nghttp2_data_provider dp = {.source.ptr = &l->control_out, .read_callback = px_h2_outbox_read};
    if (nghttp2_submit_response(l->h2, id, nv, 2, &dp) != 0)
        return -1;
    char **names = NULL;
    size_t n = 0;
    l->host.ops->hostnames(l->host.arg, &names, &n);
    return cn_link_send_hostnames(l, PX_CTL_REGISTER, names, n);
}

int cn_link_send_hostnames(struct cn_link *l, enum px_ctl_type type, char **names, size_t n)
{
    struct px_ctl_msg m = {.type = type, .hostnames = names, .n_hostnames = n};
    if (type == PX_CTL_REGISTER)
        m.agent = "connector/0.1";
    return control_send(l, &m);
}

int cn_link_send_renew(struct cn_link *l, const char *kind, const char *pub_pem)
{
    if (!l->h2 || l->control_id <= 0)
        return PX_ERR_CLOSED;
    struct px_ctl_msg m = {.type = PX_CTL_RENEW, .kind = (char *)kind, .pem = (char *)pub_pem};
    return control_send(l, &m);
}

int cn_link_usable(const struct cn_link *l)
{
    return l->registered && l->state == CN_LINK_READY && !l->draining && !l->goaway &&
           !l->retired && !l->closing_self && l->h2 && l->control_id > 0;
}

static void on_goaway_deadline(uv_timer_t *t)
{
    struct cn_link *l = t->data;
    PX_WARN("connection %u: %s stream(s) still open %u s after GOAWAY; closing", l->index,
            l->streams ? "some" : "no", CN_LINK_GOAWAY_MS / 1000);
    link_fail(l, CN_LINK_CAUSE_GOAWAY_TIMEOUT, "streams outlived GOAWAY");
}

/* Defect 2a: a GOAWAY in either direction ends this link. The streams in
 * flight finish (the edge sends nothing new), then it closes; meanwhile the
 * supervisor dials its replacement at once. */
static void goaway(struct cn_link *l, const char *who, uint32_t error_code)
{
    if (l->goaway)
        return;
    l->goaway = 1;
    l->goaway_clean = error_code == NGHTTP2_NO_ERROR;
    PX_INFO("connection %u to %s: %s (%s)%s", l->index, l->edge, who,
            nghttp2_http2_strerror(error_code),
            l->streams ? "; its requests in flight finish first" : "");
    l->draining = 1; /* closes from the next flush once idle */
    /* The ping timer becomes the deadline for the streams in flight. */
    uv_timer_start(&l->ping_timer, on_goaway_deadline, CN_LINK_GOAWAY_MS, 0);
    kick(l);
    if (l->registered)
        l->host.ops->retiring(l->host.arg, l);
}

static int on_frame_send(nghttp2_session *h2, const nghttp2_frame *f, void *user)
{
    (void)h2;
    struct cn_link *l = user;
    if (f->hd.type == NGHTTP2_GOAWAY && !l->closing_self)
        goaway(l, "this connector sent GOAWAY", f->goaway.error_code);
    return 0;
}

static int on_begin_headers(nghttp2_session *h2, const nghttp2_frame *f, void *user)
{
    struct cn_link *l = user;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct cn_stream_host host = {
        .ops = &stream_host_ops,
        .arg = l,
        .loop = l->host.loop,
        .origin = l->host.origin,
        .response_timeout_ms = l->host.response_timeout_ms,
    };
    struct cn_stream *s = cn_stream_new(&host, f->hd.stream_id);
    if (!s)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    struct cn_stream_hnode *n = cn_stream_hnode(s);
    n->next = l->streams;
    if (l->streams)
        cn_stream_hnode(l->streams)->prev = s;
    l->streams = s;
    l->n_streams++;
    nghttp2_session_set_stream_user_data(h2, f->hd.stream_id, s);
    return 0;
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
    (void)flags;
    (void)user;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct cn_stream *s = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);
    if (!s)
        return 0;
    return cn_stream_on_header(s, name, nlen, value, vlen);
}

static int on_frame_recv(nghttp2_session *h2, const nghttp2_frame *f, void *user)
{
    struct cn_link *l = user;
    struct cn_stream *s =
        f->hd.stream_id ? nghttp2_session_get_stream_user_data(h2, f->hd.stream_id) : NULL;
    switch (f->hd.type) {
    case NGHTTP2_HEADERS:
        if (!s)
            return 0;
        if (f->headers.cat == NGHTTP2_HCAT_REQUEST) {
            if (cn_stream_is_control(s)) {
                nghttp2_session_set_stream_user_data(h2, f->hd.stream_id, NULL);
                cn_stream_destroy(s);
                return start_control(l, f->hd.stream_id) < 0 ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
            }
            int rc = cn_stream_on_request(s, (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0);
            if (rc < 0)
                nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, f->hd.stream_id,
                                          NGHTTP2_INTERNAL_ERROR);
        } else if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) {
            cn_stream_on_end(s);
        }
        return 0;
    case NGHTTP2_DATA:
        if (s && (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
            cn_stream_on_end(s);
        return 0;
    case NGHTTP2_PING:
        if (f->hd.flags & NGHTTP2_FLAG_ACK)
            l->pings_outstanding = 0;
        return 0;
    case NGHTTP2_GOAWAY:
        goaway(l, "the edge sent GOAWAY", f->goaway.error_code);
        return 0;
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user)
{
    (void)flags;
    struct cn_link *l = user;
    if (id == l->control_id) {
        nghttp2_session_consume(h2, id, len);
        int rc = px_ctl_framer_feed(&l->control_in, data, len, on_control_msg, l);
        if (rc < 0) {
            PX_ERROR("malformed control message from the edge: %s", px_strerror(rc));
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
        return 0;
    }
    struct cn_stream *s = nghttp2_session_get_stream_user_data(h2, id);
    if (!s) {
        nghttp2_session_consume(h2, id, len);
        return 0;
    }
    return cn_stream_on_data(s, data, len);
}

static int on_stream_close(nghttp2_session *h2, int32_t id, uint32_t err, void *user)
{
    struct cn_link *l = user;
    if (id == l->control_id) {
        link_fail(l, CN_LINK_CAUSE_PEER_CLOSED, "the edge closed the control stream");
        return 0;
    }
    struct cn_stream *s = nghttp2_session_get_stream_user_data(h2, id);
    if (s) {
        nghttp2_session_set_stream_user_data(h2, id, NULL);
        cn_stream_on_close(s, err);
    }
    return 0;
}

static int conn_on_open(struct rt_conn *c)
{
    struct cn_link *l = c->owner;
    l->saw_open = 1;
    const char *alpn = rt_conn_alpn(c);
    if (strcmp(alpn, "h2") != 0) {
        link_fail(l, CN_LINK_CAUSE_PROTOCOL, "the edge did not negotiate HTTP/2");
        return -1;
    }
    static const struct px_h2_callbacks cb = {
        .begin_headers = on_begin_headers,
        .header = on_header,
        .frame_recv = on_frame_recv,
        .data_chunk = on_data_chunk,
        .stream_close = on_stream_close,
        .frame_send = on_frame_send,
        /* Defect 2d: the edge's resets (its browsers leaving) are not a flood. */
        .flags = PX_H2_PEER_RESETS_UNLIMITED,
    };
    const nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, CN_LINK_MAX_STREAMS},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, 64 * 1024},
        /* RFC 8441: WebSockets and TCP streams arrive as extended CONNECT. */
        {NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1},
    };
    if (px_h2_session_new(&l->h2, 1, &cb, l, iv, 4, CONN_WINDOW) < 0)
        return -1;
    l->state = CN_LINK_HANDSHAKE;
    PX_DEBUG("connection %u: TLS up to %s", l->index, l->edge);
    return 0;
}

static int conn_on_data(struct rt_conn *c, const uint8_t *data, size_t len)
{
    struct cn_link *l = c->owner;
    ssize_t n = nghttp2_session_mem_recv(l->h2, data, len);
    if (n < 0) {
        char why[128];
        snprintf(why, sizeof(why), "HTTP/2 error from edge: %s", nghttp2_strerror((int)n));
        link_fail(l, CN_LINK_CAUSE_PROTOCOL, why);
        return -1;
    }
    return 0;
}

static int conn_on_writable(struct rt_conn *c)
{
    struct cn_link *l = c->owner;
    if (!l->h2)
        return 0;
    int rc = rt_h2_flush(c, l->h2);
    if (l->buffered < CN_LINK_BUFFER_CAP / 2)
        for (struct cn_stream *s = l->streams; s; s = cn_stream_hnode(s)->next)
            cn_stream_on_room(s);
    if (rc < 0)
        link_fail(l, CN_LINK_CAUSE_PROTOCOL, "HTTP/2 session ended");
    else if (l->draining && !l->streams && !c->in_close && !nghttp2_session_want_write(l->h2))
        cn_link_close(l, "drained");
    return 0;
}

/* The host may free l once both its timer is closed and no name lookup
 * will call back into it. */
static void maybe_closed(struct cn_link *l)
{
    if (l->state == CN_LINK_CLOSED && l->timer_closed && !l->resolving)
        l->host.ops->closed(l->host.arg, l);
}

static void on_ping_closed(uv_handle_t *h)
{
    struct cn_link *l = h->data;
    l->timer_closed = 1;
    maybe_closed(l);
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
    } else if (err == PX_ERR_CLOSED || err == 0) {
        set_cause(l, CN_LINK_CAUSE_PEER_CLOSED, words);
    } else {
        set_cause(l, CN_LINK_CAUSE_CONNECT, words);
    }
    while (l->streams)
        cn_stream_destroy(l->streams);
    if (l->h2)
        nghttp2_session_del(l->h2);
    l->h2 = NULL;
    px_h2_outbox_cleanup(&l->control_out);
    px_ctl_framer_cleanup(&l->control_in);
    cn_assert_keys_free(l->assert_keys);
    l->assert_keys = NULL;
    l->state = CN_LINK_CLOSED;
    uv_timer_stop(&l->ping_timer);
    if (l->resolving)
        uv_cancel((uv_req_t *)&l->resolve); /* on_resolved still runs (UV_ECANCELED) */
    uv_close((uv_handle_t *)&l->ping_timer, on_ping_closed);
}

static const struct rt_conn_ops link_ops = {
    .on_open = conn_on_open,
    .on_data = conn_on_data,
    .on_writable = conn_on_writable,
    .on_close = conn_on_close,
};

static void on_ping(uv_timer_t *t)
{
    struct cn_link *l = t->data;
    if (!l->h2)
        return;
    if (l->pings_outstanding >= PX_H2_PING_MAX_MISSED) {
        link_fail(l, CN_LINK_CAUSE_DEAD_PEER, "the edge stopped answering pings");
        return;
    }
    l->pings_outstanding++;
    nghttp2_submit_ping(l->h2, NGHTTP2_FLAG_NONE, NULL);
    kick(l);
}

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
                    "h2", 10000);
    uv_freeaddrinfo(res);
}

static int link_init(struct cn_link *l, const struct cn_link_host *host, unsigned index,
                     const char *addr)
{
    memset(l, 0, sizeof(*l));
    l->host = *host;
    l->index = index;
    snprintf(l->edge, sizeof(l->edge), "%s", addr);
    px_h2_outbox_init(&l->control_out);
    px_ctl_framer_init(&l->control_in);
    int r = rt_conn_init(&l->conn, host->loop, &link_ops, l);
    if (r < 0)
        return r;
    uv_timer_init(host->loop, &l->ping_timer);
    l->ping_timer.data = l;
    uv_timer_start(&l->ping_timer, on_ping, px_h2_ping_interval_ms(), px_h2_ping_interval_ms());
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
    r = uv_getaddrinfo(l->host.loop, req, on_resolved, hostname, port, &hints);
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
    if (l->h2 && l->control_id > 0) {
        struct px_ctl_msg m = {.type = PX_CTL_DRAIN};
        control_send(l, &m);
    }
    maybe_idle(l);
}

void cn_link_close(struct cn_link *l, const char *reason)
{
    l->closing_self = 1; /* our own GOAWAY below is not a reason to reconnect */
    if (l->h2) {
        nghttp2_submit_goaway(l->h2, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(l->h2), NGHTTP2_NO_ERROR,
                              NULL, 0);
        kick(l);
    }
    link_fail(l, CN_LINK_CAUSE_LOCAL, reason);
}
