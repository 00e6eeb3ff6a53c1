/* rt_loop: one loop's runtime state; its handles never keep a loop alive. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "rt_loop.h"

#include <uv.h>

/* The flush hook and the memory trim timer (issue 13) run with the loop but
 * do not hold it open: a daemon's loop ends when its work does. */
static void handles_do_not_keep_the_loop_alive(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct rt_loop rl;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(rt_loop_init(&rl, &loop), 0);
    assert_ptr_equal(rt_loop_of(&loop), &rl);
    assert_true(uv_is_active((uv_handle_t *)&rl.trim));
    assert_int_equal(uv_timer_get_repeat(&rl.trim), RT_LOOP_TRIM_MS);
    assert_false(uv_loop_alive(&loop));
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    rt_loop_cleanup(&rl);
    rt_loop_cleanup(&rl); /* twice is harmless */
    assert_null(loop.data);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0); /* every handle closed */
}

/* Cleanup is safe on a loop state that was zeroed and never initialised. */
static void cleanup_of_a_zeroed_loop_is_a_no_op(void **state)
{
    (void)state;
    struct rt_loop rl = {0};
    rt_loop_cleanup(&rl);
    assert_null(rl.uv);
}

/* A loop that just went idle trims at once, but at most once per
 * RT_LOOP_IDLE_TRIM_MS: a client connecting and leaving over and over must
 * not cost a heap walk per connection. */
static void idle_trim_is_rate_limited(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct rt_loop rl;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(rt_loop_init(&rl, &loop), 0);
    uv_update_time(&loop);
    uint64_t now = uv_now(&loop);
    rl.idle_trim_ms = 0;
    rt_loop_trim_idle(&rl);
    assert_int_equal(rl.idle_trim_ms, now); /* trimmed */
    rl.idle_trim_ms = now - 10;             /* as if it trimmed 10 ms ago */
    rt_loop_trim_idle(&rl);
    assert_int_equal(rl.idle_trim_ms, now - 10); /* too soon: not again */
    rl.idle_trim_ms = now - RT_LOOP_IDLE_TRIM_MS;
    rt_loop_trim_idle(&rl);
    assert_int_equal(rl.idle_trim_ms, now); /* a second later: again */
    rt_loop_cleanup(&rl);
    rt_loop_trim_idle(&rl); /* after cleanup: nothing */
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(handles_do_not_keep_the_loop_alive),
        cmocka_unit_test(cleanup_of_a_zeroed_loop_is_a_no_op),
        cmocka_unit_test(idle_trim_is_rate_limited),
    };
    return cmocka_run_group_tests_name("rt_loop", tests, NULL, NULL);
}
