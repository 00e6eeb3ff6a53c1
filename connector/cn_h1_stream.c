/* cn_h1_stream: a stream's origin request over the lean client (cn_h1.h)
 * instead of libcurl, for plain http:// and unix: origins. The request
 * head is serialised here from the fields cn_stream_on_header kept (the one
 * filter both paths share); the response goes through the same stream
 * functions the curl callbacks use, with the same caps and backpressure. */
#include "cn_ingress.h"
#include "cn_stream_int.h"
#include "px_h1resp.h"
#include "px_headers.h"
#include "px_log.h"

#include <string.h>

static struct cn_stream *of(struct cn_h1_req *q)
{
    return px_container_of(q, struct cn_stream, h1q);
}

int cn_stream_h1_eligible(const struct cn_stream *s)
{
    const struct cn_rule *r = s->rule;
    return s->host.env.h1 && !r->tls && (r->kind == CN_SVC_HTTP || r->kind == CN_SVC_UNIX);
}

static int q_field(struct cn_h1_req *q, const char *n, size_t nl, const char *v, size_t vl)
{
    struct cn_stream *s = of(q);
    if (px_hdr_is_hop_by_hop(n, nl) || !px_hdr_valid(n, nl, v, vl))
        return 0;
    if (cn_stream_add_resp_header(s, n, nl, v, vl) < 0)
        return s->resp_headers_too_large ? PX_H1RESP_TOO_LARGE : -1;
    return 0;
}

static int q_head(struct cn_h1_req *q, int status, int has_body)
{
    struct cn_stream *s = of(q);
    uv_timer_stop(&s->timer);
    cn_stream_origin_answered(s);
    s->resp_status = status;
    if (!has_body)
        s->resp_eof = 1;
    return cn_stream_submit(s, has_body);
}

static int q_body(struct cn_h1_req *q, const char *data, size_t len)
{
    struct cn_stream *s = of(q);
    if (cn_stream_resp_put(s, data, len) < 0)
        return -1;
    cn_stream_from_origin(s, len);
    return 0;
}

static int q_room(struct cn_h1_req *q)
{
    struct cn_stream *s = of(q);
    return px_buf_len(&s->resp_body) < CN_STREAM_RESP_HIGH && !s->host.ops->hold(s->host.arg, 0);
}

static size_t q_upload(struct cn_h1_req *q, uint8_t *out, size_t cap, int *eof)
{
    struct cn_stream *s = of(q);
    size_t n = px_buf_read(&s->req_body, out, cap);
    cn_stream_req_taken(s, n);
    cn_stream_to_origin(s, n);
    /* Upload progress counts as origin activity for the response deadline. */
    if (n && !s->resp_submitted)
        uv_timer_again(&s->timer);
    *eof = s->req_eof && px_buf_len(&s->req_body) == 0;
    return n;
}

static void q_done(struct cn_h1_req *q, enum cn_h1_err err, int uv_status)
{
    struct cn_stream *s = of(q);
    s->origin_started = 0;
    uv_timer_stop(&s->timer);
    px_buf_cleanup(&q->head);
    if (err == CN_H1_OK) {
        cn_stream_resp_end(s, 0);
    } else if (!s->resp_submitted) {
        cn_stream_h1_failed(s, err, uv_status);
    } else {
        cn_stream_origin_error(s, CN_ORIGIN_RESET);
        PX_WARN("stream %d: origin failed mid-response: %s", s->id,
                uv_status ? uv_strerror(uv_status) : "the connection closed early");
        cn_stream_resp_end(s, 1);
    }
}

static const struct cn_h1_req_ops q_ops = {
    .field = q_field,
    .head = q_head,
    .body = q_body,
    .room = q_room,
    .upload = q_upload,
    .done = q_done,
};

static int add(struct px_buf *b, const char *a, const char *v)
{
    return px_buf_append_str(b, a) < 0 || px_buf_append_str(b, v) < 0 ||
                   px_buf_append(b, "\r\n", 2) < 0
               ? -1
               : 0;
}

/* The head, as curl sends it for the same stream (start_origin): the
 * request line, Host, X-Forwarded-Host when httpHostHeader replaces the
 * host, the fields kept from the edge, and the body's framing. */
static int build_head(struct cn_stream *s, struct px_buf *b)
{
    const struct cn_rule *r = s->rule;
    struct cn_h1_req *q = &s->h1q;
    const char *path = s->path[0] == '/' ? s->path : "/";
    if (px_buf_append_str(b, s->method) < 0 || px_buf_append(b, " ", 1) < 0 ||
        add(b, path, " HTTP/1.1") < 0 ||
        add(b, "Host: ", r->o.http_host_header ? r->o.http_host_header : s->authority) < 0)
        return -1;
    if (r->o.http_host_header && !s->has_xfh && add(b, "X-Forwarded-Host: ", s->authority) < 0)
        return -1;
    if (px_buf_append(b, px_buf_head(&s->req_fields), px_buf_len(&s->req_fields)) < 0)
        return -1;
    q->body = CN_H1_BODY_NONE;
    if (s->is_head) {
        q->head_request = 1;
    } else if (s->req_has_body || strcmp(s->method, "POST") == 0 || strcmp(s->method, "PUT") == 0 ||
               strcmp(s->method, "PATCH") == 0) {
        long long len = s->req_has_body ? s->content_length : 0;
        if (len < 0) {
            q->body = CN_H1_BODY_CHUNKED;
            if (px_buf_append_str(b, "Transfer-Encoding: chunked\r\n") < 0)
                return -1;
        } else {
            if (len > 0)
                q->body = CN_H1_BODY_LENGTH;
            q->body_len = (uint64_t)len;
            if (px_buf_appendf(b, "Content-Length: %lld\r\n", len) < 0)
                return -1;
        }
    }
    return px_buf_append(b, "\r\n", 2) < 0 ? -1 : 0;
}

int cn_stream_h1_start(struct cn_stream *s)
{
    const struct cn_rule *r = s->rule;
    struct cn_h1_req *q = &s->h1q;
    q->ops = &q_ops;
    px_buf_init(&q->head);
    px_buf_set_min_cap(&q->head, 512);
    if (build_head(s, &q->head) < 0)
        goto out_head;
    const struct cn_h1_target t = {
        .unix_path = r->kind == CN_SVC_UNIX ? r->unix_path : NULL,
        .host = r->host,
        .port = r->port,
        .connect_timeout_ms = r->o.connect_timeout_s * 1000, /* 0: cn_h1's default, 300 s */
        .keepalive_conns = r->o.keepalive_conns,
        .keepalive_timeout_ms = r->o.keepalive_timeout_s * 1000,
    };
    if (cn_h1_start(s->host.env.h1, q, &t) < 0)
        goto out_head;
    s->lean = 1;
    s->origin_started = 1;
    s->t_origin = uv_hrtime();
    return 0;
out_head:
    px_buf_cleanup(&q->head); /* not lean: release() would not free it */
    return -1;
}
