/* cn_supervisor over several edges, in memory: each link the supervisor
 * dials (through its dial op) is a memory link whose edge this test plays
 * with a small HTTP/2 client per link. Covers failover after a failed
 * attempt (and the backoff once every edge failed), the move on the edge's GOAWAY (the old link
 * still serving what the edge sends), and going home again (make before break). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cn_supervisor.h"
#include "px_control.h"
#include "px_err.h"
#include "px_h2.h"
#include "px_log.h"
#include "rt_loop.h"

#include <nghttp2/nghttp2.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_DIALS 8

/* The edge's side of one link. */
struct fe {
    struct cn_link *l; /* the supervisor's; valid while alive(l) */
    char addr[64];
    nghttp2_session *h2;
    int32_t control_id;
    struct px_h2_outbox control_out;
    struct px_ctl_framer control_in;
    int registers, drains;
    char connector[64], edge[64];
    int index;
    int32_t req_id;
    int req_status, req_closed;
};

struct world {
    uv_loop_t loop;
    struct rt_loop rl;
    struct cn_config cfg;
    struct cn_supervisor sup;
    int fail_dials; /* dials to fail (connection refused) before answering */
    struct fe fes[MAX_DIALS];
    unsigned n_dials;
};

static struct world w;

#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE                 \
    }

static int alive(const struct cn_link *l)
{
    struct cn_supervisor *s = &w.sup;
    for (unsigned i = 0; i < s->n_slots; i++)
        if (s->slots[i].link == l || s->slots[i].probe == l)
            return 1;
    if (!s->retired.head.next)
        return 0;
    struct px_list_node *pos, *tmp;
    px_list_for_each_safe (pos, tmp, &s->retired)
        if (px_container_of(pos, struct cn_link, host_node) == l)
            return 1;
    return 0;
}

static int on_line(const struct px_ctl_msg *m, void *arg)
{
    struct fe *e = arg;
    if (m->type == PX_CTL_REGISTER) {
        e->registers++;
        snprintf(e->connector, sizeof(e->connector), "%s", m->connector ? m->connector : "");
        snprintf(e->edge, sizeof(e->edge), "%s", m->edge ? m->edge : "");
        e->index = m->conn_index;
    } else if (m->type == PX_CTL_DRAIN) {
        e->drains++;
    }
    return 0;
}

static int on_data(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *user)
{
    (void)h2;
    (void)flags;
    struct fe *e = user;
    if (id == e->control_id)
        assert_int_equal(px_ctl_framer_feed(&e->control_in, data, len, on_line, e), 0);
    return 0;
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
    (void)h2;
    (void)flags;
    (void)vlen;
    struct fe *e = user;
    if (f->hd.stream_id == e->req_id && nlen == 7 && memcmp(name, ":status", 7) == 0)
        e->req_status = atoi((const char *)value);
    return 0;
}

static int on_close(nghttp2_session *h2, int32_t id, uint32_t err, void *user)
{
    (void)h2;
    (void)err;
    struct fe *e = user;
    if (id == e->req_id)
        e->req_closed = 1;
    return 0;
}

static void fe_start(struct fe *e)
{
    nghttp2_session_callbacks *cb;
    assert_int_equal(nghttp2_session_callbacks_new(&cb), 0);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
    assert_int_equal(nghttp2_session_client_new(&e->h2, cb, e), 0);
    nghttp2_session_callbacks_del(cb);
    px_h2_outbox_init(&e->control_out);
    px_ctl_framer_init(&e->control_in);
    assert_int_equal(nghttp2_submit_settings(e->h2, NGHTTP2_FLAG_NONE, NULL, 0), 0);
    nghttp2_nv nv[] = {NV(":method", "POST"), NV(":scheme", "https"),
                       NV(":authority", "tunnel.control"), NV(":path", "/.tunnel/control"),
                       NV("tunnel-control", "1")};
    nghttp2_data_provider dp = {.source.ptr = &e->control_out, .read_callback = px_h2_outbox_read};
    e->control_id = nghttp2_submit_request(e->h2, NULL, nv, 5, &dp, NULL);
    assert_true(e->control_id > 0);
}

static void fe_send(struct fe *e, const struct px_ctl_msg *m)
{
    char *line = px_ctl_encode(m);
    assert_non_null(line);
    assert_int_equal(px_h2_outbox_push(&e->control_out, e->h2, e->control_id, line, strlen(line)),
                     0);
    free(line);
}

static void fe_registered(struct fe *e)
{
    struct px_ctl_result res = {.hostname = "app.test", .accepted = 1};
    struct px_ctl_msg m = {.type = PX_CTL_REGISTERED,
                           .results = &res,
                           .n_results = 1,
                           .agent = "test-edge",
                           .conn_id = "0123456789abcdef"};
    fe_send(e, &m);
}

static void fe_request(struct fe *e)
{
    nghttp2_nv nv[] = {NV(":method", "GET"), NV(":scheme", "https"), NV(":authority", "app.test"),
                       NV(":path", "/")};
    e->req_status = e->req_closed = 0;
    e->req_id = nghttp2_submit_headers(e->h2, NGHTTP2_FLAG_END_STREAM, -1, NULL, nv, 4, NULL);
    assert_true(e->req_id > 0);
}

/* One round: every live link's bytes to its edge and back, then the loop. */
static void pump(void)
{
    for (unsigned i = 0; i < w.n_dials; i++) {
        struct fe *e = &w.fes[i];
        if (!e->h2 || !e->l || !alive(e->l)) {
            e->l = NULL;
            continue;
        }
        struct rt_conn *c = &e->l->conn;
        size_t n = px_buf_len(&c->mem_out);
        if (n) {
            assert_true(nghttp2_session_mem_recv(e->h2, px_buf_head(&c->mem_out), n) >= 0);
            rt_conn_memory_consume(c, n);
        }
        const uint8_t *out;
        ssize_t k;
        while (!c->closing && !c->closed && (k = nghttp2_session_mem_send(e->h2, &out)) > 0)
            rt_conn_memory_feed(c, out, (size_t)k);
    }
    uv_run(&w.loop, UV_RUN_NOWAIT);
}

static long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Pumps until *flag holds (an int the rounds change) or ms passed. */
static int run_until(const int *flag, int ms)
{
    long end = now_ms() + ms;
    while (!*flag && now_ms() < end) {
        pump();
        usleep(1000);
    }
    return *flag;
}

static int dial(struct cn_supervisor *s, struct cn_link *l, const struct cn_link_host *host,
                unsigned index, const char *addr)
{
    (void)s;
    assert_true(w.n_dials < MAX_DIALS);
    struct fe *e = &w.fes[w.n_dials++];
    memset(e, 0, sizeof(*e));
    snprintf(e->addr, sizeof(e->addr), "%s", addr);
    int rc = cn_link_start_memory(l, host, index);
    if (rc < 0)
        return rc;
    snprintf(l->edge, sizeof(l->edge), "%s", addr); /* what the product dials */
    if (w.fail_dials > 0) {
        w.fail_dials--;
        rt_conn_abort(&l->conn, PX_ERR_IO); /* refused */
        return 0;
    }
    e->l = l;
    fe_start(e);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    px_log_set_level(PX_LOG_ERROR);
    memset(&w, 0, sizeof(w));
    if (uv_loop_init(&w.loop) != 0 || rt_loop_init(&w.rl, &w.loop) < 0)
        return -1;
    static const char ing[] = "{\"ingress\":[{\"hostname\":\"app.test\",\"service\":\"http_status:"
                              "204\"},{\"service\":\"http_status:404\"}]}";
    struct cn_ingress_errors errs = {0};
    if (cn_ingress_parse(ing, strlen(ing), &w.cfg.ingress, &errs) < 0)
        return -1;
    snprintf(w.cfg.edges[0], sizeof(w.cfg.edges[0]), "127.0.0.1:7844");
    snprintf(w.cfg.edges[1], sizeof(w.cfg.edges[1]), "127.0.0.2:7844");
    w.cfg.n_edges = 2;
    w.cfg.response_timeout_ms = 30000;
    struct cn_supervisor *s = &w.sup;
    s->loop = &w.loop;
    s->cfg = &w.cfg;
    s->dial = dial;
    s->tls_ctx = (WOLFSSL_CTX *)&w;      /* never used: the links are in memory */
    static char enrolled[] = "enrolled"; /* a certificate: failures redial, not re-enrol */
    s->id.cert_pem = enrolled;
    snprintf(s->connector_id, sizeof(s->connector_id), "00112233aabbccdd");
    cn_edges_init(&s->edges, 2);
    s->n_slots = 1;
    cn_supervisor_slot_init(s, 0);
    uv_timer_init(&w.loop, &s->grace);
    uv_timer_init(&w.loop, &s->enroll_retry);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    struct cn_supervisor *s = &w.sup;
    s->draining = 1; /* let stop_all run through cn_supervisor_fatal's path */
    s->stopping = 0;
    cn_supervisor_fatal(s, "test over");
    for (int i = 0; i < 200; i++)
        pump();
    for (unsigned i = 0; i < w.n_dials; i++) {
        if (w.fes[i].h2)
            nghttp2_session_del(w.fes[i].h2);
        px_h2_outbox_cleanup(&w.fes[i].control_out);
        px_ctl_framer_cleanup(&w.fes[i].control_in);
    }
    cn_supervisor_slot_cleanup(s, 0);
    uv_close((uv_handle_t *)&s->grace, NULL);
    uv_close((uv_handle_t *)&s->enroll_retry, NULL);
    rt_loop_cleanup(&w.rl);
    uv_run(&w.loop, UV_RUN_DEFAULT);
    cn_ingress_unref(w.cfg.ingress);
    return uv_loop_close(&w.loop) == 0 ? 0 : -1;
}

/* Registers the link of dial i (its edge answers REGISTER). */
static void register_dial(unsigned i)
{
    struct fe *e = &w.fes[i];
    assert_true(run_until(&e->registers, 2000));
    fe_registered(e);
    long end = now_ms() + 2000;
    while (!(e->l && alive(e->l) && cn_link_registered(e->l)) && now_ms() < end)
        pump();
    assert_true(e->l && cn_link_registered(e->l));
}

/* A refused attempt at the home edge, then the next edge within
 * CN_MOVE_JITTER_MS (no backoff wait: that edge is up). */
static void test_failover_after_a_failed_attempt(void **state)
{
    (void)state;
    w.fail_dials = 1;
    cn_supervisor_slot_start(&w.sup, 0);
    long t0 = now_ms();
    while (w.n_dials < 2 && now_ms() < t0 + 4000)
        pump();
    assert_int_equal(w.n_dials, 2);
    assert_true(now_ms() - t0 < CN_MOVE_JITTER_MS + 900);
    assert_string_equal(w.fes[0].addr, "127.0.0.1:7844");
    assert_string_equal(w.fes[1].addr, "127.0.0.2:7844");
    register_dial(1);
    /* REGISTER names the process, the slot and the edge dialed. */
    assert_string_equal(w.fes[1].connector, "00112233aabbccdd");
    assert_int_equal(w.fes[1].index, 0);
    assert_string_equal(w.fes[1].edge, "127.0.0.2:7844");
    /* Away from home: it will try home again in 10-20 s. */
    assert_true(uv_is_active((uv_handle_t *)&w.sup.slots[0].rebalance));
    uint64_t due = uv_timer_get_due_in(&w.sup.slots[0].rebalance);
    assert_true(due > 5000 && due <= CN_EDGES_REBALANCE_MS + CN_EDGES_REBALANCE_JITTER_MS);
}

/* Every edge refusing: the first round moves on at once, then the backoff
 * holds (all edges down must not become a dial a second). */
static void test_all_edges_down_backoff_holds(void **state)
{
    (void)state;
    w.fail_dials = 8;
    cn_supervisor_slot_start(&w.sup, 0);
    long t0 = now_ms();
    while (w.n_dials < 2 && now_ms() < t0 + 4000)
        pump();
    assert_int_equal(w.n_dials, 2); /* A refused, B at once */
    assert_string_equal(w.fes[1].addr, "127.0.0.2:7844");
    for (int i = 0; i < 20; i++)
        pump();
    /* B refused too: a full round failed, so the next dial (back to A)
     * waits a backoff drawn with the second ceiling (20 s). */
    assert_int_equal(w.sup.slots[0].round, 2);
    assert_int_equal(w.sup.slots[0].backoff.attempt, 2);
    assert_true(uv_is_active((uv_handle_t *)&w.sup.slots[0].retry));
    assert_int_equal(w.sup.slots[0].place.edge, 0);
}

/* The edge's GOAWAY arriving before its REGISTERED (it began draining while
 * the link registered): once registered, the slot moves at once all the
 * same (the bug: it sat on the draining edge until that edge closed it). */
static void test_goaway_before_registered_moves(void **state)
{
    (void)state;
    cn_supervisor_slot_start(&w.sup, 0);
    struct fe *a = &w.fes[0];
    assert_true(run_until(&a->registers, 2000));
    assert_int_equal(nghttp2_submit_goaway(a->h2, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0),
                     0);
    for (int i = 0; i < 20; i++)
        pump();
    assert_int_equal(w.n_dials, 1); /* not registered yet: nothing moved */
    fe_registered(a);
    long t0 = now_ms();
    while (w.n_dials < 2 && now_ms() < t0 + 2000)
        pump();
    assert_int_equal(w.n_dials, 2);
    assert_string_equal(w.fes[1].addr, "127.0.0.2:7844");
    assert_true(alive(a->l)); /* still serving what the draining edge sends */
}

/* The edge's GOAWAY: a replacement to the other edge at once, while the
 * old link stays up and serves a request the draining edge still sends;
 * it closes when that edge closes the connection. */
static void test_goaway_moves_at_once_and_old_link_serves(void **state)
{
    (void)state;
    cn_supervisor_slot_start(&w.sup, 0);
    assert_int_equal(w.n_dials, 1);
    register_dial(0);
    struct fe *a = &w.fes[0];
    struct cn_link *old = a->l;
    assert_int_equal(nghttp2_submit_goaway(a->h2, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0),
                     0);
    long t0 = now_ms();
    while (w.n_dials < 2 && now_ms() < t0 + 2000)
        pump();
    assert_int_equal(w.n_dials, 2);
    /* At once: no backoff was drawn (a draw counts an attempt). */
    assert_int_equal(w.sup.slots[0].backoff.attempt, 0);
    assert_true(now_ms() - t0 < 900);
    assert_string_equal(w.fes[1].addr, "127.0.0.2:7844");
    register_dial(1);
    assert_ptr_equal(w.sup.slots[0].link, w.fes[1].l);
    /* The old link is retired but alive, and serves a new stream. */
    assert_true(alive(old));
    fe_request(a);
    assert_true(run_until(&a->req_closed, 2000));
    assert_int_equal(a->req_status, 204);
    assert_true(alive(old));
    /* The edge closes it: gone, and the slot keeps its new link. */
    rt_conn_memory_eof(&old->conn);
    for (int i = 0; i < 50 && alive(old); i++)
        pump();
    assert_false(alive(old));
    assert_ptr_equal(w.sup.slots[0].link, w.fes[1].l);
    assert_true(cn_link_usable(w.fes[1].l));
}

/* With a single edge the GOAWAY's replacement waits the slot's full-jitter
 * backoff (a fleet must not hit a restarting edge in one burst), and the
 * old link still serves meanwhile. */
static void test_single_edge_goaway_redials_after_backoff(void **state)
{
    (void)state;
    w.cfg.n_edges = 1;
    cn_edges_init(&w.sup.edges, 1);
    /* The product's first ceiling is wide (storms); a 1 s one keeps this
     * test short and exercises the same path. */
    assert_int_equal(cn_backoff_ceiling(&w.sup.slots[0].backoff), CN_RECONNECT_FIRST_MS);
    cn_backoff_init(&w.sup.slots[0].backoff, 1000, CN_RECONNECT_CAP_MS);
    cn_supervisor_slot_start(&w.sup, 0);
    register_dial(0);
    struct fe *a = &w.fes[0];
    struct cn_link *old = a->l;
    assert_int_equal(nghttp2_submit_goaway(a->h2, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0),
                     0);
    for (int i = 0; i < 20 && w.sup.slots[0].link; i++)
        pump();
    assert_null(w.sup.slots[0].link);
    assert_int_equal(w.sup.slots[0].backoff.attempt, 1); /* a delay was drawn */
    fe_request(a);
    assert_true(run_until(&a->req_closed, 2000));
    assert_int_equal(a->req_status, 204);
    long end = now_ms() + 3000; /* the first ceiling is 1 s */
    while (w.n_dials < 2 && now_ms() < end)
        pump();
    assert_int_equal(w.n_dials, 2);
    assert_string_equal(w.fes[1].addr, "127.0.0.1:7844");
    assert_true(alive(old));
}

/* Away from home, the rebalance dials home with a second link; once it
 * registers it takes the slot and the other link drains (DRAIN sent, closed
 * when idle). */
static void test_rebalance_make_before_break(void **state)
{
    (void)state;
    w.fail_dials = 1;
    cn_supervisor_slot_start(&w.sup, 0);
    long end = now_ms() + 4000;
    while (w.n_dials < 2 && now_ms() < end)
        pump();
    register_dial(1);
    struct cn_link *away = w.fes[1].l;
    /* Its time has come (the timer would fire in 10-20 s). */
    uv_timer_t *rb = &w.sup.slots[0].rebalance;
    uv_timer_start(rb, rb->timer_cb, 0, 0);
    end = now_ms() + 2000;
    while (w.n_dials < 3 && now_ms() < end)
        pump();
    assert_int_equal(w.n_dials, 3);
    assert_string_equal(w.fes[2].addr, "127.0.0.1:7844");
    assert_ptr_equal(w.sup.slots[0].probe, w.fes[2].l);
    assert_ptr_equal(w.sup.slots[0].link, away); /* still serving until home registers */
    register_dial(2);
    assert_ptr_equal(w.sup.slots[0].link, w.fes[2].l);
    assert_null(w.sup.slots[0].probe);
    assert_true(run_until(&w.fes[1].drains, 2000));
    for (int i = 0; i < 200 && alive(away); i++)
        pump();
    assert_false(alive(away)); /* idle: drained and closed */
    assert_false(uv_is_active((uv_handle_t *)rb));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_failover_after_a_failed_attempt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_edges_down_backoff_holds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_goaway_before_registered_moves, setup, teardown),
        cmocka_unit_test_setup_teardown(test_goaway_moves_at_once_and_old_link_serves, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_single_edge_goaway_redials_after_backoff, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rebalance_make_before_break, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
