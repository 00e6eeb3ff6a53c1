/* px_h1resp: http_parser callbacks turned into the few events a proxy
 * needs (see px_h1resp.h). */
#include "px_h1resp.h"

#include <stdint.h>
#include <string.h>

static struct px_h1resp *of(http_parser *p)
{
    return p->data;
}

/* A field's name or value in pieces: the first is pointed at in the fed
 * bytes (most heads arrive in one read), later ones are copied. */
static int part_add(struct px_buf *b, const char **at, size_t *len, const char *data, size_t n)
{
    if (!*at && px_buf_len(b) == 0) {
        *at = data;
        *len = n;
        return 0;
    }
    if (*at) {
        if (px_buf_append(b, *at, *len) < 0)
            return -1;
        *at = NULL;
    }
    return px_buf_append(b, data, n);
}

/* The bytes fed are the caller's until the next feed: a piece still
 * pointed at is copied. */
static int part_keep(struct px_buf *b, const char **at, size_t len)
{
    if (!*at)
        return 0;
    const char *p = *at;
    *at = NULL;
    return px_buf_append(b, p, len);
}

static void part_clear(struct px_buf *b, const char **at)
{
    *at = NULL;
    px_buf_consume(b, px_buf_len(b));
}

static const char *part_head(const struct px_buf *b, const char *at)
{
    return at ? at : (const char *)px_buf_head(b);
}

static size_t part_len(const struct px_buf *b, const char *at, size_t len)
{
    return at ? len : px_buf_len(b);
}

static void clear_field(struct px_h1resp *r)
{
    part_clear(&r->name, &r->name_at);
    part_clear(&r->value, &r->value_at);
}

static int on_begin(http_parser *p)
{
    struct px_h1resp *r = of(p);
    r->started = 1;
    r->interim = 0;
    r->in_value = 0;
    clear_field(r);
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
        const char *v = part_head(&r->value, r->value_at);
        size_t vl = part_len(&r->value, r->value_at, r->value_len);
        while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            vl--;
        rc = r->ops->field(r->arg, part_head(&r->name, r->name_at),
                           part_len(&r->name, r->name_at, r->name_len), vl ? v : "", vl);
        if (rc < 0)
            r->err = rc == PX_H1RESP_TOO_LARGE ? PX_H1RESP_TOO_LARGE : PX_H1RESP_ABORTED;
    }
    clear_field(r);
    return rc < 0 ? -1 : 0;
}

static int on_field(http_parser *p, const char *at, size_t len)
{
    struct px_h1resp *r = of(p);
    if (r->in_value && flush_field(r) < 0)
        return -1;
    if (r->p.status_code / 100 == 1 || r->head_done)
        return 0; /* an interim response's fields and trailers are not kept */
    if (part_add(&r->name, &r->name_at, &r->name_len, at, len) < 0) {
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
    if (part_add(&r->value, &r->value_at, &r->value_len, at, len) < 0) {
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
    clear_field(r);
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
    if ((part_keep(&r->name, &r->name_at, r->name_len) < 0 ||
         part_keep(&r->value, &r->value_at, r->value_len) < 0) &&
        r->err == PX_H1RESP_OK) {
        r->err = PX_H1RESP_NOMEM;
        return r->err;
    }
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
    clear_field(r);
    px_buf_shrink(&r->name, 1024);
    px_buf_shrink(&r->value, 1024);
}

size_t px_h1resp_held(const struct px_h1resp *r)
{
    return r->name.cap + r->value.cap;
}
