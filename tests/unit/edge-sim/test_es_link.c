/* es_link: which requests a tunnel connection may carry; and an in-memory
 * link (mem_world's edge alone) with the test playing the connector over a
 * plain nghttp2 server session: registration on the control stream, PINGs
 * both ways and a dead connector, GOAWAY with streams in flight, and stream
 * resets either way. Browsers are HTTP/1.1 fronts in memory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "es_admin.h"
#include "es_drain.h"
#include "es_link.h"
#include "es_live.h"
#include "es_registry.h"
#include "mem_world.h"
#include "px_control.h"
#include "px_h2.h"
#include "px_log.h"

#include <jansson.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Found by the CI run after defect 2's least-loaded routing: replicas of one
 * tunnel registered different names, and a request went to a connection
 * whose connector had no rule for it (404 no_route). A connection now carries
 * only hosts its own registration covers. */
static void test_serves_only_its_registered_names(void **state)
{
    (void)state;
    struct es_link l;
    memset(&l, 0, sizeof(l));
    char *names[] = {"*.apps.example.test", "home.example.test"};
    l.names = names;
    l.n_names = 2;
    assert_true(es_link_serves(&l, "home.example.test"));
    assert_true(es_link_serves(&l, "x.apps.example.test"));
    assert_true(es_link_serves(&l, "a.b.apps.example.test"));
    assert_false(es_link_serves(&l, "apps.example.test"));
    assert_false(es_link_serves(&l, "other.example.test"));
    assert_false(es_link_serves(&l, "home.example.test.evil"));
    l.n_names = 0;
    assert_false(es_link_serves(&l, "home.example.test"));
}

/* ---- the test as the connector ---- */

#define MAX_STREAMS 16
#define MAX_BROWSERS 4

struct cstream {
    int32_t id;
    char path[64];
    int ended;  /* the request's END_STREAM arrived */
    int closed; /* the stream closed */
    uint32_t close_err;
};

/* A piece of response body for one DATA submission (string literals). */
struct chunk {
    const char *p;
    size_t n;
};

struct connector {
    nghttp2_session *h2;
    int auto_ack; /* answer the edge's PINGs */
    int32_t control_id;
    struct px_h2_outbox control_out;
    struct px_ctl_framer control_in;
    /* REGISTERED, as received */
    unsigned registered;
    size_t n_results;
    int accepted[4];
    char agent[64], conn_id[64];
    unsigned pings_in, ping_acks_in, goaways_in;
    /* The last ERROR, as received */
    unsigned errors;
    unsigned errors_at_goaway; /* errors when the last GOAWAY came */
    char error_code[32];
    int error_permanent;
    struct cstream st[MAX_STREAMS];
    size_t n;
    struct chunk chunks[MAX_STREAMS];
    size_t n_chunks;
};

struct browser {
    struct es_front *f; /* NULL once freed */
    struct px_buf out;
};

static struct mw w;
static struct connector cn;
static struct browser br[MAX_BROWSERS];

static struct cstream *cstream(int32_t id)
{
    for (size_t i = 0; i < cn.n; i++)
        if (cn.st[i].id == id)
            return &cn.st[i];
    return NULL;
}

static int on_ctl(const struct px_ctl_msg *m, void *arg)
{
    (void)arg;
    if (m->type == PX_CTL_ERROR) {
        cn.errors++;
        snprintf(cn.error_code, sizeof(cn.error_code), "%s", m->code ? m->code : "");
        cn.error_permanent = m->permanent;
        return 0;
    }
    if (m->type != PX_CTL_REGISTERED)
        return 0;
    cn.registered++;
    cn.n_results = m->n_results;
    for (size_t i = 0; i < m->n_results && i < 4; i++)
        cn.accepted[i] = m->results[i].accepted && !m->results[i].reason;
    snprintf(cn.agent, sizeof(cn.agent), "%s", m->agent ? m->agent : "");
    snprintf(cn.conn_id, sizeof(cn.conn_id), "%s", m->conn_id ? m->conn_id : "");
    return 0;
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *u)
{
    (void)s;
    (void)u;
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST &&
        cn.n < MAX_STREAMS)
        cn.st[cn.n++] = (struct cstream){.id = f->hd.stream_id};
    return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *u)
{
    (void)s;
    (void)flags;
    (void)u;
    struct cstream *c = cstream(f->hd.stream_id);
    if (!c)
        return 0;
    if (nlen == 14 && memcmp(name, "tunnel-control", 14) == 0)
        cn.control_id = f->hd.stream_id;
    if (nlen == 5 && memcmp(name, ":path", 5) == 0)
        snprintf(c->path, sizeof(c->path), "%.*s", (int)vlen, (const char *)value);
    return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *u)
{
    (void)u;
    if (f->hd.type == NGHTTP2_PING) {
        if (f->hd.flags & NGHTTP2_FLAG_ACK) {
            cn.ping_acks_in++;
        } else {
            cn.pings_in++;
            if (cn.auto_ack)
                nghttp2_submit_ping(s, NGHTTP2_FLAG_ACK, f->ping.opaque_data);
        }
    }
    if (f->hd.type == NGHTTP2_GOAWAY) {
        cn.goaways_in++;
        cn.errors_at_goaway = cn.errors;
    }
    struct cstream *c = cstream(f->hd.stream_id);
    if (c && (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
        c->ended = 1;
    if (c && f->hd.type == NGHTTP2_HEADERS && c->id == cn.control_id) {
        nghttp2_nv nv[] = {{(uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE}};
        nghttp2_data_provider dp = {.source.ptr = &cn.control_out,
                                    .read_callback = px_h2_outbox_read};
        assert_int_equal(nghttp2_submit_response(s, c->id, nv, 1, &dp), 0);
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *u)
{
    (void)s;
    (void)flags;
    (void)u;
    if (id == cn.control_id)
        assert_int_equal(px_ctl_framer_feed(&cn.control_in, data, len, on_ctl, NULL), 0);
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t err, void *u)
{
    (void)s;
    (void)u;
    struct cstream *c = cstream(id);
    if (c) {
        c->closed = 1;
        c->close_err = err;
    }
    return 0;
}

static ssize_t chunk_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                          nghttp2_data_source *src, void *u)
{
    (void)s;
    (void)id;
    (void)u;
    struct chunk *c = src->ptr;
    size_t n = c->n < len ? c->n : len;
    memcpy(buf, c->p, n);
    c->p += n;
    c->n -= n;
    if (c->n == 0)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* Answers stream id: a head (status != 0; content_length < 0: none), then
 * body (may be NULL), ending the stream if end. */
static void respond(int32_t id, int status, long content_length, const char *body, int end)
{
    if (status) {
        char st[8], cl[24];
        snprintf(st, sizeof(st), "%d", status);
        snprintf(cl, sizeof(cl), "%ld", content_length);
        nghttp2_nv nv[] = {
            {(uint8_t *)":status", (uint8_t *)st, 7, strlen(st), NGHTTP2_NV_FLAG_NONE},
            {(uint8_t *)"content-length", (uint8_t *)cl, 14, strlen(cl), NGHTTP2_NV_FLAG_NONE},
        };
        int head_ends = end && !body;
        assert_int_equal(nghttp2_submit_headers(cn.h2, head_ends ? NGHTTP2_FLAG_END_STREAM : 0, id,
                                                NULL, nv, content_length < 0 ? 1 : 2, NULL),
                         0);
        if (head_ends)
            return;
    }
    assert_true(cn.n_chunks < MAX_STREAMS);
    struct chunk *c = &cn.chunks[cn.n_chunks++];
    *c = (struct chunk){body ? body : "", body ? strlen(body) : 0};
    nghttp2_data_provider dp = {.source.ptr = c, .read_callback = chunk_read};
    assert_int_equal(nghttp2_submit_data(cn.h2, end ? NGHTTP2_FLAG_END_STREAM : 0, id, &dp), 0);
}

static int front_alive(const struct es_front *f)
{
    struct px_list_node *n, *tmp;
    px_list_for_each_safe (n, tmp, &w.srv.fronts)
        if (px_container_of(n, struct es_front, all_node) == f)
            return 1;
    return 0;
}

/* Moves bytes between the edge link and the connector session, collects
 * what each browser got, and runs the loop, until nothing moves. */
static void pump(void)
{
    for (int i = 0, quiet = 0; i < 200 && quiet < 3; i++) {
        size_t moved = 0;
        uv_run(&w.loop, UV_RUN_NOWAIT);
        if (w.el && es_link_count(&w.srv) == 0)
            w.el = NULL;
        if (w.el) {
            struct px_buf *mo = &w.el->conn.mem_out;
            size_t n = px_buf_len(mo);
            if (n) {
                assert_true(nghttp2_session_mem_recv(cn.h2, px_buf_head(mo), n) == (ssize_t)n);
                rt_conn_memory_consume(&w.el->conn, n);
                moved += n;
            }
        }
        const uint8_t *d;
        ssize_t k;
        while ((k = nghttp2_session_mem_send(cn.h2, &d)) > 0) {
            if (w.el)
                rt_conn_memory_feed(&w.el->conn, d, (size_t)k);
            moved += (size_t)k;
        }
        for (size_t b = 0; b < MAX_BROWSERS; b++) {
            if (br[b].f && !front_alive(br[b].f))
                br[b].f = NULL;
            if (!br[b].f)
                continue;
            struct px_buf *mo = &br[b].f->conn.mem_out;
            size_t n = px_buf_len(mo);
            if (n) {
                assert_int_equal(px_buf_append(&br[b].out, px_buf_head(mo), n), 0);
                rt_conn_memory_consume(&br[b].f->conn, n);
                moved += n;
            }
        }
        quiet = moved ? 0 : quiet + 1;
    }
}

/* Pumps for about ms of loop time. */
static void pump_for(unsigned ms)
{
    uv_update_time(&w.loop);
    uint64_t end = uv_now(&w.loop) + ms;
    while (uv_now(&w.loop) < end) {
        pump();
        uv_sleep(5);
        uv_update_time(&w.loop);
    }
}

static int setup(void **state)
{
    (void)state;
    assert_int_equal(mw_init(&w, "{\"ingress\":[{\"service\":\"http_status:404\"}]}"), 0);
    memset(&cn, 0, sizeof(cn));
    memset(br, 0, sizeof(br));
    cn.auto_ack = 1;
    px_h2_outbox_init(&cn.control_out);
    px_ctl_framer_init(&cn.control_in);
    nghttp2_session_callbacks *cb;
    assert_int_equal(nghttp2_session_callbacks_new(&cb), 0);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_option *opt;
    assert_int_equal(nghttp2_option_new(&opt), 0);
    nghttp2_option_set_no_auto_ping_ack(opt, 1); /* cn.auto_ack decides */
    assert_int_equal(nghttp2_session_server_new2(&cn.h2, cb, NULL, opt), 0);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100}};
    assert_int_equal(nghttp2_submit_settings(cn.h2, NGHTTP2_FLAG_NONE, iv, 1), 0);
    assert_int_equal(mw_edge_link_open(&w), 0);
    pump();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (size_t b = 0; b < MAX_BROWSERS; b++) {
        if (br[b].f)
            rt_conn_abort(&br[b].f->conn, 0);
        px_buf_cleanup(&br[b].out);
    }
    pump();
    es_drain_cleanup(&w.srv);
    mw_cleanup(&w); /* closes the link and runs the loop until it is freed */
    nghttp2_session_del(cn.h2);
    px_h2_outbox_cleanup(&cn.control_out);
    px_ctl_framer_cleanup(&cn.control_in);
    return 0;
}

/* Sends m on the control stream. */
static void send_ctl(const struct px_ctl_msg *m)
{
    char *line = px_ctl_encode(m);
    assert_non_null(line);
    assert_true(cn.control_id > 0);
    assert_int_equal(px_h2_outbox_push(&cn.control_out, cn.h2, cn.control_id, line, strlen(line)),
                     0);
    free(line);
    pump();
}

/* Sends REGISTER for names (NULL-terminated) on the control stream. */
static void send_register(const char **names)
{
    size_t n = 0;
    while (names[n])
        n++;
    struct px_ctl_msg m = {.type = PX_CTL_REGISTER,
                           .hostnames = (char **)names,
                           .n_hostnames = n,
                           .agent = "test/1",
                           .conn_index = -1};
    send_ctl(&m);
}

static void registered(void)
{
    const char *names[] = {"app.fuzz.test", NULL};
    send_register(names);
    assert_int_equal(cn.registered, 1);
    assert_non_null(w.el);
    assert_true(es_link_usable(w.el));
}

/* Browser b sends req (HTTP/1.1) for MW_SNI. */
static void browse(size_t b, const char *req)
{
    if (!br[b].f) {
        br[b].f = es_front_new_memory(&w.srv, "http/1.1", MW_CLIENT_IP);
        assert_non_null(br[b].f);
        snprintf(br[b].f->sni, sizeof(br[b].f->sni), "%s", MW_SNI);
        px_buf_init(&br[b].out);
    }
    assert_int_equal(rt_conn_memory_feed(&br[b].f->conn, req, strlen(req)), 0);
    pump();
}

/* What browser b got so far, as a string. */
static const char *got(size_t b)
{
    const char *s = px_buf_cstr(&br[b].out);
    assert_non_null(s);
    return s;
}

static void test_register_registered(void **state)
{
    (void)state;
    /* The edge opened the control stream as soon as the session started. */
    assert_true(cn.control_id > 0);
    assert_string_equal(cstream(cn.control_id)->path, "/.tunnel/control");
    assert_non_null(w.el);
    assert_false(w.el->registered);
    assert_false(es_link_usable(w.el));
    struct es_tunnel *t = es_registry_tunnel(&w.srv.reg, MW_TUNNEL_ID);
    assert_non_null(t);
    assert_null(es_registry_pick(t, "app.fuzz.test"));

    const char *names[] = {"app.fuzz.test", "not..a.name", NULL};
    send_register(names);
    assert_int_equal(cn.registered, 1);
    assert_int_equal(cn.n_results, 2);
    assert_true(cn.accepted[0]);
    assert_false(cn.accepted[1]);
    assert_string_equal(cn.agent, "fuzz"); /* the tunnel's name */
    assert_string_equal(cn.conn_id, w.el->conn_id);
    assert_true(w.el->registered);
    assert_true(es_link_usable(w.el));
    assert_true(es_link_serves(w.el, "app.fuzz.test"));
    assert_false(es_link_serves(w.el, "other.fuzz.test"));
    assert_ptr_equal(es_registry_pick(t, "app.fuzz.test"), w.el);
    assert_null(es_registry_pick(t, "other.fuzz.test"));
    assert_int_equal(es_link_count(&w.srv), 1);
}

/* What REGISTER says about the connection (its connector process, slot and
 * the edge it dialed) is kept for the live view, and shown by
 * es_link_info; an older connector that says nothing gets "" and -1. */
static void test_register_fields_kept(void **state)
{
    (void)state;
    struct es_link_info info;
    assert_false(es_link_info(w.el, &info)); /* not registered yet */
    assert_string_equal(info.connector, "");
    assert_int_equal(info.conn_index, -1);
    registered();
    assert_true(es_link_info(w.el, &info));
    assert_string_equal(info.connector, "");
    assert_int_equal(info.conn_index, -1);
    assert_string_equal(info.agent, "test/1");
    assert_string_equal(info.tunnel_id, MW_TUNNEL_ID);
    assert_string_equal(info.conn_id, w.el->conn_id);
    assert_string_equal(info.peer_ip, w.el->conn.peer_ip);
    assert_int_equal(info.n_names, 1);
    assert_string_equal(info.names[0], "app.fuzz.test");
    long long since = info.since;
    assert_true(since > 0);

    char *names[] = {"App2.Fuzz.Test"};
    struct px_ctl_msg m = {.type = PX_CTL_REGISTER,
                           .hostnames = names,
                           .n_hostnames = 1,
                           .agent = "connector/2",
                           .connector = "0123456789abcdef",
                           .conn_index = 3,
                           .edge = "127.0.0.2:7844"};
    send_ctl(&m);
    assert_int_equal(cn.registered, 2);
    assert_true(es_link_info(w.el, &info));
    assert_string_equal(info.connector, "0123456789abcdef");
    assert_int_equal(info.conn_index, 3);
    assert_string_equal(info.edge, "127.0.0.2:7844");
    assert_string_equal(info.agent, "connector/2");
    assert_int_equal(info.since, since); /* the first registration's time */
    assert_int_equal(info.n_names, 2);
    assert_string_equal(info.names[1], "app2.fuzz.test"); /* lower-cased */

    /* A retiring connection still holds its names (its connector is
     * moving, not gone); a closing one does not. */
    es_link_retire(w.el, "test");
    assert_true(es_link_info(w.el, &info));
    es_link_kill(w.el, "test", "test", 0);
    assert_false(es_link_info(w.el, &info));
}

static void test_pings(void **state)
{
    (void)state;
    registered();
    /* The connector's PING is answered. */
    uint8_t opaque[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    assert_int_equal(nghttp2_submit_ping(cn.h2, NGHTTP2_FLAG_NONE, opaque), 0);
    pump();
    assert_int_equal(cn.ping_acks_in, 1);
    /* The edge's keepalive PINGs (every 100 ms here), answered, keep the
     * link up. */
    pump_for(450);
    assert_true(cn.pings_in >= 2);
    assert_non_null(w.el);
    assert_true(w.el->tun.pings_outstanding <= 1);
    /* A connector that stops answering is found dead. */
    cn.auto_ack = 0;
    for (int i = 0; i < 40 && w.el; i++)
        pump_for(50);
    assert_null(w.el);
    assert_int_equal(es_link_count(&w.srv), 0);
}

static void test_goaway_with_streams_in_flight(void **state)
{
    (void)state;
    registered();
    browse(0, "GET /a HTTP/1.1\r\nHost: app.fuzz.test\r\n\r\n");
    browse(1, "GET /b HTTP/1.1\r\nHost: app.fuzz.test\r\n\r\n");
    assert_int_equal(cn.n, 3); /* control, /a, /b */
    struct cstream *a = &cn.st[1], *b = &cn.st[2];
    assert_string_equal(a->path, "/a");
    assert_string_equal(b->path, "/b");
    assert_true(a->ended && b->ended);
    /* The connector goes away, having taken /a but not /b. */
    assert_int_equal(
        nghttp2_submit_goaway(cn.h2, NGHTTP2_FLAG_NONE, a->id, NGHTTP2_NO_ERROR, NULL, 0), 0);
    pump();
    assert_non_null(w.el);
    assert_true(w.el->retiring);
    assert_false(es_link_usable(w.el));
    assert_int_equal(cn.goaways_in, 1); /* the edge says so too */
    /* /b was refused: the edge answers it. */
    assert_non_null(strstr(got(1), "HTTP/1.1 502 "));
    assert_non_null(strstr(got(1), "tunnel-error: tunnel_reset"));
    /* New requests go nowhere: the tunnel has no other connection. */
    browse(2, "GET /c HTTP/1.1\r\nHost: app.fuzz.test\r\n\r\n");
    assert_non_null(strstr(got(2), "HTTP/1.1 530 "));
    assert_int_equal(cn.n, 3);
    /* /a finishes, then the retired link closes by itself. */
    assert_int_equal(px_buf_len(&br[0].out), 0);
    respond(a->id, 200, 2, "ok", 1);
    pump();
    assert_string_equal(got(0), "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    assert_null(w.el);
    assert_int_equal(es_link_count(&w.srv), 0);
}

static void test_stream_resets(void **state)
{
    (void)state;
    registered();
    /* Reset before the answer: the browser gets the edge's 502; the link
     * and its other streams are unharmed. */
    browse(0, "GET /a HTTP/1.1\r\nHost: app.fuzz.test\r\n\r\n");
    struct cstream *a = cstream(cn.st[cn.n - 1].id);
    assert_int_equal(
        nghttp2_submit_rst_stream(cn.h2, NGHTTP2_FLAG_NONE, a->id, NGHTTP2_INTERNAL_ERROR), 0);
    pump();
    assert_non_null(strstr(got(0), "HTTP/1.1 502 "));
    assert_non_null(strstr(got(0), "tunnel-error: tunnel_reset"));
    assert_true(es_link_usable(w.el));

    /* Reset mid-body: the browser's connection is cut, so a short body is
     * not taken for a whole one. */
    browse(1, "GET /b HTTP/1.1\r\nHost: app.fuzz.test\r\n\r\n");
    struct cstream *b = cstream(cn.st[cn.n - 1].id);
    respond(b->id, 200, 10, "hello", 0);
    pump();
    assert_string_equal(got(1), "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello");
    assert_int_equal(
        nghttp2_submit_rst_stream(cn.h2, NGHTTP2_FLAG_NONE, b->id, NGHTTP2_INTERNAL_ERROR), 0);
    pump();
    assert_null(br[1].f);
    assert_string_equal(got(1), "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello");

    /* The browser leaves mid-request: the edge resets the stream (CANCEL). */
    browse(2, "GET /c HTTP/1.1\r\nHost: app.fuzz.test\r\n\r\n");
    struct cstream *c = cstream(cn.st[cn.n - 1].id);
    assert_false(c->closed);
    rt_conn_memory_eof(&br[2].f->conn);
    pump();
    assert_null(br[2].f);
    assert_true(c->closed);
    assert_int_equal(c->close_err, NGHTTP2_CANCEL);

    /* And the link still serves. */
    assert_true(es_link_usable(w.el));
    browse(3, "GET /d HTTP/1.1\r\nHost: app.fuzz.test\r\n\r\n");
    struct cstream *d = cstream(cn.st[cn.n - 1].id);
    assert_string_equal(d->path, "/d");
    respond(d->id, 200, 2, "ok", 1);
    pump();
    assert_string_equal(got(3), "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    assert_int_equal(es_link_load(w.el), 0);
}

/* es_drain's phases with a connector and HTTP/1.1 browsers: the idle
 * browser is closed at once; the connector gets a GOAWAY notice and its link
 * stays usable, so a request whose head completes after the notice is still
 * routed; busy browsers get `Connection: close` and close after their
 * response; once no browser is left the link gets the final GOAWAY and
 * closes, and the drain ends with exit code 0. */
static void test_drain_phases(void **state)
{
    (void)state;
    registered();
    w.srv.grace_ms = 60000;
    browse(0, "GET /a HTTP/1.1\r\nHost: app.fuzz.test\r\n\r\n");
    struct cstream *a = cstream(cn.st[cn.n - 1].id);
    browse(1, "GET /idle HTTP/1.1\r\nHost: app.fuzz.test\r\n\r\n");
    respond(cn.st[cn.n - 1].id, 200, 2, "ok", 1);
    pump();
    assert_non_null(strstr(got(1), "200 OK"));
    assert_non_null(br[1].f);                                   /* keep-alive: idle now */
    browse(2, "GET /late HTTP/1.1\r\nHost: app.fuzz.test\r\n"); /* head not complete */
    unsigned streams = (unsigned)cn.n;

    es_drain_begin(&w.srv);
    pump();
    assert_int_equal(w.srv.drain_phase, ES_DRAIN_NOTICE);
    assert_null(br[1].f); /* the idle browser is gone */
    assert_non_null(br[0].f);
    assert_non_null(br[2].f);
    assert_int_equal(cn.goaways_in, 1); /* the notice */
    assert_non_null(w.el);
    assert_true(w.el->tun.notice_sent);
    assert_true(es_link_usable(w.el)); /* still takes requests */

    /* The late request is routed over the noticed link, answered with
     * Connection: close, and its browser closes after it. */
    assert_int_equal(rt_conn_memory_feed(&br[2].f->conn, "\r\n", 2), 0);
    pump();
    assert_int_equal(cn.n, streams + 1);
    struct cstream *late = cstream(cn.st[cn.n - 1].id);
    assert_string_equal(late->path, "/late");
    respond(late->id, 200, 4, "late", 1);
    pump();
    assert_non_null(strstr(got(2), "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(got(2), "connection: close\r\n"));
    assert_null(br[2].f);

    /* The first request finishes; then no browser is left, the link gets
     * the final GOAWAY and closes, and the drain is done. */
    respond(a->id, 200, 2, "ok", 1);
    pump();
    assert_non_null(strstr(got(0), "connection: close\r\n"));
    assert_null(br[0].f);
    for (int i = 0; i < 100 && w.srv.drain_phase != ES_DRAIN_DONE; i++)
        pump_for(20);
    assert_int_equal(w.srv.drain_phase, ES_DRAIN_DONE);
    assert_int_equal(w.srv.exit_code, 0);
    assert_null(w.el);
    assert_int_equal(cn.goaways_in, 2); /* the notice, then the final one */
    assert_int_equal(es_link_count(&w.srv), 0);
}

/* A request that never ends does not hold the edge past its grace period:
 * everything is closed then, exit code 0. */
static void test_drain_grace_expires(void **state)
{
    (void)state;
    registered();
    w.srv.grace_ms = 300;
    browse(0, "GET /stuck HTTP/1.1\r\nHost: app.fuzz.test\r\n\r\n");
    uv_update_time(&w.loop);
    uint64_t t0 = uv_now(&w.loop);
    es_drain_begin(&w.srv);
    es_drain_begin(&w.srv); /* once */
    pump_for(150);
    assert_true(w.srv.drain_phase == ES_DRAIN_NOTICE || w.srv.drain_phase == ES_DRAIN_FINAL);
    assert_non_null(br[0].f);
    for (int i = 0; i < 100 && w.srv.drain_phase != ES_DRAIN_DONE; i++)
        pump_for(20);
    assert_int_equal(w.srv.drain_phase, ES_DRAIN_DONE);
    assert_int_equal(w.srv.exit_code, 0);
    uint64_t took = uv_now(&w.loop) - t0;
    assert_true(took >= 300 && took < 2000);
    pump();
    assert_null(br[0].f);
    assert_null(w.el);
}

/* ---- the live view (es_live) of this edge and of another sharing its data dir ---- */

#define HOUR_MS 3600000LL
#define OTHER_TUNNEL "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* Opens w.srv.live as this edge's instance (started an hour ago) and
 * *other, when given, as another edge's (likewise), then beats once. */
static void live_open(struct es_live *other)
{
    char why[700] = "";
    long long now = es_live_now_ms();
    /* This edge's own sweeps release nothing here; the tests ask the other
     * instance what it would release with a grace of 1 s (expires). */
    w.srv.hostname_grace_ms = 2 * HOUR_MS;
    assert_int_equal(es_live_open(&w.srv.live, w.dir, "aaaa", now - HOUR_MS, why, sizeof(why)), 0);
    if (other)
        assert_int_equal(es_live_open(other, w.dir, "bbbb", now - HOUR_MS, why, sizeof(why)), 0);
    es_live_beat(&w.srv);
}

static void live_close(struct es_live *other)
{
    es_live_close(&w.srv.live);
    if (other)
        es_live_close(other);
    const char *files[] = {"live.db", "live.db-wal", "live.db-shm"};
    for (size_t i = 0; i < 3; i++) {
        char p[128];
        snprintf(p, sizeof(p), "%s/%s", w.dir, files[i]);
        unlink(p);
    }
}

static int has_route(const char *hostname)
{
    for (const struct es_route *r = w.srv.reg.routes; r; r = r->next)
        if (strcmp(r->hostname, hostname) == 0)
            return 1;
    return 0;
}

/* 1 if es_live_expired, for instance lv now (grace 1 s), names hostname. */
static int expires(struct es_live *lv, const char *hostname)
{
    struct es_live_expired *e;
    size_t n;
    int found = 0;
    assert_int_equal(es_live_expired(lv, &w.srv.store, es_live_now_ms(), 1000, &e, &n), 0);
    for (size_t i = 0; i < n; i++)
        found |= strcmp(e[i].hostname, hostname) == 0;
    free(e);
    return found;
}

/* Defect: the route written at REGISTER reached live.db only on this
 * edge's next heartbeat, and another edge up longer than the grace
 * released it in between. The hold is recorded before REGISTERED goes out:
 * with no beat since, the other edge sees the name held. */
static void test_register_holds_at_once(void **state)
{
    (void)state;
    struct es_live b;
    live_open(&b);
    assert_false(has_route("app.fuzz.test"));
    registered(); /* claims app.fuzz.test; no heartbeat after it */
    assert_true(has_route("app.fuzz.test"));
    assert_false(expires(&b, "app.fuzz.test"));
    assert_int_equal(es_live_held_elsewhere(&b, MW_TUNNEL_ID, "app.fuzz.test", es_live_now_ms()),
                     1);
    /* fuzz.test, which nobody registered for an hour, is released as before. */
    assert_true(expires(&b, "fuzz.test"));
    live_close(&b);
}

static void send_unregister(const char *name)
{
    char *names[] = {(char *)name};
    struct px_ctl_msg m = {.type = PX_CTL_UNREGISTER, .hostnames = names, .n_hostnames = 1};
    send_ctl(&m);
}

/* Defect: UNREGISTER released a name that a connection of the tunnel at
 * another edge sharing the data dir still served. */
static void test_unregister_keeps_name_served_elsewhere(void **state)
{
    (void)state;
    struct es_live b;
    live_open(&b);
    /* Edge b has a connection of this tunnel that registered the name. */
    const char *names[] = {"app.fuzz.test"};
    struct es_link_info other = {.conn_id = "c9",
                                 .tunnel_id = MW_TUNNEL_ID,
                                 .connector = "",
                                 .conn_index = -1,
                                 .edge = "",
                                 .agent = "",
                                 .peer_ip = "192.0.2.9",
                                 .since = 1,
                                 .names = names,
                                 .n_names = 1};
    struct es_live_self self_b = {"127.0.0.2:7844", "127.0.0.2:8443", "127.0.0.2:7845", 2};
    assert_int_equal(es_live_heartbeat(&b, &self_b, &other, 1, es_live_now_ms()), 0);
    registered();
    send_unregister("App.Fuzz.Test");
    assert_false(es_link_serves(w.el, "app.fuzz.test")); /* dropped from this link */
    assert_true(has_route("app.fuzz.test"));             /* kept: b still serves it */

    /* Once b's connection is gone, an UNREGISTER releases it. */
    assert_int_equal(es_live_heartbeat(&b, &self_b, NULL, 0, es_live_now_ms()), 0);
    send_register((const char *[]){"app.fuzz.test", NULL});
    assert_int_equal(cn.registered, 2);
    assert_true(es_link_serves(w.el, "app.fuzz.test"));
    send_unregister("app.fuzz.test");
    assert_false(has_route("app.fuzz.test"));
    live_close(&b);
}

/* Runs n beats of this edge with WARN/INFO logs captured; returns how many
 * lines contain needle. */
static int beats_logging(int n, const char *needle)
{
    char path[] = "/tmp/test_es_link_log.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    px_log_flush(); /* batched lines of a live loop (px_log_batch) */
    fflush(stderr);
    int saved = dup(2);
    assert_true(saved >= 0);
    assert_true(dup2(fd, 2) >= 0);
    px_log_set_level(PX_LOG_INFO);
    for (int i = 0; i < n; i++)
        es_live_beat(&w.srv);
    px_log_set_level((enum px_log_level)(PX_LOG_ERROR + 1));
    px_log_flush(); /* batched lines of a live loop (px_log_batch) */
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    FILE *f = fdopen(fd, "r");
    assert_non_null(f);
    rewind(f);
    char line[1024];
    int count = 0;
    while (fgets(line, sizeof(line), f))
        count += strstr(line, needle) != NULL;
    fclose(f);
    unlink(path);
    return count;
}

/* Defect: a connection serving a name whose route another tunnel took got
 * a WARN on every heartbeat (every second) for every name. Now once per
 * connection and name while it lasts, and again if it happens again. */
static void test_reclaim_route_taken_warns_once(void **state)
{
    (void)state;
    live_open(NULL);
    registered();
    struct es_tunnel_rec rec = {.id = OTHER_TUNNEL, .name = "other"};
    assert_int_equal(es_store_tunnel_add(&w.srv.store, &rec), 0);
    /* The other tunnel takes app.fuzz.test (this one's wildcard gone too,
     * or the store would refuse the overlap). */
    sqlite3_exec(((sqlite3 *)es_sql_sqlite_handle(w.srv.store.db)), "DELETE FROM routes", NULL,
                 NULL, NULL);
    assert_int_equal(es_store_route_claim(&w.srv.store, "app.fuzz.test", OTHER_TUNNEL, NULL), 0);
    assert_int_equal(es_registry_reload(&w.srv.reg, &w.srv.store), 0);
    assert_int_equal(beats_logging(3, "whose route is gone"), 1);
    assert_int_equal(beats_logging(2, "whose route is gone"), 0);
    /* The other tunnel lets go: claimed again at once. */
    assert_int_equal(es_store_route_release(&w.srv.store, "app.fuzz.test", OTHER_TUNNEL), 0);
    assert_int_equal(es_registry_reload(&w.srv.reg, &w.srv.store), 0);
    assert_int_equal(beats_logging(2, "claimed again"), 1);
    /* Taken again later: said again, once. */
    sqlite3_exec(((sqlite3 *)es_sql_sqlite_handle(w.srv.store.db)), "DELETE FROM routes", NULL,
                 NULL, NULL);
    assert_int_equal(es_store_route_claim(&w.srv.store, "app.fuzz.test", OTHER_TUNNEL, NULL), 0);
    assert_int_equal(es_registry_reload(&w.srv.reg, &w.srv.store), 0);
    assert_int_equal(beats_logging(3, "whose route is gone"), 1);
    live_close(NULL);
}

#define ADMIN_TOKEN "test-admin-token-0123456789abcdefghijklmnop"

/* GET /api/tunnels on an in-memory admin connection; returns the body
 * (malloc'd) and sets *status. */
static char *admin_get(int *status)
{
    /* The admin API wants its bearer token (the data dir's admin.token). */
    char path[128];
    snprintf(path, sizeof(path), "%s/admin.token", w.dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(ADMIN_TOKEN "\n", f);
    fclose(f);
    assert_int_equal(chmod(path, 0600), 0);
    snprintf(w.srv.data_dir, sizeof(w.srv.data_dir), "%s", w.dir);
    assert_int_equal(es_admin_start(&w.srv), 0);
    struct rt_conn *c = es_admin_new_memory(&w.srv, "127.0.0.1");
    assert_non_null(c);
    const char *req =
        "GET /api/tunnels HTTP/1.1\r\nhost: x\r\nauthorization: Bearer " ADMIN_TOKEN "\r\n\r\n";
    rt_conn_memory_feed(c, req, strlen(req)); /* answered, then it closes: < 0 */
    for (int i = 0; i < 5; i++)
        uv_run(&w.loop, UV_RUN_NOWAIT);
    size_t n = px_buf_len(&c->mem_out);
    char *resp = strndup((const char *)px_buf_head(&c->mem_out), n);
    assert_non_null(resp);
    rt_conn_memory_consume(c, n);
    pump();
    assert_int_equal(sscanf(resp, "HTTP/1.1 %d", status), 1);
    const char *body = strstr(resp, "\r\n\r\n");
    assert_non_null(body);
    char *out = strdup(body + 4);
    free(resp);
    es_admin_stop(&w.srv);
    unlink(path); /* mw_cleanup removes the dir */
    return out;
}

static long long heartbeat_of(const char *id)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(((sqlite3 *)es_sql_sqlite_handle(w.srv.live.db)),
                                        "SELECT heartbeat FROM instances WHERE id=?", -1, &st,
                                        NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long long hb = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return hb;
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Defect: every GET /api/tunnels ran a heartbeat (a write transaction,
 * reclaims, a release sweep): with another edge holding live.db's write
 * lock, the request stalled the event loop up to the busy timeout (1 s).
 * The admin path reads only: the rows are at most a heartbeat old. */
static void test_admin_get_is_read_only(void **state)
{
    (void)state;
    live_open(NULL);
    registered();
    es_live_beat(&w.srv);
    long long hb = heartbeat_of("aaaa");
    /* Another edge holds the write lock. */
    sqlite3 *other;
    assert_int_equal(
        sqlite3_open(
            ((sqlite3 *)es_sql_sqlite_handle(w.srv.live.db))
                ? sqlite3_db_filename(((sqlite3 *)es_sql_sqlite_handle(w.srv.live.db)), "main")
                : "",
            &other),
        SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    long long t0 = mono_ms();
    int status = 0;
    char *body = admin_get(&status);
    long long took = mono_ms() - t0;
    sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(other);
    assert_int_equal(status, 200);
    assert_true(took < 500);
    assert_int_equal(heartbeat_of("aaaa"), hb);   /* nothing written */
    assert_non_null(strstr(body, w.el->conn_id)); /* this edge's connection, as of its beat */
    free(body);
    live_close(NULL);
}

/* Defect: an agent cut mid-UTF-8 (in REGISTER's 64 bytes, or as a row of
 * live.db left by an older edge) made json_pack fail unchecked, and the
 * connector vanished from /api/tunnels. */
static void test_admin_agent_cut_mid_utf8(void **state)
{
    (void)state;
    live_open(NULL);
    char agent[80];
    memset(agent, 'a', 63);
    memcpy(agent + 63, "\xc3", 2); /* 63 'a' and half of "é" */
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(((sqlite3 *)es_sql_sqlite_handle(w.srv.live.db)),
                                        "INSERT INTO links VALUES('aaaa',?2,'" MW_TUNNEL_ID
                                        "',?2,?1,'192.0.2.1',0,'e\xff',1)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, agent, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, "conn1", -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, "\xff\xfe", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, "conn2", -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    int status = 0;
    char *body = admin_get(&status);
    assert_int_equal(status, 200);
    json_error_t err;
    json_t *root = json_loads(body, 0, &err);
    assert_non_null(root);
    json_t *t = json_array_get(json_object_get(root, "tunnels"), 0);
    json_t *conns = json_object_get(t, "connectors");
    assert_int_equal(json_array_size(conns), 2); /* neither vanished */
    memset(agent + 63, 0, 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(conns, 0), "agent")),
                        agent);
    assert_string_equal(json_string_value(json_object_get(json_array_get(conns, 1), "agent")), "");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(t, "edges"), "")), 2);
    json_decref(root);
    free(body);
    live_close(NULL);
}

/* Defect 9.5: the edge never closed a connection whose certificate had
 * run out (it was looked at only when renewing), so a connector that could
 * not renew (its token replaced) kept its links for good. Now the line's
 * end closes it: told why (not permanent, the connector reconnects or
 * enrols), then retired, so the stream in flight finishes. */
static void test_expired_certificate_closes_link(void **state)
{
    (void)state;
    registered();
    long long now = (long long)time(NULL);
    w.el->cert_not_after = now + 60;
    assert_int_equal(es_link_expire(&w.srv, now), 0);
    assert_int_equal(es_link_expire(&w.srv, now + 59), 0);
    pump();
    assert_true(es_link_usable(w.el));
    assert_int_equal(cn.errors, 0);
    browse(0, "GET /a HTTP/1.1\r\nHost: app.fuzz.test\r\n\r\n");
    struct cstream *a = cstream(cn.st[cn.n - 1].id);
    assert_string_equal(a->path, "/a");
    /* Its end comes. */
    assert_int_equal(es_link_expire(&w.srv, now + 60), 1);
    pump();
    assert_int_equal(cn.errors, 1);
    assert_string_equal(cn.error_code, "cert_expired");
    assert_false(cn.error_permanent);
    assert_int_equal(cn.goaways_in, 1);
    assert_int_equal(cn.errors_at_goaway, 1); /* why, then GOAWAY */
    assert_non_null(w.el);
    assert_true(w.el->retiring);
    assert_false(es_link_usable(w.el));
    assert_int_equal(es_link_expire(&w.srv, now + 61), 0); /* once */
    /* Nothing new goes to it; the request in flight finishes, then it closes. */
    browse(1, "GET /b HTTP/1.1\r\nHost: app.fuzz.test\r\n\r\n");
    assert_non_null(strstr(got(1), "HTTP/1.1 530 "));
    respond(a->id, 200, 2, "ok", 1);
    pump();
    assert_string_equal(got(0), "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    assert_null(w.el);
}

/* An expired link whose output never runs dry (here: the loop does not
 * run between two polls) is retired on the next poll all the same. */
static void test_expired_link_retired_next_poll(void **state)
{
    (void)state;
    registered();
    long long now = (long long)time(NULL);
    w.el->cert_not_after = now;
    assert_int_equal(es_link_expire(&w.srv, now), 1);
    assert_true(w.el->expiring);
    assert_false(w.el->retiring);
    assert_false(es_link_usable(w.el));
    assert_int_equal(es_link_expire(&w.srv, now), 0); /* not told twice */
    assert_true(w.el->retiring);
    pump();
    assert_int_equal(cn.errors, 1);
    assert_string_equal(cn.error_code, "cert_expired");
    assert_int_equal(cn.goaways_in, 1);
    assert_null(w.el); /* idle: closed */
}

/* A link whose certificate's end is unknown (0: memory links, or one that
 * could not be read) is never closed for it. */
static void test_unknown_expiry_kept(void **state)
{
    (void)state;
    registered();
    assert_int_equal(w.el->cert_not_after, 0);
    assert_int_equal(es_link_expire(&w.srv, (long long)time(NULL) + 10 * 365 * 86400LL), 0);
    pump();
    assert_true(es_link_usable(w.el));
}

/* Defect 9.5's other half: a healthy connector renews on one of its links,
 * yet all of them present the certificate that renewal replaces. The renewal
 * moves the line's end for each of them (same key, tunnel and line), so none
 * is closed; a link of another key or another line is not moved. */
static void test_renewal_moves_every_link_of_the_line(void **state)
{
    (void)state;
    registered();
    long long now = (long long)time(NULL);
    struct es_link *same = es_link_new_memory(&w.srv, MW_TUNNEL_ID, "198.51.100.21");
    struct es_link *other_key = es_link_new_memory(&w.srv, MW_TUNNEL_ID, "198.51.100.22");
    struct es_link *other_line = es_link_new_memory(&w.srv, MW_TUNNEL_ID, "198.51.100.23");
    assert_non_null(same);
    assert_non_null(other_key);
    assert_non_null(other_line);
    pump();
    struct es_link *all[] = {w.el, same, other_key, other_line};
    for (size_t i = 0; i < 4; i++) {
        all[i]->cert_not_after = now + 10;
        all[i]->enrolled_at = 1700000000;
        all[i]->rotation = 2;
        memset(all[i]->key_hash, 0xab, sizeof(all[i]->key_hash));
        all[i]->key_known = 1;
    }
    other_key->key_hash[31] ^= 1;
    other_line->enrolled_at = 1700000001;
    same->rotation = -1; /* presented a certificate from before generations */
    es_link_line_renewed(w.el, now + 100);
    assert_int_equal(w.el->cert_not_after, now + 100);
    assert_int_equal(same->cert_not_after, now + 100);
    assert_int_equal(same->rotation, 2);
    assert_int_equal(other_key->cert_not_after, now + 10);
    assert_int_equal(other_line->cert_not_after, now + 10);
    /* Never earlier than what a link had. */
    same->cert_not_after = now + 500;
    es_link_line_renewed(w.el, now + 200);
    assert_int_equal(same->cert_not_after, now + 500);
    /* The end of the old one closes only the two it did not move. */
    assert_int_equal(es_link_expire(&w.srv, now + 10), 2);
    pump();
    assert_true(es_link_usable(w.el));
    assert_false(same->retiring);
    assert_true(other_key->retiring);
    assert_true(other_line->retiring);
    rt_conn_abort(&same->conn, 0);
    rt_conn_abort(&other_key->conn, 0);
    rt_conn_abort(&other_line->conn, 0);
    for (int i = 0; i < 50 && es_link_count(&w.srv) > 1; i++)
        pump();
    assert_int_equal(es_link_count(&w.srv), 1);
}

/* Issue 13: connection ids come from a base drawn once per server (no DRBG
 * draw, no printf per link): 16 lower-case hex digits, each link its own,
 * and not a plain count (the base is random, the count mixed in). */
static void test_conn_ids_unique_without_draws(void **state)
{
    (void)state;
    registered();
    struct es_link *l[8];
    for (size_t i = 0; i < 8; i++) {
        l[i] = es_link_new_memory(&w.srv, MW_TUNNEL_ID, "198.51.100.30");
        assert_non_null(l[i]);
    }
    pump();
    assert_int_equal(w.srv.link_ids_ready, 1);
    struct es_link *all[9] = {w.el};
    memcpy(all + 1, l, sizeof(l));
    for (size_t i = 0; i < 9; i++) {
        assert_int_equal(strlen(all[i]->conn_id), 16);
        assert_int_equal(strspn(all[i]->conn_id, "0123456789abcdef"), 16);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(all[i]->conn_id, all[j]->conn_id);
    }
    /* Consecutive links do not get consecutive ids. */
    assert_string_not_equal(l[0]->conn_id + 8, l[1]->conn_id + 8);
    for (size_t i = 0; i < 8; i++)
        rt_conn_abort(&l[i]->conn, 0);
    for (int i = 0; i < 50 && es_link_count(&w.srv) > 1; i++)
        pump();
    assert_int_equal(es_link_count(&w.srv), 1);
}

int main(void)
{
    /* Keepalive PINGs every 100 ms, so a dead connector is found quickly. */
    setenv("TUNNEL_PING_INTERVAL_MS", "100", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serves_only_its_registered_names),
        cmocka_unit_test_setup_teardown(test_register_registered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_fields_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_goaway_with_streams_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_resets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_phases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_grace_expires, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_holds_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unregister_keeps_name_served_elsewhere, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reclaim_route_taken_warns_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_get_is_read_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_agent_cut_mid_utf8, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_certificate_closes_link, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_link_retired_next_poll, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_expiry_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_renewal_moves_every_link_of_the_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conn_ids_unique_without_draws, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
