/* Browser-facing HTTP/2: an nghttp2 server session per connection. */
#include "es_front.h"
#include "es_req.h"
#include "es_server.h"
#include "px_err.h"
#include "px_h2.h"
#include "px_log.h"
#include "px_nv.h"
#include "rt_h2.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STREAM_WINDOW (1 << 20)
#define CONN_WINDOW (16 << 20)

static void h2_resp_headers(struct es_req *r);
static void h2_resp_data(struct es_req *r);
static void h2_req_consumed(struct es_req *r, size_t n);

static const struct es_front_ops h2_ops = {
    .resp_headers = h2_resp_headers, .resp_data = h2_resp_data, .req_consumed = h2_req_consumed};

static ssize_t resp_read(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *user)
{
    (void)h2;
    (void)id;
    (void)user;
    struct es_req *r = src->ptr;
    size_t n = es_req_take_body(r, buf, len);
    if (px_buf_len(&r->resp_body) == 0) {
        if (r->resp_error)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM to the browser */
        if (r->resp_eof) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            return (ssize_t)n;
        }
    }
    if (n == 0)
        return NGHTTP2_ERR_DEFERRED;
    return (ssize_t)n;
}

static void h2_resp_headers(struct es_req *r)
{
    struct es_front *f = r->front;
    if (!f || !f->h2)
        return;
    int body = !(r->is_head || r->resp_status == 204 || r->resp_status == 304 ||
                 (r->resp_eof && r->resp_content_length == 0 && px_buf_len(&r->resp_body) == 0));
    nghttp2_data_provider dp = {.source.ptr = r, .read_callback = resp_read};
    size_t n;
    const nghttp2_nv *fields = es_req_resp_fields(r, &n);
    if (px_nv_submit_response(f->h2, r->front_sid, r->resp_status, fields, n, body ? &dp : NULL) <
        0)
        nghttp2_submit_rst_stream(f->h2, NGHTTP2_FLAG_NONE, r->front_sid, NGHTTP2_INTERNAL_ERROR);
    es_req_resp_head_sent(r); /* nghttp2 has its own copy */
    rt_conn_want_write(&f->conn);
}

static void h2_resp_data(struct es_req *r)
{
    struct es_front *f = r->front;
    if (!f || !f->h2)
        return;
    if (!r->resp_headers_done) {
        return;
    }
    nghttp2_session_resume_data(f->h2, r->front_sid);
    rt_conn_want_write(&f->conn);
}

static void h2_req_consumed(struct es_req *r, size_t n)
{
    struct es_front *f = r->front;
    if (!f || !f->h2)
        return;
    es_front_body_seen(f, r);
    nghttp2_session_consume(f->h2, r->front_sid, n);
    rt_conn_want_write(&f->conn);
}

static int on_begin_headers(nghttp2_session *h2, const nghttp2_frame *fr, void *user)
{
    struct es_front *f = user;
    if (fr->hd.type != NGHTTP2_HEADERS || fr->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct es_req *r = es_req_new(f->srv, &h2_ops, f, f->conn.peer_ip, f->sni);
    if (!r)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    r->front_sid = fr->hd.stream_id;
    es_req_set_peer(r, &f->peer);
    es_req_set_home_peer(r, f->home_peer);
    r->front_proto = "HTTP/2";
    r->head_pending = 1;
    es_front_head_begin(f);
    px_list_insert_head(&f->reqs, &r->front_node);
    nghttp2_session_set_stream_user_data(h2, fr->hd.stream_id, r);
    return 0;
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *fr, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
    (void)flags;
    (void)user;
    if (fr->hd.type != NGHTTP2_HEADERS || fr->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct es_req *r = nghttp2_session_get_stream_user_data(h2, fr->hd.stream_id);
    if (!r)
        return 0;
    if (es_req_add_header(r, (const char *)name, nlen, (const char *)value, vlen) < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

static int on_frame_recv(nghttp2_session *h2, const nghttp2_frame *fr, void *user)
{
    struct es_front *f = user;
    if (fr->hd.stream_id == 0)
        return 0;
    struct es_req *r = nghttp2_session_get_stream_user_data(h2, fr->hd.stream_id);
    if (!r)
        return 0;
    int end = (fr->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (fr->hd.type == NGHTTP2_HEADERS && fr->headers.cat == NGHTTP2_HCAT_REQUEST) {
        es_req_dispatch(r, !end);
        r->head_pending = 0;
        es_front_head_end(f);
        return 0;
    }
    if ((fr->hd.type == NGHTTP2_DATA || fr->hd.type == NGHTTP2_HEADERS) && end)
        es_req_body_end(r);
    return 0;
}

static int on_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user)
{
    (void)flags;
    (void)user;
    struct es_req *r = nghttp2_session_get_stream_user_data(h2, id);
    if (!r) {
        nghttp2_session_consume(h2, id, len);
        return 0;
    }
    return es_req_body(r, data, len) < 0 ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
}

static int on_stream_close(nghttp2_session *h2, int32_t id, uint32_t err, void *user)
{
    (void)err;
    struct es_front *f = user;
    struct es_req *r = nghttp2_session_get_stream_user_data(h2, id);
    if (!r)
        return 0;
    nghttp2_session_set_stream_user_data(h2, id, NULL);
    px_list_remove(&r->front_node);
    if (r->head_pending) {
        r->head_pending = 0;
        es_front_head_end(f); /* reset before its head was complete */
    }
    if (px_list_empty(&f->reqs))
        es_front_idle_arm(f);
    /* Upload bytes not yet passed to the tunnel: return their connection credit. */
    if (px_buf_len(&r->req_body))
        nghttp2_session_consume_connection(h2, px_buf_len(&r->req_body));
    es_req_front_done(r);
    return 0;
}

int es_front_h2_start(struct es_front *f)
{
    static const struct px_h2_callbacks cb = {
        .begin_headers = on_begin_headers,
        .header = on_header,
        .frame_recv = on_frame_recv,
        .data_chunk = on_data_chunk,
        .stream_close = on_stream_close,
    };
    const nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 128},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
        /* RFC 8441: lets browsers run WebSockets over this connection. */
        {NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1},
    };
    return px_h2_session_new(&f->h2, 1, &cb, f, iv, 3, CONN_WINDOW) < 0 ? -1 : 0;
}

int es_front_h2_on_data(struct es_front *f, const uint8_t *data, size_t len)
{
    ssize_t n = nghttp2_session_mem_recv(f->h2, data, len);
    if (n < 0) {
        PX_DEBUG("browser %s: HTTP/2 error: %s", f->conn.peer_ip, nghttp2_strerror((int)n));
        return -1;
    }
    return 0;
}

int es_front_h2_on_writable(struct es_front *f)
{
    return rt_h2_flush(&f->conn, f->h2);
}

void es_front_h2_timeout(struct es_front *f, struct es_req *r)
{
    if (!f->h2)
        return;
    if (!r) {
        /* A HEADERS block left open stalls the whole connection: end it. */
        nghttp2_submit_goaway(f->h2, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(f->h2),
                              NGHTTP2_PROTOCOL_ERROR, NULL, 0);
        rt_conn_close(&f->conn, 0);
        return;
    }
    r->timed_out = 1;
    nghttp2_submit_rst_stream(f->h2, NGHTTP2_FLAG_NONE, r->front_sid, NGHTTP2_CANCEL);
    rt_conn_want_write(&f->conn);
}

int es_front_h2_drain(struct es_front *f, int final)
{
    if (!f->h2)
        return -1;
    /* The notice's last-stream-id is 2^31-1: streams opened meanwhile are
     * served; the final one names the last stream taken, and the session
     * ends once those are done (rt_h2_flush: nothing to read or write). */
    int rc = final ? nghttp2_submit_goaway(f->h2, NGHTTP2_FLAG_NONE,
                                           nghttp2_session_get_last_proc_stream_id(f->h2),
                                           NGHTTP2_NO_ERROR, NULL, 0)
                   : nghttp2_submit_shutdown_notice(f->h2);
    rt_conn_want_write(&f->conn);
    return rc == 0 ? 0 : -1;
}

void es_front_h2_on_close(struct es_front *f)
{
    nghttp2_session *h2 = f->h2;
    f->h2 = NULL;
    /* nghttp2_session_del does not report open streams: release them here. */
    struct px_list_node *n;
    while ((n = px_list_first(&f->reqs))) {
        px_list_remove(n);
        es_req_front_done(px_container_of(n, struct es_req, front_node));
    }
    if (h2)
        nghttp2_session_del(h2);
}
