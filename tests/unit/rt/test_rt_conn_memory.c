/* rt_conn memory mode: the contract tests and fuzzers rely on. An echo owner
 * writes back what it reads; the test plays the peer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "px_err.h"
#include "rt_conn.h"

#include <string.h>

static uv_loop_t loop;
static struct rt_loop rl;

struct echo {
    struct rt_conn conn;
    int opened, closed, close_err;
    int close_in_data; /* asks for a close from inside on_data */
    char pending[64];  /* written at the next on_writable */
};

static int on_open(struct rt_conn *c)
{
    struct echo *e = c->owner;
    e->opened++;
    return 0;
}

static int on_data(struct rt_conn *c, const uint8_t *p, size_t n)
{
    struct echo *e = c->owner;
    if (n >= sizeof(e->pending))
        n = sizeof(e->pending) - 1;
    memcpy(e->pending, p, n);
    e->pending[n] = '\0';
    rt_conn_want_write(c);
    if (e->close_in_data)
        rt_conn_close(c, 0);
    return 0;
}

static int on_writable(struct rt_conn *c)
{
    struct echo *e = c->owner;
    if (!e->pending[0])
        return 0;
    int rc = rt_conn_write(c, e->pending, strlen(e->pending));
    e->pending[0] = '\0';
    return rc;
}

static void on_close(struct rt_conn *c, int err)
{
    struct echo *e = c->owner;
    e->closed++;
    e->close_err = err;
}

static const struct rt_conn_ops ops = {
    .on_open = on_open, .on_data = on_data, .on_writable = on_writable, .on_close = on_close};

static void run(int times)
{
    for (int i = 0; i < times; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
}

static void open_echo(struct echo *e)
{
    memset(e, 0, sizeof(*e));
    assert_int_equal(rt_conn_init(&e->conn, &loop, &ops, e), 0);
    assert_int_equal(rt_conn_open_memory(&e->conn, "h2", "192.0.2.9"), 0);
    assert_int_equal(e->opened, 1);
    assert_string_equal(rt_conn_alpn(&e->conn), "h2");
    assert_string_equal(e->conn.peer_ip, "192.0.2.9");
}

static int setup(void **state)
{
    (void)state;
    if (uv_loop_init(&loop) != 0)
        return -1;
    return rt_loop_init(&rl, &loop);
}

static int teardown(void **state)
{
    (void)state;
    rt_loop_cleanup(&rl);
    uv_run(&loop, UV_RUN_DEFAULT);
    return uv_loop_close(&loop);
}

/* Output appears in mem_out after the flush; draining it makes room again. */
static void echo_round_trip(void **state)
{
    (void)state;
    struct echo e;
    open_echo(&e);
    assert_int_equal(rt_conn_memory_feed(&e.conn, "ping", 4), 0);
    run(2);
    assert_int_equal(px_buf_len(&e.conn.mem_out), 4);
    assert_memory_equal(px_buf_head(&e.conn.mem_out), "ping", 4);
    assert_int_equal(rt_conn_write_room(&e.conn), RT_CONN_WRITE_HIGH - 4);
    rt_conn_memory_consume(&e.conn, 4);
    assert_int_equal(rt_conn_write_room(&e.conn), RT_CONN_WRITE_HIGH);
    rt_conn_abort(&e.conn, 0);
    run(2);
    assert_int_equal(e.closed, 1);
}

/* A graceful close waits until the peer took the output, like a socket's
 * write queue; on_close comes once, from the loop. */
static void graceful_close_waits_for_drain(void **state)
{
    (void)state;
    struct echo e;
    open_echo(&e);
    e.close_in_data = 1; /* deferred until on_data returns, then last words */
    assert_int_equal(rt_conn_memory_feed(&e.conn, "bye", 3), PX_ERR_CLOSED);
    run(3);
    assert_int_equal(e.closed, 0);
    assert_true(e.conn.closing);
    assert_int_equal(px_buf_len(&e.conn.mem_out), 3);
    assert_int_equal(rt_conn_memory_feed(&e.conn, "late", 4), PX_ERR_CLOSED);
    rt_conn_memory_consume(&e.conn, 3);
    run(2);
    assert_int_equal(e.closed, 1);
    assert_int_equal(e.close_err, 0);
}

static void peer_eof_closes_once(void **state)
{
    (void)state;
    struct echo e;
    open_echo(&e);
    rt_conn_memory_eof(&e.conn);
    rt_conn_memory_eof(&e.conn);
    rt_conn_close(&e.conn, 0);
    run(2);
    assert_int_equal(e.closed, 1);
    assert_int_equal(e.close_err, PX_ERR_CLOSED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(echo_round_trip),
        cmocka_unit_test(graceful_close_waits_for_drain),
        cmocka_unit_test(peer_eof_closes_once),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
