/* Browser-facing HTTP/1.1 (parsed by http-parser), one request at a time;
 * pipelined requests wait in `in` until the current response is done. */
#include "es_front.h"
#include "es_metrics.h"
#include "es_req.h"
#include "es_server.h"
#include "px_err.h"
#include "px_errpage.h"
#include "px_log.h"
#include "px_ws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define IN_MAX (64 * 1024)

static void h1_resp_headers(struct es_req *r);
static void h1_resp_data(struct es_req *r);
static void h1_req_consumed(struct es_req *r, size_t n);
static int parse_more(struct es_front *f);

static const struct es_front_ops h1_ops = {
    .resp_headers = h1_resp_headers, .resp_data = h1_resp_data, .req_consumed = h1_req_consumed};

static void h1_resp_headers(struct es_req *r)
{
    struct es_front *f = r->front;
    if (f)
        rt_conn_want_write(&f->conn);
}

static void h1_resp_data(struct es_req *r)
{
    struct es_front *f = r->front;
    if (f)
        rt_conn_want_write(&f->conn);
}

static void h1_req_consumed(struct es_req *r, size_t n)
{
    (void)n;
    struct es_front *f = r->front;
    if (f)
        es_front_body_seen(f, r);
    if (f && f->conn.read_paused && px_buf_len(&r->req_body) <= ES_REQ_BODY_LOW &&
        px_buf_len(&f->in) < IN_MAX)
        rt_conn_resume_read(&f->conn);
}

static int append(char **dst, size_t *dlen, const char *p, size_t n)
{
    char *d = realloc(*dst, *dlen + n + 1);
    if (!d)
        return -1;
    memcpy(d + *dlen, p, n);
    *dlen += n;
    d[*dlen] = '\0';
    *dst = d;
    return 0;
}

/* A complete request header field (px_hdracc emit). */
static int add_header(void *arg, const char *name, size_t nlen, const char *value, size_t vlen)
{
    struct es_front *f = arg;
    if (!f->cur)
        return 0;
    if (nlen == 6 && strncasecmp(name, "expect", 6) == 0 && vlen == 12 &&
        strncasecmp(value, "100-continue", 12) == 0)
        f->expect_continue = 1;
    return es_req_add_header(f->cur, name, nlen, value, vlen);
}

static int on_message_begin(http_parser *p)
{
    struct es_front *f = p->data;
    f->cur = es_req_new(f->srv, &h1_ops, f, f->conn.peer_ip, f->sni);
    if (!f->cur)
        return -1;
    f->cur->front_proto = "HTTP/1.1";
    es_req_set_peer(f->cur, &f->peer);
    es_req_set_home_peer(f->cur, f->home_peer);
    es_front_head_begin(f);
    f->head_sent = f->chunked_out = f->req_complete = f->expect_continue = f->in_trailers = 0;
    free(f->url);
    f->url = NULL;
    f->url_len = 0;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct es_front *f = p->data;
    return f->url_len + len > ES_REQ_MAX_PATH ? -1 : append(&f->url, &f->url_len, at, len);
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct es_front *f = p->data;
    if (f->in_trailers)
        return 0; /* trailers are not forwarded (a chunked body's last part) */
    return px_hdracc_field(&f->hdr, at, len) < 0 ? -1 : 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct es_front *f = p->data;
    if (f->in_trailers)
        return 0;
    return px_hdracc_value(&f->hdr, at, len) < 0 ? -1 : 0;
}

static int on_headers_complete(http_parser *p)
{
    struct es_front *f = p->data;
    struct es_req *r = f->cur;
    if (px_hdracc_end(&f->hdr) < 0)
        return -1;
    f->in_trailers = 1; /* header callbacks from here on are the body's trailers */
    const char *m = http_method_str((enum http_method)p->method);
    if (es_req_add_header(r, ":method", 7, m, strlen(m)) < 0)
        return -1;
    if (p->method == HTTP_CONNECT) {
        /* An authority-form target, and a tunnel if accepted: es_req answers
         * 405 and the connection closes after it. */
        f->keep_alive = 0;
        es_req_dispatch(r, 0);
        es_front_head_end(f);
        return 0;
    }
    const char *path = f->url ? f->url : "/";
    size_t plen = f->url ? f->url_len : 1;
    if (plen > 7 &&
        (strncasecmp(path, "http://", 7) == 0 || strncasecmp(path, "https://", 8) == 0)) {
        /* absolute-form: the authority in the URL wins over Host. */
        const char *a = strstr(path, "://") + 3;
        const char *slash = memchr(a, '/', plen - (size_t)(a - path));
        size_t alen = slash ? (size_t)(slash - a) : plen - (size_t)(a - path);
        r->host[0] = '\0';
        if (es_req_add_header(r, ":authority", 10, a, alen) < 0)
            return -1;
        path = slash ? slash : "/";
        plen = slash ? plen - (size_t)(slash - f->url) : 1;
    } else if (path[0] != '/' && !(plen == 1 && path[0] == '*')) {
        return -1;
    }
    if (es_req_add_header(r, ":path", 5, path, plen) < 0)
        return -1;
    f->keep_alive = http_should_keep_alive(p) && !p->upgrade;
    int has_body =
        (p->flags & F_CHUNKED) || (p->content_length > 0 && p->content_length != ULLONG_MAX);
    if (p->upgrade) {
        int ws = es_req_make_websocket(r);
        if (ws < 0)
            return -1;
        if (ws == 1) {
            /* The rest of the connection is WebSocket frames for the tunnel. */
            f->upgraded = 1;
            f->keep_alive = 0;
            has_body = 1;
        }
    }
    if (f->expect_continue && p->http_minor >= 1 && has_body) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        rt_conn_write(&f->conn, cont, sizeof(cont) - 1);
        rt_conn_want_write(&f->conn);
    }
    es_req_dispatch(r, has_body);
    es_front_head_end(f); /* a whole request head arrived in time */
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct es_front *f = p->data;
    if (!f->cur || es_req_body(f->cur, (const uint8_t *)at, len) < 0)
        return -1;
    if (f->cur && px_buf_len(&f->cur->req_body) > ES_REQ_BODY_HIGH)
        rt_conn_pause_read(&f->conn);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct es_front *f = p->data;
    f->req_complete = 1;
    if (f->upgraded)
        return 0; /* the upgraded stream goes on; it ends when the client closes */
    if (f->cur)
        es_req_body_end(f->cur);
    http_parser_pause(p, 1); /* one request at a time */
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

int es_front_h1_start(struct es_front *f)
{
    http_parser_init(&f->parser, HTTP_REQUEST);
    f->parser.data = f;
    /* http_parser bounds the whole head (HTTP_MAX_HEADER_SIZE, 431 past it)
     * and es_req the fields it keeps: no tighter cap here. */
    px_hdracc_init(&f->hdr, 0, 0, add_header, f);
    px_buf_init(&f->in);
    return 0;
}

static void bad_request(struct es_front *f, int status, const char *why)
{
    size_t len = 0;
    char *page = px_errpage_render(status, why, &len);
    struct px_buf h;
    px_buf_init(&h);
    if (px_buf_appendf(&h,
                       "HTTP/1.1 %d %s\r\ncontent-type: text/html; charset=utf-8\r\n"
                       "content-length: %zu\r\nconnection: close\r\n\r\n",
                       status, px_status_reason(status), page ? len : 0) == 0 &&
        rt_conn_write(&f->conn, px_buf_head(&h), px_buf_len(&h)) == 0 && page)
        rt_conn_write(&f->conn, page, len);
    px_buf_cleanup(&h);
    free(page);
    rt_conn_close(&f->conn, 0);
}

static int parse_more(struct es_front *f)
{
    while (px_buf_len(&f->in) > 0 && !f->conn.closing && !f->conn.closed) {
        if (HTTP_PARSER_ERRNO(&f->parser) == HPE_PAUSED)
            break;
        size_t len = px_buf_len(&f->in);
        size_t n =
            http_parser_execute(&f->parser, &settings, (const char *)px_buf_head(&f->in), len);
        enum http_errno e = HTTP_PARSER_ERRNO(&f->parser);
        if (e != HPE_OK && e != HPE_PAUSED) {
            PX_DEBUG("browser %s: bad HTTP/1.1 request: %s", f->conn.peer_ip,
                     http_errno_description(e));
            int status = e == HPE_HEADER_OVERFLOW ? 431 : e == HPE_CB_url ? 414 : 400;
            enum es_refusal why = status == 431   ? ES_REFUSAL_HEADERS_TOO_LARGE
                                  : status == 414 ? ES_REFUSAL_URI_TOO_LONG
                                                  : ES_REFUSAL_BAD_REQUEST;
            if (f->cur && !f->cur->resp_headers_done && !f->head_sent) {
                struct es_req *r = f->cur;
                f->cur = NULL;
                es_req_front_refused(r, status, why);
                es_req_front_done(r);
            } else if (f->cur) {
                es_req_front_refused(f->cur, 0, why); /* cut mid-response */
                rt_conn_abort(&f->conn, 0);
                return -1;
            } else {
                es_metrics_refusal(f->srv->metrics, why, es_metrics_now_ms());
            }
            bad_request(f, status,
                        e == HPE_CB_url ? "the request's path is too long"
                                        : http_errno_description(e));
            return 0;
        }
        px_buf_consume(&f->in, n);
        if (f->parser.upgrade) {
            if (f->upgraded && f->cur) {
                /* Bytes after the head already belong to the WebSocket. */
                size_t rest = px_buf_len(&f->in);
                if (rest && es_req_body(f->cur, px_buf_head(&f->in), rest) < 0)
                    return -1;
                px_buf_consume(&f->in, rest);
            } else {
                /* Other upgrades (h2c...) are not carried: answer, then close. */
                f->keep_alive = 0;
                px_buf_consume(&f->in, px_buf_len(&f->in));
            }
            break;
        }
        if (n == 0)
            break;
    }
    if (px_buf_len(&f->in) >= IN_MAX)
        rt_conn_pause_read(&f->conn);
    px_buf_shrink(&f->in, 0);
    return 0;
}

int es_front_h1_on_data(struct es_front *f, const uint8_t *data, size_t len)
{
    if (f->upgraded) {
        if (!f->cur)
            return 0;
        if (es_req_body(f->cur, data, len) < 0)
            return -1;
        if (f->cur && px_buf_len(&f->cur->req_body) > ES_REQ_BODY_HIGH)
            rt_conn_pause_read(&f->conn);
        return 0;
    }
    if (px_buf_append(&f->in, data, len) < 0)
        return -1;
    return parse_more(f);
}

/* The response's header fields, one per line, written to c as they are
 * (rt_conn gathers the pieces: during a flush into the loop's staging
 * scratch, no buffer per head). Returns 0 or < 0. */
static int write_fields(struct rt_conn *c, const struct es_req *r, int skip_length)
{
    int rc = 0;
    size_t n;
    const nghttp2_nv *fields = es_req_resp_fields(r, &n);
    for (size_t i = 0; i < n && rc == 0; i++) {
        const nghttp2_nv *nv = &fields[i];
        if (skip_length && nv->namelen == 14 && memcmp(nv->name, "content-length", 14) == 0)
            continue;
        rc = rt_conn_write(c, nv->name, nv->namelen);
        if (rc == 0)
            rc = rt_conn_write(c, ": ", 2);
        if (rc == 0)
            rc = rt_conn_write(c, nv->value, nv->valuelen);
        if (rc == 0)
            rc = rt_conn_write(c, "\r\n", 2);
    }
    return rc;
}

/* 101 Switching Protocols for a WebSocket the tunnel accepted (RFC 6455). */
static int write_ws_head(struct es_front *f, struct es_req *r)
{
    char accept[PX_WS_ACCEPT_LEN];
    int rc = px_ws_accept(r->ws_key, strlen(r->ws_key), accept);
    if (rc < 0)
        return rc; /* the key was checked when the request came in */
    static const char head[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                               "Connection: Upgrade\r\nSec-WebSocket-Accept: ";
    rc = rt_conn_write(&f->conn, head, sizeof(head) - 1);
    if (rc == 0)
        rc = rt_conn_write(&f->conn, accept, strlen(accept));
    if (rc == 0)
        rc = rt_conn_write(&f->conn, "\r\n", 2);
    if (rc == 0)
        rc = write_fields(&f->conn, r, 1);
    if (rc == 0)
        rc = rt_conn_write(&f->conn, "\r\n", 2);
    f->head_sent = rc == 0;
    f->chunked_out = 0;
    return rc;
}

static int write_head(struct es_front *f, struct es_req *r)
{
    if (f->upgraded && r->resp_status == 200 && !r->local)
        return write_ws_head(f, r);
    /* The status line: a 3-digit status and a reason from our own table. */
    char line[96];
    int k = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", r->resp_status,
                     px_status_reason(r->resp_status));
    int rc =
        k > 0 && (size_t)k < sizeof(line) ? rt_conn_write(&f->conn, line, (size_t)k) : PX_ERR_INVAL;
    if (rc == 0)
        rc = write_fields(&f->conn, r, 0);
    int bodyless = r->is_head || r->resp_status == 204 || r->resp_status == 304;
    if (!bodyless && r->resp_content_length < 0) {
        if (f->parser.http_major == 1 && f->parser.http_minor >= 1) {
            f->chunked_out = 1;
            if (rc == 0)
                rc = rt_conn_write(&f->conn, "transfer-encoding: chunked\r\n", 28);
        } else {
            f->keep_alive = 0; /* HTTP/1.0: the body ends at close */
        }
    }
    if (!f->req_complete)
        f->keep_alive = 0; /* answered before the upload finished */
    if (f->srv->drain_phase)
        f->keep_alive = 0; /* draining (es_drain.h): the next request goes elsewhere */
    if (!f->keep_alive && rc == 0)
        rc = rt_conn_write(&f->conn, "connection: close\r\n", 19);
    if (rc == 0)
        rc = rt_conn_write(&f->conn, "\r\n", 2);
    f->head_sent = rc == 0;
    return rc;
}

static void finish_request(struct es_front *f)
{
    struct es_req *r = f->cur;
    f->cur = NULL;
    int complete = f->req_complete;
    es_req_front_done(r);
    if (!f->keep_alive || !complete || f->srv->drain_phase) {
        rt_conn_close(&f->conn, 0);
        return;
    }
    http_parser_pause(&f->parser, 0);
    es_front_idle_arm(f);
    rt_conn_resume_read(&f->conn);
    parse_more(f);
}

int es_front_h1_on_writable(struct es_front *f)
{
    struct es_req *r = f->cur;
    if (!r || !r->resp_headers_done)
        return 0;
    if (!f->head_sent) {
        if (write_head(f, r) < 0) {
            /* End the connection now: a graceful close would ask for output
             * again, and no body may go out without its head. */
            rt_conn_abort(&f->conn, PX_ERR_NOMEM);
            return 0;
        }
        es_req_resp_head_sent(r); /* rt_conn_write copied it */
    }
    uint8_t buf[16384];
    for (;;) {
        size_t room = rt_conn_write_room(&f->conn);
        if (room == 0)
            return 0;
        size_t n = es_req_take_body(r, buf, room < sizeof(buf) ? room : sizeof(buf));
        if (n == 0)
            break;
        if (f->chunked_out) {
            char sz[24];
            int k = snprintf(sz, sizeof(sz), "%zx\r\n", n);
            if (k < 0 || (size_t)k >= sizeof(sz))
                return -1; /* cannot happen: 16 hex digits at most */
            if (rt_conn_write(&f->conn, sz, (size_t)k) < 0 || rt_conn_write(&f->conn, buf, n) < 0 ||
                rt_conn_write(&f->conn, "\r\n", 2) < 0)
                return -1;
        } else if (rt_conn_write(&f->conn, buf, n) < 0) {
            return -1;
        }
    }
    if (r->resp_error) {
        /* The response cannot complete: cut the connection so the client
         * does not mistake a truncated body for a whole one. */
        rt_conn_abort(&f->conn, 0);
        return 0;
    }
    if (r->resp_eof) {
        if (f->chunked_out && rt_conn_write(&f->conn, "0\r\n\r\n", 5) < 0)
            return -1;
        finish_request(f);
    }
    return 0;
}

void es_front_h1_timeout(struct es_front *f, int head)
{
    struct es_req *r = f->cur;
    if (r && (head || (!f->head_sent && !r->resp_headers_done))) {
        /* Nothing was answered yet: say why, then close. */
        r->timed_out = 1;
        f->cur = NULL;
        es_req_front_refused(r, 408, ES_REFUSAL_TIMEOUT);
        es_req_front_done(r);
        bad_request(f, 408,
                    head ? "the request head did not arrive in time"
                         : "the request body stopped arriving");
        return;
    }
    if (!r && head) {
        es_metrics_refusal(f->srv->metrics, ES_REFUSAL_TIMEOUT, es_metrics_now_ms());
        bad_request(f, 408, "the request head did not arrive in time");
        return;
    }
    if (r)
        es_req_front_refused(r, 0, ES_REFUSAL_TIMEOUT);
    rt_conn_abort(&f->conn, 0); /* mid-response: a cut is the only honest answer */
}

void es_front_h1_on_close(struct es_front *f)
{
    if (f->cur) {
        struct es_req *r = f->cur;
        f->cur = NULL;
        es_req_front_done(r);
    }
    px_hdracc_cleanup(&f->hdr);
    free(f->url);
    px_buf_cleanup(&f->in);
}
