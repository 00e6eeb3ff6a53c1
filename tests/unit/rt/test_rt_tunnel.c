/* rt_tunnel: a server session (the connector's role) and a client session
 * (the edge's) back to back in memory: each one's output is collected in a
 * px_buf and fed to the other, no sockets. What both links rely on: the
 * control stream opened and answered, control messages both ways (also one
 * queued before the stream was open), a second control stream refused,
 * PINGs answered, a silent peer found dead after PX_H2_PING_MAX_MISSED
 * intervals, the set-up deadline, GOAWAY either way with a stream in flight
 * finishing and no new ones, the going-away deadline, a shutdown's GOAWAY
 * that is not a going away, a GOAWAY notice from either end after which the
 * sender goes on (the client opening streams, the server taking them) until
 * its final GOAWAY, and a malformed control line or a closed control
 * stream ending the session. Timers run on a real uv loop with intervals of
 * tens of milliseconds. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "px_err.h"
#include "rt_tunnel.h"

#include <string.h>

#define SLOTS 8
#define LONG_MS 60000 /* a timer that must not fire during a test */

struct end;

/* One stream as the test's end sees it. */
struct tstream {
    struct end *e;
    int32_t id;
    char path[64];
    int headers, ended, closed, dropped;
    uint32_t err;
    size_t body;
};

struct end {
    struct rt_tunnel t;
    struct px_buf in; /* from the peer, not yet fed */
    int silent;       /* a frozen peer: what this end writes is lost */
    int recv_rc;      /* the first rt_tunnel_recv failure */
    struct tstream st[SLOTS];
    size_t n_st;
    int control_opened;
    enum px_ctl_type ctl[SLOTS];
    char ctl_agent[SLOTS][32];
    size_t n_ctl;
    int going_away;
    enum rt_tunnel_goaway how;
    uint32_t goaway_code;
    int failed;
    enum rt_tunnel_fail why;
    uint64_t failed_at;
    int closed;
};

static uv_loop_t loop;
static struct end srv, cli;

/* ---- the ends' ops ---- */

static void *s_begin(void *arg, int32_t id)
{
    struct end *e = arg;
    if (e->n_st == SLOTS)
        return NULL;
    struct tstream *s = &e->st[e->n_st++];
    *s = (struct tstream){.e = e, .id = id};
    return s;
}

static int s_header(void *arg, void *p, const uint8_t *name, size_t nlen, const uint8_t *value,
                    size_t vlen)
{
    (void)arg;
    struct tstream *s = p;
    /* The session keeps the control marker to itself. */
    assert_false(nlen == 14 && memcmp(name, "tunnel-control", 14) == 0);
    if (nlen == 5 && memcmp(name, ":path", 5) == 0 && vlen < sizeof(s->path)) {
        memcpy(s->path, value, vlen);
        s->path[vlen] = '\0';
    }
    return 0;
}

static int s_frame(void *arg, void *p, const nghttp2_frame *f)
{
    (void)arg;
    struct tstream *s = p;
    assert_int_equal(f->hd.stream_id, s->id);
    if (f->hd.type == NGHTTP2_HEADERS)
        s->headers++;
    if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
        s->ended = 1;
    return 0;
}

static int s_data(void *arg, void *p, int32_t id, const uint8_t *data, size_t len)
{
    struct end *e = arg;
    struct tstream *s = p;
    (void)data;
    s->body += len;
    rt_tunnel_consume(&e->t, id, len);
    return 0;
}

static void s_close(void *arg, void *p, int32_t id, uint32_t err)
{
    (void)arg;
    struct tstream *s = p;
    assert_int_equal(id, s->id);
    s->closed = 1;
    s->err = err;
}

static void s_drop(void *arg, void *p)
{
    (void)arg;
    struct tstream *s = p;
    s->dropped = 1;
}

static const struct rt_tunnel_stream_ops stream_ops = {
    .begin = s_begin,
    .header = s_header,
    .frame = s_frame,
    .data = s_data,
    .close = s_close,
    .drop = s_drop,
};

static int on_control_open(void *arg)
{
    struct end *e = arg;
    e->control_opened++;
    return 0;
}

static int on_control(void *arg, const struct px_ctl_msg *m)
{
    struct end *e = arg;
    if (e->n_ctl == SLOTS)
        return PX_ERR_NOMEM;
    e->ctl[e->n_ctl] = m->type;
    snprintf(e->ctl_agent[e->n_ctl], sizeof(e->ctl_agent[0]), "%s", m->agent ? m->agent : "");
    e->n_ctl++;
    return 0;
}

static void on_kick(void *arg)
{
    (void)arg; /* the pump moves every end's output anyway */
}

static void on_going_away(void *arg, enum rt_tunnel_goaway how, uint32_t code)
{
    struct end *e = arg;
    e->going_away++;
    e->how = how;
    e->goaway_code = code;
}

static void on_fail(void *arg, enum rt_tunnel_fail why)
{
    struct end *e = arg;
    e->failed++;
    e->why = why;
    e->failed_at = uv_now(&loop);
}

static void on_closed(void *arg)
{
    struct end *e = arg;
    e->closed++;
}

static const struct rt_tunnel_ops ops = {
    .stream = &stream_ops,
    .control_open = on_control_open,
    .control = on_control,
    .kick = on_kick,
    .going_away = on_going_away,
    .fail = on_fail,
    .closed = on_closed,
};

/* ---- the wire between them ---- */

static size_t move(struct end *from, struct end *to)
{
    size_t moved = 0;
    const uint8_t *d;
    ssize_t n;
    while (from->t.h2 && (n = nghttp2_session_mem_send(from->t.h2, &d)) > 0) {
        if (!from->silent)
            assert_int_equal(px_buf_append(&to->in, d, (size_t)n), 0);
        moved += (size_t)n;
    }
    size_t len = px_buf_len(&to->in);
    if (len && to->t.h2 && !to->recv_rc) {
        int rc = rt_tunnel_recv(&to->t, px_buf_head(&to->in), len);
        if (rc < 0)
            to->recv_rc = rc;
    }
    px_buf_consume(&to->in, len);
    return moved + len;
}

/* Moves frames both ways and runs due timers until nothing moves. */
static void pump(void)
{
    for (int quiet = 0, i = 0; quiet < 2 && i < 1000; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        size_t moved = move(&srv, &cli) + move(&cli, &srv);
        quiet = moved ? 0 : quiet + 1;
    }
}

/* Pumps for about ms of loop time. */
static void pump_for(unsigned ms)
{
    uv_update_time(&loop);
    uint64_t end = uv_now(&loop) + ms;
    while (uv_now(&loop) < end) {
        pump();
        uv_sleep(2);
        uv_update_time(&loop);
    }
    pump(); /* timers due by now have run */
}

static void start(struct end *e, int server, unsigned ping_ms, unsigned setup_ms,
                  unsigned goaway_ms)
{
    struct rt_tunnel_cfg cfg = {
        .server = server,
        .max_streams = 100,
        .ping_ms = ping_ms,
        .setup_ms = setup_ms,
        .goaway_ms = goaway_ms,
        .peer_name = server ? "the test's client" : "the test's server",
    };
    rt_tunnel_init(&e->t, &loop, &cfg, &ops, e);
    assert_int_equal(rt_tunnel_start(&e->t), 0);
}

/* Both sessions with the control stream up on both sides. */
static void up(unsigned srv_ping, unsigned cli_ping, unsigned goaway_ms)
{
    start(&srv, 1, srv_ping, 0, goaway_ms);
    start(&cli, 0, cli_ping, 0, goaway_ms);
    pump();
    assert_int_equal(cli.control_opened, 1);
    assert_int_equal(srv.control_opened, 1);
    assert_true(rt_tunnel_control_open(&cli.t));
    assert_true(rt_tunnel_control_open(&srv.t));
    assert_int_equal(srv.t.control_id, cli.t.control_id);
    /* The server took the control request over from its stream object. */
    assert_int_equal(srv.n_st, 1);
    assert_true(srv.st[0].dropped);
    assert_string_equal(srv.st[0].path, "/.tunnel/control");
}

/* A request from the client; END_STREAM with its head. */
static struct tstream *request(const char *path)
{
    struct tstream *s = &cli.st[cli.n_st++];
    *s = (struct tstream){.e = &cli};
    const nghttp2_nv nv[] = {
        {(uint8_t *)":method", (uint8_t *)"GET", 7, 3, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":scheme", (uint8_t *)"https", 7, 5, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":authority", (uint8_t *)"app.test", 10, 8, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), NGHTTP2_NV_FLAG_NONE},
    };
    s->id = nghttp2_submit_request(cli.t.h2, NULL, nv, 4, NULL, s);
    assert_true(s->id > 0);
    snprintf(s->path, sizeof(s->path), "%s", path);
    return s;
}

/* The server's stream for the client's request id. */
static struct tstream *served(int32_t id)
{
    for (size_t i = 0; i < srv.n_st; i++)
        if (srv.st[i].id == id)
            return &srv.st[i];
    return NULL;
}

static void answer(int32_t id)
{
    const nghttp2_nv nv[] = {{(uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE}};
    assert_int_equal(nghttp2_submit_response(srv.t.h2, id, nv, 1, NULL), 0);
}

static int setup(void **state)
{
    (void)state;
    memset(&srv, 0, sizeof(srv));
    memset(&cli, 0, sizeof(cli));
    px_buf_init(&srv.in);
    px_buf_init(&cli.in);
    return uv_loop_init(&loop);
}

static int teardown(void **state)
{
    (void)state;
    rt_tunnel_close(&srv.t);
    rt_tunnel_close(&cli.t);
    uv_run(&loop, UV_RUN_DEFAULT); /* the timers' close callbacks */
    assert_int_equal(srv.closed, 1);
    assert_int_equal(cli.closed, 1);
    assert_null(srv.t.h2);
    px_buf_cleanup(&srv.in);
    px_buf_cleanup(&cli.in);
    return uv_loop_close(&loop);
}

/* ---- tests ---- */

static void test_control_both_ways(void **state)
{
    (void)state;
    /* A line the server queues before the control stream exists waits for it. */
    start(&srv, 1, LONG_MS, 0, LONG_MS);
    struct px_ctl_msg early = {.type = PX_CTL_DRAIN};
    assert_int_equal(rt_tunnel_send(&srv.t, &early), 0);
    assert_false(rt_tunnel_control_open(&srv.t));
    start(&cli, 0, LONG_MS, 0, LONG_MS);
    pump();
    assert_int_equal(cli.control_opened, 1);
    assert_int_equal(srv.control_opened, 1);
    assert_int_equal(cli.n_ctl, 1);
    assert_int_equal(cli.ctl[0], PX_CTL_DRAIN);

    char *names[] = {"a.example.test"};
    struct px_ctl_msg reg = {
        .type = PX_CTL_REGISTER, .hostnames = names, .n_hostnames = 1, .agent = "test/1"};
    assert_int_equal(rt_tunnel_send(&cli.t, &reg), 0);
    assert_int_equal(rt_tunnel_send(&cli.t, &reg), 0);
    pump();
    assert_int_equal(srv.n_ctl, 2);
    assert_int_equal(srv.ctl[0], PX_CTL_REGISTER);
    assert_string_equal(srv.ctl_agent[1], "test/1");

    struct px_ctl_msg ok = {.type = PX_CTL_REGISTERED, .agent = "edge"};
    assert_int_equal(rt_tunnel_send(&srv.t, &ok), 0);
    pump();
    assert_int_equal(cli.n_ctl, 2);
    assert_int_equal(cli.ctl[1], PX_CTL_REGISTERED);
    assert_string_equal(cli.ctl_agent[1], "edge");
    assert_int_equal(cli.failed + srv.failed, 0);
}

static void test_second_control_stream_refused(void **state)
{
    (void)state;
    up(LONG_MS, LONG_MS, LONG_MS);
    struct tstream *s = &cli.st[cli.n_st++];
    *s = (struct tstream){.e = &cli};
    const nghttp2_nv nv[] = {
        {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":scheme", (uint8_t *)"https", 7, 5, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":authority", (uint8_t *)"tunnel.control", 10, 14, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":path", (uint8_t *)"/.tunnel/control", 5, 16, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"tunnel-control", (uint8_t *)"1", 14, 1, NGHTTP2_NV_FLAG_NONE},
    };
    s->id = nghttp2_submit_request(cli.t.h2, NULL, nv, 5, NULL, s);
    assert_true(s->id > 0);
    pump();
    assert_true(s->closed);
    assert_int_equal(s->err, NGHTTP2_PROTOCOL_ERROR);
    assert_true(served(s->id)->dropped); /* its stream object went back to the end */
    assert_int_equal(srv.control_opened, 1);
    assert_true(srv.t.control_id != s->id);
    /* The session and its first control stream go on. */
    struct px_ctl_msg m = {.type = PX_CTL_DRAIN};
    assert_int_equal(rt_tunnel_send(&cli.t, &m), 0);
    pump();
    assert_int_equal(srv.n_ctl, 1);
    assert_int_equal(srv.failed + cli.failed, 0);
    assert_int_equal(srv.recv_rc, 0);
}

static void test_request_stream_reaches_the_end(void **state)
{
    (void)state;
    up(LONG_MS, LONG_MS, LONG_MS);
    struct tstream *c = request("/x");
    pump();
    struct tstream *s = served(c->id);
    assert_non_null(s);
    assert_string_equal(s->path, "/x");
    assert_int_equal(s->headers, 1);
    assert_true(s->ended);
    answer(c->id);
    pump();
    assert_int_equal(c->headers, 1);
    assert_true(c->ended && c->closed && s->closed);
    assert_int_equal(c->err, NGHTTP2_NO_ERROR);
    /* Resetting a stream reaches the other end's close. */
    struct tstream *c2 = request("/y");
    pump();
    rt_tunnel_reset(&srv.t, c2->id, NGHTTP2_CANCEL);
    pump();
    assert_true(c2->closed);
    assert_int_equal(c2->err, NGHTTP2_CANCEL);
    assert_true(served(c2->id)->closed);
}

static void test_pings_answered(void **state)
{
    (void)state;
    up(20, 20, LONG_MS);
    pump_for(200);
    /* Both sent about ten; every one was answered. */
    assert_true(srv.t.pings_outstanding <= 1);
    assert_true(cli.t.pings_outstanding <= 1);
    assert_int_equal(srv.failed + cli.failed, 0);
}

static void test_silent_peer_is_dead(void **state)
{
    (void)state;
    up(20, LONG_MS, LONG_MS);
    uv_update_time(&loop);
    uint64_t t0 = uv_now(&loop);
    cli.silent = 1; /* its PING ACKs are lost */
    for (int i = 0; i < 100 && !srv.failed; i++)
        pump_for(10);
    assert_int_equal(srv.failed, 1);
    assert_int_equal(srv.why, RT_TUNNEL_DEAD_PEER);
    assert_int_equal(srv.t.pings_outstanding, PX_H2_PING_MAX_MISSED);
    /* Found at the tick after the last unanswered PING: not before. */
    assert_true(srv.failed_at - t0 >= 20 * PX_H2_PING_MAX_MISSED);
    assert_true(srv.failed_at - t0 < 20 * (PX_H2_PING_MAX_MISSED + 1) + 500);
    pump_for(60);
    assert_int_equal(srv.failed, 1); /* once */
    assert_int_equal(cli.failed, 0);
}

static void test_setup_deadline(void **state)
{
    (void)state;
    start(&srv, 1, LONG_MS, 0, LONG_MS);
    start(&cli, 0, 20, 40, LONG_MS);
    pump_for(100);
    assert_int_equal(cli.failed, 1);
    assert_int_equal(cli.why, RT_TUNNEL_SETUP_TIMEOUT);
}

static void test_ready_starts_pings(void **state)
{
    (void)state;
    start(&srv, 1, LONG_MS, 0, LONG_MS);
    start(&cli, 0, 20, 40, LONG_MS);
    pump();
    rt_tunnel_ready(&cli.t);
    srv.silent = 1; /* the client's PINGs go unanswered */
    pump_for(150);
    assert_int_equal(cli.failed, 1);
    assert_int_equal(cli.why, RT_TUNNEL_DEAD_PEER);
}

static void test_goaway_from_client_stream_finishes(void **state)
{
    (void)state;
    up(LONG_MS, LONG_MS, LONG_MS);
    struct tstream *c = request("/in-flight");
    pump();
    rt_tunnel_retire(&cli.t);
    rt_tunnel_retire(&cli.t); /* once */
    pump();
    assert_int_equal(cli.going_away, 1);
    assert_int_equal(cli.how, RT_TUNNEL_RETIRED);
    assert_true(cli.t.goaway_sent);
    assert_int_equal(srv.going_away, 1);
    assert_int_equal(srv.how, RT_TUNNEL_GOAWAY_RECEIVED);
    assert_int_equal(srv.goaway_code, NGHTTP2_NO_ERROR);
    assert_true(srv.t.goaway_received && srv.t.going_away);
    /* No new streams (the session says so; nghttp2 would still let a client
     * that sent GOAWAY open one)... */
    assert_true(cli.t.going_away);
    /* ...but the one in flight finishes. */
    answer(c->id);
    pump();
    assert_true(c->ended && c->closed);
    assert_int_equal(c->err, NGHTTP2_NO_ERROR);
    assert_int_equal(srv.failed + cli.failed, 0);
}

static void test_goaway_from_server_stream_finishes(void **state)
{
    (void)state;
    up(LONG_MS, LONG_MS, LONG_MS);
    struct tstream *c = request("/in-flight");
    pump();
    assert_non_null(served(c->id));
    rt_tunnel_retire(&srv.t);
    pump();
    assert_int_equal(srv.going_away, 1);
    assert_int_equal(cli.going_away, 1);
    assert_int_equal(cli.how, RT_TUNNEL_GOAWAY_RECEIVED);
    assert_int_equal(nghttp2_session_check_request_allowed(cli.t.h2), 0);
    assert_false(c->closed); /* the GOAWAY's last stream id covers it */
    answer(c->id);
    pump();
    assert_true(c->ended && c->closed);
    assert_int_equal(c->err, NGHTTP2_NO_ERROR);
    assert_int_equal(srv.failed + cli.failed, 0);
}

static void test_goaway_deadline(void **state)
{
    (void)state;
    up(20, 20, 50);
    struct tstream *c = request("/never-answered");
    pump();
    assert_int_equal(
        nghttp2_submit_goaway(cli.t.h2, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0), 0);
    pump();
    /* A GOAWAY the end submitted itself counts as sent. */
    assert_int_equal(cli.going_away, 1);
    assert_int_equal(cli.how, RT_TUNNEL_GOAWAY_SENT);
    assert_int_equal(srv.how, RT_TUNNEL_GOAWAY_RECEIVED);
    pump_for(150);
    assert_false(c->closed);
    /* PINGs gave way to the deadline on both ends. */
    assert_int_equal(cli.failed, 1);
    assert_int_equal(cli.why, RT_TUNNEL_GOAWAY_TIMEOUT);
    assert_int_equal(srv.failed, 1);
    assert_int_equal(srv.why, RT_TUNNEL_GOAWAY_TIMEOUT);
}

static void test_shutdown_is_not_going_away(void **state)
{
    (void)state;
    up(20, 20, LONG_MS);
    rt_tunnel_shutdown(&srv.t);
    pump_for(120);
    assert_true(srv.t.goaway_sent && srv.t.closing);
    assert_int_equal(srv.going_away, 0);
    assert_int_equal(srv.failed, 0); /* no PINGs, no deadlines once closing */
    assert_int_equal(cli.going_away, 1);
    assert_int_equal(cli.how, RT_TUNNEL_GOAWAY_RECEIVED);
}

/* An edge draining: the client warns the server with a GOAWAY notice, then
 * keeps opening streams on the session, which the server still takes
 * (nghttp2 lets a server accept streams after it received GOAWAY), until the
 * final GOAWAY (here rt_tunnel_shutdown). */
static void test_notice_from_client_keeps_the_session(void **state)
{
    (void)state;
    up(20, 20, LONG_MS);
    assert_int_equal(rt_tunnel_goaway_notice(&cli.t), 0);
    assert_int_equal(rt_tunnel_goaway_notice(&cli.t), 0); /* once */
    pump();
    assert_true(cli.t.notice_sent);
    assert_false(cli.t.goaway_sent || cli.t.going_away);
    assert_int_equal(cli.going_away, 0);
    assert_int_equal(srv.going_away, 1);
    assert_int_equal(srv.how, RT_TUNNEL_GOAWAY_RECEIVED);
    assert_int_equal(srv.goaway_code, NGHTTP2_NO_ERROR);
    assert_true(nghttp2_session_check_request_allowed(cli.t.h2));
    /* Streams opened after the notice are served. */
    struct tstream *c = request("/after-notice");
    pump();
    assert_non_null(served(c->id));
    answer(c->id);
    pump();
    assert_true(c->ended && c->closed);
    assert_int_equal(c->err, NGHTTP2_NO_ERROR);
    /* The PINGs went on through it. */
    pump_for(100);
    assert_int_equal(srv.failed + cli.failed, 0);
    assert_true(cli.t.pings_outstanding <= 1);
    /* Then the final GOAWAY: the client is closing. */
    rt_tunnel_shutdown(&cli.t);
    pump();
    assert_true(cli.t.goaway_sent);
    assert_int_equal(cli.going_away, 0);
}

/* The server's notice (last-stream-id 2^31-1): the client begins going away
 * (no new streams from its end), but a stream it opened before the notice
 * arrived finishes; the server's final GOAWAY (rt_tunnel_retire) follows. */
static void test_notice_from_server(void **state)
{
    (void)state;
    up(LONG_MS, LONG_MS, LONG_MS);
    struct tstream *c = request("/in-flight");
    pump();
    /* A request the client had not sent yet is refused by its own nghttp2
     * (REFUSED_STREAM: safe to send again elsewhere). */
    struct tstream *late = request("/not-sent");
    assert_int_equal(rt_tunnel_goaway_notice(&srv.t), 0);
    move(&srv, &cli);
    pump();
    assert_true(late->closed);
    assert_int_equal(late->err, NGHTTP2_REFUSED_STREAM);
    assert_true(srv.t.notice_sent);
    assert_int_equal(srv.going_away, 0);
    assert_int_equal(cli.going_away, 1);
    assert_int_equal(cli.how, RT_TUNNEL_GOAWAY_RECEIVED);
    assert_non_null(served(c->id));
    assert_false(c->closed);
    answer(c->id);
    pump();
    assert_true(c->closed);
    assert_int_equal(c->err, NGHTTP2_NO_ERROR);
    rt_tunnel_retire(&srv.t);
    pump();
    assert_true(srv.t.goaway_sent);
    assert_int_equal(srv.going_away, 1);
    assert_int_equal(srv.how, RT_TUNNEL_RETIRED);
    /* A notice after the final GOAWAY is nothing. */
    assert_int_equal(rt_tunnel_goaway_notice(&cli.t), 0);
    assert_false(cli.t.notice_queued);
}

static void test_control_stream_closed(void **state)
{
    (void)state;
    up(LONG_MS, LONG_MS, LONG_MS);
    rt_tunnel_reset(&cli.t, cli.t.control_id, NGHTTP2_CANCEL);
    pump();
    assert_int_equal(srv.failed, 1);
    assert_int_equal(srv.why, RT_TUNNEL_CONTROL_CLOSED);
    assert_int_equal(cli.failed, 1);
    assert_int_equal(cli.why, RT_TUNNEL_CONTROL_CLOSED);
}

static void test_malformed_control_line(void **state)
{
    (void)state;
    up(LONG_MS, LONG_MS, LONG_MS);
    static const char bad[] = "{\"type\":\"register\",\"hostnames\":[1,2]}\n";
    assert_int_equal(
        px_h2_outbox_push(&cli.t.control_out, cli.t.h2, cli.t.control_id, bad, sizeof(bad) - 1), 0);
    pump();
    assert_int_equal(srv.n_ctl, 0);
    assert_int_equal(srv.recv_rc, NGHTTP2_ERR_CALLBACK_FAILURE);
    assert_true(nghttp2_is_fatal(srv.recv_rc));
}

static void test_control_refused_by_end(void **state)
{
    (void)state;
    up(LONG_MS, LONG_MS, LONG_MS);
    srv.n_ctl = SLOTS; /* on_control answers PX_ERR_NOMEM */
    struct px_ctl_msg m = {.type = PX_CTL_DRAIN};
    assert_int_equal(rt_tunnel_send(&cli.t, &m), 0);
    pump();
    assert_int_equal(srv.recv_rc, NGHTTP2_ERR_CALLBACK_FAILURE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_control_both_ways, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_control_stream_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_stream_reaches_the_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pings_answered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silent_peer_is_dead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_setup_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ready_starts_pings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_goaway_from_client_stream_finishes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_goaway_from_server_stream_finishes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_goaway_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_is_not_going_away, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notice_from_client_keeps_the_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notice_from_server, setup, teardown),
        cmocka_unit_test_setup_teardown(test_control_stream_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_control_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_control_refused_by_end, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
