/* cn_origin's kick list: transfers whose owner asked to clear pause bits
 * (cn_origin_unpause) are resumed at the next loop iteration, each once,
 * and a transfer cancelled while queued is never touched again. Real
 * libcurl transfers of "/big" from tests/support/fake_origin on 127.0.0.1,
 * each pausing itself on its first chunk as cn_stream does when its buffer
 * is full. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cn_origin.h"
#include "fake_origin.h"

#include <stdio.h>
#include <string.h>

#define BIG (256 * 1024)

struct xfer {
    struct cn_origin_xfer x; /* first: on_done finds the struct from it */
    size_t got;
    int pause_first; /* pause on the first chunk */
    int done;
    CURLcode res;
};

static uv_loop_t loop;
static struct fake_origin fo;
static struct cn_origin *origin;

static size_t on_write(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)size;
    struct xfer *t = arg;
    if (t->pause_first) {
        t->pause_first = 0;
        t->x.paused |= CURLPAUSE_RECV;
        return CURL_WRITEFUNC_PAUSE; /* curl keeps the chunk and hands it again */
    }
    t->got += n;
    return n;
}

static void on_done(struct cn_origin_xfer *x, CURLcode res)
{
    struct xfer *t = (struct xfer *)x;
    t->done = 1;
    t->res = res;
}

static void start(struct xfer *t)
{
    memset(t, 0, sizeof(*t));
    t->pause_first = 1;
    t->x.on_done = on_done;
    t->x.easy = cn_origin_easy_get(origin);
    assert_non_null(t->x.easy);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/big", fo.port);
    curl_easy_setopt(t->x.easy, CURLOPT_URL, url);
    curl_easy_setopt(t->x.easy, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(t->x.easy, CURLOPT_WRITEDATA, t);
    assert_int_equal(cn_origin_start(origin, &t->x), 0);
}

static int all_paused(struct xfer *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!(t[i].x.paused & CURLPAUSE_RECV))
            return 0;
    return 1;
}

static int both_done(const struct xfer *a, const struct xfer *b)
{
    return a->done && b->done;
}

/* Runs the loop until cond holds or ms pass (the listener keeps the loop
 * alive, so it is never run to completion). */
#define RUN_UNTIL(cond, ms)                                                                        \
    do {                                                                                           \
        uv_update_time(&loop);                                                                     \
        uint64_t until_ = uv_now(&loop) + (ms);                                                    \
        while (!(cond) && uv_now(&loop) < until_) {                                                \
            uv_run(&loop, UV_RUN_NOWAIT);                                                          \
            uv_sleep(1);                                                                           \
            uv_update_time(&loop);                                                                 \
        }                                                                                          \
    } while (0)

static int setup(void **state)
{
    (void)state;
    memset(&fo, 0, sizeof(fo));
    if (uv_loop_init(&loop) != 0 || cn_origin_new(&loop, &origin) < 0 || fo_start(&fo, &loop) < 0)
        return -1;
    fo.big_size = BIG;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cn_origin_free(origin);
    fo_stop(&fo);
    for (int i = 0; i < 100 && uv_loop_alive(&loop); i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    return uv_loop_close(&loop) == 0 ? 0 : -1;
}

/* Three paused transfers are queued (one of them twice) and one is
 * cancelled before the kick: the other two resume and finish, the
 * cancelled one gets nothing more, not even on_done. */
static void test_kick_resumes_queued_skips_cancelled(void **state)
{
    (void)state;
    struct xfer t[3];
    for (int i = 0; i < 3; i++)
        start(&t[i]);
    RUN_UNTIL(all_paused(t, 3), 10000);
    assert_true(all_paused(t, 3));
    for (int i = 0; i < 3; i++)
        assert_int_equal(t[i].got, 0);

    cn_origin_unpause(&t[0].x, CURLPAUSE_RECV);
    cn_origin_unpause(&t[1].x, CURLPAUSE_RECV);
    cn_origin_unpause(&t[1].x, CURLPAUSE_RECV); /* queued once */
    cn_origin_unpause(&t[2].x, CURLPAUSE_SEND); /* not paused for that: nothing */
    cn_origin_unpause(&t[2].x, CURLPAUSE_RECV);
    assert_true(px_list_linked(&t[1].x.kick_node));
    cn_origin_cancel(&t[1].x);
    assert_false(px_list_linked(&t[1].x.kick_node));
    assert_int_equal(t[1].x.unpause_mask, 0);

    RUN_UNTIL(both_done(&t[0], &t[2]), 10000);
    for (int i = 0; i < 3; i += 2) {
        assert_true(t[i].done);
        assert_int_equal(t[i].res, CURLE_OK);
        assert_int_equal(t[i].got, BIG);
        assert_int_equal(t[i].x.paused, 0);
        assert_false(px_list_linked(&t[i].x.kick_node));
    }
    RUN_UNTIL(0, 50);
    assert_false(t[1].done);
    assert_int_equal(t[1].got, 0);
    assert_int_equal(t[1].x.paused, CURLPAUSE_RECV);
    for (int i = 0; i < 3; i++)
        cn_origin_easy_put(origin, t[i].x.easy);
}

/* A transfer queued again after its kick is kicked again; one that is not
 * active (never started, or cancelled) is never queued. */
static void test_requeue_and_inactive(void **state)
{
    (void)state;
    struct xfer idle;
    memset(&idle, 0, sizeof(idle));
    idle.x.paused = CURLPAUSE_RECV;
    cn_origin_cancel(&idle.x); /* never started: nothing to do */
    cn_origin_unpause(&idle.x, CURLPAUSE_RECV);
    assert_false(px_list_linked(&idle.x.kick_node));

    struct xfer t;
    start(&t);
    RUN_UNTIL(all_paused(&t, 1), 10000);
    assert_true(all_paused(&t, 1));
    cn_origin_unpause(&t.x, CURLPAUSE_RECV);
    t.pause_first = 1; /* pauses again on the chunk the kick hands back */
    RUN_UNTIL(!px_list_linked(&t.x.kick_node), 10000);
    assert_false(px_list_linked(&t.x.kick_node));
    assert_int_equal(t.x.paused, CURLPAUSE_RECV);
    assert_int_equal(t.got, 0);
    cn_origin_unpause(&t.x, CURLPAUSE_RECV);
    RUN_UNTIL(t.done, 10000);
    assert_true(t.done);
    assert_int_equal(t.res, CURLE_OK);
    assert_int_equal(t.got, BIG);
    cn_origin_easy_put(origin, t.x.easy);
}

static void count_iteration(uv_check_t *c)
{
    (*(int *)c->data)++;
}

static void on_quiet_over(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

/* Runs a plain GET of "/ok" to the end; returns its result. */
static CURLcode get_ok(void)
{
    struct xfer t;
    start(&t);
    t.pause_first = 0;
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", fo.port);
    curl_easy_setopt(t.x.easy, CURLOPT_URL, url);
    RUN_UNTIL(t.done, 10000);
    assert_true(t.done);
    cn_origin_easy_put(origin, t.x.easy);
    return t.res;
}

/* An answered connection keeps its read watch while curl caches it (no
 * epoll_ctl per request); the origin closing it then must not make the
 * loop spin on a readable socket nobody reads, and the next request
 * connects again. Iterations of a blocking loop over 100 ms count the
 * wake-ups: a level-triggered spin would be thousands. */
static void test_idle_connection_closed_by_origin_does_not_spin(void **state)
{
    (void)state;
    assert_int_equal(get_ok(), CURLE_OK);
    assert_int_equal(get_ok(), CURLE_OK);
    assert_int_equal(fo.accepted, 1); /* reused */

    fo_reset(&fo); /* the origin closes the idle connection */
    int iterations = 0, over = 0;
    uv_check_t check;
    uv_timer_t quiet;
    uv_check_init(&loop, &check);
    check.data = &iterations;
    uv_check_start(&check, count_iteration);
    uv_timer_init(&loop, &quiet);
    quiet.data = &over;
    uv_timer_start(&quiet, on_quiet_over, 100, 0);
    while (!over && iterations < 100000)
        uv_run(&loop, UV_RUN_ONCE);
    assert_true(over);
    assert_true(iterations < 50);
    uv_close((uv_handle_t *)&check, NULL);
    uv_close((uv_handle_t *)&quiet, NULL);

    assert_int_equal(get_ok(), CURLE_OK);
    assert_int_equal(fo.accepted, 1); /* counted from the reset: a new connection */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kick_resumes_queued_skips_cancelled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_requeue_and_inactive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_connection_closed_by_origin_does_not_spin, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("cn_origin", tests, NULL, NULL);
}
