/* es_drain: the phases of a drain on a server with nothing open, and a
 * second signal's exit code, which no later drain tick may overwrite. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "es_drain.h"
#include "es_server.h"
#include "rt_loop.h"

#include <string.h>

static uv_loop_t loop;
static struct rt_loop rl;
static struct es_server srv;

static int setup(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(rt_loop_init(&rl, &loop), 0);
    memset(&srv, 0, sizeof(srv));
    srv.loop = &loop;
    srv.grace_ms = 60000;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    es_drain_cleanup(&srv);
    rt_loop_cleanup(&rl);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    return 0;
}

/* Nothing open: the drain sends its notice, then finishes with exit 0. */
static void test_idle_drain_exits_zero(void **state)
{
    (void)state;
    srv.exit_code = 7;
    es_drain_begin(&srv);
    uv_run(&loop, UV_RUN_DEFAULT); /* until finish() stops the loop */
    assert_int_equal(srv.drain_phase, ES_DRAIN_DONE);
    assert_int_equal(srv.exit_code, 0);
}

static void stop_loop(uv_timer_t *t)
{
    uv_stop(t->loop);
}

/* Bug (issue 13, --workers): a second signal stopped the loop with exit 1,
 * but shutting down ran the loop again (es_workers_stop), the drain's tick
 * fired, found nothing open and finished with exit 0. */
static void test_second_signal_exit_code_survives_drain_tick(void **state)
{
    (void)state;
    es_drain_begin(&srv);
    /* What on_signal does for the second signal. */
    srv.stopping = 1;
    srv.exit_code = 1;
    /* The loop runs on while shutting down, past the notice phase. */
    static uv_timer_t wait; /* closed by teardown's loop run */
    uv_timer_init(&loop, &wait);
    uv_timer_start(&wait, stop_loop, ES_DRAIN_NOTICE_MS + 3 * ES_DRAIN_TICK_MS, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&wait, NULL);
    assert_int_equal(srv.exit_code, 1);
    assert_int_not_equal(srv.drain_phase, ES_DRAIN_DONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_idle_drain_exits_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_signal_exit_code_survives_drain_tick, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
