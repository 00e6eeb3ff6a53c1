#include "px_h2.h"
#include "px_err.h"

#include <stdint.h>
#include <stdlib.h>

unsigned px_h2_ping_interval_ms(void)
{
    const char *e = getenv("TUNNEL_PING_INTERVAL_MS");
    long v = e ? strtol(e, NULL, 10) : 0;
    return v >= 100 && v <= 600000 ? (unsigned)v : 5000;
}

/* nghttp2 allocates through these, that is through this file's calls to the
 * malloc family, instead of calling libc itself: a test build that makes the
 * n-th allocation fail (tests/unit/alloc, linked with --wrap=malloc,...)
 * then reaches nghttp2's error paths as well as ours. */
static void *h2_malloc(size_t n, void *ud)
{
    (void)ud;
    return malloc(n);
}

static void h2_free(void *p, void *ud)
{
    (void)ud;
    free(p);
}

static void *h2_calloc(size_t n, size_t size, void *ud)
{
    (void)ud;
    return calloc(n, size);
}

static void *h2_realloc(void *p, size_t n, void *ud)
{
    (void)ud;
    return realloc(p, n);
}

int px_h2_session_new(nghttp2_session **out, int server, const struct px_h2_callbacks *cb,
                      void *user, const nghttp2_settings_entry *iv, size_t niv, int32_t conn_window)
{
    nghttp2_session_callbacks *c;
    nghttp2_option *opt;
    int rc = PX_ERR_NOMEM;
    *out = NULL;
    if (nghttp2_session_callbacks_new(&c) != 0)
        return PX_ERR_NOMEM;
    if (nghttp2_option_new(&opt) != 0)
        goto out_cb;
    if (cb->begin_headers)
        nghttp2_session_callbacks_set_on_begin_headers_callback(c, cb->begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(c, cb->header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(c, cb->frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(c, cb->data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(c, cb->stream_close);
    if (cb->frame_send)
        nghttp2_session_callbacks_set_on_frame_send_callback(c, cb->frame_send);
    if (cb->flags & PX_H2_PEER_RESETS_UNLIMITED)
        nghttp2_option_set_stream_reset_rate_limit(opt, UINT64_MAX, UINT64_MAX);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    if (!server)
        nghttp2_option_set_peer_max_concurrent_streams(opt, 1000);
    /* The session keeps its own copy of mem. */
    nghttp2_mem mem = {NULL, h2_malloc, h2_free, h2_calloc, h2_realloc};
    int rv = server ? nghttp2_session_server_new3(out, c, user, opt, &mem)
                    : nghttp2_session_client_new3(out, c, user, opt, &mem);
    if (rv != 0)
        goto out_opt;
    rc = PX_ERR_H2;
    if (nghttp2_submit_settings(*out, NGHTTP2_FLAG_NONE, iv, niv) != 0 ||
        nghttp2_session_set_local_window_size(*out, NGHTTP2_FLAG_NONE, 0, conn_window) != 0) {
        nghttp2_session_del(*out);
        *out = NULL;
        goto out_opt;
    }
    rc = 0;
out_opt:
    nghttp2_option_del(opt);
out_cb:
    nghttp2_session_callbacks_del(c);
    return rc;
}

void px_h2_outbox_init(struct px_h2_outbox *o)
{
    px_buf_init(&o->buf);
    o->deferred = 0;
}

void px_h2_outbox_cleanup(struct px_h2_outbox *o)
{
    px_buf_cleanup(&o->buf);
}

int px_h2_outbox_push(struct px_h2_outbox *o, nghttp2_session *s, int32_t id, const void *p,
                      size_t n)
{
    if (px_buf_append(&o->buf, p, n) < 0)
        return PX_ERR_NOMEM;
    if (o->deferred && s && id > 0) {
        o->deferred = 0;
        nghttp2_session_resume_data(s, id);
    }
    return 0;
}

ssize_t px_h2_outbox_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                          nghttp2_data_source *src, void *user)
{
    (void)s;
    (void)id;
    (void)flags;
    (void)user;
    struct px_h2_outbox *o = src->ptr;
    size_t n = px_buf_read(&o->buf, buf, len);
    if (n == 0) {
        o->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}
