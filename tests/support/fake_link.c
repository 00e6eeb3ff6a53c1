#include "fake_link.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* budget and pick get no context (es_link_ops): the fake fl_init set up. */
static struct fake_link *current;

/* The held stream sid; NULL (and counted as late) if it is not held. */
static struct fl_stream *by_sid(struct fake_link *fl, int32_t sid)
{
    for (size_t i = 0; i < fl->n; i++)
        if (fl->s[i].sid == sid && fl->s[i].r)
            return &fl->s[i];
    fl->late++;
    return NULL;
}

static unsigned budget(const struct es_tunnel *t, const char *host, unsigned *n_links)
{
    (void)t;
    (void)host;
    current->budgets++;
    *n_links = current->n_links;
    return current->capacity;
}

static void *pick(struct es_tunnel *t, const char *host)
{
    (void)t;
    (void)host;
    current->picks++;
    return current->full ? NULL : current;
}

static int32_t submit(void *link, struct es_req *r, const nghttp2_nv *nv, size_t n, int has_body)
{
    struct fake_link *fl = link;
    fl->submits++;
    if (fl->refuse) {
        if (fl->refuse > 0)
            fl->refuse--;
        return -1;
    }
    if (fl->n == FL_MAX_STREAMS)
        return -1;
    struct fl_stream *s = &fl->s[fl->n];
    memset(s, 0, sizeof(*s));
    px_buf_init(&s->head);
    for (size_t i = 0; i < n && i < 64; i++)
        if (nv[i].flags & NGHTTP2_NV_FLAG_NO_INDEX)
            s->no_index |= (uint64_t)1 << i;
    for (size_t i = 0; i < n; i++)
        if (px_buf_append(&s->head, nv[i].name, nv[i].namelen) < 0 ||
            px_buf_append(&s->head, ": ", 2) < 0 ||
            px_buf_append(&s->head, nv[i].value, nv[i].valuelen) < 0 ||
            px_buf_append(&s->head, "\n", 1) < 0) {
            px_buf_cleanup(&s->head);
            return -1;
        }
    s->r = r;
    s->sid = (int32_t)(2 * fl->n + 3); /* odd, as a client's streams are */
    s->has_body = has_body;
    fl->n++;
    return s->sid;
}

static void req_more(void *link, int32_t sid)
{
    struct fl_stream *s = by_sid(link, sid);
    if (s)
        s->req_more++;
}

static void resp_consumed(void *link, int32_t sid, size_t n)
{
    struct fl_stream *s = by_sid(link, sid);
    if (s)
        s->consumed += n;
}

static void cancel(void *link, int32_t sid)
{
    struct fl_stream *s = by_sid(link, sid);
    if (s)
        s->cancelled++;
}

const struct es_link_ops fl_ops = {
    .budget = budget,
    .pick = pick,
    .submit = submit,
    .req_more = req_more,
    .resp_consumed = resp_consumed,
    .cancel = cancel,
};

void fl_init(struct fake_link *fl)
{
    memset(fl, 0, sizeof(*fl));
    fl->n_links = 1;
    fl->capacity = 100;
    current = fl;
}

void fl_server_init(struct fake_link *fl, struct es_server *srv, uv_loop_t *loop)
{
    fl_init(fl);
    snprintf(fl->tunnel.id, sizeof(fl->tunnel.id), "%s", FL_TUNNEL_ID);
    snprintf(fl->tunnel.name, sizeof(fl->tunnel.name), "fake");
    snprintf(fl->route.hostname, sizeof(fl->route.hostname), "%s", FL_HOST);
    snprintf(fl->route.tunnel_id, sizeof(fl->route.tunnel_id), "%s", FL_TUNNEL_ID);
    memset(srv, 0, sizeof(*srv));
    srv->loop = loop;
    srv->reg.tunnels = &fl->tunnel;
    srv->reg.routes = &fl->route;
    srv->link_ops = &fl_ops;
}

void fl_cleanup(struct fake_link *fl)
{
    for (size_t i = 0; i < fl->n; i++) {
        if (fl->s[i].r)
            fl_close(&fl->s[i], NGHTTP2_CANCEL);
        px_buf_cleanup(&fl->s[i].head);
    }
    fl->n = 0;
}

struct fl_stream *fl_find(struct fake_link *fl, const struct es_req *r)
{
    for (size_t i = 0; i < fl->n; i++)
        if (fl->s[i].r == r)
            return &fl->s[i];
    return NULL;
}

struct fl_stream *fl_last(struct fake_link *fl)
{
    return fl->n ? &fl->s[fl->n - 1] : NULL;
}

/* The field at p ("name: value\n") if it is called name: its value's start
 * and length. */
static const char *field_value(const char *p, const char *end, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol || (size_t)(eol - p) < nl + 2 || memcmp(p, name, nl) != 0 || p[nl] != ':')
        return NULL;
    *vlen = (size_t)(eol - p) - nl - 2;
    return p + nl + 2;
}

const char *fl_header(const struct fl_stream *s, const char *name)
{
    static char value[8192];
    const char *p = (const char *)px_buf_head(&s->head), *end = p + px_buf_len(&s->head);
    for (; p < end; p = (const char *)memchr(p, '\n', (size_t)(end - p)) + 1) {
        size_t vlen;
        const char *v = field_value(p, end, name, &vlen);
        if (v) {
            snprintf(value, sizeof(value), "%.*s", (int)vlen, v);
            return value;
        }
    }
    return NULL;
}

int fl_header_no_index(const struct fl_stream *s, const char *name)
{
    unsigned i = 0;
    const char *p = (const char *)px_buf_head(&s->head), *end = p + px_buf_len(&s->head);
    for (; p < end; p = (const char *)memchr(p, '\n', (size_t)(end - p)) + 1, i++) {
        size_t vlen;
        if (field_value(p, end, name, &vlen))
            return i < 64 && (s->no_index >> i) & 1;
    }
    return 0;
}

unsigned fl_header_count(const struct fl_stream *s, const char *name)
{
    unsigned n = 0;
    const char *p = (const char *)px_buf_head(&s->head), *end = p + px_buf_len(&s->head);
    for (; p < end; p = (const char *)memchr(p, '\n', (size_t)(end - p)) + 1) {
        size_t vlen;
        if (field_value(p, end, name, &vlen))
            n++;
    }
    return n;
}

int fl_respond(struct fl_stream *s, int status, const char *const *hdrs, const char *body, int end)
{
    int rc = 0;
    if (status) {
        char st[8];
        snprintf(st, sizeof(st), "%d", status);
        rc = es_req_resp_header(s->r, (const uint8_t *)":status", 7, (const uint8_t *)st,
                                strlen(st));
        for (size_t i = 0; hdrs && hdrs[i] && rc == 0; i += 2)
            rc = es_req_resp_header(s->r, (const uint8_t *)hdrs[i], strlen(hdrs[i]),
                                    (const uint8_t *)hdrs[i + 1], strlen(hdrs[i + 1]));
        if (rc < 0)
            return rc;
        es_req_resp_headers_done(s->r);
    }
    if (body && *body)
        es_req_resp_body(s->r, (const uint8_t *)body, strlen(body));
    if (end)
        es_req_resp_end(s->r);
    return rc;
}

int fl_read_body(struct fl_stream *s, struct px_buf *out, size_t chunk)
{
    uint8_t *buf = malloc(chunk);
    int eof = 0;
    if (!buf)
        return 0;
    for (;;) {
        size_t n = es_req_read_body(s->r, buf, chunk, &eof);
        if (n)
            px_buf_append(out, buf, n);
        if (eof || n == 0)
            break;
    }
    free(buf);
    return eof;
}

void fl_close(struct fl_stream *s, uint32_t err)
{
    struct es_req *r = s->r;
    s->r = NULL;
    es_req_link_done(r, err);
}
