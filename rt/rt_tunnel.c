#include "rt_tunnel.h"
#include "px_err.h"
#include "px_log.h"

#include <stdlib.h>
#include <string.h>

#define CONTROL_HEADER "tunnel-control"
#define MAX_FRAME_SIZE (64 * 1024)

#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, NGHTTP2_NV_FLAG_NONE         \
    }

static void kick(struct rt_tunnel *t)
{
    t->ops->kick(t->arg);
}

static unsigned ping_ms(const struct rt_tunnel *t)
{
    return t->cfg.ping_ms ? t->cfg.ping_ms : px_h2_ping_interval_ms();
}

/* ---- the timer: set-up deadline, then PINGs, then the going-away deadline ---- */

static void on_ping(uv_timer_t *h)
{
    struct rt_tunnel *t = h->data;
    if (!t->h2 || t->closing)
        return;
    if (t->pings_outstanding >= PX_H2_PING_MAX_MISSED) {
        uv_timer_stop(&t->timer);
        t->ops->fail(t->arg, RT_TUNNEL_DEAD_PEER);
        return;
    }
    t->pings_outstanding++;
    nghttp2_submit_ping(t->h2, NGHTTP2_FLAG_NONE, NULL);
    kick(t);
}

static void start_pings(struct rt_tunnel *t)
{
    uv_timer_start(&t->timer, on_ping, ping_ms(t), ping_ms(t));
}

static void on_setup_deadline(uv_timer_t *h)
{
    struct rt_tunnel *t = h->data;
    if (!t->ready && !t->closing && !t->going_away)
        t->ops->fail(t->arg, RT_TUNNEL_SETUP_TIMEOUT);
}

static void on_goaway_deadline(uv_timer_t *h)
{
    struct rt_tunnel *t = h->data;
    if (!t->closing)
        t->ops->fail(t->arg, RT_TUNNEL_GOAWAY_TIMEOUT);
}

/* The one way into going away: no new streams, and the PINGs give way to
 * the deadline for the streams in flight. */
static void go_away(struct rt_tunnel *t, enum rt_tunnel_goaway how, uint32_t error_code)
{
    if (t->going_away || t->closing)
        return;
    t->going_away = 1;
    uv_timer_start(&t->timer, on_goaway_deadline, t->cfg.goaway_ms, 0);
    kick(t);
    t->ops->going_away(t->arg, how, error_code);
}

/* ---- the control stream ---- */

static int control_msg(const struct px_ctl_msg *m, void *arg)
{
    struct rt_tunnel *t = arg;
    return t->ops->control(t->arg, m);
}

static int control_opened(struct rt_tunnel *t, int32_t id)
{
    /* Lines queued before the stream was open are read from its data
     * source at once. */
    t->control_id = id;
    return t->ops->control_open ? t->ops->control_open(t->arg) : 0;
}

/* Client: asks for the control stream as soon as the session starts. */
static int open_control(struct rt_tunnel *t)
{
    const nghttp2_nv nv[] = {
        NV(":method", "POST"),
        NV(":scheme", "https"),
        NV(":authority", "tunnel.control"),
        NV(":path", "/.tunnel/control"),
        NV(CONTROL_HEADER, "1"),
    };
    nghttp2_data_provider dp = {.source.ptr = &t->control_out, .read_callback = px_h2_outbox_read};
    int32_t id = nghttp2_submit_request(t->h2, NULL, nv, sizeof(nv) / sizeof(nv[0]), &dp, NULL);
    if (id < 0)
        return id == NGHTTP2_ERR_NOMEM ? PX_ERR_NOMEM : PX_ERR_H2;
    return control_opened(t, id) < 0 ? PX_ERR_H2 : 0;
}

/* Server: answers the first request for the control stream, refuses others. */
static int answer_control(struct rt_tunnel *t, int32_t id)
{
    if (t->control_id) {
        nghttp2_submit_rst_stream(t->h2, NGHTTP2_FLAG_NONE, id, NGHTTP2_PROTOCOL_ERROR);
        return 0;
    }
    const nghttp2_nv nv[] = {NV(":status", "200"), NV("content-type", "application/x-ndjson")};
    nghttp2_data_provider dp = {.source.ptr = &t->control_out, .read_callback = px_h2_outbox_read};
    if (nghttp2_submit_response(t->h2, id, nv, 2, &dp) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return control_opened(t, id) < 0 ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
}

int rt_tunnel_send(struct rt_tunnel *t, const struct px_ctl_msg *m)
{
    char *line = px_ctl_encode(m);
    if (!line)
        return PX_ERR_NOMEM;
    int rc = px_h2_outbox_push(&t->control_out, t->h2, t->control_id, line, strlen(line));
    free(line);
    kick(t);
    return rc;
}

int rt_tunnel_control_open(const struct rt_tunnel *t)
{
    return t->h2 && t->control_id > 0;
}

/* ---- nghttp2 callbacks: the session's own frames here, streams to the end ---- */

/* The stream's object, if the end has one for it (never the control stream). */
static void *stream_of(struct rt_tunnel *t, int32_t id)
{
    return id > 0 && id != t->control_id ? nghttp2_session_get_stream_user_data(t->h2, id) : NULL;
}

static int is_request(const struct rt_tunnel *t, const nghttp2_frame *f)
{
    return t->cfg.server && f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST;
}

static int on_begin_headers(nghttp2_session *h2, const nghttp2_frame *f, void *user)
{
    struct rt_tunnel *t = user;
    if (!is_request(t, f))
        return 0;
    t->control_cand = 0;
    void *s = t->ops->stream->begin(t->arg, f->hd.stream_id);
    if (!s)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    nghttp2_session_set_stream_user_data(h2, f->hd.stream_id, s);
    return 0;
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
    (void)h2;
    (void)flags;
    struct rt_tunnel *t = user;
    /* A server reads request heads only; a client every head of its streams. */
    if (f->hd.type != NGHTTP2_HEADERS || (t->cfg.server && !is_request(t, f)))
        return 0;
    if (t->cfg.server && nlen == sizeof(CONTROL_HEADER) - 1 &&
        memcmp(name, CONTROL_HEADER, nlen) == 0) {
        t->control_cand = f->hd.stream_id;
        return 0;
    }
    void *s = stream_of(t, f->hd.stream_id);
    return s ? t->ops->stream->header(t->arg, s, name, nlen, value, vlen) : 0;
}

static int on_frame_recv(nghttp2_session *h2, const nghttp2_frame *f, void *user)
{
    struct rt_tunnel *t = user;
    switch (f->hd.type) {
    case NGHTTP2_PING:
        if (f->hd.flags & NGHTTP2_FLAG_ACK)
            t->pings_outstanding = 0;
        return 0;
    case NGHTTP2_GOAWAY:
        t->goaway_received = 1;
        go_away(t, RT_TUNNEL_GOAWAY_RECEIVED, f->goaway.error_code);
        return 0;
    case NGHTTP2_HEADERS:
    case NGHTTP2_DATA:
        break;
    default:
        return 0;
    }
    if (is_request(t, f) && f->hd.stream_id == t->control_cand) {
        t->control_cand = 0;
        void *s = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);
        if (s) {
            nghttp2_session_set_stream_user_data(h2, f->hd.stream_id, NULL);
            t->ops->stream->drop(t->arg, s);
        }
        return answer_control(t, f->hd.stream_id);
    }
    void *s = stream_of(t, f->hd.stream_id);
    return s ? t->ops->stream->frame(t->arg, s, f) : 0;
}

static int on_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user)
{
    (void)flags;
    struct rt_tunnel *t = user;
    void *s = stream_of(t, id);
    if (s)
        return t->ops->stream->data(t->arg, s, id, data, len);
    /* Nobody holds these bytes: their credit goes back at once. */
    nghttp2_session_consume(h2, id, len);
    if (!t->control_id || id != t->control_id)
        return 0;
    int rc = px_ctl_framer_feed(&t->control_in, data, len, control_msg, t);
    if (rc < 0) {
        PX_WARN("control message from %s not taken (%s): closing the connection", t->cfg.peer_name,
                px_strerror(rc));
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
}

static int on_stream_close(nghttp2_session *h2, int32_t id, uint32_t err, void *user)
{
    struct rt_tunnel *t = user;
    if (id == t->control_id) {
        if (!t->closing)
            t->ops->fail(t->arg, RT_TUNNEL_CONTROL_CLOSED);
        return 0;
    }
    void *s = nghttp2_session_get_stream_user_data(h2, id);
    if (s) {
        nghttp2_session_set_stream_user_data(h2, id, NULL);
        t->ops->stream->close(t->arg, s, id, err);
    }
    return 0;
}

static int on_frame_send(nghttp2_session *h2, const nghttp2_frame *f, void *user)
{
    (void)h2;
    struct rt_tunnel *t = user;
    if (f->hd.type == NGHTTP2_GOAWAY && t->notice_queued) {
        /* GOAWAYs go out in the order submitted: the notice is the first. */
        t->notice_queued = 0;
        t->notice_sent = 1;
        return 0;
    }
    if (f->hd.type == NGHTTP2_GOAWAY) {
        t->goaway_sent = t->goaway_queued = 1;
        go_away(t, RT_TUNNEL_GOAWAY_SENT, f->goaway.error_code);
    }
    return 0;
}

/* ---- life ---- */

void rt_tunnel_init(struct rt_tunnel *t, uv_loop_t *loop, const struct rt_tunnel_cfg *cfg,
                    const struct rt_tunnel_ops *ops, void *arg)
{
    memset(t, 0, sizeof(*t));
    t->cfg = *cfg;
    t->ops = ops;
    t->arg = arg;
    uv_timer_init(loop, &t->timer); /* only initialises fields: always 0 */
    t->timer.data = t;
    px_h2_outbox_init(&t->control_out);
    px_ctl_framer_init(&t->control_in);
    if (cfg->setup_ms)
        uv_timer_start(&t->timer, on_setup_deadline, cfg->setup_ms, 0);
    else
        start_pings(t);
}

int rt_tunnel_start(struct rt_tunnel *t)
{
    static const struct px_h2_callbacks cb = {
        .begin_headers = on_begin_headers,
        .header = on_header,
        .frame_recv = on_frame_recv,
        .data_chunk = on_data_chunk,
        .stream_close = on_stream_close,
        .frame_send = on_frame_send,
    };
    struct px_h2_callbacks c = cb;
    nghttp2_settings_entry iv[4];
    size_t n = 0;
    if (t->cfg.server) {
        iv[n++] =
            (nghttp2_settings_entry){NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, t->cfg.max_streams};
        /* Defect 2d: the edge's resets (its browsers leaving) are not a flood. */
        c.flags = PX_H2_PEER_RESETS_UNLIMITED;
    } else {
        iv[n++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_ENABLE_PUSH, 0};
    }
    iv[n++] =
        (nghttp2_settings_entry){NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, PX_H2_TUNNEL_STREAM_WINDOW};
    iv[n++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_MAX_FRAME_SIZE, MAX_FRAME_SIZE};
    /* RFC 8441: WebSockets and TCP streams reach the server as extended CONNECT. */
    if (t->cfg.server)
        iv[n++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1};
    int rc = px_h2_session_new(&t->h2, t->cfg.server, &c, t, iv, n, PX_H2_TUNNEL_CONN_WINDOW);
    if (rc < 0)
        return rc;
    if (!t->cfg.server && (rc = open_control(t)) < 0)
        return rc;
    kick(t);
    return 0;
}

int rt_tunnel_recv(struct rt_tunnel *t, const uint8_t *data, size_t len)
{
    if (!t->h2)
        return NGHTTP2_ERR_INVALID_STATE;
    ssize_t n = nghttp2_session_mem_recv(t->h2, data, len);
    return n < 0 ? (int)n : 0;
}

void rt_tunnel_ready(struct rt_tunnel *t)
{
    if (t->ready)
        return;
    t->ready = 1;
    if (!t->going_away && !t->closing)
        start_pings(t);
}

void rt_tunnel_disarm(struct rt_tunnel *t)
{
    uv_timer_stop(&t->timer);
}

/* GOAWAY NO_ERROR: the streams the peer opened so far still finish (for
 * the client, which takes no pushed streams, the last id is 0). */
static void submit_goaway(struct rt_tunnel *t)
{
    t->goaway_queued = 1;
    nghttp2_submit_goaway(t->h2, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(t->h2),
                          NGHTTP2_NO_ERROR, NULL, 0);
}

void rt_tunnel_retire(struct rt_tunnel *t)
{
    if (!t->h2 || t->closing)
        return;
    if (!t->goaway_queued)
        submit_goaway(t);
    go_away(t, RT_TUNNEL_RETIRED, NGHTTP2_NO_ERROR);
    kick(t);
}

int rt_tunnel_goaway_notice(struct rt_tunnel *t)
{
    if (!t->h2 || t->closing || t->going_away || t->goaway_queued || t->notice_queued ||
        t->notice_sent)
        return 0;
    int rc = t->cfg.server
                 ? nghttp2_submit_shutdown_notice(t->h2)
                 : nghttp2_submit_goaway(t->h2, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0);
    if (rc != 0)
        return rc == NGHTTP2_ERR_NOMEM ? PX_ERR_NOMEM : PX_ERR_H2;
    t->notice_queued = 1;
    kick(t);
    return 0;
}

void rt_tunnel_shutdown(struct rt_tunnel *t)
{
    t->closing = 1;
    if (!t->h2)
        return;
    submit_goaway(t);
    kick(t);
}

void rt_tunnel_consume(struct rt_tunnel *t, int32_t id, size_t n)
{
    if (!t->h2 || n == 0)
        return;
    nghttp2_session_consume(t->h2, id, n);
    kick(t);
}

void rt_tunnel_resume(struct rt_tunnel *t, int32_t id)
{
    if (!t->h2)
        return;
    /* Fails harmlessly when the stream's data source is not deferred. */
    nghttp2_session_resume_data(t->h2, id);
    kick(t);
}

void rt_tunnel_reset(struct rt_tunnel *t, int32_t id, uint32_t error_code)
{
    if (!t->h2)
        return;
    nghttp2_submit_rst_stream(t->h2, NGHTTP2_FLAG_NONE, id, error_code);
    kick(t);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct rt_tunnel *t = h->data;
    t->ops->closed(t->arg);
}

void rt_tunnel_close(struct rt_tunnel *t)
{
    if (t->h2)
        nghttp2_session_del(t->h2);
    t->h2 = NULL;
    t->closing = 1;
    px_h2_outbox_cleanup(&t->control_out);
    px_ctl_framer_cleanup(&t->control_in);
    uv_timer_stop(&t->timer);
    uv_close((uv_handle_t *)&t->timer, on_timer_closed);
}
