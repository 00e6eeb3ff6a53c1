#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "played_edge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct pe_answer *answer_for(struct played_edge *e, int32_t id)
{
    for (size_t i = 0; i < e->n_answers; i++)
        if (e->answers[i].id == id)
            return &e->answers[i];
    return NULL;
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
    (void)h2;
    (void)flags;
    struct pe_answer *a = answer_for(user, f->hd.stream_id);
    if (!a)
        return 0;
    if (nlen == 7 && memcmp(name, ":status", 7) == 0)
        a->status = atoi((const char *)value);
    if (nlen == 12 && memcmp(name, "tunnel-error", 12) == 0)
        snprintf(a->error, sizeof(a->error), "%.*s", (int)vlen, (const char *)value);
    return 0;
}

static int on_frame(nghttp2_session *h2, const nghttp2_frame *f, void *user)
{
    (void)h2;
    struct pe_answer *a = answer_for(user, f->hd.stream_id);
    if (a && (f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
        a->ended = 1;
    return 0;
}

static int on_line(const struct px_ctl_msg *m, void *arg)
{
    struct played_edge *e = arg;
    if (e->n_got == sizeof(e->got) / sizeof(e->got[0]))
        return 0;
    struct pe_line *g = &e->got[e->n_got++];
    g->type = m->type;
    snprintf(g->kind, sizeof(g->kind), "%s", m->kind ? m->kind : "");
    g->pem = m->pem ? strdup(m->pem) : NULL;
    return 0;
}

static int on_data(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *user)
{
    (void)h2;
    (void)flags;
    struct played_edge *e = user;
    if (id == e->control_id) {
        assert_int_equal(px_ctl_framer_feed(&e->control_in, data, len, on_line, e), 0);
        return 0;
    }
    struct pe_answer *a = answer_for(e, id);
    if (a)
        px_buf_append(&a->body, data, len);
    return 0;
}

static int on_close(nghttp2_session *h2, int32_t id, uint32_t err, void *user)
{
    (void)h2;
    (void)err;
    struct pe_answer *a = answer_for(user, id);
    if (a)
        a->closed = 1;
    return 0;
}

static ssize_t upload_read(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len,
                           uint32_t *flags, nghttp2_data_source *src, void *user)
{
    (void)h2;
    (void)id;
    (void)user;
    struct pe_answer *a = src->ptr;
    size_t n = a->upload_left < len ? a->upload_left : len;
    memcpy(buf, a->upload, n);
    a->upload += n;
    a->upload_left -= n;
    if (a->upload_left == 0)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static ssize_t control_read(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len,
                            uint32_t *flags, nghttp2_data_source *src, void *user)
{
    (void)h2;
    (void)id;
    (void)flags;
    (void)src;
    struct played_edge *e = user;
    size_t n = px_buf_read(&e->control_out, buf, len);
    if (n == 0) {
        e->control_deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

void pe_exchange(struct played_edge *e)
{
    assert_int_equal(mw_h2_round(e->w, e->h2, mw_cl_feed, &e->w->link_out), 0);
}

static long elapsed_ms(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

void pe_run_until(struct played_edge *e, struct pe_answer *a, size_t want_got, int ms)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        pe_exchange(e);
        if (a && (a->ended || a->closed || (a->connect && a->status == 200)))
            return;
        if (want_got && e->n_got >= want_got)
            return;
        if (elapsed_ms(&t0) > ms)
            return;
        usleep(1000);
    }
}

void pe_control_send(struct played_edge *e, const struct px_ctl_msg *m)
{
    char *line = px_ctl_encode(m);
    assert_non_null(line);
    px_buf_append(&e->control_out, line, strlen(line));
    free(line);
    if (e->control_deferred) {
        e->control_deferred = 0;
        nghttp2_session_resume_data(e->h2, e->control_id);
    }
    pe_run_until(e, NULL, 0, 20);
}

void pe_link_up(struct played_edge *e, struct mw *w, const char *hostname)
{
    w->detached = 1; /* the test is the edge */
    assert_int_equal(mw_conn_link_open(w), 0);
    mw_pump(w);
    memset(e, 0, sizeof(*e));
    e->w = w;
    px_buf_init(&e->control_out);
    px_ctl_framer_init(&e->control_in);
    nghttp2_session_callbacks *cb;
    assert_int_equal(nghttp2_session_callbacks_new(&cb), 0);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame);
    assert_int_equal(nghttp2_session_client_new(&e->h2, cb, e), 0);
    nghttp2_session_callbacks_del(cb);
    assert_int_equal(nghttp2_submit_settings(e->h2, NGHTTP2_FLAG_NONE, NULL, 0), 0);
    nghttp2_nv nv[] = {PE_NV(":method", "POST"), PE_NV(":scheme", "https"),
                       PE_NV(":authority", "tunnel.control"), PE_NV(":path", "/.tunnel/control"),
                       PE_NV("tunnel-control", "1")};
    nghttp2_data_provider dp = {.read_callback = control_read};
    e->control_id = nghttp2_submit_request(e->h2, NULL, nv, 5, &dp, NULL);
    assert_true(e->control_id > 0);
    pe_run_until(e, NULL, 1, 200); /* REGISTER */
    assert_true(e->n_got >= 1);
    assert_int_equal(e->got[0].type, PX_CTL_REGISTER);
    struct px_ctl_result res = {.hostname = (char *)hostname, .accepted = 1};
    struct px_ctl_msg reg = {.type = PX_CTL_REGISTERED,
                             .results = &res,
                             .n_results = 1,
                             .agent = "played-edge",
                             .conn_id = "0123456789abcdef"};
    pe_control_send(e, &reg);
    assert_non_null(w->cl);
    assert_true(cn_link_registered(w->cl));
}

void pe_link_down(struct played_edge *e)
{
    for (size_t i = 0; i < e->n_answers; i++)
        px_buf_cleanup(&e->answers[i].body);
    for (size_t i = 0; i < e->n_got; i++)
        free(e->got[i].pem);
    if (e->h2)
        nghttp2_session_del(e->h2);
    px_buf_cleanup(&e->control_out);
    px_ctl_framer_cleanup(&e->control_in);
    memset(e, 0, sizeof(*e));
}

struct pe_answer *pe_request(struct played_edge *e, const char *method, const char *authority,
                             const char *path, const char *protocol, const char *body,
                             const nghttp2_nv *extra, size_t n_extra, int ms)
{
    nghttp2_nv nv[24];
    size_t n = 0;
    char cl[32];
    assert_true(n_extra <= 18);
    nv[n++] = (nghttp2_nv)PE_NV(":method", method);
    nv[n++] = (nghttp2_nv)PE_NV(":scheme", "https");
    nv[n++] = (nghttp2_nv)PE_NV(":authority", authority);
    nv[n++] = (nghttp2_nv)PE_NV(":path", path);
    if (protocol)
        nv[n++] = (nghttp2_nv)PE_NV(":protocol", protocol);
    for (size_t i = 0; i < n_extra; i++)
        nv[n++] = extra[i];
    if (body) {
        snprintf(cl, sizeof(cl), "%zu", strlen(body));
        nv[n++] = (nghttp2_nv)PE_NV("content-length", cl);
    }
    assert_true(e->n_answers < sizeof(e->answers) / sizeof(e->answers[0]));
    struct pe_answer *a = &e->answers[e->n_answers++];
    memset(a, 0, sizeof(*a));
    px_buf_init(&a->body);
    a->connect = strcmp(method, "CONNECT") == 0;
    a->upload = body;
    a->upload_left = body ? strlen(body) : 0;
    nghttp2_data_provider dp = {.source.ptr = a, .read_callback = upload_read};
    if (body)
        a->id = nghttp2_submit_request(e->h2, NULL, nv, n, &dp, NULL);
    else
        a->id = nghttp2_submit_headers(
            e->h2, a->connect ? NGHTTP2_FLAG_NONE : NGHTTP2_FLAG_END_STREAM, -1, NULL, nv, n, NULL);
    assert_true(a->id > 0);
    pe_run_until(e, a, 0, ms);
    return a;
}
