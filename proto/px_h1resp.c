/* px_h1resp: http_parser callbacks turned into the few events a proxy
 * needs (see px_h1resp.h). */
#include "px_h1resp.h"

#include <stdint.h>
#include <string.h>

static struct px_h1resp *of(http_parser *p)
{
    return p->data;
}

static int on_begin(http_parser *p)
{
    struct px_h1resp *r = of(p);
    r->started = 1;
    r->interim = 0;
    r->in_value = 0;
    px_buf_consume(&r->name, px_buf_len(&r->name));
    px_buf_consume(&r->value, px_buf_len(&r->value));
    return 0;
}

/* Hands the field read so far over (final responses only). */
static int flush_field(struct px_h1resp *r)
{
    if (!r->in_value)
        return 0;
    r->in_value = 0;
    int rc = 0;
    if (!r->interim && !r->head_done && r->p.status_code >= 100 && r->p.status_code / 100 != 1) {
        const char *v = (const char *)px_buf_head(&r->value);
        size_t vl = px_buf_len(&r->value);
        while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            vl--;
        rc = r->ops->field(r->arg, (const char *)px_buf_head(&r->name), px_buf_len(&r->name),
                           vl ? v : "", vl);
        if (rc < 0)
            r->err = rc == PX_H1RESP_TOO_LARGE ? PX_H1RESP_TOO_LARGE : PX_H1RESP_ABORTED;
    }
    px_buf_consume(&r->name, px_buf_len(&r->name));
    px_buf_consume(&r->value, px_buf_len(&r->value));
    return rc < 0 ? -1 : 0;
}

static int on_field(http_parser *p, const char *at, size_t len)
{
    struct px_h1resp *r = of(p);
    if (r->in_value && flush_field(r) < 0)
        return -1;
    if (r->p.status_code / 100 == 1 || r->head_done)
        return 0; /* an interim response's fields and trailers are not kept */
    if (px_buf_append(&r->name, at, len) < 0) {
        r->err = PX_H1RESP_NOMEM;
        return -1;
    }
    return 0;
}

static int on_value(http_parser *p, const char *at, size_t len)
{
    struct px_h1resp *r = of(p);
    r->in_value = 1;
    if (r->p.status_code / 100 == 1 || r->head_done)
        return 0;
    if (px_buf_append(&r->value, at, len) < 0) {
        r->err = PX_H1RESP_NOMEM;
        return -1;
    }
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct px_h1resp *r = of(p);
    if (p->status_code / 100 == 1) {
        if (p->status_code == 101 || p->upgrade) {
            r->err = PX_H1RESP_BAD; /* switching protocols was never asked for */
            return -1;
        }
        r->in_value = 0;
        r->interim = 1;
        return 1; /* no body; the final response follows */
    }
    if (flush_field(r) < 0)
        return -1;
    if (p->status_code < 200 || p->status_code > 599) {
        r->err = PX_H1RESP_BAD;
        return -1;
    }
    int no_body = r->head_request || p->status_code == 204 || p->status_code == 304;
    r->head_done = 1;
    /* Neither chunked nor a length (http_parser keeps ULLONG_MAX then): the
     * body runs until the origin closes. */
    r->until_close = !no_body && !(p->flags & F_CHUNKED) && p->content_length == UINT64_MAX;
    if (r->ops->head(r->arg, (int)p->status_code, !no_body) < 0) {
        r->err = PX_H1RESP_ABORTED;
        return -1;
    }
    return no_body ? 1 : 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct px_h1resp *r = of(p);
    if (r->ops->body(r->arg, at, len) < 0) {
        r->err = PX_H1RESP_ABORTED;
        return -1;
    }
    return 0;
}

static int on_complete(http_parser *p)
{
    struct px_h1resp *r = of(p);
    if (r->interim)
        return 0; /* the parser goes on with the next message */
    r->complete = 1;
    r->keep_alive = http_should_keep_alive(p) && !r->until_close;
    http_parser_pause(p, 1); /* the bytes after this response are not ours */
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_begin,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_complete,
};

void px_h1resp_init(struct px_h1resp *r, const struct px_h1resp_ops *ops, void *arg)
{
    memset(r, 0, sizeof(*r));
    r->ops = ops;
    r->arg = arg;
    px_buf_init(&r->name);
    px_buf_init(&r->value);
    px_buf_set_min_cap(&r->name, 64);
    px_buf_set_min_cap(&r->value, 256);
    px_h1resp_reset(r, 0);
}

void px_h1resp_reset(struct px_h1resp *r, int head_request)
{
    http_parser_init(&r->p, HTTP_RESPONSE);
    r->p.data = r;
    r->head_request = head_request;
    px_buf_consume(&r->name, px_buf_len(&r->name));
    px_buf_consume(&r->value, px_buf_len(&r->value));
    r->in_value = r->interim = r->head_done = r->complete = r->started = 0;
    r->keep_alive = r->until_close = 0;
    r->err = PX_H1RESP_OK;
}

void px_h1resp_cleanup(struct px_h1resp *r)
{
    px_buf_cleanup(&r->name);
    px_buf_cleanup(&r->value);
}

static int fail(struct px_h1resp *r)
{
    if (r->err == PX_H1RESP_OK) {
        enum http_errno e = HTTP_PARSER_ERRNO(&r->p);
        r->err = e == HPE_HEADER_OVERFLOW ? PX_H1RESP_TOO_LARGE : PX_H1RESP_BAD;
    }
    return r->err;
}

int px_h1resp_feed(struct px_h1resp *r, const char *data, size_t len, size_t *used)
{
    *used = 0;
    if (r->err != PX_H1RESP_OK)
        return r->err;
    if (r->complete || len == 0)
        return 0;
    r->started = 1;
    size_t n = http_parser_execute(&r->p, &settings, data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&r->p);
    if (e == HPE_PAUSED && r->complete) {
        *used = n;
        return 0;
    }
    if (e != HPE_OK)
        return fail(r);
    *used = n;
    return 0;
}

int px_h1resp_eof(struct px_h1resp *r)
{
    if (r->err != PX_H1RESP_OK)
        return r->err;
    if (r->complete)
        return 0;
    if (r->head_done) {
        http_parser_execute(&r->p, &settings, NULL, 0);
        if (r->complete)
            return 0;
    }
    r->err = PX_H1RESP_TRUNCATED;
    return r->err;
}

void px_h1resp_shrink(struct px_h1resp *r)
{
    px_buf_consume(&r->name, px_buf_len(&r->name));
    px_buf_consume(&r->value, px_buf_len(&r->value));
    px_buf_shrink(&r->name, 1024);
    px_buf_shrink(&r->value, 1024);
}

size_t px_h1resp_held(const struct px_h1resp *r)
{
    return r->name.cap + r->value.cap;
}
